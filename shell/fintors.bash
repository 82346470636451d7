# fintors helpers for bash. Source from ~/.bashrc:   source /path/to/fintors/shell/fintors.bash
#
#   fintors_roles            list the roles, the active one marked with *
#   fintors_use ROLE         switch the active role (TAB completes role names); with no ROLE,
#                            `fintors use` picks one by typing
#   fintors_use --here ROLE  pin this shell to ROLE; the active role and other shells stay as
#                            they are (needs the fintors command: `fintors env --role ROLE`);
#                            with no ROLE, picked by typing
#   fintors_unpin            this shell follows the active role again; what pinning changed in
#                            its environment is put back
#   fintors_current          print the active role
#   fintors_prompt           prompt segment: "(role) " for the active role, "[role] " in a pinned
#                            shell, or nothing; e.g. PS1='$(fintors_prompt)'$PS1
#
# Also completes role names for `fintors use` and `fintors creds`; source this after
# `source <(fintors completions bash)` so the rest of fintors's completion keeps working.
#
# They need only curl (pinning also the fintors command). The daemon is found at $FINTORS_ENDPOINT, else http://127.0.0.1:16925.
# Exit status: 0 done, 1 the daemon refused (message on stderr), 2 the daemon is not running.

_fintors_endpoint() {
    printf '%s' "${FINTORS_ENDPOINT:-http://127.0.0.1:16925}"
}

# _fintors_request METHOD PATH [JSON]: sets _fintors_status and _fintors_body; returns 2 when the
# daemon cannot be reached.
_fintors_request() {
    local endpoint out token
    endpoint=$(_fintors_endpoint)
    local args=(-sS --max-time "${_FINTORS_TIMEOUT:-30}" -X "$1" -w '\n%{http_code}')
    if [ -n "${3-}" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    out=$(curl "${args[@]}" "$endpoint$2" 2>/dev/null) || {
        echo "fintors is not running at $endpoint: start it with \`fintors serve\` (or set FINTORS_ENDPOINT)" >&2
        return 2
    }
    # 401: the daemon runs with --imdsv2-required, where its API needs an IMDS session too.
    if [ "${out##*$'\n'}" = 401 ]; then
        token=$(curl -sS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
            "$endpoint/latest/api/token" 2>/dev/null) &&
            out=$(curl "${args[@]}" -H "X-aws-ec2-metadata-token: $token" "$endpoint$2" 2>/dev/null) || {
            echo "fintors is not running at $endpoint: start it with \`fintors serve\` (or set FINTORS_ENDPOINT)" >&2
            return 2
        }
    fi
    _fintors_status=${out##*$'\n'}
    _fintors_body=${out%$'\n'*}
}

# Prints the strings of the JSON array in a {"roles":[...]} body, one a line. Role names cannot
# contain quotes or backslashes, so splitting on "," between quotes is exact.
_fintors_list() {
    local inner=${1#*[}
    inner=${inner%]*}
    [ -n "$inner" ] || return 0
    inner=${inner#\"}
    inner=${inner%\"}
    printf '%s\n' "${inner//\",\"/$'\n'}"
}

# The "error" of a {"error":"..."} body.
_fintors_error() {
    local e=${1#*\"error\":\"}
    printf '%s\n' "${e%\"\}}"
}

fintors_roles() {
    _fintors_request GET /roles || return
    [ "$_fintors_status" = 200 ] || { _fintors_error "$_fintors_body" >&2; return 1; }
    local roles active role
    roles=$(_fintors_list "$_fintors_body")
    _fintors_request GET '/roles?status=active' || return
    active=$(_fintors_list "$_fintors_body")
    while IFS= read -r role; do
        [ -n "$role" ] || continue
        if [ "$role" = "$active" ]; then printf '* %s\n' "$role"; else printf '  %s\n' "$role"; fi
    done <<<"$roles"
}

fintors_use() {
    if [ "${1-}" = --here ] && [ $# -le 2 ]; then
        _fintors_pin "${2-}"
        return
    fi
    # No role: the fintors command asks which (on a terminal) or says how to name one.
    if [ $# -eq 0 ] && command -v fintors >/dev/null; then
        command fintors use
        return
    fi
    if [ $# -ne 1 ]; then
        echo "usage: fintors_use ROLE | fintors_use --here ROLE" >&2
        return 1
    fi
    local alias=${1//\\/\\\\}
    alias=${alias//\"/\\\"}
    _fintors_request PUT /roles "{\"alias\":\"$alias\"}" || return
    if [ "$_fintors_status" = 200 ]; then
        printf 'active role: %s\n' "$1"
        [ -z "${FINTORS_ROLE-}" ] ||
            printf 'this shell stays pinned to %s (fintors_unpin to follow the active role)\n' "$FINTORS_ROLE" >&2
    else
        printf 'fintors: %s\n' "$(_fintors_error "$_fintors_body")" >&2
        return 1
    fi
}

# Pins this shell to a role with what `fintors env --role` prints, first keeping the value of
# every variable it sets or removes (once, however often the shell is re-pinned), so that
# fintors_unpin can put them back.
_fintors_pin() {
    local lines line name kept
    lines=$(command fintors env --role ${1:+"$1"}) || return
    while IFS= read -r line; do
        name=${line#export }
        name=${name#unset }
        name=${name%%=*}
        case " ${_fintors_pinned-} " in *" $name "*) continue ;; esac
        _fintors_pinned="${_fintors_pinned-} $name"
        kept=_fintors_kept_$name
        if [ -n "${!name+x}" ]; then printf -v "$kept" '%s' "${!name}"; else unset "$kept"; fi
    done <<<"$lines"
    eval "$lines"
    printf 'this shell: %s (the active role is unchanged)\n' "${FINTORS_ROLE-$1}"
}

fintors_unpin() {
    if [ -z "${_fintors_pinned+x}" ]; then
        if [ -z "${FINTORS_ROLE-}" ]; then
            echo "fintors: this shell is not pinned to a role" >&2
            return 1
        fi
        # Pinned by hand (eval "$(fintors env --role ...)"): nothing was kept to put back.
        unset AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE FINTORS_ROLE
        return 0
    fi
    local name kept
    for name in $_fintors_pinned; do
        kept=_fintors_kept_$name
        if [ -n "${!kept+x}" ]; then
            export "$name=${!kept}"
            unset "$kept"
        else
            unset "$name"
        fi
    done
    unset _fintors_pinned
}

fintors_current() {
    _fintors_request GET '/roles?status=active' || return
    [ "$_fintors_status" = 200 ] || { _fintors_error "$_fintors_body" >&2; return 1; }
    _fintors_list "$_fintors_body"
}

# Only what a role name may hold reaches the prompt: whoever answers on the daemon's port could
# send terminal escape sequences.
_fintors_printable() {
    printf '%s' "${1//[^A-Za-z0-9_+=,.@-]/}"
}

fintors_prompt() {
    if [ -n "${FINTORS_ROLE-}" ]; then
        printf '[%s] ' "$(_fintors_printable "$FINTORS_ROLE")"
        return 0
    fi
    local role
    role=$(_FINTORS_TIMEOUT=0.3 fintors_current 2>/dev/null) || return 0
    role=$(_fintors_printable "$role")
    [ -n "$role" ] && printf '(%s) ' "$role"
    return 0
}

_fintors_complete_roles() {
    local roles
    _fintors_request GET /roles 2>/dev/null || return 0
    [ "$_fintors_status" = 200 ] || return 0
    roles=$(_fintors_list "$_fintors_body")
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$roles" -- "${COMP_WORDS[COMP_CWORD]}"))
}

_fintors_complete_use() {
    if [ "$COMP_CWORD" -eq 1 ] || { [ "$COMP_CWORD" -eq 2 ] && [ "${COMP_WORDS[1]}" = --here ]; }; then
        _fintors_complete_roles
    fi
}

complete -F _fintors_complete_use fintors_use

# `fintors use|creds|exec|console <TAB>` complete role names; everything else goes to the
# completion `fintors completions bash` installs (_fintors), when it is loaded.
_fintors_complete_cli() {
    if [ "$COMP_CWORD" -eq 2 ] && case "${COMP_WORDS[1]}" in use | creds | exec | console) true ;; *) false ;; esac; then
        _fintors_complete_roles
    elif declare -F _fintors >/dev/null; then
        _fintors "$@"
    fi
}

complete -F _fintors_complete_cli fintors

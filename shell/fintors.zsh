# fintors helpers for zsh. Source from ~/.zshrc, after compinit and fintors's own completions:
#
#   autoload -Uz compinit && compinit
#   source <(fintors completions zsh)
#   source /path/to/fintors/shell/fintors.zsh
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
#                            shell, or nothing; e.g. setopt PROMPT_SUBST; PROMPT='$(fintors_prompt)'$PROMPT
#
# Also completes role names for `fintors use|creds|exec|console`; the rest of `fintors`'s
# completion is the one `fintors completions zsh` installs, when it is loaded (source it first).
#
# They need only curl (pinning also the fintors command). The daemon is found at $FINTORS_ENDPOINT, else http://127.0.0.1:16925.
# Exit status: 0 done, 1 the daemon refused (message on stderr), 2 the daemon is not running.

_fintors_endpoint() {
    print -rn -- "${FINTORS_ENDPOINT:-http://127.0.0.1:16925}"
}

_fintors_not_running() {
    print -r -- "fintors is not running at $1: start it with \`fintors serve\` (or set FINTORS_ENDPOINT)" >&2
}

# _fintors_request METHOD PATH [JSON]: sets _fintors_status and _fintors_body; returns 2 when the
# daemon cannot be reached.
_fintors_request() {
    local endpoint out token nl=$'\n'
    endpoint=$(_fintors_endpoint)
    local -a args
    args=(-sS --max-time "${_FINTORS_TIMEOUT:-30}" -X "$1" -w '\n%{http_code}')
    if [[ -n "${3-}" ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    out=$(curl "${args[@]}" "$endpoint$2" 2>/dev/null) || {
        _fintors_not_running "$endpoint"
        return 2
    }
    # 401: the daemon runs with --imdsv2-required, where its API needs an IMDS session too.
    if [[ "${out##*$nl}" == 401 ]]; then
        token=$(curl -sS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
            "$endpoint/latest/api/token" 2>/dev/null) &&
            out=$(curl "${args[@]}" -H "X-aws-ec2-metadata-token: $token" "$endpoint$2" 2>/dev/null) || {
            _fintors_not_running "$endpoint"
            return 2
        }
    fi
    typeset -g _fintors_status="${out##*$nl}"
    typeset -g _fintors_body="${out%$nl*}"
}

# Prints the strings of the JSON array in a {"roles":[...]} body, one a line. Role names cannot
# contain quotes or backslashes, so splitting on "," between quotes is exact.
_fintors_list() {
    local inner=${1#*\[} nl=$'\n'
    inner=${inner%\]*}
    [[ -n "$inner" ]] || return 0
    inner=${inner#\"}
    inner=${inner%\"}
    print -r -- "${inner//\",\"/$nl}"
}

# The "error" of a {"error":"..."} body.
_fintors_error() {
    local e=${1#*\"error\":\"}
    print -r -- "${e%\"\}}"
}

fintors_roles() {
    _fintors_request GET /roles || return
    [[ "$_fintors_status" == 200 ]] || { _fintors_error "$_fintors_body" >&2; return 1; }
    local roles active role
    roles=$(_fintors_list "$_fintors_body")
    _fintors_request GET '/roles?status=active' || return
    active=$(_fintors_list "$_fintors_body")
    for role in "${(@f)roles}"; do
        [[ -n "$role" ]] || continue
        if [[ "$role" == "$active" ]]; then print -r -- "* $role"; else print -r -- "  $role"; fi
    done
}

fintors_use() {
    if [[ "${1-}" == --here && $# -le 2 ]]; then
        _fintors_pin "${2-}"
        return
    fi
    # No role: the fintors command asks which (on a terminal) or says how to name one.
    if [[ $# -eq 0 ]] && (( $+commands[fintors] )); then
        command fintors use
        return
    fi
    if [[ $# -ne 1 ]]; then
        print -r -- "usage: fintors_use ROLE | fintors_use --here ROLE" >&2
        return 1
    fi
    local alias=${1//\\/\\\\}
    alias=${alias//\"/\\\"}
    _fintors_request PUT /roles "{\"alias\":\"$alias\"}" || return
    if [[ "$_fintors_status" == 200 ]]; then
        print -r -- "active role: $1"
        [[ -z "${FINTORS_ROLE-}" ]] ||
            print -r -- "this shell stays pinned to $FINTORS_ROLE (fintors_unpin to follow the active role)" >&2
    else
        print -r -- "fintors: $(_fintors_error "$_fintors_body")" >&2
        return 1
    fi
}

# Pins this shell to a role with what `fintors env --role` prints, first keeping the value of
# every variable it sets or removes (once, however often the shell is re-pinned), so that
# fintors_unpin can put them back.
_fintors_pin() {
    local lines line name kept
    lines=$(command fintors env --role ${1:+"$1"}) || return
    for line in "${(@f)lines}"; do
        name=${line#export }
        name=${name#unset }
        name=${name%%=*}
        case " ${_fintors_pinned-} " in *" $name "*) continue ;; esac
        typeset -g _fintors_pinned="${_fintors_pinned-} $name"
        kept=_fintors_kept_$name
        if (( ${(P)+name} )); then typeset -g "$kept=${(P)name}"; else unset "$kept"; fi
    done
    eval "$lines"
    print -r -- "this shell: ${FINTORS_ROLE-$1} (the active role is unchanged)"
}

fintors_unpin() {
    if (( ! ${+_fintors_pinned} )); then
        if [[ -z "${FINTORS_ROLE-}" ]]; then
            print -r -- "fintors: this shell is not pinned to a role" >&2
            return 1
        fi
        # Pinned by hand (eval "$(fintors env --role ...)"): nothing was kept to put back.
        unset AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE FINTORS_ROLE
        return 0
    fi
    local name kept
    for name in ${=_fintors_pinned}; do
        kept=_fintors_kept_$name
        if (( ${(P)+kept} )); then
            export "$name=${(P)kept}"
            unset "$kept"
        else
            unset "$name"
        fi
    done
    unset _fintors_pinned
}

fintors_current() {
    _fintors_request GET '/roles?status=active' || return
    [[ "$_fintors_status" == 200 ]] || { _fintors_error "$_fintors_body" >&2; return 1; }
    _fintors_list "$_fintors_body"
}

# Only what a role name may hold reaches the prompt: with PROMPT_SUBST zsh reads % sequences in
# it, and whoever answers on the daemon's port could send escape sequences.
_fintors_printable() {
    print -rn -- "${1//[^A-Za-z0-9_+=,.@-]/}"
}

fintors_prompt() {
    if [[ -n "${FINTORS_ROLE-}" ]]; then
        print -rn -- "[$(_fintors_printable "$FINTORS_ROLE")] "
        return 0
    fi
    local role
    role=$(_FINTORS_TIMEOUT=0.3 fintors_current 2>/dev/null) || return 0
    role=$(_fintors_printable "$role")
    [[ -n "$role" ]] && print -rn -- "($role) "
    return 0
}

# The role names, for completion: offered with compadd, which matches them against what was
# typed.
_fintors_complete_roles() {
    _fintors_request GET /roles 2>/dev/null || return 0
    [[ "$_fintors_status" == 200 ]] || return 0
    local -a roles
    roles=("${(@f)$(_fintors_list "$_fintors_body")}")
    roles=("${(@)roles:#}")
    (( ${#roles} )) && compadd -- "${roles[@]}"
    return 0
}

# `fintors_use [--here] <TAB>`.
_fintors_complete_use() {
    if (( CURRENT == 2 )) || { (( CURRENT == 3 )) && [[ "${words[2]}" == --here ]]; }; then
        _fintors_complete_roles
    fi
}

# `fintors use|creds|exec|console <TAB>` complete role names; everything else goes to the
# completion `fintors completions zsh` installs (_fintors), when it is loaded.
_fintors_complete_cli() {
    if (( CURRENT == 3 )) && [[ "${words[2]}" == (use|creds|exec|console) ]]; then
        _fintors_complete_roles
    elif (( $+functions[_fintors] )); then
        _fintors "$@"
    fi
}

# compdef exists once compinit has run; without it zsh completes nothing, ours included.
if (( $+functions[compdef] )); then
    compdef _fintors_complete_use fintors_use
    compdef _fintors_complete_cli fintors
fi

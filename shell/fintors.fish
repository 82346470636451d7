# fintors helpers for fish. Source from ~/.config/fish/config.fish:
#   source /path/to/fintors/shell/fintors.fish
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
#                            shell, or nothing
#
# They need only curl (pinning also the fintors command). The daemon is found at $FINTORS_ENDPOINT, else http://127.0.0.1:16925.
# Exit status: 0 done, 1 the daemon refused (message on stderr), 2 the daemon is not running.
# Also completes role names for `fintors use` (beside the completions `fintors completions fish`
# prints).

function __fintors_endpoint
    if set -q FINTORS_ENDPOINT
        printf '%s' $FINTORS_ENDPOINT
    else
        printf '%s' http://127.0.0.1:16925
    end
end

# __fintors_request METHOD PATH [JSON]: sets __fintors_status and __fintors_body (globals);
# returns 2 when the daemon cannot be reached.
function __fintors_request
    set -l endpoint (__fintors_endpoint)
    set -l timeout 30
    set -q __fintors_timeout; and set timeout $__fintors_timeout
    set -l args -sS --max-time $timeout -X $argv[1] -w '\n%{http_code}'
    if test (count $argv) -ge 3
        set -a args -H 'Content-Type: application/json' --data-binary $argv[3]
    end
    set -l out (curl $args $endpoint$argv[2] 2>/dev/null)
    or begin
        echo "fintors is not running at $endpoint: start it with `fintors serve` (or set FINTORS_ENDPOINT)" >&2
        return 2
    end
    # 401: the daemon runs with --imdsv2-required, where its API needs an IMDS session too.
    if test "$out[-1]" = 401
        set -l token (curl -sS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
            $endpoint/latest/api/token 2>/dev/null)
        and set out (curl $args -H "X-aws-ec2-metadata-token: $token" $endpoint$argv[2] 2>/dev/null)
        or begin
            echo "fintors is not running at $endpoint: start it with `fintors serve` (or set FINTORS_ENDPOINT)" >&2
            return 2
        end
    end
    set -g __fintors_status $out[-1]
    # (`string join` fails when there is nothing to join: a one-line body.)
    set -g __fintors_body (string join \n -- $out[1..-2])
    return 0
end

# The strings of the JSON array in a {"roles":[...]} body, one a line.
function __fintors_list
    set -l inner (string replace -r '^[^\[]*\[' '' -- $argv[1] | string replace -r '\][^\]]*$' '')
    test -n "$inner"; or return 0
    string trim -c '"' -- $inner | string split '","'
end

function __fintors_error
    string replace -r '^.*"error":"(.*)"\}$' '$1' -- $argv[1]
end

function fintors_roles
    __fintors_request GET /roles; or return
    if test "$__fintors_status" != 200
        __fintors_error $__fintors_body >&2
        return 1
    end
    set -l roles (__fintors_list $__fintors_body)
    __fintors_request GET '/roles?status=active'; or return
    set -l active (__fintors_list $__fintors_body)
    for role in $roles
        if test "$role" = "$active"
            printf '* %s\n' $role
        else
            printf '  %s\n' $role
        end
    end
end

function fintors_use
    if test (count $argv) -ge 1; and test (count $argv) -le 2; and test "$argv[1]" = --here
        __fintors_pin $argv[2]
        return
    end
    # No role: the fintors command asks which (on a terminal) or says how to name one.
    if test (count $argv) -eq 0; and command -q fintors
        command fintors use
        return
    end
    if test (count $argv) -ne 1
        echo "usage: fintors_use ROLE | fintors_use --here ROLE" >&2
        return 1
    end
    set -l alias (string replace -a '\\' '\\\\' -- $argv[1] | string replace -a '"' '\\"')
    __fintors_request PUT /roles "{\"alias\":\"$alias\"}"; or return
    if test "$__fintors_status" = 200
        printf 'active role: %s\n' $argv[1]
        if set -q FINTORS_ROLE
            printf 'this shell stays pinned to %s (fintors_unpin to follow the active role)\n' $FINTORS_ROLE >&2
        end
        return 0
    else
        printf 'fintors: %s\n' (__fintors_error $__fintors_body) >&2
        return 1
    end
end

# Pins this shell to a role with what `fintors env --role --format fish` prints, first keeping
# the value of every variable it sets or removes (once, however often the shell is re-pinned),
# so that fintors_unpin can put them back.
function __fintors_pin
    set -l lines (command fintors env --role $argv[1] --format fish); or return
    for line in $lines
        set -l name (string replace -r '^set -(gx|e) (\S+).*$' '$2' -- $line)
        contains -- $name $__fintors_pinned; and continue
        set -g __fintors_pinned $__fintors_pinned $name
        if set -q $name
            set -g __fintors_kept_$name $$name
        else
            set -e __fintors_kept_$name
        end
    end
    string join \n -- $lines | source
    printf 'this shell: %s (the active role is unchanged)\n' $FINTORS_ROLE
end

function fintors_unpin
    if not set -q __fintors_pinned
        if not set -q FINTORS_ROLE
            echo "fintors: this shell is not pinned to a role" >&2
            return 1
        end
        # Pinned by hand (fintors env --role ... --format fish | source): nothing was kept.
        set -e AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE FINTORS_ROLE
        return 0
    end
    for name in $__fintors_pinned
        if set -q __fintors_kept_$name
            set -l kept __fintors_kept_$name
            set -gx $name $$kept
            set -e __fintors_kept_$name
        else
            set -e $name
        end
    end
    set -e __fintors_pinned
end

function fintors_current
    __fintors_request GET '/roles?status=active'; or return
    if test "$__fintors_status" != 200
        __fintors_error $__fintors_body >&2
        return 1
    end
    __fintors_list $__fintors_body
end

# Only what a role name may hold reaches the prompt: whoever answers on the daemon's port could
# send terminal escape sequences.
function __fintors_printable
    string replace -ra -- '[^A-Za-z0-9_+=,.@-]' '' $argv[1]
end

function fintors_prompt
    if set -q FINTORS_ROLE
        printf '[%s] ' (__fintors_printable "$FINTORS_ROLE")
        return 0
    end
    set -l role (begin; set -l __fintors_timeout 0.3; fintors_current 2>/dev/null; end)
    set role (__fintors_printable "$role")
    test -n "$role"; and printf '(%s) ' $role
    return 0
end

function __fintors_roles
    __fintors_request GET /roles 2>/dev/null; or return 0
    test "$__fintors_status" = 200; or return 0
    __fintors_list $__fintors_body
end

complete -c fintors_use -f -a '(__fintors_roles)'
complete -c fintors_use -f -l here -d 'pin this shell to the role'
complete -c fintors -n '__fish_seen_subcommand_from use creds exec console' -f -a '(__fintors_roles)'

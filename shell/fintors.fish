# fintors helpers for fish. Source from ~/.config/fish/config.fish:
#   source /path/to/fintors/shell/fintors.fish
#
#   fintors_roles            list the roles, the active one marked with *
#   fintors_use ROLE         switch the active role (TAB completes role names)
#   fintors_current          print the active role
#   fintors_prompt           prompt segment: "(role) " or nothing
#
# They need only curl. The daemon is found at $FINTORS_ENDPOINT, else http://127.0.0.1:16925.
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
    if test (count $argv) -ne 1
        echo "usage: fintors_use ROLE" >&2
        return 1
    end
    set -l alias (string replace -a '\\' '\\\\' -- $argv[1] | string replace -a '"' '\\"')
    __fintors_request PUT /roles "{\"alias\":\"$alias\"}"; or return
    if test "$__fintors_status" = 200
        printf 'active role: %s\n' $argv[1]
    else
        printf 'fintors: %s\n' (__fintors_error $__fintors_body) >&2
        return 1
    end
end

function fintors_current
    __fintors_request GET '/roles?status=active'; or return
    if test "$__fintors_status" != 200
        __fintors_error $__fintors_body >&2
        return 1
    end
    __fintors_list $__fintors_body
end

function fintors_prompt
    set -l role (begin; set -l __fintors_timeout 0.3; fintors_current 2>/dev/null; end)
    test -n "$role"; and printf '(%s) ' $role
    return 0
end

function __fintors_roles
    __fintors_request GET /roles 2>/dev/null; or return 0
    __fintors_list $__fintors_body
end

complete -c fintors_use -f -a '(__fintors_roles)'
complete -c fintors -n '__fish_seen_subcommand_from use creds' -f -a '(__fintors_roles)'

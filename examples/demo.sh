#!/usr/bin/env bash
# `make demo`: the STS emulator and fintors on 127.0.0.1, with examples/fintorc.json and made-up
# base credentials in a throwaway HOME. Prints what to try; Ctrl-C stops both.
#
#   FINTORS_DEMO_PORT       fintors's port (default 16925, fintors's own default)
#   FINTORS_DEMO_ECS_PORT   its container endpoint's port (default 16926, fintors's own default)
#   FINTORS_DEMO_STS_PORT   the STS emulator's port (default 16929)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-$PWD/.venv}
PORT=${FINTORS_DEMO_PORT:-16925}
ECS_PORT=${FINTORS_DEMO_ECS_PORT:-16926}
STS_PORT=${FINTORS_DEMO_STS_PORT:-16929}
FINTORS=${FINTORS:-$PWD/target/debug/fintors}
# The demo's files hold (made-up) credentials: private, as real ones must be.
umask 077
demo_home=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$demo_home"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

fail() {
    echo "make demo: $*" >&2
    exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_open "$STS_PORT" && fail "port $STS_PORT (the STS emulator's) is taken: pick another with FINTORS_DEMO_STS_PORT=PORT make demo"

mkdir -p "$demo_home/.aws"
cp examples/fintorc.json "$demo_home/.fintorc"
cat > "$demo_home/.aws/credentials" <<CREDS
[identity]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
CREDS

AWS_EC2_METADATA_DISABLED=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$STS_PORT" >"$demo_home/sts.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
    port_open "$STS_PORT" && break
    kill -0 "${pids[0]}" 2>/dev/null || fail "the STS emulator did not start: $(cat "$demo_home/sts.log")"
    sleep 0.1
done

# fintors's log goes to this terminal and to a file the readiness check reads.
HOME=$demo_home \
AWS_ENDPOINT_URL_STS=http://127.0.0.1:$STS_PORT AWS_REGION=us-east-1 \
    "$FINTORS" --port "$PORT" --ecs-port "$ECS_PORT" --state-dir "$demo_home/state" \
    2> >(tee "$demo_home/fintors.log" >&2) &
fintors_pid=$!
pids+=("$fintors_pid")
until grep -q "listening on" "$demo_home/fintors.log" 2>/dev/null; do
    if ! kill -0 "$fintors_pid" 2>/dev/null; then
        sleep 0.2 # let tee pass on fintors's last words
        if grep -q "listen on 127.0.0.1:$ECS_PORT: the port is already in use" "$demo_home/fintors.log"; then
            fail "port $ECS_PORT (fintors's container endpoint's) is taken (a fintors already running?): pick another with FINTORS_DEMO_ECS_PORT=PORT make demo"
        elif grep -q "already in use" "$demo_home/fintors.log"; then
            fail "port $PORT is taken (a fintors already running?): pick another with FINTORS_DEMO_PORT=PORT make demo"
        fi
        fail "fintors did not start (its error is above)"
    fi
    sleep 0.1
done

cat <<TRY

fintors is serving on http://127.0.0.1:$PORT/, with an STS emulator on 127.0.0.1:$STS_PORT.
In another terminal, from this directory, try:

  export PATH=$(dirname "$FINTORS"):\$PATH FINTORS_ENDPOINT=http://127.0.0.1:$PORT FINTORS_STATE_DIR=$demo_home/state
  export AWS_ENDPOINT_URL_STS=http://127.0.0.1:$STS_PORT AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  eval "\$(fintors env)"
  fintors roles
  $VENV/bin/aws sts get-caller-identity --query Arn --output text
  fintors use example2
  $VENV/bin/aws sts get-caller-identity --query Arn --output text
  fintors exec example -- $VENV/bin/aws sts get-caller-identity --query Arn --output text
  source shell/fintors.bash
  fintors_use example
  fintors_roles
  fintors status

Ctrl-C stops both.
TRY
wait

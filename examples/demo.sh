#!/usr/bin/env bash
# `make demo`: the STS emulator and fintors on 127.0.0.1, with examples/fintorc.json and made-up
# base credentials in a throwaway HOME. Prints what to try; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-$PWD/.venv}
PORT=${FINTORS_DEMO_PORT:-16925}
STS_PORT=${FINTORS_DEMO_STS_PORT:-16926}
FINTORS=${FINTORS:-$PWD/target/release/fintors}
demo_home=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$demo_home"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$demo_home/.aws"
cat > "$demo_home/.aws/credentials" <<CREDS
[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
CREDS

AWS_EC2_METADATA_DISABLED=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$STS_PORT" >"$demo_home/sts.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$STS_PORT") 2>/dev/null && break
    sleep 0.1
done

HOME=$demo_home \
AWS_ENDPOINT_URL_STS=http://127.0.0.1:$STS_PORT AWS_REGION=us-east-1 \
    "$FINTORS" --config examples/fintorc.json --addr 127.0.0.1 --port "$PORT" &
pids+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/roles" >/dev/null 2>&1 && break
    sleep 0.1
done

cat <<TRY

fintors is serving on http://127.0.0.1:$PORT, with an STS emulator on 127.0.0.1:$STS_PORT.
In another terminal, try:

  export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$PORT
  export AWS_ENDPOINT_URL_STS=http://127.0.0.1:$STS_PORT AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  curl -s http://127.0.0.1:$PORT/roles
  $VENV/bin/aws sts get-caller-identity
  curl -s -XPUT -H 'Content-Type: application/json' -d '{"alias":"example2"}' http://127.0.0.1:$PORT/roles
  $VENV/bin/aws sts get-caller-identity
  curl -s http://127.0.0.1:$PORT/latest/meta-data/iam/security-credentials/example2

Ctrl-C stops both.
TRY
wait

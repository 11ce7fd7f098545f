#!/usr/bin/env bash
# LocalStack on the host, without Docker: the same version as the compose file's image, from PyPI,
# in a Python 3.13 virtualenv (scripts/lib/venv.sh), serving SQS and Secrets Manager.
#
#   scripts/localstack-host.sh up     start it unless it already runs; print `export WHARF_LOCALSTACK_ENDPOINT=… WHARF_LOCALSTACK_STARTED=yes|no`
#   scripts/localstack-host.sh down   stop it if this script started it
#
# Use:  eval "$(scripts/localstack-host.sh up)"
# Listens on WHARF_LOCALSTACK_PORT (default: a free port, remembered for the next call). A LocalStack
# that cannot be installed or started is an error (exit 1), never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR="${WHARF_STATE_DIR:-$HOME/.cache/wharf}"
PID_FILE="$STATE_DIR/localstack.pid"
PORT_FILE="$STATE_DIR/localstack.port"
LOG_FILE="$STATE_DIR/localstack.log"

log() { echo "localstack-host: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

version=$(python3 -c 'import sys; sys.path.insert(0, "scripts"); from deployment_names import NAMES; print(NAMES["localstack"]["version"])')
services=$(python3 -c 'import sys; sys.path.insert(0, "scripts"); from deployment_names import NAMES; print(NAMES["localstack"]["services"])')

ready() { # port: SQS and Secrets Manager answer
  curl -fsS "http://127.0.0.1:$1/_localstack/health" 2>/dev/null | python3 -c '
import json, sys
services = json.load(sys.stdin)["services"]
sys.exit(0 if all(services.get(s) in ("available", "running") for s in sys.argv[1].split(",")) else 1)' "$services" 2>/dev/null
}

running_port() {
  [ -f "$PID_FILE" ] && [ -f "$PORT_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && ready "$(cat "$PORT_FILE")" &&
    cat "$PORT_FILE"
}

up() {
  mkdir -p "$STATE_DIR"
  local port bin
  if port=$(running_port); then
    echo "export WHARF_LOCALSTACK_ENDPOINT=http://127.0.0.1:$port WHARF_LOCALSTACK_STARTED=no"
    return
  fi
  # scripts/lib/venv.sh: wharf_venv (checked on its own by static-checks.sh)
  # shellcheck source=/dev/null
  source scripts/lib/venv.sh
  # The pins below are the combination verified to run this LocalStack version from PyPI.
  bin=$(wharf_venv "localstack-$version" 3.13 "localstack-core[runtime]==$version" 'cbor2<5.7' 'pyopenssl<24.3' \
    'cryptography<44' 'service_identity<24.2') || die "cannot install localstack-core $version"
  port="${WHARF_LOCALSTACK_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  log "starting LocalStack $version on 127.0.0.1:$port"
  GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" SQS_ENDPOINT_STRATEGY=path \
    SERVICES="$services" AWS_DEFAULT_REGION=us-east-1 \
    nohup "$bin/python" -m localstack.runtime.main >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  echo "$port" >"$PORT_FILE"
  for _ in $(seq 1 600); do
    ready "$port" && { echo "export WHARF_LOCALSTACK_ENDPOINT=http://127.0.0.1:$port WHARF_LOCALSTACK_STARTED=yes"; return; }
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { tail -n 30 "$LOG_FILE" >&2; die "LocalStack exited during start-up"; }
    sleep 0.2
  done
  tail -n 30 "$LOG_FILE" >&2
  die "LocalStack did not become ready within 120 s (see $LOG_FILE)"
}

case "${1:-up}" in
  up) up ;;
  down)
    if [ -f "$PID_FILE" ]; then
      kill "$(cat "$PID_FILE")" 2>/dev/null || true
      rm -f "$PID_FILE" "$PORT_FILE"
      log "LocalStack stopped"
    fi
    ;;
  *) die "usage: $0 up|down" ;;
esac

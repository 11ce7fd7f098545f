#!/usr/bin/env bash
# Finds or starts the services wharf's integration and end-to-end tiers need:
#   PostgreSQL (127.0.0.1:5432), RabbitMQ (127.0.0.1:5672) and an SQS API (moto server).
#
#   scripts/dev-services.sh up     ensure all three run; print `export VAR=...` lines for them
#   scripts/dev-services.sh down   stop what this script started (moto); leave the rest alone
#   scripts/dev-services.sh env    print the exports again without starting anything
#
# Use:  eval "$(scripts/dev-services.sh up)"
#
# Idempotent and fast when everything already runs. A service that cannot be reached or started
# is an error (exit 1): the integration tier fails rather than skipping.
set -euo pipefail

STATE_DIR="${WHARF_STATE_DIR:-$HOME/.cache/wharf}"
ENV_FILE="$STATE_DIR/dev-services.env"
MOTO_PID_FILE="$STATE_DIR/moto.pid"
MOTO_PORT_FILE="$STATE_DIR/moto.port"
PG_HOST=127.0.0.1 PG_PORT=5432 AMQP_HOST=127.0.0.1 AMQP_PORT=5672

log() { echo "dev-services: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    port_open "$2" "$3" && return 0
    sleep 0.1
  done
  return 1
}

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    return
  fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  fi
  wait_for postgres "$PG_HOST" "$PG_PORT" 30 || die "PostgreSQL is not reachable on $PG_HOST:$PG_PORT"
  if command -v pg_isready >/dev/null; then
    for _ in $(seq 1 100); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return; sleep 0.1; done
    die "PostgreSQL on $PG_HOST:$PG_PORT does not accept connections"
  fi
}

ensure_rabbitmq() {
  port_open "$AMQP_HOST" "$AMQP_PORT" && return
  command -v rabbitmq-server >/dev/null || die "RabbitMQ is not reachable on $AMQP_HOST:$AMQP_PORT and rabbitmq-server is not installed"
  log "starting RabbitMQ"
  rabbitmq-server -detached >&2 || true
  wait_for rabbitmq "$AMQP_HOST" "$AMQP_PORT" 90 || die "RabbitMQ did not come up on $AMQP_HOST:$AMQP_PORT"
}

moto_binary() {
  if command -v pyenv >/dev/null && pyenv which moto_server >/dev/null 2>&1; then
    pyenv which moto_server
  elif command -v moto_server >/dev/null; then
    command -v moto_server
  else
    # Not in the image: install it once into wharf's own virtualenv.
    local venv="$STATE_DIR/venv"
    if [ ! -x "$venv/bin/moto_server" ]; then
      log "installing moto[server] into $venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet 'moto[server]' >&2
    fi
    echo "$venv/bin/moto_server"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ensure_moto() {
  if [ -f "$MOTO_PID_FILE" ] && [ -f "$MOTO_PORT_FILE" ] && kill -0 "$(cat "$MOTO_PID_FILE")" 2>/dev/null &&
    port_open 127.0.0.1 "$(cat "$MOTO_PORT_FILE")"; then
    return
  fi
  local binary port
  binary=$(moto_binary)
  port=$(free_port)
  log "starting moto server on 127.0.0.1:$port"
  nohup "$binary" -H 127.0.0.1 -p "$port" >"$STATE_DIR/moto.log" 2>&1 &
  echo $! >"$MOTO_PID_FILE"
  echo "$port" >"$MOTO_PORT_FILE"
  wait_for moto 127.0.0.1 "$port" 60 || die "moto server did not start (see $STATE_DIR/moto.log)"
}

write_env() {
  local port
  port=$(cat "$MOTO_PORT_FILE")
  cat >"$ENV_FILE" <<ENV
export WHARF_TEST_POSTGRES_URL=postgres://postgres@$PG_HOST:$PG_PORT/postgres
export WHARF_TEST_AMQP_URL=amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/%2f
export WHARF_TEST_SQS_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
ENV
  cat "$ENV_FILE"
}

case "${1:-up}" in
  up)
    mkdir -p "$STATE_DIR"
    ensure_postgres
    ensure_rabbitmq
    ensure_moto
    write_env
    ;;
  env)
    [ -f "$ENV_FILE" ] || die "nothing started yet; run: $0 up"
    cat "$ENV_FILE"
    ;;
  down)
    if [ -f "$MOTO_PID_FILE" ]; then
      kill "$(cat "$MOTO_PID_FILE")" 2>/dev/null || true
      rm -f "$MOTO_PID_FILE" "$MOTO_PORT_FILE" "$ENV_FILE"
      log "moto server stopped"
    fi
    ;;
  *)
    die "usage: $0 up|env|down"
    ;;
esac

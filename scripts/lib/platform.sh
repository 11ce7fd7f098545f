# shellcheck shell=bash
# The three services as separate processes on free ports, each with its own PostgreSQL database,
# over RabbitMQ or SQS: the local stand-in for a deployment that the end-to-end tier
# (scripts/e2e-services.sh) and the operations drills (ops/drills/) act on.
#
#   source scripts/lib/platform.sh
#   platform_init <database-prefix>    # binaries, dev services, free ports, fresh databases, $work;
#                                      # $platform_queue is the order-events queue
#   platform_use_rabbitmq | platform_use_sqs   # the bus of the services started next (RabbitMQ first)
#   platform_start <service> [VAR=value…]      # starts one service (with extra settings) and waits
#                                      # until /health/ready is 200
#   platform_stop <service> [signal]   # stops one service (TERM by default) and waits
#   platform_url <service>             # its base URL
#   platform_database_url <service>    # its DATABASE_URL
#
# Every process started here is stopped by platform_cleanup (installed as the EXIT trap by
# platform_init, which also prints each service's last log lines when the script fails).

declare -A platform_pid=() platform_port=()
platform_prefix=""
platform_failed=""

platform_die() {
  echo "drill: FAILED: $*" >&2
  platform_failed=yes
  exit 1
}

platform_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

platform_init() { # database-prefix
  export PGOPTIONS="-c client_min_messages=warning"
  platform_prefix=$1
  # shellcheck source=scripts/lib/binaries.sh
  source scripts/lib/binaries.sh
  bin="$(wharf_binaries)"
  local services
  services=$(scripts/dev-services.sh up) || platform_die "PostgreSQL, RabbitMQ or moto unreachable (scripts/dev-services.sh up)"
  eval "$services"
  work=$(mktemp -d)
  trap platform_cleanup EXIT
  pg_base="${WHARF_TEST_POSTGRES_URL%/*}"
  local name
  for name in products orders notifications; do
    platform_port[$name]=$(platform_free_port)
    psql "$WHARF_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS ${platform_prefix}_$name WITH (FORCE)" \
      -c "CREATE DATABASE ${platform_prefix}_$name" >/dev/null || platform_die "cannot create ${platform_prefix}_$name"
  done
  # shellcheck disable=SC2034 # read by the drills that source this file
  platform_targets=(--products "$(platform_url products)" --orders "$(platform_url orders)"
    --notifications "$(platform_url notifications)")
  platform_queue="${platform_prefix//_/-}-orders"
  platform_use_rabbitmq
}

# The bus the next platform_start uses: RabbitMQ (the default) or the SQS API of the dev services.
platform_use_rabbitmq() { platform_bus_env=(BUS=rabbitmq "AMQP_URL=$WHARF_TEST_AMQP_URL" "BUS_QUEUE=$platform_queue"); }
platform_use_sqs() {
  platform_bus_env=(BUS=sqs "AWS_ENDPOINT_URL=$WHARF_TEST_SQS_ENDPOINT" BUS_PROVISION=true "BUS_QUEUE=$platform_queue")
}

platform_url() { echo "http://127.0.0.1:${platform_port[$1]}"; }
platform_database_url() { echo "$pg_base/${platform_prefix}_$1"; }

platform_start() { # service [extra VAR=value…]
  local name=$1
  shift
  (exec env HOST=127.0.0.1 "PORT=${platform_port[$name]}" "DATABASE_URL=$(platform_database_url "$name")" \
    "${platform_bus_env[@]}" LOG_FORMAT=json RUST_LOG=info ADMIN_ENABLED=true CHAOS_ENABLED=true SEND_DELAY_EMAIL_MS=20-80 \
    "PRODUCTS_URL=$(platform_url products)" PRODUCTS_TIMEOUT_MS=1000 PRODUCTS_RETRIES=1 BREAKER_FAILURES=3 \
    BREAKER_OPEN_SECS=2 "$@" "$bin/$name" >>"$work/$name.log" 2>&1) &
  platform_pid[$name]=$!
  local _
  for _ in $(seq 1 300); do
    curl -fsS "$(platform_url "$name")/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "${platform_pid[$name]}" 2>/dev/null || platform_die "$name exited during start-up"
    sleep 0.1
  done
  platform_die "$name not ready within 30 s"
}

platform_stop() { # service [signal]
  local name=$1 signal=${2:-TERM} p=${platform_pid[$1]:-} _
  [ -n "$p" ] || return 0
  kill "-$signal" "$p" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  platform_pid[$name]=""
}

platform_cleanup() {
  local status=$? name log
  for name in orders notifications products; do platform_stop "$name"; done
  if [ -n "${platform_extra_cleanup:-}" ]; then "$platform_extra_cleanup"; fi
  if [ -n "$platform_failed" ] || [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "=== last lines of $(basename "$log")" >&2
      tail -n 30 "$log" >&2
    done
  fi
  rm -rf "$work"
}

# Milliseconds since the epoch, for timelines.
platform_now_ms() { date +%s%3N; }

#!/usr/bin/env bash
# Tier 3 (services): products, orders and notifications as three separate processes, each with its
# own PostgreSQL database (created afresh), over RabbitMQ and then over SQS (moto), driven by
# `wharf smoke`, `wharf load`, `wharf chaos` and `wharf dlq`:
#
#   1. smoke                                  6. DLQ: a poison order is dead-lettered, listed, replayed
#   2. load: zero errors, every order notified 7. over SQS: smoke, load, every order notified, DLQ
#   3. kill -9 notifications during load, restart: nothing lost
#   4. stop products during load: orders degrade (fallback cache) and recover by themselves
#   5. chaos during load: actors killed, latency injected: zero errors, nothing lost
#   8. AUTH_MODE=jwt on all three (RabbitMQ) against a Cognito pool on moto: smoke and load with an admin's
#      WHARF_TOKEN; without a token a write is 401 (orders still reads the public catalogue)
#
# Every process is stopped by PID whatever happens; logs are printed when a step fails.
# Needs PostgreSQL, RabbitMQ and moto: scripts/dev-services.sh finds or starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/platform.sh
source scripts/lib/platform.sh
# shellcheck source=scripts/lib/cognito.sh
source scripts/lib/cognito.sh
platform_init wharf_e2e

say() { printf '\n--- e2e: %s\n' "$*"; }
die() { platform_die "$@"; }
url() { platform_url "$1"; }
stop() { platform_stop "$@"; }
targets=("${platform_targets[@]}")

auth_env=() # AUTH_* of the services started next (none until step 8)
start() { # name: starts one service with the current bus and the tier's short delays and attempts
  platform_start "$1" BUS_MAX_ATTEMPTS=3 EVENT_RETRY_DELAY_MS=300 SEND_ATTEMPTS=2 "${auth_env[@]}"
}

start_all() { start products && start notifications && start orders; }

health_status() { curl -fsS "$(url "$1")/health" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo unreachable; }

# Reads a `wharf load --json` report: prints the counts and fails unless every order was notified.
check_report() { # label report-file
  python3 - "$1" "$2" >>"$work/summary" <<'PY' || { tail -n 1 "$work/summary"; die "$1: load report check failed"; }
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
errors = r["errors"]
created, sent = r["orders_created"], r["notifications_sent"]
print(f"e2e: {label}: {r['requests']} requests, {errors} errors, orders created = {created}, notifications Sent = {sent}, "
      f"failed = {r['notifications_failed']}, missing = {r['notifications_missing']}")
sys.exit(0 if errors == 0 and created > 0 and created == sent else 1)
PY
  tail -n 1 "$work/summary"
}

load() { # label report-file load-options...: runs wharf load, requiring zero errors and every order notified
  local label=$1 report=$2
  shift 2
  "$bin/wharf" load "${targets[@]}" --json --max-errors 0 --require-notified --notify-wait 90 "$@" >"$report" \
    || { cat "$report" >&2; die "$label: wharf load failed"; }
  check_report "$label" "$report"
}

say "three processes over PostgreSQL + RabbitMQ"
start_all
"$bin/wharf" dlq purge --yes --bus rabbitmq --queue "$platform_queue" --amqp-url "$WHARF_TEST_AMQP_URL" >/dev/null

say "1. smoke"
"$bin/wharf" smoke "${targets[@]}" --wait 20 || die "smoke failed"

say "2. load: zero errors, every order notified"
load "load" "$work/load.json" --duration 10s --users 8

say "3. kill -9 notifications during load, then restart it"
"$bin/wharf" load "${targets[@]}" --json --max-errors 0 --require-notified --notify-wait 90 \
  --duration 12s --users 6 --mix products=50,orders=50 >"$work/kill9.json" &
load_pid=$!
sleep 3
platform_stop notifications KILL
echo "e2e: notifications killed with SIGKILL"
sleep 3
start notifications
echo "e2e: notifications restarted"
wait "$load_pid" || { cat "$work/kill9.json" >&2; die "load across the notifications crash failed"; }
check_report "kill -9 notifications" "$work/kill9.json"

say "4. stop products during load: orders degrade to the fallback cache and recover"
"$bin/wharf" load "${targets[@]}" --json --max-errors 0 --require-notified --notify-wait 90 \
  --duration 14s --users 6 --mix orders=100 >"$work/products-down.json" &
load_pid=$!
sleep 3
stop products TERM
echo "e2e: products stopped"
sleep 4
degraded=$(health_status orders)
echo "e2e: orders health with products down: $degraded"
[ "$degraded" = degraded ] || die "orders should report degraded while products is down (got $degraded)"
start products
echo "e2e: products restarted"
recovered=""
for _ in $(seq 1 100); do
  [ "$(health_status orders)" = healthy ] && { recovered=yes; break; }
  sleep 0.2
done
[ -n "$recovered" ] || die "orders did not recover to healthy within 20 s of products' restart"
echo "e2e: orders healthy again (breaker closed by itself)"
wait "$load_pid" || { cat "$work/products-down.json" >&2; die "load across the products outage failed"; }
check_report "products outage" "$work/products-down.json"

say "5. chaos during load: actors killed, latency injected"
"$bin/wharf" load "${targets[@]}" --json --max-errors 0 --require-notified --notify-wait 90 \
  --duration 10s --users 6 >"$work/chaos.json" &
load_pid=$!
sleep 2
"$bin/wharf" chaos latency --url "$(url products)" --ms 200 --jitter-ms 100 --for 4s
"$bin/wharf" chaos kill --url "$(url orders)" orders/outbox-relay
"$bin/wharf" chaos kill --url "$(url notifications)" notifications/order-events
sleep 2
"$bin/wharf" chaos kill --url "$(url orders)" orders/outbox-relay
"$bin/wharf" chaos kill --url "$(url notifications)" notifications/order-events
wait "$load_pid" || { cat "$work/chaos.json" >&2; die "load under chaos failed"; }
check_report "chaos" "$work/chaos.json"

# A poison order (its recipient matches SEND_FAIL_PATTERN) is dead-lettered after BUS_MAX_ATTEMPTS,
# listed by `wharf dlq` straight from the broker, replayed (handled again, dead-lettered anew) and purged.
dlq_drill() { # wharf dlq source options...
  local dlq=("$@") poison order first_at at again="" listed=""
  poison=$(curl -fsS -X POST "$(url products)/api/products" -H 'content-type: application/json' \
    -d '{"name":"e2e poison","price":1,"stock":10}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  order=$(curl -fsS -X POST "$(url orders)/api/orders" -H 'content-type: application/json' \
    -d "{\"productId\":$poison,\"quantity\":1,\"customerEmail\":\"e2e-$$@fail.test\"}" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  dead_lettered_at() { # order id: when its event was dead-lettered, empty while it is not in the DLQ
    "$bin/wharf" dlq list "${dlq[@]}" --json | python3 -c "
import json, sys
found = [m for m in json.load(sys.stdin)['messages'] if (m.get('body') or {}).get('data', {}).get('orderId') == $1]
print(found[0]['deadLetteredAt'] or 'unknown' if found else '')"
  }
  for _ in $(seq 1 150); do
    [ -n "$(dead_lettered_at "$order")" ] && { listed=yes; break; }
    sleep 0.2
  done
  [ -n "$listed" ] || die "order $order's event did not reach the DLQ within 30 s"
  "$bin/wharf" dlq list "${dlq[@]}"
  first_at=$(dead_lettered_at "$order")
  "$bin/wharf" dlq replay "${dlq[@]}" --all
  # Replayed with a fresh attempt count, it fails its attempts again and is dead-lettered anew.
  for _ in $(seq 1 150); do
    at=$(dead_lettered_at "$order")
    if [ -n "$at" ] && [ "$at" != "$first_at" ]; then again=yes; break; fi
    sleep 0.2
  done
  [ -n "$again" ] || die "the replayed event of order $order was not handled and dead-lettered again"
  echo "e2e: replayed event handled again and dead-lettered anew ($first_at -> $at)"
  "$bin/wharf" dlq purge "${dlq[@]}" --yes
  curl -fsS -X DELETE "$(url products)/api/products/$poison" >/dev/null
}

say "6. dead letters over RabbitMQ: a poison order is dead-lettered, listed, replayed and purged"
dlq_drill --bus rabbitmq --queue "$platform_queue" --amqp-url "$WHARF_TEST_AMQP_URL"

say "7. the same over SQS (moto)"
for name in orders notifications products; do stop "$name"; done
platform_use_sqs
start_all
"$bin/wharf" smoke "${targets[@]}" --wait 30 || die "smoke over SQS failed"
load "load over SQS" "$work/sqs.json" --requests 150 --users 4
AWS_ENDPOINT_URL="$WHARF_TEST_SQS_ENDPOINT" dlq_drill --bus sqs --queue "$platform_queue"

say "8. AUTH_MODE=jwt on all three (Cognito on moto): smoke and load with a token, 401 without"
for name in orders notifications products; do stop "$name"; done
# Still on SQS, restarted right after the DLQ drill: notifications' graceful stop lets its open
# long poll end and releases what it took, so the first orders below are not hidden for a 30 s
# visibility timeout (longer than smoke waits) by the stopped process's last poll.
cognito_pool
auth_env=("${cognito_auth_env[@]}")
start_all
status_without_token() { # service path body
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$(url "$1")$2" -H 'content-type: application/json' -d "$3"
}
for write in "products /api/products {\"name\":\"e2e unauthenticated\",\"price\":1,\"stock\":1}" \
  "orders /api/orders {\"productId\":1,\"quantity\":1,\"customerEmail\":\"e2e@example.com\"}"; do
  read -r service path body <<<"$write"
  got=$(status_without_token "$service" "$path" "$body")
  [ "$got" = 401 ] || die "POST $path without a token: $got, not 401"
  echo "e2e: POST $path without a token: 401"
done
# orders validates each order against products' public catalogue reads, so the orders of smoke
# and load also prove that call needs no token.
export WHARF_TOKEN="$cognito_admin_token"
"$bin/wharf" smoke "${targets[@]}" --wait 30 || die "smoke with auth failed"
load "load with auth" "$work/auth.json" --requests 100 --users 4

say "all scenarios passed"
cat "$work/summary"

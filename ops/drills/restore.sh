#!/usr/bin/env bash
# The restore drill: lose products' database while the platform is under load, restore it from the
# last backup, and measure what users saw.
#
#   ops/drills/restore.sh            (needs PostgreSQL and RabbitMQ; scripts/dev-services.sh finds them)
#
# 1. the three services on PostgreSQL + RabbitMQ, a catalogue, `wharf load` placing orders;
# 2. `ops/backup.sh products`; then products created after the backup (the data a restore loses);
# 3. failure: products is killed and its database dropped;
# 4. `ops/restore.sh products` from the backup, products started again;
# 5. verified: products serves the backed-up catalogue; orders kept accepting orders throughout
#    (the fallback cache) and stayed ready; notifications kept serving; the load ended with zero
#    errors and every order notified (no event lost).
# Prints the measured RTO (failure → products ready with its data) and RPO (the window between the
# backup and the failure, and the rows it held), then times the same backup → restore → ready cycle
# for orders and notifications. WHARF_DRILL_OUT=<file> also writes the figures as JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/platform.sh
source scripts/lib/platform.sh

platform_init wharf_drill_restore
say() { printf '\n--- restore drill: %s\n' "$*"; }
api() { curl -fsS -H 'content-type: application/json' "$@"; }
catalogue_ids() { # the ids products serves now, one per line (empty when it does not answer)
  curl -fsS "$(platform_url products)/api/products?limit=1000" 2>/dev/null \
    | python3 -c 'import json, sys; [print(p["id"]) for p in json.load(sys.stdin)]' 2>/dev/null || true
}

say "the platform on PostgreSQL + RabbitMQ"
for name in products notifications orders; do platform_start "$name"; done
for i in $(seq 1 20); do
  api -X POST "$(platform_url products)/api/products" -d "{\"name\":\"drill item $i\",\"price\":$i.5,\"stock\":100000}" >/dev/null
done

say "load: orders only, zero errors allowed, every order must be notified"
"$bin/wharf" load "${platform_targets[@]}" --json --max-errors 0 --require-notified --notify-wait 90 \
  --duration 30s --users 4 --mix orders=100 >"$work/load.json" 2>"$work/load.err" &
load_pid=$!

# Probes every 200 ms: is orders ready, does notifications answer? Failures are counted.
probe() { # name url
  local failures=0
  while [ ! -f "$work/stop-probes" ]; do
    curl -fsS -m 2 "$2" >/dev/null 2>&1 || failures=$((failures + 1))
    sleep 0.2
  done
  echo "$failures" >"$work/probe-$1"
}
probe orders "$(platform_url orders)/health/ready" &
probe_orders=$!
probe notifications "$(platform_url notifications)/api/notifications?limit=1" &
probe_notifications=$!

sleep 4
say "backup"
backup_ms=$(platform_now_ms)
ops/backup.sh products --database-url "$(platform_database_url products)" --out "$work/products.dump"
backed_up=$(catalogue_ids | sort -n)

sleep 1
for i in 1 2 3; do
  api -X POST "$(platform_url products)/api/products" -d "{\"name\":\"after the backup $i\",\"price\":1,\"stock\":1}" >/dev/null
done
before_failure=$(catalogue_ids | sort -n)

say "failure: products killed, its database dropped"
failure_ms=$(platform_now_ms)
platform_stop products KILL
psql "$WHARF_TEST_POSTGRES_URL" -qc "DROP DATABASE wharf_drill_restore_products WITH (FORCE)"
sleep 3
orders_health=$(curl -fsS "$(platform_url orders)/health" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')
echo "restore drill: orders with products gone: $orders_health"

say "restore from the backup"
restore_ms=$(platform_now_ms)
ops/restore.sh products --database-url "$(platform_database_url products)" --from "$work/products.dump" --yes
platform_start products
restored=$(catalogue_ids | sort -n)
ready_ms=$(platform_now_ms)
[ "$restored" = "$backed_up" ] || platform_die "products serves a different catalogue than the backup held"
echo "restore drill: products serves the backed-up catalogue ($(echo "$restored" | wc -l) products)"

wait "$load_pid" || { cat "$work/load.json" "$work/load.err" >&2; platform_die "the load failed across the restore"; }
touch "$work/stop-probes"
wait "$probe_orders" "$probe_notifications"

lost=$(comm -23 <(echo "$before_failure") <(echo "$restored") | wc -l)

# The same backup → drop → restore → ready cycle for the other two services, one at a time (the
# service stopped for it, as the runbook says), so docs/dr.md has a measured figure for each.
declare -A cycle_seconds=()
for name in orders notifications; do
  table=$name
  say "backup and restore cycle: $name"
  rows() { psql "$(platform_database_url "$name")" -tAc "SELECT count(*) FROM $table"; }
  started_ms=$(platform_now_ms)
  platform_stop "$name"
  before=$(rows)
  ops/backup.sh "$name" --database-url "$(platform_database_url "$name")" --out "$work/$name.dump" >/dev/null
  ops/restore.sh "$name" --database-url "$(platform_database_url "$name")" --from "$work/$name.dump" --yes >/dev/null
  platform_start "$name"
  cycle_seconds[$name]=$(( $(platform_now_ms) - started_ms ))
  after=$(rows)
  [ "$before" = "$after" ] || platform_die "$name: $before rows before the cycle, $after after"
  echo "restore drill: $name: $after rows back; stop → ready in $(( cycle_seconds[$name] )) ms"
done
python3 - "$work/load.json" "$work/probe-orders" "$work/probe-notifications" "$orders_health" \
  "$backup_ms" "$failure_ms" "$restore_ms" "$ready_ms" "$lost" "${WHARF_DRILL_OUT:-}" \
  "${cycle_seconds[orders]}" "${cycle_seconds[notifications]}" <<'PY'
import json, sys
load_path, probe_orders, probe_notifications, orders_health = sys.argv[1:5]
backup_ms, failure_ms, restore_ms, ready_ms, lost = map(int, sys.argv[5:10])
out = sys.argv[10]
orders_cycle_ms, notifications_cycle_ms = map(int, sys.argv[11:13])
load = json.load(open(load_path))
figures = {
    "rto_seconds": (ready_ms - failure_ms) / 1000,
    "restore_seconds": (ready_ms - restore_ms) / 1000,
    "rpo_window_seconds": (failure_ms - backup_ms) / 1000,
    "rows_lost": lost,
    "orders_placed": load["orders_created"],
    "load_errors": load["errors"],
    "notifications_missing": load["notifications_missing"],
    "orders_not_ready_probes": int(open(probe_orders).read()),
    "notifications_failed_probes": int(open(probe_notifications).read()),
    "orders_health_during_outage": orders_health,
    "orders_backup_restore_cycle_seconds": orders_cycle_ms / 1000,
    "notifications_backup_restore_cycle_seconds": notifications_cycle_ms / 1000,
}
print("\nrestore drill: measured")
for key, value in figures.items():
    print(f"  {key:44} {value}")
if out:
    json.dump(figures, open(out, "w"), indent=2)
ok = (figures["load_errors"] == 0 and figures["notifications_missing"] == 0 and figures["orders_placed"] > 0
      and figures["orders_not_ready_probes"] == 0 and figures["notifications_failed_probes"] == 0
      and lost == 3 and orders_health == "degraded")
print("restore drill: " + ("passed" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY

#!/usr/bin/env bash
# wharf's benchmark: every figure of docs/performance.md measured in one run, each beside the
# ceiling this machine reaches at the same thing in the same run, and the ratio.
#
#   bench/run.sh            release build; 10 s per HTTP figure; table on stdout, JSON in
#                           bench/results/latest.json (WHARF_BENCH_OUT overrides)
#   bench/run.sh --short    debug binaries, 2 s per figure: CI's smoke (it must complete; the
#                           figures mean nothing and no threshold is applied)
#   WHARF_BENCH_BIN=DIR bench/run.sh
#                           the release figures of the binaries in DIR, without building: two
#                           builds compared back to back (copy each build's binaries aside first)
#
# Figures (the P-numbers of docs/performance.md):
#   P1 GET /api/products/{id} and GET /api/products (100 items), products on SQLite — ceiling: a
#      bare hyper server answering the same body (bench/ceiling), same wrk, connections, duration;
#   P2 POST /api/orders, orders on PostgreSQL + outbox, relay on RabbitMQ, notifications consuming —
#      ceiling: pgbench, a one-row insert transaction, same clients and duration;
#   P3 order → email Sent at a fixed arrival rate (open model, `wharf load --rate`), send delay 0,
#      and a burst of orders drained;
#   P4 RSS idle and after the loads (/proc/<pid>/status VmHWM, VmRSS);
#   P5 exec → first 200 on /health/ready;
#   P6 stripped binary size;
#   P7 what trace export costs: `wharf load` (its default mix) against the same three services,
#      restarted with export off, then exporting every span over OTLP/HTTP to a local sink that
#      accepts every batch (bench/ceiling answering an empty body); two rounds (one with --short),
#      each export-on figure beside its own round's export-off baseline.
# Needs PostgreSQL (with pgbench), RabbitMQ (scripts/dev-services.sh finds them) and wrk (installed
# from Debian if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
need_apt wrk wrk

short=""
[ "${1:-}" = "--short" ] && short=yes
if [ -n "$short" ]; then
  duration=2 connections=16 rate=200 burst=500
  # shellcheck source=scripts/lib/binaries.sh
  source scripts/lib/binaries.sh
  bin="$(wharf_binaries)"
  cargo build --workspace --all-features --bin wharf-ceiling --quiet
  build=debug
else
  duration=10 connections=64 rate=1000 burst=10000
  if [ -n "${WHARF_BENCH_BIN:-}" ]; then
    bin=$(cd "$WHARF_BENCH_BIN" && pwd)
  else
    export CARGO_TARGET_DIR="${WHARF_RELEASE_TARGET_DIR:-$HOME/.cache/wharf/target-release}"
    cargo build --release --workspace --bins --quiet
    bin="$CARGO_TARGET_DIR/release"
  fi
  build=release
fi
eval "$(scripts/dev-services.sh up)"
pg_bin=$(dirname "$(command -v pgbench)")

work=$(mktemp -d)
# Databases and queues of this run only: CI and other runs may bench on the same servers at once.
run_id="$$"
queue="wharf-bench-$run_id-orders"
declare -A pid=()
cleanup() {
  local name
  for name in "${!pid[@]}"; do kill -TERM "${pid[$name]}" 2>/dev/null || true; done
  for name in "${!pid[@]}"; do wait "${pid[$name]}" 2>/dev/null || true; done
  for name in products orders notifications; do
    [ -n "${WHARF_TEST_POSTGRES_URL:-}" ] || break
    psql "$WHARF_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS wharf_bench_${run_id}_$name WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if command -v rabbitmqctl >/dev/null; then
    for name in "$queue" "$queue-dlq"; do timeout 30 rabbitmqctl -q delete_queue "$name" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
results="$work/results.jsonl"
record() { echo "$1" >>"$results"; }   # one JSON object per figure

# Starts a service, records its exec → ready time, and leaves its pid in ${pid[name]}.
start() { # name port VAR=value…
  local name=$1 port=$2
  shift 2
  python3 - "$bin/$name" "$port" "$work/$name.log" "$@" >"$work/$name.start" <<'PY' &
import os, subprocess, sys, time, urllib.request
binary, port, log, settings = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
env = dict(os.environ, HOST="127.0.0.1", PORT=port, LOG_FORMAT="json", RUST_LOG="warn")
env.update(s.split("=", 1) for s in settings)
started = time.perf_counter()
process = subprocess.Popen([binary], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
print(process.pid, flush=True)
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as answer:
            if answer.status == 200:
                break
    except Exception:
        if process.poll() is not None:
            sys.exit(f"{binary} exited during start-up")
        time.sleep(0.001)
print(f"{(time.perf_counter() - started) * 1000:.1f}", flush=True)
process.wait()
PY
  local waiter=$! _
  for _ in $(seq 1 300); do [ "$(wc -l <"$work/$name.start")" -ge 2 ] && break; sleep 0.1; done
  [ "$(wc -l <"$work/$name.start")" -ge 2 ] || { tail -n 20 "$work/$name.log" >&2; echo "bench: $name did not become ready" >&2; exit 1; }
  pid[$name]=$(sed -n 1p "$work/$name.start")
  pid[$name-waiter]=$waiter
  [ -n "${restarting:-}" ] ||
    record "{\"figure\":\"P5 start to ready\",\"subject\":\"$name\",\"value\":$(sed -n 2p "$work/$name.start"),\"unit\":\"ms\"}"
}
stop() { # name: SIGTERM, and wait for it to drain and exit
  kill -TERM "${pid[$1]}"
  wait "${pid[$1-waiter]}" 2>/dev/null || true
  unset "pid[$1]" "pid[$1-waiter]"
}
rss() { # name: VmRSS and VmHWM in MiB
  awk '/^VmRSS|^VmHWM/ {printf "%s %.1f\n", $1, $2 / 1024}' "/proc/${pid[$1]}/status"
}
record_rss() { # name phase
  local now peak
  now=$(rss "$1" | awk '/VmRSS/ {print $2}')
  peak=$(rss "$1" | awk '/VmHWM/ {print $2}')
  record "{\"figure\":\"P4 RSS $2\",\"subject\":\"$1\",\"value\":$now,\"peak\":$peak,\"unit\":\"MiB\"}"
}
wrk_run() { # label url [script]: requests/s and p99 (ms) of wrk, as JSON fields
  local args=(-t2 "-c$connections" "-d${duration}s" --latency)
  [ -n "${3:-}" ] && args+=(-s "$3")
  wrk "${args[@]}" "$2" >"$work/wrk.out" 2>&1 || { cat "$work/wrk.out" >&2; exit 1; }
  python3 - "$work/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text).groups()
p99 = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f'"rps":{rps},"p99_ms":{p99},"non_2xx":{int(errors.group(1)) if errors else 0}')
PY
}

for name in products orders notifications; do
  psql "$WHARF_TEST_POSTGRES_URL" -qc "CREATE DATABASE wharf_bench_${run_id}_$name" >/dev/null
done
pg_base="${WHARF_TEST_POSTGRES_URL%/*}"

echo "bench: $build build, wrk -t2 -c$connections -d${duration}s" >&2

# P1: products on SQLite, 100 products.
products_port=$(free_port)
start products "$products_port" "DATABASE_URL=sqlite://$work/products.db?mode=rwc"
record_rss products idle
for i in $(seq 1 100); do
  curl -fsS -H 'content-type: application/json' -X POST "http://127.0.0.1:$products_port/api/products" \
    -d "{\"name\":\"bench $i\",\"price\":$i.25,\"description\":\"a product for the benchmark\",\"stock\":1000000}" >/dev/null
done
body=$(curl -fsS "http://127.0.0.1:$products_port/api/products/1")
ceiling_port=$(free_port)
"$bin/wharf-ceiling" "$body" "$ceiling_port" >/dev/null &
pid[ceiling]=$!
sleep 0.3
record "{\"figure\":\"P1 GET /api/products/{id}\",\"subject\":\"ceiling (bare hyper)\",$(wrk_run ceiling "http://127.0.0.1:$ceiling_port/api/products/1")}"
record "{\"figure\":\"P1 GET /api/products/{id}\",\"subject\":\"products\",$(wrk_run products "http://127.0.0.1:$products_port/api/products/1")}"
record "{\"figure\":\"P1 GET /api/products (100)\",\"subject\":\"products\",$(wrk_run list "http://127.0.0.1:$products_port/api/products")}"
record_rss products loaded

# P2: orders on PostgreSQL + RabbitMQ, notifications consuming (send delay 0).
orders_port=$(free_port) notifications_port=$(free_port)
bus=(BUS=rabbitmq "AMQP_URL=$WHARF_TEST_AMQP_URL" "BUS_QUEUE=$queue")
start notifications "$notifications_port" "DATABASE_URL=$pg_base/wharf_bench_${run_id}_notifications" "${bus[@]}" SEND_DELAY_EMAIL_MS=0
start orders "$orders_port" "DATABASE_URL=$pg_base/wharf_bench_${run_id}_orders" "${bus[@]}" "PRODUCTS_URL=http://127.0.0.1:$products_port"
record_rss orders idle
record_rss notifications idle
cat >"$work/order.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"productId":%d,"quantity":1,"customerEmail":"bench%d@example.com"}', counter % 100 + 1, counter)
  return wrk.format(nil, "/api/orders", nil, body)
end
LUA
cat >"$work/pgbench.sql" <<'SQL'
BEGIN;
INSERT INTO bench_orders (product_id, quantity, customer_email, created_at) VALUES (1, 1, 'bench@example.com', now());
COMMIT;
SQL
psql "$pg_base/wharf_bench_${run_id}_orders" -qc "CREATE TABLE bench_orders (id bigserial PRIMARY KEY, product_id bigint, quantity int, customer_email text, created_at timestamptz)"
pgbench_tps=$("$pg_bin/pgbench" -n -f "$work/pgbench.sql" -c "$connections" -j 2 -T "$duration" "$pg_base/wharf_bench_${run_id}_orders" 2>/dev/null \
  | awk '/^tps/ {print $3; exit}')
record "{\"figure\":\"P2 POST /api/orders\",\"subject\":\"ceiling (pgbench insert transaction)\",\"rps\":$pgbench_tps}"
record "{\"figure\":\"P2 POST /api/orders\",\"subject\":\"orders\",$(wrk_run orders "http://127.0.0.1:$orders_port" "$work/order.lua")}"
record_rss orders loaded
record_rss notifications loaded

# P3: order → email Sent at a fixed rate, then a burst drained.
targets=(--products "http://127.0.0.1:$products_port" --orders "http://127.0.0.1:$orders_port"
  --notifications "http://127.0.0.1:$notifications_port")
"$bin/wharf" load "${targets[@]}" --rate "$rate" --duration "${duration}s" --users 256 --mix orders=100 \
  --notify-wait 120s --json >"$work/p3.json" || true
"$bin/wharf" load "${targets[@]}" --requests "$burst" --users 64 --mix orders=100 --notify-wait 120s --json >"$work/burst.json" || true
python3 - "$work/p3.json" "$work/burst.json" "$rate" "$burst" >>"$results" <<'PY'
import json, sys
p3, burst = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rate, size = sys.argv[3], sys.argv[4]
def delay(report, key):
    return (report.get("order_to_notification_ms") or {}).get(key)
print(json.dumps({"figure": f"P3 order -> email, {rate}/s offered", "subject": "orders + notifications",
                  "p50_ms": delay(p3, "p50"), "p99_ms": delay(p3, "p99"), "orders": p3["orders_created"],
                  "missing": p3["notifications_missing"], "dropped": p3.get("dropped")}))
print(json.dumps({"figure": f"P3 burst of {size} orders", "subject": "orders + notifications",
                  "drained_s": round(burst["duration_secs"] + burst["notify_wait_secs"], 2),
                  "missing": burst["notifications_missing"]}))
PY

# P7: wharf load with trace export off, then on (every span, to a local OTLP/HTTP sink).
load_json() { # label: wharf load's default mix for the figure's duration, its report as JSON fields
  "$bin/wharf" load "${targets[@]}" --users "$connections" --duration "${duration}s" --notify-wait 120s \
    --json >"$work/$1.json" || { cat "$work/$1.json" >&2; echo "bench: wharf load ($1) failed" >&2; exit 1; }
  python3 - "$work/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p99 = (r["operations"]["order_create"]["latency_ms"] or {}).get("p99") or 0
print(f'"rps":{r["rps"]},"p99_ms":{p99},"non_2xx":{r["errors"]},"missing":{r["notifications_missing"]}')
PY
}
sink_port=$(free_port)
"$bin/wharf-ceiling" "" "$sink_port" >/dev/null &
pid[sink]=$!
restarting=yes
restart_all() { # extra VAR=value settings for all three (none: export off)
  stop products
  start products "$products_port" "DATABASE_URL=sqlite://$work/products.db?mode=rwc" "$@"
  stop notifications
  start notifications "$notifications_port" "DATABASE_URL=$pg_base/wharf_bench_${run_id}_notifications" "${bus[@]}" SEND_DELAY_EMAIL_MS=0 "$@"
  stop orders
  start orders "$orders_port" "DATABASE_URL=$pg_base/wharf_bench_${run_id}_orders" "${bus[@]}" "PRODUCTS_URL=http://127.0.0.1:$products_port" "$@"
}
# Off and on alternate, each after a fresh start, so neither gains from running second.
rounds=2
[ -n "$short" ] && rounds=1
for round in $(seq 1 "$rounds"); do
  restart_all
  record "{\"figure\":\"P7 wharf load, trace export\",\"subject\":\"baseline (export off), round $round\",$(load_json "off-$round")}"
  restart_all "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port" OTEL_TRACES_SAMPLER=always_on
  record "{\"figure\":\"P7 wharf load, trace export\",\"subject\":\"export on (OTLP/HTTP, every span), round $round\",$(load_json "on-$round")}"
done

# P6: stripped binaries.
for name in products orders notifications; do
  strip -o "$work/$name.stripped" "$bin/$name"
  record "{\"figure\":\"P6 stripped binary\",\"subject\":\"$name\",\"value\":$(python3 -c "import os, sys; print(round(os.path.getsize(sys.argv[1]) / 1048576, 1))" "$work/$name.stripped"),\"unit\":\"MiB\"}"
done

out=${WHARF_BENCH_OUT:-bench/results/latest.json}
[ -n "$short" ] && out=${WHARF_BENCH_OUT:-$work/short.json}
mkdir -p "$(dirname "$out")"
python3 - "$results" "$out" "$build" "$duration" "$connections" <<'PY'
import datetime, json, os, platform, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
out, build, duration, connections = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
machine = f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}"
report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "build": build,
          "machine": machine, "wrk": f"-t2 -c{connections} -d{duration}s", "figures": rows}
json.dump(report, open(out, "w"), indent=2)
def comparator(r):
    return r["subject"].startswith(("ceiling", "baseline"))
def key(r):  # a P7 export-on row is compared with the baseline of its own round
    return (r["figure"], r["subject"].rsplit("round ", 1)[1] if "round " in r["subject"] else None)
ceilings = {key(r): r for r in rows if comparator(r)}
print(f"\nwharf bench — {report['date']} — {build} — {machine}\n")
print(f"| figure | subject | measured | ceiling | ratio |\n|---|---|---|---|---|")
for r in rows:
    if comparator(r):
        continue
    if "rps" in r:
        measured = f"{r['rps']:,.0f} req/s, p99 {r['p99_ms']:.1f} ms" + (f", {r['non_2xx']} non-2xx" if r.get("non_2xx") else "")
        if r.get("missing"):
            measured += f", {r['missing']} orders not notified"
        ceiling = ceilings.get(key(r)) or ceilings.get((r["figure"], None))
        ceiling_text = f"{ceiling['rps']:,.0f} /s" if ceiling else "—"
        ratio = f"{r['rps'] / ceiling['rps']:.0%}" if ceiling and ceiling["rps"] else "—"
    elif "p50_ms" in r:
        measured = f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['orders']} orders, missing {r['missing']}"
        ceiling_text, ratio = "—", "—"
    elif "drained_s" in r:
        measured = f"drained in {r['drained_s']:.1f} s, missing {r['missing']}"
        ceiling_text, ratio = "—", "—"
    elif "peak" in r:
        measured = f"{r['value']} MiB (peak {r['peak']} MiB)"
        ceiling_text, ratio = "—", "—"
    else:
        measured = f"{r['value']} {r['unit']}"
        ceiling_text, ratio = "—", "—"
    print(f"| {r['figure']} | {r['subject']} | {measured} | {ceiling_text} | {ratio} |")
print(f"\nbench: JSON in {out}")
PY

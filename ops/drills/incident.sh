#!/usr/bin/env bash
# The incident drill: the guide's "kill OrderService" scenario, and a bad release of products rolled
# back, on the three services as local processes (PostgreSQL + RabbitMQ), watched by a real Prometheus
# evaluating docs/observability/alerts.yml.
#
#   ops/drills/incident.sh        RCA written to $WHARF_DRILL_OUT_DIR (default: a temporary directory,
#                                 printed at the end)
#
# Scenario 1, orders killed (SIGKILL) under a steady stream of orders (10/s):
#   timeline — failure, first failed request, WharfServiceDown firing in Prometheus, orders restarted
#   by the responder, first accepted order again, every accepted order's email Sent (backlog drained);
#   blast radius — products and notifications must keep answering (probes every 200 ms); no
#   notification lost — every order accepted before or after the failure gets its email.
# Scenario 2, a bad release of products (every API request answers 500, emulated with chaos error
#   injection) rolled back by starting the previous binary: errors during the bad release and during
#   the rollback, and the rollback's duration.
# The RCA (docs/incidents/RCA-template.md) is filled in with the measured timeline and impact.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/platform.sh
source scripts/lib/platform.sh
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
need_apt prometheus prometheus

platform_init wharf_drill_incident
out_dir=${WHARF_DRILL_OUT_DIR:-$(mktemp -d)}
mkdir -p "$out_dir"
say() { printf '\n--- incident drill: %s\n' "$*"; }
event() { echo "$(platform_now_ms) $*" >>"$work/timeline"; echo "incident drill: $*"; }

say "the platform, and Prometheus scraping it every second with the alert rules"
for name in products notifications orders; do platform_start "$name"; done
product=$(curl -fsS -H 'content-type: application/json' -X POST "$(platform_url products)/api/products" \
  -d '{"name":"incident drill","price":9.5,"stock":1000000}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

prom_port=$(platform_free_port)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/docs/observability/alerts.yml
scrape_configs:
  - job_name: productservice
    static_configs: [{targets: ["127.0.0.1:${platform_port[products]}"]}]
  - job_name: orderservice
    static_configs: [{targets: ["127.0.0.1:${platform_port[orders]}"]}]
  - job_name: notificationservice
    static_configs: [{targets: ["127.0.0.1:${platform_port[notifications]}"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
stop_prometheus() { kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null || true; }
platform_extra_cleanup=stop_prometheus
prom="http://127.0.0.1:$prom_port"
targets_up() {
  curl -fsS "$prom/api/v1/targets" 2>/dev/null | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
print(sum(t["health"] == "up" for t in targets))' 2>/dev/null || echo 0
}
for _ in $(seq 1 300); do [ "$(targets_up)" = 3 ] && break; sleep 0.1; done
[ "$(targets_up)" = 3 ] || platform_die "Prometheus does not see the three services up"
firing() { # alert job: prints 1 while the alert fires for that job
  curl -fsS "$prom/api/v1/alerts" 2>/dev/null | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
print(int(any(a["labels"].get("alertname") == sys.argv[1] and a["labels"].get("job") == sys.argv[2]
              and a["state"] == "firing" for a in alerts)))' "$1" "$2" 2>/dev/null || echo 0
}

# Orders at 10/s, each line "<ms> <status> <order id or ->"; probes every 200 ms, "<ms> <ok|fail>".
place_orders() {
  python3 - "$(platform_url orders)" "$product" "$work/stop" >"$work/placed.log" <<'PY'
import json, os, sys, time, urllib.error, urllib.request
url, product, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = 0
while not os.path.exists(stop):
    n += 1
    body = json.dumps({"productId": product, "quantity": 1, "customerEmail": f"drill{n}@example.com"}).encode()
    request = urllib.request.Request(url + "/api/orders", body, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            status, order = answer.status, json.load(answer)["id"]
    except urllib.error.HTTPError as err:
        status, order = err.code, "-"
    except Exception:
        status, order = 0, "-"
    print(int(time.time() * 1000), status, order, flush=True)
    time.sleep(0.1)
PY
}
probe() { # name url
  while [ ! -f "$work/stop" ]; do
    if curl -fsS -m 2 "$2" >/dev/null 2>&1; then echo "$(platform_now_ms) ok"; else echo "$(platform_now_ms) fail"; fi
    sleep 0.2
  done >"$work/probe-$1"
}

say "scenario 1: orders killed under load"
place_orders &
orders_driver=$!
probe products "$(platform_url products)/api/products/$product" &
probe_products=$!
probe notifications "$(platform_url notifications)/api/notifications?limit=1" &
probe_notifications=$!
sleep 5
event "failure: orders killed (SIGKILL)"
platform_stop orders KILL
alerted=""
for _ in $(seq 1 1800); do
  [ "$(firing WharfServiceDown orderservice)" = 1 ] && { alerted=yes; break; }
  sleep 0.1
done
[ -n "$alerted" ] || platform_die "WharfServiceDown did not fire for orderservice within 180 s"
event "alert: WharfServiceDown firing for orderservice (Prometheus)"
event "response: orders restarted"
platform_start orders
event "recovered: orders ready"
sleep 3
touch "$work/stop"
wait "$orders_driver" "$probe_products" "$probe_notifications"

# Every accepted order's email, Sent: the backlog (events queued while orders was down, or in its
# outbox when it died) is drained when the notifications for all of them are Sent.
drained=""
for _ in $(seq 1 600); do
  if python3 - "$work/placed.log" "$(platform_url notifications)" <<'PY'
import json, sys, urllib.request
accepted = {int(line.split()[2]) for line in open(sys.argv[1]) if line.split()[1] == "201"}
sent, offset = [], 0
while True:
    with urllib.request.urlopen(f"{sys.argv[2]}/api/notifications?limit=1000&offset={offset}", timeout=5) as answer:
        page = json.load(answer)
    sent += [n["orderId"] for n in page if n.get("status") == "Sent" and n.get("orderId") is not None]
    if len(page) < 1000:
        break
    offset += 1000
if len(sent) != len(set(sent)):
    print("incident drill: an order was notified twice", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if accepted <= set(sent) else 1)
PY
  then drained=yes; break
  elif [ $? -eq 2 ]; then platform_die "an order's email was sent twice"; fi
  sleep 0.2
done
[ -n "$drained" ] || platform_die "not every accepted order was notified within 120 s of recovery"
event "drained: every accepted order's email Sent"

say "scenario 2: a bad release of products, rolled back"
rm -f "$work/stop"
probe products-release "$(platform_url products)/api/products/$product" &
probe_release=$!
sleep 2
"$bin/wharf" chaos errors --url "$(platform_url products)" --rate 1 --for 10m >/dev/null
event "release: products answers 500 to every API request (the bad release)"
sleep 3
event "rollback: the previous products binary started"
platform_stop products
platform_start products
event "rolled back: products ready"
sleep 2
touch "$work/stop"
wait "$probe_release"

python3 - "$work" "$out_dir" docs/incidents/RCA-template.md "${WHARF_DRILL_OUT:-}" <<'PY'
import datetime, json, pathlib, sys
work, out_dir, template, out_json = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]

events = [(int(line.split(" ", 1)[0]), line.split(" ", 1)[1].strip()) for line in open(work / "timeline")]
at = {text.split(":")[0]: ms for ms, text in events}
orders = [line.split() for line in open(work / "placed.log")]
failure, alert, restarted, recovered = at["failure"], at["alert"], at["response"], at["recovered"]
failed = [int(ms) for ms, status, _ in orders if status != "201" and int(ms) >= failure]
first_failed = min(failed) if failed else None
first_ok_after = min((int(ms) for ms, status, _ in orders if status == "201" and int(ms) >= restarted), default=None)
accepted = sum(status == "201" for _, status, _ in orders)
def probe_failures(name, start=0, end=None):
    rows = [line.split() for line in open(work / f"probe-{name}")]
    return sum(state == "fail" for ms, state in rows if int(ms) >= start and (end is None or int(ms) <= end))
release, rollback, rolled_back = at["release"], at["rollback"], at["rolled back"]

def utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
rows = sorted(events + ([(first_failed, "first failed request (POST /api/orders)")] if first_failed else [])
              + ([(first_ok_after, "first order accepted again")] if first_ok_after else []))
figures = {
    "time_to_first_failed_request_seconds": (first_failed - failure) / 1000 if first_failed else None,
    "time_to_alert_seconds": (alert - failure) / 1000,
    "outage_seconds": ((first_ok_after or recovered) - failure) / 1000,
    "time_to_drain_seconds": (at["drained"] - failure) / 1000,
    "orders_attempted": len(orders),
    "orders_accepted": accepted,
    "orders_failed_during_outage": len(failed),
    "notifications_lost": 0,
    "products_probe_failures": probe_failures("products"),
    "notifications_probe_failures": probe_failures("notifications"),
    "bad_release_errors": probe_failures("products-release", release, rollback),
    "rollback_errors": probe_failures("products-release", rollback, rolled_back + 2000),
    "rollback_seconds": (rolled_back - rollback) / 1000,
}
print("\nincident drill: measured")
for key, value in figures.items():
    print(f"  {key:40} {value}")

fill = {
    "title": "OrderService down (incident drill)",
    "date": datetime.datetime.fromtimestamp(failure / 1000, datetime.timezone.utc).strftime("%Y-%m-%d"),
    "severity": "SEV-2 (orders unavailable; catalogue and notifications unaffected)",
    "affected": "orders (OrderService)",
    "detected_by": f"WharfServiceDown (Prometheus), {figures['time_to_alert_seconds']:.1f} s after the failure",
    "duration": f"{figures['outage_seconds']:.1f} s until orders accepted orders again; "
                f"{figures['time_to_drain_seconds']:.1f} s until every accepted order was notified",
    "status": "resolved",
    "summary": "The orders process was killed (SIGKILL) while clients placed 10 orders per second. Orders failed "
               "until it was restarted; products and notifications kept serving; no accepted order lost its email.",
    "impact": f"{len(failed)} of {len(orders)} order requests failed during the outage (connection refused); "
              f"{accepted} orders were accepted in all and every one was notified. Product reads: "
              f"{figures['products_probe_failures']} failed probes; notification reads: "
              f"{figures['notifications_probe_failures']} failed probes.",
    "timeline": "\n".join(f"| {utc(ms)} | {(ms - failure) / 1000:+.1f} | {text} |" for ms, text in rows),
    "root_cause": "Drill: the process was killed on purpose. In a real incident, state here why the process "
                  "died (its last log lines, `kubectl describe pod`: OOMKilled, a panic, a node lost) and why "
                  "no other replica served (a single replica locally; on EKS the HPA keeps at least two).",
    "detection": "Prometheus stopped scraping orders; WharfServiceDown fired after its 1-minute `for`. Clients "
                 "saw the failure within a request; the alert is the slowest link in detection.",
    "response": "The responder followed docs/runbooks/WharfServiceDown.md: confirmed with the failed probes, "
                "restarted orders, verified readiness and that the backlog drained.",
    "went_well": "- The blast radius stayed on orders: products and notifications answered throughout.\n"
                 "- Orders accepted before the crash were already in the outbox; their events were published "
                 "after the restart, and every email was sent exactly once.",
    "went_wrong": "- With one replica, a dead process is a full outage of order placement until a restart.\n"
                  "- The alert needs a minute: clients notice first.",
    "actions": "| Run at least two replicas of orders (EKS: HPA min 2, a PodDisruptionBudget) | platform | — |\n"
               "| Alert on the 5xx/connection-error rate seen by the ALB as well as on `up` | platform | — |",
    "evidence": f"Measured by ops/drills/incident.sh: {json.dumps(figures)}. Bad release of products rolled back "
                f"in {figures['rollback_seconds']:.1f} s: {figures['bad_release_errors']} failed probes during the "
                f"bad release, {figures['rollback_errors']} during the rollback.",
}
text = open(template).read()
for key, value in fill.items():
    text = text.replace("{{" + key + "}}", value)
assert "{{" not in text, "a placeholder of the RCA template was not filled"
rca = out_dir / f"RCA-{datetime.datetime.fromtimestamp(failure / 1000, datetime.timezone.utc):%Y%m%dT%H%M%SZ}-orders-down.md"
rca.write_text(text)
if out_json:
    json.dump(figures, open(out_json, "w"), indent=2)
print(f"\nincident drill: RCA written to {rca}\n")
print(text)
ok = (figures["products_probe_failures"] == 0 and figures["notifications_probe_failures"] == 0
      and accepted > 0 and figures["bad_release_errors"] > 0)
print("incident drill: " + ("passed" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY

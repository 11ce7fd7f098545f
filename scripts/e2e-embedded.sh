#!/usr/bin/env bash
# Tier 3 (embedded): `wharf up` as a real process on free ports, then `wharf smoke` against it.
# The platform is stopped by PID whatever happens; its data lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
wharf="$(wharf_binaries)/wharf"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
work=$(mktemp -d)
products_port=$(free_port) orders_port=$(free_port) notifications_port=$(free_port)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$work" && exec env PRODUCTS_PORT="$products_port" ORDERS_PORT="$orders_port" NOTIFICATIONS_PORT="$notifications_port" \
  SEND_DELAY_EMAIL_MS=200-400 LOG_FORMAT=json "$wharf" up >"$work/up.log" 2>&1) &
pid=$!

ready=""
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$orders_port/health/ready" >/dev/null 2>&1; then ready=yes; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "e2e: wharf up did not become ready" >&2
  tail -n 50 "$work/up.log" >&2
  exit 1
fi

"$wharf" smoke --products "http://127.0.0.1:$products_port" --orders "http://127.0.0.1:$orders_port" \
  --notifications "http://127.0.0.1:$notifications_port" --wait 20

kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=""
if [ "$status" -ne 0 ]; then
  echo "e2e: wharf up exited $status after Ctrl-C (expected 0)" >&2
  exit 1
fi
echo "e2e: wharf up + smoke passed; clean shutdown"

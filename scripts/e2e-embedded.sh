#!/usr/bin/env bash
# Tier 3 (embedded): `wharf up` as a real process on free ports, then
#   1. `wharf smoke` against it, and Ctrl-C must end it cleanly (exit 0);
#   2. with every default (the durable SQLite bus, 2–3 s mock email delays), the default
#      `wharf load` must pass: zero errors and every order placed notified (missing: 0).
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

targets() { echo --products "http://127.0.0.1:$products_port" --orders "http://127.0.0.1:$orders_port" \
  --notifications "http://127.0.0.1:$notifications_port"; }

up() { # VAR=value…: starts `wharf up` in a fresh data directory and waits until orders is ready
  rm -rf "$work/data" && mkdir -p "$work/data"
  (cd "$work/data" && exec env PRODUCTS_PORT="$products_port" ORDERS_PORT="$orders_port" \
    NOTIFICATIONS_PORT="$notifications_port" LOG_FORMAT=json "$@" "$wharf" up >"$work/up.log" 2>&1) &
  pid=$!
  local ready="" _
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
}

down() { # Ctrl-C, which must end wharf up with exit 0
  kill -INT "$pid"
  local status=0
  wait "$pid" || status=$?
  pid=""
  if [ "$status" -ne 0 ]; then
    echo "e2e: wharf up exited $status after Ctrl-C (expected 0)" >&2
    tail -n 50 "$work/up.log" >&2
    exit 1
  fi
}

# shellcheck disable=SC2046 # targets prints separate words on purpose
{
  up SEND_DELAY_EMAIL_MS=200-400
  "$wharf" smoke $(targets) --wait 20
  down
  echo "e2e: wharf up + smoke passed; clean shutdown"

  up
  "$wharf" load $(targets) || { tail -n 30 "$work/up.log" >&2; echo "e2e: the default wharf load failed against the default wharf up" >&2; exit 1; }
  down
  echo "e2e: the default wharf load passed against the default wharf up (durable bus, 2-3 s email delays)"
}

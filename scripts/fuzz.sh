#!/usr/bin/env bash
# The fuzz tier: schemathesis against each service's own /openapi.json, with the real binaries
# over PostgreSQL (where a stray NUL used to be a 500), every check on (server errors, response
# schema, status codes, content types, headers), the stateful phase included, within a bounded
# budget. Any finding fails the run.
#
#   eval "$(scripts/dev-services.sh up)"   # PostgreSQL (WHARF_TEST_POSTGRES_URL)
#   scripts/fuzz.sh    # FUZZ_MAX_EXAMPLES (default 50) per operation and phase, FUZZ_MAX_SECS (120) per service
#
# Prints one line per service with the number of test cases schemathesis ran.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh

max_examples="${FUZZ_MAX_EXAMPLES:-50}"
max_secs="${FUZZ_MAX_SECS:-120}"
: "${WHARF_TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/postgres}"
venv=$(wharf_venv schemathesis-4.32 3.12 "schemathesis==4.32.5")
bin=$(wharf_binaries)
work=$(mktemp -d)
declare -A pid port

cleanup() {
  local status=$?
  for name in orders notifications products; do
    local p=${pid[$name]:-}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "=== last lines of $(basename "$log")" >&2
      tail -n 20 "$log" >&2
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
for name in products orders notifications; do port[$name]=$(free_port); done
url() { echo "http://127.0.0.1:${port[$1]}"; }

# A fresh database per service and run: findings must not depend on what an earlier run left.
pg_base="${WHARF_TEST_POSTGRES_URL%/*}"
for name in products orders notifications; do
  psql "$WHARF_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS wharf_fuzz_$name WITH (FORCE)" -c "CREATE DATABASE wharf_fuzz_$name"
done

start() { # name: starts one service and waits until it is ready
  local name=$1
  (exec env HOST=127.0.0.1 "PORT=${port[$name]}" "DATABASE_URL=$pg_base/wharf_fuzz_$name" BUS=memory \
    LOG_FORMAT=json RUST_LOG=warn SEND_DELAY_EMAIL_MS=0 SEND_DELAY_SMS_MS=0 SEED_DEMO_DATA=true \
    "PRODUCTS_URL=$(url products)" PRODUCTS_TIMEOUT_MS=1000 PRODUCTS_RETRIES=1 \
    "$bin/$name" >>"$work/$name.log" 2>&1) &
  pid[$name]=$!
  for _ in $(seq 1 300); do
    curl -fsS "$(url "$name")/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "${pid[$name]}" 2>/dev/null || { echo "fuzz: $name exited during start-up" >&2; exit 1; }
    sleep 0.1
  done
  echo "fuzz: $name not ready within 30 s" >&2
  exit 1
}
for name in products notifications orders; do start "$name"; done

failed=""
for name in products orders notifications; do
  report="$work/$name.txt"
  if "$venv/st" run "$(url "$name")/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --max-time "$max_secs" \
    --request-timeout 10 \
    --seed 1 \
    --no-color >"$report" 2>&1; then
    outcome=passed
  else
    outcome=FAILED
    failed="$failed $name"
    cat "$report" >&2
  fi
  cases=$(grep -Eo '[0-9]+ (generated|test cases)' "$report" | head -n 1 || true)
  echo "fuzz: $name: $outcome (${cases:-see report})"
  grep -E "^(Test cases|Summary|API Operations|Test Phases|  (Examples|Coverage|Fuzzing|Stateful))" -A0 "$report" | sed "s/^/fuzz: $name: /" || true
done

# No 5xx may reach a client even when schemathesis would not flag it (e.g. an undocumented path).
for name in products orders notifications; do
  if grep -q '"status":5[0-9][0-9]' "$work/$name.log"; then
    echo "fuzz: $name logged a 5xx answer" >&2
    grep '"status":5[0-9][0-9]' "$work/$name.log" | head -n 5 >&2
    failed="$failed $name"
  fi
done
[ -z "$failed" ] || { echo "fuzz: findings in:$failed" >&2; exit 1; }
echo "fuzz: no 5xx and no schema violation in products, orders and notifications"

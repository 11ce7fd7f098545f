#!/usr/bin/env bash
# The fuzz tier: schemathesis against each service's own /openapi.json, with the real binaries
# over PostgreSQL (where a stray NUL used to be a 500) and AUTH_MODE=jwt against a Cognito pool on
# moto, as deployed: every check on (server errors, response schema, status codes, content types,
# headers, auth ignored), the stateful phase included, within a bounded budget, with an admin's
# token. Any finding fails the run. The services start through scripts/lib/platform.sh, which finds
# or starts PostgreSQL and moto (scripts/dev-services.sh); either unreachable fails the run.
#
#   scripts/fuzz.sh    # FUZZ_MAX_EXAMPLES (default 50) per operation and phase, FUZZ_MAX_SECS (60) per service
#
# Prints one line per service with the number of test cases schemathesis ran.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
# shellcheck source=scripts/lib/platform.sh
source scripts/lib/platform.sh
# shellcheck source=scripts/lib/cognito.sh
source scripts/lib/cognito.sh

max_examples="${FUZZ_MAX_EXAMPLES:-50}"
max_secs="${FUZZ_MAX_SECS:-60}"
venv=$(wharf_venv schemathesis-4.32 3.12 "schemathesis==4.32.5")
# A fresh database per service and run: findings must not depend on what an earlier run left.
platform_init wharf_fuzz
cognito_pool
url() { platform_url "$1"; }
start() { # name: the documented API only (no chaos, no admin), the memory bus, a demo catalogue
  platform_start "$1" BUS=memory CHAOS_ENABLED=false ADMIN_ENABLED=false RUST_LOG=warn \
    SEND_DELAY_EMAIL_MS=0 SEND_DELAY_SMS_MS=0 SEED_DEMO_DATA=true "${cognito_auth_env[@]}"
}
for name in products notifications orders; do start "$name"; done

failed=""
for name in products orders notifications; do
  report="$work/$name.txt"
  settings=() # a service's own schemathesis settings, if it has any
  [ -f "scripts/fuzz/$name.toml" ] && settings=(--config-file "scripts/fuzz/$name.toml")
  if "$venv/st" "${settings[@]}" run "$(url "$name")/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $cognito_admin_token" \
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
  # The report's operation, phase and case sections: each heading with its indented lines.
  awk -v name="$name" '
    /^(API Operations|Test Phases|Test cases):/ { keep = 1; print "fuzz: " name ": " $0; next }
    keep && /^[[:space:]]+[^[:space:]]/ { print "fuzz: " name ": " $0; next }
    { keep = 0 }' "$report"
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

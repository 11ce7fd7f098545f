#!/usr/bin/env bash
# The bus conformance suite's SQS backend against LocalStack on the host (the same version as the
# compose file's image), as it runs against moto in tier 2: every SQS body of bus/tests/conformance.rs.
# Starts LocalStack if it does not run (scripts/localstack-host.sh) and stops it if it did.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/localstack-host.sh up)"
cleanup() { if [ "$WHARF_LOCALSTACK_STARTED" = yes ]; then scripts/localstack-host.sh down; fi; }
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
WHARF_TEST_SQS_ENDPOINT="$WHARF_LOCALSTACK_ENDPOINT" \
  cargo test --workspace --all-features --test conformance -- sqs::

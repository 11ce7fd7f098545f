#!/usr/bin/env bash
# Observability as code: the Prometheus alert rules (promtool check + unit tests), the Grafana
# and CloudWatch dashboards and the runbooks (their agreement with each other, with the
# Terraform module and with docs/deployment.toml), and every series they read against a live
# /metrics of the services after `wharf smoke`. Installs what it needs (promtool from Debian's
# prometheus package, a pytest venv); quick when warm. Any failure, including a tool that cannot
# be installed, exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

need_apt prometheus promtool
echo "promtool: $(promtool --version 2>&1 | head -n 1)"

echo "promtool check rules"
promtool check rules docs/observability/alerts.yml
echo "promtool test rules"
(cd docs/observability/tests && promtool test rules alerts.test.yml)

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
venv=$(wharf_venv observability 3.11 'pytest==8.*' 'PyYAML==6.*' 'prometheus-client==0.26.*')

echo "building the services for the live /metrics check"
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
WHARF_BIN_DIR="$(wharf_binaries)"
export WHARF_BIN_DIR

echo "dashboards, alerts, runbooks and live metrics"
"$venv/python" -m pytest -q -p no:cacheprovider docs/observability/tests "$@"
echo "observability checks passed"

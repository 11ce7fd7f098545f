#!/usr/bin/env bash
# Tier 4: offline checks of everything that is not Rust — shell scripts now; Kubernetes
# manifests, Terraform, Dockerfiles and workflows as they are added. Installs the checkers it
# needs (idempotent, quick when present).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

need_apt shellcheck shellcheck
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
echo "shellcheck: ${#scripts[@]} scripts"
shellcheck --severity=style "${scripts[@]}"

if command -v terraform >/dev/null && git ls-files --error-unmatch 'terraform/*.tf' >/dev/null 2>&1; then
  echo "terraform fmt"
  terraform fmt -check -recursive terraform
fi
echo "static checks passed"

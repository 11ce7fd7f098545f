#!/usr/bin/env bash
# Tier 4: offline checks of everything that is not Rust — shell scripts now; Kubernetes
# manifests, Terraform, Dockerfiles and workflows as they are added. Installs the checkers it
# needs (idempotent, quick when present).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt() { # package command
  command -v "$2" >/dev/null && return
  echo "static-checks: installing $1" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  fi
}

need_apt shellcheck shellcheck
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
echo "shellcheck: ${#scripts[@]} scripts"
shellcheck --severity=style "${scripts[@]}"

if command -v terraform >/dev/null && git ls-files --error-unmatch 'terraform/*.tf' >/dev/null 2>&1; then
  echo "terraform fmt"
  terraform fmt -check -recursive terraform
fi
echo "static checks passed"

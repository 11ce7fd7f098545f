#!/usr/bin/env bash
# The Kubernetes manifests (k8s/): every overlay rendered with kubectl's kustomize, yamllint, the
# core objects validated strictly against the Kubernetes schemas, the Argo Rollouts objects and
# every name and number checked against docs/deployment.toml, checkov on the rendered output
# (waivers with reasons in k8s/checkov*.yaml and
# checkov.io/skip annotations), the canary analysis evaluated by a real Prometheus
# against a healthy and a broken products canary, and the rendered eks-dev containers run as
# processes against PostgreSQL and moto (Secrets Manager, SQS, STS, Cognito), probed as the kubelet
# would and reached through the Ingress rules.
#
#   scripts/check-k8s.sh            everything (builds the four binaries it runs)
#   scripts/check-k8s.sh -k canary  only the pytest tests matching an expression
#
# Installs what it needs (apt: prometheus, yamllint; venvs under ~/.cache/wharf/venvs); a missing
# or unreachable dependency is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091  # scripts/lib/venv.sh is checked on its own
source scripts/lib/venv.sh

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

command -v kubectl >/dev/null || { echo "check-k8s: kubectl is required (its built-in kustomize renders the overlays)" >&2; exit 1; }
need_apt prometheus prometheus
need_apt yamllint yamllint

tests_bin=$(wharf_venv k8s-tests 3.11 'kubernetes-validate==1.37.0' 'pytest>=8,<9' 'pyyaml>=6,<7' 'boto3>=1.35,<2')
checkov_bin=$(wharf_venv k8s-checkov 3.11 checkov)

echo "check-k8s: yamllint k8s/"
yamllint --strict -c k8s/.yamllint.yaml k8s

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
mapfile -t overlays < <(find k8s/overlays -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
for overlay in "${overlays[@]}"; do
  kubectl kustomize "k8s/overlays/$overlay" >"$rendered/$overlay.yaml"
  echo "check-k8s: checkov on $overlay ($(grep -c '^kind:' "$rendered/$overlay.yaml") objects)"
  config=k8s/checkov.yaml
  [ "$overlay" = local ] && config=k8s/checkov-local.yaml
  "$checkov_bin/checkov" --config-file "$config" --skip-download -f "$rendered/$overlay.yaml"
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}"
echo "check-k8s: building products, orders, notifications and wharf"
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
WHARF_BIN_DIR="$(wharf_binaries)"
export WHARF_BIN_DIR

eval "$(scripts/dev-services.sh up)"
"$tests_bin/pytest" -q -p no:cacheprovider --durations=5 k8s/tests "$@"

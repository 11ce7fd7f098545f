#!/usr/bin/env bash
# Deploys the services to a cluster through a kustomize overlay, proves the release with
# `wharf smoke` through the ingress, and rolls back what it changed when anything fails.
#
#   scripts/deploy.sh --overlay k8s/overlays/eks-dev [--image SERVICE=IMAGE]... [--base-url URL]
#                     [--timeout SECONDS] [--wharf PATH]
#
#   --image products=123.dkr.ecr.us-east-1.amazonaws.com/productservice:3f2a...   (repeatable)
#       the image to release for a service; a service without one keeps the image it runs now
#       (a service that does not run yet must be given one)
#   --base-url   where the ingress answers; default http://<the ingress's load balancer host>
#   --timeout    seconds for each rollout to finish and for the ingress to get a host (600)
#   --wharf      the wharf binary (default: wharf on PATH, else target/debug/wharf)
#
# Steps: pin every workload's image in the overlay (`kustomize edit set image`), `kubectl apply -k`,
# wait for each changed workload (`kubectl rollout status` for Deployments, `kubectl argo rollouts
# status` for the products canary), then `wharf smoke --base-url`. When a rollout or the smoke
# fails, every workload whose image changed is rolled back (`kubectl argo rollouts abort` + `undo`
# for the Rollout, `kubectl rollout undo` for Deployments), the rollback is waited for, and the
# script exits 1. Names (namespace, workloads, which one is a Rollout, the ingress) come from
# docs/deployment.toml. Exit codes: 0 released, 1 failed (rolled back), 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'deploy: %s\n' "$*" >&2; }
usage() {
  log "$*"
  log "usage: scripts/deploy.sh --overlay DIR [--image SERVICE=IMAGE]... [--base-url URL] [--timeout SECONDS] [--wharf PATH]"
  exit 2
}

overlay="" base_url="" timeout=600 wharf=""
declare -A wanted=()
while [ $# -gt 0 ]; do
  case "$1" in
    --overlay) overlay="${2:-}"; shift 2 ;;
    --image)
      [[ "${2:-}" == *=?* ]] || usage "--image takes SERVICE=IMAGE, got '${2:-}'"
      wanted["${2%%=*}"]="${2#*=}"
      shift 2
      ;;
    --base-url) base_url="${2:-}"; shift 2 ;;
    --timeout) timeout="${2:-}"; shift 2 ;;
    --wharf) wharf="${2:-}"; shift 2 ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
[ -n "$overlay" ] || usage "--overlay is required"
[ -f "$overlay/kustomization.yaml" ] || usage "$overlay has no kustomization.yaml"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || usage "--timeout must be a positive number of seconds, got '$timeout'"
if [ -z "$wharf" ]; then
  wharf=$(command -v wharf || echo target/debug/wharf)
fi
[ -x "$wharf" ] || usage "no wharf binary at $wharf (cargo build -p wharf, or --wharf PATH)"

# service workload kind, one line each; then the namespace and the ingress.
mapfile -t names < <(python3 - <<'PY'
import sys
sys.path.insert(0, "scripts")
from deployment_names import NAMES, SERVICES
print(NAMES["namespace"], NAMES["ingress"]["name"])
for service, spec in SERVICES.items():
    kind = "rollout" if service == NAMES["canary"]["service"] else "deployment"
    print(service, spec["workload"], kind)
PY
)
read -r namespace ingress <<<"${names[0]}"
services=()
declare -A workload=() kind=()
for line in "${names[@]:1}"; do
  read -r service name k <<<"$line"
  services+=("$service")
  workload[$service]=$name
  kind[$service]=$k
done
for service in "${!wanted[@]}"; do
  [ -n "${workload[$service]:-}" ] || usage "--image for unknown service '$service' (known: ${services[*]})"
done

running_image() { # service -> the image its workload runs now, or nothing
  kubectl get "${kind[$1]}" "${workload[$1]}" -n "$namespace" \
    -o jsonpath='{.spec.template.spec.containers[0].image}' 2>/dev/null || true
}

wait_for() { # service
  local w=${workload[$1]}
  if [ "${kind[$1]}" = rollout ]; then
    kubectl argo rollouts status "$w" -n "$namespace" --timeout "${timeout}s"
  else
    kubectl rollout status "deployment/$w" -n "$namespace" --timeout "${timeout}s"
  fi
}

changed=()
roll_back() {
  local service w failed=""
  if [ ${#changed[@]} -eq 0 ]; then
    log "no workload changed image: nothing to roll back"
    return 0
  fi
  for service in "${changed[@]}"; do
    w=${workload[$service]}
    log "rolling back $w"
    if [ "${kind[$service]}" = rollout ]; then
      kubectl argo rollouts abort "$w" -n "$namespace" || failed+=" $w(abort)"
      kubectl argo rollouts undo "$w" -n "$namespace" || failed+=" $w(undo)"
    else
      kubectl rollout undo "deployment/$w" -n "$namespace" || failed+=" $w(undo)"
    fi
  done
  for service in "${changed[@]}"; do
    wait_for "$service" || failed+=" ${workload[$service]}(status)"
  done
  if [ -n "$failed" ]; then
    log "ROLLBACK INCOMPLETE:$failed — the cluster needs a person"
    return 1
  fi
  log "rolled back: ${changed[*]}"
}

fail() {
  log "FAILED: $*"
  roll_back || true
  exit 1
}

# 1. Every workload's image pinned in the overlay: the ones released, and the running ones kept.
declare -A before=()
for service in "${services[@]}"; do
  before[$service]=$(running_image "$service")
  image=${wanted[$service]:-${before[$service]}}
  [ -n "$image" ] || usage "${workload[$service]} does not run in $namespace yet: give it an --image"
  if [ "$image" != "${before[$service]}" ]; then changed+=("$service"); fi
  log "${workload[$service]}: ${before[$service]:-(none)} -> $image"
  (cd "$overlay" && kustomize edit set image "${workload[$service]}=$image")
done

# 2. Apply. Nothing has changed in the cluster if this fails, so there is nothing to undo.
kubectl apply -k "$overlay" || { log "FAILED: kubectl apply -k $overlay"; exit 1; }

# 3. Each changed workload finishes its rollout (the canary runs its steps and analysis).
for service in "${changed[@]}"; do
  wait_for "$service" || fail "${workload[$service]} did not roll out"
done

# 4. The release answers through the ingress.
if [ -z "$base_url" ]; then
  host=""
  for ((i = 0; i < timeout / 5 + 1; i++)); do
    host=$(kubectl get ingress "$ingress" -n "$namespace" -o jsonpath='{.status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true)
    [ -n "$host" ] && break
    sleep 5
  done
  [ -n "$host" ] || fail "ingress $ingress has no load balancer host after ${timeout}s"
  base_url="http://$host"
fi
log "wharf smoke --base-url $base_url"
"$wharf" smoke --base-url "$base_url" || fail "wharf smoke through $base_url"
log "released: ${changed[*]:-(no image changed)}"

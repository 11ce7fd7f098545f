#!/usr/bin/env bash
# Applies wharf's branch protection to the long-lived branches through the GitHub API (gh api):
#
#   scripts/branch-protection.sh OWNER/REPO            protect main and develop
#   scripts/branch-protection.sh --dry-run OWNER/REPO  print the requests instead
#
# Each protected branch (docs/deployment.toml [github].branches) requires: a pull request with one
# approving review, CODEOWNERS' review, stale approvals dismissed on new pushes and the last push
# approved by someone else; the `ci-passed` check ([github].required_check) passing on a branch
# up to date with its base; resolved conversations; linear history; no force pushes or deletion;
# administrators included. Needs `gh auth login` with admin rights on the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=""
if [ "${1:-}" = --dry-run ]; then dry_run=yes; shift; fi
repo="${1:-}"
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || {
  echo "usage: scripts/branch-protection.sh [--dry-run] OWNER/REPO" >&2
  exit 2
}

read -r check branches < <(python3 - <<'PY'
import sys
sys.path.insert(0, "scripts")
from deployment_names import NAMES
print(NAMES["github"]["required_check"], " ".join(NAMES["github"]["branches"]))
PY
)

payload=$(
  CHECK="$check" python3 - <<'PY'
import json, os
print(json.dumps({
    "required_status_checks": {"strict": True, "checks": [{"context": os.environ["CHECK"]}]},
    "enforce_admins": True,
    "required_pull_request_reviews": {
        "required_approving_review_count": 1,
        "require_code_owner_reviews": True,
        "dismiss_stale_reviews": True,
        "require_last_push_approval": True,
    },
    "restrictions": None,
    "required_linear_history": True,
    "allow_force_pushes": False,
    "allow_deletions": False,
    "required_conversation_resolution": True,
}, indent=2))
PY
)

for branch in $branches; do
  if [ -n "$dry_run" ]; then
    echo "PUT repos/$repo/branches/$branch/protection"
    echo "$payload"
  else
    echo "protecting $repo:$branch (required check: $check)" >&2
    echo "$payload" | gh api --method PUT -H "Accept: application/vnd.github+json" \
      "repos/$repo/branches/$branch/protection" --input - >/dev/null
  fi
done

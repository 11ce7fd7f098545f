#!/usr/bin/env bash
# Tier 4: the Terraform tree checked offline (providers and modules are not downloaded here):
#   terraform fmt → the HCL structure tests (python-hcl2 + pytest, including the database
#   bootstrap script run against PostgreSQL) → checkov with zero unwaived failures.
# Installs what it needs (idempotent, quick when present); any failure, or an unreachable
# PostgreSQL (WHARF_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres), fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091 # sourced by path from the repository root
source scripts/lib/venv.sh

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

command -v terraform >/dev/null || { echo "check-terraform: terraform is not installed" >&2; exit 1; }
need_apt postgresql-client psql

echo "terraform fmt -check -recursive terraform"
terraform fmt -check -recursive -diff terraform

hcl_bin=$(wharf_venv terraform-hcl 3.11 python-hcl2==8.1.4 pytest==9.0.2)
echo "terraform structure tests (python-hcl2)"
"$hcl_bin/python" -m pytest -q -p no:cacheprovider terraform/tests

checkov_bin=$(wharf_venv terraform-checkov 3.12 checkov==3.3.30)
echo "checkov (terraform; registry modules are not downloaded, their wrappers are checked)"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
"$checkov_bin/checkov" --directory terraform --framework terraform --skip-download --compact \
  --output json >"$report" 2>/dev/null || status=$?
"$hcl_bin/python" - "$report" "$status" <<'PY'
import json, sys
path, status = sys.argv[1], int(sys.argv[2])
try:
    report = json.load(open(path))
except ValueError:
    sys.exit(f"checkov produced no report (exit {status})")
reports = report if isinstance(report, list) else [report]
passed = sum(r["summary"]["passed"] for r in reports)
parsing_errors = sum(r["summary"]["parsing_errors"] for r in reports)
failed = [c for r in reports for c in r["results"].get("failed_checks", [])]
skipped = [c for r in reports for c in r["results"].get("skipped_checks", [])]
if parsing_errors:
    sys.exit(f"checkov could not parse {parsing_errors} file(s)")
print(f"checkov: {passed} passed, {len(failed)} failed, {len(skipped)} waived in place")
waivers = {}
for check in skipped:
    reason = (check.get("check_result") or {}).get("suppress_comment") or "no reason given"
    waivers.setdefault((check["check_id"], reason), set()).add(check["file_path"])
for (check_id, reason), files in sorted(waivers.items()):
    print(f"  waived {check_id} in {', '.join(sorted(files))}: {reason}")
    if reason == "no reason given":
        sys.exit(f"checkov: waiver of {check_id} without a reason")
for check in failed:
    print(f"  FAILED {check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range'][0]}): {check['check_name']}")
if failed or status not in (0, 1):
    sys.exit(1)
PY
echo "terraform checks passed"

"""scripts/branch-protection.sh: the requests it sends to the GitHub API, through a recording `gh`."""

import json
import os
import subprocess

from conftest import REPO
from deployment_names import NAMES

SCRIPT = REPO / "scripts" / "branch-protection.sh"
FAKE_GH = """#!/usr/bin/env bash
{ echo "gh $*"; cat; echo; } >>"$GH_CALLS"
"""


def test_every_long_lived_branch_requires_a_reviewed_pull_request_and_the_ci_check(tmp_path):
    (tmp_path / "gh").write_text(FAKE_GH)
    (tmp_path / "gh").chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "GH_CALLS": str(calls)}
    done = subprocess.run(["bash", str(SCRIPT), "wharf-org/wharf"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    blocks = [b for b in calls.read_text().split("gh api ")[1:]]
    assert len(blocks) == len(NAMES["github"]["branches"])
    for branch, block in zip(NAMES["github"]["branches"], blocks):
        head, _, body = block.partition("\n")
        assert f"repos/wharf-org/wharf/branches/{branch}/protection" in head
        assert "--method PUT" in head and "--input -" in head
        rules = json.loads(body)
        assert rules["required_status_checks"] == {"strict": True, "checks": [{"context": NAMES["github"]["required_check"]}]}
        reviews = rules["required_pull_request_reviews"]
        assert reviews["required_approving_review_count"] >= 1
        assert reviews["require_code_owner_reviews"] and reviews["dismiss_stale_reviews"]
        assert rules["allow_force_pushes"] is False and rules["allow_deletions"] is False
        assert rules["enforce_admins"] is True


def test_dry_run_sends_nothing_and_a_bad_repository_is_refused(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}  # no gh at all
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "wharf-org/wharf"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("PUT repos/wharf-org/wharf/branches/") == len(NAMES["github"]["branches"])
    bad = subprocess.run(["bash", str(SCRIPT), "not a repo"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr

"""The rules every workflow keeps: AWS only over OIDC, pinned actions, least privilege, and the
names of docs/deployment.toml.

The AWS rule is a function (`aws_credential_problems`) so that it is tested on workflows that
break it as well as run on the real ones.
"""

import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib

import pytest
import yaml

from conftest import REPO, WORKFLOWS, load_workflow
from deployment_names import NAMES, SERVICES

GITHUB = NAMES["github"]
OIDC_ACTION = "aws-actions/configure-aws-credentials"
STATIC_KEY_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
STATIC_KEY_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
# Commands that reach AWS (or a cluster or a state backend in it) and so need the OIDC session.
AWS_COMMAND = re.compile(r"(^|[\s;|&(])(aws\s+[a-z]|kubectl\s|terraform\s+(-chdir=\S+\s+)?(init|plan|apply)\b(?!.*-backend=false)|docker\s+push\b|scripts/deploy\.sh)", re.M)
ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+?)@([0-9a-f]{40})\s+#\s+v\d+\.\d+\.\d+\s*$")
PINNED_TO_MAJOR = re.compile(r"@[0-9a-f]{40} # (v\d+)\.[\d.]+$", re.M)


def steps_of(job: dict) -> list[dict]:
    return job.get("steps", [])


def aws_credential_problems(workflow: dict, text: str) -> list[str]:
    """Everything in one workflow that gives AWS access other than through OIDC."""
    problems = []
    if re.search(r"secrets\.AWS_", text):
        problems.append("a secrets.AWS_* reference: AWS access comes from OIDC, not stored keys")
    if ACCESS_KEY_ID.search(text):
        problems.append("an AWS access key id in the text")
    if re.search(r"aws\s+configure\s+set\s+aws_(access_key_id|secret_access_key|session_token)", text):
        problems.append("aws configure set with a static key")
    for where, env in [("workflow", workflow.get("env", {}))] + [
        (f"job {name}", job.get("env", {})) for name, job in workflow.get("jobs", {}).items()
    ]:
        for key in STATIC_KEY_ENV & set(env or {}):
            problems.append(f"{where} sets {key}")
    top = workflow.get("permissions", {})
    if top == "write-all" or (isinstance(top, dict) and top.get("id-token") == "write"):
        problems.append("id-token: write for the whole workflow; grant it to the jobs that assume a role")
    for name, job in workflow.get("jobs", {}).items():
        oidc_seen = False
        for index, step in enumerate(steps_of(job)):
            label = f"job {name} step {step.get('name', index)}"
            for key in STATIC_KEY_ENV & set(step.get("env", {}) or {}):
                problems.append(f"{label} sets {key}")
            uses = step.get("uses", "")
            inputs = step.get("with", {}) or {}
            if uses.startswith(OIDC_ACTION + "@"):
                for key in STATIC_KEY_INPUTS & set(inputs):
                    problems.append(f"{label} passes {key}")
                role = str(inputs.get("role-to-assume", ""))
                if not role:
                    problems.append(f"{label} has no role-to-assume")
                elif "secrets." in role:
                    problems.append(f"{label} takes its role from a secret; it is a vars.* value")
                perms = job.get("permissions", {})
                if not isinstance(perms, dict) or perms.get("id-token") != "write":
                    problems.append(f"job {name} assumes a role without permissions id-token: write")
                oidc_seen = True
            elif any(key in STATIC_KEY_INPUTS for key in inputs):
                problems.append(f"{label} passes a static AWS key to {uses}")
            run = step.get("run", "")
            if run and AWS_COMMAND.search(run) and not oidc_seen:
                problems.append(f"{label} reaches AWS before any {OIDC_ACTION} step")
    return problems


def workflow_texts():
    return [(p.name, p.read_text()) for p in sorted(WORKFLOWS.glob("*.yml"))]


# --- AWS over OIDC only ------------------------------------------------------------------------


def test_no_workflow_holds_static_aws_credentials_and_every_aws_step_uses_oidc(workflows):
    for name, text in workflow_texts():
        assert aws_credential_problems(workflows[name], text) == [], name


def test_the_workflows_that_reach_aws_all_assume_a_role(workflows):
    assuming = {
        name
        for name, wf in workflows.items()
        for job in wf["jobs"].values()
        for step in steps_of(job)
        if step.get("uses", "").startswith(OIDC_ACTION)
    }
    assert assuming == {"images.yml", "deploy.yml", "terraform.yml"}


def test_roles_come_from_the_named_variables(workflows):
    roles = {
        step["with"]["role-to-assume"]
        for wf in workflows.values()
        for job in wf["jobs"].values()
        for step in steps_of(job)
        if step.get("uses", "").startswith(OIDC_ACTION)
    }
    assert roles == {f"${{{{ vars.{GITHUB['role_variable']} }}}}", f"${{{{ vars.{GITHUB['plan_role_variable']} }}}}"}


BAD_WORKFLOWS = {
    "keys as action inputs": (
        """
        jobs:
          push:
            runs-on: ubuntu-24.04
            steps:
              - uses: aws-actions/configure-aws-credentials@v6
                with:
                  aws-access-key-id: ${{ secrets.KEY }}
                  aws-secret-access-key: ${{ secrets.SECRET }}
                  aws-region: us-east-1
        """,
        ["passes aws-access-key-id", "passes aws-secret-access-key", "no role-to-assume", "without permissions id-token"],
    ),
    "keys in the environment": (
        """
        env:
          AWS_SECRET_ACCESS_KEY: x
        jobs:
          push:
            runs-on: ubuntu-24.04
            env:
              AWS_ACCESS_KEY_ID: x
            steps:
              - run: aws s3 ls
                env:
                  AWS_SESSION_TOKEN: x
        """,
        ["workflow sets AWS_SECRET_ACCESS_KEY", "job push sets AWS_ACCESS_KEY_ID", "sets AWS_SESSION_TOKEN", "reaches AWS before"],
    ),
    "a secret reference": (
        """
        jobs:
          push:
            runs-on: ubuntu-24.04
            steps:
              - run: echo "${{ secrets.AWS_KEY }}" | docker login -u AWS --password-stdin x
        """,
        ["secrets.AWS_*"],
    ),
    "a key in a script": (
        """
        jobs:
          push:
            runs-on: ubuntu-24.04
            steps:
              - run: aws configure set aws_secret_access_key AKIAABCDEFGHIJKLMNOP
        """,
        ["aws configure set", "access key id"],
    ),
    "a role from a secret, no id-token": (
        """
        jobs:
          push:
            runs-on: ubuntu-24.04
            steps:
              - uses: aws-actions/configure-aws-credentials@v6
                with:
                  role-to-assume: ${{ secrets.ROLE }}
                  aws-region: us-east-1
        """,
        ["from a secret", "without permissions id-token"],
    ),
    "id-token for every job": (
        """
        permissions:
          id-token: write
        jobs:
          a:
            runs-on: ubuntu-24.04
            permissions:
              id-token: write
            steps:
              - uses: aws-actions/configure-aws-credentials@v6
                with:
                  role-to-assume: ${{ vars.ROLE }}
                  aws-region: us-east-1
        """,
        ["for the whole workflow"],
    ),
    "kubectl and terraform without a session": (
        """
        jobs:
          a:
            runs-on: ubuntu-24.04
            steps:
              - run: terraform -chdir=terraform/environments/dev plan
              - run: kubectl apply -k k8s/overlays/eks-dev
        """,
        ["step 0 reaches AWS", "step 1 reaches AWS"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WORKFLOWS))
def test_the_aws_rule_catches(case):
    text, expected = BAD_WORKFLOWS[case]
    text = textwrap.dedent(text)
    problems = aws_credential_problems(yaml.safe_load(text), text)
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)


def test_the_aws_rule_accepts_oidc_and_offline_terraform():
    text = """
    jobs:
      a:
        runs-on: ubuntu-24.04
        permissions:
          id-token: write
        steps:
          - run: terraform -chdir=x init -backend=false
          - uses: aws-actions/configure-aws-credentials@v6
            with:
              role-to-assume: ${{ vars.AWS_ROLE_ARN }}
              aws-region: us-east-1
          - run: aws sts get-caller-identity
    """
    text = textwrap.dedent(text)
    assert aws_credential_problems(yaml.safe_load(text), text) == []


# --- pinned actions, least privilege ------------------------------------------------------------


def test_every_action_is_pinned_to_a_commit_with_its_exact_version():
    for name, text in workflow_texts():
        for line in text.splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line):
                assert PIN.match(line), f"{name}: not pinned to a full SHA with a '# vX.Y.Z' comment: {line.strip()}"


def test_actionlint_knows_the_pinned_actions_inputs_and_runtimes(tmp_path, actionlint):
    """actionlint checks inputs and runtimes by major version only: lint a copy pinned to majors."""
    copy = tmp_path / "majors"
    (copy / ".github" / "workflows").mkdir(parents=True)
    for path in WORKFLOWS.glob("*.yml"):
        (copy / ".github" / "workflows" / path.name).write_text(PINNED_TO_MAJOR.sub(r"@\1", path.read_text()))
    done = lint(actionlint, copy)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_major_version_lint_catches_a_misspelt_input(tmp_path, actionlint):
    bad = (WORKFLOWS / "images.yml").read_text().replace("role-to-assume:", "role-to-asume:")
    copy = tmp_path / "bad"
    (copy / ".github" / "workflows").mkdir(parents=True)
    (copy / ".github" / "workflows" / "images.yml").write_text(PINNED_TO_MAJOR.sub(r"@\1", bad))
    done = lint(actionlint, copy)
    assert done.returncode != 0
    assert 'input "role-to-asume" is not defined' in done.stdout


def lint(actionlint: str, root: pathlib.Path) -> subprocess.CompletedProcess:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return subprocess.run([actionlint, "-no-color", "-oneline"], cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="module")
def actionlint() -> str:
    found = shutil.which("actionlint") or str(pathlib.Path(sys.executable).parent / "actionlint")
    assert pathlib.Path(found).exists(), "actionlint must be installed (scripts/check-workflows.sh installs it)"
    return found


def test_workflows_grant_only_read_access_by_default_and_never_run_fork_code_with_secrets(workflows):
    for name, wf in workflows.items():
        assert wf.get("permissions") == {"contents": "read"}, name
        assert "pull_request_target" not in wf["on"], name
        assert "workflow_run" not in wf["on"] or name == "deploy.yml", name


def test_every_job_has_a_timeout(workflows):
    for name, wf in workflows.items():
        for job_name, job in wf["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{name}: {job_name}"


def test_checkouts_do_not_keep_the_token(workflows):
    for name, wf in workflows.items():
        for job in wf["jobs"].values():
            for step in steps_of(job):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, name


def test_the_scripts_the_workflows_run_exist(workflows):
    for name, text in workflow_texts():
        for script in set(re.findall(r"\bscripts/[\w./-]+\.(?:sh|py)\b", text)):
            assert (REPO / script).is_file(), f"{name} runs {script}, which does not exist"


# --- CI ------------------------------------------------------------------------------------------


def test_ci_runs_on_the_long_lived_branches_and_every_pull_request(workflows):
    on = workflows["ci.yml"]["on"]
    assert on["push"]["branches"] == GITHUB["branches"]
    assert "pull_request" in on


def test_the_required_check_needs_every_job_and_runs_whatever_they_did(workflows):
    jobs = workflows["ci.yml"]["jobs"]
    required = jobs[GITHUB["required_check"]]
    assert required["name"] == GITHUB["required_check"]
    assert required["if"] == "always()"
    assert set(required["needs"]) == set(jobs) - {GITHUB["required_check"]}
    script = required["steps"][0]["run"]
    assert '"success"' in script and '"skipped"' in script


def test_per_package_jobs_lint_and_test_over_real_backends_and_publish_junit(workflows):
    job = workflows["ci.yml"]["jobs"]["test"]
    assert job["strategy"]["matrix"]["package"] == "${{ fromJSON(needs.changes.outputs.packages) }}"
    assert set(job["services"]) == {"postgres", "rabbitmq"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'cargo fmt -p "$PACKAGE" -- --check' in runs
    assert 'cargo clippy -p "$PACKAGE" --all-targets --all-features -- -D warnings' in runs
    assert "scripts/dev-services.sh up" in runs  # moto for the SQS API
    assert 'cargo nextest run -p "$PACKAGE" --all-features --profile ci' in runs
    nextest = tomllib.loads((REPO / ".config" / "nextest.toml").read_text())
    junit = f"target/nextest/ci/{nextest['profile']['ci']['junit']['path']}"
    uses = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    assert uses["EnricoMi/publish-unit-test-result-action"]["with"]["files"] == junit
    assert uses["actions/upload-artifact"]["with"]["path"] == junit
    assert "Swatinem/rust-cache" in uses


def test_ci_uses_the_workspace_toolchain(workflows):
    rust_version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    for name, wf in workflows.items():
        toolchain = wf.get("env", {}).get("RUST_TOOLCHAIN")
        if toolchain is not None:
            assert toolchain.startswith(rust_version + "."), name


# --- images, deploy, terraform: the names of docs/deployment.toml ---------------------------------


def test_images_are_built_from_each_services_dockerfile_and_named_after_its_workload(workflows):
    job = workflows["images.yml"]["jobs"]["build-smoke-push"]
    builds = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@")]
    assert {s["with"]["file"] for s in builds} == {f"services/{svc}/Dockerfile" for svc in SERVICES}
    for step in builds:
        service = step["with"]["file"].split("/")[1]
        workload = SERVICES[service]["workload"]
        assert step["with"]["tags"].startswith(f"{workload}:")
        assert step["with"]["cache-to"] == f"type=gha,mode=max,scope={workload}"
        assert step["with"]["context"] == "."
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    for service, spec in SERVICES.items():
        assert f"{service}) workload={spec['workload']} ;;" in runs
        assert f"  {spec['compose_service']}:\n" in runs  # the compose override
    assert "localstack/docker-compose.yml" in runs
    assert "wharf smoke" in runs
    assert workflows["images.yml"]["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}


def test_deploy_releases_to_the_named_environments_overlays_and_cluster(workflows):
    wf = workflows["deploy.yml"]
    assert wf["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == GITHUB["environments"]
    job = wf["jobs"]["deploy"]
    assert job["env"]["EKS_CLUSTER"] == f"${{{{ vars.EKS_CLUSTER || '{NAMES['aws']['cluster']}' }}}}"
    assert wf["env"]["AWS_REGION"] == f"${{{{ vars.AWS_REGION || '{NAMES['aws']['region']}' }}}}"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    for service, spec in SERVICES.items():
        assert f"{service}={spec['workload']}" in runs
    assert 'scripts/deploy.sh --overlay "k8s/overlays/eks-$DEPLOY_ENV"' in runs
    assert job["concurrency"]["cancel-in-progress"] is False


def test_terraform_plans_on_pull_requests_and_applies_dev_from_main_behind_its_environment(workflows):
    wf = workflows["terraform.yml"]
    assert all(p.startswith("terraform/") or p.endswith("terraform.yml") for p in wf["on"]["pull_request"]["paths"])
    jobs = wf["jobs"]
    check = "\n".join(s.get("run", "") for s in jobs["check"]["steps"])
    for command in ["terraform fmt -check", "validate", "checkov"]:
        assert command in check
    assert jobs["plan"]["if"] == "github.event_name == 'pull_request'"
    assert jobs["plan"]["strategy"]["matrix"]["environment"] == GITHUB["environments"]
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert any(s.get("uses", "").startswith("actions/github-script@") for s in jobs["plan"]["steps"])
    apply = jobs["apply-dev"]
    assert apply["environment"] == "dev"
    assert apply["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert "apply" in apply["steps"][-1]["run"]


def test_the_workflow_files_parse_as_their_own_loader_does():
    for path in WORKFLOWS.glob("*.yml"):
        assert "jobs" in load_workflow(path), path.name

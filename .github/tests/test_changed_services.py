"""scripts/changed-services.py on synthetic git histories.

Each test builds a throw-away repository holding wharf's real workspace manifests (the root
Cargo.toml, every member's Cargo.toml, docs/deployment.toml), commits changes on top and asks
the script which services, packages and images the range selects — the same call the CI and
image workflows make.
"""

import json
import pathlib
import shutil
import subprocess

import pytest
import tomllib

from conftest import REPO
from deployment_names import SERVICES

SCRIPT = REPO / "scripts" / "changed-services.py"
ALL = list(SERVICES)  # in deployment.toml order, as the script reports them
ROOT = tomllib.loads((REPO / "Cargo.toml").read_text())
MEMBERS = {
    member: tomllib.loads((REPO / member / "Cargo.toml").read_text())["package"]["name"]
    for member in ROOT["workspace"]["members"]
}
SHARED = sorted(name for name in MEMBERS.values() if name not in SERVICES and name != "wharf")
ALL_PACKAGES = ALL + ["wharf"] + SHARED
ZEROS = "0" * 40


def git(repo: pathlib.Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: pathlib.Path, message: str, files: dict[str, str] | None = None) -> str:
    """Write `files` (path -> content) and commit everything that changed."""
    for rel, content in (files or {}).items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def select(repo: pathlib.Path, base: str | None, head: str = "HEAD", *extra: str) -> dict:
    args = ["python3", str(SCRIPT), "--repo", str(repo), "--head", head, *extra]
    if base is not None:
        args += ["--base", base]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def workspace(tmp_path: pathlib.Path) -> pathlib.Path:
    """A repository with wharf's workspace manifests and one source file per member, on `main`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    for rel in ["Cargo.toml", "Cargo.lock", "docs/deployment.toml"]:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, repo / rel)
    for member in MEMBERS:
        (repo / member / "src").mkdir(parents=True)
        shutil.copy(REPO / member / "Cargo.toml", repo / member / "Cargo.toml")
        (repo / member / "src" / "lib.rs").write_text("// a source file of the member\n")
    (repo / "docs" / "guide.md").write_text("# guide\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "workspace")
    return repo


def test_a_change_in_orders_selects_orders_only(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "orders", {"services/orders/src/lib.rs": "// new\n"})
    got = select(workspace, base)
    assert got["services"] == ["orders"]
    assert got["images"] == ["orders"]
    # the CLI links the orders service, so its tests run too
    assert got["packages"] == ["orders", "wharf"]


def test_a_change_in_bus_selects_all_three(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "bus", {"bus/src/lib.rs": "// new\n"})
    got = select(workspace, base)
    assert got["services"] == ALL
    # the images of the services that publish and consume over the bus; products' only if it links it
    assert {"orders", "notifications"} <= set(got["images"]) <= set(ALL)
    # bus's own tests and those of the shared crates built on it run as well, not those below it
    assert got["packages"][:4] == ALL + ["wharf"]
    assert {"wharf-bus", "wharf-events"} <= set(got["packages"])
    assert "wharf-actors" not in got["packages"]


def test_a_change_in_docs_selects_none(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "docs", {"docs/guide.md": "# guide, revised\n"})
    got = select(workspace, base)
    assert got == {"reason": got["reason"], "services": [], "packages": [], "images": []}


@pytest.mark.parametrize(
    "member", ["actors", "bus", "services/edge", "services/runtime", "services/events", "services/contact", "services/testkit"]
)
def test_every_shared_crate_selects_all_three_services(workspace, member):
    base = git(workspace, "rev-parse", "HEAD")
    (workspace / member / "src" / "lib.rs").write_text("// changed\n")
    commit(workspace, f"change {member}")
    got = select(workspace, base)
    assert got["services"] == ALL
    assert MEMBERS[member] in got["packages"]


def test_images_follow_normal_dependencies_only(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "testkit", {"services/testkit/src/lib.rs": "// fixtures\n"})
    assert select(workspace, base)["images"] == [], "a test-only crate rebuilds no image"
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "events", {"services/events/src/lib.rs": "// v2\n"})
    got = select(workspace, base)
    # products does not link the events crate: its binary, hence its image, is unchanged
    assert got["images"] == ["orders", "notifications"]
    assert got["services"] == ALL


def test_products_also_selects_the_orders_tests_that_run_it(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "products", {"services/products/src/lib.rs": "// new\n"})
    got = select(workspace, base)
    assert got["services"] == ["products", "orders"]
    assert got["images"] == ["products"]


def test_the_cli_selects_its_package_and_no_service(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "cli", {"services/wharf/src/lib.rs": "// new\n"})
    got = select(workspace, base)
    assert got["services"] == [] and got["images"] == []
    assert got["packages"] == ["wharf"]


def test_workspace_files_select_everything(workspace):
    for name, files in [
        ("lock", {"Cargo.lock": "# bumped\n"}),
        ("toolchain", {"rust-toolchain.toml": '[toolchain]\nchannel = "1.95"\n'}),
        ("workflow", {".github/workflows/ci.yml": "name: CI\n"}),
    ]:
        base = git(workspace, "rev-parse", "HEAD")
        commit(workspace, name, files)
        got = select(workspace, base)
        assert got["packages"] == ALL_PACKAGES, name


def test_the_ci_workflow_changes_tests_but_no_image(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "ci", {".github/workflows/ci.yml": "name: CI\n"})
    assert select(workspace, base)["images"] == []


def test_a_dockerfile_or_dockerignore_rebuilds_images(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "dockerfile", {"services/notifications/Dockerfile": "FROM scratch\n"})
    assert select(workspace, base)["images"] == ["notifications"]
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "dockerignore", {".dockerignore": "target\n"})
    got = select(workspace, base)
    assert got["images"] == ALL and got["services"] == []


def test_deploy_artifacts_select_nothing(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(
        workspace,
        "deploy",
        {
            "k8s/base/kustomization.yaml": "resources: []\n",
            "terraform/main.tf": "# none\n",
            "localstack/README.md": "# local\n",
        },
    )
    got = select(workspace, base)
    assert got["packages"] == [] and got["images"] == []


def test_several_commits_add_up(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "orders", {"services/orders/src/lib.rs": "// 1\n"})
    commit(workspace, "notifications", {"services/notifications/src/lib.rs": "// 2\n"})
    assert select(workspace, base)["services"] == ["orders", "notifications"]


def test_a_file_moved_out_of_a_service_still_selects_it(workspace):
    base = git(workspace, "rev-parse", "HEAD")
    git(workspace, "mv", "services/notifications/src/lib.rs", "docs/old-lib.rs")
    commit(workspace, "move")
    assert select(workspace, base)["services"] == ["notifications"]


def test_a_pull_request_counts_only_its_own_commits(workspace):
    """develop moves on after the feature branched off: the range is from the merge base."""
    git(workspace, "checkout", "-q", "-b", "develop")
    git(workspace, "checkout", "-q", "-b", "feature/orders")
    commit(workspace, "feature", {"services/orders/src/lib.rs": "// feature\n"})
    feature = git(workspace, "rev-parse", "HEAD")
    git(workspace, "checkout", "-q", "develop")
    commit(workspace, "meanwhile", {"bus/src/lib.rs": "// meanwhile on develop\n"})
    develop = git(workspace, "rev-parse", "HEAD")
    git(workspace, "checkout", "-q", "feature/orders")
    assert select(workspace, develop, feature)["services"] == ["orders"]


def test_an_unknown_range_selects_everything(workspace):
    commit(workspace, "orders", {"services/orders/src/lib.rs": "// new\n"})
    for base in [ZEROS, None, "1234567890abcdef1234567890abcdef12345678"]:
        got = select(workspace, base)
        assert got["packages"] == ALL_PACKAGES, base
        assert got["images"] == ALL, base
        assert "everything" in got["reason"]


def test_a_head_that_is_not_a_commit_fails(workspace):
    done = subprocess.run(
        ["python3", str(SCRIPT), "--repo", str(workspace), "--base", ZEROS, "--head", "no-such-ref"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "no-such-ref" in done.stderr


def test_a_new_workspace_crate_is_shared(workspace):
    manifest = (workspace / "Cargo.toml").read_text().replace("members = [", 'members = [\n    "tracing-setup",')
    commit(
        workspace,
        "a new crate",
        {
            "Cargo.toml": manifest,
            "tracing-setup/Cargo.toml": '[package]\nname = "wharf-tracing"\nversion = "0.1.0"\n',
            "tracing-setup/src/lib.rs": "// first\n",
        },
    )
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "tracing", {"tracing-setup/src/lib.rs": "// second\n"})
    got = select(workspace, base)
    assert got["services"] == ALL
    assert got["packages"] == ALL + ["wharf", "wharf-tracing"]


def test_github_output_lines(workspace, tmp_path):
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "orders", {"services/orders/src/lib.rs": "// new\n"})
    out = tmp_path / "github_output"
    out.write_text("earlier=kept\n")
    select(workspace, base, "HEAD", "--github-output", str(out))
    lines = out.read_text().splitlines()
    assert lines == [
        "earlier=kept",
        'services=["orders"]',
        'packages=["orders","wharf"]',
        'images=["orders"]',
        "any=true",
    ]
    base = git(workspace, "rev-parse", "HEAD")
    commit(workspace, "docs", {"docs/guide.md": "# again\n"})
    out.write_text("")
    select(workspace, base, "HEAD", "--github-output", str(out))
    assert out.read_text().splitlines()[-1] == "any=false"

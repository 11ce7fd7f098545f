"""What the images' runtime stage promises, checked on the binaries built here:

- every shared object a binary needs (ELF NEEDED, and what ldd resolves) is one the runtime image
  ships (docs/deployment.toml [image].runtime_libraries), and no symbol needs a newer glibc than
  the runtime image's;
- a binary started as the image's non-root UID, in a read-only working directory, with the image's
  ENV, serves /health/live, and its `healthcheck` subcommand (the image's HEALTHCHECK) exits 0 while
  it is up and 1 when nothing answers;
- the build context that .dockerignore leaves is a complete Cargo workspace without the rest.
"""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from compose_run import healthcheck_command
from stack import NAMES, REPO, SERVICES, base_env, dockerfile_env, free_port, get, run, wait_until

IMAGE = NAMES["image"]


def needed(binary: pathlib.Path) -> list[str]:
    dynamic = run(["readelf", "--dynamic", "--wide", str(binary)]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


def glibc_versions(binary: pathlib.Path) -> list[tuple[int, ...]]:
    symbols = run(["readelf", "--version-info", "--wide", str(binary)]).stdout
    return sorted({tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", symbols)})


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_binary_needs_only_what_the_runtime_image_ships(bin_dir, service):
    binary = bin_dir / SERVICES[service]["binary"]
    libraries = needed(binary)
    print(f"{service}: NEEDED {', '.join(libraries)}")
    assert libraries, "a dynamically linked binary (distroless/cc provides its glibc)"
    assert set(libraries) <= set(IMAGE["runtime_libraries"]), set(libraries) - set(IMAGE["runtime_libraries"])
    resolved = re.findall(r"^\s*(\S+\.so[.\d]*)\s", run(["ldd", str(binary)]).stdout, re.M)
    resolved = [pathlib.Path(name).name for name in resolved if not name.startswith("linux-vdso")]
    assert set(resolved) <= set(IMAGE["runtime_libraries"]), set(resolved) - set(IMAGE["runtime_libraries"])
    newest = glibc_versions(binary)[-1]
    runtime = tuple(int(p) for p in IMAGE["runtime_glibc"].split("."))
    print(f"{service}: newest glibc symbol version {'.'.join(map(str, newest))} (runtime image: {IMAGE['runtime_glibc']})")
    assert newest <= runtime


@pytest.fixture
def image_root():
    """A root-owned tree the image user can traverse: bin/ (0755), a read-only working directory
    (0555) and a data directory it owns, as a volume would be."""
    import tempfile

    root = pathlib.Path(tempfile.mkdtemp(prefix="wharf-image-"))
    root.chmod(0o755)
    for name, mode in (("bin", 0o755), ("work", 0o555), ("data", 0o700)):
        (root / name).mkdir()
        (root / name).chmod(mode)
    os.chown(root / "data", IMAGE["uid"], IMAGE["uid"])
    yield root
    (root / "work").chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def serve_as_image_user(bin_dir, image_root, service: str, healthcheck: bool):
    """Starts the binary as the image's UID in a read-only working directory with the image's ENV;
    waits for /health/live; with `healthcheck`, runs the image's HEALTHCHECK while up and after."""
    if os.geteuid() != 0:
        pytest.fail("switching to the image's UID needs root (CI runs as root)")
    names = SERVICES[service]
    binary = image_root / "bin" / names["binary"]
    shutil.copy2(bin_dir / names["binary"], binary)
    binary.chmod(0o755)
    work = image_root / "work"
    port = free_port()
    # The image's ENV, then what compose/Kubernetes would add: a port, and a database and the
    # default (SQLite) bus on a volume — the working directory stays read-only.
    env = base_env() | dockerfile_env(REPO / "services" / service / "Dockerfile") | {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite://{image_root}/data/{service}.db?mode=rwc",
        "BUS_SQLITE_URL": f"sqlite://{image_root}/data/bus.db?mode=rwc",
        "HOME": "/nonexistent",
    }
    uid = str(IMAGE["uid"])
    as_user = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]
    assert subprocess.run(as_user + ["test", "-w", str(work)]).returncode != 0, "the working directory is writable"
    command = healthcheck_command(service)
    command[0] = str(binary)
    process = subprocess.Popen(as_user + [str(binary)], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def live():
            if process.poll() is not None:
                out = process.stdout.read().decode(errors="replace")[-2000:]
                raise AssertionError(f"{service} exited with {process.returncode}: {out}")
            return get(f"http://127.0.0.1:{port}/health/live")[0] == 200

        wait_until(f"{service} live as UID {uid}", live, 30)
        assert run(["ps", "-o", "uid=", "-p", str(process.pid)]).stdout.strip() == uid
        if healthcheck:
            check = subprocess.run(as_user + command, cwd=work, env=env, capture_output=True, text=True, timeout=15)
            assert check.returncode == 0, f"`{names['binary']} healthcheck` while up: {check.returncode}\n{check.stdout}{check.stderr}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if healthcheck:
        down = subprocess.run(as_user + command, cwd=work, env=env, capture_output=True, text=True, timeout=15)
        assert down.returncode == 1, f"`{names['binary']} healthcheck` with nothing listening: {down.returncode}\n{down.stderr}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_binary_serves_liveness_as_the_image_user_in_a_read_only_directory(bin_dir, image_root, service):
    serve_as_image_user(bin_dir, image_root, service, healthcheck=False)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_image_healthcheck_passes_while_up_and_fails_when_nothing_answers(bin_dir, image_root, service):
    serve_as_image_user(bin_dir, image_root, service, healthcheck=True)


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_context() -> set[str]:
    """The files `docker build .` would send, by docker's own .dockerignore rules (docker-py)."""
    from docker.utils.build import exclude_paths

    patterns = dockerignore_patterns()
    tracked = set(run(["git", "-C", str(REPO), "ls-files"]).stdout.split())
    return {path for path in exclude_paths(str(REPO), patterns) if path in tracked}


def test_the_build_context_is_the_cargo_workspace_and_nothing_else(tmp_path):
    context = build_context()
    assert {"Cargo.toml", "Cargo.lock"} <= context
    for prefix in (".git/", "target/", "docs/", "k8s/", "terraform/", "localstack/", "scripts/", ".ci/", ".github/"):
        assert not [p for p in context if p.startswith(prefix)], f"{prefix} is in the build context"
    assert not [p for p in context if p.endswith(".md")]
    # What is not tracked but lies in a working copy stays out too.
    from docker.utils.build import PatternMatcher

    ignored = PatternMatcher(dockerignore_patterns())
    for path in ("target/debug/products", ".git/HEAD", "data/products.db", "services/orders/data.db-wal", ".env"):
        assert ignored.matches(path), f"{path} would be sent to the builder"
    # Every migration the sqlx::migrate! macros embed is there.
    for service in SERVICES:
        migrations = [p for p in context if p.startswith(f"services/{service}/migrations/")]
        assert migrations, f"services/{service}/migrations is not in the build context"
    # And cargo accepts it as a workspace, with the locked dependencies, offline.
    for path in context:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, target)
    metadata = run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1", "--no-deps"],
                   cwd=tmp_path, env=base_env() | {"CARGO_HOME": os.environ.get("CARGO_HOME", str(pathlib.Path.home() / ".cargo"))})
    packages = {p["name"] for p in __import__("json").loads(metadata.stdout)["packages"]}
    assert set(SERVICES) <= packages

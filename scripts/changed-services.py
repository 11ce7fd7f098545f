#!/usr/bin/env python3
"""Which services, cargo packages and images a range of commits touches.

The CI and image workflows run this once per event and fan their jobs out over its answer:

    scripts/changed-services.py --base BASE --head HEAD [--github-output FILE]

prints one JSON document (and, with --github-output, writes `services`, `packages`, `images` and
`any` for later jobs):

- `services`: the services (products, orders, notifications) whose tests must run;
- `packages`: the cargo packages to test — those services, then `wharf` (the CLI links all three
  services, so its tests run whenever any of them or the CLI itself changes), then every shared
  crate that changed or depends on one that did (a change in bus tests bus, runtime and events);
- `images`: the services whose container image changed.

The rules come from the workspace itself, not from a list kept beside it:

- a workspace member that is neither a service nor the CLI is shared (actors, bus, edge, runtime,
  events, contact, testkit, and any crate added later): a change to it selects every service;
- a change in a service selects that service and every service whose tests depend on it (orders'
  tests run products in-process, so products selects orders too);
- `services/wharf` selects the `wharf` package only: no service and no image;
- workspace-wide files (Cargo.toml, Cargo.lock, toolchain and lint settings, this script and the
  CI workflow) select everything;
- images follow only normal dependencies: a test-only crate (testkit) or a dev-dependency does
  not rebuild an image; a change in the Rust workspace manifests, Cargo.lock, .dockerignore or a
  service's Dockerfile does;
- anything else (docs/, k8s/, terraform/, ...) selects nothing.

A base that is missing, all zeros (a new branch) or not in the history selects everything, so
an unknown range never skips a test.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tomllib

# The command-line package, as distinct from the services it runs.
CLI_PACKAGE = "wharf"

# Files outside any crate that change how every package builds or is tested.
TEST_WIDE = (
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain",
    "rust-toolchain.toml",
    "rustfmt.toml",
    ".rustfmt.toml",
    "clippy.toml",
    ".clippy.toml",
    ".cargo/",
    ".config/nextest.toml",
    ".github/workflows/ci.yml",
    "scripts/changed-services.py",
)

# Files outside any crate that go into every image.
IMAGE_WIDE = (
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain",
    "rust-toolchain.toml",
    ".cargo/",
    ".dockerignore",
)

DEPENDENCY_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")


class Workspace:
    """The cargo workspace at one checkout: members, their directories and their path dependencies."""

    def __init__(self, root: pathlib.Path, services: list[str]):
        manifest = tomllib.loads((root / "Cargo.toml").read_text())
        workspace = manifest["workspace"]
        shared_paths = {
            name: _normal(spec["path"])
            for name, spec in workspace.get("dependencies", {}).items()
            if isinstance(spec, dict) and "path" in spec
        }
        # member directory -> package name
        self.members: dict[str, str] = {}
        # package name -> {"normal": {dirs}, "dev": {dirs}} of workspace path dependencies
        self.deps: dict[str, dict[str, set[str]]] = {}
        for member in workspace["members"]:
            member = _normal(member)
            package = tomllib.loads((root / member / "Cargo.toml").read_text())
            name = package["package"]["name"]
            self.members[member] = name
            self.deps[name] = {"normal": set(), "dev": set()}
            for table_name, table in _dependency_tables(package):
                kind = "dev" if table_name == "dev-dependencies" else "normal"
                for dep_name, spec in table.items():
                    if not isinstance(spec, dict):
                        continue
                    if "path" in spec:
                        target = _normal(str(pathlib.PurePosixPath(member) / spec["path"]))
                    elif spec.get("workspace") and dep_name in shared_paths:
                        target = shared_paths[dep_name]
                    else:
                        continue
                    self.deps[name][kind].add(target)
        self.by_name = {name: member for member, name in self.members.items()}
        missing = [s for s in services if s not in self.by_name]
        if missing:
            raise SystemExit(f"changed-services: services {missing} are not workspace members")
        if CLI_PACKAGE not in self.by_name:
            raise SystemExit(f"changed-services: the {CLI_PACKAGE} package is not a workspace member")
        self.services = services
        self.shared = sorted(
            member for member, name in self.members.items() if name not in services and name != CLI_PACKAGE
        )

    def member_of(self, path: str) -> str | None:
        """The workspace member directory a file belongs to (the deepest one), if any."""
        best = None
        for member in self.members:
            if path.startswith(member + "/") and (best is None or len(member) > len(best)):
                best = member
        return best

    def dependents(self, member: str, kinds: tuple[str, ...]) -> set[str]:
        """Packages that depend on `member`, directly or not, through the given kinds of dependency."""
        found = {self.members[member]}
        frontier = [member]
        while frontier:
            current = frontier.pop()
            for name, deps in self.deps.items():
                if name in found:
                    continue
                if any(current in deps[kind] for kind in kinds):
                    found.add(name)
                    frontier.append(self.by_name[name])
        return found


class Selection:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.tested: set[str] = set()
        self.imaged: set[str] = set()

    def everything(self) -> None:
        self.tested |= set(self.workspace.members.values())
        self.imaged |= set(self.workspace.services)

    def add(self, path: str) -> None:
        ws = self.workspace
        if _matches(path, TEST_WIDE):
            self.tested |= set(ws.members.values())
        if _matches(path, IMAGE_WIDE):
            self.imaged |= set(ws.services)
        member = ws.member_of(path)
        if member is None:
            return
        self.tested |= ws.dependents(member, ("normal", "dev"))
        if member in ws.shared:
            # Shared crates count for every service, whatever the dependency graph says today.
            self.tested |= set(ws.services) | {CLI_PACKAGE}
        self.imaged |= ws.dependents(member, ("normal",)) & set(ws.services)

    def result(self) -> dict[str, list[str]]:
        ws = self.workspace
        services = [s for s in ws.services if s in self.tested]
        cli = [CLI_PACKAGE] if CLI_PACKAGE in self.tested else []
        shared = sorted(name for name in self.tested if name not in ws.services and name != CLI_PACKAGE)
        images = [s for s in ws.services if s in self.imaged]
        return {"services": services, "packages": services + cli + shared, "images": images}


def _dependency_tables(package: dict):
    for name in DEPENDENCY_TABLES:
        if name in package:
            yield name, package[name]
    for target in package.get("target", {}).values():
        for name in DEPENDENCY_TABLES:
            if name in target:
                yield name, target[name]


def _normal(path: str) -> str:
    parts: list[str] = []
    for part in pathlib.PurePosixPath(path).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(path.startswith(p) if p.endswith("/") else path == p for p in patterns)


def _git(repo: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def changed_files(repo: pathlib.Path, base: str | None, head: str) -> tuple[list[str] | None, str]:
    """Files changed between the merge base of `base` and `head`, or None when the range is unknown."""
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{head}^{{commit}}").returncode != 0:
        raise SystemExit(f"changed-services: head {head!r} is not a commit in {repo}")
    if not base or set(base) == {"0"}:
        return None, "no base commit (new branch, manual or scheduled run): everything"
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        return None, f"base {base} is not in the fetched history: everything"
    diff = _git(repo, "diff", "--name-only", "--no-renames", "-z", f"{base}...{head}")
    if diff.returncode != 0:
        return None, f"no merge base between {base} and {head}: everything"
    files = [f for f in diff.stdout.split("\0") if f]
    return files, f"{len(files)} files changed since the merge base with {base}"


def service_names(repo: pathlib.Path) -> list[str]:
    """The services, in the order of the deployment names file."""
    names = tomllib.loads((repo / "docs" / "deployment.toml").read_text())
    return list(names["services"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="the commit before the change (PR base or the pushed-over commit)")
    parser.add_argument("--head", default="HEAD", help="the commit under test (default HEAD)")
    parser.add_argument("--repo", type=pathlib.Path, default=pathlib.Path.cwd(), help="repository (default .)")
    parser.add_argument("--all", action="store_true", help="select everything whatever changed")
    parser.add_argument("--github-output", type=pathlib.Path, help="append name=value outputs to this file")
    args = parser.parse_args(argv)

    top = _git(args.repo, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise SystemExit(f"changed-services: {args.repo} is not a git repository")
    repo = pathlib.Path(top.stdout.strip())
    selection = Selection(Workspace(repo, service_names(repo)))

    if args.all:
        files, reason = None, "asked for everything"
    else:
        files, reason = changed_files(repo, args.base, args.head)
    if files is None:
        selection.everything()
    else:
        for path in files:
            selection.add(path)

    result = selection.result()
    report = {"reason": reason, **result}
    print(json.dumps(report, indent=2))
    if args.github_output:
        with args.github_output.open("a") as out:
            for key, value in result.items():
                out.write(f"{key}={json.dumps(value, separators=(',', ':'))}\n")
            out.write(f"any={'true' if result['packages'] or result['images'] else 'false'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

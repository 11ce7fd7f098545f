"""Shared fixtures of the workflow checks: the repository root and the parsed workflows."""

import pathlib
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

WORKFLOWS = REPO / ".github" / "workflows"


def load_workflow(path: pathlib.Path) -> dict:
    # PyYAML reads the bare key `on` as the boolean True; the workflows mean the string.
    doc = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def workflows() -> dict[str, dict]:
    found = {p.name: load_workflow(p) for p in sorted(WORKFLOWS.glob("*.yml"))}
    assert found, f"no workflows under {WORKFLOWS}"
    return found

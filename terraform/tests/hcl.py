"""The Terraform tree parsed with python-hcl2, in a shape the tests can read.

python-hcl2 keeps the quotes of block labels and string literals ("\"aws\""); `unquote` strips
them from a whole parsed document so that a literal reads as the string it is, while an
expression stays as its source text wrapped in ${…}.
"""

import copy
import functools
import pathlib
import sys

import hcl2

TERRAFORM = pathlib.Path(__file__).resolve().parent.parent
REPO = TERRAFORM.parent
sys.path.insert(0, str(REPO / "scripts"))

from deployment_names import NAMES, SERVICES  # noqa: E402

ENVIRONMENTS = ["dev", "prod"]
ROOTS = [TERRAFORM / "bootstrap"] + [TERRAFORM / "environments" / env for env in ENVIRONMENTS]
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())


def unquote(value):
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def tf_files(directory=TERRAFORM):
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


@functools.lru_cache(maxsize=None)
def _parsed(path):
    with open(path) as handle:
        return unquote(hcl2.load(handle))


def load(path):
    """A parsed file (parsed once per run; callers get their own copy)."""
    return copy.deepcopy(_parsed(pathlib.Path(path).resolve()))


def load_dir(directory):
    """Every top-level block of a directory's .tf files, merged by block type."""
    merged = {}
    for path in sorted(pathlib.Path(directory).glob("*.tf")):
        for kind, blocks in load(path).items():
            merged.setdefault(kind, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def named(blocks, *labels):
    """The body of the block with these labels (resource type and name, module name, …)."""
    for block in blocks:
        body = block
        for label in labels:
            if not isinstance(body, dict) or label not in body:
                body = None
                break
            body = body[label]
        if body is not None:
            return body
    raise KeyError(f"no block {' '.join(labels)}")


def resources(directory, kind=None):
    """(type, name, body) of every resource in a directory."""
    found = []
    for block in load_dir(directory).get("resource", []):
        for rtype, by_name in block.items():
            for rname, body in by_name.items():
                if kind is None or rtype == kind:
                    found.append((rtype, rname, body))
    return found


def data_sources(directory, kind=None):
    found = []
    for block in load_dir(directory).get("data", []):
        for dtype, by_name in block.items():
            for dname, body in by_name.items():
                if kind is None or dtype == kind:
                    found.append((dtype, dname, body))
    return found


def variables(directory):
    found = {}
    for block in load_dir(directory).get("variable", []):
        found.update(block)
    return found


def module_calls(directory):
    found = {}
    for block in load_dir(directory).get("module", []):
        found.update(block)
    return found


def locals_of(directory):
    found = {}
    for block in load_dir(directory).get("locals", []):
        found.update(block)
    return found


def tfvars(env):
    return load(TERRAFORM / "environments" / env / "terraform.tfvars")


def one(value):
    """A nested block that python-hcl2 returns as a one-element list."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value

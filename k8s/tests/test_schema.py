"""The core objects of every overlay against the Kubernetes API schemas, strictly (an unknown or
misspelt field fails). The Argo Rollouts objects have no schema here: test_manifests.py checks
their fields by name."""

import pathlib
import subprocess
import sys

import pytest
import yaml

from rendered import NAMES, render

CRD_GROUPS = ("argoproj.io/",)


@pytest.mark.parametrize("overlay", NAMES["k8s"]["overlays"])
def test_core_objects_validate_strictly(overlay, tmp_path: pathlib.Path):
    core = [o for o in render(overlay) if not o["apiVersion"].startswith(CRD_GROUPS)]
    assert len(core) > 10
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(core))
    tool = pathlib.Path(sys.executable).parent / "kubernetes-validate"
    done = subprocess.run([str(tool), "--strict", "--quiet", "-k", NAMES["k8s"]["kubernetes_version"], str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"kubernetes-validate on {overlay}:\n{done.stdout}\n{done.stderr}"

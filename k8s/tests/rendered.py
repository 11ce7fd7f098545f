"""The manifests as kubectl renders them, for the k8s tests.

`render(overlay)` runs `kubectl kustomize` once per overlay and returns its objects; the lookup
helpers find an object by kind and name and fail with the names that do exist.
"""

import functools
import pathlib
import subprocess
import sys

import yaml

K8S = pathlib.Path(__file__).resolve().parent.parent
REPO = K8S.parent
sys.path.insert(0, str(REPO / "scripts"))

from deployment_names import NAMES, SERVICES  # noqa: E402

__all__ = ["K8S", "REPO", "NAMES", "SERVICES", "render", "find", "all_of", "pod_spec", "container", "config_env"]


@functools.cache
def render_text(overlay: str) -> str:
    path = K8S / "overlays" / overlay
    done = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return done.stdout


@functools.cache
def render(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(overlay)) if doc]


def all_of(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def find(objects: list[dict], kind: str, name: str) -> dict:
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    names = sorted(o["metadata"]["name"] for o in all_of(objects, kind))
    raise AssertionError(f"no {kind} {name!r} in the rendered manifests (there are: {names})")


def workload(objects: list[dict], service: str) -> dict:
    """The object that carries a service's pod template: its Deployment."""
    return find(objects, "Deployment", SERVICES[service]["workload"])


def pod_spec(objects: list[dict], service: str) -> dict:
    return workload(objects, service)["spec"]["template"]["spec"]


def container(objects: list[dict], service: str) -> dict:
    containers = pod_spec(objects, service)["containers"]
    assert len(containers) == 1, f"{service}: one container expected, got {[c['name'] for c in containers]}"
    return containers[0]


def config_env(objects: list[dict], service: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom ConfigMaps and Secrets in
    order, then env entries (values only; valueFrom is resolved against ConfigMaps/Secrets)."""
    import base64

    c = container(objects, service)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        elif "secretRef" in source:
            secret = find(objects, "Secret", source["secretRef"]["name"])
            env.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
            env.update(secret.get("stringData", {}))
        else:
            raise AssertionError(f"{service}: unsupported envFrom {source}")
    for entry in c.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]
            if "configMapKeyRef" in ref:
                cm = find(objects, "ConfigMap", ref["configMapKeyRef"]["name"])
                env[entry["name"]] = cm["data"][ref["configMapKeyRef"]["key"]]
            else:
                raise AssertionError(f"{service}: unsupported valueFrom {ref}")
    return env

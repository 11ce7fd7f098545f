"""The workloads of docs/deployment.toml from rendered manifests, run as pods (kubelet.py) behind
their Services and the Ingress's ALB (network.py), with the IRSA tokens and the issuer the backing
services (backing.py) provide."""

import copy
import os
import pathlib
import secrets
import shutil
import tempfile
import time

from backing import Backing, web_identity_token
from kubelet import Pod, PodFailed
from network import Alb, Services, Subnet
from processes import bin_dir
from rendered import NAMES, SERVICES, find

AUTH_OVERRIDES = ("AUTH_ISSUER", "AUTH_JWKS_URL", "AUTH_AUDIENCE")


def workloads(objects: list[dict]) -> dict[str, dict]:
    return {service: find(objects, "Deployment", names["workload"]) for service, names in SERVICES.items()}


def config_maps_of(objects: list[dict], deployment: dict) -> list[dict]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]
    return [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] in names]


def with_local_issuer(objects: list[dict], backing: Backing) -> tuple[list[dict], str | None]:
    """With AUTH_MODE=jwt, the Cognito pool in moto as the issuer: only AUTH_ISSUER, AUTH_JWKS_URL
    and AUTH_AUDIENCE change, as an overlay's ConfigMap patch would change them. Returns the
    objects and the bearer token to send (None without JWT auth)."""
    objects = copy.deepcopy(objects)
    token = None
    for deployment in workloads(objects).values():
        for config_map in config_maps_of(objects, deployment):
            data = config_map.get("data", {})
            if data.get("AUTH_MODE", "").lower() != "jwt":
                continue
            user = backing.cognito(data.get("AUTH_ADMIN_GROUP", "admin"))
            data.update(dict(zip(AUTH_OVERRIDES, (user.issuer, user.jwks_url, user.client_id))))
            token = user.access_token
    return objects, token


class Cluster:
    """The workloads of docs/deployment.toml from rendered manifests, as pods behind Services
    and the Ingress's ALB. A context manager: everything started is stopped."""

    def __init__(self, objects: list[dict], backing: Backing, token: str | None):
        self.objects, self.backing, self.token = objects, backing, token
        self.sandbox = pathlib.Path(tempfile.mkdtemp(prefix="wharf-k8s-run-"))
        os.chmod(self.sandbox, 0o755)  # the pods' user must reach its files
        self.subnet = Subnet()
        self.pods: dict[str, Pod] = {}
        self.services: Services | None = None
        self.alb: Alb | None = None
        self.version = NAMES["k8s"]["kubernetes_version"].rsplit(".", 1)[0]

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self):
        self.services = Services(self.objects, self.subnet)
        extra = {"AWS_ENDPOINT_URL": self.backing.endpoint}  # the one thing pointed elsewhere than AWS
        binaries = bin_dir()
        for service, deployment in workloads(self.objects).items():
            namespace = deployment["metadata"]["namespace"]
            name = f"{deployment['metadata']['name']}-k8srun-{secrets.token_hex(3)}"
            pod = Pod(name, deployment, self.objects, next(self.subnet.pods), self.sandbox, binaries,
                      self.services.resolve_dns, extra, self.version, self.services.links(namespace))
            self.pods[service] = pod
            self.services.pods.append(pod)
        for pod in self.pods.values():  # all at once, as a ReplicaSet per Deployment would
            token = web_identity_token(pod.irsa_subject) if pod.irsa_subject else None
            pod.start(token)

    def check(self):
        for pod in self.pods.values():
            if pod.failed.is_set():
                raise PodFailed(f"{pod.failure}\n--- {pod.name} output ---\n{pod.process.output()[-3000:]}")

    def wait_ready(self) -> dict[str, float]:
        """Every pod Ready within the time its startup probe allows plus one readiness period."""
        deadlines = {}
        for service, pod in self.pods.items():
            startup, readiness = pod.probes.get("startupProbe"), pod.probes.get("readinessProbe")
            allowed = (startup.initial_delay + startup.period * startup.failure_threshold) if startup else 0
            allowed += (readiness.initial_delay + readiness.period * readiness.success_threshold) if readiness else 0
            deadlines[service] = pod.started_at + allowed + 1
        while True:
            self.check()
            pending = [s for s, p in self.pods.items() if not p.ready]
            if not pending:
                return {s: round(p.ready_at - p.started_at, 2) for s, p in self.pods.items()}
            late = [s for s in pending if time.monotonic() > deadlines[s]]
            if late:
                pod = self.pods[late[0]]
                probe = pod.probes.get("readinessProbe")
                raise PodFailed(f"{pod.name}: never Ready ({probe.describe() if probe else 'no readiness probe'}: "
                                f"{probe.last if probe else ''}); Running but 0/1 Ready, no traffic reaches it\n"
                                f"--- output ---\n{pod.process.output()[-3000:]}")
            time.sleep(0.05)

    def open_alb(self) -> Alb:
        ingress = find(self.objects, "Ingress", NAMES["ingress"]["name"])
        self.alb = Alb(ingress, self.services, NAMES["ingress"]["class"], self.subnet.alb)
        return self.alb

    def __exit__(self, *exc):
        if self.alb:
            self.alb.close()
        for pod in self.pods.values():
            if pod.process and pod.process.alive():
                pod.terminate()
        if self.services:
            self.services.close()
        for pod in self.pods.values():
            pod.cleanup()
        shutil.rmtree(self.sandbox, ignore_errors=True)

"""A kubelet for one node that has no container runtime: it runs a rendered Deployment's container
as a process of the built binary, with the environment Kubernetes would give it, and probes it as
the kubelet does.

- The image is the service's Dockerfile runtime stage (ENV, USER, WORKDIR, ENTRYPOINT) with the
  debug binary standing in for the one at ENTRYPOINT; the image is found by the container's image
  repository name, which must be a workload of docs/deployment.toml.
- The environment: the image's ENV, then envFrom (ConfigMaps, Secrets) in order, then env
  (value, valueFrom configMapKeyRef / secretKeyRef / fieldRef, with $(VAR) expansion), then the
  service links of the namespace's Services, HOSTNAME, and what the EKS pod identity webhook adds
  for a ServiceAccount with `eks.amazonaws.com/role-arn` (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
  AWS_STS_REGIONAL_ENDPOINTS, unless the container sets them). Cluster DNS names in
  values (`<service>.<namespace>.svc[.cluster.local]`) are resolved by the caller's Service network.
- The process runs as the pod's runAsUser/runAsGroup (when this process may switch users) in an
  empty working directory it cannot write (readOnlyRootFilesystem), listening on its own pod IP.
- Probes: startup, then liveness and readiness, each on its own schedule with the manifest's
  initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and failureThreshold;
  HTTP GET to podIP:port with the kubelet's User-Agent, success = 200–399.
"""

import base64
import http.client
import json
import os
import pathlib
import re
import shutil
import stat
import threading
import time

from processes import Process
from rendered import REPO, SERVICES, find

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


class PodFailed(AssertionError):
    """What the kubelet would report about a pod: CrashLoopBackOff, a failed probe, never Ready."""


def service_of_image(image: str) -> str:
    """The docs/deployment.toml service whose workload is the image's repository name."""
    repository = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    for service, names in SERVICES.items():
        if names["workload"] == repository:
            return service
    raise PodFailed(f"image {image}: repository {repository!r} is none of the services' images "
                    f"({sorted(n['workload'] for n in SERVICES.values())}) — ErrImagePull")


class Image:
    """The runtime stage of services/<service>/Dockerfile."""

    def __init__(self, service: str, binary_dir: pathlib.Path):
        self.service = service
        dockerfile = REPO / "services" / service / "Dockerfile"
        text = dockerfile.read_text().replace("\\\n", " ")
        stages = re.split(r"(?im)^FROM\s", text)
        runtime = stages[-1]
        self.env: dict[str, str] = {}
        self.user, self.workdir, self.entrypoint = None, "/", None
        for line in runtime.splitlines():
            instruction, _, rest = line.strip().partition(" ")
            instruction = instruction.upper()
            if instruction == "ENV":
                for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                    self.env[key] = value.strip('"')
            elif instruction == "USER":
                self.user = rest.strip()
            elif instruction == "WORKDIR":
                self.workdir = rest.strip()
            elif instruction == "ENTRYPOINT":
                self.entrypoint = json.loads(rest)
        assert self.entrypoint, f"{dockerfile}: no ENTRYPOINT in the runtime stage"
        binary = pathlib.Path(self.entrypoint[0]).name
        assert binary == SERVICES[service]["binary"], f"{dockerfile} runs {binary}, not {SERVICES[service]['binary']}"
        self.binary = binary_dir / binary
        assert self.binary.is_file(), f"{self.binary} is not built"


class Probe:
    def __init__(self, kind: str, spec: dict, ports: dict[str, int]):
        self.kind = kind
        action = spec.get("httpGet")
        if action is None:
            raise PodFailed(f"{kind}: only httpGet probes are run here, got {sorted(spec)}")
        port = action["port"]
        if isinstance(port, str) and not port.isdigit():
            if port not in ports:
                raise PodFailed(f"{kind}: port {port!r} is no named container port ({ports})")
            port = ports[port]
        self.port = int(port)
        self.path = action.get("path", "/")
        self.scheme = action.get("scheme", "HTTP")
        self.headers = {h["name"]: h["value"] for h in action.get("httpHeaders", [])}
        self.initial_delay = spec.get("initialDelaySeconds", 0)
        self.period = spec.get("periodSeconds", 10)
        self.timeout = spec.get("timeoutSeconds", 1)
        self.success_threshold = spec.get("successThreshold", 1)
        self.failure_threshold = spec.get("failureThreshold", 3)
        if kind in ("startupProbe", "livenessProbe") and self.success_threshold != 1:
            raise PodFailed(f"{kind}: successThreshold must be 1 (the API server rejects {self.success_threshold})")
        self.ok = self.failed = 0
        self.last = ""

    def describe(self) -> str:
        return f"{self.kind} GET :{self.port}{self.path} every {self.period}s"

    def run(self, host: str, kubernetes_version: str) -> bool:
        """One probe as the kubelet's HTTP prober sends it."""
        assert self.scheme == "HTTP", f"{self.kind}: scheme {self.scheme} is not run here"
        connection = http.client.HTTPConnection(host, self.port, timeout=self.timeout)
        headers = {"User-Agent": f"kube-probe/{kubernetes_version}", "Accept": "*/*", **self.headers}
        try:
            connection.request("GET", self.path, headers=headers)
            response = connection.getresponse()
            response.read(10 * 1024)
            success = 200 <= response.status < 400
            self.last = f"HTTP {response.status}"
        except OSError as error:
            success, self.last = False, f"{type(error).__name__}: {error}"
        finally:
            connection.close()
        if success:
            self.ok += 1
        else:
            self.failed += 1
        return success


class Pod:
    """One replica of a Deployment, run as a process and probed; `failure` holds what the
    kubelet would have reported (and `failed` is set) once a probe gives up or the process exits."""

    def __init__(self, name: str, deployment: dict, objects: list[dict], ip: str, sandbox: pathlib.Path,
                 binary_dir: pathlib.Path, resolve_dns, extra_env: dict[str, str], kubernetes_version: str,
                 service_links: dict[str, str]):
        self.name, self.ip, self.deployment = name, ip, deployment
        self.namespace = deployment["metadata"]["namespace"]
        template = deployment["spec"]["template"]
        self.labels = template["metadata"].get("labels", {})
        self.spec = template["spec"]
        (self.container,) = self.spec["containers"]
        self.ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in self.container.get("ports", [])}
        self.kubernetes_version = kubernetes_version
        self.service = service_of_image(self.container["image"])
        self.image = Image(self.service, binary_dir)
        self.sandbox = sandbox / name
        self.irsa_subject: str | None = None  # the projected token's subject, with an IRSA role
        self.env = self.environment(objects, resolve_dns, extra_env, service_links)
        self.probes = {kind: Probe(kind, self.container[kind], self.ports)
                       for kind in ("startupProbe", "livenessProbe", "readinessProbe") if kind in self.container}
        self.started_at = self.started = self.ready_at = None
        self.ready = False
        self.failure: str | None = None
        self.failed = threading.Event()
        self.stopping = threading.Event()
        self.process: Process | None = None
        self.thread: threading.Thread | None = None

    # -- environment -------------------------------------------------------------------------

    def environment(self, objects, resolve_dns, extra_env, service_links) -> dict[str, str]:
        env: dict[str, str] = dict(self.image.env)
        declared: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = self.config_map(objects, ref["name"], ref.get("optional", False))
            elif "secretRef" in source:
                ref = source["secretRef"]
                data = self.secret(objects, ref["name"], ref.get("optional", False))
            else:
                raise PodFailed(f"{self.name}: envFrom {source} is neither a ConfigMap nor a Secret")
            declared.update({prefix + k: v for k, v in data.items()})
        for entry in self.container.get("env", []):
            declared[entry["name"]] = self.env_value(objects, entry, declared)
        env.update(declared)
        if self.spec.get("enableServiceLinks", True):
            for key, value in service_links.items():
                env.setdefault(key, value)
        env["HOSTNAME"] = self.name
        env.update(self.irsa(objects, env))
        env.update(extra_env)
        return {key: resolve_dns(value) for key, value in env.items()}

    def config_map(self, objects, name, optional) -> dict[str, str]:
        try:
            return dict(find(objects, "ConfigMap", name).get("data", {}))
        except AssertionError:
            if optional:
                return {}
            raise PodFailed(f"{self.name}: CreateContainerConfigError: configmap {name!r} not found") from None

    def secret(self, objects, name, optional) -> dict[str, str]:
        try:
            secret = find(objects, "Secret", name)
        except AssertionError:
            if optional:
                return {}
            raise PodFailed(f"{self.name}: CreateContainerConfigError: secret {name!r} not found") from None
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        data.update(secret.get("stringData", {}))
        return data

    def env_value(self, objects, entry, earlier: dict[str, str]) -> str:
        if "valueFrom" not in entry:
            # $(VAR) refers to an earlier variable; $$ escapes; an unknown reference stays as written.
            def expand(match):
                if match.group(0) == "$$":
                    return "$"
                return earlier.get(match.group(1), match.group(0))

            return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", expand, entry.get("value", ""))
        ref = entry["valueFrom"]
        if "configMapKeyRef" in ref:
            key_ref = ref["configMapKeyRef"]
            data = self.config_map(objects, key_ref["name"], key_ref.get("optional", False))
        elif "secretKeyRef" in ref:
            key_ref = ref["secretKeyRef"]
            data = self.secret(objects, key_ref["name"], key_ref.get("optional", False))
        elif "fieldRef" in ref:
            fields = {"metadata.name": self.name, "metadata.namespace": self.namespace, "status.podIP": self.ip,
                      "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
                      "spec.nodeName": "k8s-run-node", "status.hostIP": "127.0.0.1"}
            path = ref["fieldRef"]["fieldPath"]
            if path not in fields:
                raise PodFailed(f"{self.name}: fieldRef {path} is not supported here")
            return fields[path]
        else:
            raise PodFailed(f"{self.name}: valueFrom {ref} is not supported here")
        if key_ref["key"] not in data:
            if key_ref.get("optional", False):
                return ""
            raise PodFailed(f"{self.name}: CreateContainerConfigError: key {key_ref['key']!r} not in {key_ref['name']!r}")
        return data[key_ref["key"]]

    def irsa(self, objects, env) -> dict[str, str]:
        """What the EKS pod identity webhook injects for the pod's ServiceAccount."""
        account = self.spec.get("serviceAccountName", "default")
        try:
            service_account = find(objects, "ServiceAccount", account)
        except AssertionError:
            raise PodFailed(f"{self.name}: serviceaccount {account!r} not found — the ReplicaSet cannot create the pod") from None
        role = service_account["metadata"].get("annotations", {}).get(IRSA_ANNOTATION)
        if not role:
            return {}
        token = self.sandbox / "irsa" / "token"
        self.irsa_subject = f"system:serviceaccount:{self.namespace}:{account}"
        injected = {"AWS_ROLE_ARN": role, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
                    "AWS_STS_REGIONAL_ENDPOINTS": "regional"}
        # The webhook leaves variables the container sets itself alone.
        return {k: v for k, v in injected.items() if k not in env}

    # -- running -----------------------------------------------------------------------------

    def start(self, token: str | None):
        """Creates the sandbox (a read-only working directory, the projected IRSA token) and
        starts the process and the kubelet's probe loop."""
        security = {**self.spec.get("securityContext", {}), **self.container.get("securityContext", {})}
        uid, gid = security.get("runAsUser"), security.get("runAsGroup", security.get("runAsUser"))
        switch_user = os.geteuid() == 0 and uid is not None
        self.sandbox.mkdir(parents=True)
        os.chmod(self.sandbox, 0o755)
        # The image's binary, where the pod's user can execute it.
        bin_dir = self.sandbox / "usr-local-bin"
        bin_dir.mkdir()
        binary = bin_dir / self.image.binary.name
        shutil.copy2(self.image.binary, binary)
        os.chmod(bin_dir, 0o555)
        if "AWS_WEB_IDENTITY_TOKEN_FILE" in self.env:
            assert token, f"{self.name}: IRSA needs a projected token"
            path = pathlib.Path(self.env["AWS_WEB_IDENTITY_TOKEN_FILE"])
            path.parent.mkdir(parents=True)
            path.write_text(token)
            os.chmod(path, 0o644)
            os.chmod(path.parent, 0o755)
        workdir = self.sandbox / "workdir"
        workdir.mkdir()
        if security.get("readOnlyRootFilesystem"):
            os.chmod(workdir, 0o555)  # root is allowed to write anyway; the pod's user is not
            assert switch_user or os.geteuid() != 0, "a read-only working directory needs a non-root pod user"
        if self.container.get("command"):
            raise PodFailed(f"{self.name}: command overrides the image's ENTRYPOINT; not run here")
        argv = [str(binary), *self.image.entrypoint[1:], *self.container.get("args", [])]
        self.process = Process(self.name, argv, self.env, self.sandbox.parent, cwd=workdir,
                               user=uid if switch_user else None, group=gid if switch_user else None)
        self.started_at = time.monotonic()
        self.thread = threading.Thread(target=self.kubelet, name=f"kubelet-{self.name}", daemon=True)
        self.thread.start()

    def fail(self, reason: str):
        if self.failure is None:
            self.failure = f"{self.name}: {reason}"
        self.ready = False
        self.failed.set()

    def kubelet(self):
        """Startup probe first; once it succeeds, liveness and readiness on their own periods."""
        clock = time.monotonic
        startup = self.probes.get("startupProbe")
        live, ready = self.probes.get("livenessProbe"), self.probes.get("readinessProbe")
        t0 = self.started_at
        if startup:
            due, failures = t0 + startup.initial_delay, 0
            while not self.stopping.is_set():
                if not self.process.alive():
                    return self.fail(f"container exited with code {self.process.popen.returncode} before its "
                                     f"startup probe passed (CrashLoopBackOff)")
                if clock() < due:
                    time.sleep(min(0.05, due - clock()))
                    continue
                due += startup.period
                if startup.run(self.ip, self.kubernetes_version):
                    break
                failures += 1
                if failures >= startup.failure_threshold:
                    return self.fail(f"{startup.describe()} failed {failures} times ({startup.last}); "
                                     f"the kubelet kills and restarts the container")
        if self.stopping.is_set():
            return
        self.started = clock()
        schedule = {}
        counters = {}
        for probe in (live, ready):
            if probe:
                schedule[probe.kind] = self.started + probe.initial_delay
                counters[probe.kind] = [0, 0]  # consecutive successes, failures
        if not ready:
            self.ready, self.ready_at = True, clock()
        while not self.stopping.is_set():
            if not self.process.alive():
                return self.fail(f"container exited with code {self.process.popen.returncode} (CrashLoopBackOff)")
            now = clock()
            for probe in (live, ready):
                if not probe or now < schedule[probe.kind]:
                    continue
                schedule[probe.kind] += probe.period
                streak = counters[probe.kind]
                if probe.run(self.ip, self.kubernetes_version):
                    streak[0], streak[1] = streak[0] + 1, 0
                else:
                    streak[0], streak[1] = 0, streak[1] + 1
                if probe is live and streak[1] >= probe.failure_threshold:
                    return self.fail(f"{probe.describe()} failed {streak[1]} times ({probe.last}); "
                                     f"the kubelet restarts the container")
                if probe is ready:
                    if streak[0] >= probe.success_threshold and not self.ready:
                        self.ready = True
                        self.ready_at = self.ready_at or clock()
                    elif streak[1] >= probe.failure_threshold:
                        self.ready = False
            time.sleep(0.05)

    def probe_counts(self) -> dict[str, tuple[int, int]]:
        return {kind: (p.ok, p.failed) for kind, p in self.probes.items()}

    def terminate(self) -> tuple[int | None, float]:
        """SIGTERM as the kubelet sends it after preStop; returns (exit code, seconds to exit)."""
        self.stopping.set()
        if self.thread:
            self.thread.join(5)
        if self.process is None:
            return None, 0.0
        began = time.monotonic()
        grace = self.spec.get("terminationGracePeriodSeconds", 30)
        code = self.process.stop(timeout=grace)
        return code, time.monotonic() - began

    def cleanup(self):
        """Lets the sandbox be removed (the read-only directories back to writable)."""
        for path in (self.sandbox / "workdir", self.sandbox / "usr-local-bin"):
            if path.exists():
                os.chmod(path, stat.S_IRWXU)

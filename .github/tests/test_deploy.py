"""scripts/deploy.sh, the deploy workflow's release-and-roll-back step.

The cluster is played by recording `kubectl` and `kustomize` programs whose answers each test
sets (running images, rollout outcomes, the ingress host); the smoke is the real `wharf smoke`
against a real `wharf up` behind a path-routing proxy standing in for the ALB ingress, or against
a dead address. What is asserted is what an operator would see: the overlay pinned to the right
images, the rollouts waited for, and on failure exactly the changed workloads rolled back and a
non-zero exit.
"""

import http.client
import http.server
import os
import pathlib
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import REPO
from deployment_names import NAMES, SERVICES

NS = NAMES["namespace"]
INGRESS = NAMES["ingress"]["name"]
CANARY = SERVICES[NAMES["canary"]["service"]]["workload"]
WORKLOADS = {s: spec["workload"] for s, spec in SERVICES.items()}
DEPLOYMENTS = [w for w in WORKLOADS.values() if w != CANARY]

FAKE_KUBECTL = r"""#!/usr/bin/env bash
# Records every call; answers from files in $FAKE_CLUSTER.
set -euo pipefail
echo "kubectl $*" >>"$FAKE_CLUSTER/calls"
case "$1 ${2:-}" in
  "get deployment"|"get rollout")
    [ -f "$FAKE_CLUSTER/image-$3" ] || { echo "Error from server (NotFound): $2 \"$3\" not found" >&2; exit 1; }
    cat "$FAKE_CLUSTER/image-$3" ;;
  "get ingress") cat "$FAKE_CLUSTER/ingress-host" 2>/dev/null || true ;;
  "apply -k") exit "$(cat "$FAKE_CLUSTER/apply-exit" 2>/dev/null || echo 0)" ;;
  "rollout status") w=${3#deployment/}; exit "$(cat "$FAKE_CLUSTER/status-$w" 2>/dev/null || echo 0)" ;;
  "rollout undo") exit 0 ;;
  "argo rollouts")
    case "$3" in
      status) exit "$(cat "$FAKE_CLUSTER/status-$4" 2>/dev/null || echo 0)" ;;
      abort|undo) exit 0 ;;
    esac ;;
esac
echo "fake kubectl: unexpected call: $*" >&2
exit 3
"""

FAKE_KUSTOMIZE = r"""#!/usr/bin/env bash
set -euo pipefail
echo "kustomize $* (in $(basename "$PWD"))" >>"$FAKE_CLUSTER/calls"
[ "$1 $2 $3" = "edit set image" ] || { echo "fake kustomize: unexpected call: $*" >&2; exit 3; }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ingress(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Routes by path prefix, as the ALB ingress does: /api/<service> and /<service> to that service."""

    daemon_threads = True

    def __init__(self, routes: dict[str, int]):
        self.routes = routes
        super().__init__(("127.0.0.1", 0), IngressHandler)


class IngressHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def forward(self):
        port = next((p for prefix, p in self.server.routes.items() if self.path.startswith(prefix)), None)
        if port is None:
            self.send_error(404)
            return
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward


@pytest.fixture(scope="module")
def wharf() -> pathlib.Path:
    path = os.environ.get("WHARF_BIN")
    assert path, "WHARF_BIN must name a built wharf binary (scripts/check-workflows.sh builds it)"
    assert os.access(path, os.X_OK), f"{path} is not executable"
    return pathlib.Path(path)


@pytest.fixture(scope="module")
def platform(wharf, tmp_path_factory):
    """`wharf up` on free ports behind the path-routing ingress; yields the ingress host:port."""
    work = tmp_path_factory.mktemp("platform")
    ports = {s: free_port() for s in SERVICES}
    env = {
        **os.environ,
        "PRODUCTS_PORT": str(ports["products"]),
        "ORDERS_PORT": str(ports["orders"]),
        "NOTIFICATIONS_PORT": str(ports["notifications"]),
        "SEND_DELAY_EMAIL_MS": "100-200",
    }
    log = (work / "up.log").open("w")
    up = subprocess.Popen([str(wharf), "up"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    routes = {}
    for service, spec in SERVICES.items():
        routes[spec["api_prefix"]] = ports[service]
        routes[spec["ops_prefix"] + "/"] = ports[service]
    ingress = Ingress(routes)
    threading.Thread(target=ingress.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert up.poll() is None, (work / "up.log").read_text()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", ports["orders"], timeout=1)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "wharf up did not become ready:\n" + (work / "up.log").read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{ingress.server_address[1]}"
    finally:
        ingress.shutdown()
        up.terminate()
        up.wait(timeout=30)
        log.close()


@pytest.fixture
def cluster(tmp_path):
    """A fake cluster running the `old` image of every workload, and an overlay to deploy."""
    state = tmp_path / "cluster"
    state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in [("kubectl", FAKE_KUBECTL), ("kustomize", FAKE_KUSTOMIZE)]:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for workload in WORKLOADS.values():
        (state / f"image-{workload}").write_text(f"registry.example/{workload}:old")
    overlay = tmp_path / "eks-dev"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    return {"state": state, "bin": bin_dir, "overlay": overlay}


def deploy(cluster, wharf, *args: str, host: str | None = None):
    if host is not None:
        (cluster["state"] / "ingress-host").write_text(host)
    env = {
        **os.environ,
        "PATH": f"{cluster['bin']}:{os.environ['PATH']}",
        "FAKE_CLUSTER": str(cluster["state"]),
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy.sh"), "--overlay", str(cluster["overlay"]), "--wharf", str(wharf),
         "--timeout", "5", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    calls = (cluster["state"] / "calls").read_text().splitlines() if (cluster["state"] / "calls").exists() else []
    return done, calls


def image_args(*services: str) -> list[str]:
    args = []
    for s in services:
        args += ["--image", f"{s}=registry.example/{WORKLOADS[s]}:new"]
    return args


def status_calls(calls):
    return [c for c in calls if c.startswith("kubectl rollout status") or c.startswith("kubectl argo rollouts status")]


def undo_calls(calls):
    return [c for c in calls if " undo " in c or " abort " in c]


def test_a_release_that_rolls_out_and_passes_the_smoke(cluster, wharf, platform):
    done, calls = deploy(cluster, wharf, *image_args("orders"), host=platform)
    assert done.returncode == 0, done.stderr
    orders = WORKLOADS["orders"]
    # every workload pinned: the released one to its new image, the others to what runs now
    sets = [c for c in calls if c.startswith("kustomize edit set image")]
    assert f"kustomize edit set image {orders}=registry.example/{orders}:new (in eks-dev)" in sets
    for service, workload in WORKLOADS.items():
        if service != "orders":
            assert f"kustomize edit set image {workload}=registry.example/{workload}:old (in eks-dev)" in sets
    assert f"kubectl apply -k {cluster['overlay']}" in calls
    # only the changed workload is waited for, and nothing is undone
    assert status_calls(calls) == [f"kubectl rollout status deployment/{orders} -n {NS} --timeout 5s"]
    assert undo_calls(calls) == []
    assert "released: orders" in done.stderr


def test_the_canary_is_watched_with_argo_rollouts(cluster, wharf, platform):
    done, calls = deploy(cluster, wharf, *image_args("products"), host=platform)
    assert done.returncode == 0, done.stderr
    assert f"kubectl argo rollouts status {CANARY} -n {NS} --timeout 5s" in calls


def test_a_failed_smoke_rolls_back_exactly_what_changed(cluster, wharf):
    dead = f"127.0.0.1:{free_port()}"
    done, calls = deploy(cluster, wharf, *image_args("products", "notifications"), host=dead)
    assert done.returncode == 1
    assert "FAILED: wharf smoke" in done.stderr
    notifications = WORKLOADS["notifications"]
    assert undo_calls(calls) == [
        f"kubectl argo rollouts abort {CANARY} -n {NS}",
        f"kubectl argo rollouts undo {CANARY} -n {NS}",
        f"kubectl rollout undo deployment/{notifications} -n {NS}",
    ]
    # the rollback itself is waited for
    assert calls[-1] == f"kubectl rollout status deployment/{notifications} -n {NS} --timeout 5s"
    assert "rolled back: products notifications" in done.stderr


def test_a_rollout_that_does_not_finish_is_rolled_back_before_any_smoke(cluster, wharf):
    orders = WORKLOADS["orders"]
    (cluster["state"] / f"status-{orders}").write_text("1")
    done, calls = deploy(cluster, wharf, *image_args("orders"), host="unused.example")
    assert done.returncode == 1
    assert f"{orders} did not roll out" in done.stderr
    assert undo_calls(calls) == [f"kubectl rollout undo deployment/{orders} -n {NS}"]
    assert not any("ingress" in c for c in calls), "no smoke after a failed rollout"


def test_an_aborted_canary_is_undone(cluster, wharf):
    (cluster["state"] / f"status-{CANARY}").write_text("1")
    done, calls = deploy(cluster, wharf, *image_args("products", "orders"), host="unused.example")
    assert done.returncode == 1
    assert f"{CANARY} did not roll out" in done.stderr
    assert f"kubectl argo rollouts undo {CANARY} -n {NS}" in calls
    assert f"kubectl rollout undo deployment/{WORKLOADS['orders']} -n {NS}" in calls


def test_a_failed_rollback_is_reported(cluster, wharf):
    orders = WORKLOADS["orders"]
    (cluster["state"] / f"status-{orders}").write_text("1")  # stays broken after the undo too
    done, _ = deploy(cluster, wharf, *image_args("orders"), host="unused.example")
    assert done.returncode == 1
    assert "ROLLBACK INCOMPLETE" in done.stderr


def test_a_failed_apply_changes_nothing_and_undoes_nothing(cluster, wharf):
    (cluster["state"] / "apply-exit").write_text("1")
    done, calls = deploy(cluster, wharf, *image_args("orders"), host="unused.example")
    assert done.returncode == 1
    assert undo_calls(calls) == []
    assert status_calls(calls) == []


def test_a_smoke_failure_with_no_new_image_undoes_nothing(cluster, wharf):
    dead = f"127.0.0.1:{free_port()}"
    done, calls = deploy(cluster, wharf, host=dead)
    assert done.returncode == 1
    assert undo_calls(calls) == []
    assert "nothing to roll back" in done.stderr


def test_a_workload_that_does_not_run_yet_needs_an_image(cluster, wharf):
    (cluster["state"] / f"image-{WORKLOADS['notifications']}").unlink()
    done, calls = deploy(cluster, wharf, *image_args("orders"), host="unused.example")
    assert done.returncode == 2
    assert f"{WORKLOADS['notifications']} does not run in {NS} yet" in done.stderr
    assert not any(c.startswith("kubectl apply") for c in calls)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "payments=registry.example/x:1"], "unknown service 'payments'"),
        (["--image", "orders"], "SERVICE=IMAGE"),
        (["--timeout", "soon"], "positive number of seconds"),
        (["--colour"], "unknown argument '--colour'"),
    ],
)
def test_bad_usage_exits_2_before_touching_the_cluster(cluster, wharf, args, message):
    done, calls = deploy(cluster, wharf, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert calls == []

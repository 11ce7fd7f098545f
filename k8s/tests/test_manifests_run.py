"""The eks-dev manifests run.

`kubectl kustomize k8s/overlays/eks-dev` is rendered, and every workload of docs/deployment.toml is
started from its Deployment as the built binary with the environment the container would get
(kubelet.py): the ConfigMap values, `PORT` and the probes as written, IRSA as EKS injects it (the
ServiceAccount's role, a projected web-identity token), and `AWS_ENDPOINT_URL` pointing at moto,
which holds the Secrets Manager secrets the manifests name — connection strings of fresh
PostgreSQL databases and the URL of the queue, created with its DLQ. No static AWS key reaches a
pod. The pods are probed as the kubelet probes them; orders reaches products through the
productservice Service; a local ALB built from the rendered Ingress routes the requests
(network.py). With `AUTH_MODE=jwt` in the overlay, a Cognito user pool in moto issues the tokens
and only AUTH_ISSUER / AUTH_JWKS_URL / AUTH_AUDIENCE are patched to point at it.

The same run against mutated copies of the rendered manifests (a wrong port, probe path, Ingress
path, Service port, variable name, service URL or a missing IRSA role) must fail, each for the
reason a cluster would show.
"""

import copy
import json
import re
import secrets
import time
import urllib.parse

import pytest

from backing import Backing
from cluster import Cluster, config_maps_of, with_local_issuer
from network import fetch_status
from processes import http
from rendered import NAMES, SERVICES, find, render

OVERLAY = "eks-dev"


@pytest.fixture(scope="module")
def backing():
    environment = Backing(render(OVERLAY))
    try:
        yield environment
    finally:
        environment.databases.drop()


class Client:
    """Requests through the ALB, with the bearer token on /api/* when auth is on."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.alb = cluster, cluster.alb
        self.count = 0

    def __call__(self, method: str, path: str, body=None, expect: int | tuple = 200, headers=None):
        self.cluster.check()
        headers = dict(headers or {})
        if self.cluster.token and path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.cluster.token}"
        status, _, data = http(method, self.alb.url + path, body=body, headers=headers, timeout=15)
        self.count += 1
        expected = expect if isinstance(expect, tuple) else (expect,)
        if status not in expected:
            raise AssertionError(f"{method} {path} through the ALB answered {status}, expected {expect}: "
                                 f"{data[:400]!r}\nALB: {self.alb.log[-1] if self.alb.log else None}")
        return json.loads(data) if data and status != 404 else None

    def routed_to(self) -> str | None:
        return self.alb.log[-1]["service"]


def run_manifests(objects: list[dict], backing: Backing) -> dict:
    """Starts the rendered workloads and drives them through the Ingress; returns the figures."""
    objects, token = with_local_issuer(objects, backing)
    backing.moto.client("sqs").purge_queue(QueueUrl=backing.queue_url)
    report = {"auth": "jwt (Cognito in moto)" if token else "none"}
    with Cluster(objects, backing, token) as cluster:
        report["ready_after_s"] = cluster.wait_ready()
        report["alb_health_checks"] = cluster.open_alb().health_check()
        request = Client(cluster)

        for service, names in SERVICES.items():
            health = request("GET", f"{names['ops_prefix']}/health")
            assert health["service"] == names["health_name"], f"{names['ops_prefix']}/health reached {health}"
            assert request.routed_to() == names["workload"]
            request("GET", f"{names['api_prefix']}?limit=1")
            assert request.routed_to() == names["workload"]
        for path in NAMES["ingress"]["never_routed"]:
            for variant in (path, path + "/", path + "/anything"):
                request("GET", variant, expect=404)
                assert cluster.alb.log[-1]["rule"] is None, f"{variant} was routed: {cluster.alb.log[-1]}"
        # ...though the pods do serve /metrics: it is the Ingress that keeps it private.
        products = cluster.pods["products"]
        assert fetch_status(products.ip, products.ports["http"], "/metrics") == 200

        email = f"k8s-run+{secrets.token_hex(4)}@example.com"
        product = request("POST", SERVICES["products"]["api_prefix"], expect=201,
                          body={"name": f"k8s run {secrets.token_hex(3)}", "price": 2.5, "stock": 5,
                                "description": "placed through the eks-dev manifests"})
        order = request("POST", SERVICES["orders"]["api_prefix"], expect=201,
                        body={"productId": product["id"], "quantity": 1, "customerEmail": email},
                        headers={"Idempotency-Key": secrets.token_hex(8)})
        deadline, notification = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            found = request("GET", f"{SERVICES['notifications']['api_prefix']}?recipient={urllib.parse.quote(email)}")
            notification = next((n for n in found if n.get("orderId") == order["id"]), None)
            if notification and notification["status"] in ("Sent", "Failed"):
                break
            time.sleep(0.25)
        assert notification and notification["status"] == "Sent", f"no email sent for order {order['id']}: {notification}"
        assert notification["type"] == "Email" and notification["recipient"] == email
        request("GET", f"{SERVICES['orders']['api_prefix']}/{order['id']}")
        report["order"] = {"product": product["id"], "order": order["id"], "notification": notification["id"],
                           "status": notification["status"]}

        # Each service wrote to the database its secret names, nowhere else.
        databases = backing.databases
        assert databases.query("products", f"SELECT count(*) FROM products WHERE id = {int(product['id'])}") == "1"
        assert databases.query("orders", f"SELECT customer_email FROM orders WHERE id = {int(order['id'])}") == email
        assert databases.query("notifications", f"SELECT status FROM notifications WHERE order_id = {int(order['id'])}"
                               f" AND recipient = '{email}'") == "Sent"
        depths = backing.moto.queue_depths(backing.queue_url, backing.dlq_url)
        assert not any(depths.values()), f"messages left on the queues: {depths}"
        report["queues"] = depths

        # Keep probing until every pod has had two liveness checks, as the kubelet goes on doing.
        until = max(p.started + p.probes["livenessProbe"].period + 0.5 for p in cluster.pods.values())
        while time.monotonic() < until:
            cluster.check()
            time.sleep(0.1)
        cluster.check()
        for service, pod in cluster.pods.items():
            counts = pod.probe_counts()
            assert counts["livenessProbe"][0] >= 2 and counts["livenessProbe"][1] == 0, f"{service}: {counts}"
            assert counts["readinessProbe"][1] == 0, f"{service} turned unready: {counts}"
        report["probes_ok_failed"] = {s: p.probe_counts() for s, p in cluster.pods.items()}
        report["alb_requests"] = len(cluster.alb.log)
        report["alb_routed"] = {}
        for entry in cluster.alb.log:
            key = entry["service"] or "not routed (404)"
            report["alb_routed"][key] = report["alb_routed"].get(key, 0) + 1

        # Termination: SIGTERM after the preStop pause; the pod must exit cleanly in what is left
        # of terminationGracePeriodSeconds.
        report["terminated_s"] = {}
        for service, pod in cluster.pods.items():
            pause = pod.container["lifecycle"]["preStop"]["sleep"]["seconds"]
            budget = pod.spec["terminationGracePeriodSeconds"] - pause
            code, took = pod.terminate()
            assert code == 0 and took < budget, f"{service}: exit {code} after {took:.1f}s (budget {budget}s)"
            report["terminated_s"][service] = round(took, 2)
    return report


def test_eks_dev_manifests_run(backing):
    report = run_manifests(render(OVERLAY), backing)
    print("manifests run:", json.dumps(report, indent=1))
    assert report["alb_routed"]["not routed (404)"] == 3 * len(NAMES["ingress"]["never_routed"])


# A wrong manifest fails the run.

def deployment(objects, service):
    return find(objects, "Deployment", SERVICES[service]["workload"])


def container_of(objects, service):
    return deployment(objects, service)["spec"]["template"]["spec"]["containers"][0]


def config_map(objects, service):
    (found,) = config_maps_of(objects, deployment(objects, service))
    return found["data"]


def wrong_container_port(objects):
    for port in container_of(objects, "products")["ports"]:
        port["containerPort"] += 10


def wrong_readiness_path(objects):
    container_of(objects, "orders")["readinessProbe"]["httpGet"]["path"] += "z"


def wrong_variable_name(objects):
    data = config_map(objects, "notifications")
    data["DATABASE_URL_SECRETS"] = data.pop("DATABASE_URL_SECRET")


def wrong_ingress_path(objects):
    ingress = find(objects, "Ingress", NAMES["ingress"]["name"])
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        if path["path"] == SERVICES["orders"]["api_prefix"]:
            path["path"] = path["path"].rstrip("s")


def wrong_service_port(objects):
    (port,) = find(objects, "Service", SERVICES["orders"]["workload"])["spec"]["ports"]
    port["targetPort"] = "web"


def wrong_service_url(objects):
    data = config_map(objects, "orders")
    data["PRODUCTS_URL"] = data["PRODUCTS_URL"].replace(SERVICES["products"]["workload"], "productsservice")


def no_irsa_role(objects):
    account = find(objects, "ServiceAccount", SERVICES["products"]["workload"])
    del account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]


PRODUCTS, ORDERS = SERVICES["products"], SERVICES["orders"]
STARTUP, READINESS = NAMES["rollout"]["probe_startup"], NAMES["rollout"]["probe_readiness"]
MUTATIONS = {
    # name: (mutation, what the failure says)
    "container port": (wrong_container_port,
                       rf"startupProbe GET :{PRODUCTS['container_port'] + 10}{STARTUP} every \d+s failed \d+ times"),
    "readiness path": (wrong_readiness_path, rf"never Ready \(readinessProbe GET :{ORDERS['container_port']}{READINESS}z"),
    # Without its secret the service falls back to a SQLite file it may not create on a read-only root.
    "variable name": (wrong_variable_name, r"(?s)container exited with code 1.*SQLite database: Permission denied"),
    "ingress path": (wrong_ingress_path, rf"GET {ORDERS['api_prefix']}\?limit=1 through the ALB answered 404"),
    "service targetPort": (wrong_service_port, rf"target group of {ORDERS['workload']}: no registered target"),
    "service URL": (wrong_service_url, rf"(?s)POST {ORDERS['api_prefix']} through the ALB answered 503.*cannot connect to products.*dns error"),
    "IRSA role": (no_irsa_role, rf"(?s){PRODUCTS['workload']}-k8srun-\w+: container exited.*cannot read secret "
                                rf"\"{re.escape(PRODUCTS['connection_secret'])}\" "
                                r"named by DATABASE_URL_SECRET: .*credentials"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_wrong_manifest_fails_the_run(backing, mutation):
    change, reason = MUTATIONS[mutation]
    objects = copy.deepcopy(render(OVERLAY))
    before = json.dumps(objects, sort_keys=True)
    change(objects)
    assert json.dumps(objects, sort_keys=True) != before, f"mutation {mutation} changed nothing"
    with pytest.raises(AssertionError, match=reason) as failure:
        run_manifests(objects, backing)
    print(f"{mutation}: {str(failure.value)[:300]}")

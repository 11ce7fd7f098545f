"""Every overlay renders, and agrees with docs/deployment.toml and with what wharf needs of a pod.

The names and numbers come from docs/deployment.toml (scripts/deployment_names.py); nothing here
re-types them. The Argo Rollouts objects are checked field by field against the v1alpha1 API
(Argo Rollouts v1.8) names wharf relies on, since no CRD schema is vendored.
"""

import re

import pytest

from rendered import K8S, NAMES, SERVICES, all_of, config_env, container, find, pod_spec, render

OVERLAYS = NAMES["k8s"]["overlays"]
EKS = NAMES["k8s"]["eks_overlays"]
CANARY = NAMES["k8s"]["canary_overlays"]
ROLLOUT = NAMES["rollout"]


def test_every_overlay_directory_is_known():
    on_disk = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
    assert on_disk == sorted(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_and_workloads(overlay):
    objects = render(overlay)
    namespace = NAMES["namespace"]
    find(objects, "Namespace", namespace)
    for service, names in SERVICES.items():
        for kind in ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            obj = find(objects, kind, names["workload"])
            assert obj["metadata"]["namespace"] == namespace, f"{kind} {names['workload']}"
    for obj in objects:
        if obj["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            continue
        assert obj["metadata"].get("namespace"), f"{obj['kind']} {obj['metadata']['name']} has no namespace"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", list(SERVICES))
def test_ports_probes_and_rolling_update(overlay, service):
    objects = render(overlay)
    names = SERVICES[service]
    c = container(objects, service)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert list(ports.values()) == [names["container_port"]]
    env = config_env(objects, service)
    assert env["PORT"] == str(names["container_port"])
    assert env["HOST"] == "0.0.0.0", "a pod must listen on its pod IP, not loopback"

    def probe_port(probe):
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port

    for kind, path in (("startupProbe", ROLLOUT["probe_startup"]), ("livenessProbe", ROLLOUT["probe_liveness"]),
                       ("readinessProbe", ROLLOUT["probe_readiness"])):
        probe = c[kind]
        assert probe["httpGet"]["path"] == path, kind
        assert probe_port(probe) == names["container_port"], kind
    # Tuned to a ~100 ms start: the first check after a second, not the guide's 30 s.
    assert c["startupProbe"].get("initialDelaySeconds", 0) == 0
    assert c["startupProbe"]["periodSeconds"] <= 2

    deployment = find(objects, "Deployment", names["workload"])
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxSurge": ROLLOUT["update_max_surge"],
                                         "maxUnavailable": ROLLOUT["update_max_unavailable"]}

    svc = find(objects, "Service", names["workload"])
    (port,) = svc["spec"]["ports"]
    assert port["port"] == names["service_port"]
    target = port["targetPort"]
    assert (ports[target] if isinstance(target, str) else target) == names["container_port"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selects no pod"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", list(SERVICES))
def test_shutdown_outlasts_prestop_and_drain(overlay, service):
    objects = render(overlay)
    spec = pod_spec(objects, service)
    c = container(objects, service)
    grace = int(config_env(objects, service)["SHUTDOWN_GRACE_SECS"])
    assert grace == NAMES["k8s"]["shutdown_grace_secs"]
    pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0
    assert spec["terminationGracePeriodSeconds"] > pause + grace


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", list(SERVICES))
def test_pod_hardening(overlay, service):
    objects = render(overlay)
    spec = pod_spec(objects, service)
    c = container(objects, service)
    uid = NAMES["k8s"]["pod_uid"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == uid
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == uid
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
    assert spec["serviceAccountName"] == SERVICES[service]["workload"]
    zones = [t for t in spec["topologySpreadConstraints"] if t["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zones, "pods are not spread across zones"
    res = c["resources"]
    for key in ("cpu", "memory"):
        assert res["requests"][key] and res["limits"][key]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpa_and_pdb(overlay):
    objects = render(overlay)
    for service, names in SERVICES.items():
        hpa = find(objects, "HorizontalPodAutoscaler", names["workload"])
        want = names["hpa"]
        spec = hpa["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (want["min"], want["max"])
        targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in spec["metrics"]}
        assert targets == {k: want[k] for k in ("cpu", "memory") if k in want}
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
        kind = "Rollout" if overlay in CANARY and service == NAMES["canary"]["service"] else "Deployment"
        assert spec["scaleTargetRef"]["kind"] == kind and spec["scaleTargetRef"]["name"] == names["workload"]
        pdb = find(objects, "PodDisruptionBudget", names["workload"])
        if "maxUnavailable" in pdb["spec"]:
            assert 1 <= pdb["spec"]["maxUnavailable"] < want["min"]
        else:
            assert pdb["spec"]["minAvailable"] < want["min"]
        labels = find(objects, "Deployment", names["workload"])["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
        # The HPA owns the count: a replica number in the manifest would reset it on every apply.
        deployment = find(objects, "Deployment", names["workload"])
        assert deployment["spec"].get("replicas") == (0 if kind == "Rollout" else None)


def routes(objects):
    ingress = find(objects, "Ingress", NAMES["ingress"]["name"])
    return ingress, [(p["path"], p["pathType"], p["backend"]["service"]) for r in ingress["spec"]["rules"]
                     for p in r["http"]["paths"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes(overlay):
    objects = render(overlay)
    ingress, table = routes(objects)
    want = {}
    for names in SERVICES.values():
        want[names["api_prefix"]] = names["workload"]
        want[names["ops_prefix"]] = names["workload"]
    assert {path: svc["name"] for path, _, svc in table} == want
    assert all(kind == "Prefix" for _, kind, _ in table)
    for never in NAMES["ingress"]["never_routed"]:
        assert not any(path == never or path.startswith(never + "/") or never.startswith(path.rstrip("/") + "/")
                       for path, _, _ in table), f"{never} is routed"
    for _, _, svc in table:
        if overlay in CANARY and svc["name"] == SERVICES[NAMES["canary"]["service"]]["workload"]:
            assert svc["port"] == {"name": "use-annotation"}
        else:
            assert svc["port"] == {"number": 80}
    if overlay in EKS:
        assert ingress["spec"]["ingressClassName"] == NAMES["ingress"]["class"]
        notes = ingress["metadata"]["annotations"]
        assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert notes["alb.ingress.kubernetes.io/healthcheck-path"] == ROLLOUT["probe_readiness"]
        assert notes["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert re.fullmatch(r"arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+",
                            notes["alb.ingress.kubernetes.io/certificate-arn"])
        assert re.fullmatch(r"arn:aws:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[\w-]+/[0-9a-f-]+",
                            notes["alb.ingress.kubernetes.io/wafv2-acl-arn"])
        attributes = dict(pair.split("=", 1) for pair in notes["alb.ingress.kubernetes.io/load-balancer-attributes"].split(","))
        assert int(attributes["idle_timeout.timeout_seconds"]) == NAMES["ingress"]["alb_idle_timeout_secs"]


def rust_default_idle_timeout_secs():
    source = (K8S.parent / "services" / "edge" / "src" / "server.rs").read_text()
    match = re.search(r"pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = (\d+);", source)
    assert match, "services/edge/src/server.rs no longer declares DEFAULT_IDLE_TIMEOUT_SECS"
    return int(match.group(1))


@pytest.mark.parametrize("overlay", EKS)
@pytest.mark.parametrize("service", list(SERVICES))
def test_the_alb_closes_idle_connections_before_the_services(overlay, service):
    # A target that closes an idle keep-alive connection before the ALB does gets 502s.
    idle = int(config_env(render(overlay), service).get("HTTP_IDLE_TIMEOUT_SECS", rust_default_idle_timeout_secs()))
    assert idle > NAMES["ingress"]["alb_idle_timeout_secs"], f"{service}: HTTP_IDLE_TIMEOUT_SECS {idle}"


@pytest.mark.parametrize("overlay", EKS)
def test_eks_settings_and_secrets(overlay):
    objects = render(overlay)
    region = NAMES["aws"]["region"]
    for service, names in SERVICES.items():
        env = config_env(objects, service)
        assert env["DATABASE_URL_SECRET"] == names["connection_secret"]
        assert "DATABASE_URL" not in env
        assert env["AWS_REGION"] == region
        assert env["AUTH_MODE"] == "jwt"
        assert env["AUTH_ISSUER"].startswith(f"https://cognito-idp.{region}.amazonaws.com/")
        assert env["AUTH_AUDIENCE"]
        assert int(env["RATE_LIMIT_PER_SECOND"]) > 0 and int(env["RATE_LIMIT_BURST"]) >= int(env["RATE_LIMIT_PER_SECOND"])
        assert env["TRUST_FORWARDED_FOR"] == "true"
        assert env["OTEL_SERVICE_NAME"] == names["health_name"]
        obs = NAMES["observability"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://{obs['collector']}.{obs['collector_namespace']}.svc.cluster.local:{obs['otlp_http_port']}")
        if env.get("BUS"):
            assert env["BUS"] == "sqs"
            assert env["BUS_QUEUE"] == NAMES["queue"]["name"]
            assert env["SQS_QUEUE_URL_SECRET"] == NAMES["queue"]["url_secret"]
            assert env["BUS_MAX_ATTEMPTS"] == str(NAMES["queue"]["max_receive_count"])
            assert env["BUS_PROVISION"] == "false"
        sa = find(objects, "ServiceAccount", names["workload"])
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
        image = container(objects, service)["image"]
        assert re.fullmatch(rf"\d{{12}}\.dkr\.ecr\.{region}\.amazonaws\.com/{names['workload']}:[\w.-]+", image), image
    orders = config_env(objects, "orders")
    products = SERVICES["products"]
    assert orders["PRODUCTS_URL"] == f"http://{products['workload']}.{NAMES['namespace']}.svc.cluster.local"
    obs = NAMES["observability"]
    collector = find(objects, "Service", obs["collector"])
    assert collector["metadata"]["namespace"] == obs["collector_namespace"]
    deployment = find(objects, "Deployment", obs["collector"])
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == obs["collector_service_account"], "Terraform's IRSA role trusts this account name"
    assert find(objects, "ServiceAccount", account)["metadata"]["namespace"] == obs["collector_namespace"]
    assert [p["port"] for p in collector["spec"]["ports"]] == [obs["otlp_http_port"]]
    fluent = find(objects, "DaemonSet", "fluent-bit")
    fenv = {e["name"]: e.get("value") for e in fluent["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert fenv["LOG_GROUP_NAME"] == obs["log_group"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_connection_string_or_password(overlay):
    text_objects = render(overlay)
    for obj in text_objects:
        if obj["kind"] == "Secret":
            assert overlay == "local", f"Secret {obj['metadata']['name']} in {overlay}: EKS reads Secrets Manager"
            continue
        blob = repr(obj)
        assert not re.search(r"postgres(ql)?://[^'\"\s]*:[^'\"\s@]*@", blob), obj["metadata"]["name"]
        if overlay in EKS:
            assert "postgres://" not in blob and "amqp://" not in blob, obj["metadata"]["name"]
        assert not re.search(r"(?i)password\s*[:=]\s*\S", blob), obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", CANARY)
def test_canary_rollout_fields(overlay):
    """The Rollout and AnalysisTemplates by the Argo Rollouts v1alpha1 field names."""
    objects = render(overlay)
    canary = NAMES["canary"]
    products = SERVICES[canary["service"]]
    rollout = find(objects, "Rollout", products["workload"])
    assert rollout["apiVersion"] == "argoproj.io/v1alpha1"
    spec = rollout["spec"]
    assert set(spec) <= {"replicas", "selector", "template", "workloadRef", "minReadySeconds", "revisionHistoryLimit",
                         "paused", "progressDeadlineSeconds", "progressDeadlineAbort", "restartAt", "strategy",
                         "analysis", "rollbackWindow"}
    ref = spec["workloadRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", products["workload"])
    assert ref["scaleDown"] in ("never", "onsuccess", "progressively")
    deployment = find(objects, "Deployment", products["workload"])
    assert spec["selector"] == deployment["spec"]["selector"]
    strategy = spec["strategy"]["canary"]
    assert strategy["stableService"] == canary["stable_service"]
    assert strategy["canaryService"] == canary["canary_service"]
    alb = strategy["trafficRouting"]["alb"]
    assert alb["ingress"] == NAMES["ingress"]["name"]
    assert alb["rootService"] == products["workload"]
    assert alb["servicePort"] == products["service_port"]
    for name in (canary["stable_service"], canary["canary_service"], products["workload"]):
        svc = find(objects, "Service", name)
        assert [p["port"] for p in svc["spec"]["ports"]] == [products["service_port"]]
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    steps = strategy["steps"]
    for step in steps:
        assert len(step) == 1 and next(iter(step)) in ("setWeight", "pause", "analysis", "setCanaryScale",
                                                       "experiment", "setHeaderRoute", "setMirrorRoute", "plugin")
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == canary["weights"]
    # An analysis between every two weights.
    kinds = [next(iter(s)) for s in steps]
    for a, b in zip([i for i, k in enumerate(kinds) if k == "setWeight"], [i for i, k in enumerate(kinds) if k == "setWeight"][1:]):
        assert "analysis" in kinds[a:b], f"no analysis between weights at steps {a} and {b}"
    templates = {t["metadata"]["name"]: t for t in all_of(objects, "AnalysisTemplate")}
    for step in steps:
        if "analysis" in step:
            for ref in step["analysis"]["templates"]:
                template = templates[ref["templateName"]]
                declared = {a["name"] for a in template["spec"]["args"]}
                given = {a["name"] for a in step["analysis"].get("args", [])}
                required = {a["name"] for a in template["spec"]["args"] if "value" not in a and "valueFrom" not in a}
                assert required <= given <= declared
                for arg in step["analysis"]["args"]:
                    assert ("value" in arg) != ("valueFrom" in arg)
                    if "valueFrom" in arg:
                        source = arg["valueFrom"]
                        assert source in ({"podTemplateHashValue": "Latest"}, {"podTemplateHashValue": "Stable"}) or \
                            set(source) == {"fieldRef"}
    # The ALB actions annotation routes everything to stable until the controller writes weights.
    ingress = find(objects, "Ingress", NAMES["ingress"]["name"])
    import json

    action = json.loads(ingress["metadata"]["annotations"][f"alb.ingress.kubernetes.io/actions.{products['workload']}"])
    groups = {g["serviceName"]: g["weight"] for g in action["forwardConfig"]["targetGroups"]}
    assert groups == {canary["stable_service"]: 100, canary["canary_service"]: 0}


@pytest.mark.parametrize("overlay", CANARY)
def test_analysis_template_fields(overlay):
    objects = render(overlay)
    templates = all_of(objects, "AnalysisTemplate")
    assert {"prometheus", "cloudWatch"} <= {p for t in templates for m in t["spec"]["metrics"] for p in m["provider"]}
    for template in templates:
        assert template["apiVersion"] == "argoproj.io/v1alpha1"
        declared = {a["name"] for a in template["spec"]["args"]}
        for metric in template["spec"]["metrics"]:
            assert set(metric) <= {"name", "interval", "initialDelay", "count", "successCondition", "failureCondition",
                                   "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "provider",
                                   "consecutiveSuccessLimit"}
            assert metric["successCondition"]
            (provider,) = metric["provider"]
            body = metric["provider"][provider]
            if provider == "prometheus":
                assert set(body) <= {"address", "query", "timeout", "insecure", "headers", "authentication", "rangeQuery"}
                assert body["query"] and body["address"]
            else:
                assert provider == "cloudWatch" and set(body) <= {"interval", "metricDataQueries"}
                import json

                queries = json.loads(re.sub(r"\{\{args\.[\w-]+\}\}", "x", body["metricDataQueries"]))
                assert all({"Id"} <= set(q) and ("Expression" in q) != ("MetricStat" in q) for q in queries)
            used = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", repr(metric)))
            assert used <= declared, f"{template['metadata']['name']}/{metric['name']} uses undeclared {used - declared}"


@pytest.mark.parametrize("overlay", EKS)
def test_network_policies(overlay):
    objects = render(overlay)
    policies = {p["metadata"]["name"]: p["spec"] for p in all_of(objects, "NetworkPolicy")}
    deny = [s for s in policies.values() if s["podSelector"] == {} and set(s["policyTypes"]) == {"Ingress", "Egress"}
            and not s.get("ingress") and not s.get("egress")]
    assert deny, "no default-deny policy"
    egress_ports = {port.get("port") for s in policies.values() for rule in s.get("egress", []) for port in rule.get("ports", [])}
    assert {53, 5432, 443, NAMES["observability"]["otlp_http_port"], "http"} <= egress_ports
    ingress_ports = {port.get("port") for s in policies.values() for rule in s.get("ingress", []) for port in rule.get("ports", [])}
    assert ingress_ports == {"http"}
    products = SERVICES["products"]["workload"]
    orders = SERVICES["orders"]["workload"]
    assert any(s["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == products and
               any(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == orders
                   for rule in s.get("ingress", []) for peer in rule["from"]) for s in policies.values())

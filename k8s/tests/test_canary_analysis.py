"""The canary AnalysisTemplate's PromQL against a real Prometheus.

Four products processes play the stable ReplicaSet and three canary releases, each with its own
pod-template hash as a Rollout would give a new release: a healthy one, one broken by
`wharf chaos errors` and one slowed by `wharf chaos latency`. Prometheus scrapes them with the
labels its Kubernetes scrape job would attach (namespace, rollouts_pod_template_hash; see
k8s/README.md). The test takes the template's own queries and success conditions, substitutes the
arguments the Rollout passes (the canary's pod-template hash, the Rollout's namespace), asks
Prometheus' HTTP API as the Argo Rollouts controller would, and evaluates the conditions: they
hold for the healthy canary and the stable pods, the error ratio fails for the erroring canary
and the p99 latency for the slow one.
"""

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from processes import Process, bin_dir, free_port, http, wait_until
from rendered import NAMES, SERVICES, find, render

# Pod-template hashes: the stable ReplicaSet and three canary releases.
HASHES = {"stable": "5d8f7c9b6d", "healthy": "7c4b9d8f5f", "erroring": "6b9f5c7d4d", "slow": "84d6c5b9f7"}


def template_and_step_args():
    overlay = NAMES["k8s"]["canary_overlays"][0]
    objects = render(overlay)
    products = SERVICES[NAMES["canary"]["service"]]
    rollout = find(objects, "Rollout", products["workload"])
    step = next(s["analysis"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in s)
    (ref,) = step["templates"]
    template = find(objects, "AnalysisTemplate", ref["templateName"])
    return rollout, step["args"], template


def resolve_args(rollout, step_args, template, canary_hash, prometheus):
    """The AnalysisRun's arguments: the template's defaults, then what the Rollout step passes."""
    args = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    for arg in step_args:
        if "value" in arg:
            args[arg["name"]] = arg["value"]
        elif arg["valueFrom"].get("podTemplateHashValue") == "Latest":
            args[arg["name"]] = canary_hash
        elif arg["valueFrom"].get("fieldRef"):
            path = arg["valueFrom"]["fieldRef"]["fieldPath"]
            value = rollout
            for part in path.split("."):
                value = value[part]
            args[arg["name"]] = value
        else:
            raise AssertionError(f"unsupported analysis argument {arg}")
    # Where Prometheus runs is the one thing a deployment changes; here it is the local one.
    assert "prometheus-address" in args
    args["prometheus-address"] = prometheus
    missing = [k for k, v in args.items() if v is None]
    assert not missing, f"arguments without a value: {missing}"
    return args


def substitute(text: str, args: dict) -> str:
    def one(match):
        return str(args[match.group(1)])

    return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", one, text)


def condition_holds(condition: str, result: list[float]) -> bool:
    """The few expr-lang forms the template uses: len(), isNaN(), result[i], comparisons, ||, &&."""
    assert re.fullmatch(r"[\w\s\[\]().<>=|&!0-9]+", condition), f"unexpected condition syntax: {condition}"
    expression = condition.replace("||", " or ").replace("&&", " and ").replace("isNaN(", "math.isnan(")
    return bool(eval(expression, {"__builtins__": {}, "len": len, "math": math}, {"result": result}))  # noqa: S307


def query(prometheus: str, promql: str) -> list[float]:
    status, _, body = http("GET", f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", f"Prometheus refused the query:\n{promql}\n{answer}"
    data = answer["data"]
    assert data["resultType"] == "vector", data["resultType"]
    return [float(sample["value"][1]) for sample in data["result"]]


def evaluate(template, args, prometheus):
    """metric name -> (values, success) for every Prometheus metric of the template."""
    verdicts = {}
    for metric in template["spec"]["metrics"]:
        provider = metric["provider"]["prometheus"]
        promql = substitute(provider["query"], args)
        assert "{{" not in promql
        values = query(substitute(provider["address"], args), promql)
        verdicts[metric["name"]] = (values, condition_holds(substitute(metric["successCondition"], args), values))
    return verdicts


class Traffic:
    """A few client threads reading the catalogue of one process until stopped."""

    def __init__(self, base: str, threads: int = 3):
        self.base, self.stop_flag, self.counts = base, threading.Event(), {}
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        while not self.stop_flag.is_set():
            for path in ("/api/products", "/api/products/1"):
                try:
                    status, _, _ = http("GET", self.base + path, timeout=5)
                except OSError:
                    status = "error"
                self.counts[status] = self.counts.get(status, 0) + 1
            time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join()


@pytest.fixture
def pods(tmp_path):
    binaries = bin_dir()
    started = []
    urls = {}
    try:
        for role in HASHES:
            port = free_port()
            env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port),
                   "DATABASE_URL": f"sqlite://{tmp_path}/{role}.db?mode=rwc", "CHAOS_ENABLED": "true",
                   "SEED_DEMO_DATA": "true", "LOG_FORMAT": "json", "RUST_LOG": "warn"}
            process = Process(f"products-{role}", [str(binaries / "products")], env, tmp_path)
            started.append(process)
            urls[role] = f"http://127.0.0.1:{port}"
            wait_until(f"{role} ready", lambda u=urls[role]: http("GET", u + "/health/ready")[0] == 200, 30, process)
        yield urls, started
    finally:
        for process in started:
            process.stop()


@pytest.fixture
def prometheus(tmp_path, pods):
    urls, _ = pods
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (scripts/check-k8s.sh installs Debian's package)"
    port = free_port()
    targets = [{"targets": [urls[role].removeprefix("http://")],
                "labels": {"namespace": NAMES["namespace"], "rollouts_pod_template_hash": pod_hash}}
               for role, pod_hash in HASHES.items()]
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "wharf-products", "metrics_path": "/metrics", "static_configs": targets}],
    }))
    process = Process("prometheus", [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                      {"PATH": os.environ["PATH"]}, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("Prometheus ready", lambda: http("GET", url + "/-/ready")[0] == 200, 60, process)
        yield url
    finally:
        process.stop()


def test_template_names_exist_in_live_metrics(pods):
    """Every metric and label the queries select on is what products exports (the namespace and
    pod-template-hash labels are the scrape job's)."""
    urls, _ = pods
    _, _, template = template_and_step_args()
    http("GET", urls["stable"] + "/api/products")
    _, _, body = http("GET", urls["stable"] + "/metrics")
    exposition = body.decode()
    placeholders = {a["name"]: "x" for a in template["spec"]["args"]}
    for metric in template["spec"]["metrics"]:
        promql = substitute(metric["provider"]["prometheus"]["query"], placeholders)
        for name, selector in re.findall(r"([a-zA-Z_:][\w:]*)\{([^}]*)\}", promql):
            lines = [line for line in exposition.splitlines() if line.startswith(name + "{")]
            assert lines, f"{name} (query of {metric['name']}) is not in products' /metrics"
            for label in re.findall(r"(\w+)\s*[=!]~?", selector):
                if label in ("namespace", "rollouts_pod_template_hash"):
                    continue
                assert any(re.search(rf"[{{,]{label}=", line) for line in lines), f"{name} has no label {label}"


def run_chaos(*args):
    done = subprocess.run([str(bin_dir() / "wharf"), "chaos", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"wharf chaos {' '.join(args)}: {done.stdout}{done.stderr}"


def test_analysis_passes_healthy_canary_and_fails_broken_one(pods, prometheus):
    urls, processes = pods
    rollout, step_args, template = template_and_step_args()
    args = {role: resolve_args(rollout, step_args, template, pod_hash, prometheus) for role, pod_hash in HASHES.items()}
    assert args["healthy"]["namespace"] == NAMES["namespace"]

    run_chaos("errors", "--service", "products", "--url", urls["erroring"], "--rate", "0.5", "--status", "503", "--for", "60s")
    run_chaos("latency", "--service", "products", "--url", urls["slow"], "--ms", "900", "--for", "60s")
    traffic = {role: Traffic(urls[role], threads=6 if role == "slow" else 3) for role in HASHES}
    with contextlib.ExitStack() as running:
        for t in traffic.values():
            running.enter_context(t)
        time.sleep(10)
    # Enough scrapes for rate() over the window to see the traffic just driven.
    time.sleep(3)
    verdicts = {role: evaluate(template, args[role], prometheus) for role in HASHES}
    for role in HASHES:
        print(f"{role}: {verdicts[role]} requests {traffic[role].counts}")

    for role in ("stable", "healthy"):
        assert all(ok for _, ok in verdicts[role].values()), f"the {role} pods failed the analysis: {verdicts[role]}"
        assert all(values for values, _ in verdicts[role].values()), f"no data for the {role} pods: {verdicts[role]}"
        assert verdicts[role]["error-ratio"][0][0] == 0

    erroring = verdicts["erroring"]
    assert traffic["erroring"].counts.get(503, 0) > 50
    assert erroring["error-ratio"][1] is False, f"the error ratio passed an erroring canary: {erroring}"
    assert erroring["error-ratio"][0][0] > 0.1

    slow = verdicts["slow"]
    assert slow["p99-latency"][1] is False, f"the p99 latency passed a slow canary: {slow}"
    assert slow["p99-latency"][0][0] > 0.5
    for process in processes:
        assert process.alive(), process.output()[-2000:]

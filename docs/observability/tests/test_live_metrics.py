"""Every series the dashboards and alerts read is on a live /metrics of the services after a
smoke run: `wharf up` (the three services in one process, embedded defaults, instant mock
sends) on free ports in a scratch directory, then `wharf smoke`, then one scrape per service.
Each scrape must also be valid exposition, as Prometheus text and as OpenMetrics."""

import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from conftest import SERVICES_HEALTH, dashboard_metrics

BIN = pathlib.Path(os.environ.get("WHARF_BIN_DIR", ""))
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    assert (BIN / "wharf").is_file(), f"WHARF_BIN_DIR={BIN} has no wharf binary (scripts/check-observability.sh builds it)"
    ports = {name: free_port() for name in ("products", "orders", "notifications")}
    env = {key: value for key, value in os.environ.items() if not key.endswith("_URL") and key != "PORT"}
    env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update({"SEND_DELAY_EMAIL_MS": "0", "SEND_DELAY_SMS_MS": "0", "LOG_FORMAT": "json", "RUST_LOG": "warn"})
    scratch = tmp_path_factory.mktemp("wharf-up")
    log = open(scratch / "up.log", "w")
    process = subprocess.Popen([BIN / "wharf", "up"], cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    deadline = time.monotonic() + 60
    while True:
        try:
            if all(get(f"{url}/health/ready") for url in urls.values()):
                break
        except OSError:
            pass
        assert process.poll() is None, f"wharf up exited: {(scratch / 'up.log').read_text()[-2000:]}"
        assert time.monotonic() < deadline, "wharf up not ready within 60 s"
        time.sleep(0.5)
    smoke_env = dict(env, WHARF_PRODUCTS_URL=urls["products"], WHARF_ORDERS_URL=urls["orders"],
                     WHARF_NOTIFICATIONS_URL=urls["notifications"])
    smoke = subprocess.run([BIN / "wharf", "smoke"], env=smoke_env, capture_output=True, text=True, timeout=120)
    assert smoke.returncode == 0, f"wharf smoke failed:\n{smoke.stdout}\n{smoke.stderr}"
    yield urls
    process.terminate()
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def scrapes(platform):
    return {name: get(f"{url}/metrics") for name, url in platform.items()}


def exported(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_dashboard_and_alert_series_is_exported(scrapes):
    live = set().union(*(exported(text) for _, text in scrapes.values()))
    missing = []
    for name in sorted(dashboard_metrics()):
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        if name not in live and base not in live:
            missing.append(name)
    assert not missing, f"read by a dashboard or alert but on no service's /metrics: {missing}"


@pytest.mark.parametrize("service", ["products", "orders", "notifications"])
def test_metrics_are_valid_prometheus_text_and_openmetrics(platform, service):
    _, plain = get(f"{platform[service]}/metrics")
    families = list(parse_prometheus(plain.replace("# EOF\n", "")))
    assert families, f"{service}: no metric families"
    content_type, open_metrics = get(f"{platform[service]}/metrics", "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text"), content_type
    assert list(parse_openmetrics(open_metrics)), f"{service}: no OpenMetrics families"
    result = subprocess.run(["promtool", "check", "metrics"], input=plain.replace("# EOF\n", ""), text=True,
                            capture_output=True)
    # promtool exits 3 for lint advice (naming); 1 is a parse error.
    assert result.returncode in (0, 3), f"{service}: promtool check metrics: {result.stderr}"


def test_health_names_each_service(platform):
    for service, url in platform.items():
        _, body = get(f"{url}/health")
        assert SERVICES_HEALTH[service] in body

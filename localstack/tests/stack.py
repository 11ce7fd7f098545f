"""The compose stack as processes: what localstack/tests share.

Reads localstack/docker-compose.yml as compose would (YAML merge keys, ``${VAR:-default}``
interpolation, value-less variables taken from the environment), turns a service's image ENV plus
its compose ``environment`` into a process environment with the compose host names mapped to local
addresses, and starts the built binaries as compose would start the containers.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from deployment_names import NAMES, SERVICES  # noqa: E402

import yaml  # noqa: E402

COMPOSE_FILE = REPO / NAMES["localstack"]["compose_file"]
HOOK = REPO / NAMES["localstack"]["init_dir"] / "10-wharf-aws.sh"
DATABASE_SCRIPT = REPO / "localstack" / "postgres" / "10-wharf-databases.sh"

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value, variables: dict[str, str]):
    """Compose's variable substitution on every string of a loaded document."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        current = variables.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if unset else current
        if op in (":?", "?"):
            if unset:
                raise ValueError(f"compose variable {name} is required: {arg}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(path: pathlib.Path = COMPOSE_FILE, variables: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.safe_load(path.read_text()), variables or {})


def environment_of(service: dict, variables: dict[str, str]) -> dict[str, str]:
    """A service's compose environment (map or list form); value-less entries come from `variables`."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    env = {}
    for name, value in raw.items():
        if value is None:
            if name in variables:
                env[name] = variables[name]
            continue
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def dockerfile_env(dockerfile: pathlib.Path) -> dict[str, str]:
    """The ENV of a Dockerfile's final stage (`ENV A=1 B=2` forms, continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages = re.split(r"(?im)^FROM\s", text)
    env = {}
    for line in stages[-1].splitlines():
        if line.strip().upper().startswith("ENV "):
            for pair in line.strip()[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value.strip('"')
    return env


def container_port(service: dict) -> int:
    """The container side of a service's first published port ("5000:8080")."""
    return int(str(service["ports"][0]).rsplit(":", 1)[-1])


class HostMap:
    """Compose host names (and their container ports) -> local addresses."""

    def __init__(self, hosts: dict[str, tuple[str, dict[int, int]]]):
        self.hosts = hosts

    def apply(self, value: str, is_host: bool = False) -> str:
        """Maps `name:port` inside a value; a whole value only when it names a host (`*_HOST`)."""
        for name, (address, ports) in self.hosts.items():
            if is_host and value == name:
                return address

            def endpoint(match: re.Match, address=address, ports=ports, name=name) -> str:
                port = int(match.group(2))
                if port not in ports:
                    raise ValueError(f"no local port for {name}:{port} (in {value!r})")
                return f"{match.group(1)}{address}:{ports[port]}"

            value = re.sub(rf"(^|[/@]){re.escape(name)}:(\d+)", endpoint, value)
        return value

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        return {name: self.apply(value, name.endswith("_HOST")) for name, value in env.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def request_json(method: str, url: str, body=None, timeout: float = 10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


class GiveUp(AssertionError):
    """Raised by a `wait_until` predicate when waiting longer cannot help (the process died)."""


def wait_until(what: str, predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except GiveUp:
            raise
        except Exception as err:  # noqa: BLE001 - reported if it never succeeds
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def run(command: list[str], env: dict[str, str] | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def base_env() -> dict[str, str]:
    """A clean process environment: PATH, HOME and locale, nothing of the caller's service settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYENV_ROOT", "SSL_CERT_FILE", "SSL_CERT_DIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


def aws(endpoint: str, service: str):
    """A boto3 client for an emulated endpoint (the checks read what the hook made through it)."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=NAMES["aws"]["region"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def dotenv(path: pathlib.Path) -> dict[str, str]:
    """A compose --env-file: NAME=value lines, # comments."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip().strip('"')
    return pairs

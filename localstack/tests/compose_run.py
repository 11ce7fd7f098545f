"""The compose stack's wiring, run for real without a Docker engine.

`ComposeRun` reads a compose file, provisions what the `postgres` and `localstack` containers
would (the database script and the init hook, with those services' compose environment), then
starts products, notifications and orders as processes with exactly their image ENV plus compose
environment — compose host names mapped to local addresses, `PORT` to a free port — waits for
each as compose's `service_healthy` would (the image's HEALTHCHECK command), and drives the stack:
`wharf smoke`, orders that must each yield one email, rows in each service's own database, and a
poison order through the dead-letter queue with `wharf dlq`.

The one deliberate difference from compose: database and role names carry a unique suffix
(`DB_SUFFIX`, read by both scripts) so that runs never collide on a shared PostgreSQL server.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.parse
import uuid

from stack import (
    DATABASE_SCRIPT,
    HOOK,
    NAMES,
    REPO,
    SERVICES,
    GiveUp,
    HostMap,
    aws,
    base_env,
    container_port,
    dockerfile_env,
    environment_of,
    free_port,
    get,
    load_compose,
    request_json,
    run,
    wait_until,
)

START_ORDER = ["products", "notifications", "orders"]  # compose's depends_on order


def healthcheck_command(service: str) -> list[str]:
    """The image's HEALTHCHECK, exec form."""
    text = (REPO / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"HEALTHCHECK[^\n]*?CMD\s+(\[[^\n]*\])", text)
    assert match, f"services/{service}/Dockerfile has no exec-form HEALTHCHECK"
    return json.loads(match.group(1))


class ComposeRun:
    def __init__(self, compose_file: pathlib.Path, variables: dict[str, str], bin_dir: pathlib.Path,
                 localstack: str, postgres_url: str, amqp_url: str, timeout: float = 60):
        self.compose = load_compose(compose_file, variables)
        self.variables = variables
        self.bin_dir = bin_dir
        self.localstack = localstack
        self.postgres_url = postgres_url
        self.timeout = timeout
        self.suffix = f"_cmp{uuid.uuid4().hex[:8]}"
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="wharf-compose-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports = {name: free_port() for name in SERVICES}
        self.log: list[str] = []
        pg = urllib.parse.urlsplit(postgres_url)
        ls = urllib.parse.urlsplit(localstack)
        amqp = urllib.parse.urlsplit(amqp_url)
        self.pg = pg
        hosts = {
            "localstack": (ls.hostname, {4566: ls.port}),
            "postgres": (pg.hostname, {5432: pg.port or 5432}),
            "rabbitmq": (amqp.hostname, {5672: amqp.port or 5672}),
        }
        for name, names in SERVICES.items():
            compose_service = self.compose["services"][names["compose_service"]]
            hosts[names["compose_service"]] = ("127.0.0.1", {container_port(compose_service): self.ports[name]})
        self.hosts = HostMap(hosts)

    # --- what the backing containers do on start-up -------------------------------------------

    def service_env(self, compose_name: str) -> dict[str, str]:
        return self.hosts.environment(environment_of(self.compose["services"][compose_name], self.variables))

    def provision(self):
        postgres = self.service_env("postgres")
        run(["bash", str(DATABASE_SCRIPT)], env=base_env() | postgres | {
            "DB_SUFFIX": self.suffix, "PGHOST": self.pg.hostname, "PGPORT": str(self.pg.port or 5432),
            "PGUSER": self.pg.username or "postgres", "POSTGRES_USER": self.pg.username or "postgres",
        })
        localstack = self.service_env("localstack")
        # Inside the container the hook reaches LocalStack as localhost:4566 (awslocal).
        hook = run(["bash", str(HOOK)], env=base_env() | localstack | {
            "DB_SUFFIX": self.suffix, "AWS_ENDPOINT_URL": self.hosts.apply("http://localstack:4566"),
        })
        self.log.append(hook.stdout)
        # Leftovers of an earlier run would spoil the counts.
        sqs = aws(self.localstack, "sqs")
        for queue in (NAMES["queue"]["name"], NAMES["queue"]["dlq"]):
            sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])

    # --- the three services ---------------------------------------------------------------------

    def env_of(self, service: str) -> dict[str, str]:
        names = SERVICES[service]
        image = self.hosts.environment(dockerfile_env(REPO / "services" / service / "Dockerfile"))
        env = base_env() | image | self.service_env(names["compose_service"])
        env["PORT"] = str(self.ports[service])
        return env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str):
        env = self.env_of(service)
        binary = self.bin_dir / SERVICES[service]["binary"]
        cwd = self.work / service
        cwd.mkdir()
        log = open(self.work / f"{service}.log", "wb")
        self.processes[service] = subprocess.Popen([str(binary)], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        # compose's service_healthy: the image's HEALTHCHECK command, in the container's environment.
        command = healthcheck_command(service)
        command[0] = str(self.bin_dir / pathlib.Path(command[0]).name)

        def healthy():
            if self.processes[service].poll() is not None:
                raise GiveUp(f"{service} exited with {self.processes[service].returncode} during start-up")
            return subprocess.run(command, env=env, capture_output=True, timeout=10).returncode == 0

        try:
            wait_until(f"{service} healthy ({shlex.join(command)})", healthy, self.timeout, 0.3)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.tail(service)}") from None
        status, body = wait_until(f"{service} ready", lambda: (lambda r: r if r[0] == 200 else None)(get(self.url(service) + "/health/ready")), self.timeout)
        assert status == 200, body

    def tail(self, service: str, lines: int = 25) -> str:
        path = self.work / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- last lines of {service}'s log\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def drop_databases(self):
        for names in SERVICES.values():
            self.psql(f'DROP DATABASE IF EXISTS "{names["database"]}{self.suffix}" WITH (FORCE)', check=False)
        for names in SERVICES.values():
            self.psql(f'DROP ROLE IF EXISTS "{names["database_role"]}{self.suffix}"', check=False)

    def psql(self, sql: str, database: str | None = None, check: bool = True):
        url = self.postgres_url if database is None else self.postgres_url.rsplit("/", 1)[0] + "/" + database
        return run(["psql", url, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-tAc", sql], env=base_env(), check=check)

    def logs(self) -> str:
        return "\n".join(self.tail(service) for service in self.processes)

    # --- the drive -------------------------------------------------------------------------------

    def wharf(self, *args: str, env: dict[str, str] | None = None, check: bool = True):
        return run([str(self.bin_dir / "wharf"), *args], env=base_env() | (env or {}), check=check, timeout=180)

    def targets(self) -> list[str]:
        return ["--products", self.url("products"), "--orders", self.url("orders"), "--notifications", self.url("notifications")]

    def smoke(self) -> str:
        return self.wharf("smoke", *self.targets(), "--wait", "30").stdout

    def orders_to_emails(self, count: int) -> dict:
        _, product = request_json("POST", self.url("products") + "/api/products",
                                  {"name": "compose wiring", "price": 2.5, "stock": 1000})
        recipients = [f"compose-{uuid.uuid4().hex[:8]}-{i}@example.com" for i in range(count)]
        for recipient in recipients:
            status, _ = request_json("POST", self.url("orders") + "/api/orders",
                                     {"productId": product["id"], "quantity": 1, "customerEmail": recipient})
            assert status == 201

        def emails_of(recipient):
            _, found = request_json("GET", self.url("notifications") + "/api/notifications?recipient=" + urllib.parse.quote(recipient))
            return found

        def all_sent():
            found = {r: emails_of(r) for r in recipients}
            return found if all(len(v) == 1 and v[0]["status"] == "Sent" for v in found.values()) else None

        found = wait_until(f"{count} order emails sent", all_sent, self.timeout, 0.5)
        time.sleep(1.0)  # exactly one each: no duplicate arrives late
        assert all(len(emails_of(r)) == 1 for r in recipients), "an order yielded a second email"
        assert all(v[0]["type"] == "Email" for v in found.values())
        return {"orders": count, "emails": sum(len(v) for v in found.values()), "product": product["id"]}

    def rows_in_own_databases(self) -> dict[str, int]:
        """The services really used the databases the secrets name (not a fallback)."""
        counts = {}
        for service, table in (("products", "products"), ("orders", "orders"), ("notifications", "notifications")):
            database = SERVICES[service]["database"] + self.suffix
            counts[database] = int(self.psql(f"SELECT count(*) FROM {table}", database).stdout.strip() or 0)
            assert counts[database] > 0, f"{service} wrote nothing to {database}: did it read its connection-string secret?"
        return counts

    def dlq_drill(self, dlq: list[str], env: dict[str, str]) -> dict:
        _, product = request_json("POST", self.url("products") + "/api/products", {"name": "compose poison", "price": 1, "stock": 10})
        _, order = request_json("POST", self.url("orders") + "/api/orders",
                                {"productId": product["id"], "quantity": 1, "customerEmail": f"poison-{uuid.uuid4().hex[:8]}@fail.test"})

        self.wharf("dlq", "list", *dlq, "--json", env=env)  # the dead-letter queue is reachable at all

        def letter():
            listing = json.loads(self.wharf("dlq", "list", *dlq, "--json", env=env).stdout)
            mine = [m for m in listing["messages"] if ((m.get("body") or {}).get("data") or {}).get("orderId") == order["id"]]
            return mine[0] if mine else None

        first = wait_until(f"order {order['id']}'s event in the DLQ", letter, self.timeout * 2, 0.5)
        assert first.get("reason"), first
        self.wharf("dlq", "replay", *dlq, "--all", env=env)
        again = wait_until("the replayed event dead-lettered anew",
                           lambda: (lambda m: m if m and m.get("deadLetteredAt") != first.get("deadLetteredAt") else None)(letter()),
                           self.timeout * 2, 0.5)
        self.wharf("dlq", "purge", *dlq, "--yes", env=env)
        remaining = json.loads(self.wharf("dlq", "list", *dlq, "--json", env=env).stdout)["messages"]
        assert remaining == [], remaining
        return {"order": order["id"], "reason": first["reason"], "attempts": first.get("attempts"),
                "replayed_attempts": again.get("attempts")}

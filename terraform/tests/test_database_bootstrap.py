"""The database bootstrap Job's script, run against a real PostgreSQL (WHARF_TEST_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/postgres) as a master user that, like RDS's, may
create roles and databases but is not a superuser. Unreachable PostgreSQL fails the test."""

import os
import pathlib
import secrets
import subprocess

import pytest

from hcl import TERRAFORM

SCRIPT = TERRAFORM / "modules" / "database-bootstrap" / "bootstrap.sh"
ADMIN_URL = os.environ.get("WHARF_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def psql(sql, url=ADMIN_URL, check=True):
    result = subprocess.run(["psql", "--no-psqlrc", "-tAX", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed: {result.stderr}")
    return result


def url_with(url, user, password, database):
    rest = url.split("://", 1)[1].split("@", 1)[1]
    hostport = rest.split("/", 1)[0].split("?", 1)[0]
    return f"postgres://{user}:{password}@{hostport}/{database}"


@pytest.fixture
def cluster(tmp_path):
    psql("SELECT 1")  # unreachable → failure, never a skip
    tag = "tfb_" + secrets.token_hex(4)
    master, master_password = f"{tag}_master", secrets.token_hex(12)
    psql(f"CREATE ROLE {master} LOGIN CREATEROLE CREATEDB PASSWORD '{master_password}'")
    services = {f"{tag}_productdb": f"{tag}_productservice", f"{tag}_orderdb": f"{tag}_orderservice",
                f"{tag}_notificationdb": f"{tag}_notificationservice"}
    passwords = tmp_path / "credentials"
    passwords.mkdir()
    for role in services.values():
        (passwords / role).write_text(secrets.token_hex(20))
    admin = url_with(ADMIN_URL, master, master_password, "postgres")
    host = admin.split("@", 1)[1].split("/", 1)[0]

    def run(pairs=None, password_dir=passwords):
        env = {"PATH": os.environ["PATH"], "PGHOST": host.rsplit(":", 1)[0], "PGPORT": host.rsplit(":", 1)[1],
               "PGUSER": master, "PGPASSWORD": master_password, "PGDATABASE": "postgres",
               "WHARF_DATABASES": pairs if pairs is not None else " ".join(f"{d}:{r}" for d, r in services.items()),
               "WHARF_PASSWORD_DIR": str(password_dir)}
        return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)

    yield {"run": run, "services": services, "passwords": passwords, "master": master}
    for database, role in services.items():
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", check=False)
    for role in list(services.values()) + [master]:
        psql(f"DROP ROLE IF EXISTS {role}", check=False)


def can_connect(role, password, database):
    return psql("SELECT current_user", url=url_with(ADMIN_URL, role, password, database), check=False)


def test_each_role_owns_only_its_database(cluster):
    result = cluster["run"]()
    assert result.returncode == 0, result.stderr
    services = cluster["services"]
    for database, role in services.items():
        assert psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'").stdout.strip() == role
        password = (cluster["passwords"] / role).read_text()
        own = can_connect(role, password, database)
        assert own.returncode == 0 and own.stdout.strip() == role, own.stderr
        for other in services:
            if other != database:
                denied = can_connect(role, password, other)
                assert denied.returncode != 0 and "CONNECT privilege" in denied.stderr, (role, other)
        attributes = psql(f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{role}'").stdout
        assert attributes.strip() == "f|f|f"


def test_rerun_is_idempotent_and_applies_a_new_password(cluster):
    assert cluster["run"]().returncode == 0
    role = next(iter(cluster["services"].values()))
    before = psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'").stdout
    again = cluster["run"]()
    assert again.returncode == 0, again.stderr
    (cluster["passwords"] / role).write_text("rotated-" + secrets.token_hex(16))
    rotated = cluster["run"]()
    assert rotated.returncode == 0, rotated.stderr
    after = psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'").stdout
    assert after != before and after.startswith(("SCRAM-SHA-256$", "md5"))
    names = ", ".join(f"'{d}'" for d in cluster["services"])
    assert psql(f"SELECT count(*) FROM pg_database WHERE datname IN ({names})").stdout.strip() == "3"


def test_bad_input_stops_before_touching_the_server(cluster, tmp_path):
    missing = cluster["run"](password_dir=tmp_path / "nowhere")
    assert missing.returncode == 2 and "no password for role" in missing.stderr
    malformed = cluster["run"](pairs="productdb")
    assert malformed.returncode == 2 and "is not database:role" in malformed.stderr
    database = next(iter(cluster["services"]))
    assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{database}'").stdout.strip() == "0"


def test_a_name_cannot_inject_sql(cluster):
    role = next(iter(cluster["services"].values()))
    evil_password = "x'; DROP ROLE postgres; --"
    (cluster["passwords"] / role).write_text(evil_password)
    result = cluster["run"]()
    assert result.returncode == 0, result.stderr
    database = next(d for d, r in cluster["services"].items() if r == role)
    stored = psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'").stdout.strip()
    assert stored.startswith(("SCRAM-SHA-256$", "md5")), "the quoted password was not set"
    assert psql(f"SELECT has_database_privilege('{role}', '{database}', 'CONNECT')").stdout.strip() == "t"
    assert psql("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'").stdout.strip() == "1"

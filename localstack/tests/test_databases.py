"""POC-9: the PostgreSQL init script gives each service a role that can use its own database and
is refused by the others' — run for real against the local PostgreSQL, under unique names."""

import itertools
import urllib.parse
import uuid

import pytest

from stack import DATABASE_SCRIPT, SERVICES, base_env, load_compose, environment_of, run


def psql(url: str, sql: str, check: bool = True):
    return run(["psql", url, "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "--quiet", "-tAc", sql], env=base_env(), check=check)


@pytest.fixture(scope="module")
def databases(postgres_url):
    """Runs the script twice (it must converge) with the compose file's passwords; drops it all after."""
    suffix = f"_iso{uuid.uuid4().hex[:8]}"
    server = urllib.parse.urlsplit(postgres_url)
    passwords = {k: v for k, v in environment_of(load_compose()["services"]["postgres"], {}).items() if k.endswith("_DB_PASSWORD")}
    env = base_env() | passwords | {
        "DB_SUFFIX": suffix,
        "PGHOST": server.hostname,
        "PGPORT": str(server.port or 5432),
        "PGUSER": server.username or "postgres",
    }
    try:
        for _ in range(2):
            out = run(["bash", str(DATABASE_SCRIPT)], env=env).stdout
        yield suffix, server
        assert out.count("owned by") == 3
    finally:
        for names in SERVICES.values():
            psql(postgres_url, f'DROP DATABASE IF EXISTS "{names["database"]}{suffix}" WITH (FORCE)', check=False)
        for names in SERVICES.values():
            psql(postgres_url, f'DROP ROLE IF EXISTS "{names["database_role"]}{suffix}"', check=False)


def url_for(server, role: str, database: str) -> str:
    return f"postgres://{role}@{server.hostname}:{server.port or 5432}/{database}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_role_owns_and_uses_its_own_database(databases, postgres_url, service):
    suffix, server = databases
    names = SERVICES[service]
    role, database = names["database_role"] + suffix, names["database"] + suffix
    owner = psql(postgres_url, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'").stdout.strip()
    assert owner == role
    url = url_for(server, role, database)
    out = psql(url, "CREATE TABLE probe (n int); INSERT INTO probe VALUES (42); SELECT n FROM probe; DROP TABLE probe").stdout
    assert out.strip() == "42"
    flags = psql(postgres_url, f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{role}'").stdout
    assert flags.strip() == "f|f|f", "a service role can create neither databases nor roles"


@pytest.mark.parametrize(
    "service,other", [pair for pair in itertools.permutations(sorted(SERVICES), 2)], ids=lambda s: s
)
def test_a_role_is_refused_by_another_service_s_database(databases, service, other):
    suffix, server = databases
    role = SERVICES[service]["database_role"] + suffix
    database = SERVICES[other]["database"] + suffix
    result = psql(url_for(server, role, database), "SELECT 1", check=False)
    assert result.returncode != 0, f"{role} could open {database}"
    assert "permission denied for database" in result.stderr, result.stderr


def test_public_keeps_no_privilege_on_any_service_database(databases, postgres_url):
    suffix, _ = databases
    for names in SERVICES.values():
        database = names["database"] + suffix
        # An ACL entry "=…/grantor" is a grant to PUBLIC; NULL would mean the default (CONNECT for all).
        acl = psql(postgres_url, f"SELECT array_to_string(datacl, ' ') FROM pg_database WHERE datname = '{database}'").stdout
        entries = acl.split()
        assert entries, f"{database} has the default ACL, which lets PUBLIC connect"
        assert not [e for e in entries if e.startswith("=")], f"PUBLIC keeps a privilege on {database}: {acl}"

#!/usr/bin/env bash
# One database and one role per service, each role owning only its own database:
#   productservice -> productdb, orderservice -> orderdb, notificationservice -> notificationdb.
# CONNECT (and TEMPORARY) on each database is revoked from PUBLIC, so a service's role cannot even
# open another service's database; this holds under trust authentication too, because privileges
# are checked after authentication. Roles cannot create databases or roles.
#
# The postgres image runs it once from /docker-entrypoint-initdb.d on an empty data directory; it
# also runs against any server (psql's PG* variables) and converges when run again.
#
#   DB_SUFFIX          appended to every database and role name (empty; tests use a unique one)
#   <ROLE>_DB_PASSWORD the roles' passwords (PRODUCTSERVICE_DB_PASSWORD, …; local defaults)
set -euo pipefail

suffix="${DB_SUFFIX:-}"
admin=(psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-${PGUSER:-postgres}}")

ensure_database() { # role database password
  local role="$1$suffix" database="$2$suffix"
  "${admin[@]}" --dbname "${POSTGRES_DB:-postgres}" \
    --set role="$role" --set database="$database" --set password="$3" <<'SQL'
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'database', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'database') \gexec
SQL
  # Inside the database: its public schema belongs to the service's role alone.
  "${admin[@]}" --dbname "$database" --set role="$role" <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('ALTER SCHEMA public OWNER TO %I', :'role') \gexec
SQL
  echo "wharf-databases: $database owned by $role"
}

ensure_database productservice productdb "${PRODUCTSERVICE_DB_PASSWORD:-productservice-local}"
ensure_database orderservice orderdb "${ORDERSERVICE_DB_PASSWORD:-orderservice-local}"
ensure_database notificationservice notificationdb "${NOTIFICATIONSERVICE_DB_PASSWORD:-notificationservice-local}"

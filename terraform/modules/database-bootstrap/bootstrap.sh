#!/bin/sh
# Creates one login role and one database per service inside a PostgreSQL server, idempotently:
# each role owns its database and only it can connect there (PUBLIC's CONNECT is revoked), and
# each run sets the role's password, so a changed password takes effect on the next run.
#
#   WHARF_DATABASES     "database:role ..." pairs, e.g. "productdb:productservice orderdb:orderservice"
#   WHARF_PASSWORD_DIR  directory holding one file per role, named after it, with its password
#   PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE   the master connection (libpq)
#
# Runs as a Kubernetes Job in the postgres image (POSIX sh, psql); exits non-zero on any failure.
set -eu

: "${WHARF_DATABASES:?set WHARF_DATABASES to \"database:role ...\" pairs}"
: "${WHARF_PASSWORD_DIR:?set WHARF_PASSWORD_DIR to the directory of the role password files}"

for pair in $WHARF_DATABASES; do
  database=${pair%%:*}
  role=${pair#*:}
  if [ -z "$database" ] || [ -z "$role" ] || [ "$database" = "$pair" ]; then
    echo "bootstrap: \"$pair\" is not database:role" >&2
    exit 2
  fi
  password_file="$WHARF_PASSWORD_DIR/$role"
  if [ ! -s "$password_file" ]; then
    echo "bootstrap: no password for role $role in $password_file" >&2
    exit 2
  fi
  password=$(cat "$password_file")

  # psql variables are quoted by psql itself (:'x' as a literal, :"x" as an identifier), so no
  # name or password is ever spliced into SQL text by the shell.
  psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
    --set role="$role" --set database="$database" --set password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'password';
-- Creating a database owned by the role, or handing one over, needs membership of it.
SELECT format('GRANT %I TO CURRENT_USER', :'role')
 WHERE NOT pg_has_role(CURRENT_USER, :'role', 'MEMBER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"role";
SQL
  echo "bootstrap: database $database owned by role $role"
done

#!/usr/bin/env bash
# Restores ONE service's database from a `pg_dump -Fc` file, leaving every other database on the
# server untouched: the database is dropped (open connections are closed), created again and
# restored. Stop the service first (or scale it to zero); start it after.
#
#   ops/restore.sh <products|orders|notifications> --database-url postgres://…/productdb \
#                  --from FILE --yes
#
# Destructive by design, hence --yes. On AWS the database is restored from an RDS point-in-time
# copy in the same way (docs/dr.md).
set -euo pipefail

usage() { echo "usage: $0 <products|orders|notifications> --database-url URL --from FILE --yes" >&2; exit 2; }
[ $# -ge 1 ] || usage
service=$1
shift
case "$service" in products | orders | notifications) ;; *) usage ;; esac
url="" from="" yes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --database-url) url=${2:-}; shift 2 ;;
    --from) from=${2:-}; shift 2 ;;
    --yes) yes=1; shift ;;
    *) usage ;;
  esac
done
if [ -z "$url" ] || [ -z "$from" ]; then usage; fi
[ -f "$from" ] || { echo "restore: no such dump: $from" >&2; exit 1; }
[ -n "$yes" ] || { echo "restore: this drops and recreates $service's database; pass --yes" >&2; exit 2; }

# The database's name is the URL's path; DROP/CREATE run from the server's maintenance database.
database=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path.lstrip("/"))' "$url")
[[ "$database" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "restore: unusable database name '$database'" >&2; exit 1; }
maintenance="${url%/*}/postgres"
export PGOPTIONS="-c client_min_messages=warning"
psql "$maintenance" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
pg_restore --exit-on-error --no-owner --no-privileges --dbname="$url" "$from"
echo "restore: $service ← $from into $database"

#!/usr/bin/env bash
# A logical backup of ONE service's database: `pg_dump -Fc`, the format pg_restore can restore
# selectively and in parallel.
#
#   ops/backup.sh <products|orders|notifications> --database-url postgres://…/productdb [--out FILE]
#
# Prints the dump's path, its size and the instant the snapshot was taken (pg_dump's snapshot is
# consistent: everything committed before that instant is in the dump, nothing after). The same
# command works against RDS (through a bastion or from a pod with the service's secret).
set -euo pipefail

usage() { echo "usage: $0 <products|orders|notifications> --database-url URL [--out FILE]" >&2; exit 2; }
[ $# -ge 1 ] || usage
service=$1
shift
case "$service" in products | orders | notifications) ;; *) usage ;; esac
url="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --database-url) url=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$url" ] || usage
out=${out:-"$service-$(date -u +%Y%m%dT%H%M%SZ).dump"}

taken_at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
pg_dump --format=custom --no-owner --no-privileges --file="$out" "$url"
echo "backup: $service → $out ($(stat -c %s "$out") bytes), snapshot at $taken_at"

#!/usr/bin/env bash
# The point-in-time recovery drill, for real and locally: the mechanism RDS PITR uses (a base backup
# plus archived WAL replayed up to a chosen instant), on a PostgreSQL cluster this drill starts.
#
#   ops/drills/pitr.sh       (needs PostgreSQL's server binaries: initdb, pg_ctl, pg_basebackup)
#
# 1. a private cluster with WAL archiving (archive_command copies every segment to an archive);
# 2. products runs on it and takes writes all along (a product created every 50 ms);
# 3. `pg_basebackup` while the writes go on; writes continue;
# 4. the target instant T is chosen; writes continue past it; the cluster is destroyed;
# 5. a fresh data directory from the base backup replays the archive to T and is promoted;
# 6. products starts on the recovered cluster: every product committed before T is there, none
#    committed after T is (RPO 0 for the chosen instant). Prints the RTO (failure → products ready
#    on the recovered data). WHARF_DRILL_OUT=<file> also writes the figures as JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/binaries.sh
source scripts/lib/binaries.sh
bin="$(wharf_binaries)"

pg_bin=$(dirname "$(find /usr/lib/postgresql -name initdb -path '*/bin/*' | sort -V | tail -n 1)")
[ -x "$pg_bin/initdb" ] || { echo "pitr drill: PostgreSQL server binaries (initdb) not found" >&2; exit 1; }
say() { printf '\n--- pitr drill: %s\n' "$*"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
now_ms() { date +%s%3N; }

work=$(mktemp -d)
# initdb refuses to run as root: the cluster belongs to the postgres user when the drill runs as root.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  as_owner=(runuser -u postgres --)
  chown postgres "$work"
fi
pg_port=$(free_port) products_port=$(free_port)
products_pid="" writer_pid=""
cleanup() {
  local status=$?
  # Best effort, and never the drill's verdict: a killed child's status must not become the exit code.
  if [ -n "$writer_pid" ]; then kill "$writer_pid" 2>/dev/null || true; fi
  if [ -n "$products_pid" ]; then
    kill -KILL "$products_pid" 2>/dev/null || true
    wait "$products_pid" 2>/dev/null || true
  fi
  for data in "$work/primary" "$work/recovered"; do
    if [ -f "$data/postmaster.pid" ]; then
      "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    fi
  done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      if [ -f "$log" ]; then echo "=== last lines of $(basename "$log")" >&2; tail -n 30 "$log" >&2; fi
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

pg() { # tool args…: a PostgreSQL server tool, as the cluster's owner
  local tool=$1
  shift
  "${as_owner[@]}" "$pg_bin/$tool" "$@"
}
sql() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d "${2:-postgres}" -qtAc "$1"; }
database_url="postgres://postgres@127.0.0.1:$pg_port/products"

start_products() {
  (exec env HOST=127.0.0.1 PORT="$products_port" DATABASE_URL="$database_url" LOG_FORMAT=json \
    "$bin/products" >>"$work/products.log" 2>&1) &
  products_pid=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$products_port/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "$products_pid" 2>/dev/null || { echo "pitr drill: products exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "pitr drill: products not ready within 30 s" >&2
  exit 1
}
stop_products() { kill -TERM "$products_pid" 2>/dev/null; wait "$products_pid" 2>/dev/null || true; products_pid=""; }

say "a cluster with WAL archiving"
mkdir -p "$work/archive"
[ ${#as_owner[@]} -eq 0 ] || chown postgres "$work/archive"
pg initdb -D "$work/primary" -U postgres --auth=trust >"$work/initdb.log"
cat >>"$work/primary/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $work/archive/%f && cp %p $work/archive/%f'
archive_timeout = 1
CONF
pg pg_ctl -D "$work/primary" -l "$work/primary.log" -w start >/dev/null
sql "CREATE DATABASE products"

say "products on it, taking writes"
start_products
( i=0
  while true; do
    # Paused around the target instant, so no commit straddles it and "before T" is exact.
    while [ -f "$work/pause" ]; do sleep 0.02; done
    i=$((i + 1))
    curl -fsS -m 2 -H 'content-type: application/json' -X POST "http://127.0.0.1:$products_port/api/products" \
      -d "{\"name\":\"pitr $i\",\"price\":1,\"stock\":1}" >/dev/null 2>&1 || true
    sleep 0.05
  done ) &
writer_pid=$!
sleep 2

say "base backup while the writes go on"
pg pg_basebackup -h 127.0.0.1 -p "$pg_port" -U postgres -D "$work/base" -X stream --checkpoint=fast
sleep 2

# T: the instant to recover to, read from the server's own clock (what recovery_target_time is
# compared with), taken while the writer is paused so that every write is clearly before or after.
touch "$work/pause"
sleep 0.3
target=$(sql "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
committed_before=$(sql "SELECT count(*) FROM products" products)
sleep 0.3
rm "$work/pause"
sleep 2
kill "$writer_pid"; wait "$writer_pid" 2>/dev/null || true; writer_pid=""
committed_total=$(sql "SELECT count(*) FROM products" products)
# Archive the segment holding the last writes (RDS archives every 5 minutes: its restorable window
# ends up to 5 minutes back; here the segment is closed and archived before the failure).
sql "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "SELECT last_archived_wal = pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver")" = t ] && break
  sleep 0.1
done
echo "pitr drill: target $target; $committed_before products committed before it, $committed_total in all"

say "failure: the cluster is destroyed"
failure_ms=$(now_ms)
stop_products
pg pg_ctl -D "$work/primary" -m immediate stop >/dev/null
rm -rf "$work/primary"

say "recovery to the target into a fresh data directory"
cp -a "$work/base" "$work/recovered"
cat >>"$work/recovered/postgresql.conf" <<CONF
archive_mode = off
restore_command = 'cp $work/archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
CONF
touch "$work/recovered/recovery.signal"
[ ${#as_owner[@]} -eq 0 ] || chown -R postgres "$work/recovered"
pg pg_ctl -D "$work/recovered" -l "$work/recovered.log" -w -t 120 start >/dev/null
for _ in $(seq 1 600); do
  [ "$(sql "SELECT pg_is_in_recovery()")" = f ] && break
  sleep 0.1
done
[ "$(sql "SELECT pg_is_in_recovery()")" = f ] || { echo "pitr drill: the recovered cluster was not promoted" >&2; exit 1; }
start_products
ready_ms=$(now_ms)

recovered=$(curl -fsS "http://127.0.0.1:$products_port/api/products?limit=1000" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
after_target=$(sql "SELECT count(*) FROM products WHERE created_at >= '$target'" products)
python3 - "$committed_before" "$committed_total" "$recovered" "$after_target" "$failure_ms" "$ready_ms" "${WHARF_DRILL_OUT:-}" <<'PY'
import json, sys
before, total, recovered, after = map(int, sys.argv[1:5])
failure_ms, ready_ms = map(int, sys.argv[5:7])
out = sys.argv[7]
figures = {
    "rto_seconds": (ready_ms - failure_ms) / 1000,
    "committed_before_target": before,
    "committed_in_all": total,
    "recovered": recovered,
    "recovered_after_target": after,
    "rpo_rows_lost_before_target": before - recovered,
}
print("\npitr drill: measured")
for key, value in figures.items():
    print(f"  {key:32} {value}")
if out:
    json.dump(figures, open(out, "w"), indent=2)
ok = recovered == before and after == 0 and total > before > 0
print("pitr drill: " + ("passed" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY

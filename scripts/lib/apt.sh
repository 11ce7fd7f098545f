# shellcheck shell=bash
# Installs a Debian package when the command it provides is missing (idempotent: fast when present).
#
#   source scripts/lib/apt.sh
#   need_apt <package> <command>     # exits 1 when the package did not provide the command

need_apt() { # package command
  command -v "$2" >/dev/null && return
  echo "$(basename "$0"): installing $1" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  command -v "$2" >/dev/null || { echo "$(basename "$0"): $1 did not provide $2" >&2; exit 1; }
}

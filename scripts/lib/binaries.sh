# shellcheck shell=bash
# The workspace's debug binaries for the scripts that run them.
#
#   source scripts/lib/binaries.sh
#   bin_dir=$(wharf_binaries)      # builds if needed; prints the directory holding them
#
# Built the way the integration tier builds them (`cargo test --workspace --all-features`), so a
# CI run compiles one feature set for every script instead of one per `cargo build -p …` call
# (each distinct set of features recompiles the dependencies).

wharf_binaries() {
  local root target
  root="$(git rev-parse --show-toplevel)"
  (cd "$root" && cargo test --workspace --all-features --no-run --quiet >&2) || return 1
  target="${CARGO_TARGET_DIR:-$root/target}"
  (cd "$target/debug" && pwd)
}

# shellcheck shell=bash
# Tool virtualenvs for wharf's checks, kept outside the checkout so CI reuses them.
#
#   source scripts/lib/venv.sh
#   wharf_venv NAME PYTHON_VERSION REQUIREMENT...   # prints the venv's bin directory
#
# PYTHON_VERSION is a pyenv version prefix (3.11, 3.12, 3.13) or "system". The venv is
# (re)built only when its requirement list changes, so a warm call costs a file comparison.

WHARF_VENV_ROOT="${WHARF_VENV_ROOT:-$HOME/.cache/wharf/venvs}"

wharf_python() { # version prefix -> interpreter path
  local want="$1" root candidate
  if [ "$want" = system ]; then command -v python3; return; fi
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  candidate=$(find "$root/versions" -mindepth 1 -maxdepth 1 -name "$want*" 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$candidate" ] && [ -x "$candidate/bin/python3" ]; then
    echo "$candidate/bin/python3"
    return
  fi
  echo "venv: no Python $want under $root/versions" >&2
  return 1
}

wharf_venv() { # name python-version requirement...
  local name="$1" version="$2"
  shift 2
  local dir="$WHARF_VENV_ROOT/$name" wanted python
  wanted="$version $*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.wharf-requirements" 2>/dev/null)" = "$wanted" ]; then
    echo "$dir/bin"
    return
  fi
  python=$(wharf_python "$version") || return 1
  echo "venv: building $name ($wanted)" >&2
  rm -rf "$dir"
  "$python" -m venv "$dir" >&2 || return 1
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || { rm -rf "$dir"; return 1; }
  echo "$wanted" >"$dir/.wharf-requirements"
  echo "$dir/bin"
}

# Sourced by run.sh, test.sh and .ci/run: a .venv with the package installed (with the given extras).
# Installs only when no install newer than pyproject.toml already covers the extras asked for (so ./run.sh
# after ./test.sh reuses the test install). Needs python3 >= 3.11 and pip access.
installed_covers() {  # $1: comma-separated extras; true if some stamp .venv/.installed-<extras> includes them all
  local stamp have extra wanted
  IFS=',' read -ra wanted <<< "$1"
  for stamp in .venv/.installed-*; do
    [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] || continue
    have=",${stamp#.venv/.installed-},"
    for extra in "${wanted[@]}"; do
      [[ "$have" == *",$extra,"* ]] || continue 2
    done
    return 0
  done
  return 1
}

ensure_venv() {
  local extras="$1" stamp=".venv/.installed-${1:-base}"
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv 2>/dev/null || {
      # Debian/Ubuntu without python3-venv: virtualenv from pip does the same job.
      "$python" -m pip install --user --quiet virtualenv && "$python" -m virtualenv --quiet .venv
    }
  fi
  if ! installed_covers "$extras"; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}

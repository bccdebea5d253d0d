# Sourced by run.sh, test.sh and .ci/run: a .venv with the package installed (with the given extras).
# Reinstalls when pyproject.toml changed since the last install. Needs python3 >= 3.11 and pip access.
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
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}

#!/usr/bin/env bash
# Run all tests. First run creates .venv and installs the package with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")"
source ./.ci/venv.sh
ensure_venv "test"
# One worker per core; tests marked xdist_group (the browser, Spark) stay together on one worker.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-auto}" --dist loadgroup "$@"

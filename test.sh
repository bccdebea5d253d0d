#!/usr/bin/env bash
# Run all tests. First run creates .venv and installs the package with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")"
source ./.ci/venv.sh
ensure_venv "test"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Start the service on the embedded default catalog (mappings/) at http://127.0.0.1:${TRIALS_PORT:-8080}
# (this machine only: authentication is off; BIND_ADDRESS=0.0.0.0 serves other machines).
# First run creates .venv and installs the package; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")"
source ./.ci/venv.sh
ensure_venv ""
exec .venv/bin/gunicorn 'service.app:create_app()'

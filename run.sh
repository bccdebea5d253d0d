#!/usr/bin/env bash
# Start the service on the embedded default catalog (mappings/) at http://localhost:${TRIALS_PORT:-8080}.
# First run creates .venv and installs the package; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")"
source ./.ci/venv.sh
ensure_venv ""
exec .venv/bin/gunicorn 'service.app:create_app()'

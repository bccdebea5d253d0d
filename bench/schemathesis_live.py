"""schemathesis (CLI, all phases and checks) against openapi.yaml and a live gunicorn on 127.0.0.1.

Authentication is on (a JWKS file and a token minted here, every scope): besides the documented
statuses, bodies and headers, schemathesis checks that token-less requests are refused (ignored_auth).
The request count and 5xx count come from the server's own access log. Exit 0 only with at least
--min-requests requests, no 5xx and no schemathesis failure.

    .venv/bin/python bench/schemathesis_live.py [--max-examples 60] [--min-requests 1000]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _server import REPO, gunicorn

CONFIG = """
[auth.openapi.smartBackendServices]
bearer = "${TRIALS_TOKEN}"

# A schema-valid operation body is not always usable: JSON Schema cannot say "exactly one valid
# Patient", so a generated Bundle may rightly get 422. Every other check applies to the operations.
[[operations]]
include-method = "POST"
checks.positive_data_acceptance.enabled = false
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=60)
    parser.add_argument("--min-requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    config = Path(tempfile.mkdtemp(prefix="st-")) / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    # Token-less requests by the hundred from one address, each expecting its 401: failed authentications
    # are not limited here (the limit answers 429 past them; tests/test_limits_audit.py).
    with gunicorn(workers=args.workers, auth=True, extra_env={"AUTH_FAILURES_PER_MINUTE": "0"}) as server:
        command = [
            str(schemathesis), "--config-file", str(config), "run", str(REPO / "openapi.yaml"),
            "--url", server.base, "--max-examples", str(args.max_examples),
            "--seed", str(args.seed), "--workers", "1", "--request-timeout", "30", "--no-color",
            "--phases", "examples,coverage,fuzzing",
        ]  # fmt: skip
        env = {**os.environ, "TRIALS_TOKEN": server.token or ""}
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        access = [line for line in server.log_lines() if line.get("logger") == "service.access"]
    statuses = collections.Counter(line["status"] for line in access)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    tail = "\n".join(result.stdout.splitlines()[-25:])
    print(tail)
    print(f"\nrequests served: {len(access)}; statuses: {dict(sorted(statuses.items()))}")
    print(f"server errors (5xx): {server_errors}; schemathesis exit code: {result.returncode}")
    if result.returncode != 0:
        print(result.stdout[-8000:], result.stderr[-2000:], sep="\n")
    ok = result.returncode == 0 and server_errors == 0 and len(access) >= args.min_requests
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Container HEALTHCHECK: exit 0 when GET /healthz on this host answers 200, else 1.

Rule: standard library only (runs in the slim image every 30 s); the port comes from the same Config.
"""

from __future__ import annotations

import sys
import urllib.request

from service.config import Config


def main() -> int:
    url = f"http://127.0.0.1:{Config.from_env().port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed local http URL
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

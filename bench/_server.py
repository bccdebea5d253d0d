"""A gunicorn of this repository on 127.0.0.1 for the proof scripts: start, wait until ready, stop.

Rule: loopback only, a free port, the repository's gunicorn.conf.py; the server's stderr (the JSON
access and audit lines) goes to a file the script reads afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tokens import AUDIENCE, ISSUER, TestIssuer  # noqa: E402

# Real data written by others, vendored with its provenance (fixtures/external/README.md).
EXTERNAL = REPO / "fixtures" / "external"
PATIENTS = EXTERNAL / "patients"
OUT = REPO / "bench" / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str | None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if raw.startswith("{"):
                with suppress(ValueError):
                    lines.append(json.loads(raw))
        return lines

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(p) for p in children.read_text().split()) if children.exists() else []


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def gunicorn(
    workers: int = 2, auth: bool = False, extra_env: dict[str, str] | None = None, extra_args: list[str] | None = None
) -> Iterator[Server]:
    """Start gunicorn on a free loopback port; yields when /readyz answers 200; always stops it."""
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    env = {**os.environ, "WORKERS": str(workers), "LOG_LEVEL": "INFO", "TRIALS_PORT": str(port)}
    env.pop("MAPPINGS_DIR", None)
    token = None
    if auth:
        issuer = TestIssuer()
        env.update(AUTH_ENABLED="true", AUTH_ISSUER=ISSUER, AUTH_AUDIENCE=AUDIENCE,
                   AUTH_JWKS_FILE=str(issuer.write_jwks(workdir / "jwks.json")))  # fmt: skip
        token = issuer.token()
    else:
        env["AUTH_ENABLED"] = "false"
    env.update(extra_env or {})
    log = OUT / f"gunicorn-{port}.log"
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(gunicorn_bin), "--bind", f"127.0.0.1:{port}", *(extra_args or []), "service.app:create_app()"],
            cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, port, log, token)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{server.base}/readyz", timeout=2) as response:
                    if response.status == 200 and len(server.worker_pids()) >= workers:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become ready within 60 s")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def patient_bundles() -> list[Path]:
    return sorted(PATIENTS.rglob("*.json"))

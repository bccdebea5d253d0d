"""A closed-loop HTTP load generator (threads + http.client, standard library only) for the proof scripts.

Rule: bounded by a deadline, loopback only; each client sends one request at a time on a new
connection (gunicorn's sync workers close after each answer) and records time, kind and status.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _server import Server, patient_bundles

# (kind, weight): reads are most of the traffic of a trial registry; operations are the costly part.
MIX = (("search", 25), ("read", 20), ("evidence", 10), ("metadata", 5), ("evaluate", 25), ("match", 15))


@dataclass(frozen=True)
class Result:
    started: float  # seconds since the load began
    latency: float  # seconds
    kind: str
    status: int  # 0 = no HTTP answer (connection refused/reset, timeout)
    error: str = ""


@dataclass(frozen=True)
class Workload:
    studies: list[str]
    bundles: list[bytes]  # real bundles the service answers with 200


def prepare(server: Server) -> Workload:
    """The catalog's study ids, and the real patient bundles $match accepts (others are deliberately broken)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("GET", "/ResearchStudy?_count=100&_elements=id", headers=server.headers())
    studies = [e["resource"]["id"] for e in json.loads(conn.getresponse().read())["entry"]]
    conn.close()
    bundles = []
    for path in patient_bundles():
        body = Path(path).read_bytes()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"Content-Type": "application/fhir+json", **server.headers()}
        conn.request("POST", "/ResearchStudy/$match", body, headers)
        if conn.getresponse().status == 200:
            bundles.append(body)
        conn.close()
    return Workload(studies, bundles)


def _request(kind: str, work: Workload, rng: random.Random) -> tuple[str, str, bytes | None]:
    study = rng.choice(work.studies)
    if kind == "search":
        searches = ["/ResearchStudy?status=recruiting", "/ResearchStudy?_count=5",
                    "/ResearchStudy?title:contains=cancer", "/EvidenceVariable?_count=3"]  # fmt: skip
        return "GET", rng.choice(searches), None
    if kind == "read":
        return "GET", f"/ResearchStudy/{study}", None
    if kind == "evidence":
        return "GET", f"/EvidenceVariable/{study}-eligibility", None
    if kind == "metadata":
        return "GET", "/metadata", None
    body = rng.choice(work.bundles)
    if kind == "evaluate":
        return "POST", f"/ResearchStudy/{study}/$evaluate-eligibility?date=2026-11-22", body
    return "POST", "/ResearchStudy/$match?date=2026-11-22", body


def run(server: Server, work: Workload, clients: int, seconds: float, seed: int = 1) -> list[Result]:
    results: list[Result] = []
    lock = threading.Lock()
    origin = time.perf_counter()
    deadline = origin + seconds
    kinds = [kind for kind, weight in MIX for _ in range(weight)]

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        mine: list[Result] = []
        while time.perf_counter() < deadline:
            kind = rng.choice(kinds)
            method, path, body = _request(kind, work, rng)
            headers = {**server.headers(), **({"Content-Type": "application/fhir+json"} if body else {})}
            started = time.perf_counter()
            status, error = 0, ""
            try:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            mine.append(Result(started - origin, time.perf_counter() - started, kind, status, error))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return sorted(results, key=lambda r: r.started)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def summary(results: list[Result], seconds: float) -> str:
    lines = []
    for kind in ["all", *(k for k, _ in MIX)]:
        chosen = [r for r in results if kind in ("all", r.kind)]
        latencies = [r.latency * 1000 for r in chosen]
        errors = sum(1 for r in chosen if r.status != 200)
        lines.append(
            f"{kind:9} requests {len(chosen):6}  errors {errors:3}  p50 {percentile(latencies, 0.5):7.1f} ms  "
            f"p99 {percentile(latencies, 0.99):7.1f} ms  max {max(latencies, default=0):7.1f} ms  "
            f"{len(chosen) / seconds:6.1f} req/s"
        )
    return "\n".join(lines)

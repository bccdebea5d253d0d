"""Benchmark of the operations as ratios measured in one run on the same bytes (issue 5).

    .venv/bin/python bench/eligibility.py [--rounds 15] [--seconds 8] [--no-http]

In-process (Flask test client) for a small, a mid and a large real bundle: median over rounds of
$evaluate-eligibility time / orjson.loads time and $match (all trials) time / orjson.loads time, each
round timing the parse and the operation back to back so machine noise hits both alike. Then the
small bundle's in-process latency, and HTTP throughput under gunicorn (2 workers, loopback only,
bounded time): $evaluate-eligibility requests/s ÷ GET /metadata requests/s on the same server, in
alternating one-second slices (the median of the per-pair ratios).
"""

from __future__ import annotations

import argparse
import bz2
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._server import PATIENTS  # noqa: E402
from service.app import create_app  # noqa: E402
from service.config import DEFAULT_MAPPINGS_DIR, Config  # noqa: E402
from service.fhir.patient_bundle import clear_validation_cache  # noqa: E402
from service.json_keys import has_repeated_key  # noqa: E402

BUNDLES = {
    "small": PATIENTS / "mitre-ctms" / "clinical-trial-matching-service__patient_data.json",
    "mid": PATIENTS / "synthea" / "44717d84-17d5-cefa-acf9-fe51fddc5d1c.json",
    "large": PATIENTS / "synthea" / "d614dcb6-435f-be94-5344-00143898b1c3.json.bz2",
}
TARGETS = {"mid": (3.0, 4.0), "large": (2.0, 3.0)}  # (evaluate ratio, match ratio) targets of issue 5
STUDY = "NCT06494995"
DATE = "2026-03-01"


def load(path: Path) -> bytes:
    raw = path.read_bytes()
    return bz2.decompress(raw) if path.suffix == ".bz2" else raw


def timed(call) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def in_process(rounds: int) -> None:
    app = create_app(Config(mappings_dir=DEFAULT_MAPPINGS_DIR, max_body_bytes=50_000_000, log_level="WARNING"))
    client = app.test_client()
    headers = {"Content-Type": "application/fhir+json"}
    print(
        "warm: the same bytes again (evidence validation remembered per resource digest); cold: that cache "
        "cleared before the call (every evidence resource validated anew)"
    )
    print(
        f"{'bundle':6} {'resources':>9} {'MB':>5} {'loads ms':>9} {'eval ms':>8} {'eval/loads':>10} "
        f"{'cold':>6} {'match ms':>9} {'match/loads':>11} {'cold':>6} {'keys/loads':>10}  targets (eval, match)"
    )
    for name, path in BUNDLES.items():
        body = load(path)
        count = len(orjson.loads(body).get("entry", []))

        def evaluate(body: bytes = body) -> None:
            response = client.post(
                f"/ResearchStudy/{STUDY}/$evaluate-eligibility?date={DATE}", data=body, headers=headers
            )
            assert response.status_code == 200, response.status_code

        def match(body: bytes = body) -> None:
            response = client.post(f"/ResearchStudy/$match?date={DATE}", data=body, headers=headers)
            assert response.status_code == 200, response.status_code

        def parse(body: bytes = body) -> None:
            orjson.loads(body)

        document = orjson.loads(body)

        def repeated_keys(body: bytes = body, document: object = document) -> None:
            # The repeated-key check every body gets after orjson.loads (service.json_keys): part of eval/loads.
            assert not has_repeated_key(body, document)

        evaluate(), match()  # warm-up: first-call caches (UCUM registry, model classes)
        loads_t, eval_t, match_t, eval_r, match_r, eval_cold, match_cold, keys_r = [], [], [], [], [], [], [], []
        for _ in range(rounds):
            parse1 = timed(parse)
            one = timed(evaluate)
            parse2 = timed(parse)
            every = timed(match)
            clear_validation_cache()
            parse3 = timed(parse)
            one_cold = timed(evaluate)
            clear_validation_cache()
            parse4 = timed(parse)
            every_cold = timed(match)
            parse5 = timed(parse)
            keys_r.append(timed(repeated_keys) / parse5)
            loads_t.append(min(parse1, parse2))
            eval_t.append(one)
            match_t.append(every)
            eval_r.append(one / parse1)
            match_r.append(every / parse2)
            eval_cold.append(one_cold / parse3)
            match_cold.append(every_cold / parse4)
        target = TARGETS.get(name)
        med = statistics.median
        print(
            f"{name:6} {count:9d} {len(body) / 1e6:5.2f} {med(loads_t) * 1e3:9.2f} {med(eval_t) * 1e3:8.2f} "
            f"{med(eval_r):10.2f} {med(eval_cold):6.2f} {med(match_t) * 1e3:9.2f} {med(match_r):11.2f} "
            f"{med(match_cold):6.2f} {med(keys_r):10.2f}  "
            f"{f'{target[0]:.0f}x, {target[1]:.0f}x' if target else f'latency: {med(eval_t) * 1e3:.1f} ms eval'}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throughput(port: int, method: str, path: str, body: bytes | None, seconds: float, clients: int) -> float:
    """Requests/s from `clients` threads with keep-alive connections on loopback, for `seconds`."""
    done = [0] * clients
    stop = time.perf_counter() + seconds
    headers = {"Content-Type": "application/fhir+json"} if body else {}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status}")
            done[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def over_http(seconds: float) -> None:
    port = free_port()
    env = {**os.environ, "TRIALS_PORT": str(port), "WORKERS": "2", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "service.app:create_app()"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        body = load(BUNDLES["small"])
        path = f"/ResearchStudy/{STUDY}/$evaluate-eligibility?date={DATE}"
        throughput(port, "POST", path, body, 1.0, 4)  # warm-up of both workers
        # Alternating one-second slices, the ratio taken per pair: load from other processes on the machine
        # then hits both sides of each ratio alike (two long phases back to back measured different loads).
        metadata, evaluate = [], []
        for _ in range(max(1, round(seconds))):
            metadata.append(throughput(port, "GET", "/metadata", None, 1.0, 4))
            evaluate.append(throughput(port, "POST", path, body, 1.0, 4))
        ratio = statistics.median(e / m for e, m in zip(evaluate, metadata, strict=True))
        print(
            f"HTTP (gunicorn, 2 workers, 4 clients, {len(metadata)} alternating 1 s slices each): GET /metadata "
            f"{statistics.median(metadata):.0f} req/s, $evaluate-eligibility (small bundle) "
            f"{statistics.median(evaluate):.0f} req/s, ratio {ratio:.2f} (median per slice pair; target >= 0.3)"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    in_process(args.rounds)
    if not args.no_http:
        over_http(args.seconds)


if __name__ == "__main__":
    main()

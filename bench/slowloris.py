"""Slow clients against gunicorn: do idle and slow-header connections stop the service answering others?

For each worker class (gunicorn's `sync`, the service's own RequestReadingWorker of gunicorn.conf.py),
the same gunicorn (2 workers, loopback) is given N slow connections, each sending its request headers
one line every 1 s and never finishing (a slowloris), while one client measures GET /metadata latency
for a bounded time. Prints, per worker class, answered / timed out probes, p50 and max latency, and how
the server closed the slow connections (408 after HEADER_TIMEOUT_SECONDS, or never).

    .venv/bin/python bench/slowloris.py [--slow 200] [--seconds 20] [--probe-timeout 5]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time

from _load import percentile
from _server import gunicorn

SYNC = "sync"
OURS = "service.serving.RequestReadingWorker"


def slow_client(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """Open a connection and send one header line per second until the server closes it or we stop."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        outcomes.append("refused")
        return
    sock.settimeout(0.2)
    outcome = "held open"
    with contextlib.closing(sock):
        try:
            sock.sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = 0
            while not stop.wait(1.0):
                line += 1
                sock.sendall(b"X-Slow-%d: 1\r\n" % line)
                with contextlib.suppress(TimeoutError):
                    answer = sock.recv(64)
                    outcome = f"closed ({answer[:12].decode('latin-1').strip() or 'no answer'})"
                    break
        except OSError:
            outcome = "closed (reset)"
    outcomes.append(outcome)


def probe(port: int, timeout: float) -> float | None:
    """Seconds for one GET /metadata on a new connection, or None when it did not answer in time."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if not sock.recv(16).startswith(b"HTTP/1.1 200"):
                return None
    except OSError:
        return None
    return time.perf_counter() - started


def run(worker_class: str, args: argparse.Namespace) -> str:
    env = {"LOG_LEVEL": "WARNING", "HEADER_TIMEOUT_SECONDS": str(args.header_timeout)}
    with gunicorn(workers=2, extra_env=env, extra_args=["--worker-class", worker_class]) as server:
        stop = threading.Event()
        outcomes: list[str] = []
        slow = [threading.Thread(target=slow_client, args=(server.port, stop, outcomes), daemon=True)
                for _ in range(args.slow)]  # fmt: skip
        for thread in slow:
            thread.start()
        time.sleep(1.0)  # every slow connection is open and has sent its first line
        latencies: list[float] = []
        failed = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            took = probe(server.port, args.probe_timeout)
            if took is None:
                failed += 1
            else:
                latencies.append(took * 1000)
            time.sleep(0.2)
        stop.set()
        for thread in slow:
            thread.join(timeout=5)
    kinds = {kind: outcomes.count(kind) for kind in sorted(set(outcomes))}
    return (
        f"{worker_class:40} probes answered {len(latencies):3}, not answered within {args.probe_timeout:g} s "
        f"{failed:3}; p50 {percentile(latencies, 0.5):7.1f} ms, max {max(latencies, default=0):7.1f} ms; "
        f"slow connections: {kinds}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200, help="slow connections held open")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the probe client runs")
    parser.add_argument("--probe-timeout", type=float, default=5.0)
    parser.add_argument("--header-timeout", type=int, default=10, help="HEADER_TIMEOUT_SECONDS")
    parser.add_argument("--only-ours", action="store_true", help="skip the sync worker (the 'before')")
    args = parser.parse_args()
    print(f"{args.slow} slow-header connections, 2 workers, probes for {args.seconds:g} s:")
    lines = [run(OURS, args)] if args.only_ours else [run(SYNC, args), run(OURS, args)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

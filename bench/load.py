"""Load run: gunicorn (several workers, auth on) under 32 concurrent clients for 60 s of mixed reads,
$evaluate-eligibility and $match over real patient bundles; reports requests, errors, p50/p99,
throughput and the RSS of every worker at start and end. Exit 0 only with 0 errors.

    .venv/bin/python bench/load.py [--clients 32] [--seconds 60] [--workers 4]
"""

from __future__ import annotations

import argparse
import sys
import time

from _load import prepare, run, summary
from _server import gunicorn, rss_mib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with gunicorn(workers=args.workers, auth=True, extra_env={"LOG_LEVEL": "WARNING"}) as server:
        work = prepare(server)
        print(f"catalog: {len(work.studies)} studies; {len(work.bundles)} real bundles answered 200 (sizes "
              f"{min(map(len, work.bundles)) // 1024}-{max(map(len, work.bundles)) // 1024} KiB)")  # fmt: skip
        # Warm every worker (first requests import lazily and fill caches), then measure RSS at start.
        run(server, work, clients=args.workers * 2, seconds=5)
        pids = server.worker_pids()
        start_rss = {pid: rss_mib(pid) for pid in pids}
        started = time.perf_counter()
        results = run(server, work, clients=args.clients, seconds=args.seconds)
        elapsed = time.perf_counter() - started
        end_pids = server.worker_pids()
        end_rss = {pid: rss_mib(pid) for pid in end_pids}
    errors = [r for r in results if r.status != 200]
    print(f"{args.clients} clients, {args.seconds:.0f} s, {args.workers} workers (gunicorn sync), auth on")
    print(summary(results, elapsed))
    print("worker RSS (MiB) start -> end:")
    for pid in sorted(set(pids) | set(end_pids)):
        print(f"  pid {pid}: {start_rss.get(pid, float('nan')):7.1f} -> {end_rss.get(pid, float('nan')):7.1f}")
    if errors:
        kinds = sorted({(r.kind, r.status, r.error) for r in errors})
        print(f"errors: {len(errors)} {kinds[:10]}")
    ok = not errors and set(pids) == set(end_pids)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Fault run: (1) a gunicorn worker SIGKILLed mid-load: gunicorn replaces it, the load sees at most
the requests in flight on that worker fail and none after; (2) a start with a broken mapping file:
gunicorn exits at once with a message naming the file and the problem (fail fast, no worker serves).

    .venv/bin/python bench/fault.py [--clients 32] [--seconds 30] [--kill-at 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _load import prepare, run, summary
from _server import REPO, free_port, gunicorn

# Requests started within this long after the kill may still have been queued on the dead worker's socket.
GRACE_SECONDS = 1.0


def worker_killed(args: argparse.Namespace) -> bool:
    with gunicorn(workers=3, auth=True, extra_env={"LOG_LEVEL": "WARNING"}) as server:
        work = prepare(server)
        before = server.worker_pids()
        victim = before[0]
        killed_at: list[float] = []

        def kill() -> None:
            time.sleep(args.kill_at)
            killed_at.append(time.perf_counter())
            os.kill(victim, signal.SIGKILL)

        origin = time.perf_counter()
        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        results = run(server, work, clients=args.clients, seconds=args.seconds)
        killer.join()
        after = server.worker_pids()
    kill_time = killed_at[0] - origin
    failed = [r for r in results if r.status != 200]
    late = [r for r in failed if r.started > kill_time + GRACE_SECONDS or r.started + r.latency < kill_time]
    replaced = victim not in after and len(after) == 3
    print(f"worker {victim} SIGKILLed at t={kill_time:.1f} s of {args.seconds:.0f} s; workers before {before}, "
          f"after {after} (replaced: {replaced})")  # fmt: skip
    print(summary(results, args.seconds))
    print(f"failed requests: {len(failed)} {[(round(r.started, 2), r.kind, r.status, r.error) for r in failed]}")
    print(f"failures not in flight at the kill: {len(late)}")
    served_after = sum(1 for r in results if r.started > kill_time + GRACE_SECONDS and r.status == 200)
    print(f"requests served after the kill: {served_after}")
    return replaced and not late and len(failed) <= args.clients and served_after > 0


def broken_mapping() -> bool:
    directory = Path(tempfile.mkdtemp(prefix="broken-mappings-"))
    for path in (REPO / "mappings").glob("*.yaml"):
        shutil.copy(path, directory)
    victim = sorted(directory.glob("*.yaml"))[0]
    broken = victim.read_text(encoding="utf-8").replace("criteria:", "criteria: 7\nbroken:", 1)
    victim.write_text(broken, encoding="utf-8")
    env = {**os.environ, "MAPPINGS_DIR": str(directory), "TRIALS_PORT": str(free_port()), "AUTH_ENABLED": "false"}
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    started = time.perf_counter()
    try:
        command = [str(gunicorn_bin), "--bind", f"127.0.0.1:{env['TRIALS_PORT']}", "service.app:create_app()"]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        print("broken mapping: gunicorn did NOT exit within 60 s")
        return False
    elapsed = time.perf_counter() - started
    message = [line for line in result.stderr.splitlines() if victim.name in line]
    print(f"broken mapping ({victim.name}): gunicorn exited with {result.returncode} after {elapsed:.1f} s")
    print("  " + (message[-1] if message else result.stderr[-500:]))
    return result.returncode != 0 and bool(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kill-at", type=float, default=10.0)
    args = parser.parse_args()
    ok = worker_killed(args)
    ok = broken_mapping() and ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Longer fuzz of the operations (the property of tests/test_fuzz.py) over mutated real bundles.

Counts examples, statuses and crashes (a 500, a non-JSON answer, or an answer that is not a valid
FHIR R5 resource of the expected type). In-process (Flask test client): no network at all. With
`--live N`, then N bodies framed as a server reads them (chunked with malformed chunk sizes, a
Content-Length off, gzip/deflate, broken too; tests/fuzzing.framed_body) go to a gunicorn of this
repository on 127.0.0.1 (tests/test_slow_clients.py runs the same property briefly).

    .venv/bin/python bench/fuzz.py [--examples 2000] [--seed N] [--live 300]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import sys
import time

from _server import REPO  # noqa: F401 (puts the repository on sys.path)
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzzing import framed_body, mutated_body, request_target
from tests.test_fuzz import check_answer, real_app
from tests.test_slow_clients import BUNDLE, check_wire_answer, gunicorn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--live", type=int, default=0, help="framed bodies sent to a live gunicorn afterwards")
    args = parser.parse_args()
    app = real_app()
    logging.getLogger("service").setLevel(logging.WARNING)  # one access line per example is noise here
    studies = sorted(app.extensions["catalog"].trials)
    statuses: collections.Counter[int] = collections.Counter()
    mutations: collections.Counter[str] = collections.Counter()
    crashes: list[str] = []

    @seed(args.seed)
    @given(data=st.data())
    @settings(max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(data: st.DataObject) -> None:
        source, body, done = data.draw(mutated_body())
        target = data.draw(request_target(studies))
        for kind in done.split(","):
            mutations[kind] += 1
        try:
            statuses[check_answer(app, target, body)] += 1
        except AssertionError as exc:
            crashes.append(f"{source} [{done}] {target}: {str(exc)[:300]}")
            raise

    started = time.perf_counter()
    with contextlib.suppress(AssertionError):  # reported below (hypothesis shrank it to a minimal example)
        fuzz()
    elapsed = time.perf_counter() - started
    print(f"seed {args.seed}: {sum(statuses.values()) + len(crashes)} examples run in {elapsed:.1f} s")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"mutations: {dict(sorted(mutations.items()))}")
    print(f"crashes: {len(set(crashes))}")
    for crash in sorted(set(crashes))[:10]:
        print("  ", crash)
    live_crashes = live(args.live, args.seed, studies) if args.live else 0
    return 1 if crashes or live_crashes else 0


def live(examples: int, seed_value: int, studies: list[str]) -> int:
    """The framing property against gunicorn (1 worker, 1 s body timeout); returns the number of crashes."""
    statuses: collections.Counter[str] = collections.Counter()
    crashes: list[str] = []
    env = {"WORKERS": "1", "BODY_TIMEOUT_SECONDS": "1", "MAX_BODY_BYTES": "100000", "LOG_LEVEL": "WARNING"}
    with gunicorn(env) as server:

        @seed(seed_value)
        @given(data=st.data())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(data: st.DataObject) -> None:
            kind, headers, wire, _ = data.draw(framed_body(BUNDLE))
            target = data.draw(request_target(studies))
            try:
                statuses[f"{kind} {check_wire_answer(server.port, target, headers, wire)}"] += 1
            except AssertionError as exc:
                crashes.append(f"{kind} {target}: {str(exc)[:300]}")
                raise

        started = time.perf_counter()
        with contextlib.suppress(AssertionError):
            fuzz()
    print(f"live: {sum(statuses.values()) + len(crashes)} framed bodies in {time.perf_counter() - started:.1f} s")
    print(f"live statuses: {dict(sorted(statuses.items()))}")
    print(f"live crashes: {len(set(crashes))}")
    for crash in sorted(set(crashes))[:10]:
        print("  ", crash)
    return len(crashes)


if __name__ == "__main__":
    sys.exit(main())

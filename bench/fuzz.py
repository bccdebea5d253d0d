"""Longer fuzz of the operations (the property of tests/test_fuzz.py) over mutated real bundles.

Counts examples, statuses and crashes (a 500, a non-JSON answer, or an answer that is not a valid
FHIR R5 resource of the expected type). In-process (Flask test client): no network at all.

    .venv/bin/python bench/fuzz.py [--examples 2000] [--seed N]
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

from tests.fuzzing import mutated_body, request_target
from tests.test_fuzz import check_answer, real_app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
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
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

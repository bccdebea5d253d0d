"""Population-screening throughput on ~2,000 replicated Synthea patients (~1.5M resources).

Prints, for the local backend: patients/s, patient×trial evaluations/s, the ratio of its time to a bare
loop that only orjson.loads every line on the same cores (target <= 2x), the same ratio of CPU time (steadier
than wall time on a machine shared with other work), the peak memory of one worker;
and the Spark local[2] figures beside it (session start apart). Run from the repository root:

    python bench/screening.py [--patients 2000] [--workers N] [--mappings-dir mappings] [--no-spark]
                              [--catalog-size N]

With --catalog-size N, the same export is also screened against a catalog of N trials built as
bench/catalog_scale.py builds it (the five mappings plus the shared ClinicalTrials.gov records imported
and replicated under new ids), with the catalog index and without: the time against the 5-trial run
beside the ratio of trials (what "not N/5 times the work" is measured by), and the share of pairs the
index ruled out. Replicas share their criteria, which the engine evaluates once per patient either way.

Without trial mappings in --mappings-dir, the test mappings (tests/data, tests/screening/data) are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.catalog import Trial, load_catalog  # noqa: E402
from service.screening import group  # noqa: E402
from service.screening.bulk import Chunk, plan_chunks  # noqa: E402
from service.screening.export import write_bulk_export  # noqa: E402
from service.screening.local import Job, run_local  # noqa: E402


def _synthea() -> Path:
    return ROOT / "fixtures" / "external" / "patients" / "synthea"  # vendored, with provenance


def _trials(directory: Path, scratch: Path) -> tuple[Trial, ...]:
    if not list(directory.glob("*.yaml")):
        directory = scratch / "mappings"
        directory.mkdir()
        shutil.copy(ROOT / "tests" / "data" / "TEST-rules.yaml", directory)
        shutil.copy(ROOT / "tests" / "screening" / "data" / "TEST-population.yaml", directory)
    return tuple(load_catalog(directory).trials.values())


def _load_lines(chunk: Chunk) -> int:
    """The baseline's whole work: read the range and orjson.loads every line."""
    with chunk.path.open("rb") as handle:
        handle.seek(chunk.start)
        data = handle.read(chunk.end - chunk.start)
    count = 0
    for line in data.split(b"\n"):
        if line.strip():
            orjson.loads(line)
            count += 1
    return count


def _bare_loop(export: Path, workers: int) -> tuple[float, int]:
    chunks = plan_chunks(sorted(export.glob("*.ndjson")), 32 << 20)
    started = time.perf_counter()
    pool = multiprocessing.get_context("fork").Pool(workers)
    lines = sum(pool.imap_unordered(_load_lines, chunks))
    pool.close()
    pool.join()  # joined: the workers' CPU time is in RUSAGE_CHILDREN
    return time.perf_counter() - started, lines


def _cpu_seconds() -> float:
    """CPU time of this process and its joined children: the work done, whatever else the machine runs
    (on a shared machine a wall-clock ratio also measures how the load moved between the two runs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mappings-dir", type=Path, default=ROOT / "mappings")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2020, 12, 1))
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--catalog-size", type=int, default=0, help="also screen against this many trials")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-screening-") as tmp:
        scratch = Path(tmp)
        trials = _trials(args.mappings_dir, scratch)
        bundles = sorted(_synthea().iterdir())
        copies = math.ceil(args.patients / len(bundles))
        started = time.perf_counter()
        counts = write_bulk_export(bundles, scratch / "export", copies=copies)
        size = sum(p.stat().st_size for p in (scratch / "export").glob("*.ndjson"))
        patients = len(bundles) * copies
        print(
            f"export: {patients} patients, {sum(counts.values()):,} resources, {size / 2**20:,.0f} MiB "
            f"in {len(counts)} NDJSON files (built in {time.perf_counter() - started:.1f} s)"
        )
        print(f"trials: {', '.join(t.id for t in trials)}; date {args.date}; {args.workers} worker(s)")

        cpu = _cpu_seconds()
        bare, lines = _bare_loop(scratch / "export", args.workers)
        bare_cpu = _cpu_seconds() - cpu
        print(f"bare loop (orjson.loads of {lines:,} lines): {bare:.1f} s ({bare_cpu:.1f} s CPU)")
        job = Job(scratch / "export", scratch / "local", args.date, trials, workers=args.workers, progress=False)
        # The streaming machinery alone (partition, group, parse the lines the engine reads, Medications
        # joined), with the engine call replaced by a no-op: what the backend adds around the engine.
        engine = group.screen_patient
        group.screen_patient = lambda resources, trials, on, release, index=None: []  # type: ignore[assignment]
        cpu = _cpu_seconds()
        try:
            stubbed = run_local(job)
        finally:
            group.screen_patient = engine
        machinery, machinery_cpu = stubbed.seconds, _cpu_seconds() - cpu
        print(
            f"local, engine stubbed out: {machinery:.1f} s = {machinery / bare:.2f}x the bare loop "
            f"(partition {stubbed.phases['partition']:.1f} s, group + parse {stubbed.phases['screen']:.1f} s); "
            f"CPU time {machinery_cpu:.1f} s = {machinery_cpu / bare_cpu:.2f}x the bare loop's"
        )
        cpu = _cpu_seconds()
        outcome = run_local(job)
        local_cpu = _cpu_seconds() - cpu
        assert outcome.summary.counts["patients_screened"] == patients and not outcome.problems
        pairs = patients * len(trials)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"local: {outcome.seconds:.1f} s = {patients / outcome.seconds:,.0f} patients/s, "
            f"{pairs / outcome.seconds:,.0f} patient x trial evaluations/s; "
            f"ratio to the bare loop {outcome.seconds / bare:.2f}x (target <= 2x; partition "
            f"{outcome.phases['partition']:.1f} s, screen {outcome.phases['screen']:.1f} s); "
            f"peak worker RSS {peak:,.0f} MiB"
        )
        print(f"local CPU time: {local_cpu:.1f} s = {local_cpu / bare_cpu:.2f}x the bare loop's CPU time")
        if not args.no_spark:
            _spark(job, scratch, patients, pairs, outcome.seconds)
        if args.catalog_size:
            _large_catalog(job, scratch, args.catalog_size, outcome.seconds, local_cpu)
        print(outcome.summary.report())


def _large_catalog(job: Job, scratch: Path, size: int, seconds: float, cpu_seconds: float) -> None:
    from bench.catalog_scale import build_catalog, imported_mappings

    started = time.perf_counter()
    build_catalog(scratch / "catalog", size, imported_mappings())
    trials = tuple(load_catalog(scratch / "catalog").trials.values())
    print(f"catalog of {len(trials):,} trials built and loaded in {time.perf_counter() - started:.1f} s")
    for prefilter in (True, False):
        large = Job(job.input, scratch / f"large-{prefilter}", job.on, trials, workers=job.workers, progress=False)
        large = dataclasses.replace(large, prefilter=prefilter)
        cpu = _cpu_seconds()
        outcome = run_local(large)
        used = _cpu_seconds() - cpu
        rows = (large.output / "results.ndjson").read_bytes()
        ruled_out = rows.count(b'"prefiltered":true') / max(rows.count(b"\n"), 1)
        print(
            f"{len(trials):,} trials {'with' if prefilter else 'without'} the index: {outcome.seconds:.1f} s = "
            f"{outcome.seconds / seconds:.1f}x the 5-trial run for {len(trials) / len(job.trials):,.0f}x the trials "
            f"(CPU {used / cpu_seconds:.1f}x); {ruled_out:.0%} of the pairs ruled out by the index"
        )


def _spark(job: Job, scratch: Path, patients: int, pairs: int, local_seconds: float) -> None:
    try:
        from service.screening.spark import run_spark, spark_session
    except ImportError:
        print("spark: PySpark is not installed (the [spark] extra); skipped")
        return
    started = time.perf_counter()
    spark = spark_session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    session = time.perf_counter() - started
    try:
        outcome = run_spark(Job(job.input, scratch / "spark", job.on, job.trials), spark)
    finally:
        spark.stop()
    print(
        f"spark local[2]: {outcome.seconds:.1f} s (+ {session:.1f} s session start) = "
        f"{patients / outcome.seconds:,.0f} patients/s, {pairs / outcome.seconds:,.0f} evaluations/s; "
        f"{outcome.seconds / local_seconds:.1f}x the local backend"
    )


if __name__ == "__main__":
    main()

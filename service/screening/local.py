"""The local backend: a process pool over the cores, streaming the export through bucket files on disk.

Rule: the coordinator holds only counters and the problems list; workers hold one chunk (pass 1) or one
bucket (pass 2) at a time, so memory stays bounded by `chunk_bytes` and `bucket_bytes`, whatever the export size.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from tqdm import tqdm

from service.catalog import Trial
from service.catalog.index import TrialIndex, build_index
from service.domain.evaluate import build_matchers
from service.errors import FhirError
from service.fhir.shapes import prepare
from service.screening.bulk import (
    READ_TYPES,
    Chunk,
    PartitionReport,
    line_of,
    partition_chunk,
    plan_chunks,
    read_bucket,
    read_shared,
)
from service.screening.group import screen_document, screen_group
from service.screening.summary import Problem, Summary

BUNDLE_SUFFIXES = (".json", ".json.bz2", ".json.gz")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Job:
    """What to screen, against what, and how."""

    input: Path
    output: Path
    on: dt.date
    trials: tuple[Trial, ...]
    release: str | None = None  # None: told by content, per patient
    workers: int = 0  # 0: all cores
    chunk_bytes: int = 32 << 20  # pass 1: one read per task
    bucket_bytes: int = 64 << 20  # pass 2: the bound on one bucket held in memory
    progress: bool | None = None  # None: only when stderr is a terminal
    prefilter: bool = True  # rule trials out by the catalog index (docs/screening.md); False: evaluate all

    @property
    def processes(self) -> int:
        return self.workers or os.cpu_count() or 1

    @functools.cached_property
    def index(self) -> TrialIndex | None:
        """The trials' prefilter (built once, before the pool forks), or None without `prefilter`."""
        if not self.prefilter:
            return None
        return build_index((trial.id, trial.criteria, trial.study_view.get("progressStatus")) for trial in self.trials)


@dataclass
class Outcome:
    summary: Summary
    problems: list[Problem]
    seconds: float
    output: Path
    files: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per pass (local Bulk runs)


def input_files(directory: Path) -> tuple[str, list[Path]]:
    """("bulk", the *.ndjson files) or ("bundles", the Bundle files). A Bulk export's manifest .json is
    ignored when NDJSON is present."""
    if not directory.is_dir():
        raise FhirError.of(400, "not-found", "The input directory does not exist.")
    files = sorted(p.resolve() for p in directory.rglob("*") if p.is_file())
    ndjson = [p for p in files if p.name.endswith(".ndjson")]
    if ndjson:
        return "bulk", ndjson
    bundles = [p for p in files if p.name.endswith(BUNDLE_SUFFIXES)]
    if bundles:
        return "bundles", bundles
    raise FhirError.of(400, "not-found", "The input directory holds no *.ndjson (Bulk Data) or *.json Bundle files.")


def run_local(job: Job) -> Outcome:
    started = time.perf_counter()
    kind, files = input_files(job.input)
    job.output.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    summary.add_trials(t.id for t in job.trials)
    problems: list[Problem] = []
    phases: dict[str, float] = {}
    with (job.output / "results.ndjson").open("wb") as results:
        if kind == "bulk":
            _run_bulk(job, files, summary, problems, results.write, phases)
        else:
            _run_bundles(job, files, summary, problems, results.write)
    write_report(job.output, summary, problems)
    seconds = time.perf_counter() - started
    return Outcome(summary, problems, seconds, job.output, [str(p) for p in files], phases)


def write_report(output: Path, summary: Summary, problems: list[Problem]) -> None:
    (output / "summary.json").write_bytes(orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2))
    (output / "problems.ndjson").write_bytes(b"".join(orjson.dumps(p.record()) + b"\n" for p in problems))


# --- Bulk NDJSON -------------------------------------------------------------------------------------


@dataclass
class BucketReport:
    results: bytes
    summary: Summary
    problems: list[tuple[int, int, str]]
    patients: int


# Worker state, set once per process by the pool initializer (trials are pickled once, not per task).
_STATE: dict[str, Any] = {}


def _init(job: Job, workdir: Path | None) -> None:
    _STATE["job"] = job
    _STATE["workdir"] = workdir
    _STATE.pop("shared", None)


def _partition(chunk: Chunk, buckets: int) -> PartitionReport:
    workdir: Path = _STATE["workdir"]
    return partition_chunk(chunk, workdir, buckets)


def _screen_bucket(directory: Path) -> BucketReport:
    job: Job = _STATE["job"]
    if "shared" not in _STATE:
        _STATE["shared"] = read_shared(_STATE["workdir"])
    shared: dict[str, bytes] = _STATE["shared"]
    summary = Summary()
    out: list[bytes] = []
    problems: list[tuple[int, int, str]] = []
    patients = 0
    for _, rows in read_bucket(directory):
        patients += 1
        outcome = screen_group(rows, shared.get, job.trials, job.on, job.release, job.index)
        problems.extend((chunk, line, message) for (chunk, line), message in outcome.problems)
        summary.counts.update(outcome.counts)
        if outcome.results:
            summary.add_patient(outcome.results)
            out.extend(orjson.dumps(r.record()) + b"\n" for r in outcome.results)
    shutil.rmtree(directory, ignore_errors=True)  # free the disk as we go
    return BucketReport(b"".join(out), summary, problems, patients)


def _run_bulk(
    job: Job,
    files: list[Path],
    summary: Summary,
    problems: list[Problem],
    write: Callable[[bytes], Any],
    phases: dict[str, float],
) -> None:
    total_bytes = sum(p.stat().st_size for p in files)
    chunks = plan_chunks(files, job.chunk_bytes)
    # Enough buckets that each fits `bucket_bytes`, and a few per process so the progress bar moves and
    # the last buckets do not leave cores idle.
    buckets = max(math.ceil(total_bytes / job.bucket_bytes), 16 * job.processes)
    located: list[tuple[int, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="screening-", dir=os.environ.get("SCREENING_TMPDIR")) as tmp:
        workdir = Path(tmp)
        with _pool(job, workdir) as pool:
            started = time.perf_counter()
            bar = _bar(job, total_bytes, "partition", "B")
            for report in pool(functools.partial(_partition, buckets=buckets), chunks):
                summary.counts.update(report.counts)
                summary.unlinked.update(report.unlinked)
                summary.unused.update(report.unused)
                located.extend(report.problems)
                chunk = chunks[report.chunk]
                bar.update(chunk.end - chunk.start)
            bar.close()
            phases["partition"] = time.perf_counter() - started
            bar = _bar(job, summary.counts["patients"], "screen", " patients")
            directories = sorted(p for p in workdir.iterdir() if p.name.startswith("b"))
            for bucket in pool(_screen_bucket, directories):
                write(bucket.results)
                summary.merge(bucket.summary)
                located.extend(bucket.problems)
                bar.update(bucket.patients)
            bar.close()
            phases["screen"] = time.perf_counter() - started - phases["partition"]
    # Lines before each chunk that has a problem, counted once per chunk (not per problem).
    before = {c: line_of(chunks[c], 0) for c in {c for c, _, _ in located}}
    problems.extend(Problem(str(chunks[c].path), before[c] + n, m) for c, n, m in sorted(located))


# --- a directory of Bundles --------------------------------------------------------------------------


def _screen_bundle_file(path: Path) -> tuple[bytes, Summary, list[Problem]]:
    job: Job = _STATE["job"]
    outcome = screen_document(path.name, path.read_bytes(), job.trials, job.on, job.release, job.index)
    summary = Summary(counts=outcome.counts)
    if outcome.results:
        summary.add_patient(outcome.results)
    problems = [Problem(str(path), line, message) for line, message in outcome.problems]
    return b"".join(orjson.dumps(r.record()) + b"\n" for r in outcome.results), summary, problems


def _run_bundles(
    job: Job, files: list[Path], summary: Summary, problems: list[Problem], write: Callable[[bytes], Any]
) -> None:
    with _pool(job, None) as pool:
        bar = _bar(job, len(files), "screen", " patients")
        for results, partial, found in pool(_screen_bundle_file, files):
            write(results)
            summary.merge(partial)
            problems.extend(found)
            bar.update(1)
        bar.close()


# --- pool and progress -------------------------------------------------------------------------------


class _pool:
    """imap_unordered over a process pool, or a plain loop in this process for one worker."""

    def __init__(self, job: Job, workdir: Path | None) -> None:
        self.job, self.workdir = job, workdir
        self.pool: Any = None

    def __enter__(self) -> Callable[[Callable[[T], R], Sequence[T]], Iterator[R]]:
        if self.job.processes > 1:
            # fork: the trials and modules are inherited, no re-import per worker (Linux, the target); the
            # FHIR models evidence is validated with too (an unlabelled export is most likely R4), and the trials'
            # name matchers.
            prepare(READ_TYPES, self.job.release or "R4")
            build_matchers(trial.criteria for trial in self.job.trials)
            _ = self.job.index
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            self.pool = context.Pool(self.job.processes, _init, (self.job, self.workdir))
            return lambda function, items: self.pool.imap_unordered(function, items)
        _init(self.job, self.workdir)
        return lambda function, items: map(function, items)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def _bar(job: Job, total: int, what: str, unit: str) -> tqdm[Any]:
    enabled = sys.stderr.isatty() if job.progress is None else job.progress
    scale = unit == "B"
    return tqdm(total=total, desc=what, unit=unit, unit_scale=scale, disable=not enabled, smoothing=0.1)

"""Command line: `trial-eligibility screen --input DIR --output DIR --date YYYY-MM-DD --engine local|spark`.

Rule: the run always completes what it can. Exit 0 when every line and patient was screened, 1 when
some were skipped (each one reported with file and line, all in problems.ndjson), 2 when nothing could
run (bad arguments, no input, a bad mapping, Spark not installed). Never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from service.catalog import load_catalog
from service.errors import FhirError, MappingError
from service.screening.local import Job, Outcome, run_local
from service.screening.report import write_report

SHOWN_PROBLEMS = 20


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `screen` subcommand to an argparse subparsers object (service/cli.py hooks it here)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "screen",
        help="screen every patient of a Bulk Data export (or a directory of Bundles) against every trial",
        description="Screen every patient of a FHIR Bulk Data export (*.ndjson, one resource type per file, "
        "Type/id references) or of a directory of patient Bundles (*.json, .json.bz2, .json.gz; R4 or R5) "
        "against every trial in the mappings directory. Writes results.ndjson (one line per patient x trial), "
        "problems.ndjson, summary.json and report.html (charts, missing items, per-patient reasons; local output "
        "directories) into --output (the Spark engine also results.parquet).",
    )
    parser.add_argument(
        "--input", required=True, help="the export or Bundle directory (spark: also an hdfs:// or s3a:// URI)"
    )
    parser.add_argument("--output", required=True, help="directory for the results, created (spark: also a URI)")
    parser.add_argument("--date", type=_date, default=None, help="evaluation date YYYY-MM-DD (default: today)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--mappings-dir", type=Path, default=Path("mappings"))
    parser.add_argument("--workers", type=int, default=0, help="local: processes (default: all cores)")
    parser.add_argument(
        "--fhir-version", choices=("4.0", "5.0"), default=None, help="input release (default: told per patient)"
    )
    parser.add_argument("--master", default=None, help="spark: master URL (default: what spark-submit says)")
    parser.add_argument("--chunk-mb", type=int, default=32, help="local: bytes read per partition task")
    parser.add_argument("--bucket-mb", type=int, default=64, help="local: bound on one patient bucket in memory")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trial-eligibility")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if args.workers < 0 or args.chunk_mb < 1 or args.bucket_mb < 1:
        print("error: --workers must be >= 0 and --chunk-mb, --bucket-mb >= 1", file=err)
        return 2
    try:
        trials = tuple(load_catalog(args.mappings_dir).trials.values())
    except MappingError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if not trials:
        print(f"error: no trial mapping in {args.mappings_dir}", file=err)
        return 2
    job = Job(
        input=Path(args.input),
        output=Path(args.output),
        on=args.date or dt.date.today(),
        trials=trials,
        release={"4.0": "R4", "5.0": "R5"}.get(args.fhir_version or ""),
        workers=args.workers,
        chunk_bytes=args.chunk_mb << 20,
        bucket_bytes=args.bucket_mb << 20,
        progress=args.progress,
    )
    uris = [a for a in (args.input, args.output) if "://" in a]
    if uris and args.engine != "spark":
        print("error: the local engine reads and writes local directories; use --engine spark for URIs", file=err)
        return 2
    if args.engine == "spark" and importlib.util.find_spec("pyspark") is None:
        print("error: the spark engine needs PySpark: pip install 'trial-eligibility-service[spark]'", file=err)
        return 2
    try:
        outcome = _run(job, args.engine, args.master, args.input, args.output)
    except FhirError as exc:
        print(f"error: {exc.issues[0].diagnostics}", file=err)
        return 2
    for problem in outcome.problems[:SHOWN_PROBLEMS]:
        print(f"skipped: {problem}", file=err)
    if len(outcome.problems) > SHOWN_PROBLEMS:
        print(f"... and {len(outcome.problems) - SHOWN_PROBLEMS} more", file=err)
    print(outcome.summary.report(), file=out)
    pairs = sum(sum(v.values()) for v in outcome.summary.trials.values())
    print(
        f"{outcome.summary.counts['patients_screened']} patients x {len(trials)} trials = {pairs} evaluations "
        f"in {outcome.seconds:.1f} s ({args.engine}); results in {args.output}",
        file=out,
    )
    if "://" not in args.output:  # the report is written beside local results only
        print(f"report: {write_report(Path(args.output), trials, job.on)}", file=out)
    if outcome.problems:
        print(f"{len(outcome.problems)} problem(s): see {args.output.rstrip('/')}/problems.ndjson", file=err)
        return 1
    return 0


def _run(job: Job, engine: str, master: str | None, source: str, target: str) -> Outcome:
    if engine == "local":
        return run_local(job)
    from service.screening.spark import run_spark, spark_session

    spark = spark_session(master)
    try:
        return run_spark(job, spark, source if "://" in source else None, target if "://" in target else None)
    finally:
        spark.stop()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date YYYY-MM-DD") from None


if __name__ == "__main__":
    sys.exit(main())

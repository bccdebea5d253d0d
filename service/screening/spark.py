"""The Spark backend: the same per-patient function as the local backend, applied per patient group.

Rule: the JVM does the reading and the grouping (the patient key comes from Spark SQL JSON functions,
never from Python), Python only sees one patient's lines at a time (`applyInPandas`) and gives back the
same records as the local backend. Results are written as Parquet and NDJSON.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from service.screening.bulk import LEADING_TYPE_SQL, READ_TYPES, SHARED_TYPES
from service.screening.group import GroupOutcome, screen_document, screen_group
from service.screening.local import Job, Outcome, input_files, write_report
from service.screening.summary import Problem, Summary

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ID = r"[A-Za-z0-9\-.]{1,64}"
OUT_SCHEMA = "kind string, record string, file string, row long, line int, message string, counts string"
REQUIREMENT = "struct<resource_type:string,label:string,codes:array<string>,since:string,until:string>"
RECORD_SCHEMA = (
    "patient string, study string, verdict string, met int, not_met int, unknown int, screening int, "
    f"deciding array<string>, requirements array<{REQUIREMENT}>, needs_review boolean, warnings int, "
    "prefiltered boolean"
)


def spark_session(master: str | None = None, shuffle_partitions: int | None = None) -> SparkSession:
    """A session for this interpreter; `master` None keeps what spark-submit (or the default) says."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master is None or master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("trial-screening")
    if master:
        builder = builder.master(master)
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    builder = builder.config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true")
    # The screened output is persisted and read by four actions; without this, adaptive execution may not
    # coalesce a cached plan's shuffle partitions, so each action ran spark.sql.shuffle.partitions (200)
    # Python tasks, mostly empty on a small export.
    builder = builder.config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
    return builder.getOrCreate()


def ship_package(spark: SparkSession) -> None:
    """Send the `service` package to the executors (they need the engine, not just this module)."""
    if getattr(spark, "_screening_shipped", False):
        return
    root = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*.py")):
            archive.write(path, path.relative_to(root.parent))
    target = Path(tempfile.mkdtemp(prefix="screening-py-")) / "service.zip"
    target.write_bytes(buffer.getvalue())
    spark.sparkContext.addPyFile(str(target))
    spark._screening_shipped = True  # type: ignore[attr-defined]


def run_spark(job: Job, spark: SparkSession, input_uri: str | None = None, output_uri: str | None = None) -> Outcome:
    """Screen `job.input` on `spark`; writes results.parquet/ and results.ndjson/ (part files), problems.ndjson
    and summary.json under `job.output`. On a cluster, `input_uri` / `output_uri` (hdfs://, s3a://, ...)
    replace the local paths: the input is then a Bulk export (`*.ndjson`), and the driver writes the
    summary and problems through Spark as one-part text directories."""
    started = time.perf_counter()
    if input_uri:
        kind, paths = "bulk", [f"{input_uri.rstrip('/')}/*.ndjson"]
    else:
        kind, files = input_files(job.input)
        paths = [str(p) for p in files]
    target = output_uri.rstrip("/") if output_uri else str(job.output)
    if not output_uri:
        job.output.mkdir(parents=True, exist_ok=True)
    ship_package(spark)
    summary = Summary()
    summary.add_trials(t.id for t in job.trials)
    text: DataFrame | None = None
    cached: list[DataFrame] = []
    if kind == "bulk":
        out, text = _bulk(job, spark, paths, summary, cached)
    else:
        out = _bundles(job, spark, paths)
    out = out.persist()
    try:
        results = out.filter("kind = 'result'").select("record")
        results.write.mode("overwrite").text(f"{target}/results.ndjson")
        from pyspark.sql import functions as F

        parsed = results.select(F.from_json("record", RECORD_SCHEMA).alias("r")).select("r.*")
        parsed.write.mode("overwrite").parquet(f"{target}/results.parquet")
        for row in results.mapInPandas(_summarize, "summary string").collect():
            summary.merge(Summary.from_json(orjson.loads(row["summary"])))
        side = out.filter("kind != 'result'").collect()
    finally:
        for frame in (out, *cached):
            frame.unpersist()
    located = [(r["file"], r["row"], r["line"], r["message"]) for r in side if r["kind"] == "problem"]
    for r in side:
        if r["counts"]:
            summary.counts.update(orjson.loads(r["counts"]))
    problems = _locate(located, text)
    if output_uri:
        for name, lines in (
            ("summary.json", [orjson.dumps(summary.to_json()).decode()]),
            ("problems.ndjson", [orjson.dumps(p.record()).decode() for p in problems]),
        ):
            frame = spark.createDataFrame([(line,) for line in lines], "value string").coalesce(1)
            frame.write.mode("overwrite").text(f"{target}/{name}")
    else:
        write_report(job.output, summary, problems)
    return Outcome(summary, problems, time.perf_counter() - started, job.output, paths)


# --- Bulk NDJSON -------------------------------------------------------------------------------------


def _bulk(
    job: Job, spark: SparkSession, paths: list[str], summary: Summary, cached: list[DataFrame]
) -> tuple[DataFrame, DataFrame]:
    from pyspark.sql import functions as F

    # The row id is taken before blank lines are dropped (a nondeterministic projection is not reordered
    # with the filter), so it still counts every line: problems get their true line number back.
    text = spark.read.text(paths).select(
        F.input_file_name().alias("file"), F.monotonically_increasing_id().alias("row"), "value"
    )
    lines = text.filter(F.trim("value") != "")
    # Lines of a type no rule reads are told by their leading resourceType and never parsed (as locally);
    # the others get one parse (json_tuple), then small get_json_object calls on the reference objects.
    leading = F.regexp_extract("value", LEADING_TYPE_SQL, 1)
    unused = (leading != "") & ~leading.isin(*READ_TYPES)
    fields = lines.select(
        "file",
        "row",
        "value",
        unused.alias("unused"),
        leading.alias("leading"),
        F.json_tuple(F.when(~unused, F.col("value")), "resourceType", "id", "subject", "patient"),
    ).toDF("file", "row", "value", "unused", "leading", "type", "id", "subject", "patient")
    resource_type, resource_id = F.col("type"), F.col("id")
    reference = F.coalesce(F.get_json_object("subject", "$.reference"), F.get_json_object("patient", "$.reference"))
    linked = F.regexp_extract(reference, rf"(?:^|/)Patient/({ID})$", 1)
    valid_id = resource_id.rlike(rf"^{ID}$")
    kind = (
        F.when(F.col("unused"), "unused")
        .when(resource_type.isNull(), "malformed")
        .when(resource_type == "Patient", F.when(valid_id, "patient").otherwise("malformed"))
        .when(~resource_type.isin(*READ_TYPES), "unused")
        .when(linked != "", "linked")
        .when(resource_type.isin(*SHARED_TYPES) & valid_id, "shared")
        .otherwise("unlinked")
    )
    classified = fields.select(
        "file",
        "row",
        # Only counted, never read again: unused and unlinked lines (most of an export's bytes) are cached
        # without their text.
        F.when(~kind.isin("unused", "unlinked"), F.col("value")).alias("value"),
        F.when(F.col("unused"), F.col("leading")).otherwise(resource_type).alias("type"),
        kind.alias("kind"),
        F.when(resource_type == "Patient", resource_id).otherwise(linked).alias("key"),
        F.concat_ws("/", resource_type, resource_id).alias("ref"),
    ).persist()
    cached.append(classified)
    for row in classified.groupBy("kind", "type").count().collect():
        summary.counts["lines"] += row["count"]
        if row["kind"] == "patient":
            summary.counts["patients"] += row["count"]
        elif row["kind"] == "shared":
            summary.counts["shared_resources"] += row["count"]
        elif row["kind"] == "unlinked":
            summary.unlinked[row["type"]] += row["count"]
        elif row["kind"] == "unused":
            summary.unused[row["type"]] += row["count"]
    shared = spark.sparkContext.broadcast(
        {r["ref"]: r["value"].encode() for r in classified.filter("kind = 'shared'").select("ref", "value").collect()}
    )
    trials, on, release, index = job.trials, job.on, job.release, job.index

    def screen(group: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        group = group.sort_values(["file", "row"])  # input order, as the local backend reads it
        rows = [((f, r), v.encode()) for f, r, v in zip(group["file"], group["row"], group["value"], strict=True)]
        outcome: GroupOutcome[tuple[str, int]] = screen_group(rows, shared.value.get, trials, on, release, index)
        return pd.DataFrame(_out_rows(outcome, lambda where: (where[0], where[1], None)), columns=_COLUMNS)

    grouped = (
        classified.filter("kind in ('patient', 'linked')")
        .select("key", "file", "row", "value")
        .groupBy("key")
        .applyInPandas(screen, OUT_SCHEMA)
    )
    malformed = classified.filter("kind = 'malformed'").select(
        F.lit("problem").alias("kind"),
        F.lit(None).cast("string").alias("record"),
        "file",
        "row",
        F.lit(None).cast("int").alias("line"),
        # Only these few rows pay for the whole-document parse that tells bad JSON from a non-resource.
        F.when(F.col("type") == "Patient", "a Patient without a valid id; line skipped")
        .when(F.get_json_object("value", "$").isNull(), "not valid JSON; line skipped")
        .otherwise("not a FHIR resource (no resourceType); line skipped")
        .alias("message"),
        F.lit('{"lines_skipped":1}').alias("counts"),
    )
    return grouped.unionByName(malformed), text


_COLUMNS = ["kind", "record", "file", "row", "line", "message", "counts"]


def _out_rows(outcome: GroupOutcome[Any], where: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [
        ("result", orjson.dumps(r.record()).decode(), None, None, None, None, None) for r in outcome.results
    ]
    counts = orjson.dumps(dict(outcome.counts)).decode() if outcome.counts else None
    for index, (at, message) in enumerate(outcome.problems):
        file, row, line = where(at)
        rows.append(("problem", None, file, row, line, message, counts if index == 0 else None))
    if counts and not outcome.problems:  # counts ride on the first problem row, else on their own
        rows.append(("counts", None, None, None, None, None, counts))
    return rows


def _summarize(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """One partial summary per partition: a patient's records are contiguous in applyInPandas output."""
    import pandas as pd

    from service.screening.core import PatientTrialResult

    summary = Summary()
    patient: list[PatientTrialResult] = []
    for batch in batches:
        for text in batch["record"]:
            result = PatientTrialResult.from_record(orjson.loads(text))
            if patient and patient[0].patient != result.patient:
                summary.add_patient(patient)
                patient = []
            patient.append(result)
    if patient:
        summary.add_patient(patient)
    yield pd.DataFrame({"summary": [orjson.dumps(summary.to_json()).decode()]})


def _locate(located: list[tuple[str, int | None, int | None, str]], text: DataFrame | None) -> list[Problem]:
    """Spark row ids → line numbers: the id holds the partition in its upper bits and counts rows within
    it; a file's splits are read in order, so counting the rows of its earlier splits gives the line."""
    if not located:
        return []
    starts: dict[tuple[str, int], int] = {}
    if text is not None and any(row is not None for _, row, _, _ in located):
        from pyspark.sql import functions as F

        splits = (
            text.groupBy("file", F.shiftright("row", 33).alias("part"))
            .agg(F.min("row").alias("first"), F.count("*").alias("n"))
            .collect()
        )
        before: Counter[str] = Counter()
        for split in sorted(splits, key=lambda s: (s["file"], s["part"])):
            starts[(split["file"], split["part"])] = before[split["file"]] - split["first"]
            before[split["file"]] += split["n"]
    problems = []
    for file, row, line, message in located:
        if row is not None:
            line = starts[(file, row >> 33)] + row + 1
        problems.append(Problem(_local_name(file), line, message))
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.message))


def _local_name(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


# --- a directory of Bundles --------------------------------------------------------------------------


def _bundles(job: Job, spark: SparkSession, paths: list[str]) -> DataFrame:
    trials, on, release, index = job.trials, job.on, job.release, job.index

    def screen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        for batch in batches:
            rows: list[tuple[Any, ...]] = []
            for path, content in zip(batch["path"], batch["content"], strict=True):
                outcome = screen_document(path, bytes(content), trials, on, release, index)
                rows.extend(_out_rows(outcome, lambda line, path=path: (path, None, line)))
            yield pd.DataFrame(rows, columns=_COLUMNS)

    files = spark.read.format("binaryFile").load(paths).select("path", "content")
    return files.mapInPandas(screen, OUT_SCHEMA)

"""The Spark backend (local[2]) against the local backend on the same 56-patient export: identical answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from service.catalog import Trial
from service.screening.local import Job, run_local
from tests.screening.conftest import ON
from tests.screening.test_local import problems_of, read_results

pytest.importorskip("pyspark")  # the optional [spark] extra; CI installs it
pytestmark = pytest.mark.xdist_group("spark")  # one xdist worker: one Spark session (JVM) for the module

from service.screening.spark import run_spark, spark_session  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _text_parts(directory: Path) -> list[bytes]:
    """The lines of a Spark text output directory (one-part for the summary and problems)."""
    return [line for part in sorted(directory.glob("part-*")) for line in part.read_bytes().splitlines() if line]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = spark_session("local[2]", shuffle_partitions=4)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_and_local_give_identical_results_problems_and_summary(
    spark: SparkSession, broken_export: tuple[Path, set], tmp_path: Path, trials: tuple[Trial, ...]
) -> None:
    """As on a cluster: input and output given as URIs (the driver writes the summary through Spark)."""
    directory, expected = broken_export
    local = run_local(Job(directory, tmp_path / "local", ON, trials, workers=2))
    job = Job(Path("unused"), Path("unused"), ON, trials)
    distributed = run_spark(job, spark, directory.as_uri(), (tmp_path / "spark").as_uri())
    results = read_results(tmp_path / "spark" / "results.ndjson")
    assert len(results) == 56 * len(trials)
    assert results == read_results(tmp_path / "local" / "results.ndjson")
    assert problems_of(distributed) == problems_of(local) == expected
    assert distributed.summary.to_json() == local.summary.to_json()
    parquet = spark.read.parquet(str(tmp_path / "spark" / "results.parquet"))
    rows = sorted((r.asDict(recursive=True) for r in parquet.collect()), key=lambda r: (r["patient"], r["study"]))
    assert rows == results
    written = [orjson.loads(line) for line in _text_parts(tmp_path / "spark" / "summary.json")]
    assert written == [orjson.loads(orjson.dumps(local.summary.to_json()))]
    problems = [orjson.loads(line) for line in _text_parts(tmp_path / "spark" / "problems.ndjson")]
    assert {(p["file"], p["line"], p["message"]) for p in problems} == expected


def test_spark_screens_a_directory_of_bundles_like_the_local_backend(
    spark: SparkSession, synthea_files: list[Path], tmp_path: Path, trials: tuple[Trial, ...]
) -> None:
    source = synthea_files[0].parent
    local = run_local(Job(source, tmp_path / "local", ON, trials, workers=1))
    distributed = run_spark(Job(source, tmp_path / "spark", ON, trials), spark)
    assert read_results(tmp_path / "spark" / "results.ndjson") == read_results(tmp_path / "local" / "results.ndjson")
    assert distributed.summary.to_json() == local.summary.to_json()

"""The local backend over a 56-patient Bulk export built from the Synthea bundles, and the `screen` command."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import orjson
import pytest

from service.catalog import Trial
from service.screening.cli import main, register
from service.screening.export import write_bulk_export
from service.screening.local import Job, Outcome, run_local
from tests.screening.conftest import COPIES, ON, ROOT


def read_results(path: Path) -> list[dict]:
    """results.ndjson as a file (local) or a directory of part files (Spark), in a stable order."""
    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    rows = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines() if line]
    return sorted(rows, key=lambda r: (r["patient"], r["study"]))


def problems_of(outcome: Outcome) -> set[tuple[str, int | None, str]]:
    return {(p.file, p.line, p.message) for p in outcome.problems}


def _run(export: Path, output: Path, trials: tuple[Trial, ...], **options: int) -> Outcome:
    return run_local(Job(export, output, ON, trials, **options))  # type: ignore[arg-type]


def test_every_patient_is_screened_against_every_trial(export: Path, tmp_path: Path, trials: tuple[Trial, ...]) -> None:
    outcome = _run(export, tmp_path, trials, workers=2)
    results = read_results(tmp_path / "results.ndjson")
    patients = {r["patient"] for r in results}
    assert len(patients) == 7 * COPIES
    assert len(results) == len(patients) * len(trials)
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["input"]["patients"] == summary["input"]["patients_screened"] == len(patients)
    assert "lines_skipped" not in summary["input"]
    for trial in trials:
        verdicts = [r["verdict"] for r in results if r["study"] == trial.id]
        assert summary["trials"][trial.id] == {v: verdicts.count(v) for v in ("eligible", "undetermined", "ineligible")}
    assert summary["missing_data"] and summary["missing_data"][0]["settles"] > 0
    assert outcome.problems == [] and (tmp_path / "problems.ndjson").read_bytes() == b""


def test_the_export_and_the_bundles_it_came_from_give_the_same_results(
    synthea_files: list[Path], tmp_path: Path, trials: tuple[Trial, ...]
) -> None:
    write_bulk_export(synthea_files, tmp_path / "bulk")
    _run(tmp_path / "bulk", tmp_path / "from-bulk", trials, workers=2)
    _run(synthea_files[0].parent, tmp_path / "from-bundles", trials, workers=2)
    from_bulk = read_results(tmp_path / "from-bulk" / "results.ndjson")
    assert len(from_bulk) == 7 * len(trials)
    assert from_bulk == read_results(tmp_path / "from-bundles" / "results.ndjson")


def test_small_chunks_and_buckets_one_process_give_the_same_answer(
    broken_export: tuple[Path, set], tmp_path: Path, trials: tuple[Trial, ...]
) -> None:
    """Lines cut by chunk boundaries, patients spread over many buckets: same results, same line numbers."""
    directory, _ = broken_export
    big = _run(directory, tmp_path / "big", trials, workers=2)
    small = _run(directory, tmp_path / "small", trials, workers=1, chunk_bytes=100_000, bucket_bytes=300_000)
    assert read_results(tmp_path / "big" / "results.ndjson") == read_results(tmp_path / "small" / "results.ndjson")
    assert problems_of(big) == problems_of(small)
    assert big.summary.to_json() == small.summary.to_json()


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_is_screened(
    broken_export: tuple[Path, set], tmp_path: Path, trials: tuple[Trial, ...]
) -> None:
    directory, expected = broken_export
    outcome = _run(directory, tmp_path, trials, workers=2)
    assert problems_of(outcome) == expected
    counts = outcome.summary.counts
    assert counts["patients_screened"] == counts["patients"] == 7 * COPIES
    assert counts["lines_skipped"] == 5
    assert counts["resources_without_patient"] == 1
    written = [orjson.loads(line) for line in (tmp_path / "problems.ndjson").read_bytes().splitlines()]
    assert {(p["file"], p["line"], p["message"]) for p in written} == expected


def test_screen_command_reports_skipped_lines_and_exits_1(
    broken_export: tuple[Path, set], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "TEST-population.yaml").write_bytes(
        (Path(__file__).parent / "data" / "TEST-population.yaml").read_bytes()
    )
    directory, expected = broken_export
    argv = ["screen", "--input", str(directory), "--output", str(tmp_path / "out"), "--date", ON.isoformat()]
    status = main([*argv, "--engine", "local", "--mappings-dir", str(mappings), "--workers", "2"])
    out, err = capsys.readouterr()
    assert status == 1
    for file, line, _ in expected:
        assert f"{file}:{line}: " in err
    assert "TEST-population" in out and "56 patients x 1 trials = 56 evaluations" in out
    assert "\r" not in err  # no progress bar when stderr is not a terminal
    assert (tmp_path / "out" / "results.ndjson").stat().st_size > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--date", "2020-13-01"], "expected a date YYYY-MM-DD"),
        (["--input", "/nonexistent/export"], "The input directory does not exist."),
        (["--mappings-dir", "/nonexistent/mappings"], "the mappings directory does not exist"),
        (["--output", "s3a://bucket/out"], "use --engine spark for URIs"),
    ],
)
def test_screen_command_refuses_bad_arguments_with_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "screen",
        "--input",
        str(tmp_path),
        "--output",
        str(tmp_path / "out"),
        "--mappings-dir",
        str(ROOT / "tests" / "data"),
    ]
    with pytest.raises(SystemExit) if "--date" in extra else contextlib.nullcontext():
        assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


def test_register_hooks_screen_into_another_parser() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="trial-eligibility")
    commands = parser.add_subparsers(dest="command")
    register(commands)
    args = parser.parse_args(["screen", "--input", "in", "--output", "out", "--engine", "spark", "--workers", "3"])
    assert (args.command, args.engine, args.workers, args.input) == ("screen", "spark", 3, "in")
    help_text = io.StringIO()
    commands.choices["screen"].print_help(help_text)
    assert "Bulk Data export" in help_text.getvalue()

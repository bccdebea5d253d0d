"""Screening's fast paths change nothing: the same records, problems and summary with them and without
(every resource validated by the models), on the Synthea export with bad lines and invalid evidence."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from service.catalog import Trial
from service.fhir import patient_bundle
from service.fhir.patient_bundle import clear_validation_cache
from service.screening.local import Job, Outcome, run_local
from tests.screening.conftest import ON
from tests.screening.test_local import problems_of, read_results


@pytest.fixture(scope="module")
def invalid_evidence_export(tmp_path_factory: pytest.TempPathFactory, broken_export: tuple[Path, set]) -> Path:
    """The broken export, and in it a few patients' Observations and Conditions that are not valid FHIR
    (an impossible date, an unknown element) though shaped like valid ones."""
    source, _ = broken_export
    directory = tmp_path_factory.mktemp("invalid-evidence")
    for path in source.iterdir():
        shutil.copy(path, directory)
    for name, damage in (
        ("Observation.ndjson", lambda r: r.update(effectiveDateTime="2020-02-30T10:00:00-05:00")),
        ("Condition.ndjson", lambda r: r.update(favouriteColour="blue")),
    ):
        path = directory / name
        lines = path.read_bytes().split(b"\n")
        for index in range(40, len(lines), 97):  # spread over many patients
            try:
                resource = orjson.loads(lines[index])
            except orjson.JSONDecodeError:
                continue
            damage(resource)
            lines[index] = orjson.dumps(resource)
        path.write_bytes(b"\n".join(lines))
    return directory


def _run(export: Path, output: Path, trials: tuple[Trial, ...]) -> Outcome:
    clear_validation_cache()
    return run_local(Job(export, output, ON, trials, workers=2))


def test_fast_paths_give_the_same_results_problems_and_summary(
    invalid_evidence_export: Path, tmp_path: Path, trials: tuple[Trial, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _run(invalid_evidence_export, tmp_path / "fast", trials)
    with monkeypatch.context() as patch:
        patch.setattr(patient_bundle, "shape", lambda resource, release: None)  # every resource to the models
        slow = _run(invalid_evidence_export, tmp_path / "slow", trials)
    results = read_results(tmp_path / "fast" / "results.ndjson")
    assert results == read_results(tmp_path / "slow" / "results.ndjson")
    assert problems_of(fast) == problems_of(slow)
    assert fast.summary.to_json() == slow.summary.to_json()
    # The damage reached the engine: some results rest on a resource it refused as invalid evidence.
    assert any(r["warnings"] for r in results) and not all(r["warnings"] for r in results)

"""Screening with the catalog index gives the same verdicts and summary as evaluating every pair in full.

A pair the index rules out is not evaluated: its row says ineligible with the ruling gates as `deciding`
and `prefiltered` set (docs/screening.md); every other row is the full evaluation's.
"""

from __future__ import annotations

import bz2
import dataclasses
import shutil
from pathlib import Path

import orjson
import pytest

from service.catalog import Trial, load_catalog
from service.catalog.index import build_index
from service.errors import FhirError
from service.fhir.patient_bundle import read_patient_request
from service.screening import PatientTrialResult, Summary, group, screen_bundle
from service.screening.group import screen_group
from service.screening.local import Job, run_local
from tests.conftest import EXTERNAL_DATA, TEST_MAPPINGS
from tests.screening.conftest import ON, ROOT

BUNDLES = sorted([*(ROOT / "fixtures").rglob("*.json"), *(EXTERNAL_DATA / "patients").rglob("*.json*")])


@pytest.fixture(scope="module")
def catalog_trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trial, ...]:
    """The five mappings and the two test mappings: gates on age, sex and diagnosis of every kind."""
    directory = tmp_path_factory.mktemp("prefilter-mappings")
    for source in [*sorted((ROOT / "mappings").glob("*.yaml")), TEST_MAPPINGS / "TEST-rules.yaml"]:
        shutil.copy(source, directory)
    shutil.copy(Path(__file__).parent / "data" / "TEST-population.yaml", directory)
    return tuple(load_catalog(directory).trials.values())


def _screen(path: Path, trials: tuple[Trial, ...], indexed: bool) -> list[PatientTrialResult] | None:
    raw = path.read_bytes()
    try:
        document = orjson.loads(bz2.decompress(raw) if path.suffix == ".bz2" else raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("resourceType") not in ("Bundle", "Parameters"):
        return None  # a trial record or other fixture, not a patient's data
    index = build_index((t.id, t.criteria, None) for t in trials) if indexed else None
    try:
        return screen_bundle(read_patient_request(document), trials, ON, index)
    except FhirError:  # fixtures of bad input (no Patient, two...): refused the same way either way
        return None


def _summary(rows_by_patient: list[list[PatientTrialResult]]) -> dict:
    summary = Summary()
    for rows in rows_by_patient:
        summary.add_patient(rows)
    return summary.to_json()


def test_same_verdicts_and_summary_with_and_without_the_index(catalog_trials: tuple[Trial, ...]) -> None:
    full_runs, indexed_runs = [], []
    for path in BUNDLES:
        full = _screen(path, catalog_trials, indexed=False)
        indexed = _screen(path, catalog_trials, indexed=True)
        assert (full is None) == (indexed is None), path.name
        if full is None or indexed is None:
            continue
        full_runs.append(full)
        indexed_runs.append(indexed)
        for whole, quick in zip(full, indexed, strict=True):
            assert (quick.patient, quick.study, quick.verdict) == (whole.patient, whole.study, whole.verdict)
            if quick.prefiltered:
                # Its gates are among the criteria the full evaluation finds deciding, and nothing else is claimed.
                assert quick.deciding and set(quick.deciding) <= set(whole.deciding), (path.name, quick.study)
                assert (quick.met, quick.not_met, quick.unknown) == (0, len(quick.deciding), 0)
            else:
                # Evaluated in full; only fewer resources may have been validated (the ruled-out trials' evidence).
                assert dataclasses.replace(quick, warnings=whole.warnings) == whole
                assert quick.warnings <= whole.warnings
    assert len(full_runs) >= 20
    assert _summary(indexed_runs) == _summary(full_runs)
    ruled_out = [r for rows in indexed_runs for r in rows if r.prefiltered]
    assert len({r.patient for r in ruled_out}) >= 3 and len({r.study for r in ruled_out}) >= 3  # not vacuous


def test_a_bundle_the_index_rules_out_everywhere(catalog_trials: tuple[Trial, ...], tmp_path: Path) -> None:
    """A 5-year-old: every trial with an adult age gate is ruled out by it, without a full evaluation."""
    patient = {"resourceType": "Patient", "id": "child", "gender": "male", "birthDate": "2015-06-01"}
    child = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}
    path = tmp_path / "child.json"
    path.write_bytes(orjson.dumps(child))
    full = _screen(path, catalog_trials, indexed=False)
    indexed = _screen(path, catalog_trials, indexed=True)
    assert full is not None and indexed is not None
    assert [r.verdict for r in indexed] == [r.verdict for r in full]
    mapped = [r for r in indexed if not r.study.startswith("TEST-")]
    assert mapped and all(r.prefiltered and r.verdict == "ineligible" and r.deciding for r in mapped)


@pytest.mark.parametrize("broken", [False, True], ids=["export", "export-with-bad-lines"])
def test_a_run_gives_the_same_summary_and_problems_with_and_without_the_index(
    broken: bool, request: pytest.FixtureRequest, tmp_path: Path, catalog_trials: tuple[Trial, ...]
) -> None:
    """Patients ruled out of every trial by their Patient and Conditions have their other lines only checked
    to be JSON (`lines_checked_only`): the verdicts, the summary and every problem reported are the same."""
    export = request.getfixturevalue("broken_export")[0] if broken else request.getfixturevalue("export")
    # The five mappings alone rule most of these (cancer-free) Synthea patients out of every trial.
    trials = tuple(t for t in catalog_trials if not t.id.startswith("TEST-")) if broken else catalog_trials
    runs = {}
    for prefilter in (True, False):
        output = tmp_path / str(prefilter)
        outcome = run_local(Job(export, output, ON, trials, workers=2, prefilter=prefilter))
        rows = [orjson.loads(line) for line in (output / "results.ndjson").read_bytes().splitlines()]
        summary = outcome.summary.to_json()
        checked_only = summary["input"].pop("lines_checked_only", 0)
        problems = sorted((p.file, p.line, p.message) for p in outcome.problems)
        runs[prefilter] = (summary, sorted((r["patient"], r["study"], r["verdict"]) for r in rows), problems)
        if prefilter:
            assert any(r["prefiltered"] for r in rows) and checked_only > 0
        else:
            assert not any(r["prefiltered"] for r in rows) and checked_only == 0
    assert runs[True] == runs[False]


def test_a_patient_ruled_out_everywhere_has_its_other_lines_only_checked(
    catalog_trials: tuple[Trial, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5-year-old with a Condition: the Patient and Condition lines are parsed, the Observation lines are
    not, yet the one that is not JSON is reported as when every line is parsed."""
    trials = tuple(t for t in catalog_trials if not t.id.startswith("TEST-"))  # each has an adult age gate
    rows = [
        (1, b'{"resourceType":"Patient","id":"child","gender":"male","birthDate":"2021-06-01"}'),
        (
            2,
            b'{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/child"},'
            b'"code":{"text":"Asthma"},"clinicalStatus":{"coding":[{"code":"active"}]}}',
        ),
        (3, b'{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/child"}'),
        (4, b'{"resourceType":"Observation","id":"o2","status":"final","subject":{"reference":"Patient/child"}}'),
    ]
    index = build_index((t.id, t.criteria, None) for t in trials)
    parsed: list[bytes] = []
    real_loads = orjson.loads

    def counting_loads(data: bytes) -> object:
        parsed.append(data)
        return real_loads(data)

    full = screen_group(rows, lambda _: None, trials, ON, None, None)
    monkeypatch.setattr(group.orjson, "loads", counting_loads)
    quick = screen_group(rows, lambda _: None, trials, ON, None, index)
    assert [r.verdict for r in quick.results] == [r.verdict for r in full.results] == ["ineligible"] * len(trials)
    assert all(r.prefiltered for r in quick.results)
    assert quick.problems == full.problems == [(3, "not valid JSON; line skipped")]
    assert parsed == [rows[0][1], rows[1][1], rows[2][1]]  # the bad line was parsed by orjson only to confirm it
    assert quick.counts["lines_checked_only"] == 2 and quick.counts["lines_skipped"] == 1

"""screen_patient: the engine's answer condensed per trial, and the summary built from those records."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from service.catalog import Trial
from service.domain.criteria import Result
from service.eligibility import evaluate_bundle
from service.errors import FhirError
from service.fhir.patient_bundle import bundle_from_resources, read_patient_request
from service.screening import PatientTrialResult, Requirement, Summary, screen_bundle, screen_patient
from service.screening.export import bundle_resources, decompress
from tests.screening.conftest import ON


def _bundle(path: Path) -> dict:
    return orjson.loads(decompress(path.name, path.read_bytes()))


def test_records_follow_the_engine_for_every_synthea_patient(
    synthea_files: list[Path], trials: tuple[Trial, ...]
) -> None:
    verdicts = set()
    for path in synthea_files:
        resources = bundle_resources(_bundle(path))
        results = screen_patient(resources, trials, ON)
        evaluations = evaluate_bundle(bundle_from_resources(resources), trials, ON)
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        for result, evaluation in zip(results, evaluations.results, strict=True):
            verdicts.add(result.verdict)
            assert (result.patient, result.study, result.verdict) == (
                f"Patient/{patient['id']}",
                evaluation.study_id,
                evaluation.verdict.value,
            )
            tops = [r for r in evaluation.criteria if not r.screening_only]
            assert result.met + result.not_met + result.unknown == len(tops)
            assert result.screening == len(evaluation.criteria) - len(tops)
            if result.verdict == "ineligible":
                assert result.deciding
                deciding = {r.criterion.link_id: r for r in tops if r.criterion.link_id in result.deciding}
                assert all(r.effective is Result.NOT_MET for r in deciding.values())
                assert not result.requirements
            elif result.verdict == "undetermined":
                assert not result.deciding
                assert [r.label for r in result.requirements] == [r.label for r in evaluation.data_requirements()]
            assert PatientTrialResult.from_record(orjson.loads(orjson.dumps(result.record()))) == result
    assert verdicts == {"eligible", "undetermined", "ineligible"}


def test_a_bundle_and_its_bulk_resources_give_the_same_records(
    synthea_files: list[Path], trials: tuple[Trial, ...]
) -> None:
    for path in synthea_files:
        document = _bundle(path)
        assert screen_bundle(read_patient_request(document), trials, ON) == screen_patient(
            bundle_resources(document), trials, ON
        )


def test_a_group_without_a_usable_patient_raises_fhir_error(trials: tuple[Trial, ...]) -> None:
    observation = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}
    with pytest.raises(FhirError):
        screen_patient([observation], trials, ON)
    with pytest.raises(FhirError):
        screen_patient([{"resourceType": "Patient", "id": "p", "birthDate": "not a date"}], trials, ON)


def _result(patient: str, study: str, verdict: str, *labels: str, review: bool = False) -> PatientTrialResult:
    requirements = tuple(
        Requirement("Observation", label, (f"http://loinc.org|{label}",), None, None) for label in labels
    )
    return PatientTrialResult(patient, study, verdict, 0, 0, len(labels), 0, (), requirements, review, 0)


def test_summary_counts_verdicts_and_ranks_the_items_that_settle_most_pairs() -> None:
    one, two = Summary(), Summary()
    one.add_patient(
        [_result("P1", "A", "undetermined", "HBV DNA"), _result("P1", "B", "undetermined", "HBV DNA", "ANC")]
    )
    one.add_patient([_result("P2", "A", "undetermined", "HBV DNA"), _result("P2", "B", "eligible")])
    two.add_patient([_result("P3", "A", "undetermined", "ANC", review=True), _result("P3", "B", "ineligible")])
    two.add_patient([_result("P4", "A", "undetermined", "ANC"), _result("P4", "B", "undetermined", "ANC")])
    one.merge(two)
    merged = Summary.from_json(orjson.loads(orjson.dumps(one.to_json())))
    data = merged.to_json()
    assert data["trials"] == {
        "A": {"eligible": 0, "undetermined": 4, "ineligible": 0},
        "B": {"eligible": 1, "undetermined": 2, "ineligible": 1},
    }
    ranking = [(m["label"], m["patients"], m["pairs"], m["settles"]) for m in data["missing_data"]]
    # HBV DNA alone settles P1-A and P2-A; ANC alone settles P4-A and P4-B (P3-A also needs site review).
    assert ranking == [("ANC", 3, 4, 2), ("HBV DNA", 2, 3, 2)]
    assert data["missing_data"][1]["text"] == (
        "HBV DNA (Observation) is missing for 2 patients. "
        "It is needed by 3 undetermined trial results, 2 of which it would settle on its own."
    )
    assert data["input"]["patients_screened"] == 4

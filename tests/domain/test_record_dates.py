"""How the dates of conditions, procedures and medication records place them (fifth review, 2026-12-03).

A date written only to the month or year is the period of days it can be; a record without a date is
unknown inside a window; an active medication without a date is taken now; a product given once is dated
by its own day; progression during a course recorded as ongoing is progression on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.domain.criteria import Result, TrialCriteria
from service.domain.evaluate import CriterionResult, evaluate_study
from service.domain.facts import PartialDate
from service.fhir.patient_bundle import _parse_date, index_facts, parse_body
from service.mapping import parse_trial_criteria
from tests.builders import ICD10, LOINC, SNOMED, body, concept, condition, observation, patient

ON = dt.date(2026, 3, 1)
ATC = "http://www.whocc.no/atc"
M, N, U = Result.MET, Result.NOT_MET, Result.UNKNOWN


def decide(criterion: dict[str, Any], *resources: dict[str, Any]) -> CriterionResult:
    criteria: TrialCriteria = parse_trial_criteria({"status": "draft", "criteria": [criterion]}, "T", "T")
    evaluation = evaluate_study(criteria, index_facts(parse_body(body(patient(), *resources))), ON)
    return evaluation.criteria[0]


CANCER = {"id": "inc-1", "text": "solid tumour", "condition": {"label": "gastric cancer", "codes": ["icd10cm:C16"]}}
SEPSIS = {
    "id": "exc-1",
    "text": "sepsis within 28 days",
    "condition": {"label": "sepsis", "codes": ["icd10cm:A41"], "within_days": 28},
}
SURGERY = {
    "id": "exc-2",
    "text": "major surgery within 28 days",
    "procedure": {"label": "major surgery", "codes": ["snomed:387713003"], "within_days": 28},
}
SURGERY_EVER = {
    "id": "inc-2",
    "text": "prior surgery",
    "procedure": {"label": "surgery", "codes": ["snomed:387713003"]},
}


def medication_rule(**spec: Any) -> dict[str, Any]:
    return {"id": "exc-3", "text": "therapy", "medication": {"label": "chemotherapy", "codes": ["atc:L01"], **spec}}


def gastric(onset: str, **extra: Any) -> dict[str, Any]:
    return condition(ICD10, "C16.9", "Malignant neoplasm of stomach", onset, **extra)


def sepsis(onset: str | None, status: str = "active", **extra: Any) -> dict[str, Any]:
    record = condition(ICD10, "A41.9", "Sepsis, unspecified organism", onset or "", status, **extra)
    if onset is None:
        del record["onsetDateTime"]
    return record


def surgery(when: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": f"proc-{when}",
        "status": "completed",
        "code": concept(SNOMED, "387713003", "Surgical procedure"),
        "subject": {"reference": "Patient/p1"},
    }
    if when:
        record["performedDateTime"] = when
    return record


def statement(status: str = "active", atc: str = "L01XE11", name: str = "pazopanib", **dates: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": f"ms-{status}-{atc}-{sorted(dates.items())}",
        "status": status,
        "medicationCodeableConcept": concept(ATC, atc, name),
        "subject": {"reference": "Patient/p1"},
        **dates,
    }


def test_a_partial_date_is_written_back_as_given_and_stops_at_the_evaluation_date() -> None:
    assert [str(_parse_date(raw)) for raw in ("2026", "2026-01", "2026-12", "2026-02-03")] == [
        "2026",
        "2026-01",
        "2026-12",
        "2026-02-03",
    ]
    december = _parse_date("2026-12")
    assert december is not None and december.until(dt.date(2026, 12, 3)) == PartialDate(
        dt.date(2026, 12, 1), dt.date(2026, 12, 3)
    )
    assert december.until(dt.date(2026, 11, 3)) == december  # wholly after: unchanged (a future record)


@pytest.mark.parametrize(("onset", "expected"), [("2026", M), ("2026-03", M), ("2026-04", N), ("2027", N)])
def test_a_condition_dated_to_this_year_or_month_is_not_in_the_future(onset: str, expected: Result) -> None:
    """Carnk-ilkn F1: "2026" read as 2026-12-31 put the study cancer in the future (wrong ineligible)."""
    found = decide(CANCER, gastric(onset))
    assert found.result is expected
    if expected is M:
        assert f"since {onset}" in found.reason


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        ("2026-02", M),  # 1-28 February: every day inside the 28 days before 1 March
        ("2026-03", M),  # 1 March, the evaluation date (the rest of March has not happened)
        ("2026", U),  # 1 January - 1 March: inside or before the window
        ("2025", N),  # wholly before: an old record still marked active is judged on when it began
        ("2026-01", N),
    ],
)
def test_a_partial_onset_decides_a_window_only_when_its_whole_period_does(onset: str, expected: Result) -> None:
    found = decide(SEPSIS, sepsis(onset))
    assert found.result is expected
    if expected is U:
        assert "only the month or year (onset 2026)" in found.reason and found.requirements


def test_a_partial_end_date_reaching_into_the_window_is_unknown() -> None:
    assert decide(SEPSIS, sepsis("2019-05-01", "resolved", abatementDateTime="2026")).result is U
    assert decide(SEPSIS, sepsis("2019-05-01", "resolved", abatementDateTime="2026-02")).result is M
    assert decide(SEPSIS, sepsis("2019-05-01", "resolved", abatementDateTime="2025")).result is N


@pytest.mark.parametrize(
    ("when", "expected", "words"),
    [
        ("2026", U, "dated only 2026"),
        (None, U, "without a date"),
        ("2026-02", M, "on 2026-02"),
        ("2025", N, "No major surgery"),
        ("2026-02-15", M, "on 2026-02-15"),
    ],
)
def test_a_procedure_dated_by_year_or_undated_is_unknown_inside_a_window(
    when: str | None, expected: Result, words: str
) -> None:
    """Carnk-ilkn F4: a Whipple dated "2026" or an undated transplant read as "none within the window"."""
    found = decide(SURGERY, surgery(when))
    assert found.result is expected and words in found.reason
    if expected is U:
        assert found.evidence and found.requirements[0].resource_type == "Procedure"


def test_an_undated_procedure_happened_at_some_time() -> None:
    found = decide(SURGERY_EVER, surgery(None))
    assert found.result is M and "no date recorded" in found.reason


def test_an_active_medication_without_any_date_is_current_and_inside_any_window() -> None:
    """Sarcoma F3: a patient-reported "Pazopanib 800 mg daily", active, undated, was no current therapy."""
    assert decide(medication_rule(current=True), statement()).result is M
    assert decide(medication_rule(within_days=20), statement()).result is M
    assert decide(medication_rule(), statement()).result is M
    # Not active and undated: given at some time, when is not told.
    assert decide(medication_rule(current=True), statement("completed")).result is N
    assert decide(medication_rule(), statement("completed")).result is M
    doubt = decide(medication_rule(within_days=20), statement("completed"))
    assert doubt.result is U and "carries no date" in doubt.reason and doubt.evidence


def test_a_medication_dated_by_year_decides_a_window_only_when_its_whole_period_does() -> None:
    assert decide(medication_rule(within_days=28), statement("completed", effectiveDateTime="2026")).result is U
    assert decide(medication_rule(within_days=28), statement("completed", effectiveDateTime="2026-02")).result is M
    assert decide(medication_rule(within_days=28), statement("completed", effectiveDateTime="2025")).result is N
    # Still active, begun on a day of 2025: taken now (HNSCC F29 is about progression, not about exposure).
    assert decide(medication_rule(within_days=28), statement(effectiveDateTime="2025")).result is M


CAR_T = {
    "id": "exc-6",
    "exclude": True,
    "text": "Prior gene-modified cellular therapy within 3 months",
    "medication": {"label": "gene-modified cell therapy", "codes": ["atc:L01XL"], "within_days": 92},
}


def test_a_product_given_once_is_dated_by_its_own_day_even_when_left_active() -> None:
    """Carnk-ilkn F19: a Kymriah statement 100 days ago left active ran to today and excluded."""
    infusion = statement(atc="L01XL04", name="tisagenlecleucel", effectiveDateTime="2025-11-21")  # 100 days
    once = {**CAR_T, "medication": {**CAR_T["medication"], "given_once": True}}
    assert decide(once, infusion).result is N
    assert decide(once, {**infusion, "effectiveDateTime": "2026-01-10"}).result is M  # 50 days
    assert decide(once, {**infusion, "effectiveDateTime": "2025"}).result is U
    # Without the flag an active record still runs to today (a chronic drug left active is taken now).
    assert decide(CAR_T, infusion).result is M


PROGRESSION = {
    "id": "inc-5",
    "text": "progression within 12 weeks of the last anti-PD-1 dose",
    "progression_after": {"label": "anti-PD-1", "codes": ["atc:L01FF"], "within_days": 84},
}


def status(day: str, code: str, display: str) -> dict[str, Any]:
    return observation("97509-4", day, concept(SNOMED, code, display), system=LOINC)


STABLE = status("2025-11-15", "359746009", "Patient's condition stable")
WORSE = status("2026-02-10", "271299001", "Patient's condition worsened")


def test_progression_during_a_course_recorded_as_ongoing_is_progression_on_it() -> None:
    """Melanoma F14: pembrolizumab active since 2025-09-01 with no end, stable then worse: it read "no
    progression" (the course taken as the single day 2025-09-01)."""
    ongoing = statement(atc="L01FF02", name="pembrolizumab", effectivePeriod={"start": "2025-09-01"})
    found = decide(PROGRESSION, ongoing, STABLE, WORSE)
    assert found.result is M and "recorded as ongoing" in found.reason and "to 2025-09-01" not in found.reason
    # A course that ended: the progression 4 months after its end is not within 12 weeks (unchanged).
    ended = statement(
        "completed", "L01FF02", "pembrolizumab", effectivePeriod={"start": "2025-09-01", "end": "2025-10-01"}
    )
    assert decide(PROGRESSION, ended, STABLE, WORSE).result is N


def test_an_order_left_active_ties_no_later_progression_and_rules_nothing_out() -> None:
    """HNSCC F29 kept: an active order dated only by authoredOn is given on that day, so a progression months
    later is not tied to it (no MET); melanoma F14: nor is it "no progression" (no NOT_MET)."""
    order = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept(ATC, "L01FF02", "pembrolizumab"),
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2025-09-01",
    }
    found = decide(PROGRESSION, order, STABLE, WORSE)
    assert found.result is U and "still marked active" in found.reason
    # Without a later progression the assessments still say no progression.
    assert decide(PROGRESSION, order, STABLE).result is N

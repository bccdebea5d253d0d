"""The evidence rules of issue 10 (DESIGN.md §2): class members that do not mean a criterion, results that
decide alone, recorded statuses that are not tests, undecidable criteria that still name their data, and
the match grade a draft mapping can reach."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.domain.criteria import Result, TrialCriteria
from service.domain.evaluate import CriterionResult, StudyEvaluation, Verdict, evaluate_study
from service.errors import MappingError
from service.fhir.eligibility_render import match_grade
from service.fhir.patient_bundle import index_facts, parse_body
from service.mapping import parse_trial_criteria
from tests.builders import ICD10, SNOMED, administration_r4, body, concept, condition, observation, patient

ON = dt.date(2026, 3, 1)
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
M, N, U = Result.MET, Result.NOT_MET, Result.UNKNOWN


def trial(*criteria: dict[str, Any], status: str = "draft") -> TrialCriteria:
    return parse_trial_criteria({"status": status, "criteria": list(criteria)}, "T", "T")


def evaluate(criteria: TrialCriteria, *resources: dict[str, Any]) -> StudyEvaluation:
    return evaluate_study(criteria, index_facts(parse_body(body(patient(), *resources))), ON)


def result(evaluation: StudyEvaluation, link_id: str) -> CriterionResult:
    return next(r for top in evaluation.all_results() for r in top.walk() if r.criterion.link_id == link_id)


CAR_T = {
    "id": "exc-1",
    "exclude": True,
    "text": "prior CAR T-cell therapy within 3 months",
    "medication": {
        "label": "CAR T-cell product",
        "codes": ["atc:L01XL"],
        "except": {"codes": ["atc:L01XL02"], "names": ["talimogene laherparepvec"]},
        "within_days": 90,
    },
}


def test_a_class_member_listed_as_exception_is_never_a_match() -> None:
    criteria = trial(CAR_T)
    tvec = administration_r4("L01XL02", "talimogene laherparepvec", "2026-01-20", system=ATC)
    assert result(evaluate(criteria, tvec), "exc-1").result is N
    car_t = administration_r4("L01XL03", "axicabtagene ciloleucel", "2026-01-20", system=ATC)
    assert result(evaluate(criteria, car_t), "exc-1").result is M
    # the exception holds per record, whatever else the record carries (here: its name only)
    named = administration_r4("999", "Talimogene laherparepvec (Imlygic)", "2026-01-20", system="urn:local")
    named["medicationCodeableConcept"]["coding"].append({"system": ATC, "code": "L01XL"})
    assert result(evaluate(criteria, named), "exc-1").result is N


def test_the_whole_vaccine_class_honours_its_exceptions() -> None:
    criteria = trial(
        {
            "id": "exc-v",
            "exclude": True,
            "text": "any vaccine within 28 days",
            "medication": {"label": "vaccine", "codes": ["atc:J07"], "except": ["cvx:187"], "within_days": 28},
        }
    )
    shingrix = {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "completed",
        "vaccineCode": concept(CVX, "187", "zoster vaccine recombinant"),
        "patient": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2026-02-20",
    }
    assert result(evaluate(criteria, shingrix), "exc-v").result is N
    flu = {**shingrix, "id": "i2", "vaccineCode": concept(CVX, "140", "Influenza, injectable")}
    assert result(evaluate(criteria, flu), "exc-v").result is M


HBV = {
    "id": "exc-2",
    "exclude": True,
    "text": "active hepatitis B with evidence of active replication",
    "any_of": [
        {
            "id": "exc-2.b",
            "text": "active replication",
            "test": {
                "label": "HBV DNA",
                "codes": ["loinc:42595-9"],
                "result": "positive",
                "window_days": 28,
                "decides_alone": True,
            },
        },
        {
            "id": "exc-2.c",
            "text": "hepatitis B with active replication",
            "all_of": [
                {
                    "id": "exc-2.a",
                    "text": "hepatitis B",
                    "condition": {"label": "hepatitis B", "codes": ["icd10cm:B18.1"]},
                },
                {
                    "id": "exc-2.d",
                    "text": "active replication",
                    "test": {"label": "HBV DNA", "codes": ["loinc:42595-9"], "result": "positive", "window_days": 28},
                },
            ],
        },
    ],
}


def test_a_result_that_is_the_definition_decides_alone() -> None:
    criteria = trial(HBV)
    other = condition(SNOMED, "38341003", "Hypertension")
    dna = observation("42595-9", "2026-02-20", 2300, "[IU]/mL")
    assert result(evaluate(criteria, other, dna), "exc-2").result is M  # no diagnosis needed
    # no result: this path is not met, the diagnosis path carries the doubt
    quiet = evaluate(criteria, other, observation("718-7", "2026-02-20", 13, "g/dL"))
    assert result(quiet, "exc-2.b").result is N and result(quiet, "exc-2").result is N
    known = evaluate(
        criteria, condition(ICD10, "B18.1", "Chronic hepatitis B"), observation("718-7", "2026-02-20", 13, "g/dL")
    )
    assert result(known, "exc-2").result is U
    # a record with no laboratory data at all reads nothing as absent
    assert result(evaluate(criteria, other), "exc-2.b").result is U


PREGNANCY_STATUS_AS_TEST = {
    "id": "inc-8",
    "text": "Negative pregnancy test",
    "test": {
        "label": "pregnancy test",
        "codes": ["loinc:2106-3", "loinc:82810-3"],
        "result": "negative",
        "window_days": 28,
    },
}


def test_a_recorded_status_cannot_be_read_as_a_negative_test() -> None:
    with pytest.raises(MappingError, match="82810-3"):
        trial(PREGNANCY_STATUS_AS_TEST)
    rule = dict(PREGNANCY_STATUS_AS_TEST["test"], codes=["loinc:2106-3"])  # type: ignore[arg-type]
    criteria = trial({**PREGNANCY_STATUS_AS_TEST, "test": rule})
    status = observation("82810-3", "2026-02-25", concept(SNOMED, "60001007", "Not pregnant"))
    assert result(evaluate(criteria, status), "inc-8").result is U


def test_a_result_that_decides_alone_needs_a_window() -> None:
    spec = {
        "id": "x",
        "text": "x",
        "test": {"label": "x", "codes": ["loinc:1-8"], "result": "positive", "decides_alone": True},
    }
    with pytest.raises(MappingError, match="window_days"):
        trial(spec)


def test_an_undecidable_criterion_still_asks_for_the_data_it_names() -> None:
    organ = {
        "id": "inc-11",
        "text": "blood tests done within 14 days",
        "not_computable": {
            "reason": "The limits are not stated.",
            "needs": [{"label": "Blood counts", "codes": ["loinc:751-8", "loinc:777-3"], "window_days": 14}],
        },
    }
    evaluation = evaluate(trial(organ))
    assert result(evaluation, "inc-11").result is U
    (requirement,) = evaluation.data_requirements()
    assert {code for _, code in requirement.codes} == {"751-8", "777-3"}
    assert (requirement.since, requirement.until) == (ON - dt.timedelta(days=14), ON)


AGE = {"id": "inc-1", "text": "Adults", "age": {"min": 18}}
ECOG = {
    "id": "inc-2",
    "text": "ECOG 0-1",
    "observation": {"label": "ECOG", "codes": ["loinc:89247-1"], "op": "<=", "value": 1, "unit": "1"},
}


@pytest.mark.parametrize(
    ("status", "criteria", "grade"),
    [
        ("active", (AGE, ECOG), "certain"),
        ("draft", (AGE, ECOG), "probable"),  # an unreviewed mapping is at best probable
        ("active", (AGE,), "probable"),  # nothing decided beyond age and sex
    ],
)
def test_match_grade_certain_needs_a_reviewed_mapping_and_data_beyond_demographics(
    status: str, criteria: tuple[dict[str, Any], ...], grade: str
) -> None:
    evaluation = evaluate(trial(*criteria, status=status), observation("89247-1", "2026-02-20", 1))
    assert evaluation.verdict is Verdict.ELIGIBLE
    assert match_grade(evaluation) == grade
    assert evaluation.score == (1.0 if grade == "certain" else 0.9)


@pytest.mark.parametrize(("intent", "expected"), [("order", M), ("plan", N), ("proposal", N)])
def test_a_planned_or_proposed_order_gives_no_drug(intent: str, expected: Result) -> None:
    """A bridging regimen ordered as a plan (to start after leukapheresis) is neither given nor current
    (fresh review 2026-12-03, sarcoma WI-18); an order is."""
    criteria = trial(
        {
            "id": "exc-1",
            "exclude": True,
            "text": "current chemotherapy",
            "medication": {"label": "chemotherapy", "codes": ["atc:L01"], "current": True},
        }
    )
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": intent,
        "medicationCodeableConcept": concept(ATC, "L01BC05", "gemcitabine"),
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-02-27",
    }
    other_drug = administration_r4("161", "acetaminophen", "2026-02-20")  # the bundle carries medications
    assert result(evaluate(criteria, request, other_drug), "exc-1").result is expected


def test_a_nyha_class_charted_as_a_loinc_answer_is_its_class_number() -> None:
    """NYHA functional class (88020-3) arrives as an answer code (LA28406-9 "Class III"), rarely as a number."""
    nyha = {"label": "NYHA", "codes": ["loinc:88020-3"], "op": ">=", "value": 2, "unit": "1"}
    criteria = trial({"id": "nyha", "text": "NYHA II-IV", "observation": nyha})
    class_iii = observation("88020-3", "2026-02-20", concept("http://loinc.org", "LA28406-9", "Class III"))
    assert result(evaluate(criteria, class_iii), "nyha").result is Result.MET
    class_i = observation("88020-3", "2026-02-20", concept("http://loinc.org", "LA28404-4", "Class I"))
    assert result(evaluate(criteria, class_i), "nyha").result is Result.NOT_MET

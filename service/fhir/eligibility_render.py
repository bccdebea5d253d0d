"""Evaluation results → R5 Parameters ($evaluate-eligibility) and searchset Bundle ($match).

Rule: plain dicts built straight from the results (no model round-trip on the hot path); the shape
is the contract of DESIGN.md §1, checked by tests with fhir.resources and r5check.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from service.domain.evaluate import CriterionResult, DataRequirement, StudyEvaluation, Verdict
from service.errors import Issue
from service.fhir.conformance import EXT_MATCH_GRADE
from service.fhir.outcome import operation_outcome

Json = dict[str, Any]

SUBJECT_STATE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-state"
SUBJECT_STATE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-state-type"
DATE_SEARCH_PARAMS = {
    "Observation": "date",
    "Procedure": "date",
    "MedicationAdministration": "date",
    "MedicationStatement": "effective",
    "MedicationRequest": "authoredon",
    "Condition": "onset-date",
}


def evaluation_parameters(evaluation: StudyEvaluation, patient_ref: str, warnings: Sequence[Issue]) -> Json:
    parameters: list[Json] = [
        {"name": "eligibility", "valueCode": evaluation.verdict.value},
        {"name": "researchSubject", "resource": _research_subject(evaluation, patient_ref)},
        {"name": "evaluationDate", "valueDate": evaluation.on.isoformat()},
    ]
    parameters += [_criterion(result) for result in evaluation.criteria]
    parameters += [
        {"name": "dataRequirement", "valueDataRequirement": _data_requirement(requirement)}
        for requirement in evaluation.data_requirements()
    ]
    for arm in evaluation.arms:
        parameters.append(
            {
                "name": "comparisonGroup",
                "part": [
                    {"name": "linkId", "valueString": arm.group},
                    {"name": "name", "valueString": arm.title},
                    {"name": "eligibility", "valueCode": arm.verdict.value},
                    *(_criterion(result) for result in arm.criteria),
                ],
            }
        )
    if warnings:
        parameters.append({"name": "warning", "resource": operation_outcome(list(warnings))})
    return {"resourceType": "Parameters", "parameter": parameters}


def _research_subject(evaluation: StudyEvaluation, patient_ref: str) -> Json:
    subject: Json = {
        "resourceType": "ResearchSubject",
        "status": "active",
        "progress": [
            {
                "type": {"coding": [{"system": SUBJECT_STATE_TYPE_SYSTEM, "code": "Enrollment"}]},
                "subjectState": {"coding": [{"system": SUBJECT_STATE_SYSTEM, "code": evaluation.subject_state}]},
                "startDate": evaluation.on.isoformat(),
            }
        ],
        "study": {"reference": f"ResearchStudy/{evaluation.study_id}"},
        "subject": {"reference": patient_ref},
    }
    if evaluation.assigned_group:
        subject["assignedComparisonGroup"] = evaluation.assigned_group
    return subject


def _criterion(result: CriterionResult) -> Json:
    """One criterion's part, its children's nested. Every node of every answer comes here (~180 for one
    study of 26 criteria): the empty lists of a leaf are not built, and the result code is read as the
    enum's `_value_` (`.value` is a descriptor call per node)."""
    criterion = result.criterion
    parts: list[Json] = [
        {"name": "linkId", "valueString": criterion.link_id},
        {"name": "description", "valueString": criterion.description},
        {"name": "exclude", "valueBoolean": criterion.exclude},
        {"name": "result", "valueCode": result.result._value_},
        {"name": "reason", "valueString": result.reason},
    ]
    if result.screening_only:
        parts.append({"name": "screeningConfirmation", "valueBoolean": True})
    if result.evidence:
        parts += [{"name": "evidence", "valueReference": {"reference": ref}} for ref in result.evidence]
    if result.children:
        parts += [_criterion(child) for child in result.children]
    return {"name": "criterion", "part": parts}


def _data_requirement(requirement: DataRequirement) -> Json:
    out: Json = {"type": requirement.resource_type}
    if requirement.resource_type == "Patient":
        out["mustSupport"] = ["birthDate", "gender"]
    if requirement.codes:
        out["codeFilter"] = [
            {"searchParam": "code", "code": [{"system": system, "code": code} for system, code in requirement.codes]}
        ]
    if requirement.since and requirement.until:
        out["dateFilter"] = [
            {
                "searchParam": DATE_SEARCH_PARAMS.get(requirement.resource_type, "date"),
                "valuePeriod": {"start": requirement.since.isoformat(), "end": requirement.until.isoformat()},
            }
        ]
    return out


def match_grade(evaluation: StudyEvaluation) -> str:
    """certain only as StudyEvaluation.certain defines it; an eligible that is not certain is probable."""
    if evaluation.verdict is Verdict.ELIGIBLE:
        return "certain" if evaluation.certain else "probable"
    if evaluation.verdict is Verdict.UNDETERMINED:
        return "possible"
    return "certainly-not"


def match_bundle(
    page: Sequence[StudyEvaluation],
    studies: dict[str, Json],
    patient_ref: str,
    warnings: Sequence[Issue],
    total: int,
    links: Sequence[tuple[str, str]],
    base_url: str,
) -> Json:
    """searchset Bundle: one match entry per study of the page (best first, as ranked by the caller)
    followed by its full result as an `include` entry the match entry links to; `total` counts every
    study that passed the operation's filters, `links` are (relation, url) of the paging links."""
    entries: list[Json] = []
    included: list[Json] = []
    for evaluation in page:
        result_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append(
            {
                "link": [{"relation": "related", "url": result_url}],
                "fullUrl": f"{base_url}/ResearchStudy/{evaluation.study_id}",
                "resource": studies[evaluation.study_id],
                "search": {
                    "extension": [{"url": EXT_MATCH_GRADE, "valueCode": match_grade(evaluation)}],
                    "mode": "match",
                    "score": evaluation.score,
                },
            }
        )
        included.append(
            {
                "fullUrl": result_url,
                "resource": evaluation_parameters(evaluation, patient_ref, ()),
                "search": {"mode": "include"},
            }
        )
    bundle: Json = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links],
    }
    if warnings:
        included.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": operation_outcome(list(warnings)),
                "search": {"mode": "outcome"},
            }
        )
    if entries or included:
        bundle["entry"] = entries + included
    return bundle

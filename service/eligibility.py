"""The use case behind both operations: parse → index facts → evaluate → (re)validate evidence.

Rule: the patient is indexed once and every requested trial is evaluated against that index. Only
resources that become evidence are validated; the criteria resting on an invalid one become unknown
(with a warning), so no answer is decided by a resource that is not valid FHIR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.catalog import Trial
from service.domain.evaluate import EvaluationDateOutOfRange, StudyEvaluation, evaluate_study
from service.errors import FhirError, Issue
from service.fhir.models import DEFAULT_MAX_DEPTH
from service.fhir.patient_bundle import EvidenceValidator, PatientBundle, index_facts, read_patient_request


@dataclass(frozen=True)
class Evaluations:
    bundle: PatientBundle
    on: dt.date
    results: tuple[StudyEvaluation, ...]
    warnings: tuple[Issue, ...]


def evaluate_request(
    document: dict[str, Any],
    trials: Sequence[Trial],
    query_date: dt.date | None,
    today: dt.date,
    fhir_version: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Evaluations:
    """`document` is the parsed JSON body (a Bundle, or Parameters carrying one and the date)."""
    bundle = read_patient_request(document, fhir_version)
    if query_date and bundle.evaluation_date and query_date != bundle.evaluation_date:
        raise FhirError.of(400, "invalid", "The 'date' query parameter and the Parameters 'date' disagree.")
    return evaluate_bundle(bundle, trials, query_date or bundle.evaluation_date or today, max_depth)


def evaluate_bundle(
    bundle: PatientBundle, trials: Sequence[Trial], on: dt.date, max_depth: int = DEFAULT_MAX_DEPTH
) -> Evaluations:
    """Index one patient once, evaluate every trial, and validate what became evidence: a criterion resting
    on a resource that is not valid FHIR is evaluated again as unknown (never decided by invalid data).

    Raises FhirError 422 when the Patient itself is not valid FHIR (no usable Patient)."""
    validator = EvidenceValidator(bundle, max_depth)
    patient_problem = validator.problems([bundle.patient_ref]).get(bundle.patient_ref)
    if patient_problem:
        diagnostics = f"The Patient resource is not valid FHIR {bundle.release}: {patient_problem}"
        raise FhirError(422, Issue("processing", diagnostics, expression=("Patient",)))
    facts = index_facts(bundle)
    invalid: dict[str, str] = {}
    while True:
        distrusted = frozenset(invalid)
        try:
            results = tuple(evaluate_study(trial.criteria, facts, on, distrusted) for trial in trials)
        except EvaluationDateOutOfRange as exc:
            diagnostics = (
                f"The evaluation date {on.isoformat()} is too early: a lookback window of {exc.window_days} days "
                "would start before the year 1. Use a date from the year 1900 on."
            )
            raise FhirError(400, Issue("value", diagnostics, expression=("date",))) from None
        evidence = set().union(*(result.evidence() for result in results)) - {bundle.patient_ref} - distrusted
        found = validator.problems(sorted(evidence))
        if not found:
            break
        invalid.update(found)
    warnings = list(bundle.warnings)
    for ref, problem in sorted(invalid.items()):
        resource_type = bundle.resources[ref]["resourceType"]
        diagnostics = (
            f"A {resource_type} is not valid FHIR {bundle.release}; the criteria resting on it are reported "
            f"as unknown: {problem}"
        )
        warnings.append(Issue("invalid", diagnostics, "warning", (resource_type,)))
    return Evaluations(bundle, on, results, tuple(warnings))

"""The use case behind both operations: parse → index facts → evaluate → (re)validate evidence.

Rule: the patient is indexed once and every requested trial is evaluated against that index. Only
resources that become evidence are validated; the criteria resting on an invalid one become unknown
(with a warning), so no answer is decided by a resource that is not valid FHIR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from service.catalog import Trial
from service.catalog.index import GateResults, TrialIndex
from service.domain.evaluate import EvaluationDateOutOfRange, Memo, StudyEvaluation, Verdict, evaluate_study
from service.errors import FhirError, Issue
from service.fhir.models import DEFAULT_MAX_DEPTH
from service.fhir.patient_bundle import EvidenceValidator, PatientBundle, index_facts, read_patient_request


@dataclass(frozen=True)
class Evaluations:
    bundle: PatientBundle
    on: dt.date
    results: tuple[StudyEvaluation, ...]  # the trials evaluated in full, in the order given
    warnings: tuple[Issue, ...]
    # With an index: trial id → linkIds of its own gates that rule it out (ineligible, not evaluated)
    ruled_out: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def evaluate_request(
    document: dict[str, Any],
    trials: Sequence[Trial],
    query_date: dt.date | None,
    today: dt.date,
    fhir_version: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Evaluations:
    """`document` is the parsed JSON body (a Bundle, or Parameters carrying one and the date)."""
    bundle, on = read_request(document, query_date, today, fhir_version)
    return evaluate_bundle(bundle, trials, on, max_depth)


def read_request(
    document: dict[str, Any], query_date: dt.date | None, today: dt.date, fhir_version: str | None = None
) -> tuple[PatientBundle, dt.date]:
    """The patient's bundle and the evaluation date (query, else the Parameters' `date`, else today)."""
    bundle = read_patient_request(document, fhir_version)
    if query_date and bundle.evaluation_date and query_date != bundle.evaluation_date:
        raise FhirError.of(400, "invalid", "The 'date' query parameter and the Parameters 'date' disagree.")
    return bundle, query_date or bundle.evaluation_date or today


def evaluate_bundle(
    bundle: PatientBundle,
    trials: Sequence[Trial],
    on: dt.date,
    max_depth: int = DEFAULT_MAX_DEPTH,
    index: TrialIndex | None = None,
    gates: GateResults | None = None,
) -> Evaluations:
    """Index one patient once, evaluate every trial, and validate what became evidence: a criterion resting
    on a resource that is not valid FHIR is evaluated again as unknown (never decided by invalid data).

    With `index`, the trials its prefilter rules out are not evaluated (`Evaluations.ruled_out`; their
    verdict is ineligible, service.catalog.index states why that is exact), and the warnings are about
    the evidence of the trials evaluated; `gates`: the index's gates already evaluated on this patient's
    Patient and Conditions (population screening reads those first). Raises FhirError 422 when the Patient
    itself is not valid FHIR (no usable Patient)."""
    validator = EvidenceValidator(bundle, max_depth)
    patient_problem = validator.problems([bundle.patient_ref]).get(bundle.patient_ref)
    if patient_problem:
        diagnostics = f"The Patient resource is not valid FHIR {bundle.release}: {patient_problem}"
        raise FhirError(422, Issue("processing", diagnostics, expression=("Patient",)))
    facts = index_facts(bundle)
    ruled_out: dict[str, tuple[str, ...]] = {}
    if index is not None:
        with _evaluation_date_in_range(on):
            if gates is None:
                gates = index.evaluate_gates(facts, on)
            ruled_out = index.ruling(gates, validator.problems, trials)
        trials = [trial for trial in trials if trial.id not in ruled_out]
    invalid: dict[str, str] = {}
    while True:
        distrusted = frozenset(invalid)
        memo: Memo = {}
        with _evaluation_date_in_range(on):
            results = tuple(evaluate_study(trial.criteria, facts, on, distrusted, memo) for trial in trials)
        found = validator.problems(sorted(_evidence(memo) - {bundle.patient_ref} - distrusted))
        if not found:
            break
        invalid.update(found)
    return Evaluations(bundle, on, results, _warnings(bundle, invalid), ruled_out)


@contextmanager
def _evaluation_date_in_range(on: dt.date) -> Iterator[None]:
    """A date so close to year 1 that a lookback window would start before the calendar is a 400, not a 500."""
    try:
        yield
    except EvaluationDateOutOfRange as exc:
        diagnostics = (
            f"The evaluation date {on.isoformat()} is too early: a lookback window of {exc.window_days} days "
            "would start before the year 1. Use a date from the year 1900 on."
        )
        raise FhirError(400, Issue("value", diagnostics, expression=("date",))) from None


def _evidence(memo: Memo) -> set[str]:
    """Every resource used by any criterion evaluated (the memo holds each criterion's result once)."""
    return {ref for _, result in memo.values() for ref in result.evidence}


def _warnings(bundle: PatientBundle, invalid: dict[str, str]) -> tuple[Issue, ...]:
    warnings = list(bundle.warnings)
    for ref, problem in sorted(invalid.items()):
        resource_type = bundle.resources[ref]["resourceType"]
        diagnostics = (
            f"A {resource_type} is not valid FHIR {bundle.release}; the criteria resting on it are reported "
            f"as unknown: {problem}"
        )
        warnings.append(Issue("invalid", diagnostics, "warning", (resource_type,)))
    return tuple(warnings)


@dataclass(frozen=True)
class MatchPage:
    """One page of a $match: the studies ranked best first, the page's full results, counts per verdict."""

    bundle: PatientBundle
    on: dt.date
    total: int
    page: tuple[StudyEvaluation, ...]
    counts: dict[Verdict, int]
    warnings: tuple[Issue, ...]


VERDICT_ORDER = {Verdict.ELIGIBLE: 0, Verdict.UNDETERMINED: 1, Verdict.INELIGIBLE: 2}


def match_page(
    bundle: PatientBundle,
    candidates: Sequence[Trial],
    on: dt.date,
    offset: int,
    count: int,
    index: TrialIndex | None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> MatchPage:
    """Rank `candidates` for one patient (eligible → undetermined by score → ineligible, then by id) and
    evaluate in full the ones on the page [offset, offset + count).

    With `index`, the trials its prefilter rules out are known to be ineligible without being evaluated
    (service.catalog.index states why that is exact); they are evaluated only when they appear on the
    page. Without it every candidate is evaluated: the answer is the same (a test checks it)."""
    validator = EvidenceValidator(bundle, max_depth)
    patient_problem = validator.problems([bundle.patient_ref]).get(bundle.patient_ref)
    if patient_problem:
        diagnostics = f"The Patient resource is not valid FHIR {bundle.release}: {patient_problem}"
        raise FhirError(422, Issue("processing", diagnostics, expression=("Patient",)))
    facts = index_facts(bundle)
    wanted = {trial.id for trial in candidates}
    ruled_out: set[str] = set()
    if index is not None:
        with _evaluation_date_in_range(on):
            ruled_out = index.ruled_out(index.evaluate_gates(facts, on), validator.problems) & wanted
    shown_anyway: set[str] = set()  # ruled-out trials that fall on the page: their full result is shown
    invalid: dict[str, str] = {}
    while True:
        distrusted = frozenset(invalid)
        memo: Memo = {}
        with _evaluation_date_in_range(on):
            evaluated = {
                trial.id: evaluate_study(trial.criteria, facts, on, distrusted, memo)
                for trial in candidates
                if trial.id not in ruled_out or trial.id in shown_anyway
            }
        found = validator.problems(sorted(_evidence(memo) - {bundle.patient_ref} - distrusted))
        if found:
            invalid.update(found)
            continue
        ranked = _ranked(evaluated, ruled_out - shown_anyway)
        page_ids = ranked[offset : offset + count]
        missing = [study for study in page_ids if study not in evaluated]
        if not missing:
            break
        shown_anyway.update(missing)
    counts = dict.fromkeys(VERDICT_ORDER, 0)
    for evaluation in evaluated.values():
        counts[evaluation.verdict] += 1
    counts[Verdict.INELIGIBLE] += len(ruled_out - shown_anyway)
    page = tuple(evaluated[study] for study in page_ids)
    return MatchPage(bundle, on, len(candidates), page, counts, _warnings(bundle, invalid))


def _ranked(evaluated: dict[str, StudyEvaluation], ineligible: set[str]) -> list[str]:
    """Best first: eligible, then undetermined by score (highest first), then ineligible; ties by id."""
    hopeful = sorted(
        (e for e in evaluated.values() if e.verdict is not Verdict.INELIGIBLE),
        key=lambda e: (VERDICT_ORDER[e.verdict], -e.score, e.study_id),
    )
    rest = ineligible.union(study for study, e in evaluated.items() if e.verdict is Verdict.INELIGIBLE)
    return [e.study_id for e in hopeful] + sorted(rest)

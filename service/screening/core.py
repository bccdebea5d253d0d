"""One patient × every trial through the one engine (`evaluate_bundle`), condensed to a flat record.

Rule: engine-agnostic and pure apart from the engine call: the local and the Spark backends both call
`screen_patient` / `screen_bundle`, so both give the same records for the same input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from service.catalog import Trial
from service.catalog.index import GateResults, TrialIndex
from service.domain.criteria import Result
from service.domain.evaluate import CriterionResult, DataRequirement, StudyEvaluation, Verdict
from service.eligibility import evaluate_bundle
from service.fhir.patient_bundle import PatientBundle, bundle_from_resources

Json = dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    """A DataRequirement flattened for output: codes as "system|code"."""

    resource_type: str
    label: str
    codes: tuple[str, ...]
    since: str | None
    until: str | None

    @classmethod
    def of(cls, requirement: DataRequirement) -> Requirement:
        return cls(
            requirement.resource_type,
            requirement.label,
            tuple(f"{system}|{code}" for system, code in requirement.codes),
            requirement.since.isoformat() if requirement.since else None,
            requirement.until.isoformat() if requirement.until else None,
        )

    @property
    def item(self) -> tuple[str, str]:
        """What a coordinator orders: the same label asked by two trials (other windows) is one item."""
        return self.resource_type, self.label


@dataclass(frozen=True)
class PatientTrialResult:
    """One patient × one trial. Counts are over top-level criteria by their `result` (as in
    $evaluate-eligibility); screening confirmations are counted apart, never as unknown."""

    patient: str  # Patient/{id}
    study: str
    verdict: str  # eligible | ineligible | undetermined
    met: int
    not_met: int
    unknown: int
    screening: int
    deciding: tuple[str, ...]  # linkIds that make it ineligible
    requirements: tuple[Requirement, ...]  # what would settle it, for undetermined
    needs_review: bool  # undetermined on a criterion no data can settle (not_computable)
    warnings: int  # resources dropped as invalid evidence, unreadable or of another patient
    # Ruled out by the catalog index without a full evaluation: the counts are of the deciding gates only.
    prefiltered: bool = False

    def record(self) -> Json:
        """The output row (NDJSON line / Spark row); `from_record` reads it back."""
        return {
            "patient": self.patient,
            "study": self.study,
            "verdict": self.verdict,
            "met": self.met,
            "not_met": self.not_met,
            "unknown": self.unknown,
            "screening": self.screening,
            "deciding": list(self.deciding),
            "requirements": [
                {
                    "resource_type": r.resource_type,
                    "label": r.label,
                    "codes": list(r.codes),
                    "since": r.since,
                    "until": r.until,
                }
                for r in self.requirements
            ],
            "needs_review": self.needs_review,
            "warnings": self.warnings,
            "prefiltered": self.prefiltered,
        }

    @classmethod
    def from_record(cls, record: Json) -> PatientTrialResult:
        return cls(
            record["patient"],
            record["study"],
            record["verdict"],
            int(record["met"]),
            int(record["not_met"]),
            int(record["unknown"]),
            int(record["screening"]),
            tuple(record["deciding"]),
            tuple(
                Requirement(r["resource_type"], r["label"], tuple(r["codes"]), r.get("since"), r.get("until"))
                for r in record["requirements"]
            ),
            bool(record["needs_review"]),
            int(record["warnings"]),
            bool(record.get("prefiltered", False)),
        )


def screen_patient(
    resources: Iterable[Json],
    trials: Sequence[Trial],
    on: dt.date,
    release: str | None = None,
    index: TrialIndex | None = None,
    gates: GateResults | None = None,
) -> list[PatientTrialResult]:
    """One patient's resources (references as Type/id) against every trial at `on`.

    `release` "R4" | "R5", or None to tell by content. `index`, `gates`: the trials' prefilter (`screen_bundle`).
    Raises FhirError when the group has no usable Patient (none, two, or not valid FHIR)."""
    return screen_bundle(bundle_from_resources(resources, release), trials, on, index, gates)


def screen_bundle(
    bundle: PatientBundle,
    trials: Sequence[Trial],
    on: dt.date,
    index: TrialIndex | None = None,
    gates: GateResults | None = None,
) -> list[PatientTrialResult]:
    """One row per trial, in the trials' order. With `index`, a trial it rules out is not evaluated: its
    row is ineligible (as the full evaluation finds it) with the ruling gates as `deciding`, and
    `prefiltered` set (docs/screening.md); `gates`: its gates already evaluated on this patient."""
    evaluations = evaluate_bundle(bundle, trials, on, index=index, gates=gates)
    patient = patient_label(bundle)
    warnings = len(evaluations.warnings)
    evaluated = iter(evaluations.results)
    rows = []
    for trial in trials:
        ruling = evaluations.ruled_out.get(trial.id)
        if ruling is None:
            rows.append(_condense(patient, next(evaluated), warnings))
        else:
            rows.append(ruled_out_row(patient, trial.id, ruling, warnings))
    return rows


def patient_label(bundle: PatientBundle) -> str:
    """Patient/{id} whatever the input's fullUrls, so a Bundle and its Bulk export give the same rows."""
    patient_id = bundle.resources[bundle.patient_ref].get("id")
    return f"Patient/{patient_id}" if isinstance(patient_id, str) else bundle.patient_ref


def ruled_out_row(patient: str, study: str, gates: tuple[str, ...], warnings: int) -> PatientTrialResult:
    """A pair the index ruled out: only its deciding gates were evaluated, so only they are counted."""
    return PatientTrialResult(
        patient, study, Verdict.INELIGIBLE.value, 0, len(gates), 0, 0, gates, (), False, warnings, prefiltered=True
    )


def _condense(patient: str, evaluation: StudyEvaluation, warnings: int) -> PatientTrialResult:
    decided = [r for r in evaluation.criteria if not r.screening_only]
    counts = {result: sum(1 for r in decided if r.result is result) for result in Result}
    deciding: tuple[str, ...] = ()
    requirements: tuple[Requirement, ...] = ()
    needs_review = False
    if evaluation.verdict is Verdict.INELIGIBLE:
        deciding = tuple(r.criterion.link_id for r in decided if r.effective is Result.NOT_MET)
    elif evaluation.verdict is Verdict.UNDETERMINED:
        requirements = tuple(Requirement.of(r) for r in evaluation.data_requirements())
        needs_review = any(r.effective is Result.UNKNOWN and not _has_requirement(r) for r in decided)
    return PatientTrialResult(
        patient,
        evaluation.study_id,
        evaluation.verdict.value,
        counts[Result.MET],
        counts[Result.NOT_MET],
        counts[Result.UNKNOWN],
        len(evaluation.criteria) - len(decided),
        deciding,
        requirements,
        needs_review,
        warnings,
    )


def _has_requirement(result: CriterionResult) -> bool:
    return any(r.requirements for r in result.walk() if r.result is Result.UNKNOWN)

"""The catalog's prefilter: what cheaply rules a trial out for a patient, without evaluating the trial.

Rule: a trial is ruled out only when one of its own top-level criteria that reads nothing but the Patient
and the Conditions (age, sex and diagnosis rules, alone or combined, with the not-computable branches
beside them), evaluated by the same engine on the same facts, is decisive against it (an inclusion not
met, an exclusion met) and rests only on resources that are valid FHIR (the full evaluation distrusts an
invalid one, and only what rests on it changes): exactly what makes the full evaluation answer
`ineligible` (DESIGN.md §2). Anything else, unknowns included, is evaluated in full.
Identical criteria are evaluated once per request, whatever the number of trials carrying them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from service.catalog.compile import Trial
from service.domain.criteria import (
    AgeRule,
    ConditionRule,
    Criterion,
    NotComputable,
    Result,
    Rule,
    ScreeningConfirmation,
    SexRule,
    TrialCriteria,
)
from service.domain.evaluate import Memo, evaluate_criterion
from service.domain.facts import PatientFacts

# The rules the index reads: what reads the Patient or the Conditions, and what reads nothing (always unknown
# or a confirmation); any other rule inside a gate is taken as unknown (evaluate_criterion `reads`). A gate is a
# top-level criterion with at least one rule on the Patient or the Conditions. Population screening relies on
# it: a patient's Patient and Condition lines are all the gates need (service/screening/group.py).
GATE_READS = (AgeRule, SexRule, ConditionRule, NotComputable, ScreeningConfirmation)
# The enrolment states a study is open in (R5 research-study-status); `overall-study` is not a state of
# enrolment but the umbrella entry some records add beside the real one.
OPEN_STATES = frozenset({"recruiting", "not-yet-recruiting", "enrolling-by-invitation"})
NOT_ENROLMENT_STATES = frozenset({"overall-study"})
UNRECORDED = "unrecorded"  # no enrolment state in the mapping: nothing says the study is closed
Invalid = Callable[[Iterable[str]], Mapping[str, str]]  # references → why each invalid one is not valid FHIR


@dataclass(frozen=True)
class GateKey:
    rule: Rule
    exclude: bool


@dataclass(frozen=True)
class GateResults:
    """One patient's gates evaluated once (`TrialIndex.evaluate_gates`): which are not met, each with the
    references its result rests on. Which of them are decisive depends on which references are valid FHIR,
    asked of each caller's validator."""

    not_met: Mapping[GateKey, frozenset[str]]

    def decisive(self, invalid: Invalid) -> set[GateKey]:
        """The gates decisive against this patient in every trial that has them among its top-level criteria."""
        return {key for key, evidence in self.not_met.items() if not invalid(evidence)}


@dataclass(frozen=True)
class TrialIndex:
    gates: Mapping[GateKey, tuple[Criterion, frozenset[str]]]  # a representative criterion, the trials
    states: Mapping[str, frozenset[str]]  # enrolment state code (or UNRECORDED) → trial ids
    # trial id → (linkId, gate) of its own top-level gates in its criteria's order; each gate is the very
    # key object of `gates`, so a trial's gates are looked up by identity (hashing a rule with a large
    # code set, for each of 10,000 trials per patient, would cost more than the index saves)
    trial_gates: Mapping[str, tuple[tuple[str, GateKey], ...]] = field(default_factory=dict)

    def evaluate_gates(self, facts: PatientFacts, on: dt.date) -> GateResults:
        """Every gate on this patient once: the ones not met, with what each result rests on."""
        not_met: dict[GateKey, frozenset[str]] = {}
        memo: Memo = {}  # partial results (`reads`): shared between gates only, never with a full evaluation
        for key, (criterion, _) in self.gates.items():
            result = evaluate_criterion(criterion, facts, on, memo, GATE_READS)
            if not result.screening_only and result.effective is Result.NOT_MET:
                not_met[key] = frozenset(ref for r in result.walk() for ref in r.evidence)
        return GateResults(not_met)

    def ruled_out(self, gates: GateResults, invalid: Invalid) -> set[str]:
        """Ids of the trials the full evaluation would find ineligible on these gates alone. `invalid`: the
        problems of the given references that are not valid FHIR (EvidenceValidator.problems)."""
        out: set[str] = set()
        for key in gates.decisive(invalid):
            out.update(self.gates[key][1])
        return out

    def ruling(self, gates: GateResults, invalid: Invalid, trials: Iterable[Trial]) -> dict[str, tuple[str, ...]]:
        """Trial id → the linkIds of its own gates that rule it out (in its criteria's order), for the trials
        of `trials` the full evaluation would find ineligible on these gates alone."""
        decisive = gates.decisive(invalid)
        if not decisive:
            return {}
        ids: set[str] = set()
        for key in decisive:
            ids.update(self.gates[key][1])
        decisive_ids = {id(key) for key in decisive}
        return {
            trial.id: tuple(link_id for link_id, key in self.trial_gates[trial.id] if id(key) in decisive_ids)
            for trial in trials
            if trial.id in ids
        }

    def with_states(self, codes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for code in codes:
            found.update(self.states.get(code, ()))
        return found


def enrolment_states(progress_status: object) -> set[str]:
    codes = {
        str(coding.get("code"))
        for entry in (progress_status if isinstance(progress_status, list) else [])
        if isinstance(entry, dict)
        for coding in (entry.get("state") or {}).get("coding", [])
        if isinstance(coding, dict) and coding.get("code")
    }
    return (codes - NOT_ENROLMENT_STATES) or {UNRECORDED}


def is_gate(criterion: Criterion) -> bool:
    """A top-level criterion with a rule on the Patient or the Conditions (the rest is read as unknown)."""
    return any(isinstance(c.rule, (AgeRule, SexRule, ConditionRule)) for c in criterion.walk())


def build_index(trials: Iterable[tuple[str, TrialCriteria, object]]) -> TrialIndex:
    """`trials`: (id, criteria, the ResearchStudy's progressStatus)."""
    gates: dict[GateKey, tuple[Criterion, set[str]]] = {}
    canonical: dict[GateKey, GateKey] = {}
    states: dict[str, set[str]] = {}
    trial_gates: dict[str, tuple[tuple[str, GateKey], ...]] = {}
    for trial_id, criteria, progress in trials:
        for state in enrolment_states(progress):
            states.setdefault(state, set()).add(trial_id)
        own: list[tuple[str, GateKey]] = []
        for criterion in criteria.criteria:
            if is_gate(criterion):
                key = GateKey(criterion.rule, criterion.exclude)
                key = canonical.setdefault(key, key)  # one object per distinct gate (TrialIndex.trial_gates)
                gates.setdefault(key, (criterion, set()))[1].add(trial_id)
                own.append((criterion.link_id, key))
        trial_gates[trial_id] = tuple(own)
    return TrialIndex(
        {key: (criterion, frozenset(ids)) for key, (criterion, ids) in gates.items()},
        {state: frozenset(ids) for state, ids in states.items()},
        trial_gates,
    )

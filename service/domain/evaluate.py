"""Three-valued evaluation of a trial's criteria against one patient's facts at a given date.

Rule: pure and deterministic. Every result carries a reason a research coordinator can read, the
references of the evidence used, and for unknowns the data that would settle them (DESIGN.md §2).
When in doubt the answer is unknown: a wrong `eligible` is the worst bug this product can have.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from service.domain import units
from service.domain.corticosteroids import GLUCOCORTICOIDS, NON_SYSTEMIC_ROUTE_CODES, NON_SYSTEMIC_ROUTE_WORDS
from service.domain.criteria import (
    ATC,
    ICD10_WHO_LIKE,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    AgeRule,
    ArmEligibility,
    CodeSet,
    Coding,
    Combination,
    CombinationCode,
    Comparator,
    ConditionRule,
    CorticosteroidDoseRule,
    CreatinineClearanceRule,
    Criterion,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProcedureRule,
    ProgressionAfterTherapyRule,
    Result,
    Rule,
    ScreeningConfirmation,
    SexRule,
    StageRule,
    TestRule,
    TrialCriteria,
    Window,
)
from service.domain.facts import (
    ConditionFact,
    Dosage,
    MedicationFact,
    ObservationFact,
    PatientFact,
    PatientFacts,
    ProcedureFact,
    Quantity,
    Value,
    matches,
)
from service.domain.values import (
    SCORE_UNITS,
    VIRAL_LOAD_CODES,
    gene_tokens,
    names_variant,
    numeric_value,
    qualitative_value,
    stage_of,
    supplemental_oxygen,
)

MET, NOT_MET, UNKNOWN = Result.MET, Result.NOT_MET, Result.UNKNOWN


@dataclass(frozen=True)
class DataRequirement:
    """Data that would settle an unknown: a resource type, codes, and the window it must fall in."""

    resource_type: str
    label: str
    codes: tuple[Coding, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None


@dataclass(frozen=True, init=False)
class CriterionResult:
    criterion: Criterion
    result: Result
    reason: str
    evidence: tuple[str, ...] = ()
    requirements: tuple[DataRequirement, ...] = ()
    children: tuple[CriterionResult, ...] = ()
    # Derived once when made: a memoized result is read by every trial sharing its criterion ($match over
    # 10,000 trials reads them ~100,000 times per request).
    # The result as the parent reads it: `exclude` negates.
    effective: Result = field(init=False, repr=False, compare=False)
    # A screening confirmation, or a combination of nothing else: skipped by the logic.
    screening_only: bool = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        criterion: Criterion,
        result: Result,
        reason: str,
        evidence: tuple[str, ...] = (),
        requirements: tuple[DataRequirement, ...] = (),
        children: tuple[CriterionResult, ...] = (),
    ) -> None:
        effective = result
        if criterion.exclude:
            effective = NOT_MET if result is MET else MET if result is NOT_MET else UNKNOWN
        screening_only = isinstance(criterion.rule, ScreeningConfirmation) or (
            bool(children) and all([child.screening_only for child in children])
        )
        # Still frozen to every caller; made with one write of the instance dict instead of the eight
        # object.__setattr__ calls of a generated frozen __init__: every node of every answer is one of
        # these (~180 per study), and that took half the cost of making one (issue 12, HTTP throughput).
        self.__dict__.update(
            criterion=criterion,
            result=result,
            reason=reason,
            evidence=evidence,
            requirements=requirements,
            children=children,
            effective=effective,
            screening_only=screening_only,
        )

    def walk(self) -> Iterable[CriterionResult]:
        """This result and every one under it, parents first, in order (one generator, not one per level)."""
        stack = [self]
        while stack:
            result = stack.pop()
            yield result
            stack.extend(reversed(result.children))


class Verdict(Enum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class ArmResult:
    group: str
    title: str
    verdict: Verdict
    criteria: tuple[CriterionResult, ...]


@dataclass(frozen=True)
class StudyEvaluation:
    study_id: str
    on: dt.date
    verdict: Verdict
    criteria: tuple[CriterionResult, ...]
    arms: tuple[ArmResult, ...] = ()
    assigned_group: str | None = None
    reviewed: bool = False  # the mapping was reviewed by a person (EvidenceVariable status active)

    @property
    def screening_pending(self) -> bool:
        return any(r.screening_only for top in self.criteria for r in top.walk())

    @property
    def subject_state(self) -> str:
        """R5 research-subject-state for progress[Enrollment]."""
        if self.verdict is Verdict.INELIGIBLE:
            return "ineligible"
        if self.verdict is Verdict.UNDETERMINED:
            return "potential-candidate"
        return "candidate" if self.screening_pending else "eligible"

    def evidence(self) -> set[str]:
        return {ref for top in self.all_results() for r in top.walk() for ref in r.evidence}

    def all_results(self) -> tuple[CriterionResult, ...]:
        return self.criteria + tuple(r for arm in self.arms for r in arm.criteria)

    def data_requirements(self) -> list[DataRequirement]:
        """The requirements of the unknowns that still matter (not under a decided parent), deduplicated."""
        seen: dict[DataRequirement, None] = {}
        for top in self.all_results():
            for requirement in _open_requirements(top):
                seen.setdefault(requirement, None)
        return list(seen)

    @property
    def decided_beyond_demographics(self) -> bool:
        """Some criterion other than age and sex was decided from the patient's data."""
        return any(
            r.result is not UNKNOWN and not r.children and not isinstance(r.criterion.rule, AgeRule | SexRule)
            for top in self.all_results()
            for r in top.walk()
            if not r.screening_only
        )

    @property
    def certain(self) -> bool:
        """$match grade `certain` (DESIGN.md §2): eligible with nothing pending, on a mapping a person reviewed,
        decided by data beyond age and sex. A draft (machine-derived, unreviewed) mapping is at best probable."""
        return (
            self.verdict is Verdict.ELIGIBLE
            and not self.screening_pending
            and self.reviewed
            and self.decided_beyond_demographics
        )

    @property
    def score(self) -> float:
        """0..1 for $match: eligible 1 when certain, else 0.9 (screening confirmations pending, an unreviewed
        mapping, or nothing decided beyond age and sex); undetermined by the share of data-evaluable criteria
        met; ineligible 0."""
        if self.verdict is Verdict.INELIGIBLE:
            return 0.0
        if self.verdict is Verdict.ELIGIBLE:
            return 1.0 if self.certain else 0.9
        decided = [r for r in self.criteria if not r.screening_only]
        met = sum(1 for r in decided if r.effective is MET)
        return round(0.1 + 0.7 * met / max(len(decided), 1), 3)


def _open_requirements(result: CriterionResult) -> Iterable[DataRequirement]:
    """The requirements of the unknowns not under a decided parent, parents first, in order."""
    stack = [result]
    while stack:
        unknown = stack.pop()
        if unknown.result is UNKNOWN:
            yield from unknown.requirements
            stack.extend(reversed(unknown.children))


class EvaluationDateOutOfRange(ValueError):
    """The evaluation date is so close to year 1 that a lookback window would start before the calendar."""

    def __init__(self, window_days: int) -> None:
        super().__init__(f"a lookback window of {window_days} days would start before 0001-01-01")
        self.window_days = window_days


# Results of criteria already evaluated for one patient, date and distrusted set, by criterion identity:
# the catalog shares one object between trials whose criterion is identical (service.catalog), so a
# criterion common to many trials is evaluated once per request. Keyed by id(); the value keeps the
# criterion alive so the id is not reused while the memo lives.
Memo = dict[int, tuple[Criterion, "CriterionResult"]]


def evaluate_study(
    trial: TrialCriteria,
    facts: PatientFacts,
    on: dt.date,
    distrusted: frozenset[str] = frozenset(),
    memo: Memo | None = None,
) -> StudyEvaluation:
    """`distrusted`: references of resources found not valid FHIR; a criterion resting on one is unknown.
    `memo`: shared across the trials of one request (same facts, date and distrusted set), never longer."""
    evaluator = _Evaluator(facts, on, distrusted, memo)
    results = tuple(evaluator.criterion(c) for c in trial.criteria)
    arms = tuple(_arm(evaluator, arm) for arm in trial.arms)
    verdict = combine_verdict(results)
    assigned = None
    if verdict is not Verdict.INELIGIBLE and arms:
        met = [a.group for a in arms if a.verdict is Verdict.ELIGIBLE]
        if len(met) == 1 and all(a.verdict is not Verdict.UNDETERMINED for a in arms):
            assigned = met[0]
    return StudyEvaluation(trial.study_id, on, verdict, results, arms, assigned, trial.reviewed)


def combine_verdict(results: Iterable[CriterionResult]) -> Verdict:
    """Ineligible if an inclusion is not met or an exclusion met; else undetermined if any data-evaluable
    criterion is unknown; else eligible. Screening confirmations never decide."""
    effective = [r.effective for r in results if not r.screening_only]
    if NOT_MET in effective:
        return Verdict.INELIGIBLE
    if UNKNOWN in effective:
        return Verdict.UNDETERMINED
    return Verdict.ELIGIBLE


def evaluate_criterion(
    criterion: Criterion, facts: PatientFacts, on: dt.date, memo: Memo | None = None, reads: tuple[type, ...] = ()
) -> CriterionResult:
    """One criterion alone (the catalog's prefilter). With `reads`, only the rules of those types are read and
    every other rule is unknown: Kleene logic is monotone, so a result decided this way (met or not met) is
    the result the criterion has inside its trial, whatever the unread rules say. A `memo` shared with full
    evaluations must not be passed with `reads`."""
    return _Evaluator(facts, on, frozenset(), memo, reads).criterion(criterion)


def build_matchers(trials: Iterable[TrialCriteria]) -> None:
    """Evaluate every trial once for a patient with no data, for its side effect: each code set compiles
    its name matcher on first use (~0.25 s for five mappings), so a process pool forked afterwards shares
    the compiled matchers instead of every worker compiling its own on its first patient. Any ordinary
    date does (the matchers do not depend on it; one near the year 1 would fail the lookback windows)."""
    nobody = PatientFacts(PatientFact("Patient/nobody", None, None))
    for trial in trials:
        evaluate_study(trial, nobody, dt.date(2000, 1, 1))


def _arm(evaluator: _Evaluator, arm: ArmEligibility) -> ArmResult:
    results = tuple(evaluator.criterion(c) for c in arm.criteria)
    return ArmResult(arm.group, arm.title, combine_verdict(results), results)


def kleene(code: CombinationCode, values: list[Result], threshold: int | None = None) -> Result:
    """Kleene logic over child results already negated for `exclude` (DESIGN.md §2)."""
    met = values.count(MET)
    unknown = values.count(UNKNOWN)
    if code is CombinationCode.ALL_OF:
        return NOT_MET if NOT_MET in values else UNKNOWN if unknown else MET
    if code is CombinationCode.ANY_OF:
        return MET if met else UNKNOWN if unknown else NOT_MET
    n = threshold if threshold is not None else 1
    if code is CombinationCode.AT_LEAST:
        return MET if met >= n else NOT_MET if met + unknown < n else UNKNOWN
    if code is CombinationCode.AT_MOST:
        return NOT_MET if met > n else MET if met + unknown <= n else UNKNOWN
    raise ValueError(f"combination {code.value} is not evaluated")


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _age_of(fact_date: dt.date, on: dt.date) -> str:
    days = (on - fact_date).days
    return f"{days} day{'s' if days != 1 else ''} old"


def _days_after(day: dt.date, days: int) -> dt.date:
    """`day` + `days`, or the last day of the calendar when that lies past year 9999 (a recorded date
    such as 9999-12-31 is patient data: it must not break the evaluation)."""
    return day + dt.timedelta(days=days) if (dt.date.max - day).days >= days else dt.date.max


def _years_between(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class _Evaluator:
    def __init__(
        self,
        facts: PatientFacts,
        on: dt.date,
        distrusted: frozenset[str] = frozenset(),
        memo: Memo | None = None,
        reads: tuple[type, ...] = (),
    ) -> None:
        self.facts = facts
        self.on = on
        self.distrusted = distrusted
        self.memo: Memo = {} if memo is None else memo
        self.reads = reads  # () reads every rule; see evaluate_criterion

    def criterion(self, criterion: Criterion) -> CriterionResult:
        key = id(criterion)
        known = self.memo.get(key)
        if known is not None:
            return known[1]
        rule = criterion.rule
        # One dict lookup by the rule's exact type: a `match` over 14 classes costs a chain of isinstance
        # checks per node, and a small-bundle request evaluates ~180 nodes (issue 12, HTTP throughput).
        decide = _DECIDERS.get(type(rule))
        if decide is None:
            raise TypeError(f"no evaluation for {type(rule).__name__}")
        if self.reads and not isinstance(rule, (Combination, *self.reads)):
            decide = _Evaluator._not_read
        result = decide(self, criterion, rule)
        if self.distrusted and result.result is not UNKNOWN and not result.children:
            result = self._distrust(result)
        self.memo[key] = (criterion, result)
        return result

    def _distrust(self, result: CriterionResult) -> CriterionResult:
        if not self.distrusted.intersection(result.evidence):
            return result
        # Invalid data decides nothing, either way: the resource stays on record (so its absence is
        # not inferred either), and the result that rests on it becomes unknown.
        return CriterionResult(
            result.criterion,
            UNKNOWN,
            f"Not decided: this rests on a resource that is not valid FHIR (see the warnings). {result.reason}",
            result.evidence,
            result.requirements,
        )

    # --- helpers -------------------------------------------------------------------------------

    def _since(self, window: Window) -> dt.date:
        try:
            return self.on - dt.timedelta(days=window.days)
        except OverflowError:
            raise EvaluationDateOutOfRange(window.days) from None

    def _in_window(self, when: dt.date | None, window: Window | None) -> bool:
        if when is None or when > self.on:
            return False
        return window is None or when >= self._since(window)

    def _requirement(
        self, resource_type: str, label: str, codes: CodeSet, window: Window | None = None
    ) -> DataRequirement:
        since = self._since(window) if window else None
        return DataRequirement(resource_type, label, codes.all_codings(), since, self.on if window else None)

    # --- combinations and non-data criteria ------------------------------------------------------

    def _combination(self, criterion: Criterion, rule: Combination) -> CriterionResult:
        children = tuple([self.criterion(c) for c in rule.children])
        deciding = [c for c in children if not c.screening_only]
        if not deciding:
            return CriterionResult(
                criterion, UNKNOWN, "Every part is confirmed by the site at screening.", children=children
            )
        result = kleene(rule.code, [c.effective for c in deciding], rule.threshold)
        return CriterionResult(criterion, result, _combination_reason(rule, result, deciding), children=children)

    def _not_read(self, criterion: Criterion, rule: Rule) -> CriterionResult:
        return CriterionResult(criterion, UNKNOWN, "Not read by the catalog index.")

    def _screening(self, criterion: Criterion, rule: ScreeningConfirmation) -> CriterionResult:
        return CriterionResult(
            criterion, UNKNOWN, "To be confirmed by the site at screening; not decided from the record."
        )

    def _not_computable(self, criterion: Criterion, rule: NotComputable) -> CriterionResult:
        requirements = tuple(
            self._requirement(need.resource_type, need.label, need.codes, need.window) for need in rule.needs
        )
        return CriterionResult(
            criterion, UNKNOWN, f"Needs review by the site: {rule.explanation}", requirements=requirements
        )

    # --- demographics ------------------------------------------------------------------------------

    def _age(self, criterion: Criterion, rule: AgeRule) -> CriterionResult:
        patient = self.facts.patient
        bounds = _describe_bounds(rule.min_years, rule.max_years, "years")
        if patient.birth_date is None:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"Birth date is not recorded, so age {bounds} cannot be checked.",
                requirements=(DataRequirement("Patient", "Patient birth date"),),
            )
        youngest = _years_between(patient.birth_date.latest, self.on)
        oldest = _years_between(patient.birth_date.earliest, self.on)
        inside = [_within(age, rule.min_years, rule.max_years) for age in (youngest, oldest)]
        age_text = f"{youngest}" if youngest == oldest else f"{youngest}–{oldest} (partial birth date)"
        if all(inside):
            return CriterionResult(criterion, MET, f"Age {age_text} on {self.on} is {bounds}.", (patient.ref,))
        if not any(inside):
            return CriterionResult(criterion, NOT_MET, f"Age {age_text} on {self.on} is not {bounds}.", (patient.ref,))
        return CriterionResult(
            criterion,
            UNKNOWN,
            f"Age {age_text} on {self.on}: the partial birth date cannot tell whether it is {bounds}.",
            (patient.ref,),
            (DataRequirement("Patient", "Patient full birth date"),),
        )

    def _sex(self, criterion: Criterion, rule: SexRule) -> CriterionResult:
        gender = self.facts.patient.gender
        wanted = " or ".join(sorted(rule.sexes))
        if gender in ("female", "male"):
            result = MET if gender in rule.sexes else NOT_MET
            return CriterionResult(
                criterion,
                result,
                f"Recorded gender is {gender}; the criterion asks for {wanted}.",
                (self.facts.patient.ref,),
            )
        return CriterionResult(
            criterion,
            UNKNOWN,
            f"Gender is not recorded as female or male; the criterion asks for {wanted}.",
            requirements=(DataRequirement("Patient", "Patient gender"),),
        )

    # --- diagnoses ------------------------------------------------------------------------------

    def _condition(self, criterion: Criterion, rule: ConditionRule) -> CriterionResult:
        exempt = {id(c) for c in self.facts.conditions_for(rule.except_codes)} if rule.except_codes else set()
        candidates = [
            c
            for c in self.facts.conditions_for(rule.codes)
            if id(c) not in exempt and c.verification_status not in ("refuted", "entered-in-error")
        ]
        placed = [(c, self._condition_counts(c, rule)) for c in candidates]
        counting = [c for c, counts in placed if counts is MET]
        undated = [c for c, counts in placed if counts is UNKNOWN]
        window_text = f" within the last {rule.within.describe()}" if rule.within else ""
        confirmed = [c for c in counting if c.verification_status in (None, "confirmed")]
        if confirmed:
            refs = tuple(c.ref for c in confirmed)
            return CriterionResult(
                criterion, MET, f"{rule.label} is recorded{window_text}: {_condition_summary(confirmed[0])}.", refs
            )
        if counting:
            status = counting[0].verification_status
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} is recorded only as {status}.",
                tuple(c.ref for c in counting),
                (self._requirement("Condition", rule.label, rule.codes),),
            )
        if undated:
            first = undated[0]
            straddling = self._straddling(first, rule)
            if straddling:
                return CriterionResult(
                    criterion,
                    UNKNOWN,
                    f"{rule.label} is recorded with a date that gives only the month or year "
                    f"({', '.join(straddling)}): it may fall{window_text} or before it, so whether it does "
                    f"cannot be told: {_condition_summary(first)}.",
                    tuple(c.ref for c in undated),
                    (self._requirement("Condition", rule.label, rule.codes),),
                )
            if first.onset is None and first.recorded is not None and first.abatement is None:
                written = f"it was recorded on {first.recorded}, which is when it was written down"
                missing = f"an onset or end date ({written})"
            elif first.first_known:
                missing = "an end date"
            else:
                missing = "an onset, recorded or end date"
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} is recorded without {missing}, so whether it falls"
                f"{window_text} cannot be told: {_condition_summary(undated[0])}.",
                tuple(c.ref for c in undated),
                (self._requirement("Condition", rule.label, rule.codes),),
            )
        if not self.facts.conditions:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"The record holds no conditions at all, so the absence of {rule.label} cannot be read.",
                requirements=(self._requirement("Condition", rule.label, rule.codes),),
            )
        broader = self._broader_coded(rule, exempt)
        if broader is not None:
            condition, code, finer = broader
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label}: {_condition_summary(condition)} is coded {code} (WHO ICD-10 / ICD-10-GM), a code that"
                f" covers more than the criterion's {finer}: the site confirms which it is.",
                (condition.ref,),
                (self._requirement("Condition", rule.label, rule.codes),),
            )
        if candidates:
            return CriterionResult(
                criterion,
                NOT_MET,
                _outside_reason(rule, candidates[0], window_text),
                tuple(c.ref for c in candidates),
            )
        return CriterionResult(
            criterion,
            NOT_MET,
            f"No {rule.label} among the {len(self.facts.conditions)} conditions on record{window_text}.",
        )

    def _broader_coded(self, rule: ConditionRule, exempt: set[int]) -> tuple[ConditionFact, str, str] | None:
        """A condition coded in WHO ICD-10 / ICD-10-GM by a code coarser than one of the rule's CM classes
        (C79.3 "brain and cerebral meninges" against C79.31 "brain"): it may be that class or a sibling,
        so it neither matches nor fails to. The first such condition that the rule's dates let count."""
        finer = [c for s, c in rule.codes.all_codings() if s == ICD10CM]
        if not finer:
            return None
        for condition in self.facts.conditions:
            if id(condition) in exempt or condition.verification_status in ("refuted", "entered-in-error"):
                continue
            originals = [code.upper().replace(".", "") for s, code in condition.codes if s in ICD10_WHO_LIKE]
            if not originals:
                continue
            for system, spelled in condition.codes:
                bare = spelled.replace(".", "")
                if system != ICD10CM or not any(o.startswith(bare) for o in originals):
                    continue
                longer = [
                    f for f in finer if f.replace(".", "").startswith(bare) and len(f.replace(".", "")) > len(bare)
                ]
                if longer and self._condition_counts(condition, rule) is not NOT_MET:
                    return condition, spelled, ", ".join(sorted(longer)[:3])
        return None

    def _condition_counts(self, condition: ConditionFact, rule: ConditionRule) -> Result:
        """MET when the condition counts, NOT_MET when it does not, UNKNOWN when a window cannot place it.

        A window is judged on the record's dates, never on "active now" alone: a condition falls inside
        it when it began (onset, else the date it was recorded) or ended (abatement) inside it. An old
        myocardial infarction whose record was never closed is still marked active, yet it is not an
        infarction "within 1 year"; criteria about a state that persists say so with a separate
        no-window branch in the mapping. A record resolved on a date not recorded may have ended inside
        the window ("cured more than 3 years ago" cannot be read from it): unknown. A resolved record
        with no onset says only when it was written down (a past infarction transcribed at intake): its
        recorded date does not place the event inside the window, and one that ended before the window
        did not begin inside it.

        A date written only to the month or year ("2026", "2026-12") is the period of days it can be, up to
        the evaluation date (what is recorded has happened): the record is in the future only when its
        earliest day is, and a window decides only when the whole period lies inside it or before it.
        """
        on = self.on
        began = condition.first_known
        if began is not None and began.earliest > on:
            return NOT_MET
        if rule.within is None:
            return MET if rule.include_resolved or condition.is_active else NOT_MET
        since = self._since(rule.within)
        ended = condition.abatement
        ended_straddles = False
        if ended is not None and ended.earliest <= on:  # an end after today is read as no end yet
            ended = ended.until(on)
            if ended.earliest >= since:
                return MET
            if ended.latest < since:
                return NOT_MET
            ended_straddles = True  # ended on a day of a month or year that reaches into the window
        if began is not None:
            began = began.until(on)
        if condition.onset is None and not condition.is_active and began is not None and began.latest >= since:
            return UNKNOWN
        if began is not None and began.earliest >= since:
            return MET
        if began is not None and began.latest >= since:
            return UNKNOWN  # began on a day of a month or year that reaches into the window
        if ended_straddles:
            return UNKNOWN
        if condition.abatement is None and (began is None or not condition.is_active):
            # No date at all, or resolved on a date not recorded: it may have ended inside the window.
            return UNKNOWN
        return NOT_MET

    def _straddling(self, condition: ConditionFact, rule: ConditionRule) -> list[str]:
        """The condition's partial dates that reach both before the rule's window and into it."""
        if rule.within is None:
            return []
        since = self._since(rule.within)
        dates = (("onset", condition.onset), ("recorded", condition.recorded), ("ended", condition.abatement))
        return [
            f"{name} {date}"
            for name, date in dates
            if date is not None and date.earliest < since <= date.until(self.on).latest
        ]

    def _stage(self, criterion: Criterion, rule: StageRule) -> CriterionResult:
        allowed = ", ".join(rule.allowed)
        staged: list[tuple[dt.date | None, str, str]] = []
        for fact in self.facts.observations_for(STAGE_GROUP_CODES):
            stage = stage_of(fact.value)
            if stage:
                staged.append((fact.when, stage, fact.ref))
        for condition in self.facts.conditions:
            for value in condition.stages:
                stage = stage_of(value)
                if stage:
                    staged_on = condition.recorded or condition.onset
                    staged.append((staged_on.latest if staged_on else None, stage, condition.ref))
        if not staged:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"No cancer stage group is recorded (needed: {allowed}).",
                requirements=(self._requirement("Observation", "Cancer stage group", STAGE_GROUP_CODES),),
            )
        staged.sort(key=lambda s: s[0] or dt.date.min, reverse=True)
        when, stage, ref = staged[0]
        dated = f" on {when}" if when else ""
        verdict = _stage_allowed(stage, rule.allowed)
        if verdict is None:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"Latest stage group is {stage}{dated}; its substage is needed to tell whether it is one of {allowed}.",
                (ref,),
                (self._requirement("Observation", "Cancer stage group", STAGE_GROUP_CODES),),
            )
        result = MET if verdict else NOT_MET
        word = "is" if verdict else "is not"
        return CriterionResult(
            criterion, result, f"Latest stage group is {stage}{dated}, which {word} one of {allowed}.", (ref,)
        )

    # --- observations ----------------------------------------------------------------------------

    def _latest_in_window(
        self, facts: list[ObservationFact], window: Window | None, label: str
    ) -> tuple[ObservationFact | None, str | None]:
        """The newest usable fact inside the window, or why there is none (reason text)."""
        dated = [f for f in facts if f.when is not None and f.when <= self.on]
        inside = [f for f in dated if self._in_window(f.when, window)]
        if inside:
            return inside[0], None
        if dated:
            newest = dated[0]
            assert newest.when is not None
            window_text = f"the window of {window.describe()}" if window else "the window"
            return None, f"Latest {label} is {_age_of(newest.when, self.on)} ({newest.when}), older than {window_text}."
        if facts:
            return None, f"{label} results on record carry no usable date."
        return None, f"No {label} result is on record."

    def _observation(self, criterion: Criterion, rule: ObservationRule) -> CriterionResult:
        requirement = (self._requirement("Observation", rule.label, rule.codes, rule.window),)
        candidates = [
            f
            for f in self.facts.observations_for(rule.codes)
            if numeric_value(f, rule.codes, ranges=True) is not None
            or (rule.relative_to is None and _undetected_viral_load(f))
        ]
        fact, missing = self._latest_in_window(candidates, rule.window, rule.label)
        if fact is None:
            return CriterionResult(criterion, UNKNOWN, missing or "", requirements=requirement)
        value = numeric_value(fact, rule.codes, ranges=True)
        if value is None:
            # "Not detected" is below the assay's detection limit, far under any viral-load threshold a
            # protocol sets (limits are 10-20 IU/mL; protocols say 500 or 2,000).
            below = rule.comparator in (Comparator.LT, Comparator.LE)
            verb = "meets" if below else "does not meet"
            limit = f"{_fmt(rule.value)} {rule.unit}" if rule.unit else _fmt(rule.value)
            return CriterionResult(
                criterion,
                MET if below else NOT_MET,
                f"{rule.label} on {fact.when} is reported as not detected: it {verb} the required "
                f"{rule.comparator.symbol} {limit}.",
                (fact.ref,),
            )
        unit = "" if value.unit in ("1", "") else f" {value.unit}"
        amount = _fmt(value.value) if value.high is None else f"{_fmt(value.value)}–{_fmt(value.high)}"
        shown = f"{rule.label} {amount}{unit} on {fact.when}"
        oxygen = supplemental_oxygen(fact) if rule.room_air else None
        if oxygen is not None:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{shown} was measured on {oxygen}, not on room air: the site measures it on room air.",
                (fact.ref,),
                requirement,
            )
        threshold_text, threshold = self._threshold(rule, fact, value)
        if threshold is None:
            return CriterionResult(criterion, UNKNOWN, f"{shown}: {threshold_text}", (fact.ref,), requirement)
        target_unit = rule.unit
        if rule.relative_to or rule.unit is None or (rule.unit == "1" and value.unit in SCORE_UNITS):
            compared: float | None = value.value
        else:
            compared = units.convert(value.value, value.unit, rule.unit, rule.molar_mass)
            if compared is None and rule.or_value is not None:
                # The protocol's own threshold in a unit the main one does not convert to (2500 copies/mL
                # beside 500 IU/mL): a result in that unit is compared with it.
                alternative, target_unit = rule.or_value
                compared = units.convert(value.value, value.unit, target_unit)
                threshold, threshold_text = alternative, f"{_fmt(alternative)} {target_unit}"
        if compared is None and value.unit == "1" and fact.value.text and fact.value.quantity is None:
            # A number taken from free text ("3-6 months"): the coordinator sees what was written, not a bare
            # "3" with unit "1" (fifth-round review F20).
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} recorded as {fact.value.text!r} on {fact.when}: the text cannot be read as one value "
                f"in {rule.unit!r}, so it cannot be compared.",
                (fact.ref,),
                requirement,
            )
        if compared is None:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{shown}: the unit {value.unit!r} cannot be converted to {rule.unit!r}, so it cannot be compared.",
                (fact.ref,),
                requirement,
            )
        if value.high is not None:
            # A range ("ECOG 1-2"): the true value may be either end, so it holds only if it holds at both.
            same_unit = rule.relative_to or rule.unit is None or (rule.unit == "1" and value.unit in SCORE_UNITS)
            scale = 1.0 if same_unit else units.factor(value.unit, target_unit or "", rule.molar_mass) or 1.0
            at_ends = {rule.comparator.holds(end, threshold) for end in (compared, value.high * scale)}
            if len(at_ends) > 1:
                return CriterionResult(
                    criterion,
                    UNKNOWN,
                    f"{shown} is recorded as a range, which cannot tell whether it is "
                    f"{rule.comparator.symbol} {threshold_text}: one end meets it and the other does not.",
                    (fact.ref,),
                    requirement,
                )
        converted = "" if compared == value.value else f" (= {_fmt(compared)} {target_unit})"
        holds = _holds(rule.comparator, compared, threshold, value.comparator)
        if holds is None:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{shown} is reported as {value.comparator} {_fmt(value.value)}, "
                f"which cannot tell whether it is {rule.comparator.symbol} {threshold_text}.",
                (fact.ref,),
                requirement,
            )
        verb = "meets" if holds else "does not meet"
        if value.comparator:  # "<20 [IU]/mL": below the assay's limit, said so
            shown = f"{rule.label} {value.comparator}{amount}{unit} on {fact.when}"
        return CriterionResult(
            criterion,
            MET if holds else NOT_MET,
            f"{shown}{converted} {verb} the required {rule.comparator.symbol} {threshold_text}"
            f" (latest result within {rule.window.describe()}).",
            (fact.ref,),
        )

    def _threshold(self, rule: ObservationRule, fact: ObservationFact, value: Quantity) -> tuple[str, float | None]:
        """The comparison threshold in the value's own unit for ×ULN/×LLN, else the rule's value."""
        if rule.relative_to is None:
            unit = "" if rule.unit in (None, "1") else f" {rule.unit}"
            return f"{_fmt(rule.value)}{unit}", rule.value
        limit = fact.reference_high if rule.relative_to == "ULN" else fact.reference_low
        if limit is None:
            return (
                f"the result has no reference range, so {_fmt(rule.value)} × {rule.relative_to} cannot be checked."
            ), None
        in_value_unit = units.convert(limit.value, limit.unit, value.unit, rule.molar_mass)
        if in_value_unit is None:
            return f"its reference limit unit {limit.unit!r} cannot be converted to {value.unit!r}.", None
        threshold = rule.value * in_value_unit
        return (
            f"{_fmt(rule.value)} × {rule.relative_to} = {_fmt(threshold)} {value.unit}, "
            f"{rule.relative_to} {_fmt(in_value_unit)} {value.unit} from the result's reference range"
        ), threshold

    def _test(self, criterion: Criterion, rule: TestRule) -> CriterionResult:
        requirement = (self._requirement("Observation", rule.label, rule.codes, rule.window),)
        matching = [
            f for f in self.facts.observations_for(rule.codes) if rule.gene is None or _concerns_gene(f, rule.gene)
        ]
        candidates = [f for f in matching if qualitative_value(f) is not None]
        fact, missing = self._latest_in_window(candidates, rule.window, rule.label)
        later_negative = None
        if rule.positive_wins and fact is not None and qualitative_value(fact) != "positive":
            positives = [
                f
                for f in candidates
                if f.when is not None
                and f.when <= self.on
                and self._in_window(f.when, rule.window)
                and qualitative_value(f) == "positive"
            ]
            if rule.variant:  # a positive that names the change before one that names none
                positives.sort(key=lambda f: not names_variant(_report_texts(f), rule.variant or ""))
            if positives:
                later_negative, fact = fact, positives[0]
        # A result on record that reads neither way ("3+" unread, "see report", an equivocal hCG) and is newer
        # than the one that would decide: the newer result may say otherwise, so nothing older decides.
        unread = [
            f
            for f in matching
            if f.when is not None
            and f.when <= self.on
            and self._in_window(f.when, rule.window)
            and _has_value(f.value)
            and qualitative_value(f) is None
        ]
        newer_unread = unread and (fact is None or (unread[0].when or dt.date.min) > (fact.when or dt.date.min))
        if newer_unread and not (rule.positive_wins and fact is not None and qualitative_value(fact) == "positive"):
            older = f" The older result of {fact.when} reads {qualitative_value(fact)}." if fact else ""
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} on {unread[0].when} reads {_value_text(unread[0].value)!r}, which cannot be read"
                f" as positive or negative.{older}",
                (unread[0].ref,) + ((fact.ref,) if fact else ()),
                requirement,
            )
        if fact is None and rule.decides_alone and self.facts.observations:
            # The result is the definition of this path (detectable HBV DNA = active replication): without
            # one the path does not apply; the criterion's other paths (a diagnosis) carry the doubt.
            return CriterionResult(
                criterion,
                NOT_MET,
                f"{missing} Only a {rule.label} result reading {rule.expect} settles this part on its own; "
                "without one the criterion's other parts decide.",
            )
        if fact is None:
            return CriterionResult(criterion, UNKNOWN, missing or "", requirements=requirement)
        reading = qualitative_value(fact)
        if rule.variant and reading == "positive" and not names_variant(_report_texts(fact), rule.variant):
            # "KRAS mutated" or another KRAS change: whether the named change is among them is not recorded.
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} positive on {fact.when}, but the report does not name {rule.gene} {rule.variant}.",
                (fact.ref,),
                requirement,
            )
        result = MET if reading == rule.expect else NOT_MET
        window_text = f" (latest result within {rule.window.describe()})" if rule.window else " (latest on record)"
        if later_negative is not None:
            window_text = (
                f" (a positive result decides: the later negative one of {later_negative.when} does not undo it,"
                " a tumour biomarker found on one specimen is not ruled out by another)"
            )
        return CriterionResult(
            criterion,
            result,
            f"{rule.label} {reading} on {fact.when}{window_text}; the criterion reads {rule.expect}.",
            (fact.ref,) + ((later_negative.ref,) if later_negative else ()),
        )

    def _creatinine_clearance(self, criterion: Criterion, rule: CreatinineClearanceRule) -> CriterionResult:
        requirement_codes = CodeSet(frozenset({(LOINC, "2160-0"), (LOINC, "29463-7")}))
        requirement = (
            self._requirement("Observation", "Serum creatinine and body weight", requirement_codes, rule.window),
        )
        computed = self._cockcroft_gault(rule.window)
        target = f"the required {rule.comparator.symbol} {_fmt(rule.value)} mL/min"
        if isinstance(computed, tuple):
            (low, high), explanation, refs = computed
            holds = {rule.comparator.holds(low, rule.value), rule.comparator.holds(high, rule.value)}
            if len(holds) == 1:
                held = holds.pop()
                verb = "meets" if held else "does not meet"
                return CriterionResult(
                    criterion,
                    MET if held else NOT_MET,
                    f"Cockcroft–Gault creatinine clearance {explanation} {verb} {target}.",
                    refs,
                )
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"Cockcroft–Gault creatinine clearance {explanation}: the "
                f"partial birth date leaves it on both sides of {target}.",
                refs,
                requirement,
            )
        reported = [f for f in self.facts.observations_for(REPORTED_CG) if numeric_value(f, REPORTED_CG) is not None]
        fact, _ = self._latest_in_window(reported, rule.window, "Cockcroft–Gault creatinine clearance")
        if fact is not None:
            value = numeric_value(fact, REPORTED_CG)
            assert value is not None
            in_ml_min = units.convert(value.value, value.unit, "mL/min")
            if in_ml_min is not None:
                held = rule.comparator.holds(in_ml_min, rule.value)
                verb = "meets" if held else "does not meet"
                return CriterionResult(
                    criterion,
                    MET if held else NOT_MET,
                    f"Reported Cockcroft–Gault creatinine clearance {_fmt(in_ml_min)} mL/min on "
                    f"{fact.when} {verb} {target}.",
                    (fact.ref,),
                )
        return CriterionResult(
            criterion,
            UNKNOWN,
            f"Creatinine clearance (Cockcroft–Gault) cannot be computed: {computed}",
            requirements=requirement,
        )

    def _cockcroft_gault(self, window: Window) -> tuple[tuple[float, float], str, tuple[str, ...]] | str:
        """((low, high) mL/min, explanation, evidence) or why it cannot be computed."""
        patient = self.facts.patient
        if patient.birth_date is None:
            return "the birth date is not recorded."
        if patient.gender not in ("female", "male"):
            return "the gender is not recorded as female or male."
        creatinine = [
            f for f in self.facts.observations_for(SERUM_CREATININE) if numeric_value(f, SERUM_CREATININE) is not None
        ]
        creatinine_fact, missing = self._latest_in_window(creatinine, window, "serum creatinine")
        if creatinine_fact is None:
            return missing or ""
        # Weight changes slowly: accept a weight from the last 90 days when the lab window is shorter.
        weight_window = Window(max(window.days, 90))
        weights = [f for f in self.facts.observations_for(BODY_WEIGHT) if numeric_value(f, BODY_WEIGHT) is not None]
        weight_fact, missing_weight = self._latest_in_window(weights, weight_window, "body weight")
        if weight_fact is None:
            return missing_weight or ""
        creat = numeric_value(creatinine_fact, SERUM_CREATININE)
        weight = numeric_value(weight_fact, BODY_WEIGHT)
        assert creat is not None and weight is not None
        creat_mg_dl = units.convert(creat.value, creat.unit, "mg/dL", CREATININE_MOLAR_MASS)
        weight_kg = units.convert(weight.value, weight.unit, "kg")
        if creat_mg_dl is None or weight_kg is None:
            return "the creatinine or weight unit cannot be converted (need mg/dL and kg)."
        if creat_mg_dl <= 0:
            return "the serum creatinine value is not positive."
        sex_factor = 0.85 if patient.gender == "female" else 1.0
        ages = (
            _years_between(patient.birth_date.latest, self.on),
            _years_between(patient.birth_date.earliest, self.on),
        )
        values = sorted((140 - age) * weight_kg / (72 * creat_mg_dl) * sex_factor for age in ages)
        shown = _fmt(values[0]) if values[0] == values[1] else f"{_fmt(values[0])}–{_fmt(values[1])}"
        explanation = (
            f"{shown} mL/min (age {ages[0]}, {patient.gender}, weight {_fmt(weight_kg)} kg on "
            f"{weight_fact.when}, creatinine {_fmt(creat_mg_dl)} mg/dL on {creatinine_fact.when})"
        )
        return (values[0], values[1]), explanation, (patient.ref, creatinine_fact.ref, weight_fact.ref)

    # --- medications and procedures ------------------------------------------------------------------

    def _medications(self, codes: CodeSet) -> list[MedicationFact]:
        # The whole vaccine class (ATC J07) takes every Immunization, whatever its vaccine code system.
        if (ATC, "J07") in codes.prefixes:
            excluded = codes.excluded
            return [
                m
                for m in self.facts.medications
                if matches(codes, m.codes, m.text)
                or (m.kind == "Immunization" and not (excluded and matches(excluded, m.codes, m.text)))
            ]
        return self.facts.medications_for(codes)

    def _medication_records(self, codes: CodeSet) -> list[MedicationFact]:
        """The records whose presence makes the absence of `codes` readable (closed world): vaccines are
        read from immunizations, every other drug from medication records."""
        vaccine = is_vaccine_code_set(codes)
        return [m for m in self.facts.medications if (m.kind == "Immunization") == vaccine]

    def _exposure(self, med: MedicationFact, window: Window | None, given_once: bool = False) -> Result:
        """MET when the record places the drug inside the window (at any time without one), NOT_MET when
        outside it or only in the future, UNKNOWN when its dates cannot tell.

        - A statement or order still active with no end date runs up to the evaluation date: the status
          says the drug is taken now. That holds with no date at all too (a patient-reported medication
          list): active and undated is current, inside any window.
        - A record not active and without any date was taken at some time (ever); when is not told.
        - `given_once` (a product infused once, such as CAR-T cells): a record left active is not running
          on; its own day is the day it was given (an infusion 100 days ago is not within 3 months).
        - A date written only to the month or year is the days it can be: inside the window only when all
          of them are, outside only when none is, else unknown.
        """
        on = self.on
        ongoing = not given_once and med.end is None and med.kind != "MedicationAdministration" and _is_current(med, on)
        first = med.start or med.end
        if first is None:
            return MET if ongoing or window is None else UNKNOWN
        if first.earliest > on:
            return NOT_MET
        if window is None or ongoing:
            return MET
        since = self._since(window)
        last = (med.end or first).until(on)
        if last.earliest >= since:
            return MET
        return NOT_MET if last.latest < since else UNKNOWN

    def _medication_counts(self, med: MedicationFact, rule: MedicationRule) -> Result:
        if rule.systemic and _non_systemic_only(med):
            return NOT_MET
        exposure = self._exposure(med, rule.within, rule.given_once)
        if rule.current and not _is_current(med, self.on):
            return NOT_MET
        return exposure

    def _medication(self, criterion: Criterion, rule: MedicationRule) -> CriterionResult:
        requirement = (self._requirement("MedicationStatement", rule.label, rule.codes, rule.within),)
        placed = [(m, self._medication_counts(m, rule)) for m in self._medications(rule.codes)]
        found = [m for m, counts in placed if counts is MET]
        doubtful = [m for m, counts in placed if counts is UNKNOWN]
        window_text = f" within the last {rule.within.describe()}" if rule.within else ""
        when_text = " currently" if rule.current else window_text
        if found and rule.min_doses is None:
            latest = max(found, key=lambda m: m.last_date.latest if m.last_date else dt.date.min)
            return CriterionResult(
                criterion,
                MET,
                f"{rule.label} recorded{when_text}: {_medication_summary(latest)}.",
                tuple(m.ref for m in found),
            )
        if found and rule.min_doses is not None:
            given = [m for m in found if m.kind == "MedicationAdministration"]
            dates = sorted({m.start for m in given if m.start})
            if len(dates) >= rule.min_doses:
                return CriterionResult(
                    criterion,
                    MET,
                    f"{len(dates)} administrations of {rule.label} are recorded "
                    f"({dates[0]} to {dates[-1]}); at least {rule.min_doses} are required.",
                    tuple(m.ref for m in given),
                )
            others = [m for m in found if m.kind != "MedicationAdministration"]
            if others:
                return CriterionResult(
                    criterion,
                    UNKNOWN,
                    f"{rule.label} is recorded ({_medication_summary(others[0])}) "
                    f"but the number of doses is not: {len(dates)} administrations are documented, "
                    f"at least {rule.min_doses} are required.",
                    tuple(m.ref for m in found),
                    (self._requirement("MedicationAdministration", rule.label, rule.codes),),
                )
            return CriterionResult(
                criterion,
                NOT_MET,
                f"Only {len(dates)} administration(s) of {rule.label} are "
                f"recorded; at least {rule.min_doses} are required.",
                tuple(m.ref for m in found),
            )
        if doubtful:
            first = doubtful[0]
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} is recorded ({_medication_summary(first)}), but {_undated_why(first)}, "
                f"so whether it was taken{window_text} cannot be told.",
                tuple(m.ref for m in doubtful),
                requirement,
            )
        records = self._medication_records(rule.codes)
        kind = "immunization" if is_vaccine_code_set(rule.codes) else "medication"
        if not records:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"The record holds no {kind} data, so the absence of {rule.label} cannot be read.",
                requirements=requirement,
            )
        return CriterionResult(
            criterion, NOT_MET, f"No {rule.label}{when_text} among the {len(records)} {kind} records."
        )

    def _procedure_counts(self, procedure: ProcedureFact, window: Window | None) -> Result:
        """MET inside the window (at any time without one), NOT_MET outside it or in the future, UNKNOWN when
        the record has no date, or one written only to the month or year reaching both into the window and
        before it: a transplant dated "2026" or undated may have been within the last 6 months."""
        when = procedure.when
        if when is None:
            return MET if window is None else UNKNOWN
        if when.earliest > self.on:
            return NOT_MET
        if window is None:
            return MET
        when = when.until(self.on)
        since = self._since(window)
        if when.earliest >= since:
            return MET
        return NOT_MET if when.latest < since else UNKNOWN

    def _procedure(self, criterion: Criterion, rule: ProcedureRule) -> CriterionResult:
        window_text = f" within the last {rule.within.describe()}" if rule.within else ""
        placed = [(p, self._procedure_counts(p, rule.within)) for p in self.facts.procedures_for(rule.codes)]
        found = [p for p, counts in placed if counts is MET]
        if found:
            latest = max(found, key=lambda p: p.when.latest if p.when else dt.date.min)
            dated = f"on {latest.when}" if latest.when else "(no date recorded)"
            return CriterionResult(
                criterion,
                MET,
                f"{rule.label} recorded{window_text}: {latest.text or 'procedure'} {dated}.",
                tuple(p.ref for p in found),
            )
        doubtful = [p for p, counts in placed if counts is UNKNOWN]
        if doubtful:
            first = doubtful[0]
            how = "without a date" if first.when is None else f"dated only {first.when}"
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{rule.label} is recorded {how} ({first.text or 'procedure'}), so whether it falls"
                f"{window_text} cannot be told.",
                tuple(p.ref for p in doubtful),
                (self._requirement("Procedure", rule.label, rule.codes, rule.within),),
            )
        if not self.facts.procedures:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"The record holds no procedures, so the absence of {rule.label} cannot be read.",
                requirements=(self._requirement("Procedure", rule.label, rule.codes, rule.within),),
            )
        return CriterionResult(
            criterion,
            NOT_MET,
            f"No {rule.label}{window_text} among the {len(self.facts.procedures)} procedures on record.",
        )

    def _corticosteroids(self, criterion: Criterion, rule: CorticosteroidDoseRule) -> CriterionResult:
        target = f"{rule.comparator.symbol} {_fmt(rule.prednisone_mg_per_day)} mg/day prednisone equivalent"
        window_text = f"within the last {rule.within.describe()}"
        requirement = (
            self._requirement("MedicationStatement", "Systemic corticosteroids", ALL_GLUCOCORTICOIDS, rule.within),
        )
        undecided: list[str] = []
        undated: list[MedicationFact] = []
        refs: list[str] = []
        for med in self.facts.medications_for(ALL_GLUCOCORTICOIDS):
            drug = next((g for g in GLUCOCORTICOIDS if matches(g.codes, med.codes, med.text)), None)
            exposure = self._exposure(med, rule.within) if drug is not None else NOT_MET
            if drug is None or exposure is NOT_MET:
                continue
            if _non_systemic_only(med):
                continue  # inhaled / topical only: exempt by the protocols
            systemic = [d for d in med.dosages if not _non_systemic(d.route)]
            low, exact = _daily_prednisone_equivalent(systemic, drug.prednisone_factor)
            refs.append(med.ref)
            if exposure is UNKNOWN:
                undated.append(med)
                continue
            if low is not None and rule.comparator.holds(low, rule.prednisone_mg_per_day):
                return CriterionResult(
                    criterion,
                    MET,
                    f"{drug.name.capitalize()} {window_text} at about {_fmt(low)} "
                    f"mg/day prednisone equivalent{'' if exact else ' or more'}, {target}.",
                    (med.ref,),
                )
            if low is None or not exact:
                undecided.append(drug.name)
        if undecided:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{', '.join(sorted(set(undecided))).capitalize()} {window_text} "
                f"without a dose and frequency that tell whether it is {target}.",
                tuple(refs),
                requirement,
            )
        if undated:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"A systemic corticosteroid is recorded ({_medication_summary(undated[0])}), but "
                f"{_undated_why(undated[0])}, so whether it was taken {window_text} at {target} cannot be told.",
                tuple(refs),
                requirement,
            )
        if refs:
            return CriterionResult(
                criterion, NOT_MET, f"Systemic corticosteroids {window_text} stay below {target}.", tuple(refs)
            )
        if not self.facts.medications:
            return CriterionResult(
                criterion,
                UNKNOWN,
                "The record holds no medication data, so corticosteroid use cannot be read.",
                requirements=requirement,
            )
        return CriterionResult(
            criterion,
            NOT_MET,
            f"No systemic corticosteroid {window_text} among the {len(self.facts.medications)} medication records.",
        )

    def _progression(self, criterion: Criterion, rule: ProgressionAfterTherapyRule) -> CriterionResult:
        """Progression on the therapy (drugs or procedures such as radiotherapy) or within N days of its end."""
        # Days as before the fifth review: a partial date reads as its latest day (cautious for "on or after
        # the start" of a course).
        courses: list[tuple[dt.date | None, dt.date | None, str]] = []
        # Still active with a single date (an order's authoredOn, a statement's effectiveDateTime): certain of
        # that day only (a stale order left active must not tie a later progression to it, HNSCC F29), but
        # no evidence that the course ended either.
        single_dated: list[MedicationFact] = []
        ongoing: set[str] = set()
        for med in self._medications(rule.therapy):
            start = med.start.latest if med.start else None
            last = med.last_date.latest if med.last_date else None
            if start is not None and med.end is None and med.kind != "MedicationAdministration":
                if _is_current(med, self.on) and med.open_period:
                    # A period begun and not ended, still active: the therapy runs to today, and a progression
                    # during it is progression on it.
                    last = max(start, self.on)
                    ongoing.add(med.ref)
                elif _is_current(med, self.on):
                    single_dated.append(med)
            courses.append((start, last, med.ref))
        courses += [
            (p.when.latest if p.when else None, p.when.latest if p.when else None, p.ref)
            for p in self.facts.procedures_for(rule.therapy)
        ]
        therapy = [(start, last, ref) for start, last, ref in courses if start is not None and start <= self.on]
        if not therapy:
            # Absence is read only from the kinds of record the therapy is kept in: a referral bundle with
            # problems and procedures but no medication list says nothing about drugs given.
            kinds = _record_kinds(rule.therapy)
            records = {"medication": self._medication_records(rule.therapy), "procedure": self.facts.procedures}
            missing = [kind for kind in ("medication", "procedure") if kind in kinds and not records[kind]]
            if missing:
                requirement = self._requirement("MedicationStatement", rule.label, rule.therapy)
                return CriterionResult(
                    criterion,
                    UNKNOWN,
                    f"The record holds no {' or '.join(missing)} data, so {rule.label} cannot be found.",
                    requirements=(requirement,),
                )
            return CriterionResult(criterion, NOT_MET, f"No {rule.label} is recorded.")
        first = min(start for start, _, _ in therapy if start)
        last = max(last for _, last, _ in therapy if last)
        limit = "at any time after it" if rule.within_days is None else f"within {rule.within_days} days of its end"
        # A progression is tied to the course it followed: on or after that course's start and no later
        # than N days after that course's end. One span from the first start to the last end would tie a
        # recurrence years after a curative course to a later course begun for that very recurrence.
        windows = [
            (start, self.on if rule.within_days is None else _days_after(end or start, rule.within_days), ref)
            for start, end, ref in therapy
        ]

        def course_of(fact: ObservationFact) -> tuple[dt.date, dt.date, str] | None:
            """The latest course (record) the fact falls in: on or after its start, by its window's end."""
            inside = [w for w in windows if fact.when and w[0] <= fact.when <= min(w[1], self.on)]
            return max(inside, key=lambda w: w[0]) if inside else None

        statuses = [f for f in self.facts.observations_for(DISEASE_STATUS) if f.when and first <= f.when <= self.on]
        progressed = [f for f in statuses if _is_progression(f.value) and course_of(f) is not None]
        therapy_refs = tuple(ref for _, _, ref in therapy)
        if ongoing.intersection(therapy_refs):
            span = f"{rule.label} from {first}, recorded as ongoing (still active, no end date)"
        else:
            span = f"{rule.label} on {first}" if first == last else f"{rule.label} from {first} to {last}"
        if progressed:
            fact = progressed[0]
            course_start, _, course_ref = course_of(fact) or windows[0]
            if course_ref in ongoing:
                return CriterionResult(
                    criterion,
                    MET,
                    f"Progression recorded on {fact.when}, during {rule.label} recorded as ongoing since "
                    f"{course_start} (still active, no end date): progression on the therapy.",
                    therapy_refs + (fact.ref,),
                )
            return CriterionResult(
                criterion,
                MET,
                f"Progression recorded on {fact.when}, during or {limit} "
                f"(the therapy record begun on {course_start}; {span}).",
                therapy_refs + (fact.ref,),
            )
        assessed = [f for f in statuses if course_of(f) is not None]
        deadline = max(end for _, end, _ in windows)
        # Only a window can leave a progression untied: without one every course runs to the evaluation date.
        untied = [f for f in statuses if _is_progression(f.value)]
        running = [m for m in single_dated if m.start and any(f.when and f.when >= m.start.latest for f in untied)]
        if running:
            med = running[0]
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"Progression is recorded on {untied[0].when}, after {_medication_summary(med)}, which is still "
                f"marked active but dated only by that day: whether the therapy went on, so that the progression "
                f"was during or {limit}, cannot be told.",
                therapy_refs + (untied[0].ref,),
                (self._requirement("MedicationStatement", rule.label, rule.therapy),),
            )
        # Only an assessment that states the disease did not progress (stable, improved, responding, no
        # evidence of disease) shows no progression; an undetermined one or a hedged text ("possible
        # progression vs pseudoprogression") leaves the question open, whatever other assessments say.
        open_ = [f for f in assessed if not _states_no_progression(f.value)]
        if open_ and self.on > deadline:
            return CriterionResult(
                criterion,
                UNKNOWN,
                f"{span} is recorded; the disease-status assessment of {open_[0].when} reads "
                f"{_value_text(open_[0].value)!r}, which states neither progression nor its absence: the site "
                "confirms whether the disease progressed.",
                therapy_refs + (open_[0].ref,),
                (self._requirement("Observation", "Cancer disease status", DISEASE_STATUS),),
            )
        if assessed and self.on > deadline:
            return CriterionResult(
                criterion,
                NOT_MET,
                f"Disease status assessed after {span} shows no progression during or {limit}.",
                therapy_refs + tuple(f.ref for f in assessed),
            )
        outside = (
            f" (the progression on {untied[0].when} is not during or within {rule.within_days} days of the end"
            " of the course it followed)"
            if untied
            else ""
        )
        return CriterionResult(
            criterion,
            UNKNOWN,
            f"{span} is recorded, but no disease-status assessment shows progression during or {limit}{outside}.",
            therapy_refs,
            (self._requirement("Observation", "Cancer disease status", DISEASE_STATUS),),
        )


# The evaluation of each kind of rule, by the rule's class (every rule class is final: no subclasses).
_DECIDERS: dict[type, Callable[[_Evaluator, Criterion, Any], CriterionResult]] = {
    Combination: _Evaluator._combination,
    ScreeningConfirmation: _Evaluator._screening,
    NotComputable: _Evaluator._not_computable,
    AgeRule: _Evaluator._age,
    SexRule: _Evaluator._sex,
    ConditionRule: _Evaluator._condition,
    StageRule: _Evaluator._stage,
    ObservationRule: _Evaluator._observation,
    TestRule: _Evaluator._test,
    MedicationRule: _Evaluator._medication,
    ProcedureRule: _Evaluator._procedure,
    CreatinineClearanceRule: _Evaluator._creatinine_clearance,
    CorticosteroidDoseRule: _Evaluator._corticosteroids,
    ProgressionAfterTherapyRule: _Evaluator._progression,
}


# --- code sets the evaluator itself relies on -------------------------------------------------------

STAGE_GROUP_CODES = CodeSet(
    frozenset(
        {
            (LOINC, "21908-9"),
            (LOINC, "21902-2"),
            (LOINC, "21914-7"),
            (SNOMED, "399537006"),
            (SNOMED, "399588009"),
            (SNOMED, "399390009"),
        }
    )
)
SERUM_CREATININE = CodeSet(frozenset({(LOINC, "2160-0"), (LOINC, "38483-4"), (LOINC, "14682-9")}))
CREATININE_MOLAR_MASS = 113.12
BODY_WEIGHT = CodeSet(frozenset({(LOINC, "29463-7"), (LOINC, "3141-9")}))
REPORTED_CG = CodeSet(frozenset({(LOINC, "35591-7")}))
DISEASE_STATUS = CodeSet(frozenset({(LOINC, "97509-4"), (LOINC, "88040-1"), (LOINC, "21976-6")}))
PROGRESSION_CODES = frozenset({"271299001", "277022003", "LA28370-7"})
ALL_GLUCOCORTICOIDS = CodeSet(
    frozenset(c for g in GLUCOCORTICOIDS for c in g.codes.exact),
    tuple(p for g in GLUCOCORTICOIDS for p in g.codes.prefixes),
    tuple(n for g in GLUCOCORTICOIDS for n in g.codes.names),
)
GENE_STUDIED = (LOINC, "48018-6")
CVX = "http://hl7.org/fhir/sid/cvx"


DRUG_SYSTEMS = frozenset({ATC, RXNORM, CVX})


def _has_value(value: Value) -> bool:
    """Whether an observation carries a result at all (a panel header or a data-absent result does not)."""
    return bool(
        value.quantity is not None
        or value.integer is not None
        or value.concept
        or value.text
        or value.boolean is not None
    )


def _value_text(value: Value) -> str:
    """A result as the record gives it, for a reason text."""
    if value.text:
        return value.text
    if value.quantity is not None:
        return f"{value.quantity.comparator or ''}{_fmt(value.quantity.value)} {value.quantity.unit}".strip()
    if value.integer is not None:
        return str(value.integer)
    if value.concept:
        return value.concept[0][1]
    return str(value.boolean)


def _undetected_viral_load(fact: ObservationFact) -> bool:
    """A viral load reported as a coded or written "not detected" rather than as a number."""
    return any(code in VIRAL_LOAD_CODES for _, code in fact.codes) and qualitative_value(fact) == "negative"


def _record_kinds(codes: CodeSet) -> set[str]:
    """The kinds of record a therapy can be kept in: medication for a drug code, procedure for a code of
    any other system (radiotherapy, surgery); a set of names only can be either."""
    systems = {system for system, _ in codes.all_codings()}
    if not systems:
        return {"medication", "procedure"}
    kinds = set()
    if systems & DRUG_SYSTEMS:
        kinds.add("medication")
    if systems - DRUG_SYSTEMS:
        kinds.add("procedure")
    return kinds


def is_vaccine_code_set(codes: CodeSet) -> bool:
    """Vaccines (CVX, ATC J07) are recorded as Immunization resources, not medication records."""
    return any(system == CVX or (system == ATC and code.startswith("J07")) for system, code in codes.all_codings())


# A disease-status text says progression only where a clause states it plainly: "No evidence of disease
# progression", "pseudoprogression suspected", "progression ... not confirmed" or "progression-free" do not.
_PROGRESSION_TEXT = re.compile(r"(?<![\w-])(?:progress(?:ion|ive|ing|ed)?|worsen(?:ing|ed)?)\b(?!-free)")
_HEDGED_CLAUSE = re.compile(
    r"\b(?:no|not|without|negative|free of|absence of|suspected|suspicion|possible|possibly|probable|"
    r"questionable|equivocal|unconfirmed|vs|versus|rule out|ruled out)\b|\?"
)


# Disease-status answers that state the disease did not progress (mCODE ConditionStatusTrendVS): improved
# 268910001, stable 359746009, not detected / no evidence of disease 260415000; and the LOINC answers of the
# response to treatment (88040-1: complete response LA28366-5, partial response LA28369-9, stable disease
# LA28371-5; progressive disease is LA28370-7). "Undetermined" (709137006) is none of them.
NO_PROGRESSION_CODES = frozenset({"268910001", "359746009", "260415000", "LA28366-5", "LA28369-9", "LA28371-5"})
_NO_PROGRESSION_TEXT = re.compile(
    r"\b(?:stable|improv(?:ed|ing|ement)|respon(?:se|ding|der)|remission|regress(?:ion|ing|ed)|shrink\w*|"
    r"decreas\w*|ned|no evidence of (?:disease|recurrence|progression|disease progression)|"
    r"unchanged|no (?:significant )?change|no (?:new lesions?|progression|disease progression)|not progressing|"
    r"without progression)\b"
)
_UNSETTLED_TEXT = re.compile(
    r"\b(?:suspected|suspicion|possible|possibly|probable|questionable|equivocal|unconfirmed|vs|versus|rule out|"
    r"undetermined|indeterminate|unclear|uncertain|not evaluable|inevaluable|cannot be assessed|mixed|"
    r"pseudoprogression|new lesion)\b|\?"
)


def _states_no_progression(value: Value) -> bool:
    """The assessment states the disease did not progress: a non-progression answer code, or a text that
    says so plainly, with no hedge and no progression in it."""
    if any(code in NO_PROGRESSION_CODES for _, code in value.concept):
        return not any(code in PROGRESSION_CODES for _, code in value.concept)
    text = (value.text or "").lower()
    if _is_progression(value) or _UNSETTLED_TEXT.search(re.sub(r"\bno new lesions?\b", " ", text)):
        return False
    return _NO_PROGRESSION_TEXT.search(text) is not None


def _is_progression(value: Value) -> bool:
    if any(code in PROGRESSION_CODES for _, code in value.concept):
        return True
    for clause in re.split(r"[.;,:()\n]", (value.text or "").lower()):
        if _PROGRESSION_TEXT.search(clause) and not _HEDGED_CLAUSE.search(clause):
            return True
    return False


def _report_texts(fact: ObservationFact) -> list[str]:
    """The words and codes of a variant report: its code text, value and every component value."""
    values = [fact.value, *(component.value for component in fact.components)]
    return [fact.text] + [v.text or "" for v in values] + [code for v in values for _, code in v.concept]


def _concerns_gene(fact: ObservationFact, gene: str) -> bool:
    """The report names the gene in its code text, or in a 'gene studied' component (symbol or HGNC id)."""
    tokens = gene_tokens(gene)
    if re.search(rf"\b{re.escape(tokens[0])}\b", fact.text):
        return True
    for component in fact.components:
        if GENE_STUDIED in component.codes:
            names = {component.value.text or ""} | {code for _, code in component.value.concept}
            if any(name.lower() in tokens or tokens[0] in name.lower().split() for name in names):
                return True
    return False


def _is_current(med: MedicationFact, on: dt.date) -> bool:
    if med.status in ("completed", "stopped", "cancelled", "not-taken", "entered-in-error", "ended", "unknown", None):
        return False
    return med.end is None or med.end.latest >= on


# Route words are stems found at the start of a word ("cutaneous" but not inside "subcutaneous", which is
# systemic); codes are whole tokens (a route code inside a longer code is another code).
_NON_SYSTEMIC_ROUTE = re.compile(
    r"(?<![\w-])(?:" + "|".join(map(re.escape, NON_SYSTEMIC_ROUTE_WORDS)) + r")"
    r"|\b(?:" + "|".join(sorted(NON_SYSTEMIC_ROUTE_CODES)) + r")\b"
)


def _non_systemic(route: str) -> bool:
    return _NON_SYSTEMIC_ROUTE.search(route) is not None


def _non_systemic_only(med: MedicationFact) -> bool:
    """Every dosage of the record names a non-systemic route; a record without a route may be systemic."""
    return bool(med.dosages) and all(_non_systemic(d.route) for d in med.dosages)


def _daily_prednisone_equivalent(dosages: list[Dosage], factor: float) -> tuple[float | None, bool]:
    """(lowest daily prednisone-equivalent mg the record supports, whether the frequency was stated)."""
    best: float | None = None
    exact = True
    for dosage in dosages:
        if dosage.dose is None:
            continue
        mg = units.convert(dosage.dose.value, dosage.dose.unit, "mg")
        if mg is None:
            continue
        per_day = dosage.per_day
        if per_day is None:
            exact = False
            per_day = 1.0  # at least once a day: a lower bound
        daily = mg * per_day * factor
        best = daily if best is None else max(best, daily)
    return best, exact and best is not None


def _stage_allowed(stage: str, allowed: tuple[str, ...]) -> bool | None:
    """True/False, or None when the stage lacks the substage the allowed list depends on
    (stage III when only IIIB-IIID are allowed)."""
    group, letter = _split_stage(stage)
    options = [_split_stage(option) for option in allowed]
    letters = {option_letter for option_group, option_letter in options if option_group == group}
    if not letters:
        return False
    if "" in letters:
        return True  # the whole group is allowed: "IV" admits IVA, IVB...
    if letter:
        return letter in letters
    return None


def _split_stage(stage: str) -> tuple[str, str]:
    match = re.match(r"^(0|IV|III|II|I)([A-D]?)$", stage)
    return (match.group(1), match.group(2)) if match else (stage, "")


def _holds(comparator: Comparator, value: float, threshold: float, value_comparator: str | None) -> bool | None:
    """Compare, honouring a result reported as "<20" or ">1000": decided only when every value it admits
    falls on the same side of the threshold."""
    if value_comparator is None:
        return comparator.holds(value, threshold)
    wants_below = comparator in (Comparator.LT, Comparator.LE)
    if value_comparator in ("<", "<=") and value <= threshold:
        return wants_below
    if value_comparator in (">", ">=") and value >= threshold:
        return not wants_below
    return None


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _describe_bounds(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"between {_fmt(low)} and {_fmt(high)} {unit}"
    if low is not None:
        return f"at least {_fmt(low)} {unit}"
    return f"at most {_fmt(high or 0)} {unit}"


def _condition_summary(condition: ConditionFact) -> str:
    parts = [condition.text or "condition"]
    status = condition.clinical_status or ("resolved" if condition.abatement else "status not recorded")
    parts.append(status)
    if condition.first_known:
        parts.append(f"since {condition.first_known}")
    if condition.abatement:
        parts.append(f"ended {condition.abatement}")
    return ", ".join(parts)


def _outside_reason(rule: ConditionRule, condition: ConditionFact, window_text: str) -> str:
    """Why a recorded condition does not count: not active, or (with a window) dated before it."""
    summary = _condition_summary(condition)
    if rule.within is not None and condition.is_active:
        return (
            f"{rule.label} is recorded, but its dates place it before the window{window_text}: {summary} "
            "(a record still marked active is judged on when it began)."
        )
    return f"{rule.label} is recorded but not active{window_text}: {summary}."


def _medication_summary(med: MedicationFact) -> str:
    if med.start is None and med.end is None:
        when = ", no date"
    elif med.start is None:
        when = f" until {med.end}"
    elif med.end is None and med.open_period:
        when = f" from {med.start}, no end date"
    elif med.end in (None, med.start):
        when = f" on {med.start}"
    else:
        when = f" from {med.start} to {med.end}"
    return f"{med.text or 'medication'} ({med.kind}{when})"


def _undated_why(med: MedicationFact) -> str:
    """Why a medication record's dates cannot place it in a window (reason text)."""
    last = med.end or med.start
    return "it carries no date" if last is None else f"it is dated only {last}"


def _cite(child: CriterionResult) -> str:
    """A child's reason as its parent's: a leaf is named by its linkId, a combination already names one.
    A negated child (`exclude`) is named with what its result means to the parent."""
    link_id = child.criterion.link_id
    if child.criterion.exclude:
        if child.result is NOT_MET:
            return f"{link_id} does not hold: {child.reason}"
        return f"{link_id} holds, which this criterion excludes: {child.reason}"
    return child.reason if child.children else f"{link_id}: {child.reason}"


def _combination_reason(rule: Combination, result: Result, children: list[CriterionResult]) -> str:
    met: list[str] = []
    not_met: list[str] = []
    unknown: list[str] = []
    for child in children:  # one pass: every combination node of every request comes here
        effective = child.effective
        (met if effective is MET else not_met if effective is NOT_MET else unknown).append(child.criterion.link_id)
    total = len(children)
    if rule.code is CombinationCode.ALL_OF:
        if result is NOT_MET:
            decisive = next(c for c in children if c.effective is NOT_MET)
            others = f" (also not met: {', '.join(not_met[1:])})" if len(not_met) > 1 else ""
            return f"{_cite(decisive)}{others}"
        if result is UNKNOWN:
            return f"{len(met)} of {total} parts hold; unknown: {', '.join(unknown)}."
        # One data part (the rest screening items, reported apart): its own reason says what was found.
        return _cite(children[0]) if total == 1 else f"All {total} parts hold."
    if rule.code is CombinationCode.ANY_OF:
        if result is MET:
            decisive = next(c for c in children if c.effective is MET)
            return _cite(decisive)
        if result is UNKNOWN:
            return f"None of the {total} alternatives is confirmed; unknown: {', '.join(unknown)}."
        return f"None of the {total} alternatives holds: " + "; ".join(_cite(c).rstrip(".") for c in children) + "."
    n = rule.threshold
    return (
        f"{len(met)} of {total} hold (met: {', '.join(met) or 'none'}; unknown: {', '.join(unknown) or 'none'}); "
        f"the criterion needs {rule.code.value.replace('-', ' ')} {n}."
    )

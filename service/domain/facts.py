"""Version-neutral patient facts, indexed by code: what the evaluator reads instead of FHIR JSON.

Rule: pure values. Built by service.fhir.facts from an R4 or R5 bundle; each fact keeps `ref`, the
reference to the resource it came from, so every result can cite its evidence.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.domain.criteria import CodeSet, Coding


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str  # the UCUM code when the source gave one, else its unit text
    comparator: str | None = None  # "<20 IU/mL" below a detection limit: the true value is below `value`
    # A range written as the result ("ECOG 1-2", "KPS 70-80%"): the true value lies between `value` and
    # `high`; a comparison holds only when it holds at both ends (values.numeric_value, evaluate._observation).
    high: float | None = None


@dataclass(frozen=True, slots=True, order=True)
class PartialDate:
    """A FHIR date that may be partial ("1970", "1970-05"): the earliest and latest day it can be.

    A partial date is a period, not a day: a record dated "2026" happened on some day of 2026. It is
    before a date if its earliest day is, and inside a window only if every day it can be is."""

    earliest: dt.date
    latest: dt.date

    @classmethod
    def day(cls, day: dt.date) -> PartialDate:
        return cls(day, day)

    @property
    def exact(self) -> dt.date | None:
        return self.earliest if self.earliest == self.latest else None

    def until(self, on: dt.date) -> PartialDate:
        """The days it can be no later than `on` (a record of what happened is not in the future): "2026-12"
        read on 2026-12-03 is 1-3 December. Unchanged when it begins after `on`."""
        if self.latest <= on or self.earliest > on:
            return self
        return PartialDate(self.earliest, on)

    def __str__(self) -> str:
        """As it was written: 2026-03-01, 2026-03 or 2026."""
        if self.exact:
            return self.earliest.isoformat()
        year_start, year_end = self.earliest.replace(month=1, day=1), self.earliest.replace(month=12, day=31)
        if (self.earliest, self.latest) == (year_start, year_end):
            return f"{self.earliest.year:04d}"
        return self.earliest.isoformat()[:7]


@dataclass(frozen=True, slots=True)
class PatientFact:
    ref: str
    birth_date: PartialDate | None
    gender: str | None


@dataclass(frozen=True, slots=True)
class Value:
    """Every shape an Observation (or component) value arrives in; unused shapes stay None/empty."""

    quantity: Quantity | None = None
    integer: int | None = None
    concept: tuple[Coding, ...] = ()
    text: str | None = None  # valueString, or the CodeableConcept's text/display
    boolean: bool | None = None


@dataclass(frozen=True, slots=True)
class ComponentFact:
    codes: tuple[Coding, ...]
    value: Value


@dataclass(frozen=True, slots=True)
class ObservationFact:
    ref: str
    codes: tuple[Coding, ...]
    text: str  # lower-case code text and displays, for name matching
    when: dt.date | None
    value: Value
    interpretation: tuple[Coding, ...] = ()
    reference_low: Quantity | None = None
    reference_high: Quantity | None = None
    components: tuple[ComponentFact, ...] = ()


@dataclass(frozen=True, slots=True)
class ConditionFact:
    ref: str
    codes: tuple[Coding, ...]
    text: str
    clinical_status: str | None
    verification_status: str | None
    onset: PartialDate | None
    abatement: PartialDate | None
    recorded: PartialDate | None
    stages: tuple[Value, ...] = ()

    @property
    def is_active(self) -> bool:
        if self.clinical_status is not None:
            return self.clinical_status in ("active", "recurrence", "relapse")
        return self.abatement is None

    @property
    def first_known(self) -> PartialDate | None:
        return self.onset or self.recorded


@dataclass(frozen=True, slots=True)
class Dosage:
    dose: Quantity | None
    per_day: float | None  # administrations per day, when the timing says
    route: str  # lower-case route codes/text


@dataclass(frozen=True, slots=True)
class MedicationFact:
    ref: str
    kind: str  # MedicationAdministration | MedicationStatement | MedicationRequest | MedicationDispense
    codes: tuple[Coding, ...]
    text: str
    status: str | None
    start: PartialDate | None
    end: PartialDate | None
    dosages: tuple[Dosage, ...] = ()
    # Dated by a period with a start and no end (effectivePeriod, dosage bounds): the record itself says the
    # course has not ended. A single date (effectiveDateTime, authoredOn) says only when it was taken or written.
    open_period: bool = False

    @property
    def last_date(self) -> PartialDate | None:
        return self.end or self.start


@dataclass(frozen=True, slots=True)
class ProcedureFact:
    ref: str
    codes: tuple[Coding, ...]
    text: str
    status: str | None
    when: PartialDate | None


F = TypeVar("F")


def matches(codes: CodeSet, fact_codes: tuple[Coding, ...], fact_text: str) -> bool:
    """A fact matches by any coding, else (names given) by a whole word of its text; never when it
    matches the set's exceptions (a class member that does not mean the criterion)."""
    if codes.excluded is not None and matches(codes.excluded, fact_codes, fact_text):
        return False
    for system, code in fact_codes:
        if codes.matches_coding(system, code):
            return True
    pattern = codes.name_pattern
    return pattern is not None and pattern.search(fact_text) is not None


class _Index(Generic[F]):
    """One kind of fact by exact coding, by system (for class prefixes) and by text, with every answer
    cached per CodeSet: the same code lists recur across criteria and trials of one request."""

    def __init__(self, facts: list[F], codes_of: Callable[[F], Iterable[Coding]]) -> None:
        self.facts = facts
        self.by_code: dict[Coding, list[int]] = defaultdict(list)
        self.by_system: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for position, fact in enumerate(facts):
            for system, code in set(codes_of(fact)):
                self.by_code[(system, code)].append(position)
                self.by_system[system].append((code.replace(".", ""), position))
        # Records repeat the same few displays (every platelet count says "Platelets [#/volume]..."):
        # names are searched once per distinct text, and first in all of them joined, so a name absent
        # from the record costs one search.
        self.by_text: dict[str, list[int]] = defaultdict(list)
        for position, fact in enumerate(facts):
            self.by_text[getattr(fact, "text", "")].append(position)
        self.text = "\n".join(self.by_text)
        # Keyed by identity (hashing a large frozen CodeSet costs more than the lookup); the entry keeps
        # its CodeSet alive, so an id cannot be reused by another code set while this index lives.
        self.cache: dict[int, tuple[CodeSet, list[F]]] = {}

    def find(self, codes: CodeSet) -> list[F]:
        """The matching facts, in their stored order."""
        cached = self.cache.get(id(codes))
        if cached is not None:
            return cached[1]
        found: set[int] = set()
        by_code = self.by_code
        for coding in codes.exact:
            if coding in by_code:
                found.update(by_code[coding])
        for system, prefixes in codes.prefixes_by_system.items():
            if system in self.by_system:
                found.update(position for code, position in self.by_system[system] if code.startswith(prefixes))
        pattern = codes.name_pattern
        if pattern is not None and pattern.search(self.text):
            for text, positions in self.by_text.items():
                if pattern.search(text):
                    found.update(positions)
        result = [self.facts[i] for i in sorted(found)]
        if codes.excluded is not None and result:
            exempt = {id(fact) for fact in self.find(codes.excluded)}
            result = [fact for fact in result if id(fact) not in exempt]
        self.cache[id(codes)] = (codes, result)
        return result


def _observation_codes(fact: ObservationFact) -> Iterable[Coding]:
    yield from fact.codes
    for component in fact.components:
        yield from component.codes


class PatientFacts:
    """Everything the evaluator may use about one patient, indexed once, shared by all trials."""

    def __init__(
        self,
        patient: PatientFact,
        observations: Iterable[ObservationFact] = (),
        conditions: Iterable[ConditionFact] = (),
        medications: Iterable[MedicationFact] = (),
        procedures: Iterable[ProcedureFact] = (),
    ) -> None:
        self.patient = patient
        undated = dt.date.min
        # Newest first (undated last): "the latest value in the window" is the first one that fits.
        self.observations = sorted(observations, key=lambda f: f.when or undated, reverse=True)
        self.conditions = list(conditions)
        self.medications = list(medications)
        self.procedures = list(procedures)
        self._observations = _Index(self.observations, _observation_codes)
        self._conditions = _Index(self.conditions, lambda f: f.codes)
        self._medications = _Index(self.medications, lambda f: f.codes)
        self._procedures = _Index(self.procedures, lambda f: f.codes)

    def observations_for(self, codes: CodeSet) -> list[ObservationFact]:
        """Matching observations (by their code or a component's), newest first."""
        return self._observations.find(codes)

    def conditions_for(self, codes: CodeSet) -> list[ConditionFact]:
        return self._conditions.find(codes)

    def medications_for(self, codes: CodeSet) -> list[MedicationFact]:
        return self._medications.find(codes)

    def procedures_for(self, codes: CodeSet) -> list[ProcedureFact]:
        return self._procedures.find(codes)

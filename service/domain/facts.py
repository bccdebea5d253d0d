"""Version-neutral patient facts, indexed by code: what the evaluator reads instead of FHIR JSON.

Rule: pure values. Built by service.fhir.facts from an R4 or R5 bundle; each fact keeps `ref`, the
reference to the resource it came from, so every result can cite its evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.domain.criteria import CodeSet, Coding


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str  # the UCUM code when the source gave one, else its unit text
    comparator: str | None = None  # "<20 IU/mL" below a detection limit: the true value is below `value`


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A FHIR date that may be partial ("1970", "1970-05"): the earliest and latest day it can be."""

    earliest: dt.date
    latest: dt.date

    @property
    def exact(self) -> dt.date | None:
        return self.earliest if self.earliest == self.latest else None


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
    onset: dt.date | None
    abatement: dt.date | None
    recorded: dt.date | None
    stages: tuple[Value, ...] = ()

    @property
    def is_active(self) -> bool:
        if self.clinical_status is not None:
            return self.clinical_status in ("active", "recurrence", "relapse")
        return self.abatement is None

    @property
    def first_known(self) -> dt.date | None:
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
    start: dt.date | None
    end: dt.date | None
    dosages: tuple[Dosage, ...] = ()

    @property
    def last_date(self) -> dt.date | None:
        return self.end or self.start


@dataclass(frozen=True, slots=True)
class ProcedureFact:
    ref: str
    codes: tuple[Coding, ...]
    text: str
    status: str | None
    when: dt.date | None


def _words(text: str, names: Iterable[str]) -> bool:
    return any(re.search(rf"\b{re.escape(name)}\b", text) for name in names)


def matches(codes: CodeSet, fact_codes: tuple[Coding, ...], fact_text: str) -> bool:
    """A fact matches by any coding, else (names given) by a whole word of its text."""
    if any(codes.matches_coding(system, code) for system, code in fact_codes):
        return True
    return bool(codes.names) and _words(fact_text, codes.names)


@dataclass
class PatientFacts:
    """Everything the evaluator may use about one patient, indexed once, shared by all trials."""

    patient: PatientFact
    observations: list[ObservationFact] = field(default_factory=list)
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[MedicationFact] = field(default_factory=list)
    procedures: list[ProcedureFact] = field(default_factory=list)
    _by_code: dict[Coding, list[ObservationFact]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        by_code: dict[Coding, list[ObservationFact]] = defaultdict(list)
        for fact in self.observations:
            for coding in fact.codes:
                by_code[coding].append(fact)
            for component in fact.components:
                for coding in component.codes:
                    if fact not in by_code[coding]:
                        by_code[coding].append(fact)
        undated = dt.date.min
        for facts in by_code.values():
            facts.sort(key=lambda f: f.when or undated, reverse=True)
        self._by_code = dict(by_code)

    def observations_for(self, codes: CodeSet) -> list[ObservationFact]:
        """Matching observations, newest first (undated last)."""
        found: dict[int, ObservationFact] = {}
        for coding in codes.exact:
            for fact in self._by_code.get(coding, ()):
                found[id(fact)] = fact
        if codes.prefixes or codes.names:
            for fact in self.observations:
                if matches(codes, fact.codes, fact.text):
                    found[id(fact)] = fact
        undated = dt.date.min
        return sorted(found.values(), key=lambda f: f.when or undated, reverse=True)

    def without(self, refs: set[str]) -> PatientFacts:
        """The same facts minus those from the given resources (evidence that failed validation)."""
        return PatientFacts(
            patient=self.patient,
            observations=[f for f in self.observations if f.ref not in refs],
            conditions=[f for f in self.conditions if f.ref not in refs],
            medications=[f for f in self.medications if f.ref not in refs],
            procedures=[f for f in self.procedures if f.ref not in refs],
        )

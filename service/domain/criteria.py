"""The criteria tree of a trial: frozen values built once from a mapping file, never mutated.

Rule: pure data. No flask, no fhir.resources, no IO. Every criterion has a stable `link_id`, the
join key from the mapping to `EvidenceVariable.characteristic.linkId` to the result part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
# WHO ICD-10 and the German ICD-10-GM (BfArM's URL, and DIMDI's before it): read as the CM code they spell
# (service.fhir.patient_bundle._codings), so they match CM classes of their length or shorter.
ICD10_WHO = "http://hl7.org/fhir/sid/icd-10"
ICD10_GM = frozenset({"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "http://fhir.de/CodeSystem/dimdi/icd-10-gm"})
ICD10_WHO_LIKE = ICD10_GM | {ICD10_WHO}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
UCUM = "http://unitsofmeasure.org"
AJCC = "http://cancerstaging.org"
HGNC = "http://www.genenames.org"

# Short aliases used in mapping files ("loinc:751-8"); the first name is the one we write back.
SYSTEM_ALIASES: dict[str, str] = {
    "loinc": LOINC,
    "snomed": SNOMED,
    "icd10cm": ICD10CM,
    "rxnorm": RXNORM,
    "atc": ATC,
    "ncit": NCIT,
    "ajcc": AJCC,
    "hgnc": HGNC,
    "cvx": "http://hl7.org/fhir/sid/cvx",
}
# Hierarchical code systems: a mapping code is a class, matched as a prefix ("C43" ⊃ "C43.9").
PREFIX_SYSTEMS = frozenset({ICD10CM, ATC})

Coding = tuple[str, str]  # (system, code)


class Result(Enum):
    """Kleene three-valued result: does the characteristic's condition hold?"""

    MET = "met"
    NOT_MET = "not-met"
    UNKNOWN = "unknown"

    def negated(self) -> Result:
        if self is Result.MET:
            return Result.NOT_MET
        if self is Result.NOT_MET:
            return Result.MET
        return Result.UNKNOWN


# A name right after a negation in the same clause is not a mention of the thing: "No leptomeningeal
# disease", "not breastfeeding", "no history of tuberculosis", "metastatic NSCLC without brain metastases".
# Only a cue directly before the name (through a few qualifiers) negates it, as in ConText (Harkema 2009);
# "no longer pregnant", "no improvement of pneumonitis" or a name in a list after a comma stay mentions,
# so a record is never read as negated when the words leave it open.
_CLAUSE_END = re.compile(r"[,;.:()\[\]|\n]")
_NEGATED_BEFORE = re.compile(
    r"(?:^|\W)(?:no|not|without|denies|denied|negative for|free of|absence of|never had|never been)\s+"
    r"(?:(?:known|prior|previous|personal|past|current|currently|active|clinical|documented|any|further|"
    r"evidence of|signs? of|symptoms? of|history of|h/o|hx of)\s+)*"
    # "not pregnant or breastfeeding", "no fever or pneumonia": the cue reaches across one "or" after one
    # or two words, unless those words leave the matter open ("not sure whether pregnant or breastfeeding").
    r"(?:(?:(?!(?:sure|certain|whether|if|known)\b)[\w/-]+\s+){1,2}n?or\s+)?$"
)
_NEGATION_REACH = 60  # characters looked back for a cue: longer than any cue and its qualifiers


def negated(text: str, start: int) -> bool:
    """Whether the words just before `start`, in the same clause, negate what starts there."""
    before = text[max(0, start - _NEGATION_REACH) : start]
    ends = [m.end() for m in _CLAUSE_END.finditer(before)]
    return _NEGATED_BEFORE.search(before[ends[-1] :] if ends else before) is not None


class WholeWords:
    """Finds any of `names` as a whole word (what `\\b(?:name|...)\\b` finds, about 4x faster on record
    texts) that is not negated by the words just before it (`negated`).

    Why not that regex: a leading `\\b` keeps `re` from skipping ahead to the names' first characters, so
    every position of the text tries every name. Here the search runs without it and each candidate's
    start is checked for the word boundary (a failed start resumes one character later, so a match
    starting inside a rejected one is still found)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.pattern = re.compile(r"(?:" + "|".join(re.escape(name) for name in names) + r")\b")

    def search(self, text: str) -> re.Match[str] | None:
        position = 0
        while (found := self.pattern.search(text, position)) is not None:
            start = found.start()
            if (
                _is_word(text, start - 1) != _is_word(text, start)  # `\\b` at the start
                and not _SUB_PREFIX.search(text, max(0, start - 4), start)
                and not negated(text, start)
            ):
                return found
            position = start + 1
        return None


# "sub-" joined to a word makes another word: "sub-cutaneous" is not "cutaneous" (a systemic route, not a
# topical one), "sub-total" not "total", "sub-acute" not "acute" (fifth review, HNSCC F4).
_SUB_PREFIX = re.compile(r"(?<![\w-])sub[- ]$")


def _is_word(text: str, index: int) -> bool:
    """Whether text[index] is a word character as `re`'s `\\w` (str patterns) reads it; outside the text: no."""
    if index < 0 or index >= len(text):
        return False
    character = text[index]
    return character.isalnum() or character == "_"


@dataclass(frozen=True)
class CodeSet:
    """Codes a criterion accepts: exact codings, class prefixes (ICD-10-CM, ATC), and names.

    `names` are lower-case words looked for in every record's display or text, whatever its codes
    (real EHR medication and problem-list entries are often text only). `excluded` lists the members
    of a class that do not mean the criterion (talimogene laherparepvec L01XL02 in "CAR-T" L01XL):
    a record matching it is never a match, whatever else it carries (DESIGN.md §2 "code classes").
    """

    exact: frozenset[Coding] = frozenset()
    prefixes: tuple[Coding, ...] = ()
    names: tuple[str, ...] = ()
    excluded: CodeSet | None = None

    @cached_property
    def prefixes_by_system(self) -> dict[str, tuple[str, ...]]:
        by_system: dict[str, list[str]] = {}
        for system, prefix in self.prefixes:
            by_system.setdefault(system, []).append(prefix.replace(".", ""))
        return {system: tuple(prefixes) for system, prefixes in by_system.items()}

    @cached_property
    def name_pattern(self) -> WholeWords | None:
        """All names, matched as whole words."""
        return WholeWords(self.names) if self.names else None

    def matches_coding(self, system: str, code: str) -> bool:
        """Whether one coding is in the set (exceptions are judged per record: see facts.matches)."""
        if (system, code) in self.exact:
            return True
        prefixes = self.prefixes_by_system.get(system)
        return prefixes is not None and code.replace(".", "").startswith(prefixes)

    def all_codings(self) -> tuple[Coding, ...]:
        return self._all_codings

    @cached_property
    def _all_codings(self) -> tuple[Coding, ...]:
        # Sorted once per code set: every unknown's data requirement lists them (issue 12, per-request cost).
        return tuple(sorted(self.exact)) + self.prefixes

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes or self.names)


class Comparator(Enum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    def holds(self, left: float, right: float) -> bool:
        if self is Comparator.LT:
            return left < right
        if self is Comparator.LE:
            return left <= right
        if self is Comparator.GT:
            return left > right
        return left >= right

    @property
    def symbol(self) -> str:
        return {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}[self.value]


@dataclass(frozen=True)
class Window:
    """A lookback window ending at the evaluation date; `is_default` when the protocol gave none."""

    days: int
    is_default: bool = False

    def describe(self) -> str:
        text = f"{self.days} days"
        return f"{text}, a default window as the protocol states none" if self.is_default else text


# --- Rules: what a characteristic tests. Exactly one per criterion. ---------------------------


@dataclass(frozen=True)
class AgeRule:
    """Age in whole years at the evaluation date, bounds inclusive."""

    min_years: float | None = None
    max_years: float | None = None


@dataclass(frozen=True)
class SexRule:
    sexes: frozenset[str]  # administrative gender codes: female, male


@dataclass(frozen=True)
class ConditionRule:
    """A diagnosis on the record.

    Active conditions count; with `include_resolved` (history of ...) resolved ones too. With
    `within` only conditions that began (onset, else recorded date) or ended (abatement) inside the
    window count: "active now" alone does not place an old record inside it.
    `except_codes` removes conditions the protocol exempts (e.g. basal cell carcinoma).
    """

    label: str
    codes: CodeSet
    include_resolved: bool = False
    within: Window | None = None
    except_codes: CodeSet = field(default_factory=CodeSet)


@dataclass(frozen=True)
class StageRule:
    """Cancer stage group (AJCC): allowed groups such as IIIB, IV; "IV" admits IVA, IVB..."""

    allowed: tuple[str, ...]


@dataclass(frozen=True)
class ObservationRule:
    """A numeric observation compared with a threshold, or with a multiple of the result's own
    reference limit (`relative_to` ULN/LLN), using the latest value inside the window.
    `unit` is UCUM; `molar_mass` (g/mol) allows mass ↔ substance conversions (creatinine 113.12).
    `room_air`: the value must have been measured without supplemental oxygen (SpO2 "on room air"); a
    result whose own components record oxygen given (flow, inhaled concentration) is unknown.
    `or_value` (value, UCUM unit): the protocol's second threshold for results in a unit the main one
    does not convert to ("HBV DNA < 500 IU/mL (or 2500 copies/mL)"); no conversion between the two."""

    label: str
    codes: CodeSet
    comparator: Comparator
    value: float
    window: Window
    unit: str | None = None
    relative_to: str | None = None  # "ULN" | "LLN"
    molar_mass: float | None = None
    room_air: bool = False
    or_value: tuple[float, str] | None = None


@dataclass(frozen=True)
class TestRule:
    """A qualitative result (HIV test, pregnancy test, BRAF mutation): does the latest result in
    the window read `expect` (positive | negative)? `gene` restricts variant reports to a gene, and
    `variant` (a protein change such as G12C, with `gene`) to that change: a report of the gene that
    reads positive but does not name the change ("KRAS mutated") leaves it unknown.

    `decides_alone`: the result is the definition of the criterion (detectable HBV DNA is active
    replication), so it is one path among others: with no result in the window this path is not-met
    (the other paths, e.g. a coded diagnosis, carry the doubt), provided the record holds laboratory
    data at all.

    `positive_wins`: a tumour biomarker (a BRAF mutation, antigen expression), not a laboratory value: a
    positive result anywhere in the window decides, whatever later results read. A tumour's mutation
    does not revert, and a later negative on another specimen (a plasma ctDNA or circulating-tumour-cell
    assay, whose sensitivity is low) does not undo a positive one. Without it the latest result decides
    (a pregnancy test, a viral load, a serology)."""

    label: str
    codes: CodeSet
    expect: str
    window: Window | None = None
    gene: str | None = None
    decides_alone: bool = False
    variant: str | None = None  # a protein change ("G12C"): a positive report must name it, see evaluate._test
    positive_wins: bool = False


@dataclass(frozen=True)
class MedicationRule:
    """Exposure to a drug or drug class: ever, inside `within`, or `current` (active now).
    `min_doses` counts documented administrations. `systemic`: a record whose every dosage has a
    non-systemic route (topical, otic, ophthalmic, inhaled ...) does not count; ciprofloxacin ear drops
    are not the "oral or intravenous antibiotic treatment" a protocol excludes. `given_once`: each record
    is one administration of a product given once (a CAR-T infusion): a record left active is dated by its
    own day, never read as running on to the evaluation date."""

    label: str
    codes: CodeSet
    within: Window | None = None
    current: bool = False
    min_doses: int | None = None
    systemic: bool = False
    given_once: bool = False


@dataclass(frozen=True)
class ProcedureRule:
    label: str
    codes: CodeSet
    within: Window | None = None


@dataclass(frozen=True)
class CreatinineClearanceRule:
    """Creatinine clearance by Cockcroft–Gault from age, sex, weight and serum creatinine
    (or a reported Cockcroft–Gault result), compared with a threshold in mL/min."""

    comparator: Comparator
    value: float
    window: Window


@dataclass(frozen=True)
class CorticosteroidDoseRule:
    """Systemic corticosteroid above a prednisone-equivalent daily dose inside the window."""

    comparator: Comparator
    prednisone_mg_per_day: float
    within: Window


@dataclass(frozen=True)
class ProgressionAfterTherapyRule:
    """Disease progression documented within `within_days` after the last dose of a therapy."""

    label: str
    therapy: CodeSet
    within_days: int | None  # None: progression at any time after the therapy began


@dataclass(frozen=True)
class DataNeed:
    """Data a criterion names even when it cannot be decided ("blood tests within 14 days"): it becomes
    a dataRequirement so the coordinator knows what to order."""

    label: str
    codes: CodeSet
    window: Window | None = None
    resource_type: str = "Observation"


@dataclass(frozen=True)
class NotComputable:
    """Data-evaluable in principle but not encoded: always unknown, with this explanation and the
    data it names (`needs`)."""

    explanation: str
    needs: tuple[DataNeed, ...] = ()


@dataclass(frozen=True)
class ScreeningConfirmation:
    """No record can settle it (consent, willingness, investigator judgement): reported, never
    decides the verdict; its presence makes an eligible subject a `candidate`."""


class CombinationCode(Enum):
    ALL_OF = "all-of"
    ANY_OF = "any-of"
    AT_LEAST = "at-least"
    AT_MOST = "at-most"


@dataclass(frozen=True)
class Combination:
    code: CombinationCode
    children: tuple[Criterion, ...]
    threshold: int | None = None


Rule = (
    AgeRule
    | SexRule
    | ConditionRule
    | StageRule
    | ObservationRule
    | TestRule
    | MedicationRule
    | ProcedureRule
    | CreatinineClearanceRule
    | CorticosteroidDoseRule
    | ProgressionAfterTherapyRule
    | NotComputable
    | ScreeningConfirmation
    | Combination
)


@dataclass(frozen=True)
class Criterion:
    """One characteristic. `exclude` negates it: at the top level it is an exclusion criterion;
    inside a combination it reads as NOT (the R5 meaning of `characteristic.exclude`)."""

    link_id: str
    description: str
    rule: Rule
    exclude: bool = False
    note: str | None = None
    machine_derived: bool = False

    @property
    def is_screening(self) -> bool:
        return isinstance(self.rule, ScreeningConfirmation)

    def walk(self) -> Iterator[Criterion]:
        yield self
        if isinstance(self.rule, Combination):
            for child in self.rule.children:
                yield from child.walk()


@dataclass(frozen=True)
class ArmEligibility:
    """Criteria that decide assignment to one comparison group (R5 has no per-arm element)."""

    group: str  # ResearchStudy.comparisonGroup.linkId
    title: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class TrialCriteria:
    study_id: str
    title: str
    criteria: tuple[Criterion, ...]
    arms: tuple[ArmEligibility, ...] = ()
    default_lab_window_days: int = 28
    reviewed: bool = False  # a person reviewed the mapping (EvidenceVariable status active); never assumed

    def walk(self) -> Iterator[Criterion]:
        for criterion in self.criteria:
            yield from criterion.walk()

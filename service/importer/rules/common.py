"""Shared pieces of the rule finders: comparators, numbers, durations, guards, and the Atom a finder returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Rule = dict[str, Any]  # one mapping rule key and its body, e.g. {"observation": {...}}

# --- comparators -------------------------------------------------------------------------------

GE = r"≥|≧|>=|=>|>\s?or\s?=|≥/=|greater than or equal to|greater than or equal|equal to or greater than|at least|no less than|not less than|minimum of"  # noqa: E501
LE = r"≤|≦|<=|=<|<\s?or\s?=|≤/=|less than or equal to|less than or equal|equal to or less than|no more than|not more than|no greater than|not greater than|not exceeding|maximum of|up to"  # noqa: E501
GT = r">|＞|greater than|more than|higher than|above|over|exceeding|exceeds"
LT = r"<|＜|less than|lower than|below|under"
COMP = rf"(?P<op>{GE}|{LE}|{GT}|{LT})"
COMPARATOR_TOKEN = re.compile(rf"{GE}|{LE}|[<>≤≥≦≧＜＞]", re.IGNORECASE)


def op_of(token: str) -> str:
    t = token.lower().strip()
    for pattern, op in ((GE, ">="), (LE, "<="), (GT, ">"), (LT, "<")):
        if re.fullmatch(pattern, t, re.IGNORECASE):
            return op
    raise ValueError(token)


NUMBER = r"(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?)"


def number(text: str) -> float:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


# --- guards ------------------------------------------------------------------------------------

CONDITIONAL = re.compile(
    r"\b(unless|except|excluding|exception|other than|if|provided|in case|when|whose|regardless|"
    r"gilbert'?s?|liver metastas[ie]s|hepatic metastas[ie]s|liver involvement|hepatic involvement|"
    r"bone marrow involvement|marrow infiltration|bone metastas[ie]s|for (patients|subjects|participants|"
    r"women|men|those|males|females)|in (patients|subjects|participants)|cohorts?|parts? [0-9a-z]\b|"
    r"arms? [0-9a-z]\b|japan|china|korea|taiwan|country|countries|local regulations?|excluded|"
    r"anticoagula\w*|warfarin|heparins?)\b",
    re.IGNORECASE,
)
SUPPORT = re.compile(
    # A growth factor receptor a drug class names (fibroblast, epidermal, vascular endothelial) is no support.
    r"transfus|(?<!fibroblast )(?<!epidermal )(?<!endothelial )(?<!platelet-derived )growth factor(?!\s*(?:\(\w+\)\s*)?"
    r"(?:-\s*)?(?:FGFR|receptor))|g-?csf|gm-?csf|filgrastim|pegfilgrastim|colony[- ]stimulating|erythropoie|"
    r"\bepo\b|thrombopoietin|\bsupport\b|stimulating (?:factor|agent)",
    re.IGNORECASE,
)
SCREENING = re.compile(
    r"informed consent|consent form|\bICF\b|\bwilling|\bunwilling|\bagree(s|d|ment)? to\b|"
    r"able to (understand|comply|adhere|follow)|comply with|\bcompliance\b|"
    r"(opinion|judge?ment|discretion) of the (treating |principal )?investigator|"
    r"investigator'?s? (opinion|judge?ment|discretion)|judged by the investigator|"
    r"contracepti|birth control|"
    # The study drug's own hypersensitivity: an investigational product is in no patient record.
    r"\b(?:hypersensitivit(?:y|ies)|allerg(?:y|ies|ic)|contra-?indications?)\b[^.;]{0,80}?"
    r"(?:\bstudy (?:drugs?|treatments?|interventions?|medications?|agents?)|\binvestigational (?:products?|drugs?|"
    r"agents?|medicinal products?)|\bIMPs?\b|\bexcipients?\b|\bcomponents? of\b|\bdrugs used in the study\b|"
    r"\bcompounds? of (?:similar|chemical)|\bsimilar (?:chemical|biologic))|"
    # Measurable disease per RECIST is read from the site's imaging assessment, not from coded data.
    r"\b(?:measurable|evaluable) (?:disease|lesions?)\b[^.;]{0,60}?"
    r"(?:\bRECIST\b|\bResponse Evaluation Criteria in Solid Tumou?rs\b)|"
    r"\bable to swallow\b|\bunfit to participate\b",
    re.IGNORECASE,
)
# Consent named only as a point in time ("within 3 months before obtaining informed consent") or
# as a definition ("participation, i.e. signed informed consent") is no screening confirmation.
TIME_OF_CONSENT = re.compile(
    r"\b(?:at|on|by) (?:the )?(?:time|day|date) of (?:signing |providing |obtaining )?(?:the )?(?:written )?"
    r"(?:informed )?consent(?: form)?(?:\s*\(ICF\))?"
    r"|\b(?:at|on) (?:the )?(?:time|day|date) of consent(?: obtaining)?"
    r"|\b(?:before|prior to|after|from|since|until) (?:the )?"
    r"(?:obtaining |obtainment of |signing (?:of )?|signature of )?"
    r"(?:the )?(?:written |master )?(?:informed )?consent(?: form)?(?:\s*\(ICF\))?"
    r"|\b(?:i\.e\.,?|defined as) signed informed consent"
    r"|\bat (?:the )?(?:signing|signature) of (?:the )?(?:written )?(?:informed )?consent(?: form)?",
    re.IGNORECASE,
)
# A numeric threshold in the wording means data decide it, whoever judges the rest.
NUMERIC_THRESHOLD = re.compile(r"(?:[<>≤≥≦≧]|=)\s*\d|\bbetween \d+(?:\.\d+)?[^.;]{0,40}? and \d", re.IGNORECASE)
SEXES = re.compile(
    r"\b(?:(?:male|men|man)s?\s*(?:or|and|/)\s*(?:female|women|woman)s?|(?:female|women|woman)s?\s*(?:or|and|/)\s*"
    r"(?:male|men|man)s?)\b",
    re.IGNORECASE,
)
# A definition ("post-menopausal, defined as age ≥ 50 and amenorrhoeic ≥ 12 months") is no criterion.
DEFINITION = re.compile(
    r"\bdefined (?:as|by)\b|\bdefinition\b|\bi\.\s?e\.|\bmeaning\b|\bis considered\b", re.IGNORECASE
)
# Counts written as words ("within two weeks") read like digits.
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
COUNT = r"(?P<count>\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
DURATION = COUNT + r"[\s-]*\(?(?:\d{1,3}\)\s*)?(?P<unit>days?|weeks?|wks?|months?|years?|yrs?)\b"
# Days per unit: a month is 30.44 days and a year 365.25 (calendar averages), rounded to whole days.
DAYS_PER = {"day": 1.0, "week": 7.0, "wk": 7.0, "month": 30.44, "year": 365.25, "yr": 365.25}
# "within 28 days", "within two weeks", "in the past 3 months", "≤ 28 days prior to", "< 4 weeks before"
WITHIN_DAYS = re.compile(
    r"\b(?:within|during|in)\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+|prior\s+|preceding\s+)?" + DURATION
    + r"|(?:≤|<=|<|less than|fewer than)\s*" + DURATION.replace("count", "count2").replace("unit", "unit2")
    + r"(?=\s+(?:prior|before|preceding|of)\b)"
    # "within 72 hours" (pregnancy tests): whole days only; 36 hours is no whole-day window and stays text
    + r"|\bwithin\s+(?:the\s+)?(?:last\s+|past\s+)?(?P<hours>24|48|72|96|120|144|168)[\s-]*(?:hours?|hrs?|h)\b",
    re.IGNORECASE,
)  # fmt: skip


def blank(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the spans replaced by spaces (offsets hold)."""
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def count_of(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]


def days_of(count: str, unit: str) -> int:
    return round(count_of(count) * DAYS_PER[re.sub(r"s$", "", unit.lower())])


def windows_in(text: str) -> set[int]:
    """Every lookback window the wording states, in days."""
    return {days for _, days in window_positions(text)}


def window_positions(text: str) -> list[tuple[int, int]]:
    """(offset, days) of each lookback window the wording states, in order."""
    found = []
    for m in WITHIN_DAYS.finditer(text):
        if m.group("hours"):
            found.append((m.start(), int(m.group("hours")) // 24))
            continue
        count, unit = (m.group("count"), m.group("unit")) if m.group("count") else (m.group("count2"), m.group("unit2"))
        found.append((m.start(), days_of(count, unit)))
    return found


# Words that may surround a recognised finding without changing it. Anything else left over in an
# exclusion blocks structuring; in an inclusion it becomes a not-computable sibling in `all_of`.
# A word block reviewers can scan beats a 300-item list literal (hence the noqa).
FILLER = frozenset(
    """
    a age aged aged: all an anaemia and and/or anemia any are as assessed assessment at
    baseline be be: been before being blood bone breast breastfeeding by c-g calculated clinical
    cockcroft cockcroft-gault confirmed consent cooperative count counts criteria current currently
    cycle date day days defined defined: demonstrate demonstrated demonstrates documented done dose
    drug eastern ecog either enrollment enrolment equation estimated evaluation evidence feeding
    female females first following following: follows form formula function function: functions
    gault group had haematologic haematological has have having hbv hcv hematologic hematological
    hepatic hepatitis history hiv human icf in inclusion individuals infected
    infection infections informed initiation intervention is karnofsky kidney known kps lab
    laboratory labs lactating lactation level levels liver male males man marrow measured men must
    neutropenia nor nursing obtained of old on oncology or organ over parameter parameters
    participant participants patient patients people performance performed person persons plasma
    positive pregnancy pregnant presence prior ps randomisation randomization registration renal
    requirement requirements result results scale score screening serum shall should sign signed
    signing start status study subject subjects test tests that the thrombocytopenia time to total
    treatment under value values viral virus viruses visit which who will with within woman women
    year years yrs previous previously past obtaining inclusive birth from concurrent entry use administration
    per harboring harbouring carrying disease tumor tumour tumors tumours mutation mutations
    non-hematologic non-haematologic non-hematological non-haematological chemistry biochemistry hematology haematology
    """.split()  # noqa: SIM905
)


@dataclass
class Atom:
    """A recognised finding inside the criterion text."""

    start: int
    end: int
    key: str  # short id suffix: anc, plt, ...
    rule: Rule
    label: str


@dataclass
class Structured:
    """The outcome for one criterion: a rule body, or the reason it stays text."""

    rule: Rule | None
    reason: str | None = None
    screening: bool = False
    children: list[dict[str, Any]] = field(default_factory=list)


TIME_UNITS = {"week": "wk", "wk": "wk", "month": "mo", "mo": "mo", "year": "a", "yr": "a"}
INVESTIGATOR_JUDGEMENT = re.compile(
    r"\b(?:in|per|according to) (?:the )?(?:opinion|judge?ment|discretion|assessment) of (?:the )?"
    r"(?:treating |principal )?investigators?"
    r"|\b(?:in|per) (?:the )?investigator'?s'? (?:opinion|judge?ment)"
    r"|\bas (?:judged|assessed|estimated|determined) by (?:the )?(?:treating )?investigators?",
    re.IGNORECASE,
)

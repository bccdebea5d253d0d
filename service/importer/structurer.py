"""Rule-based structuring of one eligibility criterion's wording into mapping rule keys.

Rule: precision over recall. A pattern is encoded only when the words around it cannot change its
meaning (no exception, condition, alternative, transfusion, cohort, "unless"...); an inclusion may
keep a not-computable remainder inside `all_of` (the encoded part is then a necessary condition),
an exclusion is encoded only when nothing but the recognised findings is left. Everything else is
returned with the reason it stays text.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Rule = dict[str, Any]  # one mapping rule key and its body, e.g. {"observation": {...}}

# --- comparators -------------------------------------------------------------------------------

_GE = r"≥|≧|>=|=>|>\s?or\s?=|≥/=|greater than or equal to|greater than or equal|equal to or greater than|at least|no less than|not less than|minimum of"  # noqa: E501
_LE = r"≤|≦|<=|=<|<\s?or\s?=|≤/=|less than or equal to|less than or equal|equal to or less than|no more than|not more than|no greater than|not greater than|not exceeding|maximum of|up to"  # noqa: E501
_GT = r">|＞|greater than|more than|higher than|above|over|exceeding|exceeds"
_LT = r"<|＜|less than|lower than|below|under"
COMP = rf"(?P<op>{_GE}|{_LE}|{_GT}|{_LT})"
COMPARATOR_TOKEN = re.compile(rf"{_GE}|{_LE}|[<>≤≥≦≧＜＞]", re.IGNORECASE)


def op_of(token: str) -> str:
    t = token.lower().strip()
    for pattern, op in ((_GE, ">="), (_LE, "<="), (_GT, ">"), (_LT, "<")):
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
    r"arms? [0-9a-z]\b|japan|china|korea|taiwan|country|countries|local regulations?|excluded)\b",
    re.IGNORECASE,
)
SUPPORT = re.compile(
    r"transfus|growth factor|g-?csf|gm-?csf|filgrastim|pegfilgrastim|colony[- ]stimulating|erythropoie|"
    r"\bepo\b|thrombopoietin|\bsupport\b|stimulat",
    re.IGNORECASE,
)
SCREENING = re.compile(
    r"informed consent|consent form|\bICF\b|\bwilling|\bunwilling|\bagree(s|d|ment)? to\b|"
    r"able to (understand|comply|adhere|follow)|comply with|\bcompliance\b|"
    r"(opinion|judge?ment|discretion) of the (treating |principal )?investigator|"
    r"investigator'?s? (opinion|judge?ment|discretion)|judged by the investigator|"
    r"contracepti|birth control",
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
WITHIN_DAYS = re.compile(r"\bwithin (?:the )?(?:last |past )?(\d{1,3}) days\b", re.IGNORECASE)

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
    hepatic hepatitis history hiv human icf immunodeficiency in inclusion individuals infected
    infection infections informed initiation intervention is karnofsky kidney known kps lab
    laboratory labs lactating lactation level levels liver male males man marrow measured men must
    neutropenia nor nursing obtained of old on oncology or organ over parameter parameters
    participant participants patient patients people performance performed person persons plasma
    positive pregnancy pregnant presence prior ps randomisation randomization registration renal
    requirement requirements result results scale score screening serum shall should sign signed
    signing start status study subject subjects test tests that the thrombocytopenia time to total
    treatment under value values viral virus viruses visit which who will with within woman women
    year years yrs previous past obtaining inclusive birth from
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


# --- finders -----------------------------------------------------------------------------------


# Age at an event ("< 50 years of age at migraine onset") is not the age today.
AGE_AT_EVENT = re.compile(
    r"\b(?:at|of) (?:the )?(?:time of )?(?:initial |first )?(?:\w+ )?(?:onset|diagnosis|menarche|menopause)\b"
    r"|\bage at (?:onset|diagnosis|first|initial)\b|\bsince\b|\bduration\b|\bhistory of\b|\bsmok\w*",
    re.IGNORECASE,
)


def find_age(text: str) -> list[Atom]:
    if AGE_AT_EVENT.search(text):
        return []  # "less than 50 years of age at migraine onset" is not the age today
    atoms: list[Atom] = []
    years = r"\s*(?:years?|yrs?)"
    both = re.search(
        rf"\b(?:age|aged)\b[^.;\d]{{0,20}}?(?P<op1>{_GE}|{_GT}|≥|>)\s*(?P<a>\d{{1,3}}){years}?"
        rf"(?:\s*(?:old|of age))?\s*(?:and|,)\s*(?P<op2>{_LE}|{_LT}|≤|<)\s*(?P<b>\d{{1,3}}){years}",
        text,
        re.IGNORECASE,
    )
    if both:
        if op_of(both.group("op1")) == ">":
            return []  # a strict lower bound in words is ambiguous (see below)
        low = _age_bound(op_of(both.group("op1")), int(both.group("a")))
        high = _age_bound(op_of(both.group("op2")), int(both.group("b")))
        atoms.append(_age_atom(both.start(), both.end(), low, high))
        return atoms
    ranged = re.search(
        rf"\b(?:age|aged)\b\s*(?:of\s*|between\s*|from\s*|:\s*)?(?P<a>\d{{1,3}})\s*(?:-|–|to|and)\s*(?P<b>\d{{1,3}}){years}",
        text,
        re.IGNORECASE,
    )
    if ranged:
        atoms.append(_age_atom(ranged.start(), ranged.end(), int(ranged.group("a")), int(ranged.group("b"))))
        return atoms
    patterns = (
        rf"\b(?:age|aged)\b\s*(?:of\s*|is\s*|:\s*|must be\s*)?{COMP}\s*{NUMBER}(?:{years})?(?:\s*(?:old|of age))?",
        rf"(?<![\w.]){COMP}\s*{NUMBER}{years}\s*(?:old|of age)\b",
        rf"\b{NUMBER}{years}(?:\s*(?:old|of age))?\s*(?:or|and)\s*(?P<older>older|above|over|greater|more)\b",
        rf"\bat least\s*{NUMBER}{years}\s*(?:old|of age)\b",
    )
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if not match:
            continue
        value = int(number(match.group("num")))
        op = ">=" if "older" in match.groupdict() and match.group("older") else None
        if op is None:
            op = op_of(match.group("op")) if "op" in match.groupdict() and match.group("op") else ">="
        if op == ">":
            return []  # "over 18"/"> 18" usually admits 18-year-olds in practice: ambiguous, left to review
        if op == ">=":
            atoms.append(_age_atom(match.start(), match.end(), _age_bound(op, value), None))
        else:
            atoms.append(_age_atom(match.start(), match.end(), None, _age_bound(op, value)))
        return atoms
    return atoms


def _age_bound(op: str, value: int) -> int:
    # Whole years, inclusive bounds: "> 20 years" admits 21-year-olds, "< 75" admits 74.
    return {">=": value, ">": value + 1, "<=": value, "<": value - 1}[op]


def _age_atom(start: int, end: int, low: int | None, high: int | None) -> Atom:
    body: dict[str, Any] = {}
    if low is not None:
        body["min"] = low
    if high is not None:
        body["max"] = high
    return Atom(start, end, "age", {"age": body}, "Age")


SCORE_RANGE = r"(?P<a>[0-5])\s*(?:-|–|to)\s*(?P<b>[0-5])"
SCORE_LIST = r"(?P<list>[0-5](?:\s*(?:,\s*or|,\s*and|,|or|and)\s*[0-5])+)"


def find_ecog(text: str) -> list[Atom]:
    mention = re.search(
        r"\b(ECOG|Eastern Cooperative Oncology Group|Zubrod|WHO performance status|WHO PS|WHO/ECOG)\b",
        text,
        re.IGNORECASE,
    )
    if not mention:
        return []
    tail = text[mention.end() :]
    lead = re.match(r"[^\d<>≤≥≦≧＜＞;]{0,60}?(?=[\d<>≤≥≦≧＜＞]|(?:" + _GE + "|" + _LE + "))", tail, re.IGNORECASE)
    if lead is None:
        return []
    at = mention.end() + lead.end()
    rest = text[at:]
    for pattern in (
        rf"{COMP}\s*(?P<v>[0-5])\b(?![.,]\d)",
        SCORE_RANGE + r"\b",
        SCORE_LIST + r"\b",
        r"(?P<one>[0-5])\b(?![.,]\d)",
    ):
        match = re.match(pattern, rest, re.IGNORECASE)
        if not match:
            continue
        groups = match.groupdict()
        if groups.get("op"):
            op, value = op_of(groups["op"]), int(groups["v"])
            atoms = [_score_atom("ecog", "ECOG performance status", "loinc:89247-1", op, value)]
        else:
            if groups.get("list"):
                values = sorted(int(v) for v in re.findall(r"[0-5]", groups["list"]))
                if values != list(range(values[0], values[-1] + 1)):
                    return []  # "0 or 2": not a range
                low, high = values[0], values[-1]
            elif groups.get("a") is not None:
                low, high = int(groups["a"]), int(groups["b"])
            else:
                low = high = int(groups["one"])
            if low > high:
                return []
            atoms = [_score_atom("ecog", "ECOG performance status", "loinc:89247-1", "<=", high)]
            if low > 0:
                atoms.append(_score_atom("ecog-min", "ECOG performance status", "loinc:89247-1", ">=", low))
        for atom in atoms:
            atom.start, atom.end = mention.start(), at + match.end()
        return atoms
    return []


def find_karnofsky(text: str) -> list[Atom]:
    match = re.search(
        rf"\b(Karnofsky(?: performance status| performance score| score| PS)?|KPS)(?:\s*\(KPS\))?[^\d<>≤≥;]{{0,25}}?"
        rf"(?:{COMP}\s*(?P<v>\d{{2,3}})\s*%?|(?P<a>\d{{2,3}})\s*%?\s*(?:-|–|to)\s*100\s*%?)",
        text,
        re.IGNORECASE,
    )
    if not match:
        return []
    if match.group("v"):
        op, value = op_of(match.group("op")), int(match.group("v"))
    else:
        op, value = ">=", int(match.group("a"))
    if not 0 <= value <= 100 or value % 10:
        return []
    atom = _score_atom("kps", "Karnofsky performance status", "loinc:89243-0", op, value)
    atom.start, atom.end = match.start(), match.end()
    return [atom]


def _score_atom(key: str, label: str, code: str, op: str, value: int) -> Atom:
    rule = {"observation": {"label": label, "codes": [code], "op": op, "value": value, "unit": "1"}}
    return Atom(0, 0, key, rule, label)


@dataclass(frozen=True)
class Analyte:
    key: str
    label: str
    pattern: str
    codes: tuple[str, ...]
    units: tuple[tuple[str, str, float, tuple[float, float]], ...]  # (regex, ucum, factor, plausible)
    heme: bool = False
    molar_mass: float | None = None


PER_MM3 = r"(?:cells\s*)?/\s*(?:mm\s*\^?\s*3|mm³|µl|μl|ul|cmm|cumm)"
TEN9_L = r"(?:x|×|\*|X)?\s*10\s*(?:\^|\*\*|e)?\s*(?:9|⁹)\s*/\s*l\b"
TEN3_UL = r"(?:x|×|\*|X)?\s*10\s*(?:\^|\*\*|e)?\s*(?:3|³)\s*(?:cells\s*)?/\s*(?:µl|μl|ul|mm\s*\^?\s*3|mm³)"
COUNT_UNITS = (
    (TEN9_L, "10*9/L", 1.0, (0.0, 0.0)),
    (TEN3_UL, "10*9/L", 1.0, (0.0, 0.0)),
    (PER_MM3, "10*9/L", 0.001, (0.0, 0.0)),
)
ANALYTES = (
    Analyte(
        "anc",
        "Absolute neutrophil count",
        r"absolute neutrophil count|absolute neutrophils?|neutrophil count|neutrophils|\bANC\b|\bAGC\b"
        r"|absolute granulocyte count",
        ("loinc:751-8", "loinc:26499-4"),
        tuple((u, c, f, (0.1, 20.0)) for u, c, f, _ in COUNT_UNITS),
        heme=True,
    ),
    Analyte(
        "plt",
        "Platelet count",
        r"platelet count|platelets?|\bPLT\b",
        ("loinc:777-3",),
        tuple((u, c, f, (10.0, 1000.0)) for u, c, f, _ in COUNT_UNITS),
        heme=True,
    ),
    Analyte(
        "hb",
        "Hemoglobin",
        r"ha?emoglobin(?!\s*a1c)|\bHg?b\b(?!a1c)",
        ("loinc:718-7",),
        (
            (r"g\s*/\s*dl\b", "g/dL", 1.0, (5.0, 20.0)),
            (r"g\s*/\s*l\b", "g/L", 1.0, (50.0, 200.0)),
            (r"mmol\s*/\s*l\b", "mmol/L", 1.0, (3.0, 12.0)),
        ),
        heme=True,
    ),
    Analyte(
        "tbil",
        "Total bilirubin",
        r"(?<!direct )(?<!conjugated )(?<!indirect )(?<!unconjugated )"
        r"(?:total (?:serum )?bilirubin|serum bilirubin|bilirubin|\bTBIL\b|\bT\.?\s?bili\b)",
        ("loinc:1975-2",),
        (
            (r"mg\s*/\s*dl\b", "mg/dL", 1.0, (0.1, 10.0)),
            (r"(?:µ|μ|u)mol\s*/\s*l\b", "umol/L", 1.0, (2.0, 170.0)),
        ),
    ),
    Analyte(
        "ast",
        "AST",
        r"aspartate (?:amino ?)?transaminase|aspartate amino ?transferase|\bAST\b|\bSGOT\b",
        ("loinc:1920-8",),
        ((r"(?:i?u|units?)\s*/\s*l\b", "U/L", 1.0, (5.0, 500.0)),),
    ),
    Analyte(
        "alt",
        "ALT",
        r"alanine (?:amino ?)?transaminase|alanine amino ?transferase|\bALT\b|\bSGPT\b",
        ("loinc:1742-6",),
        ((r"(?:i?u|units?)\s*/\s*l\b", "U/L", 1.0, (5.0, 500.0)),),
    ),
    Analyte(
        "crcl",
        "Creatinine clearance",
        r"creatinine clearance|\bCrCl\b|\bCLcr\b|\bCCr\b",
        ("loinc:2164-2", "loinc:35591-7"),
        (
            (
                r"(?:ml|milliliters?|millilitres?)\s*(?:/|per)\s*min(?:ute)?(?!\s*/\s*1[.,]73)(?!\s*per\s*1[.,]73)(?![\w/])",
                "mL/min",
                1.0,
                (10.0, 200.0),
            ),
        ),
    ),
    Analyte(
        "creat",
        "Serum creatinine",
        r"(?:serum |plasma )?creatinine(?! clearance)|\bSCr\b",
        ("loinc:2160-0",),
        (
            (r"mg\s*/\s*dl\b", "mg/dL", 1.0, (0.3, 5.0)),
            (r"(?:µ|μ|u)mol\s*/\s*l\b", "umol/L", 1.0, (30.0, 450.0)),
        ),
        molar_mass=113.12,
    ),
)
TRANSAMINASES = re.compile(r"\b(?:liver )?transaminases\b", re.IGNORECASE)
ULN = (
    r"(?:x|×|\*|X|times)?\s*(?:the\s+)?(?:institutional\s+|site\s+)?"
    r"(?:upper limits? of (?:the\s+)?normal(?: range)?|\bI?ULN\b|\bUNL\b)(?:\s*\((?:I?ULN|UNL)\))?"
)
SEPARATOR = r"(?:\s*\([^()<>≤≥\d]{1,12}\))?\s*(?:/|,|and/or|and|or|&)\s*"
LEAD = (
    r"(?:\s*[(\[][^()\[\]<>≤≥\d]{1,12}[)\]])?"
    r"(?:\s*(?:count|counts|level|levels|value|values|concentration|of|must be|should be|is|:))*\s*"
)


def find_labs(text: str, criterion: str) -> tuple[list[Atom], list[str]]:
    """Lab thresholds. Returns the atoms and the reasons some recognised thresholds were refused."""
    names = []
    for analyte in ANALYTES:
        for found in re.finditer(analyte.pattern, text, re.IGNORECASE):
            names.append((found.start(), found.end(), [analyte]))
    for found in TRANSAMINASES.finditer(text):
        names.append((found.start(), found.end(), [a for a in ANALYTES if a.key in ("ast", "alt")]))
    names.sort(key=lambda n: (n[0], -n[1]))
    # Drop names nested in a longer one ("creatinine" inside "creatinine clearance").
    kept: list[tuple[int, int, list[Analyte]]] = []
    for name in names:
        if kept and name[0] < kept[-1][1]:
            continue
        opened, closed = text.rfind("(", 0, name[0]), text.rfind(")", 0, name[0])
        if kept and opened > closed and opened >= kept[-1][1]:
            continue  # an alias in brackets: "AST (SGOT)", "aspartate aminotransferase (AST or SGOT)"
        kept.append(name)
    # Merge "ALT/AST", "AST and ALT": one threshold for both.
    groups: list[tuple[int, int, list[Analyte]]] = []
    for name in kept:
        if groups and re.fullmatch(SEPARATOR, text[groups[-1][1] : name[0]], re.IGNORECASE):
            start, _, members = groups[-1]
            groups[-1] = (start, name[1], members + name[2])
        else:
            groups.append(name)
    atoms: list[Atom] = []
    refused: list[str] = []
    cockcroft = bool(re.search(r"cockcroft|\bC-?G\b", criterion, re.IGNORECASE))
    for start, end, members in groups:
        tail = text[end:]
        m = re.match(rf"{LEAD}{COMP}\s*{NUMBER}?\s*", tail, re.IGNORECASE)
        if not m:
            continue
        op = op_of(m.group("op"))
        value_text = m.group("num")
        after = tail[m.end() :]
        uln = re.match(ULN, after, re.IGNORECASE)
        if uln and (value_text or re.match(r"\s*(?:the\s+)?(?:I?ULN|UNL|upper limit)", after, re.IGNORECASE)):
            multiple = number(value_text) if value_text else 1.0
            if not 0.5 <= multiple <= 10:
                refused.append("implausible multiple of ULN")
                continue
            if any(a.key in ("crcl",) for a in members) or any(a.heme for a in members):
                refused.append("ULN multiple on an analyte that is not reported that way")
                continue
            finish = end + m.end() + uln.end()
            for analyte in members:
                body = {"label": analyte.label, "codes": list(analyte.codes), "op": op, "uln": multiple}
                if analyte.molar_mass:
                    body["molar_mass"] = analyte.molar_mass
                atoms.append(Atom(start, finish, analyte.key, {"observation": body}, analyte.label))
            continue
        if not value_text:
            continue
        value = number(value_text)
        for analyte in members:
            if analyte.key == "crcl" and re.search(r"1[.,]73|\beGFR\b|CKD-EPI|MDRD", criterion, re.IGNORECASE):
                refused.append("a clearance normalised to 1.73 m2 (eGFR) is not the creatinine clearance")
                continue
            unit = None
            for unit_pattern, ucum, factor, (low, high) in analyte.units:
                um = re.match(rf"\s*{unit_pattern}", after, re.IGNORECASE)
                if um:
                    scaled = round(value * factor, 6)
                    if not low <= scaled <= high:
                        refused.append(f"implausible {analyte.label} value for its unit")
                        break
                    unit = (ucum, scaled, um.end())
                    break
            if unit is None:
                continue
            ucum, scaled, unit_end = unit
            finish = end + m.end() + unit_end
            if analyte.key == "crcl" and cockcroft:
                rule: Rule = {"creatinine_clearance": {"op": op, "value": scaled}}
            else:
                body = {
                    "label": analyte.label,
                    "codes": list(analyte.codes),
                    "op": op,
                    "value": scaled,
                    "unit": ucum,
                }
                if analyte.molar_mass:
                    body["molar_mass"] = analyte.molar_mass
                rule = {"observation": body}
            atoms.append(Atom(start, finish, analyte.key, rule, analyte.label))
    return atoms, refused


PREGNANT = re.compile(r"\bpregnant\b|\bpregnancy\b(?!\s*test)", re.IGNORECASE)
BREASTFEEDING = re.compile(
    r"\bbreast[- ]?feeding\b|\bbreast[- ]?feed\b|\blactating\b|\blactation\b|\bnursing\b", re.IGNORECASE
)
POSITIVE_PREGNANCY_TEST = re.compile(r"\bpositive (?:serum |urine |urinary |blood )?pregnancy test\b", re.IGNORECASE)


PREGNANCY_FINDINGS: tuple[tuple[re.Pattern[str], str, str, Rule], ...] = (
    (
        PREGNANT,
        "pregnant",
        "Pregnancy",
        {
            "condition": {
                "label": "Pregnancy",
                "codes": ["snomed:77386006", "icd10cm:Z33.1"],
                "names": ["pregnant", "pregnancy"],
            }
        },
    ),
    (
        BREASTFEEDING,
        "breastfeeding",
        "Breastfeeding",
        {
            "condition": {
                "label": "Breastfeeding",
                "codes": ["snomed:169750002", "snomed:225604004"],
                "names": ["breastfeeding", "breast feeding", "lactating"],
            }
        },
    ),
    (
        POSITIVE_PREGNANCY_TEST,
        "hcg",
        "Positive pregnancy test",
        # A positive hCG counts for 28 days: older results say nothing about today.
        {
            "test": {
                "label": "Pregnancy test (hCG)",
                "codes": ["loinc:2106-3", "loinc:2118-8"],
                "result": "positive",
                "window_days": 28,
            }
        },
    ),
)


def find_pregnancy(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    for pattern, key, label, rule in PREGNANCY_FINDINGS:
        found = pattern.search(text)
        if found:
            atoms.append(Atom(found.start(), found.end(), key, copy.deepcopy(rule), label))
    return atoms


HIV = re.compile(
    r"\bHIV(?:[- ]?1)?\b(?:\s*(?:1/2|1 and 2))?|\bhuman immunodeficiency virus(?:\s*\(HIV(?:-1)?\))?",
    re.IGNORECASE,
)
HBV = re.compile(r"\bhepatitis B(?: virus)?(?:\s*\(HBV\))?|\bHBV\b|\bhep(?:atitis)?\.? B\b", re.IGNORECASE)
HCV = re.compile(
    r"\bhepatitis C(?: virus)?(?:\s*\(HCV\))?|\bHCV\b"
    r"|(?<=[Bb] or )C\b(?:\s*virus)?|(?<=[Bb] and )C\b|(?<=[Bb] and/or )C\b|(?<=[Bb], or )C\b",
    re.IGNORECASE,
)
VIRUS_CODES = {
    "hiv": (
        "HIV infection",
        ["snomed:86406008", "icd10cm:B20", "icd10cm:Z21"],
        ["hiv", "human immunodeficiency virus"],
    ),
    "hbv": (
        "Hepatitis B",
        [
            "snomed:66071002",
            "snomed:61977001",
            "icd10cm:B16",
            "icd10cm:B18.0",
            "icd10cm:B18.1",
            "icd10cm:B19.1",
        ],
        ["hepatitis b"],
    ),
    "hcv": (
        "Hepatitis C",
        ["snomed:50711007", "snomed:128302006", "icd10cm:B17.1", "icd10cm:B18.2", "icd10cm:B19.2"],
        ["hepatitis c"],
    ),
}


def find_viruses(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    history = bool(re.search(r"\bhistory\b|\bprevious\b|\bprior\b", text, re.IGNORECASE))
    for key, pattern in (("hiv", HIV), ("hbv", HBV), ("hcv", HCV)):
        m = pattern.search(text)
        if not m:
            continue
        label, codes, names = VIRUS_CODES[key]
        body: dict[str, Any] = {"label": label, "codes": codes, "names": names}
        if history or key == "hiv":  # HIV infection is lifelong: a record of it counts whatever its status
            body["history"] = True
        atoms.append(Atom(m.start(), m.end(), key, {"condition": body}, label))
    return atoms


BRAIN_METS = re.compile(
    r"\b(?:brain|cerebral|intracranial)\s+(?:metastases|metastasis|mets|metastatic disease|metastatic lesions?)\b"
    r"|\bmetasta(?:ses|sis|tic disease) (?:to|in) the brain\b",
    re.IGNORECASE,
)


CNS_METS = re.compile(
    r"\b(?:CNS|central nervous(?: system)?)(?:\s*\(CNS\))?\s+(?:metastases|metastasis|metastatic disease)\b",
    re.IGNORECASE,
)


METASTASES = (
    # CNS covers brain, meninges and spinal cord: ICD-10-CM C79.3 (brain, meninges) and C79.4.
    (CNS_METS, "cns-mets", "CNS metastases", ["snomed:94225005", "icd10cm:C79.3", "icd10cm:C79.4"]),
    (BRAIN_METS, "brain-mets", "Brain metastases", ["snomed:94225005", "icd10cm:C79.31"]),
)


def find_brain_metastases(text: str) -> list[Atom]:
    for pattern, key, label, codes in METASTASES:
        found = pattern.search(text)
        if not found:
            continue
        body: dict[str, Any] = {"label": label, "codes": list(codes), "names": ["brain metastases", "brain metastasis"]}
        if re.search(r"\bhistory\b|\bprevious\b|\bprior\b", text, re.IGNORECASE):
            body["history"] = True  # "history of brain metastases": treated, resolved ones count too
        return [Atom(found.start(), found.end(), key, {"condition": body}, label)]
    return []


LIFE_EXPECTANCY = re.compile(
    r"\b(?P<minimum>minimum |minimal )?(?:estimated |expected |anticipated |predicted )?"
    r"(?:life expectancy|survival expectancy|expected survival(?: duration| time)?|estimated survival(?: time)?"
    r"|predicted survival)\b",
    re.IGNORECASE,
)
TIME_UNITS = {"week": "wk", "wk": "wk", "month": "mo", "mo": "mo", "year": "a", "yr": "a"}
INVESTIGATOR_JUDGEMENT = re.compile(
    r"\b(?:in|per|according to) (?:the )?(?:opinion|judge?ment|discretion|assessment) of (?:the )?"
    r"(?:treating |principal )?investigators?"
    r"|\b(?:in|per) (?:the )?investigator'?s'? (?:opinion|judge?ment)"
    r"|\bas (?:judged|assessed|estimated|determined) by (?:the )?(?:treating )?investigators?",
    re.IGNORECASE,
)


def find_life_expectancy(text: str) -> list[Atom]:
    """Life expectancy as the clinician's estimate (LOINC 75327-7, as in the catalog's mappings).
    Only with an explicit bound ("≥ 12 weeks", "at least", "more than", "minimum ... of", "or more")."""
    mention = LIFE_EXPECTANCY.search(text)
    if not mention:
        return []
    tail = re.match(
        rf"[^\d<>≤≥;.]{{0,20}}?(?:{COMP}\s*)?(?P<num>\d{{1,3}}(?:\.\d)?)\s*(?P<unit>weeks?|wks?|months?|mos?|years?|yrs?)\b"
        r"(?P<more>\s*or (?:more|longer|greater|above))?",
        text[mention.end() :],
        re.IGNORECASE,
    )
    if not tail:
        return []
    if tail.group("op"):
        op = op_of(tail.group("op"))
    elif mention.group("minimum") or tail.group("more"):
        op = ">="
    else:
        return []  # "life expectancy of 3 months" without a bound: left to review
    unit = TIME_UNITS[re.sub(r"s$", "", tail.group("unit").lower())]
    value = float(tail.group("num"))
    body = {
        "label": "Life expectancy",
        "codes": ["loinc:75327-7"],
        "op": op,
        "value": int(value) if value.is_integer() else value,
        "unit": unit,
    }
    return [
        Atom(mention.start(), mention.end() + tail.end(), "life-expectancy", {"observation": body}, "Life expectancy")
    ]


# --- the decision ------------------------------------------------------------------------------

INCLUSION_FINDERS: tuple[Callable[[str], list[Atom]], ...] = (find_age, find_ecog, find_karnofsky, find_life_expectancy)
EXCLUSION_FINDERS: tuple[Callable[[str], list[Atom]], ...] = (
    find_ecog,
    find_karnofsky,
    find_life_expectancy,
    find_pregnancy,
    find_viruses,
    find_brain_metastases,
)


def structure(text: str, exclusion: bool, context_reason: str | None = None) -> Structured:
    """Structure one criterion. `context_reason` (cohort heading, OR sibling...) forbids encoding.

    The rule is a mapping rule (`{"observation": {...}}`) or a combination whose children are
    proto-criteria `{"key", "text", <rule key>: ...}`: the caller gives them ids.
    """
    if context_reason:
        return Structured(None, context_reason)
    finders = EXCLUSION_FINDERS if exclusion else INCLUSION_FINDERS
    atoms = [a for finder in finders for a in finder(text)]
    lab_atoms, refused = find_labs(text, text)
    atoms = _without_overlaps(atoms + lab_atoms)
    if not atoms:
        if SCREENING.search(TIME_OF_CONSENT.sub(" ", text)) and not NUMERIC_THRESHOLD.search(text):
            return Structured(None, screening=True)
        return Structured(None, refused[0] if refused else "free text: no pattern the importer encodes safely")
    judged = TIME_OF_CONSENT.sub(" ", text)
    if all(a.key == "life-expectancy" for a in atoms):
        judged = INVESTIGATOR_JUDGEMENT.sub(" ", judged)  # a life expectancy is the clinician's estimate anyway
    if SCREENING.search(judged):
        return Structured(None, "mixes a screening confirmation with data: review by hand")
    if refused:
        return Structured(None, refused[0])
    blocked = _blocked(text, exclusion)
    if blocked is None or (exclusion and blocked):
        return Structured(None, "the wording has a condition, exception or support clause the importer does not encode")
    window = _window(text)
    if window:
        for atom in atoms:
            if "observation" in atom.rule:
                atom.rule["observation"]["window_days"] = window
    if exclusion:
        return _exclusion(text, atoms)
    return _inclusion(text, [a for a in atoms if a.key.split("-")[0] not in blocked], bool(blocked))


LIST_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and/)?or\b|\band/or\b|\bor\b|,)\s*", re.IGNORECASE)
# Words that qualify a finding: a list item made of them narrows its neighbour, it is no alternative.
QUALIFYING = re.compile(
    r"\b(untreated|treated|symptomatic|asymptomatic|active|inactive|stable|unstable|progressive|progressing|"
    r"uncontrolled|controlled|requiring|required|clinically|significant|severe|mild|moderate|new|newly|"
    r"detectable|undetectable|unless|except|allowed|permitted|eligible)\b",
    re.IGNORECASE,
)


def _exclusion(text: str, atoms: list[Atom]) -> Structured:
    """Met when any recognised finding is present. The text is read as a list ("A, B or C"): an
    item holding a finding must say nothing else; an item without one (at least two words, none
    qualifying) becomes a not-computable alternative, so `any_of` is met only on a finding."""
    virus_only = all(a.key in VIRUS_CODES for a in atoms)
    segments = _segments(text)
    rest: list[str] = []
    for start, end in segments:
        inside = [a for a in atoms if start <= a.start < end]
        segment = text[start:end]
        local = [Atom(a.start - start, a.end - start, a.key, a.rule, a.label) for a in inside]
        words = _leftover(segment, local)
        if virus_only:
            # The condition rule counts active diagnoses: "active"/"chronic" infection says the same.
            words = [w for w in words if w.lower() not in ("active", "chronic", "acute", "seropositive")]
        if inside and words:
            return Structured(None, f"exclusion wording beyond the encoded findings ({_short(words)})")
        if not inside and words:
            if all(QUALIFYING.fullmatch(w) for w in words):
                return Structured(None, f"exclusion wording that may qualify the findings ({_short(words)})")
            rest.extend(words)
    connectors = [_connector(text[a.end : b.start]) for a, b in zip(atoms, atoms[1:], strict=False)]
    # "Pregnant women and lactating females": both groups are excluded, the 'and' lists them.
    pregnancy_only = all(a.key in ("pregnant", "breastfeeding", "hcg") for a in atoms)
    if ("and" in connectors and not pregnancy_only) or "?" in connectors:
        return Structured(None, "findings joined by 'and' in an exclusion: meaning unclear")
    children = [_child(a, text) for a in atoms]
    if rest:
        children.append(
            {
                "key": "rest",
                "text": text,
                "not_computable": f"the other findings of this list are not encoded ({_short(rest)})",
            }
        )
    return _combine("any_of", children)


def _segments(text: str) -> list[tuple[int, int]]:
    """List items of an exclusion ("A, B, or C"); separators inside brackets do not split."""
    depth, level = [], 0
    for char in text:
        if char in "([（":
            level += 1
        depth.append(level)
        if char in ")]）":
            level = max(0, level - 1)
    out: list[tuple[int, int]] = []
    start = 0
    for m in LIST_SEPARATOR.finditer(text):
        if m.start() == m.end() or depth[m.start()] > 0:
            continue
        if m.start() > start:
            out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    return [(a, b) for a, b in out if b > a]


def _inclusion(text: str, atoms: list[Atom], dropped: bool) -> Structured:
    """A conjunction of clauses: each clause's thresholds (or its 'or' alternatives) are necessary;
    what is not encoded becomes one not-computable child, so `all_of` can only fail on data."""
    if not atoms:
        return Structured(None, "the wording has a condition, exception or support clause the importer does not encode")
    children: list[dict[str, Any]] = []
    rest: list[str] = ["thresholds with a condition or exception"] if dropped else []
    rest_words: list[str] = ["(qualified", "thresholds)"] if dropped else []
    for start, end in _clauses(text):
        inside = [a for a in atoms if start <= a.start < end]
        clause = text[start:end]
        if not inside:
            if _leftover(clause, [], sex_matters=True):
                rest.append(clause.strip())
                rest_words.extend(_leftover(clause, [], sex_matters=True))
            continue
        local = [Atom(a.start - start, a.end - start, a.key, a.rule, a.label) for a in inside]
        connectors = [_connector(clause[a.end : b.start]) for a, b in zip(local, local[1:], strict=False)]
        leftover = _leftover(clause, local, sex_matters=True)
        outside = clause[: local[0].start] + " " + clause[local[-1].end :]
        if connectors and all(c == "or" for c in connectors):
            has_or = bool(re.search(r"\bor\b", SEXES.sub(" ", outside), re.IGNORECASE))
            if leftover or has_or:
                rest.append(clause.strip())
                rest_words.extend(leftover or ["or"])
                continue
            children.append(
                {
                    "key": local[0].key + "-or",
                    "text": clause.strip(" ,;:.；"),
                    "any_of": [_child(a, clause) for a in local],
                }
            )
            continue
        has_or = bool(re.search(r"\bor\b", _remainder(clause, local), re.IGNORECASE))
        if any(c in ("or", "?") for c in connectors) or has_or:
            rest.append(clause.strip())
            rest_words.extend(leftover or ["or"])
            continue
        children.extend(_child(a, clause) for a in local)
        if leftover:
            rest.append(clause.strip())
            rest_words.extend(leftover)
    if not children:
        return Structured(None, "the thresholds are alternatives mixed with other wording")
    if rest:
        words = rest_words
        children.append(
            {
                "key": "rest",
                "text": text,
                "not_computable": f"the rest of this criterion is not encoded ({_short(words)})",
            }
        )
    return _combine("all_of", children)


def _combine(combination: str, children: list[dict[str, Any]]) -> Structured:
    if len(children) == 1:
        only = {k: v for k, v in children[0].items() if k not in ("key", "text")}
        return Structured(only)
    return Structured({combination: children}, children=children)


TRIGGERS = (
    (re.compile(r"gilbert", re.IGNORECASE), {"tbil"}),
    (re.compile(r"liver|hepatic|biliary|bile", re.IGNORECASE), {"ast", "alt", "tbil"}),
    (
        re.compile(
            r"marrow|transfus|growth factor|g-?csf|filgrastim|colony|erythropoie|\bepo\b|support|stimulat",
            re.IGNORECASE,
        ),
        {"anc", "plt", "hb"},
    ),
)
NAMED = (
    ("age", re.compile(r"\b(age|aged|years? old|years of age)\b", re.IGNORECASE)),
    ("ecog", re.compile(r"\b(ECOG|Eastern Cooperative|Zubrod|performance status)\b", re.IGNORECASE)),
    ("kps", re.compile(r"\b(Karnofsky|KPS|Lansky)\b", re.IGNORECASE)),
)


GLOBAL_QUALIFIER = re.compile(
    r"\b(regardless|above|these|this requirement|thresholds?|requirements?|criteri(a|on))\b",
    re.IGNORECASE,
)


def _blocked(text: str, exclusion: bool) -> set[str] | None:
    """Keys whose thresholds a conditional/support clause qualifies; None when it could be any."""
    blocked: set[str] = set()
    for start, end in _clauses(text):
        clause = text[start:end]
        if not (CONDITIONAL.search(clause) or SUPPORT.search(clause)):
            continue
        affected = {a.key for a in ANALYTES if re.search(a.pattern, clause, re.IGNORECASE)}
        if TRANSAMINASES.search(clause):
            affected |= {"ast", "alt"}
        affected |= {key for key, pattern in NAMED if pattern.search(clause)}
        for trigger, keys in TRIGGERS:
            if trigger.search(clause):
                affected |= keys
        if not affected and (exclusion or GLOBAL_QUALIFIER.search(clause)):
            return None
        blocked |= affected
    return blocked


CLAUSE_BREAK = re.compile(r"[;；\n]+|(?<![\d.])\.\s+(?=\S)|(?<=\S)\s*(?=\b\d{1,2}\)(?!\d))|(?<=[.;；])\s*\d{1,2}\)")


def _clauses(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = 0
    for m in CLAUSE_BREAK.finditer(text):
        if m.start() > start:
            out.append((start, m.start()))
        start = max(start, m.end())
    if start < len(text):
        out.append((start, len(text)))
    return out


def _remainder(text: str, atoms: list[Atom]) -> str:
    rest = text
    for atom in sorted(atoms, key=lambda a: a.start, reverse=True):
        rest = rest[: atom.start] + " " + rest[atom.end :]
    return SEXES.sub(" ", rest)


def _child(atom: Atom, text: str) -> dict[str, Any]:
    return {
        "key": atom.key,
        "text": text[atom.start : atom.end].strip(" ,;:.") or atom.label,
        **atom.rule,
    }


def _without_overlaps(atoms: list[Atom]) -> list[Atom]:
    atoms = sorted(atoms, key=lambda a: (a.start, -(a.end - a.start)))
    out: list[Atom] = []
    for atom in atoms:
        if out and atom.start < out[-1].end and not (atom.start == out[-1].start and atom.end == out[-1].end):
            continue
        out.append(atom)
    return out


def _connector(between: str) -> str:
    words = re.findall(r"[a-z/]+", between.lower())
    if "or" in words and "and" not in words:
        return "or"
    if "and" in words and "or" not in words:
        return "and"
    if "and" in words and "or" in words:
        return "?"
    return ","


# "Adequate bone marrow function as defined by:" heads a list of thresholds; said on its own
# ("... and adequate organ function") it is a requirement of its own, which must stay text.
ORGAN_HEADER = re.compile(
    r"^\s*(?:adequate|acceptable|sufficient)\s[^:;]{0,60}?(?:function|reserve|parameters|requirements)\b"
    r"[^:;]{0,25}?(?::|：|\bdefined (?:as|by)\b:?|\bas follows\b:?)",
    re.IGNORECASE,
)
SEX_WORDS = frozenset({"male", "males", "female", "females", "women", "woman", "men", "man"})


def _leftover(text: str, atoms: list[Atom], sex_matters: bool = False) -> list[str]:
    """Words not explained by the atoms. In an inclusion a sex ("Woman ≥ 18 years old") is a
    requirement of its own, so `sex_matters` keeps those words (the rest becomes not computable)."""
    rest = text
    for atom in sorted(atoms, key=lambda a: a.start, reverse=True):
        rest = rest[: atom.start] + " " + rest[atom.end :]
    rest = re.sub(r"\bbecause\b.*$", " ", rest, flags=re.IGNORECASE | re.DOTALL)
    rest = SEXES.sub(" ", TIME_OF_CONSENT.sub(" ", rest))
    rest = re.sub(r"\btested positive (?:for|to)\b", " ", rest, flags=re.IGNORECASE)
    rest = INVESTIGATOR_JUDGEMENT.sub(" ", rest)
    rest = ORGAN_HEADER.sub(" ", rest)
    rest = WITHIN_DAYS.sub(" ", rest)
    words = re.findall(r"[A-Za-z][A-Za-z'/-]*", rest)
    return [w for w in words if len(w) > 1 and (w.lower() not in FILLER or (sex_matters and w.lower() in SEX_WORDS))]


def _window(text: str) -> int | None:
    found = {int(m.group(1)) for m in WITHIN_DAYS.finditer(text)}
    return found.pop() if len(found) == 1 else None


def _short(words: list[str]) -> str:
    return " ".join(words[:8]) + (" ..." if len(words) > 8 else "")

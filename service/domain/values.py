"""Reading a value out of the many shapes real records use: numbers, answer codes, strings, stages.

Rule: a reading is returned only when it is unambiguous; anything doubtful reads as None, which the
evaluator reports as unknown. Implausible scores (an ECOG of -1) are doubtful.
"""

from __future__ import annotations

import re

from service.domain import units
from service.domain.criteria import LOINC, SNOMED, CodeSet
from service.domain.facts import ObservationFact, Quantity, Value

# LOINC answer codes of the ECOG performance status (LL529-9) and of the NYHA functional class
# (88020-3, class I-IV): both are charted as answers far more often than as numbers.
ECOG_ANSWERS = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4, "LA9627-6": 5}
NYHA_ANSWERS = {"LA28404-4": 1, "LA28405-1": 2, "LA28406-9": 3, "LA28407-7": 4}
ORDINAL_ANSWERS = ECOG_ANSWERS | NYHA_ANSWERS
# Plausible ranges of the performance scores; values outside are data errors, not results.
SCORE_RANGES = {"89247-1": (0, 5), "89243-0": (0, 100), "C38144": (0, 100)}
SCORE_UNITS = frozenset({"1", "%", "{score}", "", "score", "{ratio}"})

# Answer codes read as a positive / negative result (SNOMED, LOINC answers, v3 interpretation);
# pregnancy status answers too: pregnant (77386006) reads positive, not pregnant (60001007) negative;
# a breastfeeding status (LOINC 63895-7) answered "Breastfeeding (mother)" (413712001) reads positive.
POSITIVE_CODES = frozenset(
    {
        "10828004",
        "52101004",
        "260373001",
        "LA6576-8",
        "LA9633-4",
        "LA11882-0",
        "POS",
        "DET",
        "77386006",
        "LA15173-0",
        "413712001",
    }
)
NEGATIVE_CODES = frozenset(
    {"260385009", "2667000", "260415000", "LA6577-6", "LA9634-2", "LA11883-8", "NEG", "ND", "60001007", "LA26683-5"}
)
# Viral loads (HBV DNA, HCV RNA, HIV-1 RNA): a measured amount means detected; "<" a limit means not. The
# HIV-1 RNA codes include 62469-2 ([Units/volume]) and the log10 ones 29539-4 / 29541-0 ({log_copies}/mL):
# detection reads the same on either scale (a log value of 0 is 1 copy/mL, below every assay's limit).
# HCV RNA 38180-6 is the log10 viral load ([Log units/volume]; fifth-round review F15): the same reading.
VIRAL_LOAD_CODES = frozenset(
    {"42595-9", "29615-2", "11011-4", "20416-4", "20447-9", "10351-5", "25836-8", "62469-2", "29539-4", "29541-0",
     "38180-6"}
)
# Blood cultures (LOINC 600-7 "Bacteria identified in Blood by Culture") report the organism, not a word
# such as "positive": a coded organism or an organism named in the text is a positive culture; "no growth",
# "sterile", "not detected" are negative; a pending, cancelled or contaminated one reads None (fifth-round
# review F10). "Gram-negative rods" and "coagulase-negative staphylococci" are organisms, not negatives.
CULTURE_CODES = frozenset({"600-7"})
CULTURE_NEGATIVE = re.compile(
    r"^\s*(?:negative|neg)\b|\bno (?:growth|organisms?|bacteria|bacterial growth|isolates?)\b|\bsterile\b"
    r"|\bnot detected\b|\bnone isolated\b|\bnegative (?:for|culture|at|after)\b|\bculture negative\b"
)
CULTURE_UNREAD = re.compile(r"\bcontamina|\bpending\b|\bin progress\b|\bcancel|\bnot performed\b|\brejected\b")
# Quantitative serum hCG (LOINC 19080-1 hCG, 21198-7 beta-hCG, [Units/volume]; 2119-6 hCG [Moles/volume],
# which sites also send with IU units): most serum pregnancy tests are reported as a number. Below
# 5 m[IU]/mL is negative, 25 or more positive (the usual cut-offs of qualitative tests); in between is
# equivocal (early pregnancy or assay noise) and a unit not convertible to m[IU]/mL (pmol/L) reads as None.
HCG_QUANTITY_CODES = frozenset({"19080-1", "21198-7", "2119-6"})
HCG_NEGATIVE_BELOW = 5.0
HCG_POSITIVE_FROM = 25.0
# A result text is read only when it says one thing. Negative wordings are found first and blanked, so
# "not detected", "non-reactive" and "No HIV-1/HIV-2 antibodies or p24 antigen detected" do not also read
# as "detected" / "reactive"; a text that still holds a positive word after that ("Positive (previously
# negative)", "Reactive; negative control valid") says both and reads as None: unknown, never a guess.
# A variant report says "mutation identified", "BRAF mutated", "BRAF-mutant" as often as "detected"; "no
# mutation identified", "not mutated", "unmutated" are negative; an ISH result "amplified" / "not amplified"
# likewise. A variant of uncertain significance is no finding either way.
NEGATIVE_WORDS = re.compile(
    r"\b(?:negative|undetected|non[- ]?(?:reactive|detected|mutated|mutant|amplified)|unmutated|unamplified|absent"
    r"|neg|wild[- ]?type|(?:no|not|none)\b[^.;,()]{0,60}?\b(?:detected|reactive|present|seen|identified|found|mutated"
    r"|amplified))\b"
)
POSITIVE_WORDS = re.compile(r"\b(positive|detected|reactive|present|pos|identified|mutated|mutant|amplified)\b")
INDETERMINATE_WORDS = re.compile(
    r"\b(indeterminate|equivocal|inconclusive|borderline|unknown|uncertain significance|vus)\b"
)
_SCORE_PREFIX = r"(?:ecog|kps|karnofsky|lansky|score)?\s*[:=]?\s*"
NUMBER = re.compile(rf"^\s*{_SCORE_PREFIX}(\d+(?:\.\d+)?)\s*(%?)")
# A second number after the first ("1-2", "1 to 2", "1/2", "1 or 2", "70-80%") makes the text a range: the
# clinician could not decide between the two, so it is never read as its first number.
RANGE_END = re.compile(rf"\s*(?:-|–|—|/|to|or)\s*{_SCORE_PREFIX}(\d+(?:\.\d+)?)\s*(%?)")
# A viral load written as text: "Detected, <20 IU/mL (below limit of quantification)", "350 copies/mL": the
# amount, its comparator and unit. Detected below the limit of quantification is below that limit (so below
# a protocol threshold above it) and still detected (qualitative_value reads the words).
VIRAL_LOAD_TEXT = re.compile(
    r"([<>≤≥]=?)?\s*(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(\[?iu\]?|\{?copies\}?)\s*/\s*ml\b",
    re.IGNORECASE,
)
_VIRAL_LOAD_UNITS = {"iu": "[IU]/mL", "[iu]": "[IU]/mL", "copies": "{copies}/mL", "{copies}": "{copies}/mL"}
_COMPARATORS = {"<": "<", "<=": "<=", "≤": "<=", ">": ">", ">=": ">=", "≥": ">="}
# HER2 immunohistochemistry is reported as a score (ASCO/CAP): 0 and 1+ negative, 2+ equivocal (the ISH
# decides), 3+ positive. Read only on a HER2 IHC result: LOINC 48676-1 / 85319-2 / 18474-7, or a code text
# naming HER2 (ERBB2) and an immunostain.
HER2_IHC_CODES = frozenset({"48676-1", "85319-2", "18474-7"})
_HER2_TEXT = re.compile(r"\b(?:her-?2|erbb2|her2/neu)\b")
_IHC_TEXT = re.compile(r"\b(?:ihc|immun\w*)")
_IHC_SCORE = re.compile(r"(?<![\w.+-])([0-3])(?!\d|[.,]\d|\s*%)\s*(\+|plus\b)?")
_HER2_SCORE_READING = {"0": "negative", "1": "negative", "2": None, "3": "positive"}

ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "4": "IV"}
STAGE_CODE = re.compile(r"^[cpy]?(0|[1-4]|IV|I{1,3})([A-D])?\d?$", re.IGNORECASE)
STAGE_TEXT = re.compile(r"\bstage\s+(0|[1-4]|IV|I{1,3})\s*([A-D])?(?![a-z])", re.IGNORECASE)

# HGNC identifiers of the genes mappings name, for variant reports coded by HGNC id only.
HGNC_IDS = {"BRAF": "HGNC:1097", "EGFR": "HGNC:3236", "ERBB2": "HGNC:3430", "KRAS": "HGNC:6407"}


# Components of a pulse-oximetry reading (US Core Pulse Oximetry) that record the oxygen given while it
# was measured: inhaled oxygen flow rate (3151-8, L/min) and inhaled oxygen concentration (3150-0, %).
# Room air is a flow of 0 or a concentration of at most 21 %.
OXYGEN_FLOW = "3151-8"
OXYGEN_CONCENTRATION = "3150-0"
ROOM_AIR_OXYGEN_PERCENT = 21.0


def supplemental_oxygen(fact: ObservationFact) -> str | None:
    """How the observation's own components say oxygen was given ("3 L/min", "40 %"), None when they
    record none or room air. A component whose amount cannot be read counts as oxygen given: the
    saturation then cannot be taken as a room-air value."""
    for component in fact.components:
        loinc = {code for system, code in component.codes if system == LOINC}
        if not loinc & {OXYGEN_FLOW, OXYGEN_CONCENTRATION}:
            continue
        amount = _number(component.value)
        if OXYGEN_FLOW in loinc:
            if amount is None or amount.value > 0:
                return "an inhaled oxygen flow" if amount is None else f"{_quantity_text(amount)} of oxygen"
        else:
            percent = None if amount is None else units.convert(amount.value, amount.unit or "%", "%")
            if percent is None or percent > ROOM_AIR_OXYGEN_PERCENT:
                return "an inhaled oxygen concentration" if amount is None else f"{_quantity_text(amount)} oxygen"
    return None


def _quantity_text(quantity: Quantity) -> str:
    return f"{quantity.value:g} {quantity.unit}".strip()


def numeric_value(fact: ObservationFact, codes: CodeSet, ranges: bool = False) -> Quantity | None:
    """The number a numeric criterion compares: from the observation, or from its matching component (an
    ECOG panel coded 89247-1 may carry its score only in a component of the same code). A range ("1-2")
    is returned (with `high`) only to a caller that compares both ends (`ranges`); to others it is None."""
    values = [fact.value] if any(codes.matches_coding(s, c) for s, c in fact.codes) else []
    values += [comp.value for comp in fact.components if any(codes.matches_coding(s, c) for s, c in comp.codes)]
    quantity = next((q for q in map(_number, values) if q is not None), None)
    if quantity is None and fact.value.text and any(code in VIRAL_LOAD_CODES for _, code in fact.codes):
        quantity = viral_load_text(fact.value.text)
    if quantity is None or (quantity.high is not None and not ranges):
        return None
    for _, code in fact.codes:
        if code in SCORE_RANGES:
            low, high = SCORE_RANGES[code]
            if not all(low <= end <= high for end in (quantity.value, quantity.high or quantity.value)):
                return None
    return quantity


def viral_load_text(text: str) -> Quantity | None:
    """The one amount a viral-load text gives ("Detected, <20 IU/mL" → < 20 [IU]/mL); None when it gives
    none or several."""
    found = VIRAL_LOAD_TEXT.findall(text)
    if len(found) != 1:
        return None
    comparator, amount, unit = found[0]
    return Quantity(float(amount.replace(",", "")), _VIRAL_LOAD_UNITS[unit.lower()], _COMPARATORS.get(comparator))


def _number(value: Value) -> Quantity | None:
    if value.quantity is not None:
        return value.quantity
    if value.integer is not None:
        return Quantity(float(value.integer), "1")
    for _, code in value.concept:
        if code in ORDINAL_ANSWERS:
            return Quantity(float(ORDINAL_ANSWERS[code]), "1")
    if value.text:
        text = value.text.lower()
        match = NUMBER.match(text)
        if match and not re.match(r"^\s*[<>≤≥]", value.text):
            unit = "%" if match.group(2) else "1"
            end = RANGE_END.match(text, match.end())
            if end is None:
                return Quantity(float(match.group(1)), unit)
            low, high = float(match.group(1)), float(end.group(1))
            if high <= low:
                return None  # "120/80", "2-1": not a range of one score
            return Quantity(low, "%" if match.group(2) or end.group(2) else unit, high=high)
    return None


def qualitative_value(fact: ObservationFact) -> str | None:
    """'positive' | 'negative' from answer codes, interpretation, words or a boolean; else None."""
    value = fact.value
    codes = {code for _, code in value.concept} | {code for _, code in fact.interpretation}
    if codes & NEGATIVE_CODES and not codes & POSITIVE_CODES:
        return "negative"
    if codes & POSITIVE_CODES and not codes & NEGATIVE_CODES:
        return "positive"
    if value.boolean is not None:
        return "positive" if value.boolean else "negative"
    if value.quantity is not None and any(code in VIRAL_LOAD_CODES for _, code in fact.codes):
        if value.quantity.comparator in ("<", "<=") or value.quantity.value == 0:
            return "negative"
        return "positive" if value.quantity.comparator is None else None
    if value.quantity is not None and any(code in HCG_QUANTITY_CODES for _, code in fact.codes):
        return _hcg_reading(value.quantity)
    if any(code in CULTURE_CODES for _, code in fact.codes):
        return _culture_reading(value)
    text = (value.text or "").lower()
    if not text or INDETERMINATE_WORDS.search(text):
        return None
    rest, negatives = NEGATIVE_WORDS.subn(" ", text)
    positive = POSITIVE_WORDS.search(rest) is not None
    if not negatives and not positive:
        if any(code in VIRAL_LOAD_CODES for _, code in fact.codes):
            amount = viral_load_text(text)  # "<20 IU/mL", "350 copies/mL" written as text
            if amount is not None:
                return qualitative_value(
                    ObservationFact(fact.ref, fact.codes, fact.text, fact.when, Value(quantity=amount))
                )
        if is_her2_ihc(fact):
            return _her2_score(text)  # a score alone ("3+"); beside words ("HER2-low 1+, positive") they decide
        return None
    if negatives and not positive:
        return "negative"
    if positive and not negatives:
        return "positive"
    return None


def _culture_reading(value: Value) -> str | None:
    """'negative' for no growth, 'positive' for an organism (coded or named), None when doubtful."""
    text = (value.text or "").lower()
    if INDETERMINATE_WORDS.search(text) or CULTURE_UNREAD.search(text):
        return None
    if CULTURE_NEGATIVE.search(text):
        return "negative"
    return "positive" if value.concept or text.strip() else None


def is_her2_ihc(fact: ObservationFact) -> bool:
    """A HER2 immunohistochemistry result, by its LOINC code or its code text."""
    if any(code in HER2_IHC_CODES for _, code in fact.codes):
        return True
    return bool(_HER2_TEXT.search(fact.text) and _IHC_TEXT.search(fact.text))


def _her2_score(text: str) -> str | None:
    """The reading of the HER2 IHC score(s) a text gives ("3+", "IHC 0", "0/1+"); None when there is none,
    it is 2+ (equivocal), or the scores disagree."""
    readings = {_HER2_SCORE_READING[m.group(1)] for m in _IHC_SCORE.finditer(text) if m.group(2) or m.group(1) == "0"}
    return readings.pop() if len(readings) == 1 else None


def _hcg_reading(quantity: Quantity) -> str | None:
    """'negative' below 5 m[IU]/mL, 'positive' from 25; equivocal values and unknown units read None."""
    amount = units.convert(quantity.value, quantity.unit, "m[IU]/mL")
    if amount is None:
        return None
    below = amount <= HCG_NEGATIVE_BELOW if quantity.comparator in ("<", "<=") else amount < HCG_NEGATIVE_BELOW
    if below and quantity.comparator != ">" and quantity.comparator != ">=":
        return "negative"
    if amount >= HCG_POSITIVE_FROM and quantity.comparator in (None, ">", ">="):
        return "positive"
    return None


def stage_of(value: Value) -> str | None:
    """An AJCC stage group such as 'IIIB' from cancerstaging.org / SNOMED codes or their text."""
    for system, code in value.concept:
        if system != SNOMED:
            match = STAGE_CODE.match(code)
            if match:
                return _stage(match.group(1), match.group(2))
    match = STAGE_TEXT.search(value.text or "")
    if match:
        return _stage(match.group(1), match.group(2))
    return None


def _stage(group: str, letter: str | None) -> str:
    roman = ROMAN.get(group, group.upper())
    return roman + (letter or "").upper()


def gene_tokens(gene: str) -> tuple[str, ...]:
    """Lower-case strings that name a gene in a variant report: its symbol and HGNC id."""
    tokens = [gene.lower()]
    if gene.upper() in HGNC_IDS:
        tokens.append(HGNC_IDS[gene.upper()].lower())
    return tuple(tokens)


# One-letter → three-letter amino acid codes (HGVS protein notation: p.G12C = p.Gly12Cys).
AMINO_ACIDS = {
    "A": "Ala", "C": "Cys", "D": "Asp", "E": "Glu", "F": "Phe", "G": "Gly", "H": "His", "I": "Ile", "K": "Lys",
    "L": "Leu", "M": "Met", "N": "Asn", "P": "Pro", "Q": "Gln", "R": "Arg", "S": "Ser", "T": "Thr", "V": "Val",
    "W": "Trp", "Y": "Tyr",
}  # fmt: skip


def names_variant(texts: list[str], variant: str) -> bool:
    """Whether any of the report's texts names the protein change ("G12C", "p.G12C", "p.Gly12Cys")."""
    three = f"{AMINO_ACIDS[variant[0]]}{variant[1:-1]}{AMINO_ACIDS[variant[-1]]}"
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?:p\.\(?)?(?:{variant}|{three})(?![A-Za-z0-9])", re.IGNORECASE)
    return any(pattern.search(text) for text in texts)

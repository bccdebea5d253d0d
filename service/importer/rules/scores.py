"""Age, performance status (ECOG, Karnofsky) and life expectancy."""

from __future__ import annotations

import re
from typing import Any

from service.importer.rules.common import COMP, DEFINITION, GE, GT, LE, LT, NUMBER, TIME_UNITS, Atom, number, op_of

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
        rf"\b(?:age|aged)\b[^.;\d]{{0,20}}?(?P<op1>{GE}|{GT}|≥|>)\s*(?P<a>\d{{1,3}}){years}?"
        rf"(?:\s*(?:old|of age))?\s*(?:and|,)\s*(?P<op2>{LE}|{LT}|≤|<)\s*(?P<b>\d{{1,3}}){years}",
        text,
        re.IGNORECASE,
    )
    if both and not DEFINITION.search(text[: both.start()]):
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
    # "between 18 and 70 years of age", "18-75 years old": the range, then the words that say it is an age
    ranged = ranged or re.search(
        rf"(?<![\w.<>≤≥])(?:between\s+)?(?P<a>\d{{1,3}})\s*(?:-|–|to|and)\s*(?P<b>\d{{1,3}}){years}\s*(?:of\s+age|old)\b",
        text,
        re.IGNORECASE,
    )
    if ranged and not DEFINITION.search(text[: ranged.start()]):
        atoms.append(_age_atom(ranged.start(), ranged.end(), int(ranged.group("a")), int(ranged.group("b"))))
        return atoms
    patterns = (  # "≥ 18 years of age" before "age < 75": the first claims its own "of age"
        rf"(?<![\w.]){COMP}\s*{NUMBER}{years}\s*(?:old|of age)\b",
        rf"\b(?:age|aged)\b\s*(?:of\s*|is\s*|:\s*|must be\s*)?{COMP}\s*{NUMBER}(?:{years})?(?:\s*(?:old|of age))?",
        rf"\b{NUMBER}{years}(?:\s*(?:old|of age))?\s*(?:or|and)\s*(?P<older>older|above|over|greater|more)\b",
        rf"\bat least\s*{NUMBER}{years}\s*(?:old|of age)\b",
    )
    bounds: list[tuple[int, int, str, int]] = []
    for pattern in patterns:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if any(match.start() < end and start < match.end() for start, end, _, _ in bounds):
                continue
            groups = match.groupdict()
            op = ">=" if groups.get("older") else op_of(groups["op"]) if groups.get("op") else ">="
            bounds.append((match.start(), match.end(), op, int(number(match.group("num")))))
    if bounds:
        # The second bound of a pair may omit "old"/"of age": "≥ 18 years of age < 75 years".
        last = max(end for _, end, _, _ in bounds)
        bare = re.match(rf"(?P<gap>[\s,;]*(?:and|but)?\s*){COMP}\s*{NUMBER}{years}\b", text[last:], re.IGNORECASE)
        if bare:
            bounds.append(
                (last + bare.end("gap"), last + bare.end(), op_of(bare.group("op")), int(number(bare.group("num"))))
            )
    bounds.sort()
    if any(DEFINITION.search(text[:start]) for start, _, _, _ in bounds):
        return []  # "post-menopausal, defined as age ≥ 50": a definition, not an age criterion
    if any(op == ">" for _, _, op, _ in bounds):
        return []  # "over 18"/"> 18" usually admits 18-year-olds in practice: ambiguous, left to review
    lows = [value for _, _, op, value in bounds if op == ">="]
    highs = [_age_bound(op, value) for _, _, op, value in bounds if op in ("<", "<=")]
    if len(lows) > 1 or len(highs) > 1:
        return []
    if len(bounds) == 2 and re.fullmatch(r"[\s,;]*(?:and|but)?\s*", text[bounds[0][1] : bounds[1][0]], re.IGNORECASE):
        return [_age_atom(bounds[0][0], bounds[1][1], lows[0] if lows else None, highs[0] if highs else None)]
    return [
        _age_atom(start, end, value if op == ">=" else None, None if op == ">=" else _age_bound(op, value))
        for start, end, op, value in bounds
    ]


# "Woman ≥ 18 years old", "Male patients aged 18 or older": one sex as the subject of an age bound. Not "women of
# childbearing potential" (a stand-in no data decide) nor "men or women" (no restriction).
SEX_THEN_AGE = re.compile(
    r"^\s*(?P<sex>women|woman|females?|men|man|males?)(?:\s+(?:patients?|participants?|subjects?))?"
    rf"(?=\s*,?\s*(?:aged\b|age\b|(?:{GE}|{GT}|≥|>)\s*\d|\d{{1,3}}\s*(?:years?|yrs?)\b))",
    re.IGNORECASE,
)


def find_sex(text: str) -> list[Atom]:
    found = SEX_THEN_AGE.match(text)
    if found is None or not find_age(text):
        return []
    sex = "female" if found.group("sex").lower().startswith(("wom", "fem")) else "male"
    return [Atom(found.start("sex"), found.end(), "sex", {"sex": sex}, f"Sex: {sex}")]


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


SCORE_RANGE = r"(?P<a>[0-5])\s*(?:-|–|—|~|～|〜|to|through)\s*(?P<b>[0-5])"
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
    lead = re.match(r"[^\d<>≤≥≦≧＜＞;]{0,60}?(?=[\d<>≤≥≦≧＜＞]|(?:" + GE + "|" + LE + "))", tail, re.IGNORECASE)
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


LIFE_EXPECTANCY = re.compile(
    r"\b(?P<minimum>minimum |minimal )?(?:estimated |expected |anticipated |predicted )?"
    r"(?:life expectancy|survival expectancy|expected survival(?: duration| time)?|estimated survival(?: time)?"
    r"|predicted survival)\b",
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


# "Body weight > 30 kg", "weight ≥ 40 kg": a bound on the measured weight (LOINC 29463-7, the code
# the evaluator already reads weights from). Weight change ("weight loss > 10%") is another concept.
BODY_WEIGHT = re.compile(
    rf"\b(?:body\s+)?weight\b(?!\s*(?:loss|gain|change|-based))\s*(?:of\s*|:\s*|must be\s*|is\s*)?{COMP}\s*"
    rf"{NUMBER}\s*(?P<unit>kg|kilograms?)\b",
    re.IGNORECASE,
)


def find_body_weight(text: str) -> list[Atom]:
    atoms = []
    for found in BODY_WEIGHT.finditer(text):
        if DEFINITION.search(text[: found.start()]):
            continue
        value = number(found.group("num"))
        if not 10 <= value <= 300:
            continue  # not an adult weight in kilograms: a misread, left to review
        body = {
            "label": "Body weight",
            "codes": ["loinc:29463-7"],
            "op": op_of(found.group("op")),
            "value": int(value) if value.is_integer() else value,
            "unit": "kg",
        }
        atoms.append(Atom(found.start(), found.end(), "weight", {"observation": body}, "Body weight"))
        # "Body weight ≥ 40 kg and ≤ 150 kg": the second bound of the range omits the word "weight".
        bare = re.match(rf"\s*(?:and|,)\s*{COMP}\s*{NUMBER}\s*(?:kg|kilograms?)\b", text[found.end() :], re.I)
        if bare and 10 <= number(bare.group("num")) <= 300:
            high = number(bare.group("num"))
            upper = {**body, "op": op_of(bare.group("op")), "value": int(high) if high.is_integer() else high}
            end = found.end() + bare.end()
            atoms.append(Atom(found.end() + bare.start("op"), end, "weight-max", {"observation": upper}, "Body weight"))
    return atoms

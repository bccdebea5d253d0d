"""Laboratory thresholds: absolute values with units, and multiples of the upper limit of normal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.importer.rules.common import COMP, NUMBER, Atom, Rule, number, op_of


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
PER_DAY = r"\s*(?:/|per)\s*(?:24\s*h(?:ours?|rs?)?|day|d)\b"  # "g/24 hours", "mg per day"
MM_HG = r"mm\s*Hg\b"
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
        "wbc",
        "White blood cell count",
        r"white blood cell(?:s|\s+count)?(?:\s*\(WBC\))?(?:\s+count)?|leu[ck]ocyte count"
        r"|\bWBC\b(?:\s+count)?",
        ("loinc:6690-2", "loinc:26464-8"),  # leukocytes [#/volume] in blood (automated count / any method)
        tuple((u, c, f, (0.5, 50.0)) for u, c, f, _ in COUNT_UNITS),
        heme=True,
    ),
    Analyte(
        "alc",
        "Absolute lymphocyte count",
        r"absolute lymphocyte count|absolute lymphocytes?|lymphocyte count|\bALC\b",
        ("loinc:731-0", "loinc:26474-7"),  # lymphocytes [#/volume] in blood (automated count / any method)
        tuple((u, c, f, (0.1, 10.0)) for u, c, f, _ in COUNT_UNITS),
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
        # "measured or calculated": the measured (2164-2) and the calculated (35591-7) codes are both listed
        r"(?:(?:measured|calculated)\s+or\s+(?:measured|calculated)\s+)?"
        r"(?:creatinine clearance|\bCrCl\b|\bCLcr\b|\bCCr\b)",
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
    Analyte(
        "lvef",
        "Left ventricular ejection fraction",
        r"left ventricular ejection fraction|\bLVEF\b",
        ("loinc:10230-1",),
        ((r"%", "%", 1.0, (20.0, 80.0)),),
    ),
    Analyte(
        "ldh",
        "Lactate dehydrogenase",
        r"lactate dehydrogenase|lactic dehydrogenase|\bLDH\b",
        ("loinc:2532-0", "loinc:14804-9"),
        ((r"(?:i?u|units?)\s*/\s*l\b", "U/L", 1.0, (50.0, 2000.0)),),
    ),
    Analyte(
        "alp",
        "Alkaline phosphatase",
        r"alkaline phosphatase|\bALP\b|\bAKP\b",
        ("loinc:6768-6",),
        ((r"(?:i?u|units?)\s*/\s*l\b", "U/L", 1.0, (20.0, 1000.0)),),
    ),
    Analyte(
        "inr",
        "INR",
        r"international normali[sz]ed ratio(?:\s*\(INR\))?|\bINR\b",
        ("loinc:6301-6", "loinc:34714-6", "loinc:46418-0"),
        # A ratio has no unit: the number must end the threshold (no "× ULN", "%", "seconds" after it).
        ((r"(?:\{?INR\}?)?(?=\s*(?:[,;.)\]]|\band\b|\bor\b|$))", "1", 1.0, (0.8, 4.0)),),
    ),
    Analyte(
        "pt",
        "Prothrombin time",
        r"prothrombin time(?:\s*\(PT\))?|\bPT\b",
        ("loinc:5902-2",),
        ((r"(?:s|sec|secs|seconds?)\b", "s", 1.0, (8.0, 60.0)),),
    ),
    Analyte(
        "aptt",
        "Activated partial thromboplastin time",
        r"activated partial thromboplastin time(?:\s*\(a?PTT\))?|\bA?PTT\b",
        ("loinc:3173-2", "loinc:14979-9"),
        ((r"(?:s|sec|secs|seconds?)\b", "s", 1.0, (15.0, 120.0)),),
    ),
    Analyte(
        "alb",
        "Albumin",
        r"(?:serum |plasma )?albumin\b|\bALB\b",
        ("loinc:1751-7",),
        (
            (r"g\s*/\s*dl\b", "g/dL", 1.0, (1.5, 6.0)),
            (r"g\s*/\s*l\b", "g/L", 1.0, (15.0, 60.0)),
        ),
    ),
    # ECG and vital-sign measures an oncology protocol bounds. The QT correction formula matters (a
    # Bazett QTc runs below a Fridericia one in bradycardia), and no code in common use tells them
    # apart: only a QTc that names no formula is read as LOINC 8636-3 (find_labs refuses QTcF/QTcB).
    Analyte(
        "qtc",
        "QTc interval",
        r"\bQTc[FB]?\b(?:\s+interval)?|corrected QT(?:\s+interval)?"
        r"|QT(?:\s+interval)?\s+corrected(?:\s+for heart rate)?",
        ("loinc:8636-3",),
        ((r"(?:ms|msec|milliseconds?)\b", "ms", 1.0, (300.0, 700.0)),),
    ),
    Analyte(
        "spo2",
        "Oxygen saturation (pulse oximetry)",
        r"(?:peripheral |arterial )?(?:blood )?oxygen saturation(?:\s+by pulse oximetry)?|pulse oximetry"
        r"|\bSpO2\b|\bSaO2\b",
        ("loinc:59408-5", "loinc:2708-6"),
        ((r"%", "%", 1.0, (70.0, 100.0)),),
    ),
    Analyte(
        "hba1c",
        "Hemoglobin A1c",
        r"(?:ha?emoglobin|\bHg?b)\s*A1c\b|\bA1c\b|glyc(?:ated|osylated) ha?emoglobin(?:\s*A1c)?",
        # NGSP percent only: IFCC mmol/mol (59261-8) is no linear multiple of it, so it is not listed.
        ("loinc:4548-4", "loinc:17856-6"),
        ((r"%", "%", 1.0, (4.0, 20.0)),),
    ),
    Analyte(
        "uprot",
        "Protein in 24 hour urine",
        r"(?:24[- ]?h(?:ou)?r?s?\s+)?urin(?:e|ary) protein(?!\s*(?:/|-|to|:)\s*creatinine)(?:\s+excretion)?"
        r"|proteinuria(?!\s*(?:/|-|to|:)\s*creatinine)",
        ("loinc:2889-4",),
        ((rf"g{PER_DAY}", "g/d", 1.0, (0.1, 10.0)), (rf"mg{PER_DAY}", "g/d", 0.001, (0.1, 10.0))),
    ),
    Analyte(
        "sbp",
        "Systolic blood pressure",
        r"systolic(?:\s+blood\s+pressure|\s+BP)?|\bSBP\b",
        ("loinc:8480-6",),
        ((MM_HG, "mm[Hg]", 1.0, (70.0, 250.0)),),
    ),
    Analyte(
        "dbp",
        "Diastolic blood pressure",
        r"diastolic(?:\s+blood\s+pressure|\s+BP)?|\bDBP\b",
        ("loinc:8462-4",),
        ((MM_HG, "mm[Hg]", 1.0, (40.0, 150.0)),),
    ),
    # "Blood pressure ≤ 140/90 mmHg" only (find_labs reads the pair); no single threshold of its own.
    Analyte("bp", "Blood pressure", r"(?:arterial\s+)?blood pressure|\bBP\b", ("loinc:85354-9",), ()),
)
SEX_WORDS = re.compile(r"\b(?:wom[ae]n|m[ae]n|(?:fe)?males?)\b", re.IGNORECASE)
QT_MEAN = re.compile(
    r"\b(?:mean|average|averaged|triplicate)\b|\b(?:3|three)\s+(?:ECGs|EKGs|electrocardiograms)\b", re.IGNORECASE
)
QT_FORMULA = re.compile(r"fridericia|bazett|\bQTc[FB]\b", re.IGNORECASE)
# "Blood pressure ≤ 140/90 mmHg": the systolic and the diastolic bound, each its own threshold.
BLOOD_PRESSURE_PAIR = re.compile(
    rf"\s*(?:\((?:BP)\)\s*)?(?:of\s+|must be\s+|:\s*)?{COMP}\s*(?P<sys>\d{{2,3}})\s*/\s*(?P<dia>\d{{2,3}})\s*mm\s*Hg\b",
    re.IGNORECASE,
)
TRANSAMINASES = re.compile(r"\b(?:liver )?transaminases\b", re.IGNORECASE)
ULN = (
    r"(?:x|×|\*|X|times)?\s*(?:the\s+)?(?:institutional\s+|site\s+)?"
    r"(?:upper limits? of (?:the\s+)?normal(?: range)?|\bI?ULN\b|\bUNL\b)(?:\s*\((?:I?ULN|UNL)\))?"
)
SEPARATOR = r"(?:\s*\([^()<>≤≥\d]{1,12}\))?\s*(?:/|,|and/or|and|or|&)\s*"
LEAD = (
    # an alias in brackets: "(ANC)", "(SpO2)", "(HbA1c)"
    r"(?:\s*[(\[](?:[^()\[\]<>≤≥\d]{1,12}|[A-Za-z][A-Za-z0-9]{1,8})[)\]])?"
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
    named_formula = bool(QT_FORMULA.search(criterion))
    for start, end, members in groups:
        if named_formula and any(a.key == "qtc" for a in members):
            refused.append("a QTc by a named correction formula (Fridericia, Bazett): no code tells it from another")
            continue
        if any(a.key == "qtc" for a in members) and SEX_WORDS.search(criterion):
            refused.append("QTc bounds that differ by sex")
            continue
        if any(a.key == "qtc" for a in members) and QT_MEAN.search(criterion):
            refused.append("a mean QTc of several ECGs is not one recorded value")
            continue
        if {"inr", "pt"} <= {a.key for a in members} and not re.search(r"\band\b", text[start:end], re.IGNORECASE):
            # "INR or PT ≤ 1.5 × ULN", "INR/PT": whichever the site measures (both derive from one clotting time)
            refused.append("INR or PT: one of the two, not both")
            continue
        tail = text[end:]
        pressure = BLOOD_PRESSURE_PAIR.match(tail) if any(a.key == "bp" for a in members) else None
        if pressure:
            atoms.extend(_pressure_pair(start, end, pressure))
            continue
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


def _pressure_pair(start: int, end: int, found: re.Match[str]) -> list[Atom]:
    """Two atoms side by side (systolic up to the slash, diastolic after it): in an inclusion both
    bounds hold (all_of), in an exclusion either reading beyond its bound is hypertension (any_of)."""
    op = op_of(found.group("op"))
    slash = end + found.start("dia")
    out = []
    for key, label, code, value, (a, b) in (
        ("sbp", "Systolic blood pressure", "loinc:8480-6", found.group("sys"), (start, slash)),
        ("dbp", "Diastolic blood pressure", "loinc:8462-4", found.group("dia"), (slash, end + found.end())),
    ):
        body = {"label": label, "codes": [code], "op": op, "value": float(value), "unit": "mm[Hg]"}
        out.append(Atom(a, b, key, {"observation": body}, label))
    return out


# --- a relaxed bound for patients with a named condition ----------------------------------------
# "AST/ALT ≤ 3 × ULN (≤ 5 × ULN if liver metastases are present)", "total bilirubin ≤ 1.5 × ULN
# (< 3 × ULN for patients with Gilbert's syndrome)": the protocol's own exception, written right after
# the bound it relaxes. Read as any_of [bound, all_of [the condition, relaxed bound]]: with no record
# of the condition only the strict bound decides, as the words say.
LIVER_METASTASES = {
    "label": "Liver metastases",
    "codes": ["icd10cm:C78.7", "snomed:94381002"],
    "names": ["liver metastases", "liver metastasis", "hepatic metastases", "hepatic metastasis"],
}
GILBERT = {"label": "Gilbert syndrome", "codes": ["icd10cm:E80.4"], "names": ["gilbert syndrome", "gilbert's syndrome"]}
# Which analytes each exception may relax (a Gilbert exception on a transaminase is no exception we read).
RELAXES = {
    "liver": (LIVER_METASTASES, frozenset({"ast", "alt", "alp", "tbil"})),
    "gilbert": (GILBERT, frozenset({"tbil"})),
}
LAB_EXCEPTION = re.compile(
    r"[\s,;]*[(（]?\s*(?:or\s+)?(?P<bound>" + COMP + r"\s*" + NUMBER + r"[^()（）;,<>≤≥]{0,30}?)\s*,?\s*"
    r"(?:if|for|in|with)\s+(?:(?:patients|subjects|participants|those|cases)\s+)?(?:(?:with|who have|having)\s+)?"
    r"(?:(?:the\s+)?presence of\s+|case of\s+|documented\s+|known\s+|confirmed\s+|evidence of\s+)*"
    r"(?:(?P<liver>liver metastas[ie]s|hepatic metastas[ie]s|liver involvement|hepatic involvement"
    r"|metastatic (?:liver|hepatic) disease)|(?P<gilbert>Gilbert'?s?(?:\s+(?:syndrome|disease))?))"
    r"(?:\s+(?:are|is)\s+(?:involved|present|documented))?\s*[)）]?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LabException:
    start: int
    end: int
    kind: str  # a RELAXES key
    bound: str  # "≤ 5 × ULN", "< 3.0 mg/dL"
    analytes: frozenset[str] = frozenset()  # named again in the exception: it relaxes these only


# The same, condition first: "(patients with Gilbert's syndrome: ≤ 3 × ULN)".
LAB_EXCEPTION_CONDITION_FIRST = re.compile(
    r"[\s,;]*[(（]\s*(?:for\s+|in\s+)?(?:patients|subjects|participants)\s+with\s+(?:documented\s+|known\s+)?"
    r"(?:(?P<liver>liver metastas[ie]s|hepatic metastas[ie]s)|(?P<gilbert>Gilbert'?s?(?:\s+(?:syndrome|disease))?))"
    r"\s*[:,]?\s*(?P<bound>" + COMP + r"\s*" + NUMBER + r"[^()（）;,<>≤≥]{0,30}?)\s*[)）]",
    re.IGNORECASE,
)


# The same, condition first and unbracketed, closing the clause: "ALT and AST ≤ 2.5 × ULN; if liver metastases,
# ≤ 5 × ULN", "..., or in the presence of liver metastases ≤ 5 × ULN".
LAB_EXCEPTION_IF_FIRST = re.compile(
    r"[\s,;]*(?:or\s+)?(?:if|for|in)\s+(?:(?:patients|subjects|participants|those)\s+)?(?:(?:with|who have|having)\s+)?"
    r"(?:(?:the\s+)?presence of\s+|case of\s+|documented\s+|known\s+|confirmed\s+)*"
    r"(?:(?P<liver>liver metastas[ie]s|hepatic metastas[ie]s)|(?P<gilbert>Gilbert'?s?(?:\s+(?:syndrome|disease))?))"
    r"(?:\s+(?:are|is)\s+(?:present|documented))?\s*[:,]?\s*(?:then\s+)?"
    # the analytes named again (AstraZeneca's "for patients with hepatic metastases, ALT and AST ≤ 5 × ULN"):
    # they must be the ones the bound before it reads (`LabException.analytes`)
    r"(?P<named>(?:ALT|AST)(?:\s*(?:and|/|or)\s*(?:ALT|AST))?\s+|(?:total\s+)?bilirubin\s+)?"
    # the bound is a number and its unit only: anything after it ("and no ascites") leaves the criterion text
    r"(?P<bound>" + COMP + r"\s*" + NUMBER + r"\s*(?:(?:[×xX*]|times)\s*(?:the\s+)?(?:ULN|upper limits? of normal)"
    r"|mg/dL|µmol/L|μmol/L|umol/L|U/L|IU/L)?)\s*(?=[;.]|$)",
    re.IGNORECASE,
)


# No bound at all for them, closing the criterion (AstraZeneca: "Serum bilirubin ≤ 1.5 × ULN. This will not apply
# to patients with confirmed Gilbert's syndrome"): any_of [the bound, the condition].
LAB_EXCEPTION_UNBOUNDED = re.compile(
    r"[\s,;.]*[(（]?\s*(?:this\s+(?:will|does|shall)\s+not\s+apply\s+(?:to|for)|(?:except|excluding)\s+(?:for\s+|in\s+)?)"
    r"\s*(?:patients|subjects|participants|those)\s+(?:with|who have)\s+(?:a\s+)?"
    r"(?:confirmed\s+|documented\s+|known\s+)?(?P<gilbert>Gilbert'?s?(?:\s+(?:syndrome|disease))?)(?P<liver>(?!))?(?P<bound>)\s*[)）]?\s*\.?\s*$",
    re.IGNORECASE,
)


def lab_exceptions(text: str) -> list[LabException]:
    """The relaxed bounds a criterion states (their spans are blanked before the thresholds are read)."""
    return [
        LabException(
            m.start(),
            m.end(),
            "liver" if m.group("liver") else "gilbert",
            m.group("bound").strip(),
            _named_analytes(m.groupdict().get("named") or ""),
        )
        for pattern in (LAB_EXCEPTION, LAB_EXCEPTION_CONDITION_FIRST, LAB_EXCEPTION_IF_FIRST, LAB_EXCEPTION_UNBOUNDED)
        for m in pattern.finditer(text)
    ]


def _named_analytes(words: str) -> frozenset[str]:
    named = {"ast": r"\bAST\b", "alt": r"\bALT\b", "tbil": r"\bbilirubin\b"}
    return frozenset(key for key, pattern in named.items() if re.search(pattern, words, re.IGNORECASE))


def with_exception(atom: Atom, exceptions: list[LabException], text: str) -> Atom | None:
    """The atom with the exception written right after it, unchanged without one; None when the
    exception cannot be read for this analyte (the criterion then stays text)."""
    found = next((e for e in exceptions if e.start >= atom.end and not text[atom.end : e.start].strip(" ,;")), None)
    if found is None:
        return atom
    condition, analytes = RELAXES[found.kind]
    relaxes = found.analytes or analytes
    if atom.key not in analytes or atom.key not in relaxes or "observation" not in atom.rule:
        return None
    strict = {"key": atom.key, "text": text[atom.start : atom.end].strip(" ,;:."), **atom.rule}
    if not found.bound:  # no bound for them at all
        free = {"key": f"{atom.key}-{found.kind}", "text": condition["label"], "condition": dict(condition)}
        return Atom(atom.start, found.end, atom.key, {"any_of": [strict, free]}, atom.label)
    relaxed = [a for a in find_labs(f"{atom.label} {found.bound}", "")[0] if a.key == atom.key]
    if len(relaxed) != 1:
        return None
    body = dict(relaxed[0].rule["observation"])
    if not _looser(atom.rule["observation"], body):
        return None  # a stricter or other-kind bound is no relaxation: any_of would drop it
    if "window_days" in atom.rule["observation"]:
        body["window_days"] = atom.rule["observation"]["window_days"]
    exception = {
        "key": f"{atom.key}-{found.kind}",
        "text": f"{found.bound} for {condition['label']}",
        "all_of": [
            {"key": found.kind, "text": condition["label"], "condition": dict(condition)},
            {"key": f"{atom.key}-relaxed", "text": found.bound, "observation": body},
        ],
    }
    return Atom(atom.start, found.end, atom.key, {"any_of": [strict, exception]}, atom.label)


def _looser(strict: dict[str, Any], relaxed: dict[str, Any]) -> bool:
    """The relaxed bound points the same way, in the same terms (×ULN or the same unit), and admits more."""
    kind = "uln" if "uln" in strict else "value"
    if kind not in relaxed or strict["op"][0] != relaxed["op"][0] or strict.get("unit") != relaxed.get("unit"):
        return False
    return bool(relaxed[kind] > strict[kind]) if strict["op"][0] == "<" else bool(relaxed[kind] < strict[kind])

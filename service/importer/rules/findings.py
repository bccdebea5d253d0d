"""Conditions an exclusion names: pregnancy and breastfeeding, HIV/HBV/HCV, brain metastases."""

from __future__ import annotations

import copy
import re
from typing import Any

from service.importer.rules.common import Atom, Rule

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

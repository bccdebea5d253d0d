"""Conditions an exclusion names: pregnancy and breastfeeding, HIV/HBV/HCV, brain metastases."""

from __future__ import annotations

import copy
import re
from typing import Any

from service.importer.rules.common import DURATION, Atom, Rule, window_positions

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


# "HIV or acquired immunodeficiency syndrome (AIDS)-related illness": AIDS is HIV disease (B20), one finding.
_AIDS = (
    r"(?:\s*(?:infection\s+)?(?:or|and/or|/)\s*(?:an?\s+)?(?:(?i:acquired\s+immun[eo]?\s*deficiency\s+syndrome)(?:\s*\(AIDS\))?"
    r"|AIDS)(?:[- ](?i:related|defining)\s+(?i:illness(?:es)?|conditions?))?)?"
)
HIV = re.compile(
    r"(?i:\bHIV(?:[- ]?1)?\b(?:\s*(?:1/2|1 and 2))?|\bhuman immunodeficiency virus(?:\s*\(HIV(?:-1)?\))?)" + _AIDS,
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


# The nearest cue before a virus decides it: "known history of HIV ... or active hepatitis B or C"
# is HIV ever recorded, hepatitis B and C active (C inherits B's cue: nothing stands between them).
HISTORY_CUE = re.compile(
    r"\b(?P<history>history|previous|previously|prior)\b|\b(?P<active>active|current|currently|acute)\b", re.IGNORECASE
)


def find_viruses(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    for key, pattern in (("hiv", HIV), ("hbv", HBV), ("hcv", HCV)):
        m = pattern.search(text)
        if not m:
            continue
        label, codes, names = VIRUS_CODES[key]
        body: dict[str, Any] = {"label": label, "codes": codes, "names": names}
        cues = list(HISTORY_CUE.finditer(text, 0, m.start()))
        history = bool(cues) and cues[-1].group("history") is not None
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


LEPTOMENINGEAL = re.compile(
    r"\bleptomeningeal (?:disease|metastas[ie]s|carcinomatosis|involvement|spread)\b|\bcarcinomatous meningitis\b"
    r"|\bmeningeal carcinomatosis\b",
    re.IGNORECASE,
)
# Qualifiers the record cannot tell: whether metastases are treated, stable, symptomatic.
BRAIN_QUALIFIER = re.compile(
    r"\b(?:active|untreated|symptomatic|progressive|progressing|unstable|uncontrolled|new|newly diagnosed|"
    r"clinically active|radiologically unstable)\b",
    re.IGNORECASE,
)


# Spinal leptomeningeal metastases are coded with the other nervous system sites (C79.49: spinal cord,
# spinal meninges, nerves), so C79.49 may or may not be leptomeningeal (blind check seed 7777, item 15).
SPINAL_NERVOUS_SYSTEM = "icd10cm:C79.49"


def _leptomeningeal(lepto: dict[str, Any], wording: str) -> Rule:
    """The meningeal codes decide; a C79.49 record is for the site to place."""
    spinal = {"label": "Secondary malignant neoplasm of other parts of nervous system",
              "codes": [SPINAL_NERVOUS_SYSTEM], "names": [], **({"history": True} if lepto.get("history") else {})}
    return {
        "any_of": [
            {"key": "meninges", "text": wording, "condition": lepto},
            {"key": "spinal", "text": wording, "all_of": [
                {"key": "record", "text": "a metastasis coded C79.49 (spinal cord, spinal meninges or nerves)",
                 "condition": spinal},
                {"key": "site", "text": wording,
                 "not_computable": "whether the metastasis coded C79.49 is leptomeningeal (spinal meninges) rather "
                 "than in the spinal cord or nerves: the site confirms at screening"},
            ]},
        ]
    }  # fmt: skip


def find_brain_metastases(text: str) -> list[Atom]:
    """Brain or CNS metastases, and leptomeningeal disease named beside or instead of them ("brain metastases
    and/or leptomeningeal spread"); "history of" counts treated, resolved ones too."""
    history = bool(re.search(r"\bhistory\b|\bprevious\b|\bprior\b", text, re.IGNORECASE))
    atoms: list[Atom] = []
    for pattern, key, label, codes in METASTASES:
        found = pattern.search(text)
        if not found:
            continue
        body: dict[str, Any] = {"label": label, "codes": list(codes), "names": ["brain metastases", "brain metastasis"]}
        if history:
            body["history"] = True  # "history of brain metastases": treated, resolved ones count too
        atoms.append(Atom(found.start(), found.end(), key, {"condition": body}, label))
        break
    found = LEPTOMENINGEAL.search(text)
    if found and not any(a.start <= found.start() < a.end for a in atoms):
        # "History of leptomeningeal carcinomatosis" (the meninges alone: C79.32, not all of C79.3)
        lepto: dict[str, Any] = {
            "label": "Leptomeningeal disease",
            "codes": ["snomed:94246001", "snomed:94601008", "snomed:230156002", "icd10cm:C79.32"],
            "names": ["leptomeningeal metastases", "leptomeningeal disease", "carcinomatous meningitis",
                      "leptomeningeal carcinomatosis", "meningeal carcinomatosis"],
        }  # fmt: skip
        if history:
            lepto["history"] = True
        atoms.append(Atom(found.start(), found.end(), "lepto", _leptomeningeal(lepto, found.group(0)),
                          "Leptomeningeal disease"))  # fmt: skip
    return sorted(atoms, key=lambda a: a.start)


def qualified_cns_exclusion(text: str) -> Rule | None:
    """ "Active or untreated brain metastases (treated, stable ones allowed)": the metastases are data,
    whether they are active, untreated or stable is not. Met needs both: the condition, and a part the
    site checks (unknown until then); without brain/CNS metastases on record it is not met."""
    sentences = [s for s in re.split(r"(?<=[.;])\s+|\n+", text.strip()) if s.strip()]
    first = sentences[0]
    found = [p.search(first) for p, *_ in METASTASES]
    lepto = LEPTOMENINGEAL.search(first)
    if not any(found):
        return None
    # The first sentence names the metastases and their qualifiers only.
    rest = first
    for m in [*(f for f in found if f), lepto]:
        if m:
            rest = rest.replace(m.group(0), " ")
    rest = BRAIN_QUALIFIER.sub(" ", rest)
    words = re.findall(r"[a-z]+", rest.lower())
    allowed = {"and", "or", "nor", "has", "have", "with", "patients", "participants", "subjects", "any", "the", "of",
               "and/or", "or/and", "disease", "presence", "evidence", "known", "untreated", "metastases", "cns",
               "central", "nervous", "system", "brain", "to", "are", "is", "excluded", "not", "eligible"}  # fmt: skip
    if any(w not in allowed for w in words) or not BRAIN_QUALIFIER.search(first):
        return None
    about = re.compile(
        r"brain|cns|central nervous|intracranial|metasta|lesion|leptomening|stable|stability|treated|progression|"
        r"steroid|radiotherapy|radiosurgery|radiation|imaging|MRI|\bCT\b|neurologic|symptom",
        re.IGNORECASE,
    )
    if any(not about.search(s) for s in sentences[1:]):
        return None  # a later sentence on something else
    codes = ["snomed:94225005", "icd10cm:C79.31"]
    names = ["brain metastases", "brain metastasis"]
    label = "Brain metastases"
    if found[0] is not None:  # CNS: brain, meninges, spinal cord
        codes, label = ["snomed:94225005", "icd10cm:C79.3", "icd10cm:C79.4"], "CNS metastases"
    if lepto:
        # C79.49 holds the spinal meninges: a record of it counts here, the status part is the site's anyway.
        codes += ["snomed:94246001", "icd10cm:C79.32", SPINAL_NERVOUS_SYSTEM]
        names += ["leptomeningeal metastases", "leptomeningeal disease", "carcinomatous meningitis"]
        label += " or leptomeningeal disease"
    codes = list(dict.fromkeys(codes))
    return {
        "all_of": [
            {"key": "mets", "text": first.strip(" .;"), "condition": {"label": label, "codes": codes, "names": names}},
            {
                "key": "status",
                "text": text.strip(),
                "not_computable": "whether they are active / untreated / symptomatic as the protocol defines "
                "(the record does not say): the site confirms at screening",
            },
        ]
    }


# "Active infection requiring systemic therapy": the part the record holds is a systemic anti-infective
# taken now (ATC J01 antibacterials, J02 antimycotics, J04 antimycobacterials, J05 antivirals). The
# long-term antiretrovirals of a controlled HIV or hepatitis B (J05AE/AF/AG/AJ/AR) treat no active
# infection in the protocol's sense (the HIV/HBV criteria decide those), so they are exempt.
ACTIVE_INFECTION = re.compile(
    r"\bactive\s+(?:systemic\s+)?infections?\s+(?:requiring|that requires?|which requires?|in need of|needing)\s+"
    r"(?:systemic\s+(?:anti-?infective\s+|antimicrobial\s+|antibiotic\s+)?(?:therapy|treatment)"
    r"|(?:systemic\s+)?anti-?infective\s+(?:therapy|treatment))\b",
    re.IGNORECASE,
)
ANTI_INFECTIVE: Rule = {
    "medication": {
        "label": "Systemic anti-infective treatment (current)",
        "codes": ["atc:J01", "atc:J02", "atc:J04", "atc:J05"],
        "names": [],
        "except": ["atc:J05AE", "atc:J05AF", "atc:J05AG", "atc:J05AJ", "atc:J05AR"],
        "current": True,
    }
}


def find_infection(text: str) -> list[Atom]:
    """A systemic anti-infective taken now is no active infection by itself: prophylaxis and suppression
    (co-trimoxazole for PCP, aciclovir, fluconazole, isoniazid for latent TB, nitrofurantoin for UTI) are
    common in cancer care (review seed 4242 #35, #47, #48). None taken: not met; one taken: the site says."""
    found = ACTIVE_INFECTION.search(text)
    if not found:
        return []
    rule = {
        "all_of": [
            {"key": "anti-infective", "text": found.group(0), **copy.deepcopy(ANTI_INFECTIVE)},
            {"key": "active", "text": found.group(0),
             "not_computable": "whether the anti-infective treats an active infection (not prophylaxis or "
             "suppression): the site confirms at screening"},
        ]
    }  # fmt: skip
    return [Atom(found.start(), found.end(), "infection", rule, "Active infection on systemic treatment")]


# "Has active autoimmune disease that has required systemic treatment in the past 2 years (i.e. with the
# use of disease-modifying agents, corticosteroids or immunosuppressive drugs). Replacement therapy (e.g.
# thyroxine, insulin, or physiologic corticosteroid replacement therapy for adrenal or pituitary
# insufficiency) is not considered a form of systemic treatment." Read whole: both parts are data.
AUTOIMMUNE_TREATED = re.compile(
    r"^\s*(?:(?:has|have|had|patients?\s+with|subjects?\s+with|participants?\s+with)\s+)?(?:an?\s+)?"
    r"active autoimmune diseases?\s+(?:that|which)\s+(?:has|have)\s+required\s+systemic\s+(?:treatment|therapy)\s+"
    r"(?:in|within|during)\s+the\s+(?:past|last|previous)\s+" + DURATION + r"\s*"
    r"(?:\((?:i\.\s?e\.|e\.\s?g\.),?\s*(?:with\s+)?(?:the\s+)?use\s+of\s+disease[- ]modifying\s+agents,?\s+"
    r"corticosteroids,?\s+(?:or|and|and/or)\s+immunosuppressive\s+drugs\)\s*)?"
    r"(?:[.;,]?\s*(?:except\s+(?:for\s+)?)?replacement\s+therapy\s*\((?:e\.\s?g\.|eg\.?),?\s*thyroxine,?\s+insulin,?\s+"
    r"(?:or|and)\s+physiologic(?:al)?\s+corticosteroids?(?:\s+replacement(?:\s+therapy)?)?"
    r"(?:\s+for\s+adrenal\s+or\s+pituitary\s+insufficiency)?(?:,?\s*etc\.?)?\)"
    r"(?:\s+is\s+not\s+considered\s+a\s+form\s+of\s+systemic\s+treatment(?:\s+and\s+is\s+allowed)?)?)?"
    r"\s*[.;]?\s*$",
    re.IGNORECASE,
)
# Autoimmune diseases by their own codes (the hand-checked list of NCT06494995 exc-10.1a): a record
# holds "rheumatoid arthritis", never the parent concept. Type 1 diabetes, vitiligo and asthma are not
# in the list: the sentence names none of them, and insulin alone is replacement, not systemic treatment.
AUTOIMMUNE: dict[str, Any] = {
    "label": "Autoimmune disease (active)",
    "codes": [
        "snomed:85828009", "snomed:55464009", "snomed:69896004", "snomed:34000006", "snomed:64766004",
        "snomed:9014002", "snomed:24700007", "snomed:83901003", "snomed:89155008", "snomed:396230008",
        "snomed:91637004", "snomed:353295004", "snomed:408335007", "snomed:31996006", "snomed:396331005",
        "snomed:9631008", "snomed:40956001", "snomed:68815009",
        "icd10cm:M32", "icd10cm:M05", "icd10cm:M06", "icd10cm:K50", "icd10cm:K51", "icd10cm:L40", "icd10cm:G35",
        "icd10cm:M35.0", "icd10cm:M34", "icd10cm:M33", "icd10cm:G70.0", "icd10cm:K75.4", "icd10cm:M30",
        "icd10cm:M31", "icd10cm:K90.0", "icd10cm:M45", "icd10cm:G61.0", "icd10cm:D59.1", "icd10cm:D69.3",
        "icd10cm:E27.1", "icd10cm:E05.0", "icd10cm:E06.3", "icd10cm:K74.3",
    ],
    "names": [
        "autoimmune disease", "autoimmune hepatitis", "ulcerative colitis", "crohn's disease",
        "systemic lupus erythematosus", "rheumatoid arthritis", "multiple sclerosis", "myasthenia gravis",
        "sjogren's syndrome", "sjögren's syndrome", "graves' disease", "graves disease", "psoriasis",
        "ankylosing spondylitis", "hashimoto's thyroiditis",
    ],
}  # fmt: skip


def treated_autoimmune_exclusion(text: str) -> Rule | None:
    """Active autoimmune disease needing systemic treatment within N years. The disease is data; the
    treatment is not: no record ties a drug to the disease it treats (a prednisone burst for COPD, a
    dexamethasone premedication), and the replacement therapy the protocol allows (any physiologic
    steroid dose for adrenal or pituitary insufficiency, thyroxine, insulin) cannot be told from a
    drug list. So no autoimmune disease on record is "not met", one on record needs the site's word."""
    found = AUTOIMMUNE_TREATED.match(text)
    if not found:
        return None
    years = f"{found.group('count')} {found.group('unit')}"
    return {
        "all_of": [
            {"key": "disease", "text": "active autoimmune disease", "condition": copy.deepcopy(AUTOIMMUNE)},
            {
                "key": "treatment",
                "text": text.strip(),
                "not_computable": f"whether the disease required systemic treatment in the past {years} (replacement "
                "therapy excepted): no record ties a drug to the disease it treats, the site confirms at screening",
            },
        ]
    }


# Cardiovascular events an exclusion lists ("myocardial infarction, unstable angina or stroke within 6
# months"): each is a condition begun or ended inside the stated window (the nearest after it, or the
# only one); with no window, "history of" counts any record, otherwise an active one. Names are
# phrases only ("stroke" alone is in "heat stroke").
CARDIOVASCULAR = (
    ("mi", "Myocardial infarction", r"\b(?:acute\s+)?myocardial infarctions?(?:\s*\(MI\))?|\bheart attacks?\b",
     ["icd10cm:I21", "icd10cm:I22", "snomed:22298006"], ["myocardial infarction", "heart attack"]),
    ("unstable-angina", "Unstable angina", r"\bunstable angina(?:\s+pectoris)?\b",
     ["icd10cm:I20.0"], ["unstable angina"]),
    ("stroke", "Stroke",
     r"\b(?:cerebrovascular accident|cerebral vascular accident|stroke)s?(?:\s*\((?:CVA|stroke)\))?",
     ["icd10cm:I60", "icd10cm:I61", "icd10cm:I63"],
     ["cerebrovascular accident", "cerebral infarction", "ischemic stroke", "ischaemic stroke", "hemorrhagic stroke"]),
    ("tia", "Transient ischemic attack", r"\btransient isch(?:a)?emic attacks?(?:\s*\(TIA\))?|\bTIA\b",
     ["icd10cm:G45.0", "icd10cm:G45.1", "icd10cm:G45.8", "icd10cm:G45.9"],
     ["transient ischemic attack", "transient ischaemic attack"]),
    ("pe", "Pulmonary embolism", r"\bpulmonary embol(?:ism|i)\b", ["icd10cm:I26"], ["pulmonary embolism"]),
)  # fmt: skip


def find_cardiovascular(text: str) -> list[Atom]:
    windows = window_positions(text)
    history = bool(re.search(r"\bhistory\b|\bprior\b|\bprevious\b", text, re.IGNORECASE))
    found_all = [(spec, re.search(spec[2], text, re.IGNORECASE)) for spec in CARDIOVASCULAR]
    first = min((m.start() for _, m in found_all if m), default=0)
    # A window before every event heads the list ("Any of the following in the past 6 months: ...");
    # one between two events is the earlier one's ("MI within 6 months, or a history of stroke").
    heading = windows[0][1] if len(windows) == 1 and windows[0][0] < first else None
    atoms: list[Atom] = []
    for (key, label, _, codes, names), found in found_all:
        if not found:
            continue
        body: dict[str, Any] = {"label": label, "codes": list(codes), "names": list(names)}
        after = [days for at, days in windows if at >= found.end()]
        days = after[0] if after else heading
        if days is not None:
            body.update(history=True, within_days=days)  # begun or ended inside the window, whatever its status
        elif windows:
            continue  # several windows, none after it: which one is its own is not said
        elif history:
            body["history"] = True
        atoms.append(Atom(found.start(), found.end(), key, {"condition": body}, label))
    return atoms


# Named conditions oncology exclusions list on their own ("History of hepatic encephalopathy within the
# past 12 months", "Phenylketonuria.", "Requires the use of home oxygen"). Each pattern is the condition's
# name only: a qualifier the record cannot decide ("symptomatic", "uncontrolled", "clinically significant",
# a CTCAE grade) is left over beside it, and the structurer keeps such an exclusion as text. ICD-10-CM
# codes are matched as prefixes.
NAMED_CONDITIONS: tuple[tuple[str, str, str, list[str], list[str]], ...] = (
    # G95.2: other and unspecified cord compression (G95.20 unspecified, G95.29 other).
    ("cord-compression", "Spinal cord compression", r"\bspinal cord compression\b|\bcord compression\b",
     ["icd10cm:G95.2"], ["spinal cord compression", "cord compression"]),
    # K76.82 (since FY2023): hepatic encephalopathy NOS, without coma, portal-systemic encephalopathy.
    ("hepatic-encephalopathy", "Hepatic encephalopathy",
     r"\bhepatic encephalopathy\b|\bportal[- ]?systemic encephalopathy\b|\bportosystemic encephalopathy\b",
     ["icd10cm:K76.82"], ["hepatic encephalopathy", "portal-systemic encephalopathy", "portosystemic encephalopathy"]),
    # I81: portal vein thrombosis (acute or chronic: one code), portal vein obstruction.
    ("portal-vein-thrombosis", "Portal vein thrombosis", r"\bportal vein thrombosis(?:\s*\(PVT\))?",
     ["icd10cm:I81"], ["portal vein thrombosis"]),
    # H34.81 central, H34.83 tributary (branch) retinal vein occlusion; never H34.82 (venous engorgement).
    ("rvo", "Retinal vein occlusion", r"\bretinal vein occlusions?(?:\s*\(RVO\))?",
     ["icd10cm:H34.81", "icd10cm:H34.83"], ["retinal vein occlusion"]),
    # E70.0 classical phenylketonuria, E70.1 other hyperphenylalaninaemias.
    ("pku", "Phenylketonuria", r"\bphenylketonuria(?:\s*\(PKU\))?", ["icd10cm:E70.0", "icd10cm:E70.1"],
     ["phenylketonuria"]),
    ("fructose-intolerance", "Hereditary fructose intolerance", r"\bhereditary fructose intolerance\b",
     ["icd10cm:E74.12"], ["hereditary fructose intolerance"]),
    ("myasthenia", "Myasthenia gravis", r"\bmyasthenia gravis\b", ["icd10cm:G70.0"], ["myasthenia gravis"]),
    # Z99.81: dependence on supplemental (long-term) oxygen.
    ("home-oxygen", "Dependence on supplemental oxygen",
     r"\b(?:(?:requires?|requiring|need(?:s|ing)?|dependen(?:t|ce)|on)\s+)?(?:the\s+)?(?:use\s+of\s+)?"
     r"(?:home|long[- ]term|supplemental|continuous)\s+oxygen(?:\s+(?:therapy|supplementation))?\b",
     ["icd10cm:Z99.81"], ["dependence on supplemental oxygen", "home oxygen", "long-term oxygen therapy"]),
    # Z95.0: presence of cardiac pacemaker; Z95.810: presence of automatic (implantable) cardiac defibrillator.
    ("pacemaker", "Cardiac pacemaker",
     r"\b(?:(?:implanted|implantable)\s+(?:with\s+)?(?:an?\s+)?)?(?:cardiac\s+)?pacemakers?\b",
     ["icd10cm:Z95.0"], ["pacemaker"]),
    # L51.1 Stevens-Johnson syndrome, L51.2 toxic epidermal necrolysis, L51.3 their overlap.
    ("sjs-ten", "Stevens-Johnson syndrome / toxic epidermal necrolysis",
     r"\bStevens[- ]Johnson syndrome(?:\s*\(SJS\))?"
     r"(?:\s*(?:,|or|and/or|/)\s*toxic epidermal necrolysis(?:\s*\(TEN\))?)?"
     r"|\btoxic epidermal necrolysis(?:\s*\(TEN\))?",
     ["icd10cm:L51.1", "icd10cm:L51.2", "icd10cm:L51.3"], ["stevens-johnson syndrome", "toxic epidermal necrolysis"]),
    # K85 acute pancreatitis; K86.0, K86.1 chronic pancreatitis (alcohol-induced, other).
    ("pancreatitis", "Pancreatitis",
     r"\b(?:acute\s+or\s+chronic\s+|chronic\s+or\s+acute\s+)pancreatitis\b|(?<!acute )(?<!chronic )\bpancreatitis\b",
     ["icd10cm:K85", "icd10cm:K86.0", "icd10cm:K86.1"], ["pancreatitis"]),
    ("acute-pancreatitis", "Acute pancreatitis", r"(?<!or )\bacute pancreatitis\b", ["icd10cm:K85"],
     ["acute pancreatitis"]),
    ("chronic-pancreatitis", "Chronic pancreatitis", r"(?<!or )\bchronic pancreatitis\b",
     ["icd10cm:K86.0", "icd10cm:K86.1"], ["chronic pancreatitis"]),
    # K50 Crohn's disease, K51 ulcerative colitis.
    ("ibd", "Inflammatory bowel disease",
     r"\binflammatory bowel diseases?(?:\s*\(IBD\))?"
     r"(?:\s*\((?:e\.g\.,?\s*|including\s+)?Crohn'?s disease(?:\s+(?:or|and)|,)\s+ulcerative colitis\))?",
     ["icd10cm:K50", "icd10cm:K51"], ["crohn's disease", "ulcerative colitis", "inflammatory bowel disease"]),
    # K70.3 alcoholic cirrhosis; K74.3-K74.5 biliary cirrhosis; K74.6 other and unspecified cirrhosis.
    ("cirrhosis", "Liver cirrhosis", r"\b(?:liver|hepatic)\s+cirrhosis\b|\bcirrhosis(?:\s+of\s+the\s+liver)?\b",
     ["icd10cm:K70.3", "icd10cm:K74.3", "icd10cm:K74.4", "icd10cm:K74.5", "icd10cm:K74.6"], ["cirrhosis"]),
    # G40: epilepsy and recurrent seizures (a single or febrile seizure, R56, is none).
    ("epilepsy", "Epilepsy", r"\bepilepsy\b|\bseizure disorders?\b", ["icd10cm:G40"], ["epilepsy", "seizure disorder"]),
    ("icd-device", "Implantable cardioverter-defibrillator",
     r"\bimplant(?:ed|able) (?:cardioverter[- ])?defibrillators?(?:\s*\(ICD\))?", ["icd10cm:Z95.810"],
     ["implantable cardioverter-defibrillator", "implantable cardioverter defibrillator"]),
)  # fmt: skip
# Inborn errors of metabolism last for life: a record of one counts whatever status it was given.
LIFELONG = frozenset({"pku", "fructose-intolerance"})
NAMED_HISTORY = re.compile(r"\bhistory\b|\bprior\b|\bprevious(?:ly)?\b|\bever\b", re.IGNORECASE)


def find_named_conditions(text: str) -> list[Atom]:
    """Each named condition, active; "history of" counts a resolved one too; a window ("within the past
    12 months") counts one begun or ended inside it (the nearest window after the name, or the only one)."""
    windows = window_positions(text)
    atoms: list[Atom] = []
    for key, label, pattern, codes, names in NAMED_CONDITIONS:
        found = re.search(pattern, text, re.IGNORECASE)
        if not found:
            continue
        body: dict[str, Any] = {"label": label, "codes": list(codes), "names": list(names)}
        after = [days for at, days in windows if at >= found.end()]
        days = after[0] if after else (windows[0][1] if len(windows) == 1 else None)
        if days is not None:
            body.update(history=True, within_days=days)
        elif windows:
            continue  # several windows before it: which one is its own is not said
        elif NAMED_HISTORY.search(text) or key in LIFELONG:
            body["history"] = True
        atoms.append(Atom(found.start(), found.end(), key, {"condition": body}, label))
    return atoms


# --- an inclusion's negative pregnancy test for women of childbearing potential -----------------
# "Women of childbearing potential must have a negative serum pregnancy test within 7 days", "Negative
# pregnancy test (serum) for WOCBP". Who can become pregnant is a stand-in no data decide (mappings/README):
# any_of [NOT (female AND childbearing potential unknown), negative hCG inside the window]. A man meets it,
# a woman with a negative test in the window meets it, anyone else stays unknown.
WOCBP = re.compile(
    r"\b(?:(?:women|woman|females?|female (?:patients?|participants?|subjects?))\s+(?:of|with)\s+"
    r"(?:child-?\s?bearing|reproductive)\s+(?:potential|age|capacity)|WOCBP)\b(?:\s*\(WOCBP\))?",
    re.IGNORECASE,
)
NEGATIVE_PREGNANCY_TEST = re.compile(
    r"\bnegative\s+(?:(?:serum|urine|urinary|blood|serum or urine|urine or serum|highly sensitive)\s+)?"
    r"(?:\(?(?:β|beta)[- ]?h?CG\)?\s+)?pregnancy test(?:\s*\((?:serum|urine|serum or urine)\))?"
    r"|\bpregnancy test\s+(?:must|should)\s+be\s+negative\b",
    re.IGNORECASE,
)
# Only filler may sit between the group and the test ("must have a", "for"), nothing that changes it.
_BETWEEN = re.compile(r"^[\s,:]*(?:(?:must|should|will|need to|needs to|have|has|had|a|an|for|who|are|is|to)\s+)*$")


def find_negative_pregnancy_test(text: str) -> list[Atom]:
    group, test = WOCBP.search(text), NEGATIVE_PREGNANCY_TEST.search(text)
    if group is None or test is None:
        return []
    first, second = sorted((group, test), key=lambda m: m.start())
    if not _BETWEEN.match(text[first.end() : second.start()]):
        return []
    windows = window_positions(text)
    if len(windows) != 1:
        return []  # how recent the negative test must be is the protocol's to say: no default is safe
    body: dict[str, Any] = {
        "label": "Pregnancy test (hCG)",
        "codes": ["loinc:2106-3", "loinc:2118-8"],
        "result": "negative",
        "window_days": windows[0][1],
    }
    rule: Rule = {
        "any_of": [
            {
                "key": "not-wocbp",
                "text": group.group(0),
                "exclude": True,
                "all_of": [
                    {"key": "female", "text": group.group(0), "sex": "female"},
                    {
                        "key": "potential",
                        "text": group.group(0),
                        "not_computable": "whether she can become pregnant (childbearing potential as the protocol "
                        "defines it)",
                    },
                ],
            },
            {"key": "hcg", "text": test.group(0), "test": body},
        ]
    }
    return [Atom(first.start(), second.end(), "hcg-negative", rule, "Negative pregnancy test")]

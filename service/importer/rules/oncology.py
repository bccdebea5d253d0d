"""What oncology registries say most: the diagnosis, the AJCC stage, prior therapy classes and
washouts, driver biomarkers, and the lung conditions of immunotherapy trials.

Rule: a finder answers only for wording whose meaning is fixed (a named drug class, an AJCC stage
group, a gene named without a specific variant); codes are the ones checked in
../shared/reference/fhir-eligibility.md (ATC classes are matched as prefixes). Everything around
the finding (histology words, settings, lines, exceptions) stays to the structurer, which keeps
it as a not-computable remainder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.importer.rules.common import DURATION, WITHIN_DAYS, Atom, blank, days_of, op_of, window_positions
from service.importer.rules.findings import HISTORY_CUE

# Keys of the findings in this module: in an inclusion they must not sit in a negated or conditional
# sentence ("Not receiving radiotherapy within 14 days", "if platinum was given as adjuvant therapy").
ONCOLOGY_KEYS = frozenset(
    {"dx", "extent", "stage", "pd1", "ctla4", "platinum", "egfr-tki", "alk-tki", "radiotherapy", "chemo", "ild",
     "cdk46", "transplant", "transplant-status", "transplant-sct", "kras-g12c", "anticancer", "major-surgery",
     "immunosuppressant", "immunodeficiency", "steroids", "tb", "egfr", "alk", "ros1", "kras", "braf", "ret", "ntrk",
     "ntrk1", "ntrk2", "ntrk3", "nras", "hras", "pik3ca", "idh1", "idh2", "erbb2", "her2", "hcg-negative", "genes"}
)  # fmt: skip
NEGATION = re.compile(r"\b(?:no|not|without|never|free of|absence of|nor|none|cannot|lack of|unless|except)\b", re.I)

# --- diagnosis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancer:
    key: str
    label: str
    pattern: str
    codes: tuple[str, ...]
    names: tuple[str, ...]


CANCERS: tuple[Cancer, ...] = (
    Cancer(
        "nsclc",
        "Non-small cell lung cancer",
        r"\bnon[- ]?small[- ]cell lung (?:cancer|carcinoma)s?(?:\s*\(NSCLC\))?|\bNSCLC\b"
        r"|\bnon[- ]?small[- ]cell carcinoma of (?:the )?lung\b|\bcarcinoma,\s*non[- ]?small[- ]cell lung\b",
        # 254637007 NSCLC; 424132000 / 425048006 / 422968005 / 423121009 NSCLC, TNM stage 1-4 (Synthea).
        # ICD-10-CM C34 is left out: it holds small-cell lung cancer too.
        ("snomed:254637007", "snomed:424132000", "snomed:425048006", "snomed:422968005", "snomed:423121009"),
        (
            "non-small cell lung cancer",
            "non-small cell lung carcinoma",
            "non-small cell carcinoma of lung",
            "nsclc",
            "adenocarcinoma of lung",
            "lung adenocarcinoma",
            "squamous cell carcinoma of lung",
            "large cell carcinoma of lung",
        ),
    ),
    Cancer(
        "breast",
        "Breast cancer",
        r"\bbreast (?:cancer|carcinoma)s?\b|\bcarcinoma of (?:the )?breast\b|\bmalignant neoplasm of (?:the )?breast\b",
        ("snomed:254837009", "icd10cm:C50"),
        ("breast cancer", "breast carcinoma", "malignant neoplasm of breast", "carcinoma of breast"),
    ),
    Cancer(
        "crc",
        "Colorectal cancer",
        r"\bcolorectal (?:cancer|carcinoma|adenocarcinoma)s?(?:\s*\(CRC\))?|\bmCRC\b|\bCRC\b",
        ("icd10cm:C18", "icd10cm:C19", "icd10cm:C20"),
        (
            "colorectal cancer",
            "colon cancer",
            "rectal cancer",
            "malignant neoplasm of colon",
            "malignant neoplasm of rectum",
        ),
    ),
    Cancer(
        "prostate",
        "Prostate cancer",
        r"\bprostate (?:cancer|carcinoma|adenocarcinoma)s?\b|\badenocarcinoma of (?:the )?prostate\b",
        ("icd10cm:C61",),
        ("prostate cancer", "malignant neoplasm of prostate", "adenocarcinoma of prostate"),
    ),
)
SOLID_SITES = tuple(f"icd10cm:C{n}" for n in range(8)) + ("icd10cm:C80",)  # C00-C80: not lymphoid/haematopoietic
# ICD-10-CM chapter codes (classes matched as prefixes); a record with the text only matches by name.
MORE_CANCERS = (
    Cancer("pancreas", "Pancreatic cancer",
           # C25 holds every pancreatic cancer (acinar, neuroendocrine too): a named histology ("ductal
           # adenocarcinoma", PDAC) is left outside the match, so it stays a remainder the site confirms.
           r"\bpancreatic (?:cancer|carcinoma)s?\b|\bpancreatic(?= (?:ductal )?adenocarcinoma)"
           r"|\bcarcinoma of (?:the )?pancreas\b|\bcancer of (?:the )?pancreas\b(?!\s*(?:or|and)\b)",
           ("icd10cm:C25",),
           ("pancreatic cancer", "pancreatic adenocarcinoma", "pancreatic ductal adenocarcinoma",
            "malignant neoplasm of pancreas", "carcinoma of pancreas")),
    Cancer("hcc", "Hepatocellular carcinoma", r"\bhepatocellular carcinoma(?:\s*\(HCC\))?|\bHCC\b",
           ("icd10cm:C22.0",), ("hepatocellular carcinoma", "liver cell carcinoma")),
    # The gastroesophageal junction is the cardia, C16.0.
    Cancer("gastric", "Gastric or gastroesophageal junction cancer",
           r"\bgastric(?:\s*(?:or|and/or|/)\s*gastro-?o?esophageal junction(?:\s*\(GEJ\))?)?"
           r" (?:adenocarcinoma|cancer|carcinoma)s?\b|\bstomach cancer\b",
           ("icd10cm:C16",),
           ("gastric cancer", "gastric adenocarcinoma", "stomach cancer", "malignant neoplasm of stomach")),
    Cancer("melanoma", "Melanoma of skin", r"\b(?:cutaneous |skin )?melanomas?\b(?! of the (?:eye|uvea|choroid))",
           ("icd10cm:C43", "snomed:93655004", "snomed:372244006"),
           ("malignant melanoma", "melanoma of skin", "cutaneous melanoma")),  # never "melanoma in situ"
    Cancer("myeloma", "Multiple myeloma", r"\bmultiple myeloma(?:\s*\(MM\))?", ("icd10cm:C90.0",),
           ("multiple myeloma",)),
    # Cancers named by their site (a site code says the site, not a histology: "serous", "squamous" stay text).
    Cancer("ovarian-tube-peritoneal", "Ovarian, fallopian tube or primary peritoneal cancer",
           r"\bovarian(?:\s*,)?\s+fallopian tube(?:\s*,)?\s+(?:and/)?or\s+primary peritoneal (?:cancer|carcinoma)s?\b",
           ("icd10cm:C56", "icd10cm:C57.0", "icd10cm:C48.1", "icd10cm:C48.2"),
           ("ovarian cancer", "malignant neoplasm of ovary", "fallopian tube cancer", "primary peritoneal carcinoma")),
    Cancer("ovarian", "Ovarian cancer", r"\bovarian (?:cancer|carcinoma)s?\b|\bcarcinoma of (?:the )?ovary\b",
           ("icd10cm:C56",), ("ovarian cancer", "ovarian carcinoma", "malignant neoplasm of ovary")),
    Cancer("endometrial", "Endometrial cancer", r"\bendometrial (?:cancer|carcinoma)s?\b", ("icd10cm:C54.1",),
           ("endometrial cancer", "endometrial carcinoma", "malignant neoplasm of endometrium")),
    Cancer("cervical", "Cervical cancer",  # never "cervical carcinoma in situ" (D06)
           r"\b(?:cervical|uterine cervix) (?:cancer|carcinoma)s?\b(?!\s+in\s+situ)|\b(?:carcinoma|cancer) of (?:the )?"
           r"(?:uterine )?cervix\b(?!\s+in\s+situ)",
           ("icd10cm:C53",), ("cervical cancer", "malignant neoplasm of cervix uteri")),
    Cancer("esophageal", "Esophageal cancer", r"\b(?:o?esophageal) (?:cancer|carcinoma)s?\b(?!\s*(?:/|or|and))",
           ("icd10cm:C15",), ("esophageal cancer", "oesophageal cancer", "malignant neoplasm of esophagus")),
    Cancer("thyroid", "Thyroid cancer", r"\bthyroid (?:cancer|carcinoma)s?\b", ("icd10cm:C73",),
           ("thyroid cancer", "malignant neoplasm of thyroid gland")),
    Cancer("mesothelioma", "Mesothelioma", r"\b(?:malignant\s+)?mesotheliomas?\b", ("icd10cm:C45",),
           ("mesothelioma",)),
    Cancer("biliary", "Biliary tract cancer", r"\bbiliary tract (?:cancer|carcinoma)s?(?:\s*\(BTC\))?",
           ("icd10cm:C22.1", "icd10cm:C23", "icd10cm:C24"), ("biliary tract cancer", "cholangiocarcinoma",
                                                           "gallbladder cancer")),
    # Any primary or secondary malignancy outside the lymphoid/haematopoietic chapter (C81-C96).
    Cancer("solid", "Malignant solid tumour", r"\b(?:malignant\s+)?solid (?:tumou?r|malignanc(?:y|ies)|cancer)s?\b",
           SOLID_SITES, ("solid tumor", "solid tumour")),  # never "carcinoma" alone: carcinoma in situ is none
)  # fmt: skip
CANCERS = CANCERS + MORE_CANCERS
# The words that say how the diagnosis was made: a recorded diagnosis stands for them.
CONFIRMATION = re.compile(
    # "proven by histology or cytology", "based on histopathological findings from tumour tissue",
    # "histologic documentation of": how the diagnosis was made, which a recorded diagnosis stands for.
    r"\b(?:proven|confirmed|documented|diagnosed)\s+(?:by|on)\s+(?:histopathology|histology|cytology|pathology)"
    r"(?:\s*(?:or|and/or|and|/)\s*(?:histopathology|histology|cytology|pathology))?"
    r"|\bbased\s+on\s+(?:the\s+)?(?:histopatholog(?:y|ic(?:al)?)|histolog(?:y|ic(?:al)?)|patholog(?:y|ic(?:al)?))"
    r"(?:\s+findings)?(?:\s+(?:from|of|on)\s+(?:the\s+)?(?:tumou?r\s+)?(?:tissue|biopsy|specimens?))?"
    r"|\b(?:histopatholog(?:ic(?:al)?ly|ic(?:al)?|y))(?:\s*(?:or|and/or|and|/)\s*(?:cytologic(?:al)?ly|cytolog(?:ic(?:al)?|y)))?"
    r"(?:\s*(?:-\s*)?(?:confirmed|documented|proven|verified|diagnosed|confirmation|diagnosis|evidence|documentation))?"
    r"(?:\s+of)?"
    r"|\b(?:(?:histologic(?:al)?ly|cytologic(?:al)?ly|patholog(?:ic(?:al)?)?ly)-?(?:\s*(?:and/or|or|and|/|,)\s*"
    r"(?:histologic(?:al)?ly|cytologic(?:al)?ly|patholog(?:ic(?:al)?)?ly)-?)*"
    r"|(?:histolog(?:ical|ic|y)|cytolog(?:ical|ic|y)|patholog(?:ical|ic|y))(?:\s*(?:and/or|or|and|/|,)\s*"
    r"(?:histolog(?:ical|ic|y)|cytolog(?:ical|ic|y)|patholog(?:ical|ic|y)))*)"
    r"(?:\s*\((?:histo)?patholog(?:ic(?:al)?)?ly\))?"
    r"(?:\s*(?:or|and/or|and)\s*(?:histologic(?:al)?ly|cytologic(?:al)?ly|patholog(?:ic(?:al)?)?ly))?"
    r"(?:\s*(?:-\s*)?(?:confirmed|documented|proven|verified|diagnosed|confirmation|diagnosis|evidence|documentation))?"
    r"(?:\s*(?:diagnosis|evidence))?(?:\s*of)?",
    re.IGNORECASE,
)
# Cancers whose very name is a microscopic finding: "non-small cell", "melanoma", "mesothelioma" can only be
# told by a pathologist (on tissue or on cells), never from imaging. A recorded diagnosis of one of them was
# therefore made by histology or cytology, and "histologically or cytologically confirmed NSCLC" asks nothing
# more than the record says. "Histologically confirmed" alone does ask more (a diagnosis on cytology only does
# not meet it), and a cancer named by its site (HCC, pancreatic cancer) may be diagnosed on imaging alone
# (blind check seed 5150 #9): both keep the confirmation for the site.
MICROSCOPIC_DIAGNOSES = frozenset({"Non-small cell lung cancer", "Melanoma of skin", "Mesothelioma"})


def confirmation_is_the_record(confirmation: str, diagnosis_labels: list[str]) -> bool:
    """Whether a recorded diagnosis already is the confirmation the wording asks for (see MICROSCOPIC_DIAGNOSES)."""
    if not diagnosis_labels or not all(label in MICROSCOPIC_DIAGNOSES for label in diagnosis_labels):
        return False
    # Tissue and cells both admitted, or "pathologically" (histopathology and cytopathology alike).
    histology, cytology = (re.search(stem, confirmation, re.IGNORECASE) for stem in ("histo", "cyto"))
    pathology = re.search("patholog", confirmation, re.IGNORECASE)
    return bool(histology and cytology) or bool(pathology and not histology and not cytology)


# "Response Evaluation Criteria in Solid Tumors" names RECIST, not a diagnosis.
RECIST_NAME = re.compile(r"criteria in\s*$", re.IGNORECASE)
# Types whose code is not the generic cancer's: these stay text.
OTHER_HISTOLOGY = re.compile(r"\b(?:small[- ]cell|neuroendocrine|sarcomatoid|mixed|carcinoid)\b", re.IGNORECASE)


def find_diagnosis(text: str) -> list[Atom]:
    """The trial's cancer as an active recorded condition (inclusions only: "confirmed NSCLC"); a
    cancer recorded as resolved / in remission does not meet it."""
    for cancer in CANCERS:
        found = next(
            (m for m in re.finditer(cancer.pattern, text, re.IGNORECASE) if not RECIST_NAME.search(text[: m.start()])),
            None,
        )
        if not found:
            continue
        if OTHER_HISTOLOGY.search(re.sub(r"non[- ]?small[- ]cell", " ", text, flags=re.IGNORECASE)):
            return []
        body: dict[str, Any] = {
            "label": cancer.label,
            "codes": list(cancer.codes),
            "names": list(cancer.names),
        }
        return [Atom(found.start(), found.end(), "dx", {"condition": body}, cancer.label)]
    return []


# Disease extent in words: no data element says it, so it is kept as a part the site checks.
EXTENT = re.compile(
    r"\b(?:(?:locally|loco-?regionally)\s+advanced|advanced|recurrent|relapsed|unresectable|inoperable|metastatic)"
    r"(?:\s*(?:,|/|and/or|or|and|,\s*or|,\s*and/or)\s*(?:(?:locally|loco-?regionally)\s+advanced|advanced|recurrent|"
    r"relapsed|unresectable|inoperable|metastatic))*(?:\s*\((?:unresectable|inoperable)\))?",
    re.IGNORECASE,
)


def find_extent(text: str) -> list[Atom]:
    """ "locally advanced or metastatic": a required part the importer cannot decide, named as such."""
    found = EXTENT.search(text)
    if not found or not any(re.search(c.pattern, text, re.IGNORECASE) for c in CANCERS):
        return []
    reason = f"the disease extent ({found.group(0)}) is not in coded data the importer reads: the site checks it"
    return [Atom(found.start(), found.end(), "extent", {"not_computable": reason}, "Disease extent")]


# --- AJCC stage ---------------------------------------------------------------------------------

STAGE = re.compile(
    r"\b(?:AJCC\s*(?:v?\d+(?:th)?\s*(?:edition)?\s*)?)?(?i:stages?)\s*(?P<groups>(?:IV|I{1,3})[ABC]?"
    r"(?:\s*(?:-|–|(?i:to|through|or|and/or|and)|,|/)\s*(?:(?i:stage)\s*)?(?:IV|I{1,3})[ABC]?)*)(?![\w])",
)
OTHER_STAGING = re.compile(
    r"Masaoka|FIGO|Ann Arbor|Lugano|\bISS\b|\bR-ISS\b|Binet|\bRai\b|BCLC|Durie|Child|Barcelona|Okuda|IMWG|INSS|Enneking"
    r"|\bT\d|\bN\d|\bM\d|\bpT|\bcT|\bypT",
    re.IGNORECASE,
)
MAJORS = ("I", "II", "III", "IV")


def find_stage(text: str) -> list[Atom]:
    if OTHER_STAGING.search(text):
        return []  # another staging system, or T/N/M categories the stage group does not say
    atoms: list[Atom] = []
    for found in STAGE.finditer(text):
        allowed = _stage_groups(found.group("groups"))
        if allowed is None:
            return []
        atoms.append(Atom(found.start(), found.end(), "stage", {"stage": {"allowed": allowed}}, "Stage"))
    return atoms[:1] if len(atoms) == 1 else []


def _stage_groups(written: str) -> list[str] | None:
    """ "IIIB-IV" → IIIB, IIIC, IV; "IIIB or IV" → IIIB, IV; a bare major group admits its subgroups."""
    parts = re.split(r"\s*(-|–|TO|THROUGH|OR|AND/OR|AND|,|/)\s*(?:STAGE\s*)?", written.upper().strip())
    groups = parts[0::2]
    joins = parts[1::2]
    allowed: list[str] = []
    for n, group in enumerate(groups):
        if n and joins[n - 1] in ("-", "–", "TO", "THROUGH"):
            expanded = _stage_range(groups[n - 1], group)
            if expanded is None:
                return None
            allowed += [g for g in expanded if g not in allowed]
        elif group not in allowed:
            allowed.append(group)
    return allowed


def _stage_range(low: str, high: str) -> list[str] | None:
    def split(group: str) -> tuple[int, str]:
        major = group.rstrip("ABC")
        return MAJORS.index(major), group[len(major) :]

    if low.rstrip("ABC") not in MAJORS or high.rstrip("ABC") not in MAJORS:
        return None
    (m1, s1), (m2, s2) = split(low), split(high)
    if (m1, s1 or "") > (m2, s2 or "Z"):
        return None
    out: list[str] = []
    for major in range(m1, m2 + 1):
        name = MAJORS[major]
        first = s1 if major == m1 and s1 else None
        last = s2 if major == m2 and s2 else None
        if first is None and last is None:
            out.append(name)
        else:
            subs = "ABC"
            out += [name + s for s in subs[subs.index(first or "A") : subs.index(last or "C") + 1]]
    return out


# --- prior therapy and washouts -----------------------------------------------------------------


# "a live vaccine or live-attenuated vaccine", "any non-oncology live vaccine therapy used for
# prevention of infectious diseases"; an inactivated or recombinant vaccine is no live vaccine.
LIVE_VACCINE = (
    r"\b(?:non-oncology\s+)?live(?:[- ]attenuated)?(?:\s+(?:or|and/or)\s+live[- ]attenuated)?\s+(?:virus\s+|viral\s+)?"
    r"vaccin(?:e|es|ation|ations)\b(?:\s+or\s+live[- ]attenuated\s+vaccines?\b)?"
    r"(?:\s+(?:therapy\s+)?(?:used\s+)?for\s+(?:the\s+)?prevention\s+of\s+infectious\s+diseases?\b)?"
)
# Live vaccines: the WHO SMART Immunizations value set IMMZ.Z.LiveAttenuated (ATC), plus BCG (J07AN01)
# and live zoster (J07BK02); never J07BK03 (recombinant zoster, not live). CVX (CDC table): OPV 02,
# MMR 03, M/R 04, measles 05, rubella 06, mumps 07, BCG 19, varicella 21, oral typhoid 25, yellow
# fever 37, rubella/mumps 38, adenovirus oral 54/55/143, rotavirus 74/116/119/122, vaccinia 75,
# VEE live 80, MMRV 94, LAIV 111/149, H1N1 nasal 125, zoster live 121 (never 187, recombinant), yellow
# fever 183/184 (every yellow fever vaccine is live), cholera live oral 174, Ebola Zaire live 204; ATC
# J07BH02 rotavirus pentavalent live (blind check seed 2031 #4, #49).
LIVE_VACCINE_CODES = tuple(
    [f"atc:{c}" for c in (
        "J07AE02", "J07AP01", "J07BA03", "J07BB03", "J07BD01", "J07BD51", "J07BD52", "J07BD53", "J07BD54",
        "J07BE01", "J07BF01", "J07BF02", "J07BF04", "J07BH01", "J07BJ01", "J07BJ51", "J07BK01", "J07BL01",
        "J07AN01", "J07BK02", "J07BH02",
    )]
    + [f"cvx:{c}" for c in (
        "02", "03", "04", "05", "06", "07", "19", "21", "25", "37", "38", "54", "55", "143", "74", "116", "119",
        "122", "75", "80", "94", "111", "149", "125", "121", "183", "184", "174", "204",
    )]
)  # fmt: skip


@dataclass(frozen=True)
class TherapyClass:
    key: str
    label: str
    pattern: str
    codes: tuple[str, ...]
    names: tuple[str, ...]
    kind: str = "medication"  # or "procedure"; "judgement": no data decide it, the site confirms
    needs_window: bool = False  # "radiotherapy" alone is too broad; "radiotherapy within 2 weeks" is a washout
    current: bool = False  # the wording says taken now ("on antiretroviral therapy"), not ever received
    except_codes: tuple[str, ...] = ()  # class members that do not mean the class the wording names


PD1_NAMES = (
    "nivolumab", "pembrolizumab", "durvalumab", "avelumab", "atezolizumab", "cemiplimab", "dostarlimab",
    "tislelizumab", "toripalimab", "camrelizumab", "sintilimab", "serplulimab", "sugemalimab", "envafolimab",
    "retifanlimab", "penpulimab", "zimberelimab", "benmelstobart", "adebrelimab",
)  # fmt: skip
THERAPIES = (
    TherapyClass(
        "pd1",
        "Anti-PD-1 / PD-L1 antibody",
        r"\banti-?\s?PD-?(?:L)?1(?:\s*(?:/|or|,)\s*(?:anti-?\s?)?PD-?L?1)*\b|\bPD-?(?:L)?1(?:\s*/\s*PD-?L1)?\s+(?:inhibitors?|blockers?|blockade|antibod(?:y|ies)|targeted)",
        ("atc:L01FF",),
        PD1_NAMES,
    ),
    TherapyClass(
        "ctla4",
        "Anti-CTLA-4 antibody",
        r"\banti-?\s?CTLA-?4\b|\bCTLA-?4\s+(?:inhibitors?|antibod(?:y|ies)|blockade)",
        ("atc:L01FX04",),
        ("ipilimumab", "tremelimumab"),
    ),
    TherapyClass(
        "platinum",
        "Platinum-based chemotherapy",
        r"\bplatinum(?:[- ]based|[- ]containing)?"
        r"(?:\s+(?:doublet\s+)?(?:chemotherapy|therapy|regimen|doublet|agents?))?",
        ("atc:L01XA",),
        ("cisplatin", "carboplatin", "oxaliplatin", "nedaplatin", "lobaplatin"),
    ),
    TherapyClass(
        "egfr-tki",
        "EGFR tyrosine kinase inhibitor",
        r"\bEGFR[- ](?:tyrosine kinase inhibitors?|TKIs?)(?:\s*\(TKIs?\))?",
        ("atc:L01EB",),
        (
            "gefitinib",
            "erlotinib",
            "afatinib",
            "osimertinib",
            "dacomitinib",
            "icotinib",
            "aumolertinib",
            "almonertinib",
            "furmonertinib",
            "lazertinib",
            "befotertinib",
        ),
    ),  # fmt: skip
    TherapyClass(
        "alk-tki",
        "ALK inhibitor",
        r"\bALK[- ](?:tyrosine kinase inhibitors?|TKIs?|inhibitors?)(?:\s*\(TKIs?\))?",
        ("atc:L01ED",),
        ("crizotinib", "ceritinib", "alectinib", "brigatinib", "lorlatinib", "ensartinib", "iruplinalkib"),
    ),
    TherapyClass(
        "radiotherapy",
        "Radiotherapy",
        r"\b(?:radiotherapy|radiation therapy|radiation treatment)\b",
        ("snomed:1287742003", "snomed:108290001"),
        ("radiotherapy", "radiation therapy"),
        kind="procedure",
        needs_window=True,
    ),
    TherapyClass(
        "chemo",
        "Cytotoxic chemotherapy",
        r"\b(?:systemic\s+)?(?:cytotoxic\s+)?chemotherapy\b",
        ("atc:L01A", "atc:L01B", "atc:L01C", "atc:L01D", "atc:L01XA"),
        (
            "cisplatin",
            "carboplatin",
            "oxaliplatin",
            "pemetrexed",
            "docetaxel",
            "paclitaxel",
            "gemcitabine",
            "vinorelbine",
            "etoposide",
            "irinotecan",
            "fluorouracil",
            "capecitabine",
            "doxorubicin",
            "cyclophosphamide",
        ),
        needs_window=True,
    ),  # fmt: skip
    TherapyClass(
        "kras-g12c",
        "KRAS G12C inhibitor",
        r"\bKRAS[- ]?(?:p\.)?G12C(?:[- ](?:targeted|selective|specific|directed))?(?:\s+small[- ]molecule)?"
        r"\s+inhibitors?\b",
        # ATC L01XX73 sotorasib, L01XX77 adagrasib; the others (in trials) have no ATC code yet: by name.
        ("atc:L01XX73", "atc:L01XX77"),
        ("sotorasib", "adagrasib", "divarasib", "olomorasib", "glecirasib", "garsorasib", "fulzerasib", "opnurasib",
         "elironrasib"),
    ),  # fmt: skip
    TherapyClass(
        "anticancer",
        "Systemic anti-cancer drug therapy",
        # Only wording that names drugs ("antitumor drugs", "systemic anti-cancer therapy"): a bare
        # "anti-cancer therapy" may mean radiotherapy or surgery too, and stays text.
        r"\b(?:(?:systemic|any)\s+)?(?:anti-?\s?cancer|anti-?\s?tumou?r|antineoplastic)\s+(?:drugs?|agents?|medications?)\b"
        r"|\bsystemic\s+(?:anti-?\s?cancer|anti-?\s?tumou?r|antineoplastic)\s+(?:therap(?:y|ies)|treatments?)\b",
        # ATC L01 antineoplastic agents, L02 endocrine therapy of cancer.
        ("atc:L01", "atc:L02"),
        (),
        needs_window=True,
    ),
    TherapyClass(
        "immunosuppressant",
        "Immunosuppressive therapy",
        r"\b(?:(?:any\s+)?(?:other\s+)?(?:form\s+of\s+)?)?immunosuppressive\s+(?:therapy|therapies|treatment|drugs?|agents?|"
        r"medications?)\b|\bimmunosuppressants?\b",
        # ATC L04 immunosuppressants (calcineurin, mTOR and TNF inhibitors, azathioprine, methotrexate...).
        ("atc:L04",),
        (),
        needs_window=True,
    ),
    TherapyClass(
        "major-surgery",
        "Major surgery",
        r"\bmajor\s+(?:surgery|surgical\s+(?:procedures?|interventions?|operations?))\b",
        # "Major" is the investigator's call, no procedure class: a list of common operations misses a
        # thymectomy or a gastrectomy and counts a lumpectomy (review seed 4242 #31). The site confirms.
        (),
        (),
        kind="judgement",
        needs_window=True,
    ),
    TherapyClass(
        "cdk46",
        "CDK4/6 inhibitor",
        # Only CDK4/6 wording: a bare "CDK inhibitor" takes in CDK2/7/9 inhibitors (dinaciclib, samuraciclib)
        # that L01EF does not hold, so it stays text (blind check seed 7777, item 17).
        r"\bCDK\s?4\s?(?:/|and|or)\s?6\s?inhibitors?\b|\bcyclin[- ]dependent kinase(?:s)? 4\s?(?:/|and|or)\s?6"
        r"(?:\s*\(CDK\s?4\s?/\s?6\))?\s+inhibitors?\b",
        ("atc:L01EF",),  # ATC L01EF: palbociclib, ribociclib, abemaciclib (trilaciclib, dalpiciclib by name)
        ("palbociclib", "ribociclib", "abemaciclib", "dalpiciclib", "trilaciclib", "lerociclib"),
    ),
    TherapyClass(
        "fgfr",
        "FGFR inhibitor",
        # "FGFR inhibitor", "selective FGFR1-3 inhibitor", "inhibitor of the fibroblast growth factor (FGF)-FGFR
        # pathway". Multi-kinase drugs that touch FGFR too (lenvatinib, nintedanib) are not FGFR inhibitors.
        r"\b(?:selective\s+)?(?:pan-?)?FGFR\s?[1-4]?(?:\s?(?:/|-|,)\s?[1-4])*\s+"
        r"(?:tyrosine kinase\s+)?(?:inhibitors?|TKIs?)\b"
        r"|\b(?:selective\s+)?fibroblast growth factor receptor(?:\s*\(FGFR\))?\s+(?:tyrosine kinase\s+)?inhibitors?\b"
        r"|\b(?:selective\s+)?inhibitors?\s+of\s+the\s+(?:fibroblast growth factor\s*(?:\(FGF\))?\s*[-/]?\s*)?"
        r"(?:FGF\s*[-/]\s*)?FGFR\s+(?:signall?ing\s+)?pathway\b",
        # ATC L01EN: erdafitinib, pemigatinib, infigratinib, futibatinib; the others by name.
        ("atc:L01EN",),
        ("erdafitinib", "pemigatinib", "infigratinib", "futibatinib", "derazantinib", "rogaratinib", "bemarituzumab",
         "lirafugratinib", "tinengotinib"),
    ),
    TherapyClass(
        "vegf",
        "Anti-VEGF / VEGFR therapy",
        # Drugs, not antibodies only: "anti-VEGF antibody" names a narrower class and stays text.
        r"\banti-?\s?VEGF(?:R\d?)?(?:\s*(?:/|or)\s*(?:anti-?\s?)?VEGFR\d?)?(?![\w-])(?!\s+(?:monoclonal\s+)?antibod)"
        r"(?:\s+(?:therap(?:y|ies)|agents?|drugs?|treatments?))?"
        r"|\bVEGF(?:R\d?)?(?:\s*(?:/|or)\s*VEGFR\d?)?[- ](?:targeted|targeting|directed)\s+"
        r"(?:therap(?:y|ies)|agents?|drugs?)"
        r"|\bVEGFR?\d?(?:\s*(?:/|or)\s*VEGFR\d?)?\s+(?:tyrosine kinase\s+)?(?:inhibitors?|TKIs?)\b",
        # ATC L01FG VEGF/VEGFR antibodies, L01EK VEGFR kinase inhibitors, L01XX44 aflibercept; the
        # multi-kinase VEGFR inhibitors (in L01EX with others) by name.
        ("atc:L01FG", "atc:L01EK", "atc:L01XX44"),
        ("bevacizumab", "ramucirumab", "aflibercept", "axitinib", "cediranib", "tivozanib", "fruquintinib", "sunitinib",
         "sorafenib", "pazopanib", "regorafenib", "lenvatinib", "cabozantinib", "vandetanib", "anlotinib", "apatinib",
         "rivoceranib", "surufatinib", "nintedanib"),
    ),
    TherapyClass(
        "mmae-adc",
        "MMAE-containing antibody-drug conjugate",
        r"\b(?:MMAE|monomethyl auristatin E(?:\s*\(MMAE\))?)[- ](?:containing|based|conjugated|payload)\s+"
        r"(?:ADCs?|antibody[- ]drug conjugates?(?:\s*\(ADCs?\))?)",
        # Every "-vedotin" (the INN stem for MMAE conjugates): L01FX05 brentuximab, L01FX13 enfortumab vedotin;
        # the others (polatuzumab, tisotumab, disitamab, telisotuzumab vedotin) match by the stem's name.
        ("atc:L01FX05", "atc:L01FX13"),
        ("vedotin",),
    ),
    TherapyClass(
        "taxane",
        "Taxane",
        r"\btaxanes?\b(?:[- ](?:based|containing))?",
        ("atc:L01CD",),  # ATC L01CD taxanes: paclitaxel, docetaxel, cabazitaxel, paclitaxel poliglumex
        ("paclitaxel", "docetaxel", "cabazitaxel", "nab-paclitaxel"),
    ),
    TherapyClass(
        "kras-inhibitor",
        "KRAS inhibitor",
        # Any KRAS inhibitor: G12C-selective, G12D-selective and pan-RAS. A variant-specific wording other than
        # G12C ("KRAS G12D inhibitor") has no code and is left to text.
        r"\b(?:pan-?)?KRAS(?![- ]?(?:p\.)?G\d)(?:[- ](?:targeted|selective|specific|directed))?"
        r"(?:\s+small[- ]molecule)?\s+inhibitors?\b",
        ("atc:L01XX73", "atc:L01XX77"),
        ("sotorasib", "adagrasib", "divarasib", "olomorasib", "glecirasib", "garsorasib", "fulzerasib", "opnurasib",
         "elironrasib", "zoldonrasib", "daraxonrasib"),
    ),
    TherapyClass(
        "antiretroviral",
        "Antiretroviral therapy (current)",
        # Only "on / receiving / taking" it: taken now. HIV antiretrovirals: ATC J05AE protease inhibitors,
        # J05AF nucleos(t)ide reverse transcriptase inhibitors, J05AG non-nucleosides, J05AJ integrase
        # inhibitors, J05AR combinations.
        r"(?:\b(?:on|receiving|taking|currently\s+(?:on|receiving|taking))\s+)(?:(?:concurrent|ongoing|current)\s+)?"
        r"(?:highly\s+active\s+|combination\s+)?anti-?\s?retroviral\s+(?:therapy|treatment|drugs?|medications?|agents?)"
        r"(?:\s*\((?:H?AART|c?ART)\))?",
        ("atc:J05AE", "atc:J05AF", "atc:J05AG", "atc:J05AJ", "atc:J05AR"),
        # HIV antiretrovirals outside those groups (entry, attachment and capsid inhibitors), by name.
        ("antiretroviral", "maraviroc", "enfuvirtide", "fostemsavir", "ibalizumab", "lenacapavir"),
        current=True,
        # No antiretroviral therapy: the hepatitis B-only nucleosides adefovir, entecavir, telbivudine; the
        # nucleosides also given alone for hepatitis B (lamivudine, tenofovir disoproxil / alafenamide: an HIV
        # regimen always adds another class); nirmatrelvir + ritonavir, a COVID-19 course (seed 2031 #23).
        except_codes=("atc:J05AF08", "atc:J05AF10", "atc:J05AF11", "atc:J05AF05", "atc:J05AF07", "atc:J05AF13",
                      "atc:J05AE30"),
    ),
    TherapyClass(
        "checkpoint",
        "Immune checkpoint inhibitor",
        r"\b(?:immune[- ])?checkpoint[- ](?:inhibitors?|blockers?|blockade)(?:\s*\(ICIs?\))?",
        # ATC L01FF PD-1/PD-L1, L01FX04 ipilimumab; the other checkpoints (CTLA-4, LAG-3, TIGIT, TIM-3) by name.
        ("atc:L01FF", "atc:L01FX04"),
        PD1_NAMES + ("ipilimumab", "tremelimumab", "relatlimab", "tiragolumab", "vibostolimab", "domvanalimab",
                     "cobolimab", "favezelimab", "fianlimab", "ociperlimab"),
    ),
    TherapyClass(
        "her2-targeted",
        "HER2-targeted therapy",
        # Drugs, not antibodies only: "anti-HER2 antibody (drug conjugate)" names a narrower class and stays text.
        r"\b(?:anti-?\s?HER-?2|HER-?2[- ](?:targeted|targeting|directed))(?![\w-])(?!\s+(?:monoclonal\s+)?antibod)"
        r"(?:\s+(?:therap(?:y|ies)|agents?|drugs?|treatments?))?",
        # ATC L01FD HER2 antibodies and conjugates (trastuzumab, pertuzumab, T-DM1, T-DXd), L01EH HER2 kinase
        # inhibitors (lapatinib, neratinib, tucatinib); the others by name.
        ("atc:L01FD", "atc:L01EH"),
        ("trastuzumab", "pertuzumab", "margetuximab", "lapatinib", "neratinib", "tucatinib", "pyrotinib", "zanidatamab",
         "disitamab vedotin"),
    ),
    TherapyClass(
        "anti-egfr-antibody",
        "Anti-EGFR antibody",
        r"\banti-?\s?EGFR\s+(?:monoclonal\s+)?antibod(?:y|ies)(?:\s*\((?:mAbs?|MoAbs?)\))?",
        ("atc:L01FE",),  # ATC L01FE: cetuximab, panitumumab, necitumumab (amivantamab by name)
        ("cetuximab", "panitumumab", "necitumumab", "amivantamab"),
    ),
    TherapyClass(
        "parp",
        "PARP inhibitor",
        r"\bPARP\s?(?:1\s?/\s?2\s?)?inhibitors?(?:\s*\(PARPi\))?|\bpoly\s*\(ADP-ribose\)\s*polymerase(?:\s*\(PARP\))?\s+inhibitors?",
        ("atc:L01XK",),  # ATC L01XK: olaparib, niraparib, rucaparib, talazoparib
        ("olaparib", "niraparib", "rucaparib", "talazoparib", "veliparib", "pamiparib", "fuzuloparib", "senaparib",
         "saruparib"),
    ),
    TherapyClass(
        "braf-mek",
        "BRAF or MEK inhibitor",
        r"\bBRAF\s*(?:/|and/or|or)\s*MEK\s+inhibitors?\b",  # never "BRAF and MEK": the combination, maybe
        ("atc:L01EC", "atc:L01EE"),  # ATC L01EC BRAF, L01EE MEK inhibitors
        ("vemurafenib", "dabrafenib", "encorafenib", "trametinib", "cobimetinib", "binimetinib", "selumetinib"),
    ),
    TherapyClass(
        "braf-inhibitor",
        "BRAF inhibitor",
        r"\bBRAF(?:[- ]V600E?)?\s+inhibitors?\b",
        ("atc:L01EC",),
        ("vemurafenib", "dabrafenib", "encorafenib"),
    ),
    TherapyClass(
        "mek-inhibitor",
        "MEK inhibitor",
        r"(?<!/)\bMEK\s?(?:1\s?/\s?2\s?)?inhibitors?\b",
        ("atc:L01EE",),
        ("trametinib", "cobimetinib", "binimetinib", "selumetinib", "mirdametinib", "avutometinib"),
    ),
    TherapyClass(
        "topo1",
        "Topoisomerase I inhibitor",
        # A topoisomerase I inhibitor payload counts ("deruxtecan", "govitecan" conjugates).
        r"\btopoisomerase[- ](?:I|1)\s+inhibitors?(?:[- ](?:containing|based))?"
        r"(?:\s+(?:ADCs?|antibody[- ]drug conjugates?))?",
        ("atc:L01CE",),  # ATC L01CE: topotecan, irinotecan, belotecan
        ("topotecan", "irinotecan", "belotecan", "deruxtecan", "govitecan", "exatecan"),
    ),
    TherapyClass(
        "proteasome",
        "Proteasome inhibitor",
        r"\bproteasome\s+inhibitors?(?:\s*\(PIs?\))?",
        ("atc:L01XG",),  # ATC L01XG: bortezomib, carfilzomib, ixazomib
        ("bortezomib", "carfilzomib", "ixazomib"),
    ),
    TherapyClass(
        "anti-cd38",
        "Anti-CD38 antibody",
        r"\banti-?\s?CD38\s+(?:monoclonal\s+)?(?:antibod(?:y|ies)|mAbs?|therap(?:y|ies)|agents?)",
        ("atc:L01FC",),  # ATC L01FC: daratumumab, isatuximab
        ("daratumumab", "isatuximab", "felzartamab"),
    ),
    TherapyClass(
        "live-vaccine",
        "Live (attenuated) vaccine",
        LIVE_VACCINE,
        LIVE_VACCINE_CODES,
        (
            "live vaccine",
            "live attenuated",
            "live-attenuated",
            "vaccine, live",
            "measles",
            "mumps",
            "rubella",
            "yellow fever",
            "bcg vaccine",
            "rotavirus",
            "oral polio",
            "flumist",
            "zostavax",
            "varivax",
            "proquad",
        ),
        needs_window=True,  # "live vaccines are not allowed during the study" is no lookback
    ),  # fmt: skip
)
# Every therapy class is an oncology finding (a negated or conditional one is no requirement).
ONCOLOGY_KEYS = ONCOLOGY_KEYS | {therapy.key for therapy in THERAPIES}
# Words that say "given before" around a therapy class; the atom covers them so they are no leftover.
THERAPY_LEAD = (
    r"(?:(?:has|have|had)\s+)?(?:(?:received|undergone|been treated with|treated with)\s+)?(?:any\s+)?"
    r"(?:(?:prior|previous|previously)\s+)?(?:(?:treatment|therapy|exposure|receipt)\s+(?:with|to)\s+|receipt\s+of\s+)?"
    r"(?:(?:an?|any)\s+)?"
)
THERAPY_TAIL = (
    r"(?:\s+(?:monoclonal\s+)?(?:antibod(?:y|ies)|agents?|drugs?|therapy|therapies|treatment|inhibitors?|"
    r"chemotherapy|regimens?))*"
)
REQUIRED_BY = re.compile(r"\brequir(?:es|ing|e)\b(?:\s+[\w-]+){0,4}\s*(?:or\s+)?$", re.IGNORECASE)
HALF_LIVES = re.compile(r"\bhalf[- ]?li(?:fe|ves)\b|\bwhichever\b", re.IGNORECASE)
SPECIFIC_VARIANT = re.compile(r"\b[A-Z]\d{2,4}[A-Z]\b|\bexon\s*\d+|\bfusion\b|\bdeletion\b", re.IGNORECASE)


STEROID_WORDS = re.compile(r"steroid|cortico|prednis|dexametha", re.IGNORECASE)


def find_therapies(text: str, windows: list[tuple[int, int]]) -> list[Atom]:
    """Prior therapy classes; `windows` are (offset, days) of the stated lookback windows."""
    atoms: list[Atom] = []
    # "within 28 days or 5 half-lives, whichever is shorter": the window depends on the drug.
    drug_dependent = bool(HALF_LIVES.search(text))
    for therapy in THERAPIES:
        for found in re.finditer(THERAPY_LEAD + "(?P<name>" + therapy.pattern + ")" + THERAPY_TAIL, text, re.I):
            start, end = found.start(), found.end()
            if _window_counts_from_the_therapy(text, start):
                continue  # no lookback from today: left as wording (a progression reads it, find_progression_after)
            days = _window_for(end, windows)
            if days is not None and drug_dependent:
                atoms += _half_life_washout(text, therapy, start, end, days)
                continue
            if therapy.needs_window and days is None:
                continue
            if therapy.needs_window and REQUIRED_BY.search(text, max(0, start - 60), start):
                continue  # "a syndrome that requires systemic steroids or immunosuppressive agents": a need, no washout
            if therapy.kind == "judgement":
                label = therapy.label.lower()
                reason = f"whether a {label} took place within the last {days} days is the investigator's call"
                atoms.append(Atom(start, end, therapy.key, {"not_computable": reason}, therapy.label))
                continue
            body: dict[str, Any] = {"label": therapy.label, "codes": list(therapy.codes), "names": list(therapy.names)}
            if therapy.except_codes:
                body["except"] = list(therapy.except_codes)
            if therapy.current:
                body["current"] = True
            if days is not None:
                body["within_days"] = days
            rule: dict[str, Any] = {therapy.kind: body}
            if therapy.key == "immunosuppressant" and not STEROID_WORDS.search(text):
                # "Immunosuppressive medication" includes systemic corticosteroids at immunosuppressive doses,
                # which the sentence gives no dose for: they stay for the site (seed 2031 #38).
                rule = {"any_of": [
                    {"key": "l04", "text": text[start:end].strip(), **rule},
                    {"key": "steroids", "text": text[start:end].strip(),
                     "not_computable": "whether systemic corticosteroids taken in the window count as "
                     "immunosuppressive medication (the dose) is for the site"},
                ]}  # fmt: skip
            atoms.append(Atom(start, end, therapy.key, rule, therapy.label))
    return atoms


# "Disease progression on or after platinum-based chemotherapy", "documented progression after at least one prior
# line of an anti-PD-1/PD-L1 antibody": progression recorded during a course of the class or at any time after it
# began (`progression_after` without a window). Not "progressed on" alone (during it only), nor "within N months
# of" (a window the wording ties to the course's end, read apart).
PROGRESSION_AFTER = re.compile(
    r"\b(?:(?:documented|radiographic|radiological|radiologic|confirmed|objective)\s+)?(?:disease\s+)?"
    r"(?:progression|progressed|progressive\s+disease)\s+(?:on\s+or\s+after|during\s+or\s+after|on\s+or\s+following"
    r"|after|following)\s+(?:(?:at\s+least\s+(?:one|1)\s+)?(?:prior\s+|previous\s+)?(?:lines?|regimens?|courses?)\s+of\s+)?"
    r"(?:(?:an?|the|prior|previous|previously\s+received)\s+)*",
    re.IGNORECASE,
)


# "Disease progression within 6 months after (completion of) platinum-based chemotherapy": the window counts from
# the course's end (`progression_after.within_days`), never back from today.
PROGRESSION_WITHIN = re.compile(
    r"\b(?:(?:documented|radiographic|radiological|radiologic|confirmed)\s+)?(?:disease\s+)?(?:progression|progressed"
    r"|recurrence|relapse|relapsed)\s+within\s+" + DURATION + r"\s+(?:after|following|of|from)\s+(?:the\s+)?"
    r"(?:(?:completion|end|last\s+dose|completing)\s+(?:of\s+)?(?:the\s+)?)?(?:(?:an?|prior|previous)\s+)*",
    re.IGNORECASE,
)
# "... platinum-based chemotherapy and an anti-PD-1 antibody": after both, or after either? Not read.
ANOTHER_THERAPY_JOINED = re.compile(r"\s*,?\s*(?:and|or|and/or|plus|followed\s+by|with|\+|/)\s", re.IGNORECASE)


def find_progression_after(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    leads: list[tuple[re.Match[str], int | None]] = [(m, None) for m in PROGRESSION_AFTER.finditer(text)]
    leads += [(m, days_of(m.group("count"), m.group("unit"))) for m in PROGRESSION_WITHIN.finditer(text)]
    for lead, days in leads:
        for therapy in THERAPIES:
            if therapy.kind != "medication" or therapy.needs_window or therapy.current:
                continue
            found = re.compile("(?:" + therapy.pattern + ")" + THERAPY_TAIL, re.IGNORECASE).match(text, lead.end())
            if found is None:
                continue
            if ANOTHER_THERAPY_JOINED.match(text, found.end()):
                break
            body: dict[str, Any] = {"label": therapy.label, "codes": list(therapy.codes), "names": list(therapy.names)}
            if therapy.except_codes:
                body["except"] = list(therapy.except_codes)
            if days is not None:
                body["within_days"] = days
            atoms.append(Atom(lead.start(), found.end(), therapy.key, {"progression_after": body}, therapy.label))
            break
    return atoms


def _window_counts_from_the_therapy(text: str, start: int) -> bool:
    """ "within 6 months after platinum-based chemotherapy": a window before the therapy, counted from it."""
    return any(
        m.end() <= start and re.fullmatch(r"\s*(?:after|following|of|from|since)\b[^.;]{0,60}", text[m.end() : start])
        for m in WITHIN_DAYS.finditer(text)
    )


# "within 21 days or 5 half-lives (whichever is shorter)": the clause after the washout.
HALF_LIFE_CLAUSE = re.compile(
    r"[^.;]{0,40}?\bhalf[- ]?li(?:fe|ves)\b[^.;]{0,40}?\bwhichever\s+is\s+(?:the\s+)?(?P<which>shorter|longer)\b"
    r"(?:\s+will\s+be\s+used(?:\s+as\s+the\s+criteri(?:a|on))?)?\s*\)?",
    re.IGNORECASE,
)


def _half_life_washout(text: str, therapy: TherapyClass, start: int, end: int, days: int) -> list[Atom]:
    """A drug's half-lives are not in the record. "Whichever is shorter": none inside the stated days is
    "not met", one inside is for the site; "whichever is longer": one inside the days is "met"."""
    clause = HALF_LIFE_CLAUSE.match(text, end)
    if therapy.kind != "medication" or clause is None:
        return []
    shorter = clause.group("which").lower() == "shorter"
    body: dict[str, Any] = {"label": therapy.label, "codes": list(therapy.codes), "names": list(therapy.names),
                            "within_days": days}
    part = {"key": "half-lives", "text": text[start : clause.end()].strip(),
            "not_computable": f"the drug's own half-lives may make the window {'shorter' if shorter else 'longer'} "
            f"than {days} days: the site checks the dates"}
    rule = {"all_of" if shorter else "any_of": [
        {"key": "window", "text": text[start:end].strip(), "medication": body}, part]}  # fmt: skip
    return [Atom(start, clause.end(), therapy.key + "-hl", rule, therapy.label)]


def _window_for(offset: int, windows: list[tuple[int, int]]) -> int | None:
    """The window stated after the therapy (nearest), or the only one stated."""
    after = [days for at, days in windows if at >= offset]
    if after:
        return after[0]
    return windows[0][1] if len(windows) == 1 else None


# Single drugs exclusions name often ("Prior treatment with docetaxel"), ATC codes as in the WHO index.
NAMED_DRUGS = {
    "docetaxel": "L01CD02", "paclitaxel": "L01CD01", "nab-paclitaxel": "L01CD01", "pemetrexed": "L01BA04",
    "gemcitabine": "L01BC05", "osimertinib": "L01EB04", "bevacizumab": "L01FG01", "ramucirumab": "L01FG02",
    "nivolumab": "L01FF01", "pembrolizumab": "L01FF02", "durvalumab": "L01FF03", "avelumab": "L01FF04",
    "atezolizumab": "L01FF05", "cemiplimab": "L01FF06", "ipilimumab": "L01FX04", "trastuzumab": "L01FD01",
    "pertuzumab": "L01FD02", "cetuximab": "L01FE01", "panitumumab": "L01FE02", "sotorasib": "L01XX73",
    "adagrasib": "L01XX77", "olaparib": "L01XK01", "gefitinib": "L01EB01", "erlotinib": "L01EB02",
    "afatinib": "L01EB03", "crizotinib": "L01ED01", "capecitabine": "L01BC06", "fluorouracil": "L01BC02",
    "irinotecan": "L01CE02", "cisplatin": "L01XA01", "carboplatin": "L01XA02", "oxaliplatin": "L01XA03",
    "sorafenib": "L01EX02", "regorafenib": "L01EX05", "lenvatinib": "L01EX08", "enzalutamide": "L02BB04",
    "abiraterone": "L02BX03", "palbociclib": "L01EF01", "ribociclib": "L01EF02", "abemaciclib": "L01EF03",
    "enfortumab vedotin": "L01FX13",
}  # fmt: skip
_DRUG_NAMES = "|".join(re.escape(n) for n in sorted(NAMED_DRUGS, key=len, reverse=True))
# Only a receipt is read ("prior treatment with docetaxel"): "candidates for docetaxel", "hypersensitivity to
# pemetrexed" say something else and stay text.
NAMED_DRUG = re.compile(
    r"\b(?:(?:has|have|had)\s+)?(?:(?:received|been treated with|treated with)\s+)?(?:any\s+)?"
    r"(?:prior|previous|previously)\s+(?:(?:treatment|therapy|exposure)\s+(?:with|to)\s+)?"
    r"(?P<name>" + _DRUG_NAMES + r")\b"
    r"(?:[- ](?:based|containing))?(?:\s+(?:therapy|treatment|regimens?|chemotherapy))?",
    re.IGNORECASE,
)
NEXT_DRUG = re.compile(r"\s*,?\s*(?:or|and/or|,)\s*(?P<name>" + _DRUG_NAMES + r")\b", re.IGNORECASE)


def find_named_drugs(text: str) -> list[Atom]:
    """A named drug received before (ever, or inside the stated window), in an exclusion."""
    windows = window_positions(text)
    if windows and HALF_LIVES.search(text):
        return []
    atoms: list[Atom] = []
    for found in NAMED_DRUG.finditer(text):
        spans = [(found.start(), found.end(), found.group("name"))]
        # "prior treatment with docetaxel or pemetrexed": the receipt covers each drug of the "or" list.
        more = NEXT_DRUG.match(text, found.end())
        while more:
            spans.append((more.start("name"), more.end(), more.group("name")))
            more = NEXT_DRUG.match(text, more.end())
        for start, end, written in spans:
            name = written.lower()
            body: dict[str, Any] = {"label": name.capitalize(), "codes": [f"atc:{NAMED_DRUGS[name]}"], "names": [name]}
            days = _window_for(end, windows)
            if days is not None:
                body["within_days"] = days
            atoms.append(Atom(start, end, name, {"medication": body}, name))
    return atoms


# --- biomarkers ---------------------------------------------------------------------------------

GENES = r"(?P<gene>EGFR|ALK|ROS1|KRAS|BRAF|MET|RET|HER2|ERBB2|NTRK[123]?)"
POSITIVE_GENE = re.compile(
    rf"\b{GENES}(?:\s*gene)?[- ](?:mutation|mutated|mutant|alteration|rearrangement|rearranged|translocation)s?"
    r"(?:[- ](?:positive|status positive))?\b(?![- ]?(?:negative|wild|status negative|free|-))"
    r"|\b(?:positive for|harbou?ring (?:an? )?)\s*"
    + GENES.replace("gene", "gene2")
    + r"(?:\s*gene)?\s+(?:mutations?|rearrangements?|alterations?)\b",
    re.IGNORECASE,
)  # fmt: skip
NEGATIVE_GENE = re.compile(
    rf"\b{GENES}(?:\s*gene)?(?:[- ](?:mutation|rearrangement|alteration|fusion)s?)?[- ]?(?:wild[- ]?type|negative)\b",
    re.IGNORECASE,
)
HGNC = {"HER2": "ERBB2"}


# "KRAS G12C mutation", "KRAS p.G12C-mutated", "harboring a BRAF V600E mutation", "G12D mutated KRAS": one
# protein change of a gene. Not "KRAS non-G12C", "BRAF V600E/K" (two changes), nor a drug aimed at it
# ("KRAS G12C inhibitor", "G12D targeted therapy").
VARIANT_GENES = r"KRAS|NRAS|HRAS|BRAF|EGFR|PIK3CA|IDH1|IDH2|ERBB2|HER2"
_CHANGE = r"(?:p\.)?(?P<change>[ACDEFGHIKLMNPQRSTVWY]\d{1,4}[ACDEFGHIKLMNPQRSTVWY])"
GENE_VARIANT = re.compile(
    rf"(?<![\w-])(?:(?P<gene>{VARIANT_GENES})[\s:-]*(?:gene\s+)?{_CHANGE}(?![\w/])"
    r"(?:[\s-]*(?:mutations?|mutated|mutants?|variants?|alterations?|substitutions?|positive|\(\+\)|\+))?"
    + rf"|{_CHANGE.replace('change', 'change2')}[\s-]*(?:mutated|mutant|positive)\s+(?P<gene2>{VARIANT_GENES})\b)"
    r"(?!\s*[-/]?\s*(?:inhibitors?|targeted|targeting|directed|small[- ]molecule|therap|treatment|drugs?|agents?"
    r"|specific|selective|covalent|degraders?|vaccine|TCR|T[- ]cell))",
    re.IGNORECASE,
)
NOT_THE_CHANGE = re.compile(r"\bnon[- ]?$|\bother than\s*$|\bexcept\s*$|\bwithout\s*(?:an?\s+)?$", re.IGNORECASE)


# A second change of the same gene joined by "or" ("KRAS G12V or G12D mutations"): alternatives.
_ONE_CHANGE = r"[ACDEFGHIKLMNPQRSTVWY]\d{1,4}[ACDEFGHIKLMNPQRSTVWY]"  # one-letter amino acids around a position
OR_CHANGE = re.compile(
    rf"\s+or\s+(?:p\.)?(?P<change>{_ONE_CHANGE})(?![\w/])"
    r"(?:[\s-]*(?:mutations?|mutated|mutants?|variants?|alterations?|substitutions?|positive))?",
    re.IGNORECASE,
)
OTHER_LIST_CHANGE = re.compile(rf"\s*(?:,|\band\b|\band/or\b|/)\s*(?:p\.)?{_ONE_CHANGE}\b", re.IGNORECASE)
AIMED_AT = re.compile(
    r"\s*[-/]?\s*(?:inhibitors?|targeted|targeting|directed|small[- ]molecule|therap|treatment|drugs?|agents?"
    r"|specific|selective|covalent|degraders?|vaccine|TCR|T[- ]cell)",
    re.IGNORECASE,
)


def find_variants(text: str) -> list[Atom]:
    """One named protein change: a `test` of the gene's variant report that must name it (`variant`);
    "KRAS G12V or G12D" gives one test per change (the structurer reads the "or")."""
    atoms: list[Atom] = []
    for found in GENE_VARIANT.finditer(text):
        if NOT_THE_CHANGE.search(text[max(0, found.start() - 12) : found.start()]):
            continue
        gene = (found.group("gene") or found.group("gene2")).upper()
        gene = HGNC.get(gene, gene)
        spans = [(found.start(), found.end(), (found.group("change") or found.group("change2")).upper())]
        more = OR_CHANGE.match(text, found.end()) if found.group("gene") else None
        while more:
            spans.append((more.start("change"), more.end(), more.group("change").upper()))
            more = OR_CHANGE.match(text, more.end())
        if len(spans) > 1 and AIMED_AT.match(text, spans[-1][1]):
            continue  # "KRAS G12C or G12D inhibitor": a drug, not the tumour's variant
        if OTHER_LIST_CHANGE.match(text, spans[-1][1]):
            continue  # "G12C and G12D", "G12C, G12D or G12V": a list whose logic is not read
        for start, end, change in spans:
            body = {
                "label": f"{gene} {change}",
                "codes": ["loinc:69548-6"],
                "result": "positive",
                "gene": gene,
                "variant": change,
            }
            atoms.append(Atom(start, end, gene.lower(), {"test": body}, f"{gene} {change}"))
    return atoms


def find_biomarkers(text: str) -> list[Atom]:
    """A gene named without a specific variant: any reported variant of it reads positive; one protein
    change named: that change (find_variants)."""
    variants = find_variants(text)
    outside = text
    for atom in variants:  # the named changes themselves are no narrower wording
        outside = outside[: atom.start] + " " * (atom.end - atom.start) + outside[atom.end :]
    qualified = [] if variants or SPECIFIC_VARIANT.search(outside) else _qualified_genes(text)
    text = blank(text, [(a.start, a.end) for a in qualified])
    narrower = re.search(r"\bsensiti[sz]ing|\bactivating|\bdriver|\bactionable", text, re.I)
    if SPECIFIC_VARIANT.search(outside) or narrower:
        return variants  # "EGFR exon 19 deletion", "driver mutation": narrower than any variant of the gene
    if variants:
        return variants
    atoms = qualified + _gene_lists(text)
    for pattern, result in ((POSITIVE_GENE, "positive"), (NEGATIVE_GENE, "negative"), (FUSION_POSITIVE, "positive")):
        for found in pattern.finditer(text):
            if any(a.start <= found.start() < a.end for a in atoms):
                continue  # inside a gene list already read
            gene = (found.groupdict().get("gene") or found.groupdict().get("gene2") or "").upper()
            gene = HGNC.get(gene, gene)
            if gene in ("ERBB2", "MET"):
                continue  # HER2 is read from IHC/ISH as often as from variants; MET amplification is no variant
            atoms.append(Atom(found.start(), found.end(), gene.lower(), {"test": _gene_test(gene, result)}, gene))
    return atoms


# "EGFR sensitizing mutation", "activating EGFR mutations": a positive variant report of the gene is necessary,
# whether its variant is one the protocol counts as sensitising / activating is not in the report's coding (the
# lists differ between protocols: exon 19 deletion and L858R always, G719X, L861Q, S768I sometimes, exon 20
# insertions seldom). The gene decides when it has no variant; the site confirms the kind of one it has.
QUALIFIED_GENE = re.compile(
    r"\b(?:(?P<q1>sensiti[sz]ing|activating)\s+(?P<gene1>EGFR|ALK|ROS1|KRAS|BRAF|RET)|(?P<gene2>EGFR|ALK|ROS1|KRAS|BRAF|RET)"
    r"(?:\s*gene)?[- ](?P<q2>sensiti[sz]ing|activating))[- ]mutations?(?:[- ]positive)?\b"
    r"(?![- ]?(?:negative|wild|status|free))",
    re.IGNORECASE,
)


def _qualified_genes(text: str) -> list[Atom]:
    atoms = []
    for found in QUALIFIED_GENE.finditer(text):
        gene = (found.group("gene1") or found.group("gene2")).upper()
        kind = (found.group("q1") or found.group("q2")).lower()
        rule = {"all_of": [
            {"key": "variant", "text": f"{gene} variant", "test": _gene_test(gene, "positive")},
            {"key": "kind", "text": found.group(0),
             "not_computable": f"whether the {gene} variant on record is {kind} as the protocol counts it: the site "
             "confirms at screening"},
        ]}  # fmt: skip
        atoms.append(Atom(found.start(), found.end(), gene.lower(), rule, f"{gene} {kind} mutation"))
    return atoms


def _gene_test(gene: str, result: str) -> dict[str, Any]:
    return {"label": f"{gene} variant", "codes": ["loinc:69548-6"], "result": result, "gene": gene}


# "ALK-positive", "ROS1-positive": the rearranged kinases (not "EGFR-positive", which may mean IHC overexpression).
FUSION_POSITIVE = re.compile(r"\b(?P<gene>ALK|ROS1|RET|NTRK[123]?)[- ]positive\b(?![- ]?(?:negative|status))", re.I)
# Genes sharing one noun: "EGFR, ALK, or ROS1 genomic alterations", "EGFR/ALK/ROS1 alterations": any of them.
_LISTED = r"(?:EGFR|ALK|ROS1|KRAS|BRAF|RET|NTRK[123]?)"
GENE_LIST = re.compile(
    rf"\b{_LISTED}(?:\s*(?:,|/|\bor\b|\band/or\b|,\s*or\b|,\s*and/or\b)\s*{_LISTED})+"
    r"\s+(?:genomic\s+|genetic\s+|gene\s+)?(?:mutations?|alterations?|aberrations?)\b",
    re.IGNORECASE,
)


def _gene_lists(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    for found in GENE_LIST.finditer(text):
        genes = list(dict.fromkeys(g.upper() for g in re.findall(_LISTED, found.group(0), re.IGNORECASE)))
        children = [{"key": g.lower(), "text": g, "test": _gene_test(g, "positive")} for g in genes]
        atoms.append(Atom(found.start(), found.end(), "genes", {"any_of": children}, "/".join(genes)))
    return atoms


# HER2 status as IHC/ISH report it (not an ERBB2 mutation): "HER2-positive", "HER2 negative", "HER2
# overexpression", "positivity for human epidermal growth factor receptor 2 (HER2)". Not "HER2-low" /
# "ultralow" (a subset of negative by IHC score), nor a status with its own score or ratio beside it.
_HER2 = r"(?:human epidermal growth factor receptor[- ]2\s*\(HER-?2\)|HER-?2(?:/neu)?|ERBB2)"
HER2_STATUS = re.compile(
    rf"\b{_HER2}[\s-]*(?:status[\s:-]*)?(?P<result>positive|positivity|negative|negativity|overexpress(?:ion|ing|ed)"
    r"|amplified|amplification)\b(?![- ]?(?:low|ultra))"
    rf"|\b(?P<result2>positive|positivity|negative)\s+(?:for|of)\s+{_HER2}(?![\w-])",
    re.IGNORECASE,
)
HER2_OTHER_MEASURE = re.compile(
    r"\bHER-?2[- ]?(?:low|ultra|mutat|mutant|exon|variant|alteration)|\bIHC\s*[0-3]\+|\bISH\b|\bFISH\b", re.IGNORECASE
)
HER2_CODES = ["loinc:48676-1", "loinc:85319-2", "loinc:85318-4", "loinc:18474-7"]


def find_her2_status(text: str) -> list[Atom]:
    if HER2_OTHER_MEASURE.search(text):
        return []  # a score, ratio or mutation: another measure than the status
    atoms: list[Atom] = []
    for found in HER2_STATUS.finditer(text):
        word = (found.group("result") or found.group("result2")).lower()
        result = "negative" if word.startswith("negativ") else "positive"
        body = {"label": "HER2 status", "codes": list(HER2_CODES), "result": result}
        atoms.append(Atom(found.start(), found.end(), "her2", {"test": body}, f"HER2 {result}"))
    return atoms


# PD-L1 tumour proportion score, only when the wording says TPS (a combined positive score, CPS, or
# an immune-cell score is another measure): LOINC 105304-0, in percent of tumour cells.
PDL1_TPS = re.compile(
    r"\bPD-?L1\s+(?:expression\s+)?(?:\(?(?:TPS|tumou?r proportion score)\)?|tumou?r proportion score\s*\(TPS\))"
    r"\s*(?:of\s+|is\s+|:\s*)?"
    r"(?:(?P<low>\d{1,3})\s*%?\s*(?:-|–|to)\s*(?P<high>\d{1,3})\s*%"
    r"|(?P<op>≥|>=|≤|<=|>|<|＞|＜|greater than or equal to|at least|less than|greater than)\s*(?P<value>\d{1,3})\s*%)",
    re.IGNORECASE,
)
# "PD-L1 expression on ≥ 1% of tumor cells", "PD-L1 ≥ 50% of tumour cells (TC)": the share of tumour cells staining
# is what the TPS (22C3, 28-8) and the TC score (SP263) count. Not with immune cells beside them (CPS, IC score).
PDL1_TUMOUR_CELLS = re.compile(
    r"\bPD-?L1\s+(?:(?:expression|staining|positivity)\s+)?(?:(?:in|on|of)\s+)?"
    r"(?P<op>≥|>=|≤|<=|>|<|＞|＜|greater than or equal to|at least|less than|greater than)\s*(?P<value>\d{1,3})\s*%"
    r"\s*(?:of\s+)?(?:the\s+)?(?:viable\s+)?tumou?r\s+cells\b(?:\s*\(TCs?\))?"
    r"(?!\s*(?:and|or|and/or|,|/|\+)\s*(?:tumou?r[- ]infiltrating\s+)?immune)",
    re.IGNORECASE,
)
_TPS = {"label": "PD-L1 tumour proportion score", "codes": ["loinc:105304-0"], "unit": "%"}


def find_pdl1(text: str) -> list[Atom]:
    """ "PD-L1 TPS ≥ 50%", "PD-L1 tumor proportion score 1-49%": both bounds of a range."""
    atoms: list[Atom] = []
    for found in [*PDL1_TPS.finditer(text), *PDL1_TUMOUR_CELLS.finditer(text)]:
        if found.group("op"):
            op = op_of(found.group("op"))
            bounds = [(op, float(found.group("value")))]
        else:
            bounds = [(">=", float(found.group("low"))), ("<=", float(found.group("high")))]
        if any(not 0 <= value <= 100 for _, value in bounds):
            continue
        for n, (op, value) in enumerate(bounds):
            body = {**_TPS, "op": op, "value": value}
            key = "pdl1-max" if n else "pdl1"
            atoms.append(Atom(found.start(), found.end(), key, {"observation": body}, "PD-L1 TPS"))
    return atoms


# --- systemic corticosteroids ------------------------------------------------------------------

STEROID_DOSE = re.compile(
    r"\b(?:(?:requires?|requiring|receiving|received|taking|use of|treatment with|on)\s+)?(?:any\s+)?"
    r"(?:(?:chronic|systemic|daily)\s+)*(?:corticosteroids?|steroids?)(?:\s+(?:therapy|treatment|use))?"
    r"[^.;<>]{0,40}?(?:>|more than|greater than|exceeding|in excess of|above)\s*(?P<mg>\d{1,3})\s*mg"
    r"(?:\s*/\s*day|\s*per day|\s*daily|\s*/\s*d\b)?(?:\s*(?:of\s*)?(?:oral\s*)?prednisone(?:[- ]?equivalents?|\s*or\s*"
    r"(?:an\s+)?equivalent(?:\s+dose)?)?|\s*(?:of\s*)?prednisone)\)?",
    re.IGNORECASE,
)


# "Concurrent systemic steroid therapy": a systemic glucocorticoid (ATC H02AB) taken now, any dose.
CURRENT_STEROIDS = re.compile(
    r"\b(?:concurrent|current|ongoing)\s+(?:use\s+of\s+)?systemic\s+(?:cortico)?steroids?(?:\s+(?:therapy|treatment|use))?\b",
    re.IGNORECASE,
)


def find_current_steroids(text: str) -> list[Atom]:
    found = CURRENT_STEROIDS.search(text)
    if not found or re.search(r"\d\s*mg|prednisone|physiologic|replacement|inhaled|topical", text, re.IGNORECASE):
        return []  # a dose, or the replacement / local use a protocol allows, is more than "any systemic steroid"
    body = {"label": "Systemic corticosteroid", "codes": ["atc:H02AB"], "names": [], "current": True}
    return [Atom(found.start(), found.end(), "steroids-now", {"medication": body}, "Systemic corticosteroid")]


def find_steroid_dose(text: str, windows: list[tuple[int, int]]) -> list[Atom]:
    """ "systemic corticosteroids (> 10 mg/day prednisone equivalent) within 14 days": the project's
    prednisone-equivalent rule; without a stated window it stays text."""
    found = STEROID_DOSE.search(text)
    if not found or "prednisone" not in found.group(0).lower():
        return []
    days = _window_for(found.end(), windows)
    if days is None:
        return []
    body = {"op": ">", "prednisone_mg_per_day": int(found.group("mg")), "within_days": days}
    rule: dict[str, Any] = {"corticosteroid_dose": body}
    if CHRONIC.search(found.group(0)):
        # "chronic systemic steroid therapy (> 10 mg/day) within 7 days": a dexamethasone premedication or an
        # antiemetic course is inside the window too (review seed 4242 #29). No such dose: not met; one: the
        # site says whether it is chronic.
        rule = {
            "all_of": [
                {"key": "dose", "text": found.group(0).strip(), "corticosteroid_dose": body},
                {"key": "chronic", "text": found.group(0).strip(),
                 "not_computable": "whether the corticosteroid use is chronic (a short course or premedication "
                 "is not): the site confirms at screening"},
            ]
        }  # fmt: skip
    return [Atom(found.start(), found.end(), "steroids", rule, "Systemic corticosteroids")]


CHRONIC = re.compile(r"\b(?:chronic|long[- ]term|prolonged|maintenance)\b", re.IGNORECASE)


# --- lung conditions, transplant ----------------------------------------------------------------

EVIDENCE_CUE = re.compile(r"\b(?:evidence|signs?|findings?)\s+of\s+(?:\w+\s+)?$", re.IGNORECASE)
ILD = re.compile(
    r"\b(?:(?:non-?infectious\s+)?interstitial lung diseases?(?:\s*\(ILD\))?|\bILD\b|pulmonary fibrosis"
    r"|interstitial pneumonia)\b",
    re.IGNORECASE,
)
TUBERCULOSIS = re.compile(
    r"\b(?:active\s+)?(?:pulmonary\s+)?tuberculosis(?:\s*\(TB\))?"
    r"|\bactive TB\b(?:\s*\((?:Bacillus\s+)?Tuberculosis\))?",
    re.IGNORECASE,
)
IMMUNODEFICIENCY = re.compile(
    r"\b(?:(?:a\s+)?diagnosis\s+of\s+)?(?:active\s+)?(?:(?:primary|known)\s+)?immunodeficiency\b(?!\s+virus)(?!\s+syndrome)"
    # "(such as Severe Combined Immunodeficiency Disease)": the example is one of the codes (D81)
    r"(?:\s*\((?:such\s+as|e\.g\.,?|eg,?|including)\s+severe\s+combined\s+immunodeficiency(?:\s+disease)?"
    r"(?:\s*\(SCID\))?\))?",
    re.IGNORECASE,
)
ORGAN_TRANSPLANT = re.compile(
    # "an allogeneic tissue/solid organ transplant" (Merck's wording) takes in allogeneic stem cells too.
    r"\b(?:(?:prior|previous)\s+)?(?:allogen(?:e)?ic\s+)?(?:tissue\s*(?:/|or|and/or)\s*)?(?:solid\s+)?organ\s+"
    r"(?:transplant(?:ation)?s?|recipients?)\b",
    re.IGNORECASE,
)


def find_lung_and_transplant(text: str) -> list[Atom]:
    atoms: list[Atom] = []
    # Each mention ("History of interstitial pneumonia or evidence of interstitial lung disease"), each with its cue.
    for mention in ILD.finditer(text):
        if atoms and text.count("(", 0, mention.start()) > text.count(")", 0, mention.start()):
            continue  # an example in brackets ("lung disease (including pulmonary fibrosis, ...)") is no finding
        cues = list(HISTORY_CUE.finditer(text, 0, mention.start()))
        history = bool(cues) and cues[-1].group("history") is not None
        body: dict[str, Any] = {
            "label": "Interstitial lung disease",
            # J70.2-J70.4 are the drug-induced interstitial lung disorders (acute, chronic, unspecified): the
            # usual ILD after chemotherapy or immunotherapy (the reference lists J70.4 beside J84).
            "codes": ["snomed:233703007", "icd10cm:J84", "icd10cm:J70.2", "icd10cm:J70.3", "icd10cm:J70.4"],
            "names": ["interstitial lung disease", "pulmonary fibrosis", "interstitial pneumonia"],
        }
        if history:
            body["history"] = True
        rule: dict[str, Any] = {"condition": body}
        if EVIDENCE_CUE.search(text, max(0, mention.start() - 30), mention.start()):
            # "evidence of ILD" is what screening imaging or examination shows, not only a recorded diagnosis
            # (seed 6060 #46): the record decides when it holds ILD; otherwise the site looks.
            rule = {"any_of": [
                {"key": "ild-recorded", "text": "Interstitial lung disease on record", "condition": body},
                {"key": "ild-evidence", "text": mention.group(0),
                 "not_computable": "radiological or clinical evidence of interstitial lung disease at screening: "
                 "the site confirms"},
            ]}  # fmt: skip
        atoms.append(Atom(mention.start(), mention.end(), "ild", rule, "Interstitial lung disease"))
    found = TUBERCULOSIS.search(text)
    if found and re.search(r"\bactive\b", found.group(0), re.IGNORECASE) and not re.search(r"latent", text, re.I):
        # Active tuberculosis only: ICD-10-CM A15, A17-A19 are tuberculosis disease (A16 is WHO ICD-10 only;
        # latent infection is Z22.7, not listed).
        body = {
            "label": "Active tuberculosis",
            "codes": ["snomed:56717001", "icd10cm:A15", "icd10cm:A17", "icd10cm:A18", "icd10cm:A19"],
            "names": ["tuberculosis"],
        }
        if re.search(r"\bpulmonary\b", found.group(0), re.IGNORECASE):
            # Pulmonary only (seed 2031 #20): A15 respiratory tuberculosis, A19 miliary (it involves the lungs),
            # SNOMED 154283005 pulmonary tuberculosis; a TB lymphadenitis (A18.2) is not it.
            body = {
                "label": "Active pulmonary tuberculosis",
                "codes": ["snomed:154283005", "icd10cm:A15", "icd10cm:A19"],
                "names": ["pulmonary tuberculosis", "tuberculosis of lung", "miliary tuberculosis"],
            }
        cues = list(HISTORY_CUE.finditer(text, 0, found.start()))
        if cues and cues[-1].group("history") is not None:
            body["history"] = True  # "known history of active TB": an episode of active disease, cured or not
        atoms.append(Atom(found.start(), found.end(), "tb", {"condition": body}, "Active tuberculosis"))
    found = IMMUNODEFICIENCY.search(text)
    if found:
        body = {
            "label": "Immunodeficiency",
            # ICD-10-CM D80-D84: immunodeficiencies (primary, combined, drug-induced, unspecified). HIV has
            # criteria of its own; "immunodeficiency" alone is no name (it is in "human immunodeficiency virus").
            # SNOMED 234532001 immunodeficiency disorder (seen with its display in public value sets).
            "codes": ["icd10cm:D80", "icd10cm:D81", "icd10cm:D82", "icd10cm:D83", "icd10cm:D84", "snomed:234532001"],
            "names": [
                "primary immunodeficiency", "common variable immunodeficiency", "severe combined immunodeficiency"
            ],  # fmt: skip
        }
        if re.search(r"\bprimary\b", found.group(0), re.IGNORECASE):
            # Primary only (seed 2031 #2): D80-D83, D84.0 (LFA-1 defect) and D84.1 (complement defects). D84.8x
            # (due to conditions or drugs, other) and D84.9 ("immunocompromised NOS", common after chemotherapy)
            # are no primary immunodeficiency, nor is the general SNOMED immunodeficiency disorder.
            body["codes"] = [f"icd10cm:{code}" for code in ("D80", "D81", "D82", "D83", "D84.0", "D84.1")]
        cues = list(HISTORY_CUE.finditer(text, 0, found.start()))
        if cues and cues[-1].group("history") is not None:
            body["history"] = True  # "History of (active) primary immunodeficiency": ever recorded
        atoms.append(Atom(found.start(), found.end(), "immunodeficiency", {"condition": body}, "Immunodeficiency"))
    found = ORGAN_TRANSPLANT.search(text)
    if found:
        atoms += _transplant_atoms(found)
    return atoms


# A past transplant done elsewhere is usually recorded as a status, not as the procedure (review seed
# 4242 #30): ICD-10-CM Z94.0 kidney, Z94.1 heart, Z94.2 lung, Z94.3 heart and lungs, Z94.4 liver, Z94.82
# intestine, Z94.83 pancreas (never Z94.5-Z94.7: skin, bone, cornea are tissues); SNOMED 161663000
# history of organ recipient (the reference).
ORGAN_RECIPIENT = {
    "label": "Solid organ transplant recipient",
    "codes": ["snomed:161663000", "icd10cm:Z94.0", "icd10cm:Z94.1", "icd10cm:Z94.2", "icd10cm:Z94.3",
              "icd10cm:Z94.4", "icd10cm:Z94.82", "icd10cm:Z94.83"],
    "names": ["kidney transplant", "liver transplant", "heart transplant", "lung transplant"],
    "history": True,
}  # fmt: skip
# Stem cells or marrow: SNOMED 234336002 (procedure), 2631000119108 / 153351000119102 (history of), ICD-10-CM
# Z94.81 / Z94.84 (status). Whether "organ transplantation" means an allogeneic one too is the protocol's.
STEM_CELL_TRANSPLANT = {
    "label": "Haematopoietic stem cell transplant",
    "codes": ["snomed:2631000119108", "snomed:153351000119102", "icd10cm:Z94.81", "icd10cm:Z94.84"],
    "names": ["stem cell transplant", "bone marrow transplant"],
    "history": True,
}  # fmt: skip


def _transplant_atoms(found: re.Match[str]) -> list[Atom]:
    start, end = found.span()
    procedure = {
        "label": "Solid organ transplant",
        "codes": ["snomed:313039003"],
        "names": ["kidney transplant", "liver transplant", "heart transplant", "lung transplant"],
    }
    atoms = [
        Atom(start, end, "transplant", {"procedure": procedure}, "Solid organ transplant"),
        Atom(start, end, "transplant-status", {"condition": dict(ORGAN_RECIPIENT)}, "Solid organ transplant"),
    ]
    if not re.search(r"\bsolid\b", found.group(0), re.IGNORECASE) or re.search(r"\btissue\b", found.group(0), re.I):
        stem_cells = {
            "all_of": [
                {"key": "record", "text": "a stem cell or marrow transplant on record",
                 "any_of": [
                     {"key": "status", "text": "stem cell transplant status", "condition": dict(STEM_CELL_TRANSPLANT)},
                     {"key": "procedure", "text": "stem cell transplant", "procedure": {
                         "label": "Haematopoietic stem cell transplant", "codes": ["snomed:234336002"], "names": []}},
                 ]},
                {"key": "allogeneic", "text": found.group(0),
                 "not_computable": "whether an (allogeneic) stem cell transplant counts as the organ transplantation "
                 "the protocol means: the site confirms"},
            ]
        }  # fmt: skip
        atoms.append(Atom(start, end, "transplant-sct", stem_cells, "Stem cell transplant"))
    if re.search(r"\btissue\b", found.group(0), re.IGNORECASE):
        # Tissue grafts (ICD-10-CM Z94.5 skin, Z94.6 bone, Z94.7 cornea) are often the patient's own or not
        # "allogeneic tissue" in the protocol's sense: on record, the site says.
        tissue = {
            "all_of": [
                {"key": "record", "text": "a skin, bone or cornea transplant on record", "condition": {
                    "label": "Tissue transplant status", "codes": ["icd10cm:Z94.5", "icd10cm:Z94.6", "icd10cm:Z94.7"],
                    "names": [], "history": True}},
                {"key": "allogeneic", "text": found.group(0),
                 "not_computable": "whether the tissue graft is an allogeneic transplant the protocol means: the site "
                 "confirms"},
            ]
        }  # fmt: skip
        atoms.append(Atom(start, end, "transplant-tissue", tissue, "Tissue transplant"))
    return atoms


# --- another malignancy --------------------------------------------------------------------------

# The codes that record the trial's own cancer, by the diagnosis keys above ("solid" has none: a basket
# trial's cancer could be any). Metastases (C77-C79), a cancer without site (C80) and the generic
# SNOMED concepts may record it too, so they are always exempt.
STUDY_CANCER_CODES = {
    "nsclc": ("icd10cm:C34", "snomed:254637007", "snomed:424132000", "snomed:425048006", "snomed:422968005",
              "snomed:423121009"),
    "breast": ("icd10cm:C50", "snomed:254837009", "snomed:372137005"),
    "crc": ("icd10cm:C18", "icd10cm:C19", "icd10cm:C20", "snomed:363406005", "snomed:93761005"),
    "prostate": ("icd10cm:C61", "snomed:399068003"),
    "pancreas": ("icd10cm:C25",),
    "hcc": ("icd10cm:C22",),
    "gastric": ("icd10cm:C16", "icd10cm:C15"),
    "melanoma": ("icd10cm:C43", "snomed:93655004", "snomed:372244006"),
    "myeloma": ("icd10cm:C90",),
    "ovarian-tube-peritoneal": ("icd10cm:C56", "icd10cm:C57.0", "icd10cm:C48.1", "icd10cm:C48.2"),
    "ovarian": ("icd10cm:C56",),
    "endometrial": ("icd10cm:C54",),
    "cervical": ("icd10cm:C53",),
    "esophageal": ("icd10cm:C15",),
    "thyroid": ("icd10cm:C73",),
    "mesothelioma": ("icd10cm:C45",),
    "biliary": ("icd10cm:C22.1", "icd10cm:C23", "icd10cm:C24"),
}  # fmt: skip
# Registry conditions the diagnosis rule does not read, with the sites that record them (ICD-10-CM).
STUDY_CANCER_SITES = (
    (r"\bthym(?:ic|oma)", ("icd10cm:C37",)),
    (r"\bbladder\b|\burothelial", ("icd10cm:C67", "icd10cm:C65", "icd10cm:C66", "icd10cm:C68")),
    (r"\bbiliary\b|\bcholangio|\bgallbladder", ("icd10cm:C22.1", "icd10cm:C23", "icd10cm:C24")),
    (r"\bsmall[- ]cell lung", ("icd10cm:C34",)),
    (r"\bhead and neck\b", tuple(f"icd10cm:C{n:02d}" for n in range(15)) + ("icd10cm:C30", "icd10cm:C31",
                                                                        "icd10cm:C32", "icd10cm:C76.0")),
)  # fmt: skip
ALWAYS_EXEMPT = ("icd10cm:C77", "icd10cm:C78", "icd10cm:C79", "icd10cm:C80", "snomed:128462008", "snomed:363346000")
CANCER_WORD = re.compile(
    r"cancer|carcinom|tumou?r|neoplas|malignan|leuka?emia|lymphoma|myeloma|sarcoma|melanoma|blastoma|glioma", re.I
)


def study_cancer_codes(conditions: list[str]) -> tuple[str, ...] | None:
    """The codes of the cancer the trial studies, from the registry's conditions; None when a condition
    names a cancer the importer has no codes for (then "another malignancy" cannot be told apart)."""
    codes: list[str] = []
    for written in conditions:
        cancer = next((c for c in CANCERS if re.search(c.pattern, written, re.IGNORECASE)), None)
        site = next((sites for pattern, sites in STUDY_CANCER_SITES if re.search(pattern, written, re.I)), None)
        if cancer is not None and cancer.key in STUDY_CANCER_CODES:
            codes += STUDY_CANCER_CODES[cancer.key]
        elif cancer is None and site is not None:
            codes += site
        elif cancer is not None or CANCER_WORD.search(written):
            return None
    return tuple(dict.fromkeys(codes)) or None


OTHER_MALIGNANCY = re.compile(
    # Merck's wording: "Has a known additional malignancy that is progressing or has required active
    # treatment within the past 3 years."
    r"^\s*(?:has|have)\s+a\s+known\s+additional\s+malignancy\s+that\s+is\s+progressing\s+or\s+(?:has\s+)?"
    r"required\s+active\s+treatment\s+within\s+the\s+(?:past|last)\s+" + DURATION + r"\s*\.?"
    r"|^\s*(?:patients\s+with\s+)?(?:a\s+)?(?:known\s+)?(?:(?:prior\s+)?history\s+of\s+(?:an?\s+)?)?"
    r"(?:any\s+)?(?:other|another|additional|second)\s+(?:primary\s+)?"
    r"malignan(?:cy|cies|t\s+tumou?rs?)\s+within\s+(?:the\s+)?(?:past\s+|last\s+|previous\s+)?"
    + DURATION.replace("count", "count2").replace("unit", "unit2")
    + r"(?:\s+(?:prior\s+to|before)\s+(?:the\s+)?(?:first\s+dose(?:\s+of\s+(?:the\s+)?study\s+(?:drug|treatment))?"
    r"|enrol(?:l)?ment|randomi[sz]ation|registration|screening|cycle\s*1,?\s*day\s*1|C1D1|study\s+entry))?\s*[.;]?",
    re.IGNORECASE,
)
# "Patients with a history of any malignancy are ineligible": ever recorded, whenever.
_WHO_HAS = r"^\s*(?:patients|subjects|participants)?\s*(?:with\s+)?(?:a\s+)?(?:known\s+)?"
_INELIGIBLE = r"(?:\s+(?:are|is)\s+(?:ineligible|excluded|not\s+eligible))?\s*[.;]?\s*$"
ANY_MALIGNANCY_EVER = re.compile(
    _WHO_HAS + r"(?:prior\s+|previous\s+)?history\s+of\s+(?:any\s+)?(?P<other>other\s+)?malignan(?:cy|cies)"
    + _INELIGIBLE,
    re.IGNORECASE,
)
# "malignancies other than the disease under study": the trial's cancer by a generic phrase; "other than MM"
# names it (checked against the registry's conditions before it is read as "other malignancies").
OTHER_THAN = re.compile(
    r"\bmalignan(?:cy|cies|t\s+tumou?rs?)\s*,?\s*(?:\(\s*)?other\s+than\s+(?P<what>[^,()]{1,60}?)\s*(?:\))?\s*(?:,|(?=\s+within\b))",
    re.IGNORECASE,
)
STUDY_DISEASE = re.compile(
    r"^(?:the\s+)?(?:(?:disease|cancer|malignancy|tumou?r)s?\s+(?:under\s+study|being\s+studied|under\s+investigation|"
    r"treated\s+in\s+this\s+(?:trial|study))|one\s+treated\s+in\s+this\s+(?:trial|study)"
    r"|study[- ]specific\s+malignanc(?:y|ies))$",
    re.IGNORECASE,
)
# Abbreviations registries use for the trial's cancer, by the diagnosis keys above.
CANCER_ABBREVIATIONS = {"MM": "myeloma", "NSCLC": "nsclc", "CRC": "crc", "HCC": "hcc", "PDAC": "pancreas"}


def _other_than_the_trial_cancer(text: str, study_codes: tuple[str, ...]) -> str | None:
    """The text with "malignancies other than <the trial's cancer>" read as "other malignancies"; None when
    the words name another cancer (or none the importer knows): then the exemption is not the trial's."""
    found = OTHER_THAN.search(text)
    if not found:
        return text
    what = found.group("what").strip()
    key = CANCER_ABBREVIATIONS.get(what.upper()) if what.isupper() else None
    if key is None and not STUDY_DISEASE.match(what):
        key = next((c.key for c in CANCERS if re.fullmatch(c.pattern, what, re.IGNORECASE)), "")
        if not key:
            return None
    if key and not set(STUDY_CANCER_CODES.get(key, ("?",))) <= set(study_codes):
        return None
    return text[: found.start()] + "other malignancies " + text[found.end() :].lstrip()


# "Prior history of malignancies, other than MM, unless the participant has been free of the disease for
# ≥ 5 years": another malignancy active or ended within those years.
FREE_FOR_YEARS = re.compile(
    r"^\s*(?:patients\s+with\s+)?(?:a\s+)?(?:known\s+)?(?:prior\s+|previous\s+)?history\s+of\s+(?:an?\s+)?other\s+"
    r"malignan(?:cy|cies)\s*,?\s+unless\s+(?:the\s+)?(?:participant|patient|subject)s?\s+(?:has|have)\s+been\s+"
    r"(?:free\s+of\s+(?:the\s+)?(?:disease|malignancy|cancer)|disease[- ]free)\s+for\s+"
    r"(?:≥|>=|at\s+least|more\s+than|>|over)\s*" + DURATION + r"\s*[.;]?\s*$",
    re.IGNORECASE,
)


def _free_for_years(text: str, study_codes: tuple[str, ...]) -> re.Match[str] | None:
    read = _other_than_the_trial_cancer(text, study_codes)
    return FREE_FOR_YEARS.match(read) if read else None


# "Previous or concurrent history of other malignant tumors. Exceptions include curatively treated basal cell
# carcinoma of the skin, squamous cell carcinoma of the skin, or in situ cervical cancer ...": ever recorded.
PREVIOUS_OR_CONCURRENT = re.compile(
    r"^\s*(?:patients\s+with\s+)?(?:a\s+)?(?:known\s+)?(?:previous|prior|past)\s+(?:or|and/or)\s+(?:concurrent|current|"
    r"concomitant)\s+(?:history\s+of\s+)?(?:an?\s+)?(?:other|another|second)\s+(?:primary\s+)?"
    r"(?:malignan(?:cy|cies)|malignant\s+(?:tumou?rs?|neoplasms?))\s*[.;]?",
    re.IGNORECASE,
)
# The skin cancers excepted after "curatively treated": a resolved one is; an active one may be untreated.
CURED_SKIN_EXCEPTED = re.compile(
    r"^\s*Exceptions?\s+(?:include|are)\s*:?\s*(?:curatively\s+treated\s+|adequately\s+treated\s+)?"
    r"basal\s+cell\s+carcinoma\s+of\s+the\s+skin\s*,?\s+(?:and\s+|or\s+)?squamous\s+cell\s+carcinoma\s+of\s+the\s+skin"
    r"\s*,?\s+(?:or|and)\s+(?:in\s+situ\s+cervical\s+cancer|carcinoma\s+in\s+situ\s+of\s+the\s+cervix|cervical\s+"
    r"carcinoma\s+in\s+situ)(?:\s+that\s+(?:has|have)\s+undergone\s+potentially\s+curative\s+therapy)?\s*[.;]?\s*$",
    re.IGNORECASE,
)


def _previous_or_concurrent(text: str, body: dict[str, Any]) -> dict[str, Any] | None:
    found = PREVIOUS_OR_CONCURRENT.match(text)
    if not found:
        return None
    rest = text[found.end() :]
    if not rest.strip():
        return {"condition": {**body, "history": True}}
    if not CURED_SKIN_EXCEPTED.match(rest):
        return None
    # Cervical carcinoma in situ is D06, outside the C codes anyway. Skin cancers (C44) are exempt once
    # resolved; an active one may not have been treated yet: the site says.
    others = {**body, "history": True, "except": [*body["except"], "icd10cm:C44"]}
    return {
        "any_of": [
            {"key": "other", "text": "another malignancy, ever recorded", "condition": others},
            _active_skin_carcinoma(rest.strip()),
        ]
    }  # fmt: skip


def _active_skin_carcinoma(exceptions: str) -> dict[str, Any]:
    """An excepted skin carcinoma still active on record: whether it was curatively treated is for the site."""
    skin = {"label": "Skin basal or squamous cell carcinoma (active)", "codes": ["icd10cm:C44"], "names": []}
    return {"key": "skin", "text": exceptions, "all_of": [
        {"key": "record", "text": "an active skin carcinoma on record", "condition": skin},
        {"key": "treated", "text": exceptions,
         "not_computable": "whether the skin carcinoma was curatively treated: the site confirms at screening"},
    ]}  # fmt: skip
# The exceptions Merck names: skin basal / squamous cell carcinoma (C44) and carcinoma in situ (D00-D09,
# outside the C codes anyway) "that have undergone potentially curative therapy".
SKIN_AND_IN_SITU_EXEMPT = re.compile(
    r"^\s*(?:Note:\s*)?(?:Participants|Patients|Subjects)\s+with\s+basal\s+cell\s+carcinoma\s+of\s+the\s+skin,?\s+"
    r"squamous\s+cell\s+carcinoma\s+of\s+the\s+skin,?\s+or\s+carcinoma\s+in\s+situ"
    r"(?:\s*\((?:e\.?\s?g\.?|eg),?\s*breast\s+carcinoma,?\s+(?:and\s+|or\s+)?cervical\s+cancer\s+in\s+situ\))?\s+"
    r"that\s+have\s+undergone\s+potentially\s+curative\s+therapy\s+are\s+not\s+excluded\.?\s*$",
    re.IGNORECASE,
)


# "..., except adequately treated basal or squamous cell skin cancer or carcinoma in situ of the cervix": the
# exceptions registries name most. Carcinoma in situ is D00-D09 (outside the C codes, never counted anyway); a
# skin basal / squamous cell carcinoma is C44 (melanoma is C43, Merkel cell C4A: neither is excepted). Any other
# exception (superficial bladder, localised prostate cancer, "negligible risk") leaves the criterion text.
EXCEPTIONS_LEAD = re.compile(
    r"^\s*[,;(]?\s*(?:except(?:\s+for)?|with\s+the\s+exceptions?\s+of|excluding)\s*:?\s*", re.IGNORECASE
)
_TREATED = (
    r"(?:(?:adequately|curatively|completely|successfully|radically)\s+)?(?:treated|resected|excised|removed|cured)"
    r"(?:\s+with\s+curative\s+intent)?"
)
_CELL = r"(?:basal|squamous)(?:\s+cell)?(?:\s+(?:carcinomas?|cancers?))?"
SKIN_EXCEPTION = re.compile(
    r"non-?melanoma(?:tous)?\s+skin\s+(?:cancers?|carcinomas?)"
    rf"|{_CELL}(?:\s*(?:,|or|and|and/or|/)\s*{_CELL})?\s+(?:of\s+(?:the\s+)?skin|skin\s+(?:cancers?|carcinomas?))"
    rf"|skin\s+{_CELL}",
    re.IGNORECASE,
)
IN_SITU_EXCEPTION = re.compile(
    r"(?:ductal\s+)?(?:carcinomas?|cancers?)\s+in\s+situ"
    r"(?:\s+of\s+(?:the\s+)?(?:uterine\s+)?[a-z]+(?:\s*(?:,|or|and|and/or)\s*(?:the\s+)?(?:cervix|breast|bladder))*)?"
    r"|in\s+situ\s+(?:cervical|breast)\s+(?:cancers?|carcinomas?)|(?:cervical|breast)\s+(?:carcinomas?|cancers?)\s+in\s+situ"
    r"|\bDCIS\b|\bCIS\b(?:\s+of\s+(?:the\s+)?(?:cervix|breast))?|melanoma\s+in\s+situ|lentigo\s+maligna",
    re.IGNORECASE,
)
OPEN_EXCEPTIONS = re.compile(r"^\s*[,;(]?\s*(?:except|with\s+the\s+exceptions?\s+of|excluding|unless)\b", re.IGNORECASE)
EXCEPTION_SEPARATOR = re.compile(r"^\s*(?:,|;|\bor\b|\band\b|\band/or\b)\s*(?:,|\bor\b|\band\b)?\s*", re.IGNORECASE)


def _named_exceptions(tail: str) -> tuple[bool, bool] | None:
    """(skin carcinoma excepted, the exceptions qualified as treated) for a tail of exceptions the importer knows
    whole; None when any word of it is another exception or condition."""
    lead = EXCEPTIONS_LEAD.match(tail)
    if lead is None:
        return None
    rest = tail[lead.end() :].rstrip(" .;)")
    skin = treated = False
    while rest:
        qualifier = re.match(rf"\s*{_TREATED}\s+", rest, re.IGNORECASE)
        if qualifier:
            treated, rest = True, rest[qualifier.end() :]
        item = SKIN_EXCEPTION.match(rest) or IN_SITU_EXCEPTION.match(rest)
        if item is None:
            return None
        skin = skin or item.re is SKIN_EXCEPTION
        rest = rest[item.end() :]
        after = re.match(rf"\s*(?:that\s+(?:has|have)\s+been\s+|which\s+(?:has|have)\s+been\s+)?{_TREATED}", rest, re.I)
        if after:
            treated, rest = True, rest[after.end() :]
        separator = EXCEPTION_SEPARATOR.match(rest)
        if separator is None and rest.strip():
            return None
        rest = rest[separator.end() :] if separator else ""
    return skin, treated


# Malignancies recorded in SNOMED CT (exact codes: a record's concept is matched, not its ancestors):
# the concepts the reference lists as verified, and the site concepts of STUDY_CANCER_CODES.
SNOMED_MALIGNANCIES = (
    "snomed:254637007", "snomed:424132000", "snomed:425048006", "snomed:422968005", "snomed:423121009",
    "snomed:254837009", "snomed:372137005", "snomed:363406005", "snomed:93761005", "snomed:399068003",
    "snomed:93655004", "snomed:372244006", "snomed:449248000", "snomed:187692001", "snomed:422541001",
    "snomed:422691006", "snomed:716659002", "snomed:307576001", "snomed:424952003", "snomed:269469005",
    "snomed:255021005", "snomed:1197334002", "snomed:274087000",
)  # fmt: skip


def other_malignancy_exclusion(text: str, study_codes: tuple[str, ...] | None) -> dict[str, Any] | None:
    """Another malignancy active, or begun / ended within the window; the trial's own cancer (from the
    registry's conditions) and its metastases never count."""
    if not study_codes:
        return None
    body: dict[str, Any] = {
        "label": "Another malignancy (not the trial's cancer)",
        "codes": ["icd10cm:C", *(c for c in SNOMED_MALIGNANCIES if c not in study_codes)],
        "names": [],
        "except": [*study_codes, *ALWAYS_EXEMPT],
    }
    ever = ANY_MALIGNANCY_EVER.match(text)
    if ever:
        if ever.group("other"):
            return {"condition": {**body, "history": True}}
        # "a history of any malignancy": an earlier cancer of the trial's own kind counts too (a breast cancer
        # 10 years ago in a breast cancer trial), and no record tells it from the one the trial treats
        # (blind check seed 7777, item 37). Another cancer decides; a record of the trial's kind is for the site.
        own = {"label": "A cancer of the trial's kind", "codes": list(study_codes), "names": [], "history": True}
        return {
            "any_of": [
                {"key": "other", "text": "another malignancy, ever recorded", "condition": {**body, "history": True}},
                {"key": "own", "text": text.strip(), "all_of": [
                    {"key": "record", "text": "a cancer of the trial's kind on record", "condition": own},
                    {"key": "earlier", "text": text.strip(),
                     "not_computable": "whether a cancer of the trial's kind on record is an earlier one, not the "
                     "one this trial treats: the site confirms at screening"},
                ]},
            ]
        }  # fmt: skip
    found = _free_for_years(text, study_codes)
    if found is not None:
        days = days_of(found.group("count"), found.group("unit"))
        recent = {**body, "history": True, "within_days": days}
        return {"any_of": [
            {"key": "active", "text": "another malignancy, active", "condition": body},
            {"key": "recent", "text": "another malignancy begun or ended inside the window", "condition": recent},
        ]}  # fmt: skip
    found = OTHER_MALIGNANCY.match(_other_than_the_trial_cancer(text, study_codes) or "")
    if not found:
        return _previous_or_concurrent(text, body)
    text = _other_than_the_trial_cancer(text, study_codes) or text
    rest = text[found.end() :]
    skin_treated = False
    site_exceptions = None
    if rest.strip():
        named = None if SKIN_AND_IN_SITU_EXEMPT.match(rest) else _named_exceptions(rest)
        if named is None and not SKIN_AND_IN_SITU_EXEMPT.match(rest):
            if found.group("count") or not OPEN_EXCEPTIONS.match(rest):
                return None
            # "..., with the exception of those with a negligible risk of metastasis or death (e.g., ...)",
            # "unless curatively treated": exceptions no record tells; a cancer on record is for the site.
            site_exceptions = rest.strip(" ,;.()")
        skin, skin_treated = named or (site_exceptions is None, False)
        if skin:
            body["except"].append("icd10cm:C44")
        skin_treated = skin and skin_treated
    count, unit = (found.group("count"), found.group("unit")) if found.group("count") else (
        found.group("count2"), found.group("unit2"))  # fmt: skip
    recent = {**body, "history": True, "within_days": days_of(count, unit)}
    candidates = [
        {"key": "active", "text": "another malignancy, active", "condition": body},
        {"key": "recent", "text": "another malignancy begun or ended inside the window", "condition": recent},
    ]
    if skin_treated:
        # "except adequately treated basal cell carcinoma of the skin": one recorded as resolved was treated; an
        # active one may not have been yet (then it counts): the site says.
        candidates.append(_active_skin_carcinoma(rest.strip(" ,;.()")))
    if site_exceptions is not None:
        return {"all_of": [
            {"key": "cancer", "text": "another malignancy, active or inside the window", "any_of": candidates},
            {"key": "exceptions", "text": site_exceptions,
             "not_computable": "whether the other malignancy is one the protocol excepts: the site confirms at "
             "screening"},
        ]}  # fmt: skip
    if not found.group("count"):  # "other malignancy within 5 years": a cancer present or dated inside it
        return {"any_of": candidates}
    # "progressing or has required active treatment within the past 3 years": neither is in the record
    # (a stable cancer under surveillance is recorded active too). A cancer neither active nor dated
    # inside the window is neither, so it is "not met"; any other needs the site's word.
    return {
        "all_of": [
            {"key": "cancer", "text": "another malignancy, active or inside the window", "any_of": candidates},
            {
                "key": "progress",
                "text": text[: found.end()].strip(),
                "not_computable": f"whether the other malignancy is progressing or required active treatment within "
                f"the past {count} {unit}: the site confirms at screening",
            },
        ]
    }


# Merck's wording: "Has a history of (non-infectious) pneumonitis/interstitial lung disease that required
# steroids or has current pneumonitis/interstitial lung disease." Read whole: a current one is data; whether
# a past one required steroids is not (no record ties a steroid course to the pneumonitis it treated).
PNEUMONITIS_STEROIDS = re.compile(
    r"^\s*(?:(?:has|have)\s+)?(?:a\s+)?(?:known\s+)?history\s+of\s+\(?non-?infectious\)?\s+pneumonitis"
    r"(?:\s*(?:/|or|and/or)\s*interstitial\s+lung\s+disease)?\s+(?:\(ILD\)\s+)?that\s+required\s+(?:systemic\s+)?"
    r"(?:cortico)?steroids\s*,?\s*(?:or\s+)?(?:(?:has|have)\s+)?current\s+pneumonitis"
    r"(?:\s*(?:/|or|and/or)\s*interstitial\s+lung\s+disease)?\s*[.;]?\s*$",
    re.IGNORECASE,
)
# Non-infectious pneumonitis and ILD: J84 ILD, J70.0 / J70.1 radiation pneumonitis (acute, chronic), J70.2-J70.4
# drug-induced interstitial lung disorders. Names are phrases: "pneumonitis" alone is infectious too.
PNEUMONITIS: dict[str, Any] = {
    "label": "Non-infectious pneumonitis or interstitial lung disease",
    "codes": ["snomed:233703007", "icd10cm:J84", "icd10cm:J70.0", "icd10cm:J70.1", "icd10cm:J70.2", "icd10cm:J70.3",
              "icd10cm:J70.4"],
    "names": ["interstitial lung disease", "non-infectious pneumonitis", "radiation pneumonitis",
              "drug-induced pneumonitis", "immune-mediated pneumonitis"],
}  # fmt: skip


def pneumonitis_exclusion(text: str) -> dict[str, Any] | None:
    if not PNEUMONITIS_STEROIDS.match(text):
        return None
    return {
        "any_of": [
            {"key": "current", "text": "current pneumonitis/interstitial lung disease", "condition": dict(PNEUMONITIS)},
            {"key": "past", "text": text.strip(), "all_of": [
                {"key": "record", "text": "pneumonitis/interstitial lung disease on record",
                 "condition": {**PNEUMONITIS, "history": True}},
                {"key": "steroids", "text": text.strip(),
                 "not_computable": "whether the past pneumonitis required steroids: the site confirms at screening"},
            ]},
        ]
    }  # fmt: skip

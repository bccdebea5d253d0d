"""NCT06494995 code sets and name lists (issue 10): every code class names members that must match and
members of the same class that must not (they do not mean the criterion), and every names list is tried
on near-miss texts from real records ("Transfusion of allogeneic red blood cells" is not a transplant).

Reads only mappings/: runs without ../shared.
"""

from __future__ import annotations

import pytest

from service.domain.criteria import (
    ATC,
    ICD10CM,
    SNOMED,
    CodeSet,
    ConditionRule,
    MedicationRule,
    ProcedureRule,
    ProgressionAfterTherapyRule,
)
from service.domain.facts import matches
from tests.mapping_helpers import by_id, load

IDS = by_id(load("NCT06494995")[1])


def _codes(link_id: str) -> CodeSet:
    rule = IDS[link_id].rule
    if isinstance(rule, ProgressionAfterTherapyRule):
        return rule.therapy
    assert isinstance(rule, ConditionRule | MedicationRule | ProcedureRule), link_id
    return rule.codes


def _counts(link_id: str, system: str, code: str) -> bool:
    """A record coded `code` counts for the criterion: it matches the codes and is not exempted."""
    rule = IDS[link_id].rule
    exempt = isinstance(rule, ConditionRule) and rule.except_codes.matches_coding(system, code)
    return _codes(link_id).matches_coding(system, code) and not exempt


# (linkId, system, code that must count, code of the same class that must not)
CODE_CASES = [
    # inc-3: head-and-neck SCC sites incl. sinonasal; salivary glands and neck nodes are not in the site list
    ("inc-3.1", ICD10CM, "C30.0", "C07"),
    ("inc-3.1", ICD10CM, "C31.0", "C08.0"),
    ("inc-3.1", ICD10CM, "C32.9", "C77.0"),
    ("inc-3.2a", ICD10CM, "C77.0", "C77.1"),  # neck nodes, not intrathoracic nodes
    # inc-4.1a1: standard R/M regimens; methotrexate (also rheumatoid arthritis), topical-capable
    # fluorouracil, hydroxycarbamide, photodynamic sensitizers and cyclophosphamide are not in the met path
    ("inc-4.1a1", ATC, "L01XA01", "L01BA01"),  # cisplatin / methotrexate
    ("inc-4.1a1", ATC, "L01CD02", "L01BC02"),  # docetaxel / fluorouracil
    ("inc-4.1a1", ATC, "L01FF02", "L01XX05"),  # pembrolizumab / hydroxycarbamide
    ("inc-4.1a1", ATC, "L01FE01", "L01XD04"),  # cetuximab / aminolevulinic acid (photodynamic)
    ("inc-4.1a1", ATC, "L01XC18", "L01XC02"),  # pembrolizumab / rituximab (ATC before 2022)
    ("inc-4.1a1", ATC, "L01BC06", "L01AA01"),  # capecitabine / cyclophosphamide
    ("inc-4.1b1", ATC, "L01BA01", "L04AX03"),  # methotrexate as an antineoplastic / as an immunosuppressant
    # exc-5: every other malignancy, the named "cured > 3 years" examples included; the study cancer exempt
    ("exc-5.1", ICD10CM, "C44.311", "C32.9"),  # basal cell carcinoma / the study cancer
    ("exc-5.1", ICD10CM, "D06.9", "D04.9"),  # cervical carcinoma in situ / skin carcinoma in situ (not named)
    ("exc-5.1", ICD10CM, "C73", "C31.0"),  # thyroid (no histology in ICD) / sinonasal study cancer
    ("exc-5.1", SNOMED, "255029007", "128462008"),  # papillary thyroid carcinoma / secondary malignant neoplasm
    ("exc-5.2", ICD10CM, "C50.911", "C78.00"),  # breast / lung metastasis of the study cancer
    # exc-6c: acute MI, not the "old MI" history code (its date is not the infarction's)
    ("exc-6c", ICD10CM, "I21.4", "I25.2"),
    # exc-7.4a: the anti-tumour vaccines of ATC L03AX one by one; glatiramer, plerixafor are not vaccines
    ("exc-7.4a", ATC, "L03AX03", "L03AX13"),  # BCG (bladder cancer) / glatiramer acetate
    ("exc-7.4a", ATC, "L03AX17", "L03AX16"),  # sipuleucel-T / plerixafor
    ("exc-7.4b", ATC, "J07BX03", "L03AX16"),  # COVID-19 vaccine / plerixafor
    # exc-10.1a: autoimmune and immune-related disease; non-autoimmune members of the same classes excluded
    ("exc-10.1a", ICD10CM, "N05.9", "N10"),  # nephritic syndrome / acute pyelonephritis
    ("exc-10.1a", ICD10CM, "E05.00", "E05.20"),  # Graves disease / toxic multinodular goitre
    ("exc-10.1a", ICD10CM, "E05.90", "E05.10"),  # thyrotoxicosis NOS / toxic single nodule
    ("exc-10.1a", ICD10CM, "K52.831", "K52.9"),  # collagenous colitis / noninfective gastroenteritis NOS
    ("exc-10.1a", ICD10CM, "K75.4", "K75.9"),  # autoimmune hepatitis / inflammatory liver disease NOS
    ("exc-10.1a", ICD10CM, "M32.14", "E10.9"),  # lupus nephritis / type 1 diabetes (exempt)
    ("exc-10.1b1", ICD10CM, "K52.1", "K52.2"),  # toxic colitis / allergic colitis
    ("exc-10.1b1", ICD10CM, "K71.6", "K71.0"),  # toxic hepatitis / toxic liver disease with cholestasis
    ("exc-10.1b1", ICD10CM, "E23.6", "E23.0"),  # pituitary disorder incl. hypophysitis / hypopituitarism
    ("exc-10.2a", ICD10CM, "E03.9", "E03.2"),  # hypothyroidism NOS / drug-induced hypothyroidism
    ("exc-10.2a", ICD10CM, "E06.3", "E89.0"),  # autoimmune thyroiditis / post-procedural (post-radiation)
    # exc-11.3: organ transplant status and GVHD; bone marrow / stem cell status is not said to be allogeneic
    ("exc-11.3a", ICD10CM, "Z94.0", "Z94.81"),
    ("exc-11.3a", ICD10CM, "D89.811", "Z94.84"),
    ("exc-11.3c1b", ICD10CM, "Z94.84", "Z94.7"),  # stem cell status / corneal transplant status
]


@pytest.mark.parametrize(("link_id", "system", "member", "non_member"), CODE_CASES)
def test_code_set_matches_its_members_and_not_the_rest_of_the_class(
    link_id: str, system: str, member: str, non_member: str
) -> None:
    assert _counts(link_id, system, member), f"{link_id} must count {member}"
    assert not _counts(link_id, system, non_member), f"{link_id} must not count {non_member}"


# (linkId, texts that must match, near-miss texts that must not) — lower-cased as records are indexed
NAME_CASES = [
    (
        "exc-11.3b",
        ["Allogeneic hematopoietic stem cell transplant (matched sibling donor)", "Kidney transplant (deceased donor)"],
        ["Transfusion of allogeneic red blood cells, 2 units", "Autologous stem cell transplant", "Allogeneic blood"],
    ),
    (
        "exc-11.3c1a",
        ["Autologous stem cell transplant", "Bone marrow transplant"],
        ["Bone marrow biopsy", "Transfusion of allogeneic red blood cells", "Stem cell mobilisation with plerixafor"],
    ),
    (
        "exc-7.5a",
        ["Salvage total laryngectomy with bilateral neck dissection", "Composite resection of floor of mouth"],
        [
            "Excision of skin lesion",
            "Endoscopic mucosal resection of colonic polyp",
            "Transurethral resection of bladder tumour",
            "Biopsy of larynx",
            "Dental extraction",
        ],
    ),
    (
        "exc-10.1a",
        [
            "Immune-related colitis",
            "Hypophysitis due to immune checkpoint inhibitor",
            "Lupus nephritis",
            "Graves disease",
        ],
        [
            "Infectious colitis due to Clostridioides difficile",
            "Acute pyelonephritis",
            "Chronic viral hepatitis B",
            "Thyroid nodule",
            "Allergic rhinitis",
        ],
    ),
    (
        "exc-5.1",
        ["Basal cell carcinoma of nose", "Papillary thyroid carcinoma"],
        ["Seborrheic keratosis", "Benign thyroid nodule", "Squamous cell carcinoma of larynx"],
    ),
    (
        "inc-4.2b1",
        ["Palliative radiotherapy 30 Gy in 10 fractions to neck nodes", "Palliative radiation to spine"],
        ["Radical radiotherapy 70 Gy to larynx and neck", "Definitive chemoradiotherapy to larynx and neck"],
    ),
    (
        "inc-4.1a1",
        ["Cisplatin 50 MG Injection", "nab-Paclitaxel 100 mg", "Pembrolizumab 200 mg IV"],
        ["Methotrexate 2.5 MG Oral Tablet", "Fluorouracil 5% topical cream", "Hydroxyurea 500 MG Oral Capsule"],
    ),
    (
        "exc-7.4a",
        ["Personalized neoantigen cancer vaccine (trial)", "Sipuleucel-T infusion"],
        ["Influenza vaccine", "Plerixafor 24 mg SC", "BCG vaccination at birth"],
    ),
    (
        "exc-7.4b",
        ["Influenza vaccine, inactivated", "COVID-19 vaccination"],
        ["Vaccinium macrocarpon (cranberry) capsule", "Plerixafor 24 mg SC"],
    ),
    (
        "inc-3.2a",
        ["Squamous cell carcinoma of unknown primary, neck nodes"],
        ["Squamous cell carcinoma of larynx", "Metastatic carcinoma of lung"],
    ),
]


@pytest.mark.parametrize(("link_id", "hits", "near_misses"), NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_names_match_phrases_of_the_concept_and_not_near_misses(
    link_id: str, hits: list[str], near_misses: list[str]
) -> None:
    codes = _codes(link_id)
    for text in hits:
        assert matches(codes, (), text.lower()), f"{link_id} must match {text!r}"
    for text in near_misses:
        assert not matches(codes, (), text.lower()), f"{link_id} must not match {text!r}"


def test_no_names_list_holds_a_bare_word_that_names_no_concept() -> None:
    """The words that matched unrelated records before (issue 10) are gone from every names list."""
    bare = {"allogeneic", "resection", "transplant", "surgery", "colitis", "hepatitis"}
    for link_id, criterion in IDS.items():
        rule = criterion.rule
        if isinstance(rule, ConditionRule | MedicationRule | ProcedureRule | ProgressionAfterTherapyRule):
            names = set(_codes(link_id).names)
            assert not names & bare, f"{link_id}: {sorted(names & bare)}"

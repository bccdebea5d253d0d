"""NCT06284590 (melanoma, EU CT 2024-519326-20-00): the mapping against its seed.

Expected counts read from seeds/000_73681c0c6337fe37.txt: 18 bullets under "Who Can Join the
Study?" (age; stage IIIB-IV unresectable melanoma; anti-PD-1 failure; >= 2 doses; progression
within 12 weeks; BRAF → BRAF/MEK; injectable lesion; measurable disease; biopsy; ECOG 0-1; organ
function; HIV/HBV/HCV negative; toxicities resolved; irAEs resolved; no severe irAEs; women;
men; willingness) and 15 under "Who Cannot Join the Study?" (brain metastases; leptomeningeal;
uveal; infections; autoimmune; immunosuppressants; heart; lung; liver; kidney; other cancer;
pregnant/breastfeeding; allergy; experimental treatment; unsafe condition).
"""

from __future__ import annotations

import pytest

from service.domain.criteria import (
    ATC,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    AgeRule,
    Combination,
    CombinationCode,
    Comparator,
    ConditionRule,
    CorticosteroidDoseRule,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProgressionAfterTherapyRule,
    StageRule,
)
from service.domain.criteria import (
    TestRule as QualitativeTest,
)
from tests.mapping_helpers import (
    Mapped,
    is_not_computable,
    is_screening,
    leaves,
    validate_research_study,
)

M = Mapped.load("NCT06284590", "000_73681c0c6337fe37.txt")
DOC, TRIAL, IDS = M.doc, M.trial, M.ids


def test_every_source_criterion_is_a_verbatim_coded_top_level_criterion_in_order() -> None:
    assert M.structure_problems(inclusions=18, exclusions=15) == []
    assert IDS["exc-5"].description.endswith("(the body’s defense system) attacks your own body")


def test_age_and_ecog() -> None:
    age = IDS["inc-1"].rule
    assert isinstance(age, AgeRule) and age.min_years == 18 and age.max_years is None
    ecog = IDS["inc-10"].rule
    assert isinstance(ecog, ObservationRule)
    assert (LOINC, "89247-1") in ecog.codes.exact
    assert ecog.comparator is Comparator.LE and ecog.value == 1 and ecog.unit == "1"


def test_diagnosis_and_stage() -> None:
    rules = [c.rule for c in leaves(IDS["inc-2"])]
    diagnosis = next(r for r in rules if isinstance(r, ConditionRule))
    assert diagnosis.codes.matches_coding(ICD10CM, "C43.9")
    assert diagnosis.codes.matches_coding("http://snomed.info/sct", "372244006")
    stage = next(r for r in rules if isinstance(r, StageRule))
    assert set(stage.allowed) == {"IIIB", "IIIC", "IIID", "IV"}


def test_anti_pd1_exposure_doses_and_progression_window() -> None:
    for link_id in ("inc-3", "inc-4.1"):
        rule = IDS[link_id].rule
        assert isinstance(rule, MedicationRule)
        assert rule.codes.matches_coding(ATC, "L01FF02")  # pembrolizumab via the class
        assert (RXNORM, "1597876") in rule.codes.exact  # nivolumab
    doses = IDS["inc-4.1"].rule
    assert isinstance(doses, MedicationRule) and doses.min_doses == 2
    # "before your cancer started growing again": the count alone never meets inc-4 (doses after the progression)
    assert IDS["inc-4"].rule.code is CombinationCode.ALL_OF and is_not_computable(IDS["inc-4.2"])
    progression = IDS["inc-5"].rule
    assert isinstance(progression, ProgressionAfterTherapyRule)
    assert progression.within_days == 84  # "within 12 weeks"
    assert progression.therapy.matches_coding(ATC, "L01FF01")


def test_braf_is_conditional_with_refusal_not_computable() -> None:
    rule = IDS["inc-6"].rule
    assert isinstance(rule, Combination) and rule.code is CombinationCode.ANY_OF
    antecedent = IDS["inc-6.1"]
    braf = antecedent.rule
    assert antecedent.exclude and isinstance(braf, QualitativeTest)
    assert braf.expect == "positive" and braf.gene == "BRAF"
    assert {(LOINC, "53844-7"), (LOINC, "69548-6")} <= braf.codes.exact
    meds = [c.rule for c in leaves(IDS["inc-6.2"]) if isinstance(c.rule, MedicationRule)]
    assert any(m.codes.matches_coding(ATC, "L01EC02") for m in meds)  # dabrafenib
    assert any(m.codes.matches_coding(ATC, "L01EE01") for m in meds)  # trametinib
    assert is_not_computable(IDS["inc-6.2.1.2"])  # "declined"
    # "and then": the order BRAF/MEK before anti-PD-1 is no screening item (skipped inside a combination)
    assert is_not_computable(IDS["inc-6.2.2"])


def test_organ_function_has_no_invented_thresholds() -> None:
    organ = IDS["inc-11"]
    assert is_not_computable(organ)
    # the only criterion left wholly to the site as data nobody encoded
    assert [c.link_id for c in TRIAL.criteria if is_not_computable(c)] == ["inc-11"]
    assert not any(isinstance(c.rule, ObservationRule) for c in organ.walk())


def test_blood_tests_use_the_14_day_window() -> None:
    # A reactive HIV screen with an HIV-1 RNA not detected leaves the supplemental test to the site (fifth review
    # F19): the one leaf of inc-12 that is no test.
    tests = [c for c in leaves(IDS["inc-12"]) if c.link_id != "inc-12.1a2c"]
    assert is_not_computable(IDS["inc-12.1a2c"])
    assert tests and all(isinstance(c.rule, QualitativeTest) for c in tests)
    for c in tests:
        assert isinstance(c.rule, QualitativeTest) and c.rule.window is not None
        # A detectable HIV-1 viral load counts at any date: the infection is lifelong.
        assert c.rule.window.days == (18250 if c.link_id == "inc-12.1b" else 14), c.link_id


def test_a_detectable_viral_load_fails_the_serology_criterion_on_its_own() -> None:
    for link_id in ("inc-12.1b", "inc-12.2.3", "inc-12.3b"):
        c = IDS[link_id]
        assert c.exclude and isinstance(c.rule, QualitativeTest), link_id
        assert c.rule.expect == "positive" and c.rule.decides_alone, link_id


def test_hbv_dna_only_after_documented_exposure_and_hcv_antibody_must_be_negative() -> None:
    rule = IDS["inc-12.2.2"].rule
    assert isinstance(rule, Combination) and rule.code is CombinationCode.ANY_OF
    first, then = IDS["inc-12.2.2a"], IDS["inc-12.2.2b"]
    assert first.exclude and not then.exclude
    assert isinstance(first.rule, QualitativeTest) and first.rule.expect == "positive"
    assert isinstance(then.rule, QualitativeTest) and then.rule.expect == "negative"
    hbv_dna = IDS["inc-12.2.2b"].rule
    assert isinstance(hbv_dna, QualitativeTest) and (LOINC, "42595-9") in hbv_dna.codes.exact
    # "You must test negative for ... hepatitis C": the DNA follow-up is for hepatitis B only (issue 10).
    # A negative HCV RNA rescues nothing: the RNA is read only as a detectable load that fails (inc-12.3b).
    hcv = IDS["inc-12.3a"].rule
    assert isinstance(hcv, QualitativeTest) and hcv.expect == "negative"
    assert (LOINC, "13955-0") in hcv.codes.exact and not hcv.codes.matches_coding(LOINC, "11011-4")


def test_organ_function_names_its_blood_tests_in_the_14_day_window() -> None:
    rule = IDS["inc-11"].rule
    assert isinstance(rule, NotComputable)
    needed = {code for need in rule.needs for _, code in need.codes.all_codings()}
    assert {"751-8", "718-7", "777-3", "2160-0", "1742-6", "1920-8", "1975-2"} <= needed
    assert all(need.window is not None and need.window.days == 14 for need in rule.needs)


SCREENING = ["inc-7", "inc-8", "inc-9", "inc-13", "inc-14", "inc-15", "inc-17", "inc-18", "exc-13", "exc-14"]


@pytest.mark.parametrize("link_id", [*SCREENING, "exc-15"])
def test_screening_confirmations(link_id: str) -> None:
    assert is_screening(IDS[link_id])


def test_contraception_agreement_is_screening_inside_the_pregnancy_rule() -> None:
    assert is_screening(IDS["inc-16.2.3"])
    assert IDS["inc-16.1"].exclude  # NOT (woman of childbearing potential) OR ...


def test_exclusion_conditions_are_coded_broadly() -> None:
    uveal = IDS["exc-3"].rule
    assert isinstance(uveal, ConditionRule) and uveal.include_resolved
    assert uveal.codes.matches_coding(ICD10CM, "C69.30")
    lepto = IDS["exc-2.1"].rule
    assert isinstance(lepto, ConditionRule) and lepto.codes.matches_coding(SNOMED, "94246001")
    # C79.49 (spinal cord, nerve roots ...) and C79.32 (cerebral meninges: the dura too) are not necessarily
    # leptomeningeal: only with the investigator (unknown)
    for code in ("C79.49", "C79.32"):
        assert not lepto.codes.matches_coding(ICD10CM, code), code
    assert is_not_computable(IDS["exc-2.2b"])
    hiv = IDS["exc-4.2"].rule
    assert isinstance(hiv, ConditionRule) and hiv.codes.matches_coding(ICD10CM, "B20")


def test_corticosteroids_above_10_mg_prednisone_within_2_weeks() -> None:
    rule = IDS["exc-6.1"].rule
    assert isinstance(rule, CorticosteroidDoseRule)
    assert rule.comparator is Comparator.GT and rule.prednisone_mg_per_day == 10 and rule.within.days == 14


def test_other_cancer_exempts_the_melanoma_and_skin_cancer() -> None:
    rule = IDS["exc-11.2a"].rule
    assert isinstance(rule, ConditionRule) and rule.within is not None and rule.within.days == 730
    icd = ICD10CM
    assert rule.codes.matches_coding(icd, "C50.911")
    for exempt in ("C43.9", "C44.91", "C79.31"):
        assert rule.except_codes.matches_coding(icd, exempt)


def test_research_study() -> None:
    study = validate_research_study(DOC)
    identifiers = {(i.system, i.value) for i in study.identifier}
    assert ("https://clinicaltrials.gov/nctid", "NCT06284590") in identifiers
    assert ("https://euclinicaltrials.eu/clinicalTrialId", "2024-519326-20-00") in identifiers
    assert any(i.value == "PH-ICKPD1-02/21" for i in study.identifier)
    assert study.phase.coding[0].code == "phase-2"
    assert len(study.comparisonGroup) == 3
    assert {r.coding[0].code for r in study.region} == {"DE", "IT"}
    assert len(study.site) == 4
    assert study.progressStatus[0].period.start.isoformat() == "2026-01-12"


def test_fifth_review_who_codes_old_active_cancer_and_reactive_hiv_screen() -> None:
    # F1: WHO / ICD-10-GM C79.3 (read as the CM code it spells) is a brain metastasis; CM C79.32 stays exc-2's.
    brain = IDS["exc-1.1a"].rule
    assert isinstance(brain, ConditionRule) and brain.codes.matches_coding(ICD10CM, "C79.3")
    assert brain.except_codes is not None and brain.except_codes.matches_coding(ICD10CM, "C79.32")
    meninges = IDS["exc-2.2a"].rule
    assert isinstance(meninges, ConditionRule) and meninges.codes.matches_coding(ICD10CM, "C79.3")
    # F18: an old cancer still marked active is unknown (a not_computable beside it), a recent one excludes.
    assert is_not_computable(IDS["exc-11.1b2"])
    recent = IDS["exc-11.1a2"].rule
    assert isinstance(recent, ConditionRule) and recent.within is not None and recent.within.days == 1826
    # F19: a reactive screen is rescued only to unknown, and only by a negative HIV-1 RNA in the window.
    rna = IDS["inc-12.1a2b"].rule
    assert isinstance(rna, QualitativeTest) and rna.expect == "negative" and rna.decides_alone
    assert is_not_computable(IDS["inc-12.1a2c"])
    # F16: a resected (resolved) distant metastasis still makes the melanoma stage IV.
    distant = IDS["inc-2.3b"].rule
    assert isinstance(distant, ConditionRule) and distant.include_resolved

"""NCT06494995 (cadonilimab + low-dose RT, recurrent/metastatic HNSCC): the mapping against its seed.

Expected structure read from seeds/001_f6d4f4387d659b53.txt: inclusion criteria are numbered
2..12 (11 items: age; histology; R/M after first line or recurrence ≤6 months after radical RT;
not suitable for local treatment; measurable lesion; survival > 3 months; ECOG 0-2; organ function
with sub-items 1..7; HBV/HCV; pregnancy test + contraception; male contraception) and exclusion
criteria 2..17 without 8 (15 items: cord compression; GI perforation/fistula; necrosis/bleeding
risk; other malignancy; heart a-d; treatments 1..5; severe infection; autoimmune; immunodeficiency;
ILD; tuberculosis; active HBV/HCV; substance abuse; pregnancy/lactation; investigator judgement).
"""

from __future__ import annotations

from pathlib import Path

from service.catalog import load_trial
from service.domain.criteria import (
    ATC,
    ICD10CM,
    LOINC,
    SNOMED,
    AgeRule,
    CombinationCode,
    Comparator,
    ConditionRule,
    CorticosteroidDoseRule,
    CreatinineClearanceRule,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProcedureRule,
    ProgressionAfterTherapyRule,
    SexRule,
)
from service.domain.criteria import (
    TestRule as QualitativeTest,
)
from service.fhir.conformance import EXT_SCREENING
from tests.criteria_access import parts, rule_of, source_order_problems
from tests.mapping_helpers import (
    ROOT,
    by_id,
    is_screening,
    leaves,
    load,
    not_verbatim,
    seed_text,
    validate_research_study,
)

DOC, TRIAL = load("NCT06494995")
IDS = by_id(TRIAL)
SEED = seed_text("001_f6d4f4387d659b53.txt")

INCLUSIONS = [f"inc-{n}" for n in range(2, 13)]
EXCLUSIONS = [f"exc-{n}" for n in range(2, 18) if n != 8]  # the source has no exclusion 8


def test_every_source_criterion_is_a_top_level_criterion_with_the_source_number_in_order() -> None:
    assert (len(INCLUSIONS), len(EXCLUSIONS)) == (11, 15)
    assert source_order_problems(TRIAL, INCLUSIONS, EXCLUSIONS) == []


def test_texts_are_verbatim_from_the_seed_including_its_escapes() -> None:
    assert not_verbatim(TRIAL, SEED) == []
    assert IDS["inc-7"].description == "Expected survival period\\>3 months;"
    assert "HBV DNA \\<500 IU/mL" in IDS["inc-10"].description


def test_observations_carry_loinc_codes_a_unit_or_uln_multiple_and_a_window() -> None:
    observations = [c for c in TRIAL.walk() if isinstance(c.rule, ObservationRule)]
    assert len(observations) >= 14
    for criterion in observations:
        rule = criterion.rule
        assert isinstance(rule, ObservationRule)
        assert rule.codes.exact and all(system == LOINC for system, _ in rule.codes.exact), criterion.link_id
        assert (rule.unit is not None) != (rule.relative_to is not None), criterion.link_id
        # The protocol states no lab window except the pregnancy test: the file default applies.
        assert rule.window.days == 28 and rule.window.is_default, criterion.link_id


def test_organ_function_has_the_seven_numbered_requirements() -> None:
    code, children = parts(IDS, "inc-9")
    assert code is CombinationCode.ALL_OF
    assert [c.link_id for c in children] == [f"inc-9.{n}" for n in range(1, 8)]
    thresholds = {
        "inc-9.1": ("751-8", Comparator.GE, 1.5, "10*9/L"),
        "inc-9.2": ("777-3", Comparator.GE, 100, "10*9/L"),
        "inc-9.3": ("718-7", Comparator.GE, 9, "g/dL"),
        "inc-9.4": ("1751-7", Comparator.GE, 2.8, "g/dL"),
    }
    for link_id, (loinc, op, value, unit) in thresholds.items():
        rule = IDS[link_id].rule
        assert isinstance(rule, ObservationRule)
        assert (LOINC, loinc) in rule.codes.exact
        assert (rule.comparator, rule.value, rule.unit) == (op, value, unit)


def test_uln_multiples_and_the_each_of_reading_of_alt_ast_alp() -> None:
    expected = {
        "inc-9.5.1": 1.5,
        "inc-9.5.2a": 3,
        "inc-9.5.2b": 3,
        "inc-9.5.2c": 3,
        "inc-9.6.1": 1.5,
        "inc-9.7.1a": 1.5,
        "inc-9.7.1b1": 1.5,
    }
    for link_id, multiple in expected.items():
        rule = IDS[link_id].rule
        assert isinstance(rule, ObservationRule)
        assert (rule.relative_to, rule.comparator, rule.value) == ("ULN", Comparator.LE, multiple), link_id
    code, children = parts(IDS, "inc-9.5.2")
    assert code is CombinationCode.ALL_OF and len(children) == 3
    # fifth round F13: an INR of at most 1.5 is within 1.5 x any INR upper limit (never below 1.0), range or not
    code, inr = parts(IDS, "inc-9.7.1b")
    assert code is CombinationCode.ANY_OF and [c.link_id for c in inr] == ["inc-9.7.1b1", "inc-9.7.1b2"]
    absolute = rule_of(IDS, "inc-9.7.1b2", ObservationRule)
    assert (absolute.relative_to, absolute.comparator, absolute.value) == (None, Comparator.LE, 1.5)


def test_cockcroft_gault_and_the_anticoagulant_exception() -> None:
    crcl = IDS["inc-9.6.2"].rule
    assert isinstance(crcl, CreatinineClearanceRule)
    assert (crcl.comparator, crcl.value) == (Comparator.GE, 60)
    code, branches = parts(IDS, "inc-9.7")
    assert code is CombinationCode.ANY_OF and len(branches) == 2
    anticoagulant = IDS["inc-9.7.2a"].rule
    assert isinstance(anticoagulant, MedicationRule) and anticoagulant.current
    assert anticoagulant.codes.matches_coding(ATC, "B01AA03")  # warfarin
    assert anticoagulant.codes.matches_coding(ATC, "B01AB05")  # enoxaparin
    assert is_screening(IDS["inc-9.7.2b"])


def test_hbv_and_hcv_rules_apply_only_to_infected_patients() -> None:
    for link_id, antecedent, consequent in (
        ("inc-10.1", "inc-10.1a", "inc-10.1b"),
        ("inc-10.2", "inc-10.2a", "inc-10.2b"),
    ):
        code, children = parts(IDS, link_id)
        assert code is CombinationCode.ANY_OF
        assert [c.link_id for c in children] == [antecedent, consequent]
        assert children[0].exclude and not children[1].exclude
    allowed = rule_of(IDS, "inc-10.1b", ObservationRule)
    active = rule_of(IDS, "exc-14.1b", ObservationRule)
    for rule, op in ((allowed, Comparator.LT), (active, Comparator.GE)):
        assert (rule.comparator, rule.value, rule.unit) == (op, 500, "[IU]/mL")
        assert {(LOINC, "42595-9"), (LOINC, "29615-2")} <= rule.codes.exact
    hbv = IDS["inc-10.1a1"].rule
    assert isinstance(hbv, ConditionRule) and hbv.codes.matches_coding(ICD10CM, "B18.1")
    rna = IDS["inc-10.2b"].rule
    assert isinstance(rna, QualitativeTest) and rna.expect == "negative"


def test_pregnancy_test_within_seven_days_for_women_of_childbearing_age() -> None:
    code, children = parts(IDS, "inc-11.1")
    assert code is CombinationCode.ANY_OF and children[0].exclude
    women = [c.rule for c in leaves(children[0])]
    assert any(isinstance(r, SexRule) and r.sexes == {"female"} for r in women)
    # Age is only a stand-in for childbearing potential: it never decides alone (fresh review, inc-11.1a).
    assert not any(isinstance(r, AgeRule) for r in women)
    assert IDS["inc-11.1a2b1"].exclude and isinstance(IDS["inc-11.1a2b2"].rule, NotComputable)
    positive = rule_of(IDS, "inc-11.1a2a", QualitativeTest)
    assert positive.expect == "positive" and positive.decides_alone  # a positive hCG overrides a recorded menopause
    test = IDS["inc-11.1b"].rule
    assert isinstance(test, QualitativeTest) and test.expect == "negative"
    assert test.window is not None and test.window.days == 7 and not test.window.is_default
    assert {(LOINC, "2106-3"), (LOINC, "2118-8")} <= test.codes.exact


def test_screening_confirmations_are_where_no_record_can_decide() -> None:
    screening = {c.link_id for c in TRIAL.walk() if is_screening(c)}
    assert {"inc-5", "inc-6", "inc-11.2", "inc-12", "exc-4", "exc-7.2", "exc-17"} <= screening
    # The line of therapy and the radiotherapy intent are confirmed at screening (issue 10).
    assert {"inc-4.1a2", "inc-4.2c"} <= screening
    assert not {"inc-2", "inc-3", "inc-8", "exc-5", "exc-16"} & screening


def test_diagnosis_progression_and_performance_status() -> None:
    code, branches = parts(IDS, "inc-3")
    assert code is CombinationCode.ANY_OF
    assert [c.link_id for c in branches] == ["inc-3.1", "inc-3.2", "inc-3.3", "inc-3.4", "inc-3.5"]
    # Squamous histology comes from the diagnosis itself, never from a site code (fresh review, inc-3.1).
    histology = rule_of(IDS, "inc-3.1", ConditionRule)
    assert not histology.codes.prefixes and (SNOMED, "716659002") in histology.codes.exact
    site_only = rule_of(IDS, "inc-3.3a", ConditionRule)
    for icd in ("C32.9", "C11.9", "C01", "C05.0", "C76.0", "C30.0", "C31.0"):  # C30/C31: sinonasal SCC
        assert site_only.codes.matches_coding(ICD10CM, icd), icd
    for icd in ("C07", "C08.0", "C77.0"):  # salivary glands: mostly not squamous; C77.0: inc-3.2
        assert not site_only.codes.matches_coding(ICD10CM, icd), icd
    assert site_only.except_codes is not None and "adenoid cystic" in site_only.except_codes.names
    assert isinstance(IDS["inc-3.3b"].rule, NotComputable)
    unknown_primary = rule_of(IDS, "inc-3.2a", ConditionRule)
    assert unknown_primary.codes.matches_coding(ICD10CM, "C77.0")
    assert isinstance(IDS["inc-3.2b"].rule, NotComputable)
    # inc-4.1: met only within 6 months of a standard regimen; any later progression is unknown.
    standard = rule_of(IDS, "inc-4.1a1", ProgressionAfterTherapyRule)
    assert standard.within_days == 183
    any_line = rule_of(IDS, "inc-4.1b1", ProgressionAfterTherapyRule)
    assert any_line.within_days is None and any_line.therapy.matches_coding(ATC, "L01BA01")
    assert isinstance(IDS["inc-4.1b2"].rule, NotComputable)
    after_rt = rule_of(IDS, "inc-4.2a", ProgressionAfterTherapyRule)
    assert after_rt.within_days == 183
    code, parts_of_rt = parts(IDS, "inc-4.2")
    assert code is CombinationCode.ALL_OF and [c.link_id for c in parts_of_rt] == ["inc-4.2a", "inc-4.2b", "inc-4.2c"]
    assert IDS["inc-4.2b1"].exclude and isinstance(IDS["inc-4.2b1"].rule, ProcedureRule)
    survival = rule_of(IDS, "inc-7", ObservationRule)
    assert (LOINC, "75327-7") in survival.codes.exact
    assert (survival.comparator, survival.value, survival.unit) == (Comparator.GT, 3, "mo")
    ecog = IDS["inc-8"].rule
    assert isinstance(ecog, ObservationRule) and (LOINC, "89247-1") in ecog.codes.exact
    assert (ecog.comparator, ecog.value, ecog.unit) == (Comparator.LE, 2, "1")


def test_recency_windows_of_exclusions() -> None:
    code, branches = parts(IDS, "exc-5")
    assert code is CombinationCode.ANY_OF and [c.link_id for c in branches] == ["exc-5.1", "exc-5.2", "exc-5.3"]
    pairs = (
        ("exc-5.1a1", "exc-5.2a"),
        ("exc-5.1a2", "exc-5.2b"),
        ("exc-5.3a", "exc-5.3b"),
        ("exc-5.3c1a", "exc-5.3c1b"),
    )
    for active_id, recent_id in pairs:
        active = rule_of(IDS, active_id, ConditionRule)
        assert active.within is None and not active.include_resolved  # active now, whenever it began
        recent = rule_of(IDS, recent_id, ConditionRule)
        assert recent.include_resolved and recent.within is not None and recent.within.days == 1095
    for mi_id in ("exc-6c1", "exc-6c2"):  # coded and named infarctions: both within a year
        mi = rule_of(IDS, mi_id, ConditionRule)
        assert mi.within is not None and mi.within.days == 365
    code, steroid_parts = parts(IDS, "exc-7.3a")
    assert code is CombinationCode.ALL_OF
    steroid = rule_of(IDS, "exc-7.3a1", CorticosteroidDoseRule)
    assert (steroid.comparator, steroid.prednisone_mg_per_day, steroid.within.days) == (Comparator.GT, 10, 14)
    assert isinstance(IDS["exc-7.3a2"].rule, NotComputable)  # the exempt prophylaxis: never read as absent
    surgery = rule_of(IDS, "exc-7.5a", ProcedureRule)
    assert surgery.within is not None and surgery.within.days == 28
    investigational = rule_of(IDS, "exc-7.1", MedicationRule)
    assert investigational.within is not None and investigational.within.days == 28
    for windowed, active_id in (("exc-3.1a", "exc-3.1b1"), ("exc-9.1a1", "exc-9.1b1a"), ("exc-9.1a2", "exc-9.1b1b")):
        inside = rule_of(IDS, windowed, ConditionRule)
        still_active = rule_of(IDS, active_id, ConditionRule)
        assert inside.within is not None and still_active.within is None and not still_active.include_resolved
        assert inside.codes == still_active.codes


def test_exclusion_conditions_have_snomed_and_icd10cm_codes() -> None:
    # fifth round F1: the coded halves of the split rules (exc-11.1a1, exc-13.1a, exc-15.1)
    for link_id in ("exc-6c1", "exc-10.1a", "exc-11.1a1", "exc-12.1", "exc-13.1a", "exc-15.1", "exc-16.1a"):
        rule = IDS[link_id].rule
        assert isinstance(rule, ConditionRule), link_id
        systems = {s for s, _ in rule.codes.all_codings()}
        assert {SNOMED, ICD10CM} <= systems, link_id


def test_not_computable_only_where_judgement_gates_a_recorded_condition() -> None:
    reasons = {c.link_id for c in TRIAL.walk() if isinstance(c.rule, NotComputable)}
    assert reasons == {
        "inc-3.2b",  # squamous histology of a neck-node carcinoma of unknown primary
        "inc-3.3b",  # squamous histology of a cancer coded by its head-and-neck site only
        "inc-3.4b",  # a cancer recorded in words the mapping does not read: the study cancer or not
        "inc-3.5b",  # a head-and-neck cancer on record only as history: is the current disease its recurrence
        "inc-11.1a2b2",  # childbearing potential of a woman with no menopause / sterility / positive hCG on record
        "inc-4.1b2",  # the setting (curative vs recurrent/metastatic) of a systemic therapy
        "inc-4.2b2",  # which radiotherapy course a recurrence followed, when one was palliative
        "exc-3.1b2",  # a perforation / fistula still recorded active that began before the window
        "exc-3.2b",  # a repair in the window removed the fistula on record and none opened after it
        "exc-3.1c2",  # a perforation / fistula within the window in words not read as gastrointestinal
        "exc-6c3b",  # an old / history-of MI or an ACS dated within the year: is it the infarction's date
        "exc-7.3d2",  # a corticosteroid by brand name: its dose and purpose
        "exc-7.5c2",  # an operation within 4 weeks that the major-surgery list does not name: major or not
        "exc-9.1c2",  # an infection within 4 weeks the severe-infection list does not name: its grade
        "exc-13.4b",  # a tuberculosis within the year with no pulmonary site stated: the lungs involved or not
        "exc-6d.2",
        "exc-7.3a2",  # corticosteroid purpose (allergy / nausea prophylaxis is exempt)
        "exc-7.3c2",  # methotrexate without a code: low-dose immunosuppressant or the anticancer line
        "exc-9.1b2",  # an infection still recorded active that began before the window
        "exc-10.1b2",  # immune-related or not (drug-induced colitis / hepatitis, pituitary disorder)
        "exc-5.1b",  # another cancer still recorded active that began more than 3 years ago: present or never closed
        "exc-2.1b2",  # a cord compression still recorded active that began more than 90 days ago
        "exc-6b2b",  # an unstable angina still recorded active that began more than 90 days ago
        "exc-16.1b3",  # a pregnancy still recorded active that began more than 300 days ago, no negative hCG
        "exc-16.2b2",  # a lactation still recorded active that began more than 2 years ago
        "exc-5.3c2",  # a cancer named in general words only: the study cancer or another one
        "exc-11.1c2",  # confirmation of a reactive HIV screening test
        "exc-11.3c2",  # allogeneic or autologous stem cell transplant
        "exc-12.2b",
        "exc-13.3b",
        "exc-10.1c3",  # a thyroiditis of unstated cause, no current replacement: immune-mediated? (fifth round F3)
        "exc-10.1d2",  # a disease called autoimmune / immune-mediated, "UC", PMR, other encephalitis (fifth round F2)
        "exc-7.4c2b",  # intravesical BCG more than 4 weeks ago: an "anti-tumor vaccine" or not (fifth round F9)
    }


def test_research_study_and_published_evidence_variable() -> None:
    study = validate_research_study(DOC)
    assert {i.value for i in study.identifier} == {"NCT06494995", "LDRT-ICB 1.0", "2312288-4"}
    assert study.phase.coding[0].code == "phase-2"
    assert study.recruitment.targetNumber == 52
    assert [g.name for g in study.comparisonGroup] == ["Hybrid RT", "Metronomic chemotherapy and LDRT"]
    trial = load_trial(ROOT / "mappings" / "NCT06494995.yaml")
    characteristics = trial.evidence_variables[0]["characteristic"]
    assert [c["linkId"] for c in characteristics] == INCLUSIONS + EXCLUSIONS
    flagged = {c["linkId"] for c in characteristics if any(e["url"] == EXT_SCREENING for e in c.get("extension", []))}
    assert flagged == {"inc-5", "inc-6", "inc-12", "exc-4", "exc-17"}
    assert Path(trial.source).name == "NCT06494995.yaml"

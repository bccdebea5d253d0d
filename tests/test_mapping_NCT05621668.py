"""NCT05621668 (attIL12-T cells, soft tissue and bone sarcoma): the mapping against its seed.

Expected structure read from seeds/002_57b9f978a61e90e2.txt: the registry's structured minimum
age (12 Years) plus inclusion criteria numbered 2..18 (17 items: sarcoma; osteosarcoma cohort;
evaluable disease; prior systemic therapy; washout before leukapheresis with a targeted-therapy
sub-bullet; bridging therapy with 4 sub-bullets; ECOG/Karnofsky/Lansky; biopsy; organ-function
heading; ANC/Hb/platelets; creatinine/CrCl; AST/ALT/bilirubin; LVEF; pulmonary function with 3
sub-bullets; WOCBP; men; consent) and exclusion criteria 2..13 (12 items: 2-4 under the heading,
4 with permissions 1-3 and the misplaced "5. Investigational therapy for supportive care" line;
5-13 scraped before the heading: immunodeficiency/transplant/TB; live vaccine; major surgery;
intercurrent illness; cognitive impairment; second malignancy; pregnancy; hepatitis B/C; HIV).
"""

from __future__ import annotations

from service.catalog import load_trial
from service.domain.criteria import (
    ICD10CM,
    LOINC,
    NCIT,
    SNOMED,
    AgeRule,
    CombinationCode,
    Comparator,
    ConditionRule,
    CreatinineClearanceRule,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProcedureRule,
)
from service.domain.criteria import (
    TestRule as QualitativeTest,
)
from service.domain.facts import matches
from service.fhir.conformance import EXT_ARM_ELIGIBILITY
from tests.criteria_access import parts, rule_of
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

DOC, TRIAL = load("NCT05621668")
IDS = by_id(TRIAL)
SEED = seed_text("002_57b9f978a61e90e2.txt")

# Inclusion 3 (Part B only) is the part-b arm's rule; 11-15 are the parts of their heading, inclusion 10;
# "exclusion" 9 says who is NOT excluded, so it is published as what it requires (exclude false).
INCLUSIONS = ["inc-age", "inc-2"] + [f"inc-{n}" for n in range(4, 11)] + ["inc-16", "inc-17", "inc-18"]
EXCLUSIONS = [f"exc-{n}" for n in range(2, 14)]


def test_every_source_criterion_is_a_criterion_with_the_source_number_in_order() -> None:
    top = [c.link_id for c in TRIAL.criteria]
    assert top == INCLUSIONS + EXCLUSIONS
    assert [c.exclude for c in TRIAL.criteria] == [False] * len(INCLUSIONS) + [e != "exc-9" for e in EXCLUSIONS]
    code, organ_function = parts(IDS, "inc-10")
    assert code is CombinationCode.ALL_OF
    assert [c.link_id for c in organ_function] == [f"inc-{n}" for n in range(11, 16)]
    assert [c.link_id for arm in TRIAL.arms for c in arm.criteria] == ["inc-3"]
    assert IDS["inc-age"].machine_derived and not any(c.machine_derived for c in TRIAL.criteria[1:])


def test_texts_are_verbatim_including_the_lost_symbols_and_escapes() -> None:
    assert not_verbatim(TRIAL, SEED) == []
    assert (
        IDS["inc-11"].description
        == "Absolute neutrophil count (ANC) . 1 K/uL, Hemoglobin . 9 g/dL, Platelets.100 K/mm3"
    )
    assert "Lansky for patients \\< 16 years of age" in IDS["inc-8"].description


def test_misplaced_exclusions_are_exclusions_and_the_supportive_care_line_qualifies_exclusion_4() -> None:
    assert IDS["exc-5"].description.startswith("History of primary immunodeficiency")
    assert IDS["exc-13"].description.startswith("Known history of testing positive for human immunodeficiency")
    code, paths = parts(IDS, "exc-4")
    assert code is CombinationCode.ANY_OF
    assert [c.link_id for c in paths] == ["exc-4.1", "exc-4.2"]
    current = rule_of(IDS, "exc-4.1", MedicationRule)
    assert current.current and current.codes.matches_coding("http://www.whocc.no/atc", "L01CD02")
    assert current.codes.matches_coding("http://www.whocc.no/atc", "L02BG04")  # letrozole
    # The permissions are exemptions, kept verbatim in the note (the supportive-care line included).
    note = IDS["exc-4"].note or ""
    assert "Investigational therapy for supportive care (e.g. COVID vaccine)" in note
    assert "Concurrent use of hormones for non-cancer-related conditions" in note


def test_lost_comparators_are_inferred_and_explained() -> None:
    expected = {
        "inc-11.1": (Comparator.GE, 1, "10*3/uL", "751-8"),
        "inc-11.2": (Comparator.GE, 9, "g/dL", "718-7"),
        "inc-11.3": (Comparator.GE, 100, "10*3/uL", "777-3"),
        "inc-12.1": (Comparator.LE, 2, "mg/dL", "2160-0"),
    }
    for link_id, (op, value, unit, loinc) in expected.items():
        rule = rule_of(IDS, link_id, ObservationRule)
        assert (rule.comparator, rule.value, rule.unit) == (op, value, unit), link_id
        assert (LOINC, loinc) in rule.codes.exact
        assert "lost" in (IDS[link_id].note or ""), link_id
    for link_id in ("inc-13.1", "inc-13.2", "inc-13.3"):
        rule = rule_of(IDS, link_id, ObservationRule)
        assert (rule.relative_to, rule.comparator, rule.value) == ("ULN", Comparator.LE, 1.5)
    assert "lost" in (IDS["inc-13"].note or "") and "lost" in (IDS["inc-8"].note or "")


def test_observation_windows_default_to_28_days() -> None:
    for criterion in TRIAL.walk():
        if isinstance(criterion.rule, ObservationRule):
            assert criterion.rule.window.days == 28 and criterion.rule.window.is_default, criterion.link_id
            assert criterion.rule.codes.exact, criterion.link_id


def test_performance_status_ecog_or_karnofsky_from_16_or_lansky_under_16() -> None:
    code, branches = parts(IDS, "inc-8")
    assert code is CombinationCode.ANY_OF and len(branches) == 3
    ecog = rule_of(IDS, "inc-8.1", ObservationRule)
    assert (LOINC, "89247-1") in ecog.codes.exact and (ecog.comparator, ecog.value) == (Comparator.LE, 1)
    karnofsky_age = IDS["inc-8.2a"].rule
    lansky_age = IDS["inc-8.3a"].rule
    assert isinstance(karnofsky_age, AgeRule) and karnofsky_age.min_years == 16
    assert isinstance(lansky_age, AgeRule) and lansky_age.max_years == 15
    assert (LOINC, "89243-0") in rule_of(IDS, "inc-8.2b", ObservationRule).codes.exact
    assert (NCIT, "C38144") in rule_of(IDS, "inc-8.3b", ObservationRule).codes.exact
    assert rule_of(IDS, "inc-8.2b", ObservationRule).value == rule_of(IDS, "inc-8.3b", ObservationRule).value == 70


def test_renal_cardiac_and_pulmonary_function() -> None:
    code, renal = parts(IDS, "inc-12")
    assert code is CombinationCode.ANY_OF and len(renal) == 2
    crcl = IDS["inc-12.2a"].rule
    assert isinstance(crcl, CreatinineClearanceRule) and (crcl.comparator, crcl.value) == (Comparator.GT, 50)
    assert rule_of(IDS, "inc-12.1", ObservationRule).molar_mass == 113.12
    lvef = rule_of(IDS, "inc-14", ObservationRule)
    assert (LOINC, "10230-1") in lvef.codes.exact and (lvef.comparator, lvef.value, lvef.unit) == (
        Comparator.GT,
        50,
        "%",
    )
    pulmonary = {"inc-15.1a": ("59408-5", 92), "inc-15.2": ("89085-5", 70), "inc-15.3": ("98130-8", 60)}
    for link_id, (loinc, value) in pulmonary.items():
        rule = rule_of(IDS, link_id, ObservationRule)
        assert (LOINC, loinc) in rule.codes.exact and (rule.comparator, rule.value, rule.unit) == (
            Comparator.GT,
            value,
            "%",
        )
    # "on room air" is rarely recorded and a value taken on oxygen would pass: the site confirms it.
    assert is_screening(IDS["inc-15.1b"]) and IDS["inc-15.1b"].description == "on room air"


def test_prior_therapy_and_washouts() -> None:
    prior = IDS["inc-5.1a"].rule
    assert isinstance(prior, MedicationRule) and prior.within is None and prior.systemic
    # Therapy on record counts for the sarcoma only when no other cancer, past or present, could have had it.
    assert IDS["inc-5.1b"].exclude
    # Intravitreal anti-VEGF (macular degeneration) and topical cytotoxics are no cancer therapy.
    assert all(rule_of(IDS, link_id, MedicationRule).systemic for link_id in ("inc-6.2a", "inc-6.5"))
    assert [c.rule for c in IDS["inc-5.1b"].rule.children] == [c.rule for c in IDS["inc-2.3a"].rule.children]
    assert isinstance(IDS["inc-5.2"].rule, NotComputable)
    washout = IDS["inc-6.1"]
    assert washout.exclude and isinstance(washout.rule, MedicationRule)
    assert washout.rule.within is not None and washout.rule.within.days == 20  # 3 weeks elapsed on day 21
    assert washout.rule.codes.matches_coding("http://www.whocc.no/atc", "L01DB01")  # doxorubicin
    # Cytotoxics with common low-dose non-cancer uses (methotrexate for arthritis) leave it unknown, never decided.
    assert washout.rule.codes.excluded is not None
    assert washout.rule.codes.excluded.matches_coding("http://www.whocc.no/atc", "L01BA01")
    low_dose = IDS["inc-6.3a"].rule
    assert isinstance(low_dose, MedicationRule) and low_dose.codes.matches_coding("http://www.whocc.no/atc", "L01BA01")
    assert IDS["inc-6.3"].exclude and isinstance(IDS["inc-6.3b"].rule, NotComputable)
    targeted = IDS["inc-6.2a"].rule
    assert isinstance(targeted, MedicationRule) and targeted.within is not None and targeted.within.days == 20
    assert all(is_screening(c) for c in parts(IDS, "inc-7")[1]) and len(parts(IDS, "inc-7")[1]) == 4


def test_exclusion_windows_and_codes() -> None:
    for link_id in ("exc-6.1", "exc-6.2a"):
        vaccine = IDS[link_id].rule
        assert isinstance(vaccine, MedicationRule) and vaccine.within is not None and vaccine.within.days == 28
    assert isinstance(IDS["exc-6.2b"].rule, NotComputable)  # an unspecified formulation may be live: unknown
    surgery = IDS["exc-7.1"].rule
    assert isinstance(surgery, ProcedureRule) and surgery.within is not None and surgery.within.days == 28
    malignancy = IDS["exc-10.1b"].rule
    assert isinstance(malignancy, ConditionRule) and not malignancy.include_resolved
    assert malignancy.codes.matches_coding(ICD10CM, "C50.911")
    assert malignancy.except_codes.matches_coding(ICD10CM, "C41.2")  # the sarcoma itself
    # A uterine site code (C54/C55: carcinoma or sarcoma) is judged apart: unknown unless a carcinoma is named.
    assert malignancy.except_codes.matches_coding(ICD10CM, "C54.2")
    # Fifth review F14: a sarcoma histology or a phrase naming a sarcoma exempts a record, the bare word does not
    # ("Thyroid cancer found on sarcoma staging PET", C73, is a second malignancy).
    assert matches(malignancy.except_codes, (), "gist of stomach")
    assert matches(malignancy.except_codes, (), "sarcoma of right breast")
    assert not matches(malignancy.except_codes, (), "thyroid cancer found on sarcoma staging pet, surgery pending")
    # Kaposi sarcoma and MDS are read by code alone: no name exception (the word "sarcoma") can undo them.
    never_the_sarcoma = IDS["exc-10.1a"].rule
    assert isinstance(never_the_sarcoma, ConditionRule) and not never_the_sarcoma.except_codes.all_codings()
    assert all(never_the_sarcoma.codes.matches_coding(ICD10CM, code) for code in ("C46.0", "C92.30", "D46.9"))
    uterine = IDS["exc-10.2a"].rule
    assert isinstance(uterine, ConditionRule) and uterine.codes.matches_coding(ICD10CM, "C54.2")
    assert isinstance(IDS["exc-10.2b2"].rule, NotComputable)
    for link_id in ("exc-5.3a", "exc-11.1a", "exc-12.1a1", "exc-13.1"):
        rule = IDS[link_id].rule
        assert isinstance(rule, ConditionRule), link_id
        assert {SNOMED, ICD10CM} <= {s for s, _ in rule.codes.all_codings()}, link_id
    # Entries left active for years: a pregnancy begun > 300 days ago is over; old lactation, unstable
    # angina, cord compression and C79.49 nervous-system metastases leave their criterion unknown.
    pregnancy = IDS["exc-11.1b"].rule
    assert isinstance(pregnancy, ConditionRule) and pregnancy.within is not None and pregnancy.within.days == 300
    for link_id in ("exc-11.2b2", "exc-8.4b2", "exc-2.3b", "exc-2.4b"):
        assert isinstance(IDS[link_id].rule, NotComputable), link_id
    leptomeningeal = IDS["exc-2.2"].rule
    assert isinstance(leptomeningeal, ConditionRule) and not leptomeningeal.codes.matches_coding(ICD10CM, "C79.49")
    hcv = [c.rule for c in leaves(IDS["exc-12.2b"])]
    assert all(isinstance(r, QualitativeTest) and r.expect == "positive" for r in hcv) and len(hcv) == 2
    # Detectable HCV RNA or HBV DNA is infection on its own (acute HCV before seroconversion, occult HBV).
    for link_id in ("exc-12.2c", "exc-12.1c"):
        viraemia = IDS[link_id].rule
        assert isinstance(viraemia, QualitativeTest) and viraemia.decides_alone, link_id
        assert viraemia.expect == "positive", link_id


def test_screening_confirmations_are_where_no_record_can_decide() -> None:
    screening = {c.link_id for c in TRIAL.criteria if is_screening(c)}
    assert screening == {"inc-4", "inc-9", "inc-16", "inc-17", "inc-18", "exc-3", "exc-9"}
    assert not IDS["exc-9"].exclude


def test_part_b_requires_osteosarcoma_and_icd_alone_is_not_enough() -> None:
    (arm,) = TRIAL.arms
    assert arm.group == "part-b"
    rules = {c.link_id: c.rule for crit in arm.criteria for c in crit.walk()}
    osteosarcoma = rules["inc-3.1a1"]
    assert isinstance(osteosarcoma, ConditionRule) and (SNOMED, "307576001") in osteosarcoma.codes.exact
    assert not osteosarcoma.codes.matches_coding(ICD10CM, "C41.9")
    assert isinstance(rules["inc-3.1b2"], NotComputable)
    trial = load_trial(ROOT / "mappings" / "NCT05621668.yaml")
    groups = {g["linkId"]: g for g in trial.research_study["comparisonGroup"]}
    assert [e["url"] for e in groups["part-b"]["extension"]] == [EXT_ARM_ELIGIBILITY]
    assert "extension" not in groups["part-a"]


def test_research_study() -> None:
    study = validate_research_study(DOC)
    assert {i.value for i in study.identifier} == {"NCT05621668", "2021-0619", "NCI-2022-09675"}
    assert study.phase.coding[0].code == "phase-1"
    assert study.recruitment.targetNumber == 40
    assert [o.type.coding[0].code for o in study.objective] == [
        "primary",
        "primary",
        "secondary",
        "exploratory",
        "exploratory",
        "exploratory",
    ]
    assert {f.concept.coding[0].code for f in study.focus if f.concept.coding} == {"3002"}

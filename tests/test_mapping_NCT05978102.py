"""NCT05978102 (ILKN421H / STI-7349): the mapping against its seed, a news article.

Expected counts read from seeds/003_faade6fef4f1016a.txt, the eligibility paragraph: 6
inclusions (18 to 80 years; ECOG 0 or 1; estimated survival >= 12 weeks; >= 1 measurable lesion
per RECIST v1.1; confirmed advanced solid tumour progressed on / intolerant of standard
treatment; adequate major organ function) and 2 exclusions (CAR T-cell therapy within 3 months;
major surgery within 28 days).
"""

from __future__ import annotations

from service.domain.criteria import (
    ATC,
    ICD10CM,
    LOINC,
    AgeRule,
    Comparator,
    ConditionRule,
    MedicationRule,
    ObservationRule,
    ProcedureRule,
)
from tests.mapping_helpers import (
    Mapped,
    is_not_computable,
    is_screening,
    leaves,
    validate_research_study,
)

M = Mapped.load("NCT05978102", "003_faade6fef4f1016a.txt")
DOC, TRIAL, IDS = M.doc, M.trial, M.ids


def test_every_source_criterion_is_a_verbatim_coded_top_level_criterion_in_order() -> None:
    assert M.structure_problems(inclusions=6, exclusions=2) == []


def test_age_ecog_and_life_expectancy() -> None:
    age = IDS["inc-1"].rule
    assert isinstance(age, AgeRule) and (age.min_years, age.max_years) == (18, 80)
    ecog = IDS["inc-2"].rule
    assert isinstance(ecog, ObservationRule) and (LOINC, "89247-1") in ecog.codes.exact
    assert ecog.comparator is Comparator.LE and ecog.value == 1
    survival = IDS["inc-3"].rule
    assert isinstance(survival, ObservationRule) and (LOINC, "75327-7") in survival.codes.exact
    assert survival.comparator is Comparator.GE and (survival.value, survival.unit) == (12, "wk")


def test_solid_tumour_diagnosis_excludes_haematological_malignancy() -> None:
    diagnosis = IDS["inc-5.1a"].rule
    assert isinstance(diagnosis, ConditionRule)
    for solid in ("C34.90", "C50.911", "C18.9", "C43.9", "C49.9", "C78.00"):
        assert diagnosis.codes.matches_coding(ICD10CM, solid), solid
    for blood in ("C81.90", "C83.30", "C90.00", "C92.00"):
        assert not diagnosis.codes.matches_coding(ICD10CM, blood), blood
    # The text branch reads names on every record: a leukaemia coded C92.30 "Myeloid sarcoma" is excepted.
    by_name = IDS["inc-5.1b"].rule
    assert isinstance(by_name, ConditionRule) and by_name.except_codes.matches_coding(ICD10CM, "C92.30")
    assert "myeloid sarcoma" in by_name.except_codes.names and "cancer" in by_name.codes.names
    assert is_screening(IDS["inc-5.2"]) and is_screening(IDS["inc-5.3"])


def test_measurable_lesion_is_screening_and_organ_function_has_no_thresholds() -> None:
    assert is_screening(IDS["inc-4"])
    assert is_not_computable(IDS["inc-6"])


def test_car_t_within_3_months_and_major_surgery_within_28_days() -> None:
    car_t = [c.rule for c in leaves(IDS["exc-1"]) if not is_not_computable(c)]
    # 3 months = 92 days, the longest span of 3 calendar months (fourth review F18); the history diagnosis
    # (exc-1.3) and the immune effector cell complication (exc-1.4a, fifth review F5) use the same window.
    assert {getattr(r, "within", None) and r.within.days for r in car_t} == {92}
    medication = next(r for r in car_t if isinstance(r, MedicationRule))
    assert medication.codes.matches_coding(ATC, "L01XL03")
    assert "tisagenlecleucel" in medication.codes.names
    surgery = IDS["exc-2.1"].rule
    assert isinstance(surgery, ProcedureRule) and surgery.within is not None and surgery.within.days == 28
    # A toe or finger amputation is no major surgery by itself: exc-2.2 leaves it to the investigator.
    assert surgery.codes.excluded is not None and "toe" in surgery.codes.excluded.names
    assert is_not_computable(IDS["exc-2.2b"])
    assert ("http://snomed.info/sct", "43075005") in surgery.codes.exact  # partial colectomy
    assert "biopsy" not in surgery.codes.names


def test_research_study_states_only_what_the_article_says() -> None:
    study = validate_research_study(DOC)
    nct = ("https://clinicaltrials.gov/nctid", "NCT05978102")
    assert [(i.system, i.value) for i in study.identifier] == [nct]
    assert study.phase.coding[0].code == "phase-1"
    assert [g.linkId for g in study.comparisonGroup] == ["period-1", "period-2"]
    assert study.recruitment.actualNumber == 45 and study.recruitment.targetNumber is None
    assert study.associatedParty[0].name == "iLeukon Therapeutics, Inc."
    primary = [m for m in study.outcomeMeasure if m.type[0].coding[0].code == "primary"]
    assert len(primary) == 1 and "CTCAE v5.0" in primary[0].description
    assert len(study.outcomeMeasure) == 7
    assert not study.progressStatus and not study.region  # the article gives neither

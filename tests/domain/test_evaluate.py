"""Each rule kind against realistic record shapes, through parse → index → evaluate (DESIGN.md §2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.catalog import Trial
from service.domain.criteria import ICD10CM, Result
from service.domain.evaluate import CriterionResult, StudyEvaluation, Verdict, evaluate_study
from service.fhir.patient_bundle import index_facts, parse_body
from tests.builders import (
    ICD10,
    LOINC,
    SNOMED,
    administration_r4,
    administration_r5,
    body,
    concept,
    condition,
    observation,
    patient,
    procedure_r4,
    statement_r4,
)

ON = dt.date(2026, 3, 1)
M, N, U = Result.MET, Result.NOT_MET, Result.UNKNOWN


def evaluate(trial: Trial, *resources: dict[str, Any], on: dt.date = ON) -> StudyEvaluation:
    return evaluate_study(trial.criteria, index_facts(parse_body(body(*resources))), on)


def result(evaluation: StudyEvaluation, link_id: str) -> CriterionResult:
    for top in evaluation.all_results():
        for found in top.walk():
            if found.criterion.link_id == link_id:
                return found
    raise KeyError(link_id)


def test_age_at_the_evaluation_date(rules_trial: Trial) -> None:
    assert result(evaluate(rules_trial, patient("1951-03-02")), "inc-age").result is M  # 74 on 2026-03-01
    assert result(evaluate(rules_trial, patient("1951-03-01")), "inc-age").result is M  # 75 today: ≤ 75 holds
    assert result(evaluate(rules_trial, patient("2008-03-02")), "inc-age").result is N  # 17, 18 tomorrow
    older = result(evaluate(rules_trial, patient("1950-02-28")), "inc-age")
    assert older.result is N and "Age 76" in older.reason


def test_partial_birth_date_straddling_a_bound_is_unknown(rules_trial: Trial) -> None:
    straddle = result(evaluate(rules_trial, patient("2008")), "inc-age")  # 17 or 18 on 2026-03-01
    assert straddle.result is U and "partial birth date" in straddle.reason
    assert result(evaluate(rules_trial, patient("1980")), "inc-age").result is M


def test_missing_birth_date_is_unknown_with_a_requirement(rules_trial: Trial) -> None:
    age = result(evaluate(rules_trial, patient(None)), "inc-age")
    assert age.result is U
    assert age.requirements[0].resource_type == "Patient"


def test_lab_inside_window_met_and_reason_cites_value_and_date(rules_trial: Trial) -> None:
    plt = result(evaluate(rules_trial, patient(), observation("777-3", "2026-02-27", 150, "10*9/L")), "inc-labs-plt")
    assert plt.result is M
    assert "150 10*9/L on 2026-02-27" in plt.reason and len(plt.evidence) == 1


def test_lab_below_threshold_not_met(rules_trial: Trial) -> None:
    plt = result(evaluate(rules_trial, patient(), observation("777-3", "2026-02-27", 85, "10*9/L")), "inc-labs-plt")
    assert plt.result is N and "85 10*9/L" in plt.reason and "does not meet" in plt.reason


def test_latest_value_in_window_wins(rules_trial: Trial) -> None:
    evaluation = evaluate(
        rules_trial,
        patient(),
        observation("777-3", "2026-02-20", 150, "10*9/L"),
        observation("777-3", "2026-02-27", 85, "10*9/L"),
    )
    assert result(evaluation, "inc-labs-plt").result is N


def test_stale_lab_is_unknown_with_its_age_and_a_dated_requirement(rules_trial: Trial) -> None:
    plt = result(evaluate(rules_trial, patient(), observation("777-3", "2026-01-20", 150, "10*9/L")), "inc-labs-plt")
    assert plt.result is U and "40 days old" in plt.reason
    requirement = plt.requirements[0]
    assert requirement.codes == ((LOINC, "777-3"),)
    assert requirement.since == dt.date(2026, 2, 15) and requirement.until == ON


def test_units_are_converted_with_ucum_and_ehr_spellings(rules_trial: Trial) -> None:
    kul = observation("777-3", "2026-02-27", 150, None, valueQuantity={"value": 150, "unit": "K/uL"})
    assert result(evaluate(rules_trial, patient(), kul), "inc-labs-plt").result is M
    per_ul = observation("777-3", "2026-02-27", 90000, "/uL")
    assert result(evaluate(rules_trial, patient(), per_ul), "inc-labs-plt").result is N


def test_unconvertible_unit_is_unknown_saying_so(rules_trial: Trial) -> None:
    odd = observation("777-3", "2026-02-27", 150, "mg/dL")
    plt = result(evaluate(rules_trial, patient(), odd), "inc-labs-plt")
    assert plt.result is U and "cannot be converted" in plt.reason


def test_molar_units_use_the_analyte_molar_mass(rules_trial: Trial) -> None:
    creat = observation("2160-0", "2026-02-25", 120, "umol/L")  # 1.36 mg/dL
    assert result(evaluate(rules_trial, patient(), creat), "inc-labs-creat").result is M
    creat_high = observation("2160-0", "2026-02-25", 150, "umol/L")  # 1.70 mg/dL
    assert result(evaluate(rules_trial, patient(), creat_high), "inc-labs-creat").result is N


@pytest.mark.parametrize(("value", "expected"), [(90, M), (130, N)])
def test_uln_multiple_uses_the_results_own_reference_range(rules_trial: Trial, value: float, expected: Result) -> None:
    alt = observation("1742-6", "2026-02-27", value, "U/L", high=40)
    found = result(evaluate(rules_trial, patient(), alt), "inc-labs-alt")
    assert found.result is expected and "ULN 40" in found.reason


def test_uln_without_reference_range_is_unknown(rules_trial: Trial) -> None:
    alt = result(evaluate(rules_trial, patient(), observation("1742-6", "2026-02-27", 30, "U/L")), "inc-labs-alt")
    assert alt.result is U and "no reference range" in alt.reason


def test_cockcroft_gault_from_age_sex_weight_and_creatinine(rules_trial: Trial) -> None:
    # Male aged 55, 70 kg, creatinine 1.0 mg/dL: (140-55)*70/72 = 82.6 mL/min
    evaluation = evaluate(
        rules_trial,
        patient("1970-05-02", "male"),
        observation("2160-0", "2026-02-25", 1.0, "mg/dL"),
        observation("29463-7", "2026-01-10", 70, "kg"),
    )
    crcl = result(evaluation, "inc-labs-crcl")
    assert crcl.result is M and "82.6 mL/min" in crcl.reason and len(crcl.evidence) == 3
    # Female, same data ×0.85 = 70.2; creatinine 1.5 → 46.8: not met
    evaluation = evaluate(
        rules_trial,
        patient("1970-05-02", "female"),
        observation("2160-0", "2026-02-25", 1.5, "mg/dL"),
        observation("29463-7", "2026-01-10", 70, "kg"),
    )
    assert result(evaluation, "inc-labs-crcl").result is N


def test_cockcroft_gault_without_weight_is_unknown(rules_trial: Trial) -> None:
    crcl = result(evaluate(rules_trial, patient(), observation("2160-0", "2026-02-25", 1.0, "mg/dL")), "inc-labs-crcl")
    assert crcl.result is U and "body weight" in crcl.reason


POSITIVE = concept(SNOMED, "10828004", "Positive")
HYPERTENSION = condition(SNOMED, "38341003", "Hypertension")
NEGATIVE = concept(SNOMED, "260385009", "Negative")


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([observation("5196-1", "2025-12-01", NEGATIVE), HYPERTENSION], M),  # HBV negative: no HBV DNA needed
        ([observation("5196-1", "2025-12-01", NEGATIVE)], U),  # no conditions at all: hepatitis B not excluded
        ([observation("5196-1", "2025-12-01", POSITIVE), observation("42595-9", "2026-02-20", 100, "[IU]/mL")], M),
        ([observation("5196-1", "2025-12-01", POSITIVE), observation("42595-9", "2026-02-20", 1000, "[IU]/mL")], N),
        ([observation("5196-1", "2025-12-01", POSITIVE)], U),  # positive, no HBV DNA
        ([], U),  # nothing known about HBV
        (
            [
                observation("5196-1", "2025-12-01", POSITIVE),
                observation(
                    "42595-9", "2026-02-20", 20, None, valueQuantity={"value": 20, "comparator": "<", "unit": "IU/mL"}
                ),
            ],
            M,
        ),
    ],
)
def test_conditional_rule_hbv_dna_only_for_hbv_positive(
    rules_trial: Trial, records: list[Any], expected: Result
) -> None:
    assert result(evaluate(rules_trial, patient(), *records), "inc-hbv").result is expected


def test_test_results_read_from_strings_and_interpretation(rules_trial: Trial) -> None:
    text = observation("5196-1", "2025-12-01", "Non-reactive")
    assert result(evaluate(rules_trial, patient(), text), "inc-hbv-pos-sag").result is N
    flagged = observation(
        "5196-1",
        "2025-12-01",
        interpretation=[concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "POS")],
    )
    assert result(evaluate(rules_trial, patient(), flagged), "inc-hbv-pos-sag").result is M


def test_medication_dose_count_from_administrations_r4_and_r5(rules_trial: Trial) -> None:
    two = evaluate(
        rules_trial,
        patient(),
        administration_r4("1547545", "pembrolizumab", "2025-10-01"),
        administration_r5("1547545", "pembrolizumab", "2025-10-22"),
    )
    assert result(two, "inc-pd1").result is M
    one = evaluate(rules_trial, patient(), administration_r4("1547545", "pembrolizumab", "2025-10-01"))
    assert result(one, "inc-pd1").result is N


def test_medication_by_atc_class_and_by_name(rules_trial: Trial) -> None:
    by_atc = evaluate(
        rules_trial,
        patient(),
        administration_r4("L01FF01", "nivolumab", "2025-10-01", "http://www.whocc.no/atc"),
        administration_r4("L01FF01", "nivolumab", "2025-10-15", "http://www.whocc.no/atc"),
    )
    assert result(by_atc, "inc-pd1").result is M
    by_name = evaluate(rules_trial, patient(), statement_r4("999999", "Keytruda (pembrolizumab) 200 mg", "2025-06-01"))
    found = result(by_name, "inc-pd1")
    assert found.result is U and "number of doses" in found.reason


def test_absence_is_read_only_when_the_record_carries_that_kind_of_data(rules_trial: Trial) -> None:
    no_meds = result(evaluate(rules_trial, patient()), "inc-pd1")
    assert no_meds.result is U and "no medication data" in no_meds.reason
    other_meds = result(evaluate(rules_trial, patient(), statement_r4("197361", "amlodipine", "2025-01-01")), "inc-pd1")
    assert other_meds.result is N


def test_progression_within_12_weeks_of_the_last_dose(rules_trial: Trial) -> None:
    doses = [administration_r4("1547545", "pembrolizumab", d) for d in ("2025-09-01", "2025-09-22", "2025-10-13")]
    worse = concept(SNOMED, "271299001", "Patient's condition worsened")
    progressed = evaluate(rules_trial, patient(), *doses, observation("97509-4", "2025-12-15", worse))
    assert result(progressed, "inc-prog").result is M
    late = evaluate(rules_trial, patient(), *doses, observation("97509-4", "2026-02-20", worse))
    assert result(late, "inc-prog").result is U


@pytest.mark.parametrize(
    ("text", "progressed"),
    [
        ("Progressive disease, new lung metastases", True),
        ("Disease progression on CT", True),
        ("Worsening of disease", True),
        ("No evidence of disease progression", False),
        ("Stable disease, no progression", False),
        ("Pseudoprogression suspected, continue pembrolizumab", False),
        ("Pseudo-progression", False),
        ("Partial response; progression of one lung nodule not confirmed", False),
        ("Possible progression vs radiation change", False),
        ("Progression-free at 6 months", False),
    ],
)
def test_a_disease_status_text_reads_as_progression_only_when_stated_plainly(text: str, progressed: bool) -> None:
    from service.domain.evaluate import _is_progression
    from service.domain.facts import Value

    assert _is_progression(Value(text=text)) is progressed


def test_progression_after_a_drug_needs_medication_data_not_just_any_data(rules_trial: Trial) -> None:
    """A referral bundle with procedures and a progression but no medication list: the anti-PD-1 course
    may sit in another system, so its absence is unknown (medication records of other drugs settle it)."""
    worse = observation("97509-4", "2025-12-15", concept(SNOMED, "271299001", "Patient's condition worsened"))
    biopsy = procedure_r4(SNOMED, "86273004", "Biopsy", "2025-11-01")
    no_meds = result(evaluate(rules_trial, patient(), biopsy, worse), "inc-prog")
    assert no_meds.result is U and "no medication data" in no_meds.reason
    other_meds = evaluate(rules_trial, patient(), biopsy, worse, statement_r4("197361", "amlodipine", "2025-01-01"))
    assert result(other_meds, "inc-prog").result is N


def test_a_progression_is_tied_to_the_course_it_followed(rules_trial: Trial) -> None:
    """A recurrence long after an early course, then a new course begun for it: the recurrence is no
    progression on the new course (one span from the first course to the last once made it one)."""
    worse = concept(SNOMED, "271299001", "Patient's condition worsened")
    early = administration_r4("1547545", "pembrolizumab", "2024-01-10")
    recurrence = observation("97509-4", "2025-06-01", worse)
    later = administration_r4("1547545", "pembrolizumab", "2025-07-01")
    found = result(evaluate(rules_trial, patient(), early, recurrence, later), "inc-prog")
    assert found.result is U and "not during or within 84 days of the end of the course it followed" in found.reason
    on_the_later_course = observation("97509-4", "2025-09-01", worse)
    tied = result(evaluate(rules_trial, patient(), early, recurrence, later, on_the_later_course), "inc-prog")
    assert tied.result is M and "the therapy record begun on 2025-07-01" in tied.reason


def test_corticosteroid_dose_in_prednisone_equivalents(rules_trial: Trial) -> None:
    daily = [
        {
            "doseAndRate": [
                {"doseQuantity": {"value": 4, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
            ],
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        }
    ]
    dexa = statement_r4("3264", "dexamethasone", "2026-02-20", dosage=daily)  # 4 mg dexa ≈ 26.7 mg prednisone
    assert result(evaluate(rules_trial, patient(), dexa), "exc-steroids").result is M
    inhaled = [{**daily[0], "route": concept(SNOMED, "18679011000001101", "Inhalation")}]
    budesonide_like = statement_r4("3264", "dexamethasone", "2026-02-20", dosage=inhaled)
    assert result(evaluate(rules_trial, patient(), budesonide_like), "exc-steroids").result is N
    intravitreal = [{**daily[0], "route": concept(SNOMED, "418401004", "Intravitreal route")}]
    ocular_implant = statement_r4("3264", "dexamethasone", "2026-02-20", dosage=intravitreal)
    assert result(evaluate(rules_trial, patient(), ocular_implant), "exc-steroids").result is N
    # An injection into the eye is no systemic dose (a dexamethasone implant, an anti-VEGF for macular
    # degeneration), by route code or by the route's text.
    for route in (concept(SNOMED, "418401004", "Intravitreal route"), {"text": "Intravitreal"}):
        intravitreal = statement_r4("3264", "dexamethasone", "2026-02-20", dosage=[{**daily[0], "route": route}])
        assert result(evaluate(rules_trial, patient(), intravitreal), "exc-steroids").result is N
    # Subcutaneous is systemic, though its name holds "cutaneous" (a non-systemic route word).
    for route in (concept(SNOMED, "34206005", "Subcutaneous route"), {"text": "SC (subcutaneous)"}):
        injected = statement_r4("3264", "dexamethasone", "2026-02-20", dosage=[{**daily[0], "route": route}])
        assert result(evaluate(rules_trial, patient(), injected), "exc-steroids").result is M
    no_dose = statement_r4("8640", "prednisone", "2026-02-20")
    assert result(evaluate(rules_trial, patient(), no_dose), "exc-steroids").result is U
    old = statement_r4("3264", "dexamethasone", "2025-12-01", "2026-01-01", dosage=daily)
    assert result(evaluate(rules_trial, patient(), old), "exc-steroids").result is N


def test_procedure_window(rules_trial: Trial) -> None:
    recent = procedure_r4(SNOMED, "387713003", "Surgical procedure", "2026-02-10")
    assert result(evaluate(rules_trial, patient(), recent), "exc-surgery").result is M
    old = procedure_r4(SNOMED, "387713003", "Surgical procedure", "2025-10-10")
    assert result(evaluate(rules_trial, patient(), old), "exc-surgery").result is N


def test_other_malignancy_window_and_exemptions(rules_trial: Trial) -> None:
    bcc = condition(ICD10, "C44.91", "Basal cell carcinoma of skin", onset="2025-06-01")
    assert result(evaluate(rules_trial, patient(), bcc), "exc-other-cancer").result is N
    breast = condition(
        ICD10,
        "C50.911",
        "Malignant neoplasm of breast",
        onset="2025-06-01",
        status="remission",
        abatementDateTime="2025-09-01",
    )
    assert result(evaluate(rules_trial, patient(), breast), "exc-other-cancer").result is M
    long_ago = condition(
        ICD10,
        "C50.911",
        "Malignant neoplasm of breast",
        onset="2015-06-01",
        status="resolved",
        abatementDateTime="2016-01-01",
    )
    assert result(evaluate(rules_trial, patient(), long_ago), "exc-other-cancer").result is N


def test_condition_window_is_judged_on_dates_not_on_active_now(rules_trial: Trial) -> None:
    """DESIGN.md §2: a window on a condition is judged on onset / recorded / abatement dates; an old record
    still marked active is not "within N days", and a record with no date cannot be placed."""
    old_but_active = condition(ICD10, "C50.911", "Malignant neoplasm of breast", onset="2019-04-01", status="active")
    found = result(evaluate(rules_trial, patient(), old_but_active), "exc-other-cancer")
    assert found.result is N and "before the window" in found.reason and "2019-04-01" in found.reason
    recorded_recently = condition(ICD10, "C50.911", "Malignant neoplasm of breast", recordedDate="2025-12-01")
    del recorded_recently["onsetDateTime"]  # no onset: the recorded date places it
    assert result(evaluate(rules_trial, patient(), recorded_recently), "exc-other-cancer").result is M
    ended_inside = condition(
        ICD10,
        "C50.911",
        "Malignant neoplasm of breast",
        onset="2022-01-01",
        status="resolved",
        abatementDateTime="2025-01-01",
    )
    assert result(evaluate(rules_trial, patient(), ended_inside), "exc-other-cancer").result is M
    resolved_undated_end = condition(
        ICD10, "C50.911", "Malignant neoplasm of breast", onset="2019-04-01", status="remission"
    )
    cured_when = result(evaluate(rules_trial, patient(), resolved_undated_end), "exc-other-cancer")
    assert cured_when.result is U and "without an end date" in cured_when.reason  # it may have ended in the window
    # A resolved record with no onset, recorded recently, says when it was written down, not when it happened.
    transcribed = condition(
        ICD10, "C50.911", "Malignant neoplasm of breast", status="resolved", recordedDate="2025-12-01"
    )
    del transcribed["onsetDateTime"]
    written_down = result(evaluate(rules_trial, patient(), transcribed), "exc-other-cancer")
    assert written_down.result is U and "written down" in written_down.reason and "2025-12-01" in written_down.reason
    # ... and one that ended before the window did not begin inside it, whatever its recorded date.
    ended_before = dict(transcribed, abatementDateTime="2015-06-01")
    assert result(evaluate(rules_trial, patient(), ended_before), "exc-other-cancer").result is N
    undated = condition(ICD10, "C50.911", "Malignant neoplasm of breast", status="active")
    del undated["onsetDateTime"]
    unplaced = result(evaluate(rules_trial, patient(), undated), "exc-other-cancer")
    assert unplaced.result is U and "without an onset" in unplaced.reason and unplaced.evidence


def test_stage_groups_from_cancerstaging_codes_and_text(rules_trial: Trial) -> None:
    def stage(code: str, display: str | None = None) -> dict[str, Any]:
        return observation("21908-9", "2025-11-01", concept("http://cancerstaging.org", code, display))

    assert result(evaluate(rules_trial, patient(), stage("3C")), "inc-stage").result is M
    assert result(evaluate(rules_trial, patient(), stage("c4")), "inc-stage").result is M
    assert result(evaluate(rules_trial, patient(), stage("3A")), "inc-stage").result is N
    assert result(evaluate(rules_trial, patient(), stage("3")), "inc-stage").result is U
    snomed = observation("21908-9", "2025-11-01", concept(SNOMED, "261638004", "Stage 3A (qualifier value)"))
    assert result(evaluate(rules_trial, patient(), snomed), "inc-stage").result is N


def test_ecog_in_every_shape_and_implausible_values(rules_trial: Trial) -> None:
    for value in (1, "1", concept(LOINC, "LA9623-5", "Restricted in physically strenuous activity")):
        assert (
            result(evaluate(rules_trial, patient(), observation("89247-1", "2026-02-20", value)), "inc-ecog").result
            is M
        )
    assert result(evaluate(rules_trial, patient(), observation("89247-1", "2026-02-20", 2)), "inc-ecog").result is N
    bogus = result(evaluate(rules_trial, patient(), observation("89247-1", "2026-02-20", -1)), "inc-ecog")
    assert bogus.result is U


def test_entered_in_error_results_are_ignored(rules_trial: Trial) -> None:
    wrong = observation("777-3", "2026-02-27", 20, "10*9/L", status="entered-in-error")
    assert result(evaluate(rules_trial, patient(), wrong), "inc-labs-plt").result is U


def _variant_report(hgnc_id: str, symbol: str) -> dict[str, Any]:
    """A genomic variant report (69548-6, "Present") whose gene studied (48018-6) is coded by HGNC id."""
    gene = {"code": concept(LOINC, "48018-6"), "valueCodeableConcept": concept(HGNC_GENE_ID, hgnc_id, symbol)}
    return observation("69548-6", "2025-05-01", concept(LOINC, "LA9633-4", "Present"), component=[gene])


HGNC_GENE_ID = "http://www.genenames.org/geneId"


def test_braf_variant_from_a_gene_studied_component(rules_trial: Trial) -> None:
    variant = _variant_report("HGNC:1097", "BRAF")
    assert result(evaluate(rules_trial, patient(), variant), "exc-brafmut").result is M
    other_gene = _variant_report("HGNC:3236", "EGFR")
    assert result(evaluate(rules_trial, patient(), other_gene), "exc-brafmut").result is U


def test_arm_assignment_exactly_one_antigen(rules_trial: Trial) -> None:
    her2 = observation("48676-1", "2026-01-05", POSITIVE)
    only_her2_known = evaluate(rules_trial, patient(), her2)
    assert only_her2_known.arms[0].verdict is Verdict.UNDETERMINED  # TROP2 untested: could be two antigens
    trop2_negative = {**observation("0", "2026-01-05", NEGATIVE), "code": {"text": "TROP2 IHC"}}
    single = evaluate(rules_trial, patient(), her2, trop2_negative)
    assert single.arms[0].verdict is Verdict.ELIGIBLE
    trop2 = {**observation("0", "2026-01-05", POSITIVE), "code": {"text": "TROP2 IHC"}}
    both = evaluate(rules_trial, patient(), her2, trop2)
    assert both.arms[0].verdict is Verdict.INELIGIBLE


def test_screening_confirmations_never_decide_but_make_a_candidate(rules_trial: Trial) -> None:
    evaluation = evaluate(rules_trial, patient())
    consent = result(evaluation, "inc-consent")
    assert consent.result is U and consent.screening_only
    assert evaluation.verdict is not Verdict.ELIGIBLE


def test_an_ongoing_statement_started_before_the_window_still_counts(rules_trial: Trial) -> None:
    twenty_mg = [
        {
            "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg"}}],
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        }
    ]
    ongoing = statement_r4("8640", "prednisone", "2026-02-09", dosage=twenty_mg)  # active, no end, 20 days ago
    assert result(evaluate(rules_trial, patient(), ongoing), "exc-steroids").result is M
    finished = {**ongoing, "status": "completed"}
    assert result(evaluate(rules_trial, patient(), finished), "exc-steroids").result is N


def test_viral_load_quantities_read_as_detected_or_not(rules_trial: Trial) -> None:
    from service.domain.values import qualitative_value

    facts = index_facts(
        parse_body(
            body(
                patient(),
                observation(
                    "42595-9", "2026-02-20", 20, None, valueQuantity={"value": 20, "comparator": "<", "unit": "IU/mL"}
                ),
                observation("11011-4", "2026-02-21", 15000, "[IU]/mL"),
                observation("82810-3", "2026-02-22", concept(SNOMED, "60001007", "Not pregnant")),
                observation("63895-7", "2026-02-23", concept(SNOMED, "413712001", "Breastfeeding (mother)")),
            )
        )
    )
    readings = {f.codes[0][1]: qualitative_value(f) for f in facts.observations}
    assert readings == {"42595-9": "negative", "11011-4": "positive", "82810-3": "negative", "63895-7": "positive"}


def test_hiv_viral_load_on_a_log10_scale_reads_as_detected_or_not() -> None:
    from service.domain.values import qualitative_value

    log_copies = "{log_copies}/mL"
    below_limit = {"value": 1.3, "comparator": "<", "unit": log_copies}
    facts = index_facts(
        parse_body(
            body(
                patient(),
                observation("29541-0", "2026-02-20", 4.68, log_copies),
                observation("29539-4", "2026-02-21", 1.3, None, valueQuantity=below_limit),
                observation("62469-2", "2026-02-22", 48000, "[IU]/mL"),
            )
        )
    )
    readings = {f.codes[0][1]: qualitative_value(f) for f in facts.observations}
    assert readings == {"29541-0": "positive", "29539-4": "negative", "62469-2": "positive"}


def _kras_report(value: dict[str, Any], *changes: str) -> dict[str, Any]:
    """A KRAS variant report (69548-6) with the gene studied and, when given, its amino acid change (48005-3)."""
    gene = {"code": concept(LOINC, "48018-6"), "valueCodeableConcept": concept(HGNC_GENE_ID, "HGNC:6407", "KRAS")}
    components = [gene] + [{"code": concept(LOINC, "48005-3"), "valueCodeableConcept": {"text": c}} for c in changes]
    return observation("69548-6", "2025-05-01", value, component=components)


def test_a_variant_rule_is_met_only_by_a_report_naming_the_change() -> None:
    from service.mapping import parse_trial_criteria

    criteria = parse_trial_criteria(
        {
            "criteria": [
                {
                    "id": "inc-g12c",
                    "text": "KRAS G12C mutation",
                    "test": {
                        "label": "KRAS G12C",
                        "codes": ["loinc:69548-6"],
                        "result": "positive",
                        "gene": "KRAS",
                        "variant": "G12C",
                    },
                }
            ]
        },
        "NCT-test",
        "variant",
    )

    def g12c(*resources: dict[str, Any]) -> Result:
        evaluation = evaluate_study(criteria, index_facts(parse_body(body(patient(), *resources))), ON)
        return result(evaluation, "inc-g12c").result

    present = concept(LOINC, "LA9633-4", "Present")
    assert g12c(_kras_report(present, "p.G12C")) is M
    assert g12c(_kras_report(present, "p.Gly12Cys")) is M  # three-letter HGVS
    assert g12c(_kras_report(present, "p.G12D")) is U  # another change: a second one is not ruled out
    only_mutated = g12c(_kras_report(present))  # "KRAS mutated": which change is not recorded
    assert only_mutated is U
    assert g12c(_kras_report(concept(LOINC, "LA9634-2", "Absent"))) is N  # no KRAS variant: no G12C
    assert g12c(_kras_report(present, "p.G12CX")) is U  # no partial-token match
    assert g12c() is U


@pytest.mark.parametrize("variant", ["g12c", "G12", "KRAS G12C", "Gly12Cys"])
def test_a_variant_must_be_a_one_letter_protein_change(variant: str) -> None:
    from service.errors import MappingError
    from service.mapping import parse_trial_criteria

    spec = {"label": "KRAS", "codes": ["loinc:69548-6"], "result": "positive", "gene": "KRAS", "variant": variant}
    with pytest.raises(MappingError):
        parse_trial_criteria({"criteria": [{"id": "inc-1", "text": "x", "test": spec}]}, "NCT-test", "variant")
    no_gene = {k: v for k, v in spec.items() if k != "gene"} | {"variant": "G12C"}
    with pytest.raises(MappingError):
        parse_trial_criteria({"criteria": [{"id": "inc-1", "text": "x", "test": no_gene}]}, "NCT-test", "variant")


def test_quantitative_hcg_reads_positive_negative_or_equivocal(rules_trial: Trial) -> None:
    """A serum hCG reported as a number: < 5 m[IU]/mL negative, >= 25 positive, between equivocal (None)."""
    from service.domain.values import qualitative_value

    facts = index_facts(
        parse_body(
            body(
                patient(),
                observation("21198-7", "2026-02-20", 1450, "m[IU]/mL"),
                observation("19080-1", "2026-02-21", 2, "[IU]/L"),
                observation("21198-7", "2026-02-22", 12, "m[IU]/mL"),
                observation(
                    "19080-1", "2026-02-23", 5, None, valueQuantity={"value": 5, "comparator": "<", "unit": "mIU/mL"}
                ),
                observation("19080-1", "2026-02-24", 1450, "furlongs"),
                observation("2119-6", "2026-02-25", 1450, "m[IU]/mL"),
                observation("2119-6", "2026-02-26", 3.6, "pmol/L"),
            )
        )
    )
    readings = [(f.when, qualitative_value(f)) for f in facts.observations]
    assert [r for _, r in sorted(readings, key=lambda x: str(x[0]))] == [
        "positive",
        "negative",
        None,
        "negative",
        None,
        "positive",
        None,
    ]


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("Negative for HIV-1 and HIV-2", "negative"),
        ("No HIV-1/HIV-2 antibodies or p24 antigen detected", "negative"),
        ("Not reactive", "negative"),
        ("Non reactive", "negative"),
        ("No hCG detected", "negative"),
        ("No staining detected", "negative"),
        ("No BRAF V600 mutation detected (wild type)", "negative"),
        ("BRAF wild-type", "negative"),
        ("Reactive", "positive"),
        ("Positive (faint line)", "positive"),
        ("BRAF V600E mutation detected", "positive"),
        # Both a positive and a negative statement: which one is the result is not for the engine to guess.
        ("Positive (previously negative on 2024-01-10)", None),
        ("Reactive; confirmed by neutralisation (negative control valid)", None),
        ("Weakly positive, not negative - repeat advised", None),
        ("Equivocal", None),
    ],
)
def test_a_result_text_reads_only_when_it_says_one_thing(text: str, reading: str | None) -> None:
    from service.domain.values import qualitative_value

    facts = index_facts(parse_body(body(patient(), observation("5196-1", "2026-02-20", text))))
    assert qualitative_value(facts.observations[0]) == reading


def test_a_who_icd10_code_matches_the_icd10cm_class_it_spells(rules_trial: Trial) -> None:
    """Sites outside the US code in WHO ICD-10; the mappings list ICD-10-CM classes of the same categories."""
    who = "http://hl7.org/fhir/sid/icd-10"
    assert (
        result(
            evaluate(rules_trial, patient(), condition(who, "C43.5", "Malignant melanoma of trunk")), "inc-dx"
        ).result
        is M
    )
    other = condition(who, "C34.1", "Malignant neoplasm: upper lobe, bronchus or lung")
    assert result(evaluate(rules_trial, patient(), other), "inc-dx").result is not M


def test_a_score_carried_only_in_a_component_of_the_same_code_is_read(rules_trial: Trial) -> None:
    score = {"code": concept(LOINC, "89247-1"), "valueString": "3"}
    panel = observation("89247-1", "2026-02-20", component=[score])
    assert result(evaluate(rules_trial, patient(), panel), "inc-ecog").result is N
    with_value = observation("89247-1", "2026-02-20", 1, component=[score])  # the observation's own value wins
    assert result(evaluate(rules_trial, patient(), with_value), "inc-ecog").result is M


def test_a_viral_load_reported_as_not_detected_is_below_the_threshold(rules_trial: Trial) -> None:
    not_detected = concept(SNOMED, "260415000", "Not detected")
    hbv_positive = condition(ICD10CM, "B18.1", "Chronic viral hepatitis B")
    for value in (not_detected, "<10 IU/mL, not detected"):
        dna = observation("42595-9", "2026-02-20", value)
        assert result(evaluate(rules_trial, patient(), hbv_positive, dna), "inc-hbv-dna").result is M


def test_a_room_air_saturation_is_not_met_by_a_value_measured_on_oxygen() -> None:
    """SpO2 "on room air": the reading's own components (US Core pulse oximetry) say whether oxygen was
    given; a flow above 0 or an inhaled concentration above 21 % leaves it unknown, never met."""
    from service.mapping import parse_trial_criteria

    spo2 = {"label": "SpO2", "codes": ["loinc:59408-5"], "op": ">", "value": 92, "unit": "%", "room_air": True}
    criteria = parse_trial_criteria(
        {"criteria": [{"id": "inc-spo2", "text": "SpO2 >92% on room air", "observation": spo2}]}, "NCT-test", "o2"
    )

    def saturation(*components: tuple[str, float | None, str]) -> CriterionResult:
        parts = [
            {"code": concept(LOINC, code), "valueQuantity": {"value": v, "unit": u}}
            if v is not None
            else {"code": concept(LOINC, code), "valueString": "nasal cannula"}
            for code, v, u in components
        ]
        record = observation("59408-5", "2026-02-25", 94, "%", component=parts)
        return result(evaluate_study(criteria, index_facts(parse_body(body(patient(), record))), ON), "inc-spo2")

    assert saturation().result is M  # no oxygen recorded: the site confirms room air (a screening item)
    assert saturation(("3151-8", 0, "L/min")).result is M  # flow 0: room air
    assert saturation(("3150-0", 21, "%")).result is M  # 21 %: room air
    on_flow = saturation(("3151-8", 3, "L/min"))
    assert on_flow.result is U and "3 L/min of oxygen" in on_flow.reason
    assert saturation(("3150-0", 40, "%")).result is U
    assert saturation(("3151-8", None, "")).result is U  # a flow recorded without a number: not room air
    plain = parse_trial_criteria(
        {"criteria": [{"id": "inc-spo2", "text": "SpO2 >92%", "observation": spo2 | {"room_air": False}}]}, "t", "o"
    )
    record = observation(
        "59408-5",
        "2026-02-25",
        94,
        "%",
        component=[{"code": concept(LOINC, "3151-8"), "valueQuantity": {"value": 3, "unit": "L/min"}}],
    )
    plain_result = result(evaluate_study(plain, index_facts(parse_body(body(patient(), record))), ON), "inc-spo2")
    assert plain_result.result is M  # without room_air the oxygen given does not matter


def test_a_second_threshold_in_another_unit_decides_results_in_that_unit() -> None:
    """HBV DNA "< 500 IU/mL (or 2500 copies/mL)": each result is compared with the threshold of its own
    unit, never converted between IU and copies (assay-dependent); other units stay unknown."""
    from service.errors import MappingError
    from service.mapping import parse_trial_criteria

    spec = {
        "label": "HBV DNA",
        "codes": ["loinc:42595-9", "loinc:29615-2"],
        "op": "<",
        "value": 500,
        "unit": "[IU]/mL",
        "or_value": {"value": 2500, "unit": "{copies}/mL"},
    }
    criteria = parse_trial_criteria(
        {"criteria": [{"id": "inc-hbv", "text": "HBV DNA <500 IU/mL (or 2500 copies/mL)", "observation": spec}]},
        "NCT-test",
        "hbv",
    )

    def hbv(code: str, value: float, unit: str) -> Result:
        record = observation(code, "2026-02-20", value, unit)
        return result(evaluate_study(criteria, index_facts(parse_body(body(patient(), record))), ON), "inc-hbv").result

    assert hbv("42595-9", 400, "[IU]/mL") is M
    assert hbv("42595-9", 600, "[IU]/mL") is N
    assert hbv("29615-2", 2000, "{copies}/mL") is M  # 2000 copies is not 2000 IU: compared with 2500 copies
    assert hbv("29615-2", 3000, "copies/mL") is N
    assert hbv("29615-2", 3, "log{copies}/mL") is U  # neither unit
    for bad in ({"value": 2500}, {"value": 2500, "unit": "{copies}/mL", "op": "<"}):
        with pytest.raises(MappingError):
            parse_trial_criteria(
                {"criteria": [{"id": "inc-1", "text": "x", "observation": spec | {"or_value": bad}}]}, "NCT-t", "x"
            )
    with pytest.raises(MappingError):  # only beside a fixed value, not a multiple of the ULN
        uln = {k: v for k, v in spec.items() if k not in ("value", "unit")} | {"uln": 1}
        parse_trial_criteria({"criteria": [{"id": "inc-1", "text": "x", "observation": uln}]}, "NCT-t", "x")


def test_a_number_read_from_free_text_that_cannot_be_converted_quotes_the_text(rules_trial: Trial) -> None:
    # Fifth-round review F20: "3-6 months" was shown as "3" with unit '1'.
    ranged = observation("777-3", "2026-02-27", "150-200 thousand")
    plt = result(evaluate(rules_trial, patient(), ranged), "inc-labs-plt")
    assert plt.result is U and "'150-200 thousand'" in plt.reason and "unit '1'" not in plt.reason


def test_blood_culture_organisms_read_positive_and_no_growth_negative() -> None:
    # Fifth-round review F10: a blood culture reports its organism, not the word "positive".
    from service.domain.values import qualitative_value

    cases = {
        "a": concept(SNOMED, "3092008", "Staphylococcus aureus"),
        "b": "Gram-negative rods",
        "c": "No growth at 5 days",
        "d": "Coagulase-negative staphylococcus, probable contaminant",
        "e": "Pending",
        "f": concept(SNOMED, "260385009", "Negative"),
        "g": "Negative",
    }
    facts = index_facts(
        parse_body(body(patient(), *(observation("600-7", "2026-02-27", v, id=k) for k, v in cases.items())))
    )
    readings = {f.ref.split(":")[-1]: qualitative_value(f) for f in facts.observations}
    assert readings == {
        "a": "positive", "b": "positive", "c": "negative", "d": None, "e": None, "f": "negative", "g": "negative"
    }  # fmt: skip


def test_hcv_rna_on_a_log10_scale_reads_as_detected_or_not() -> None:
    # Fifth-round review F15: LOINC 38180-6 (HCV RNA [Log units/volume]).
    from service.domain.values import qualitative_value

    below_limit = {"value": 1.18, "comparator": "<", "unit": "{log_IU}/mL"}
    facts = index_facts(
        parse_body(
            body(
                patient(),
                observation("38180-6", "2026-02-20", 5.8, "{log_IU}/mL", id="a"),
                observation("38180-6", "2026-02-21", 1.18, None, valueQuantity=below_limit, id="b"),
            )
        )
    )
    readings = {f.ref.split(":")[-1]: qualitative_value(f) for f in facts.observations}
    assert readings == {"a": "positive", "b": "negative"}

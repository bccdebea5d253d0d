"""The rule-based structurer on real criteria text from fixtures/external/ctgov/v2 (source in each case).

Positive cases check the encoded rule; negative cases are wording that looks like a pattern but
must stay text (precision over recall), each with the reason a reviewer would give.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.importer.criteria import eligibility_criteria
from service.importer.splitter import split_criteria
from service.importer.structurer import structure
from service.mapping import parse_trial_criteria
from service.sources.ctgov import studies_in
from tests.ctgov_data import all_record_files, recorded


def rule_of(text: str, exclusion: bool = False) -> dict[str, Any]:
    result = structure(text, exclusion)
    assert result.rule is not None, result.reason
    return result.rule


def leaves(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """The encoded leaf rules of a (possibly combined) rule, proto-children flattened."""
    for key in ("all_of", "any_of"):
        if key in rule:
            return [leaf for child in rule[key] for leaf in leaves(child)]
    return [rule]


def observation(rule: dict[str, Any]) -> dict[str, Any]:
    assert "observation" in rule, rule
    body: dict[str, Any] = rule["observation"]
    return body


# --- ECOG / Karnofsky --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "maximum"),
    [
        ("Eastern Cooperative Oncology Group (ECOG) performance status of 0 to 1", 1),  # NCT05913115
        ("Eastern Cooperative Oncology Group performance status (ECOG) score of 0, 1, or 2", 2),  # NCT05827016
        ("Eastern Cooperative Oncology Group( ECOG )score ≤2；", 2),  # NCT05438667
        ("Eastern Cooperative Oncology Group (ECOG) performance status 0.", 0),  # NCT06411691
        ("Clinical performance status of ECOG 0 or 1", 1),  # NCT03745326
    ],
)
def test_ecog_ranges_become_an_upper_bound_on_loinc_89247_1(text: str, maximum: int) -> None:
    body = observation(rule_of(text))
    assert body["codes"] == ["loinc:89247-1"]
    assert (body["op"], body["value"], body["unit"]) == ("<=", maximum, "1")


def test_ecog_assessment_window_is_taken_from_the_text() -> None:
    # NCT05879653 inc-6
    text = (
        "Have an Eastern Cooperative Oncology Group (ECOG) performance status of 0 to 1. Evaluation of ECOG "
        "is to be performed within 7 days prior to the first dose of study intervention."
    )
    assert observation(rule_of(text))["window_days"] == 7


def test_exactly_ecog_2_is_a_range_of_two_bounds() -> None:
    # NCT05883644 inc-7.2 wording without its portal-vein clause
    rule = rule_of("WHO/ECOG PS of 2 at enrolment")
    bounds = sorted((observation(r)["op"], observation(r)["value"]) for r in leaves(rule))
    assert bounds == [("<=", 2), (">=", 2)]


def test_ecog_or_karnofsky_is_any_of() -> None:
    rule = rule_of("ECOG performance status 0-2 or Karnofsky ≥ 60")
    assert set(rule) == {"any_of"}
    codes = {observation(r)["codes"][0]: (observation(r)["op"], observation(r)["value"]) for r in leaves(rule)}
    assert codes == {"loinc:89247-1": ("<=", 2), "loinc:89243-0": (">=", 60)}


# --- Age ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Age greater than or equal to 18 years and less than or equal to 72 years.", {"min": 18, "max": 72}),
        ("Subjects aged 15 to 49 years old", {"min": 15, "max": 49}),  # NCT05896215
        ("At least 18 years of age at the time of informed consent.", {"min": 18}),  # NCT06385925
        ("Age 12 years or above at the time of signing the informed consent.", {"min": 12}),  # NCT05878938
    ],
)
def test_age_bounds_in_whole_years(text: str, expected: dict[str, int]) -> None:
    assert rule_of(text) == {"age": expected}


@pytest.mark.parametrize(
    ("text", "sex", "age"),
    [
        ("Woman ≥ 18 years old", "female", {"min": 18}),  # NCT02663973 inc-1
        ("Female patients aged ≥ 18 years", "female", {"min": 18}),
        ("Men aged 18 years or older", "male", {"min": 18}),
    ],
)
def test_a_sex_in_an_age_criterion_is_required_beside_the_age(text: str, sex: str, age: dict[str, int]) -> None:
    # encoding only the age would call a 40-year-old man "met"
    assert [(c["key"], c.get("sex"), c.get("age")) for c in rule_of(text)["all_of"]] == [
        ("sex", sex, None),
        ("age", None, age),
    ]
    # not a group no data decide ("of childbearing potential"), nor both sexes
    assert "'sex'" not in str(rule_of("Women of childbearing potential aged ≥ 18 years"))
    assert rule_of("Male or female patients aged ≥ 18 years") == {"age": {"min": 18}}


def test_adult_beside_an_adult_age_bound_adds_nothing() -> None:
    assert rule_of("Adults aged 18-75 years") == {"age": {"min": 18, "max": 75}}
    assert rule_of("Adult patients aged ≥ 18 years") == {"age": {"min": 18}}
    # "adult" beside a younger bound contradicts it: kept as a remainder
    assert [c["key"] for c in rule_of("Adults aged ≥ 16 years")["all_of"]] == ["age", "rest"]


# --- Life expectancy (LOINC 75327-7, as the catalog's reviewed mappings encode it) ----------


@pytest.mark.parametrize(
    ("text", "op", "value", "unit"),
    [
        ("Minimum life expectancy of 12 weeks", ">=", 12, "wk"),  # NCT05883644
        ("Expected survival duration of more than 3 months；", ">", 3, "mo"),  # NCT05438667
        ("Life expectancy of 3 months or more.", ">=", 3, "mo"),  # NCT06385925
        ("Life expectancy of ≥ 12 weeks in the opinion of the investigator.", ">=", 12, "wk"),  # NCT05786924
        ("Have a predicted life expectancy of >12 weeks", ">", 12, "wk"),  # NCT05832827
    ],
)
def test_life_expectancy_bounds(text: str, op: str, value: int, unit: str) -> None:
    body = observation(rule_of(text))
    assert body["codes"] == ["loinc:75327-7"]
    assert (body["op"], body["value"], body["unit"]) == (op, value, unit)


def test_life_expectancy_without_a_bound_or_with_another_requirement() -> None:
    assert structure("Life expectancy of 3 months", exclusion=False).rule is None
    rule = rule_of("Life expectancy ≥ 12 weeks and adequate organ function")
    assert "not_computable" in rule["all_of"][-1]  # "adequate organ function" is not dropped


# --- Labs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "op", "value", "unit"),
    [
        ("Absolute neutrophil count ≥ 1,500/µL", "loinc:751-8", ">=", 1.5, "10*9/L"),  # NCT02513394
        ("Platelets ≥ 100,000/ mm3", "loinc:777-3", ">=", 100.0, "10*9/L"),  # NCT02513394
        ("Platelet count greater than or equal to 80,000/mm^3", "loinc:777-3", ">=", 80.0, "10*9/L"),  # NCT03745326
        ("Hemoglobin ≥ 10g/dL", "loinc:718-7", ">=", 10.0, "g/dL"),  # NCT02513394
        ("Serum creatinine less than or equal to 1.6 mg/dL", "loinc:2160-0", "<=", 1.6, "mg/dL"),  # NCT03745326
    ],
)
def test_lab_thresholds_with_units(text: str, code: str, op: str, value: float, unit: str) -> None:
    body = observation(rule_of(text))
    assert code in body["codes"]
    assert (body["op"], body["value"], body["unit"]) == (op, value, unit)


def test_creatinine_carries_its_molar_mass() -> None:
    assert observation(rule_of("Serum creatinine less than or equal to 1.6 mg/dL"))["molar_mass"] == 113.12


def test_transaminases_as_a_multiple_of_uln_for_both_enzymes() -> None:
    # NCT02513394 inc-19
    rule = rule_of(
        "Aspartate amino transferase (AST or SGOT) and alanine amino transferase (ALT or SGPT) ≤ 1.5 × "
        "institutional ULN."
    )
    assert set(rule) == {"all_of"}
    got = {observation(r)["codes"][0]: (observation(r)["op"], observation(r)["uln"]) for r in leaves(rule)}
    assert got == {"loinc:1920-8": ("<=", 1.5), "loinc:1742-6": ("<=", 1.5)}


def test_several_thresholds_become_all_of_with_the_rest_kept_as_text() -> None:
    # NCT03377387 inc-9 (the WBC threshold is encoded since issue 11's third round)
    text = (
        "Hematologic parameters: white blood cell (WBC) count of > 3000/ul, absolute neutrophil count (ANC) "
        "≥ 1000/ul, platelets ≥ 50,000/ul, hemoglobin ≥ 8.0 g/dl"
    )
    children = rule_of(text)["all_of"]
    encoded = {observation(c)["codes"][0]: observation(c)["value"] for c in children if "observation" in c}
    assert encoded == {"loinc:6690-2": 3.0, "loinc:751-8": 1.0, "loinc:777-3": 50.0, "loinc:718-7": 8.0}
    assert not [c for c in children if "not_computable" in c]
    # a threshold the importer does not encode (reticulocytes) stays as the not-computable rest
    children = rule_of(text + ", reticulocytes ≥ 1%")["all_of"]
    assert [c["key"] for c in children if "not_computable" in c] == ["rest"]


def test_run_on_lab_list_keeps_only_unqualified_thresholds() -> None:
    # NCT05438667 inc-9.1: bilirubin has a bile-duct exception, AST/ALT a liver-metastasis one
    text = (
        "Absolute neutrophil count≥1.5×10⁹/L, Absolute lymphocyte count ≥0.5×10⁹/L；2)Platelet count≥50×10⁹/L；"
        "3)Hemoglobin≥90g/L；4)Bilirubin < 1.5 times upper limit of normal（Bile duct obstruction due to tumor "
        "compression were excluded)；5)Serum creatinine ≤ 1.5 times the upper limit of normal range or creatinine "
        "clearance ≥ 60 mL/min.6)Serum alanine aminotransferase or aspartate aminotransferase is < 2.5 times the "
        "upper limit of the normal value (ULN) (if patients with liver metastasis, ≤5 times the ULN)."
    )
    rule = rule_of(text)
    codes = {c for leaf in leaves(rule) if "observation" in leaf for c in leaf["observation"]["codes"]}
    assert {"loinc:751-8", "loinc:777-3", "loinc:718-7", "loinc:2160-0", "loinc:2164-2"} <= codes
    assert not codes & {"loinc:1975-2", "loinc:1742-6", "loinc:1920-8"}
    creatinine = next(c for c in rule["all_of"] if c["key"] == "creat-or")
    assert {observation(c)["codes"][0] for c in creatinine["any_of"]} == {"loinc:2160-0", "loinc:2164-2"}


def test_creatinine_clearance_uses_cockcroft_gault_only_when_the_protocol_names_it() -> None:
    assert rule_of("Creatinine clearance ≥ 60 mL/min (Cockcroft-Gault)") == {
        "creatinine_clearance": {"op": ">=", "value": 60.0}
    }
    body = observation(rule_of("creatinine clearance ≥ 60 mL/min"))
    assert body["codes"] == ["loinc:2164-2", "loinc:35591-7"] and body["unit"] == "mL/min"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Platelet transfusion within 7 days prior to enrollment", "no threshold at all"),
        ("Hemoglobin ≥ 9 g/dL without transfusion within 14 days", "transfusion qualifier"),
        ("ANC > 1000/mm^3 without the support of filgrastim", "growth-factor qualifier"),  # NCT03745326
        (
            "Total bilirubin less than or equal to 2.0 mg/dL, except in patients with Gilbert s Syndrome, who "
            "must have a total bilirubin < 3.0 mg/dL.",
            "Gilbert exception",
        ),  # NCT03745326
        (
            "Total serum bilirubin ≤ ULN; or total bilirubin ≤ 3.0 × ULN with direct bilirubin within normal "
            "range in patients with documented Gilbert's Syndrome.",
            "alternative for Gilbert",
        ),  # NCT02513394
        (
            "Serum creatinine below the upper limit of the institutional normal range (ULN) or creatinine "
            "clearance ≥ 60 mL/min/1.73 m2 for patients with serum creatinine levels above institutional ULN.",
            "normalised eGFR-like clearance, conditional",
        ),  # NCT02513394
        ("Hemoglobin A1c (HbA1c) ≥8% or HbA1c 7% to <8%", "HbA1c is not hemoglobin"),  # NCT05879653
        ("Less than 50 years of age at the time of migraine onset.", "age at onset, not today"),  # NCT05861427
        ("Age ≥18 years (or per national guidelines).", "alternative age rule"),  # NCT02513394
        # The registry's minimumAge of both is 18/20: "greater than"/"over" is meant inclusively here.
        ("Age greater than 18 years old；", "strict bound in words, meant as ≥"),  # NCT05438667
        ("Aged over 20 years at the time of consent obtaining.", "strict bound in words, meant as ≥"),  # NCT05883007
    ],
)
def test_lookalike_inclusion_wording_stays_text(text: str, why: str) -> None:
    result = structure(text, exclusion=False)
    assert result.rule is None, why
    assert result.reason


# --- Exclusions: pregnancy, viruses, brain metastases ------------------------------------------


def condition_labels(rule: dict[str, Any]) -> set[str]:
    return {leaf["condition"]["label"] for leaf in leaves(rule) if "condition" in leaf}


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("Women who are pregnant or breastfeeding", {"Pregnancy", "Breastfeeding"}),  # NCT05913115
        ("Pregnant or lactating women", {"Pregnancy", "Breastfeeding"}),  # NCT05288205
        ("Pregnant patients or currently breast-feeding.", {"Pregnancy", "Breastfeeding"}),  # NCT03377387
        ("Infection with HIV or hepatitis B or C.", {"HIV infection", "Hepatitis B", "Hepatitis C"}),  # NCT06411691
        ("Active hepatitis B or C", {"Hepatitis B", "Hepatitis C"}),  # NCT03377387
        ("Human Immunodeficiency Virus (HIV) infection", {"HIV infection"}),  # NCT05838768
    ],
)
def test_exclusion_findings_become_conditions(text: str, labels: set[str]) -> None:
    rule = rule_of(text, exclusion=True)
    assert condition_labels(rule) == labels
    assert not any("not_computable" in leaf for leaf in leaves(rule))


def test_a_positive_virus_test_stays_unknown_not_absent() -> None:
    """"HBV positive" also means a positive test or a carrier with no diagnosis recorded: without the
    remainder, no Hepatitis B condition would read as "not excluded" (a wrong eligible)."""
    rule = rule_of("HIV, hepatitis B virus(HBV), or hepatitis C virus(HCV) positive;", exclusion=True)  # NCT05288205
    assert condition_labels(rule) == {"HIV infection", "Hepatitis B", "Hepatitis C"}
    assert [leaf["not_computable"] for leaf in leaves(rule) if "not_computable" in leaf] == [
        "the other findings of this list are not encoded (a positive test result or carrier state)"
    ]


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        # MSD's wording: the one test that defines each infection, in brackets
        ("Has a known history of Hepatitis B (defined as HBsAg reactive) or known active Hepatitis C virus (defined "
         "as HCV RNA is detected) infection", {"Hepatitis B", "Hepatitis C"}),
        ("Active hepatitis B (HBsAg positive) or hepatitis C (HCV RNA positive)", {"Hepatitis B", "Hepatitis C"}),
        ("Known history of HIV (HIV 1/2 antibodies)", {"HIV infection"}),
        # two tests or a quantity define a narrower infection than the diagnosis (a treated carrier is not
        # "active"): text
        ("Hepatitis B (defined as HBsAg positive and detectable HBV DNA)", None),
        ("Active hepatitis B (HBsAg positive, HBV DNA ≥ 500 IU/mL) or hepatitis C", None),
        ("Active HIV (defined as HIV viral load > 200)", None),
    ],
)  # fmt: skip
def test_a_virus_defined_by_its_positive_test_is_the_diagnosis_or_the_test_for_the_site(
    text: str, labels: set[str] | None
) -> None:
    result = structure(text, exclusion=True)
    if labels is None:
        assert result.rule is None
        return
    assert result.rule is not None and condition_labels(result.rule) == labels
    # a positive test with no diagnosis recorded must stay unknown, never "not excluded"
    assert [leaf["not_computable"] for leaf in leaves(result.rule) if "not_computable" in leaf] == [
        "the other findings of this list are not encoded (a positive test result or carrier state)"
    ]


def test_positive_pregnancy_test_is_a_recent_hcg_result() -> None:
    rule = rule_of("Positive pregnancy test, pregnant, or breastfeeding", exclusion=True)  # NCT05052671
    tests = [leaf["test"] for leaf in leaves(rule) if "test" in leaf]
    assert tests == [
        {
            "label": "Pregnancy test (hCG)",
            "codes": ["loinc:2106-3", "loinc:2118-8"],
            "result": "positive",
            "window_days": 28,
        }
    ]


def test_brain_metastases_with_another_listed_finding_keeps_it_as_an_unknown_alternative() -> None:
    # NCT05883644 exc-12 shape (spinal cord compression is encoded now: tests/test_structurer_conditions.py)
    rule = rule_of("History of previous, or current, brain metastases or pericardial effusion", exclusion=True)
    brain = next(leaf for leaf in leaves(rule) if "condition" in leaf)["condition"]
    assert brain["codes"] == ["snomed:94225005", "icd10cm:C79.31"] and brain["history"] is True
    assert set(rule) == {"any_of"}
    assert any("not_computable" in child for child in rule["any_of"])


def test_exclusion_lab_threshold_keeps_its_direction() -> None:
    # NCT05814159 exc-7
    body = observation(rule_of("Presence of neutropenia (absolute neutrophil count [ANC] < 1.5 x 10^9/L).", True))
    assert (body["op"], body["value"], body["unit"]) == ("<", 1.5, "10*9/L")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            "Symptomatic intracranial metastases, or moderate to severe ascites or pleural effusion requiring drainage",
            "qualified",
        ),
        ("Women who are breastfeeding and are unwilling to stop breastfeeding", "willingness"),  # NCT06898385
        (
            "Active Hepatitis B Virus (HBV), Hepatitis C Virus (HCV) or Tuberculosis infection. Patients whose "
            "disease is controlled under antiviral therapy should not be excluded.",
            "controlled infection allowed",
        ),  # NCT05838768
        (
            "Patients tested positive for HBs antigen, HBs antibody, HBc antibody, and/or HCV antibody (patients "
            "with positive HBs antibody and/or HBc antibody can be enrolled only when HBV-DNA test is negative "
            "[less than the detection limit])",
            "conditional serology",
        ),  # NCT05914155
        ("History of HIV testing", "a test is not an infection"),
        (
            "Any confirmed or suspected HIV infection, primary immunodeficiency disease or ongoing CMV infection "
            "with a viremia > 200 IU/mL.",
            "suspected",
        ),  # NCT05921903
    ],
)
def test_lookalike_exclusion_wording_stays_text(text: str, why: str) -> None:
    assert structure(text, exclusion=True).rule is None, why


def test_consent_and_willingness_are_screening_confirmations() -> None:
    # NCT03745326 inc-14
    result = structure(
        "Ability of subject to understand and the willingness to sign a written informed consent document.", False
    )
    assert result.screening and result.rule is None


@pytest.mark.parametrize(
    "text",
    [
        # NCT05923281: consent only dates the window
        "Patients with any of the following criteria within 3 months before obtaining informed consent: "
        "myocardial infarction, severe or unstable angina pectoris, coronary angioplasty",
        # NCT05870670-style: a numeric range decided by data, the investigator only judges the cause
        "Body mass index (BMI) between 23.0 kilogram per meter square (kg/m^2) and 39.9 kg/m^2 (both inclusive) at "
        "screening with a minimum weight of 50 kilogram (kg). Overweight should be due to excess adipose tissue, as "
        "judged by the investigator",
        "Previous participation in this study. Participation is defined as signed informed consent.",
    ],
)
def test_consent_as_a_date_or_data_with_a_judgement_is_not_a_screening_confirmation(text: str) -> None:
    assert not structure(text, exclusion=True).screening


def test_a_cohort_heading_forbids_structuring() -> None:
    assert structure("ECOG 0-1", False, context_reason="applies to a subgroup only").rule is None


# --- Splitting ---------------------------------------------------------------------------------


def test_split_numbered_nested_and_escaped_forms() -> None:
    # NCT03745326: "-INCLUSION CRITERIA:" header, numbered items, nested bullets, escaped \> and \^
    study = next(
        s
        for s in studies_in(recorded("xiaoyibao/condition_query_response.json"))
        if s["protocolSection"]["identificationModule"]["nctId"] == "NCT03745326"
    )
    split = split_criteria(study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"])
    items = {item.link_id: item for item in split.walk()}
    assert items["inc-11.1"].text == "ANC > 1000/mm^3 without the support of filgrastim"
    assert items["inc-11"].text == "Hematology" and len(items["inc-11"].children) == 4
    assert items["exc-1"].exclusion and not items["inc-16"].exclusion
    assert items["inc-4"].alternatives  # "OR" between the sub-items of "Patients must have:"
    # the lettered "I." and "j." items after "8." are criteria of their own
    assert items["exc-10"].text == "Patients who are receiving any other investigational agents."


def test_split_same_indent_sub_list_after_a_colon() -> None:
    # NCT05438667: "9. ... must be met:" followed by "1)..." at the same indent
    study = next(
        s
        for s in studies_in(recorded("xiaoyibao/condition_query_response.json"))
        if s["protocolSection"]["identificationModule"]["nctId"] == "NCT05438667"
    )
    split = split_criteria(study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"])
    items = {item.link_id: item for item in split.walk()}
    assert items["inc-9.1"].text.startswith("Absolute neutrophil count≥1.5×10⁹/L")


def test_headers_in_other_cases_and_intro_lines_switch_sections() -> None:
    text = (
        "Key Inclusion Criteria :\n\n* Age ≥ 18 years\n\nKey Exclusion Criteria :\n\n"
        "Participants are excluded from the study if any of the following criteria apply:\n\n* Pregnant\n"
    )
    split = split_criteria(text)
    assert [(i.link_id, i.exclusion, i.text) for i in split.items] == [
        ("inc-1", False, "Age ≥ 18 years"),
        ("exc-1", True, "Pregnant"),
    ]


def test_a_list_of_exceptions_stays_one_text_criterion() -> None:
    # NCT05879978 exc-2: the sub-items are exceptions, not exclusions
    study = next(
        s
        for s in studies_in(recorded("dgg32/ctg-studies(5).json"))
        if s["protocolSection"]["identificationModule"]["nctId"] == "NCT05879978"
    )
    criteria, _ = eligibility_criteria(study["protocolSection"]["eligibilityModule"])
    exc2 = next(c for c in criteria if c["id"] == "exc-2")
    assert "not_computable" in exc2 and "effectively treated non-melanoma skin cancers" in exc2["text"]


def test_every_record_splits_into_criteria_the_mapping_parser_accepts() -> None:
    for path in all_record_files():
        for study in studies_in(recorded(path.relative_to(path.parents[1]).as_posix())):
            module = study["protocolSection"].get("eligibilityModule", {})
            criteria, counts = eligibility_criteria(module)
            nct = study["protocolSection"]["identificationModule"]["nctId"]
            parsed = parse_trial_criteria({"criteria": criteria}, nct, nct)
            assert len(parsed.criteria) == len(criteria) >= 1
            assert counts.found == counts.structured + counts.partly + counts.screening + counts.text


@pytest.mark.parametrize(
    "text",
    [
        "Untreated or symptomatic central nervous system (CNS) metastases",  # NCT05913115
        "Leptomeningeal disease or Active central nervous system (CNS) metastases.",  # NCT06385925
        "Has known active CNS metastases and/or carcinomatous meningitis. Participants with previously treated brain "
        "metastases may participate provided they are radiologically stable.",  # NCT05832827 (shortened)
    ],
)
def test_qualified_cns_metastases_need_the_condition_and_a_site_check(text: str) -> None:
    """No CNS metastases on record: not met (decided); with them: unknown until the site says whether
    they are active/untreated (treated, stable ones are allowed)."""
    rule = rule_of(text, exclusion=True)
    condition, status = rule["all_of"]
    assert "icd10cm:C79.31" in condition["condition"]["codes"] or "icd10cm:C79.3" in condition["condition"]["codes"]
    assert "history" not in condition["condition"]
    assert "not_computable" in status


# --- issue 11: the precision errors of the blind check, and the oncology finders ----------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("≥18 years old and <80 years old", {"min": 18, "max": 79}),
        ("≥ 18 years of age < 75 years", {"min": 18, "max": 74}),
        ("Aged 18 to 75 years", {"min": 18, "max": 75}),
        # the range first, then the words that make it an age
        ("Adult subjects between 18 and 70 years of age", {"min": 18, "max": 70}),
        ("18-75 years old", {"min": 18, "max": 75}),
        ("Patients 18 to 75 years of age", {"min": 18, "max": 75}),
    ],
)
def test_both_bounds_of_an_age_range_are_kept(text: str, expected: dict[str, int]) -> None:
    assert rule_of(text) == {"age": expected}


def test_an_age_the_importer_cannot_read_stays_as_a_remainder_beside_what_it_can() -> None:
    rule = rule_of("age >18 years and < 75 years. Life expectancy > 3 months")
    kinds = [next(k for k in child if k not in ("key", "text")) for child in rule["all_of"]]
    assert kinds == ["observation", "not_computable"]
    assert ">18" in rule["all_of"][1]["not_computable"] and "<75" in rule["all_of"][1]["not_computable"]


@pytest.mark.parametrize("text", ["ECOG PS score: 0~1", "ECOG 0-1", "ECOG performance status 0 to 1", "ECOG 0 or 1"])
def test_ecog_ranges_keep_the_upper_bound(text: str) -> None:
    assert observation(rule_of(text))["value"] == 1 and observation(rule_of(text))["op"] == "<="


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Radiotherapy within two weeks before the first dose", 14),
        ("Radiotherapy within one week of randomization", 7),
        ("Radiation therapy within 6 weeks prior to enrollment", 42),
        ("Chemotherapy within 3 months before the first dose", 91),
        ("Received chemotherapy ≤ 28 days prior to the first dose", 28),
    ],
)
def test_washout_windows_in_words_weeks_and_months(text: str, days: int) -> None:
    rule = rule_of(text, exclusion=True)
    body = rule.get("procedure") or rule.get("medication")
    assert body is not None and body["within_days"] == days


def test_a_washout_without_a_window_or_with_an_exception_stays_text() -> None:
    assert structure("Prior radiotherapy", exclusion=True).rule is None  # radiotherapy ever: too broad
    assert structure("Radiotherapy within 2 weeks; palliative radiotherapy is permitted", exclusion=True).rule is None


def test_a_heading_window_reaches_the_items_under_it() -> None:
    written = (
        "Inclusion Criteria:\n\n1. Laboratory values within 21 days from randomization:\n   * ANC ≥ 1.5 × 10^9/L\n"
    )
    criteria, _ = eligibility_criteria({"eligibilityCriteria": written})
    assert criteria[0]["all_of"][0]["observation"]["window_days"] == 21


def test_a_definition_under_a_contraception_requirement_is_no_criterion() -> None:
    written = (
        "Inclusion Criteria:\n\n1. Women of childbearing potential must use contraception:\n"
        "   * post-menopausal defined as age ≥ 50 and amenorrhoeic ≥ 12 months\n   * surgically sterile\n"
    )
    criteria, counts = eligibility_criteria({"eligibilityCriteria": written})
    assert criteria[0]["screening"] is True and "age" not in str(criteria).replace("age ≥", "")
    assert (counts.found, counts.screening) == (1, 1)


def test_history_of_hiv_and_active_hepatitis_are_read_virus_by_virus() -> None:
    conditions = {leaf["key"]: leaf["condition"] for leaf in leaves(
        rule_of("known history of HIV infection or active hepatitis B or C", exclusion=True)
    )}  # fmt: skip
    assert conditions["hiv"].get("history") is True
    assert "history" not in conditions["hbv"] and "history" not in conditions["hcv"]
    past = {leaf["key"]: leaf["condition"] for leaf in leaves(rule_of("History of hepatitis B or C", exclusion=True))}
    assert past["hbv"]["history"] and past["hcv"]["history"]


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("Stage IIIB or IV", ["IIIB", "IV"]),
        ("stage IIIB-IV", ["IIIB", "IIIC", "IV"]),
        ("Stage IIIB/IIIC or stage IV", ["IIIB", "IIIC", "IV"]),
        ("AJCC 8th edition stage IIIB to IVB", ["IIIB", "IIIC", "IVA", "IVB"]),
    ],
)
def test_ajcc_stage_groups_with_both_ends_of_a_range(text: str, allowed: list[str]) -> None:
    assert rule_of(text) == {"stage": {"allowed": allowed}}


def test_other_staging_systems_are_not_ajcc() -> None:
    assert structure("Masaoka-Koga stage IVa or IVb thymic carcinoma", exclusion=False).rule is None


def test_confirmed_nsclc_is_the_diagnosis_and_the_extent_a_named_site_check() -> None:
    rule = rule_of(
        "Histologically or cytologically confirmed locally advanced or metastatic NSCLC (stage IIIB, IIIC or IV)"
    )
    by_key = {child["key"]: child for child in rule["all_of"]}
    assert by_key["dx"]["condition"]["codes"][0] == "snomed:254637007"
    assert not any(c.startswith("icd10cm:C34") for c in by_key["dx"]["condition"]["codes"])  # C34 holds SCLC too
    assert by_key["stage"]["stage"]["allowed"] == ["IIIB", "IIIC", "IV"]
    assert "locally advanced or metastatic" in by_key["extent"]["not_computable"]
    # "non-small cell" is a pathologist's finding: a recorded NSCLC was diagnosed by histology or cytology
    assert "confirmation" not in by_key
    documented = rule_of("Histologically or cytologically documented non-small cell lung cancer")
    assert documented == {"condition": by_key["dx"]["condition"]}


@pytest.mark.parametrize(
    ("text", "record_suffices"),
    [
        ("Histologically or cytologically confirmed non-small cell lung cancer (NSCLC)", True),
        ("Pathologically confirmed NSCLC", True),
        ("Patients with pathologically (histopathologically) or cytologically confirmed NSCLC", True),
        ("Histologically or cytologically proven malignant mesothelioma", True),
        ("Cytologically or histologically confirmed cutaneous melanoma", True),
        ("Histological or cytological confirmation of NSCLC", True),
        ("Histologically- or cytologically-confirmed NSCLC", True),
        ("Diagnosis of NSCLC confirmed by histology or cytology", True),
        ("Confirmed diagnosis of NSCLC", True),  # the recorded diagnosis is what it names
        ("Histologically confirmed NSCLC", False),  # a diagnosis made on cytology only does not meet it
        ("Histopathologically confirmed melanoma", False),
        ("Cytologically confirmed NSCLC", False),
        ("Histologically or cytologically confirmed hepatocellular carcinoma", False),  # may be made on imaging
        ("Histologically or cytologically confirmed pancreatic cancer", False),
    ],
)
def test_a_microscopic_diagnosis_on_record_is_its_own_pathology_confirmation(text: str, record_suffices: bool) -> None:
    rule = structure(text, exclusion=False).rule
    assert rule is not None
    if record_suffices:
        assert set(rule) == {"condition"}, rule  # fully structured: nothing left for the site
    else:
        assert rule["all_of"][-1] == {"key": "confirmation", "text": rule["all_of"][-1]["text"], "screening": True}


def test_a_window_beside_a_diagnosis_is_never_dropped() -> None:
    # the diagnosis rule reads no window: "within 28 days" stays a remainder, the criterion partly structured;
    # nor a past diagnosis (a resolved record meets it, the rule reads an active one)
    for text in (
        "Histologically or cytologically confirmed NSCLC within 28 days before enrollment",
        "Diagnosed with NSCLC within the past 6 months",
        "Prior diagnosis of NSCLC",
    ):
        rule = rule_of(text)
        assert [child["key"] for child in rule["all_of"]] == ["dx", "rest"], text


def test_the_ajcc_edition_of_a_stage_is_the_system_it_is_read_in() -> None:
    rule = rule_of("Stage IIIB or IV NSCLC according to the 8th edition of the AJCC/UICC TNM staging system")
    assert [child["key"] for child in rule["all_of"]] == ["stage", "dx"]
    assert rule["all_of"][0]["stage"] == {"allowed": ["IIIB", "IV"]}
    # another staging system named beside it stays a remainder
    assert "rest" in [child["key"] for child in rule_of("Stage IV NSCLC according to the IASLC staging")["all_of"]]


def test_small_cell_or_mixed_histology_is_not_nsclc() -> None:
    assert structure("Mixed small cell and non-small cell lung cancer histology", exclusion=False).rule is None


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("Prior treatment with anti-PD-1 or anti-PD-L1 antibody", ["atc:L01FF"]),
        ("Prior EGFR-TKI therapy", ["atc:L01EB"]),
        ("Previous treatment with an ALK inhibitor", ["atc:L01ED"]),
    ],
)
def test_prior_therapy_classes_are_atc_classes_ever_given(text: str, codes: list[str]) -> None:
    rule = rule_of(text, exclusion=True)
    assert rule["medication"]["codes"] == codes and "within_days" not in rule["medication"]


def test_an_unnamed_checkpoint_target_stays_an_unknown_alternative() -> None:
    rule = rule_of("Prior therapy with an anti-PD-1, anti-PD-L1, or anti-PD-L2 agent", exclusion=True)
    assert [c["key"] for c in rule["any_of"]] == ["pd1", "rest"]


def test_gene_biomarkers_without_a_specific_variant() -> None:
    tests = [leaf["test"] for leaf in leaves(rule_of("Known EGFR mutation or ALK rearrangement", exclusion=True))]
    assert [(t["gene"], t["result"]) for t in tests] == [("EGFR", "positive"), ("ALK", "positive")]
    assert rule_of("EGFR wild-type")["test"]["result"] == "negative"
    # any KRAS variant is not G12C: the change is required by name (test_a_named_protein_change_...)
    assert rule_of("KRAS G12C mutation")["test"]["variant"] == "G12C"
    # any EGFR variant is not a sensitising one: never read as the gene alone (the kind stays with the site)
    sensitising = rule_of("Known EGFR sensitizing mutation", exclusion=True)
    assert [child["key"] for child in sensitising["all_of"]] == ["variant", "kind"]


def test_ldh_as_a_multiple_of_uln() -> None:
    body = observation(rule_of("LDH > 2.5 × ULN", exclusion=True))
    assert body == {"label": "Lactate dehydrogenase", "codes": ["loinc:2532-0", "loinc:14804-9"], "op": ">", "uln": 2.5}


def test_interstitial_lung_disease_and_organ_transplant() -> None:
    ild = rule_of("History of interstitial lung disease", exclusion=True)["condition"]
    assert "icd10cm:J84" in ild["codes"] and ild["history"] is True
    # NCT05438667 exc-11 (review seed 4242 #30): a transplant done elsewhere is recorded as a status (Z94.x)
    procedure, status, stem_cells = rule_of("A history of organ transplantation；", exclusion=True)["any_of"]
    assert procedure["procedure"]["codes"] == ["snomed:313039003"]
    assert status["condition"]["history"] is True
    assert {"snomed:161663000", "icd10cm:Z94.0", "icd10cm:Z94.4"} <= set(status["condition"]["codes"])
    assert "icd10cm:Z94.7" not in status["condition"]["codes"]  # a cornea is a tissue
    # whether an allogeneic stem cell transplant is an "organ transplantation": only asked when one is on record
    record, question = stem_cells["all_of"]
    assert "icd10cm:Z94.84" in record["any_of"][0]["condition"]["codes"] and "allogeneic" in question["not_computable"]
    solid = rule_of("Prior solid organ transplant", exclusion=True)["any_of"]
    assert [c["key"] for c in solid] == ["transplant", "transplant-status"]  # "solid" says no stem cells
    # NCT05832827 exc-28: an allogeneic TISSUE transplant (stem cells, marrow) is no solid organ: a solid-organ
    # rule would call a patient after an allogeneic stem-cell transplant not excluded (seed-7 sample error)
    # the stem cells are therefore kept beside the solid organ, for the site (tests/test_structurer_conditions.py)
    tissue = rule_of("Has had an allogeneic tissue/solid organ transplant", exclusion=True)["any_of"]
    assert "transplant-sct" in [c["key"] for c in tissue]


@pytest.mark.parametrize(
    "text",
    [
        "Not receiving radiotherapy within 14 days before registration",  # NCT05832827: a negated washout
        "If platinum-containing chemotherapy has been given as adjuvant therapy, an interval of at least 24 weeks "
        "is required.",  # NCT05832827: conditional
        "No prior EGFR-TKI therapy",
    ],
)
def test_a_negated_or_conditional_therapy_in_an_inclusion_is_not_required(text: str) -> None:
    assert structure(text, exclusion=False).rule is None


def test_the_trial_diagnosis_must_be_active_not_only_ever_recorded() -> None:
    assert "history" not in rule_of("Histologically confirmed breast cancer")["all_of"][0]["condition"]


def test_systemic_corticosteroids_above_a_prednisone_equivalent_dose_inside_the_window() -> None:
    rule = rule_of(
        "Requires systemic corticosteroids (>10 mg daily prednisone equivalents) or other immunosuppressive "
        "medications within 14 days of study drug administration",
        exclusion=True,
    )
    dose, suppressants = rule["any_of"]
    assert dose["corticosteroid_dose"] == {"op": ">", "prednisone_mg_per_day": 10, "within_days": 14}
    # "other immunosuppressive medications" are ATC L04 inside the same window (issue 11, third round)
    assert suppressants["medication"]["codes"] == ["atc:L04"] and suppressants["medication"]["within_days"] == 14
    assert structure("Chronic systemic steroids > 10 mg prednisone", exclusion=True).rule is None  # no window


def test_active_tuberculosis_and_lvef() -> None:
    tb = rule_of("Active pulmonary tuberculosis", exclusion=True)["condition"]
    assert "icd10cm:A15" in tb["codes"] and "history" not in tb
    assert structure("Active or latent tuberculosis", exclusion=True).rule is None
    assert observation(rule_of("LVEF < 50%", exclusion=True)) == {
        "label": "Left ventricular ejection fraction",
        "codes": ["loinc:10230-1"],
        "op": "<",
        "value": 50.0,
        "unit": "%",
    }


def test_an_unencoded_condition_beside_a_finding_is_never_dropped() -> None:
    rule = rule_of("Hypercalcaemia or pregnancy", exclusion=True)
    assert [c["key"] for c in rule["any_of"]] == ["pregnant", "rest"]


@pytest.mark.parametrize("text", ["EGFR mutation-negative", "EGFR mutation negative", "EGFR wild-type"])
def test_a_negative_gene_status_is_never_read_as_positive(text: str) -> None:
    assert rule_of(text)["test"]["result"] == "negative"


def test_disease_extent_is_no_alternative_in_an_exclusion() -> None:
    # the setting narrows the therapy (all_of with the site's word), never an alternative beside it (any_of)
    rule = structure("Prior platinum-based chemotherapy for metastatic NSCLC", exclusion=True).rule
    assert rule is not None and set(rule) == {"all_of"}
    assert [child["key"] for child in rule["all_of"]] == ["platinum", "setting"]


# --- body weight, screening confirmations (issue 11, second round) -------------------------------


def test_body_weight_bound_in_kilograms() -> None:
    body = observation(rule_of("Body weight >30 kg"))  # NCT05883644 inc-14
    assert (body["codes"], body["op"], body["value"], body["unit"]) == (["loinc:29463-7"], ">", 30, "kg")
    both = [observation(leaf) for leaf in leaves(rule_of("Body weight ≥ 40 kg and ≤ 150 kg"))]
    assert [(b["op"], b["value"]) for b in both] == [(">=", 40), ("<=", 150)]


@pytest.mark.parametrize(
    "text",
    [
        "Weight loss > 10 kg in the previous 3 months",  # a change of weight, not a weight
        "Body weight > 30 lb",  # not kilograms
        "Weight-based dosing ≥ 2 mg/kg",
    ],
)
def test_weight_change_or_other_units_are_no_body_weight_bound(text: str) -> None:
    assert structure(text, exclusion=False).rule is None


@pytest.mark.parametrize(
    ("text", "exclusion"),
    [
        # the study drug's own hypersensitivity: an investigational product is in no record
        ("Known allergic reaction against any of the components of the study treatments.", True),  # NCT04956640
        ("Serious allergy to the investigational drug or excipients (such as microcrystalline cellulose, etc.);", True),
        ("History of severe hypersensitivity reactions to any ingredient of study drug(s)", True),  # NCT05838768
        ("Patients with contraindications to drugs used in the study", True),  # NCT06898385
        # measurable disease is the site's imaging assessment
        ("Measurable disease as per RECIST 1.1.", False),  # NCT06411691
        ("Measurable disease as determined by RECIST version 1.1", False),  # NCT05838768
        ("Must be able to swallow capsule/tablet.", False),  # NCT04956640
        # NCT05883007
        ("Considered unfit to participate in this clinical trial as assessed by the investigator.", True),
    ],
)
def test_site_confirmations_become_screening_items(text: str, exclusion: bool) -> None:
    result = structure(text, exclusion)
    assert result.screening and result.rule is None


@pytest.mark.parametrize(
    "text",
    [
        "Known or suspected hypersensitivity to Hiltonol.",  # NCT06411691: a named drug, may be on record
        "History of severe immediate hypersensitivity reaction to cyclophosphamide, fludarabine, or aldesleukin.",
        "At least 1 measurable lesion per RECIST 1.1 that is ≥ 10 mm in the longest diameter",  # a threshold
        "Allergic rhinitis requiring systemic steroids",  # an allergy, but not to the study drug
    ],
)
def test_named_drug_allergies_and_measured_lesions_are_no_screening_items(text: str) -> None:
    assert not structure(text, exclusion=True).screening


# --- live vaccines, washouts anchored on the start of the study drug -----------------------------

LIVE_VACCINE_EXCLUSIONS = [
    # NCT05832827 exc-14: the sentences allowing killed / non-live vaccines restate the rule
    "Has received a live vaccine or live-attenuated vaccine within 30 days prior to the first dose of study drug. "
    "Administration of killed vaccines is allowed. Approved COVID-19 vaccines (excluding live vaccines and/or "
    "live-attenuated vaccines) are allowed",
    # NCT06411691 exc-13
    "Has received any non-oncology live vaccine therapy used for prevention of infectious diseases within 28 days "
    "of study treatment.",
    "Receipt of live attenuated vaccine within 30 days before the first dose",  # "receipt of" names the receiving
]


@pytest.mark.parametrize("text", LIVE_VACCINE_EXCLUSIONS)
def test_live_vaccines_inside_the_window_with_live_codes_only(text: str) -> None:
    body = rule_of(text, exclusion=True)["medication"]
    assert body["within_days"] in (28, 30)
    assert {"cvx:03", "cvx:21", "cvx:121", "atc:J07BK01", "atc:J07BK02", "atc:J07AN01"} <= set(body["codes"])
    # recombinant zoster (Shingrix) and inactivated vaccines are not live
    assert not {"atc:J07BK03", "cvx:187", "cvx:10", "cvx:141"} & set(body["codes"])
    assert "zoster" not in body["names"] and "vaccine" not in body["names"]


@pytest.mark.parametrize(
    "text",
    [
        "Live vaccines are not allowed during the study.",  # no lookback window: a rule for the future
        "Has received a live vaccine within 30 days prior to the first dose. Yellow fever vaccine is allowed.",
        "Has received any vaccine within 30 days prior to the first dose of study drug.",  # not only live ones
    ],
)
def test_live_vaccine_near_misses_stay_text(text: str) -> None:
    result = structure(text, exclusion=True)
    assert result.rule is None or "medication" not in str(result.rule)


def test_a_washout_before_the_start_of_investigational_products_is_the_window() -> None:
    rule = rule_of("Received radiation therapy ≤14 days prior to initiation of investigational products.", True)
    assert rule["procedure"]["within_days"] == 14  # NCT03377387 exc-4
    assert structure("Received radiation therapy ≤14 days prior to surgery of the primary tumour.", True).rule is None


def test_imported_live_vaccine_and_weight_rules_decide_on_records() -> None:
    import datetime as dt

    from service.domain.criteria import Result
    from service.domain.evaluate import evaluate_study
    from service.fhir.patient_bundle import index_facts, parse_body
    from tests.builders import body, concept, observation, patient

    criteria, _ = eligibility_criteria(
        {
            "eligibilityCriteria": "Inclusion Criteria:\n\n* Body weight >30 kg\n\nExclusion Criteria:\n\n* "
            + LIVE_VACCINE_EXCLUSIONS[0]
        }
    )
    trial = parse_trial_criteria({"criteria": criteria}, "NCT-test", "imported")
    on = dt.date(2026, 3, 1)
    cvx = "http://hl7.org/fhir/sid/cvx"

    def results(*resources: dict[str, Any]) -> dict[str, Result]:
        evaluation = evaluate_study(trial, index_facts(parse_body(body(patient(), *resources))), on)
        return {r.criterion.link_id: r.result for r in evaluation.criteria}

    def shot(code: str, display: str, when: str) -> dict[str, Any]:
        return {
            "resourceType": "Immunization",
            "id": f"imm-{code}",
            "status": "completed",
            "vaccineCode": concept(cvx, code, display),
            "patient": {"reference": "Patient/p1"},
            "occurrenceDateTime": when,
        }

    assert results(observation("29463-7", "2026-02-20", 62, "kg"))["inc-1"] is Result.MET
    assert results(observation("29463-7", "2026-02-20", 28.5, "kg"))["inc-1"] is Result.NOT_MET
    mmr = results(shot("03", "measles, mumps and rubella virus vaccine", "2026-02-15"))
    assert mmr["exc-1"] is Result.MET
    shingrix = results(shot("187", "zoster vaccine recombinant, adjuvanted", "2026-02-15"))
    assert shingrix["exc-1"] is Result.NOT_MET
    old = results(shot("03", "measles, mumps and rubella virus vaccine", "2025-10-01"))
    assert old["exc-1"] is Result.NOT_MET


def test_leptomeningeal_disease_alone_is_the_meninges_not_all_cns() -> None:
    rule = rule_of("History of leptomeningeal carcinomatosis", exclusion=True)  # NCT05883644 exc-8
    meninges, spinal = rule["any_of"]
    body = meninges["condition"]
    assert body["history"] is True
    assert "icd10cm:C79.32" in body["codes"] and "icd10cm:C79.3" not in body["codes"]
    # blind check seed 7777 #15: spinal leptomeningeal disease is coded C79.49 with spinal cord and nerve
    # metastases; such a record is no "not met" and no "met" either: the site places it.
    record, site = spinal["all_of"]
    assert record["condition"]["codes"] == ["icd10cm:C79.49"] and record["condition"]["history"] is True
    assert "leptomeningeal" in site["not_computable"]
    active = rule_of("Known leptomeningeal disease", exclusion=True)["any_of"][0]["condition"]
    assert "history" not in active
    # "treated, stable" qualifiers keep the site check of the qualified CNS rule
    assert structure("Untreated leptomeningeal disease (treated disease is allowed)", True).rule is None


def test_pregnancy_of_women_of_childbearing_potential_is_pregnancy() -> None:
    text = (  # NCT03745326 exc-1
        "Women of child-bearing potential who are pregnant or breastfeeding because of the potentially dangerous "
        "effects of the treatment on the fetus or infant."
    )
    assert {leaf["condition"]["label"] for leaf in leaves(rule_of(text, exclusion=True))} == {
        "Pregnancy",
        "Breastfeeding",
    }
    # the qualifier is dropped only beside pregnancy: on its own it is a contraception matter (screening)
    assert structure("Women of child-bearing potential who are not using contraception", True).rule is None


def test_cdk_inhibitors_and_history_or_concurrent_ild() -> None:
    # NCT02513394 exc-2 "Prior therapy with any CDK inhibitor.": blind check seed 7777 #17, CDK2/7/9 inhibitors
    # are CDK inhibitors outside L01EF, so the bare class stays text; CDK4/6 wording is L01EF.
    assert structure("Prior therapy with any CDK inhibitor.", exclusion=True).rule is None
    body = rule_of("Prior therapy with any CDK4/6 inhibitor.", exclusion=True)["medication"]
    assert body["codes"] == ["atc:L01EF"] and "within_days" not in body
    ild = rule_of("Known history or concurrent interstitial lung disease.", exclusion=True)  # NCT06411691 exc-6
    assert ild["condition"]["history"] is True
    # review seed 4242 #22: drug-induced ILD (J70.2 acute, J70.3 chronic, J70.4 unspecified) is the usual one
    # after chemotherapy; without it such a patient read as not excluded
    assert {"icd10cm:J84", "icd10cm:J70.2", "icd10cm:J70.3", "icd10cm:J70.4"} <= set(ild["condition"]["codes"])
    assert "icd10cm:J70.0" not in ild["condition"]["codes"]  # radiation pneumonitis is another criterion's
    # a CDK inhibitor with an exception stays text
    assert structure("Prior CDK4/6 inhibitor unless given as adjuvant therapy", True).rule is None


@pytest.mark.parametrize(
    "text",
    [
        "Patients who are receiving any other investigational agents.",  # NCT03745326 exc-10
        "Concurrent therapy with other Investigational Products.",  # NCT02513394 exc-1
        "Is currently participating in or has participated in a study of an investigational agent or has used an "
        "investigational device within 4 weeks prior to the first dose of study intervention",  # NCT05832827
    ],
)
def test_another_interventional_study_is_a_site_confirmation(text: str) -> None:
    assert structure(text, exclusion=True).screening


@pytest.mark.parametrize(
    "text",
    [
        # NCT05907980 exc-2: the anti-cancer therapy is data; the whole stays text, not a confirmation
        "Treatment with investigational therapy and anti-cancer therapy within 28 days prior to initiation of "
        "study drug",
        "Participation in an observational registry",  # not an interventional study
    ],
)
def test_other_study_near_misses_are_no_screening_items(text: str) -> None:
    assert not structure(text, exclusion=True).screening


def test_women_of_childbearing_potential_as_an_alternative_of_their_own_are_never_dropped() -> None:
    rule = rule_of("Pregnant or breastfeeding women, or women of childbearing potential", exclusion=True)
    rest = [leaf for leaf in leaves(rule) if "not_computable" in leaf]
    assert rest and "childbearing" in rest[0]["not_computable"]


@pytest.mark.parametrize(
    ("text", "exclusion", "op"),
    [
        # NCT03377387 inc-7: the imaging methods are how LVEF is measured, not alternative criteria
        ("Left ventricular ejection fraction (LVEF) ≥50% measured by multiple-gated acquisition scan (MUGA) or "
         "echocardiogram (ECHO).", False, ">="),
        ("LVEF < 50% as determined by ECHO or MUGA", True, "<"),
    ],
)  # fmt: skip
def test_lvef_with_its_imaging_method(text: str, exclusion: bool, op: str) -> None:
    body = observation(rule_of(text, exclusion))
    assert (body["codes"], body["op"], body["value"], body["unit"]) == (["loinc:10230-1"], op, 50.0, "%")


def test_lvef_thresholds_that_differ_by_method_stay_text() -> None:
    assert structure("LVEF ≥ 50% by echocardiogram or ≥ 45% by MUGA", exclusion=False).rule is None


HIV_WITH_TEST = (  # NCT05879653 exc-22
    "Has a known history of Human Immunodeficiency Virus (HIV) infection. The test should be performed within 28 "
    "days prior to the first dose of the trial drug."
)


def test_a_virus_criterion_asking_for_a_test_keeps_the_test() -> None:
    # Review seed 4242 #28: the second sentence was dropped, so a positive test without a coded diagnosis
    # passed and an untested patient read as cleared.
    hiv, test = rule_of(HIV_WITH_TEST, exclusion=True)["any_of"]
    assert hiv["condition"]["label"] == "HIV infection" and hiv["condition"]["history"] is True
    assert test["not_computable"] == "the other findings of this list are not encoded (the test it asks for)"
    assert "any_of" not in rule_of("Known history of HIV infection", exclusion=True)  # no test asked: HIV alone


# --- ECG, vital signs and urine measures (issue 11, measures round) ----------------------------


@pytest.mark.parametrize(
    ("text", "exclusion", "code", "op", "value", "unit"),
    [
        ("QTc interval > 480 msec", True, "loinc:8636-3", ">", 480.0, "ms"),
        ("Corrected QT interval (QTc) > 470 milliseconds", True, "loinc:8636-3", ">", 470.0, "ms"),
        ("QTc ≤ 470 ms", False, "loinc:8636-3", "<=", 470.0, "ms"),
        ("Oxygen saturation (SpO2) ≥ 92%", False, "loinc:59408-5", ">=", 92.0, "%"),
        ("HbA1c ≥ 8%", True, "loinc:4548-4", ">=", 8.0, "%"),
        ("Hemoglobin A1c (HbA1c) < 8.0%", False, "loinc:4548-4", "<", 8.0, "%"),
        ("Urine protein ≥ 1 g/24 hours", True, "loinc:2889-4", ">=", 1.0, "g/d"),
        ("Proteinuria > 1000 mg/24 h", True, "loinc:2889-4", ">", 1.0, "g/d"),
        ("Systolic blood pressure > 160 mmHg", True, "loinc:8480-6", ">", 160.0, "mm[Hg]"),
    ],
)
def test_ecg_vital_sign_and_urine_thresholds(
    text: str, exclusion: bool, code: str, op: str, value: float, unit: str
) -> None:
    body = observation(rule_of(text, exclusion))
    assert code in body["codes"]
    assert (body["op"], body["value"], body["unit"]) == (op, value, unit)


def test_hba1c_is_never_read_as_haemoglobin_nor_in_ifcc_units() -> None:
    body = observation(rule_of("Hemoglobin A1c (HbA1c) < 8.0%"))
    assert "loinc:718-7" not in body["codes"]
    # IFCC mmol/mol is no linear multiple of the NGSP percent: such a code would convert wrongly
    assert "loinc:59261-8" not in body["codes"]
    assert structure("HbA1c > 64 mmol/mol", exclusion=True).rule is None


def test_a_blood_pressure_pair_is_both_bounds_in_an_inclusion_and_either_in_an_exclusion() -> None:
    inclusion = rule_of("Blood pressure ≤ 140/90 mmHg")
    bounds = {(observation(c)["codes"][0], observation(c)["op"], observation(c)["value"]) for c in inclusion["all_of"]}
    assert bounds == {
        ("loinc:8480-6", "<=", 140.0),
        ("loinc:8462-4", "<=", 90.0),
    }
    exclusion = rule_of("Blood pressure > 150/100 mmHg", exclusion=True)
    assert {(observation(c)["codes"][0], observation(c)["value"]) for c in exclusion["any_of"]} == {
        ("loinc:8480-6", 150.0),
        ("loinc:8462-4", 100.0),
    }
    # the readings define "uncontrolled hypertension"; either one beyond its bound excludes
    defined = rule_of("Uncontrolled hypertension defined as SBP > 160 mmHg or DBP > 100 mmHg", exclusion=True)
    assert [c["key"] for c in defined["any_of"]] == ["sbp", "dbp"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("QTcF > 470 ms", "Fridericia: no code tells it from the machine's (Bazett) QTc"),
        (
            "Mean QT interval corrected for heart rate using Fridericia's formula (QTcF) ≥470 ms calculated from 3 "
            "electrocardiograms.",  # NCT06008288 exc-4
            "Fridericia",
        ),
        ("QTc > 450 ms in males or > 470 ms in females", "bounds that differ by sex"),
        (
            "QTc interval >450 ms for men or 470 ms for women, or known history of QTc prolongation or Torsades de "
            "Pointes.",  # NCT03377387 exc-5
            "bounds that differ by sex, and a history",
        ),
        ("History of QTc prolongation", "no threshold"),
        ("Urine protein to creatinine ratio > 1 g/g", "a ratio is not the 24-hour protein"),
        ("Proteinuria ≥ 2+ on dipstick", "a dipstick grade is no amount"),
        (
            "Uncontrolled hypertension (systolic blood pressure > 150 mmHg or diastolic blood pressure > 100 mmHg "
            "despite optimal medical treatment)",
            "the treatment the readings are taken on",
        ),
        ("Poorly controlled hypertension.", "no threshold"),  # NCT05883007 exc-6
    ],
)
def test_measure_lookalikes_stay_text(text: str, why: str) -> None:
    assert structure(text, exclusion=True).rule is None, why


def test_a_saturation_on_room_air_is_decided_only_by_a_reading_beyond_its_bound() -> None:
    # NCT06411691 exc-7: on supplemental oxygen the saturation reads higher, so a value below 95% excludes
    # whatever the patient breathed, one above it is unknown
    exclusion = rule_of("Has a pulse oximetry < 95% on room air.", exclusion=True)
    kinds = [("observation" in c, "not_computable" in c) for c in exclusion["any_of"]]
    assert kinds == [(True, False), (False, True)]
    assert observation(exclusion["any_of"][0])["codes"] == ["loinc:59408-5", "loinc:2708-6"]
    inclusion = rule_of("Oxygen saturation ≥ 92% on room air")
    assert [("observation" in c, "not_computable" in c) for c in inclusion["all_of"]] == [(True, False), (False, True)]


# --- a relaxed lab bound for patients with a named condition ------------------------------------

AST_ALT_LIVER = (  # NCT03377387 inc-10
    "Non-hematologic parameters: bilirubin ≤ 1.5 mg/dl, AST/ALT ≤ 3.0 x upper limit of normal (ULN) "
    "(≤ 5.0 x ULN if liver metastases are involved)"
)


@pytest.mark.parametrize(
    ("text", "key", "condition_code", "strict", "relaxed"),
    [
        (AST_ALT_LIVER, "ast", "icd10cm:C78.7", 3.0, 5.0),
        ("AST and ALT ≤ 2.5 × ULN, or ≤ 5 × ULN in patients with liver metastases", "alt", "icd10cm:C78.7", 2.5, 5.0),
        (
            "Total bilirubin ≤ 1.5 × ULN (≤ 3 × ULN for patients with Gilbert's syndrome)",
            "tbil",
            "icd10cm:E80.4",
            1.5,
            3.0,
        ),
        # formerly kept as text (a liver-metastasis exception); now read with its condition
        ("AST/ALT ≤ 2.5 × ULN (≤ 5 × ULN for patients with liver metastases)", "ast", "icd10cm:C78.7", 2.5, 5.0),
        # the condition first, unbracketed, closing the clause
        ("ALT and AST ≤ 2.5 × ULN; if liver metastases, ≤ 5 × ULN", "ast", "icd10cm:C78.7", 2.5, 5.0),
        ("AST/ALT ≤ 3 × ULN, or if liver metastases are present, ≤ 5 × ULN", "alt", "icd10cm:C78.7", 3.0, 5.0),
        ("ALT and AST ≤ 2.5 x ULN, or in the presence of liver metastases ≤ 5 x ULN", "alt", "icd10cm:C78.7", 2.5, 5.0),
        ("Total bilirubin ≤ 1.5 × ULN; for patients with Gilbert's syndrome, ≤ 3 × ULN", "tbil", "icd10cm:E80.4", 1.5,
         3.0),
        # AstraZeneca's wording names the analytes again
        ("ALT and AST ≤ 2.5 × ULN; for patients with hepatic metastases, ALT and AST ≤ 5 × ULN", "alt",
         "icd10cm:C78.7", 2.5, 5.0),
    ],
)  # fmt: skip
def test_a_relaxed_bound_needs_the_condition_it_names(
    text: str, key: str, condition_code: str, strict: float, relaxed: float
) -> None:
    rule = rule_of(text)
    children = rule.get("all_of", [{"key": key, **rule}])
    either = next(c for c in children if c["key"] == key)["any_of"]
    assert observation(either[0])["uln"] == strict
    condition, bound = either[1]["all_of"]
    assert condition_code in condition["condition"]["codes"] and "history" not in condition["condition"]
    assert (observation(bound)["op"], observation(bound)["uln"]) == ("<=", relaxed)


@pytest.mark.parametrize(
    "text",
    [
        "Serum bilirubin ≤ 1.5 × ULN. This will not apply to patients with confirmed Gilbert's syndrome",  # AZ
        "Total bilirubin ≤ 1.5 × ULN (except patients with Gilbert's syndrome)",
    ],
)
def test_no_bound_for_patients_with_gilbert_syndrome(text: str) -> None:
    strict, free = rule_of(text)["any_of"]
    assert (observation(strict)["op"], observation(strict)["uln"]) == ("<=", 1.5)
    assert free["condition"]["codes"] == ["icd10cm:E80.4"]
    # not for another analyte, nor with more words after the syndrome
    for near_miss in (
        "AST ≤ 3 × ULN. This will not apply to patients with confirmed Gilbert's syndrome",
        "Total bilirubin ≤ 1.5 × ULN, except patients with Gilbert's syndrome and liver metastases",
    ):
        assert structure(near_miss, exclusion=False).rule is None, near_miss


@pytest.mark.parametrize(
    ("text", "exclusion", "why"),
    [
        ("ALT ≤ 3 × ULN (≤ 5 × ULN for patients with Gilbert's syndrome)", False, "Gilbert's relaxes bilirubin only"),
        ("AST ≤ 3 × ULN (≤ 1.5 × ULN if liver metastases)", False, "stricter, not relaxed: any_of would drop it"),
        ("AST ≤ 3 × ULN (≤ 200 U/L if liver metastases)", False, "another kind of bound"),
        ("Hemoglobin ≥ 9 g/dL (≤ 5 × ULN if liver metastases)", False, "not a bound of this analyte"),
        ("AST > 3 × ULN (> 5 × ULN if liver metastases)", True, "an exclusion needs the reverse logic"),
        ("ALT ≤ 2.5 × ULN; if liver metastases, ≤ 5 × ULN and no ascites", False, "more than the bound follows it"),
        ("ALT ≤ 2.5 × ULN; if liver metastases, ≤ 2 × ULN", False, "stricter, not relaxed"),
        ("Creatinine ≤ 1.5 × ULN; if liver metastases, ≤ 5 × ULN", False, "liver metastases relax no creatinine"),
        ("ALT > 2.5 × ULN; if liver metastases, > 5 × ULN", True, "an exclusion needs the reverse logic"),
        ("Total bilirubin ≤ 1.5 × ULN; for patients with hepatic metastases, ALT and AST ≤ 5 × ULN", False,
         "the relaxed bound names other analytes than the one before it"),
        (
            "Total bilirubin less than or equal to 2.0 mg/dL, except in patients with Gilbert s Syndrome, who must "
            "have a total bilirubin < 3.0 mg/dL.",  # NCT03745326 inc-12.3
            False,
            "the exception is worded apart from its bound",
        ),
    ],
)
def test_relaxed_bound_near_misses_stay_text(text: str, exclusion: bool, why: str) -> None:
    assert structure(text, exclusion).rule is None, why


def test_an_imported_liver_metastasis_exception_decides_on_records() -> None:
    import datetime as dt

    from service.domain.criteria import Result
    from service.domain.evaluate import evaluate_study
    from service.fhir.patient_bundle import index_facts, parse_body
    from tests.builders import body, condition, observation, patient

    criteria, _ = eligibility_criteria(
        {"eligibilityCriteria": "Inclusion Criteria:\n\n* AST ≤ 3 × ULN (≤ 5 × ULN if liver metastases are present)"}
    )
    trial = parse_trial_criteria({"criteria": criteria}, "NCT-test", "imported")
    icd = "http://hl7.org/fhir/sid/icd-10-cm"

    def verdict(ast: float, *conditions: dict[str, Any]) -> Result:
        resources = [patient(), observation("1920-8", "2026-02-20", ast, "U/L", high=40), *conditions]
        evaluation = evaluate_study(trial, index_facts(parse_body(body(*resources))), dt.date(2026, 3, 1))
        return next(r.result for r in evaluation.criteria if r.criterion.link_id == "inc-1")

    lung = condition(icd, "C34.90", "Malignant neoplasm of lung")
    liver = condition(icd, "C78.7", "Secondary malignant neoplasm of liver")
    assert verdict(100.0, lung) is Result.MET  # 2.5 × ULN
    assert verdict(160.0, lung) is Result.NOT_MET  # 4 × ULN, no liver metastases on record
    assert verdict(160.0, lung, liver) is Result.MET
    assert verdict(240.0, lung, liver) is Result.NOT_MET  # 6 × ULN



# --- one named protein change of a gene ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gene", "change"),
    [
        (  # NCT04956640 inc-2: the specimens are where it was found, not alternatives
            "Patients must have disease with evidence of KRAS G12C mutation in tumor tissue or circulating tumor "
            "deoxyribonucleic acid (DNA).",
            "KRAS",
            "G12C",
        ),
        ("Documented KRAS p.G12C mutation", "KRAS", "G12C"),
        ("Tumor harboring a KRAS G12D mutation", "KRAS", "G12D"),
        ("KRAS-G12V mutation", "KRAS", "G12V"),
        ("BRAF V600E mutation", "BRAF", "V600E"),
        ("EGFR L858R mutation", "EGFR", "L858R"),
    ],
)
def test_a_named_protein_change_is_a_variant_test(text: str, gene: str, change: str) -> None:
    body = rule_of(text)["test"]
    assert (body["gene"], body["variant"], body["result"]) == (gene, change, "positive")
    assert body["codes"] == ["loinc:69548-6"]


@pytest.mark.parametrize(
    ("text", "exclusion", "why"),
    [
        ("Advanced NSCLC with KRAS non-G12C mutations", False, "every KRAS change but G12C"),
        ("BRAF V600E/K mutation", False, "two changes"),
        ("KRAS G12C and G12D mutations", False, "'and' between changes: both, or either?"),
        ("Prior treatment with KRAS G12D targeted therapy.", True, "a drug aimed at the change"),
        ("Received a KRAS G12C-specific T cell receptor therapy", True, "a therapy aimed at the change"),
    ],
)
def test_protein_change_near_misses_are_no_variant_test(text: str, exclusion: bool, why: str) -> None:
    rule = structure(text, exclusion).rule
    assert rule is None or not [leaf for leaf in leaves(rule) if "variant" in leaf.get("test", {})], why


def test_an_imported_variant_criterion_is_unknown_on_a_report_that_names_no_change() -> None:
    import datetime as dt

    from service.domain.criteria import Result
    from service.domain.evaluate import evaluate_study
    from service.fhir.patient_bundle import index_facts, parse_body
    from tests.builders import body, concept, observation, patient

    criteria, _ = eligibility_criteria({"eligibilityCriteria": "Inclusion Criteria:\n\n* KRAS G12C mutation"})
    trial = parse_trial_criteria({"criteria": criteria}, "NCT-test", "imported")

    def verdict(text: str) -> Result:
        report = observation("69548-6", "2026-01-05", "positive")
        report["code"] = {**concept("http://loinc.org", "69548-6"), "text": text}
        evaluation = evaluate_study(trial, index_facts(parse_body(body(patient(), report))), dt.date(2026, 3, 1))
        return next(r.result for r in evaluation.criteria if r.criterion.link_id == "inc-1")

    # the change named only in the code text, as many EHR exports send it
    assert verdict("KRAS p.G12C mutation analysis") is Result.MET
    assert verdict("KRAS mutation analysis") is Result.UNKNOWN
    assert verdict("KRAS p.G12D mutation analysis") is Result.UNKNOWN


@pytest.mark.parametrize(
    ("text", "exclusion"),
    [
        ("EGFR-sensitizing mutation or ALK gene rearrangement", True),
        ("Patients with EGFR sensitizing mutation or ALK translocation", True),
        ("Known sensitizing EGFR mutations or ALK rearrangement", True),
        ("Documented activating EGFR mutation", False),
    ],
)
def test_a_sensitising_or_activating_mutation_is_the_gene_and_the_kind_for_the_site(text: str, exclusion: bool) -> None:
    rule = rule_of(text, exclusion)
    egfr = next(leaf for leaf in leaves(rule) if leaf.get("test", {}).get("gene") == "EGFR")
    assert (egfr["test"]["result"], "variant" in egfr["test"]) == ("positive", False)
    kind = next(leaf for leaf in leaves(rule) if "not_computable" in leaf)
    assert kind["not_computable"].split(" as the protocol")[0] in (
        "whether the EGFR variant on record is sensitizing",
        "whether the EGFR variant on record is activating",
    )
    if exclusion:  # the EGFR part: a variant AND its kind; ALK (any rearrangement) decides alone
        egfr_part, alk = rule["any_of"]
        assert [c["key"] for c in egfr_part["all_of"]] == ["variant", "kind"] and alk["test"]["gene"] == "ALK"


def test_an_imported_sensitising_mutation_exclusion_is_unknown_on_a_positive_report() -> None:
    import datetime as dt

    from service.domain.criteria import Result
    from service.domain.evaluate import evaluate_study
    from service.fhir.patient_bundle import index_facts, parse_body
    from tests.builders import body, concept, observation, patient

    written = "Exclusion Criteria:\n\n* Known EGFR sensitizing mutation or ALK translocation"
    criteria, counts = eligibility_criteria({"eligibilityCriteria": written})
    assert counts.partly == 1
    trial = parse_trial_criteria({"criteria": criteria}, "NCT-test", "imported")

    def verdict(text: str, result: str) -> Result:
        report = observation("69548-6", "2026-01-05", result)
        report["code"] = {**concept("http://loinc.org", "69548-6"), "text": text}
        evaluation = evaluate_study(trial, index_facts(parse_body(body(patient(), report))), dt.date(2026, 3, 1))
        return next(r.result for r in evaluation.criteria if r.criterion.link_id == "exc-1")

    assert verdict("EGFR mutation analysis", "positive") is Result.UNKNOWN  # exon 20 insertion or L858R?
    assert verdict("ALK rearrangement", "positive") is Result.MET


# --- pregnancy tests with a window in hours -----------------------------------------------------

WOCBP_URINE_TEST = (  # NCT05832827 exc-5 (the wording of many MSD protocols)
    "A WOCBP who has a positive urine pregnancy test within 72 hours prior to registration (see Appendix 3). If the "
    "urine test is positive or cannot be confirmed as negative, a serum pregnancy test will be required"
)


def test_a_positive_pregnancy_test_keeps_its_window_in_hours_as_whole_days() -> None:
    body = rule_of(WOCBP_URINE_TEST, exclusion=True)["test"]
    assert (body["codes"], body["result"], body["window_days"]) == (["loinc:2106-3", "loinc:2118-8"], "positive", 3)
    assert rule_of("Positive pregnancy test within 48 hours before the first dose", exclusion=True)["test"][
        "window_days"
    ] == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("A WOCBP who has a positive urine pregnancy test within 36 hours prior to registration", "no whole day"),
        (
            "A WOCBP who has a positive urine pregnancy test within 72 hours prior to registration. A serum pregnancy "
            "test will be required if the investigator considers it necessary, unless exempt",
            "an exception beside the procedure",
        ),
    ],
)
def test_pregnancy_test_near_misses_stay_text(text: str, why: str) -> None:
    assert structure(text, exclusion=True).rule is None, why


# --- organ-function list items (issue 11, measures round) ---------------------------------------


def test_organ_function_list_items_with_permitted_transfusion_and_relaxed_bounds() -> None:
    items = [
        "Absolute neutrophil count (ANC) ≥1.5 × 10^9/L",
        "Hemoglobin ≥9 g/dL (may have been transfused)",
        "Hemoglobin > 8.0 g/dL. Subjects may be transfused to reach this cut-off.",  # NCT03745326 inc-11.4
        "Total bilirubin ≤1.5 × ULN (patients with Gilbert's syndrome: ≤3 × ULN)",
        "Measured or calculated creatinine clearance ≥ 60 mL/min",
        "Calculated creatinine clearance (CrCl) ≥ 50 mL/min per Cockcroft-Gault",
    ]
    text = "Inclusion Criteria:\n\n* Adequate organ function as defined below:\n" + "\n".join(f"  * {i}" for i in items)
    criteria, counts = eligibility_criteria({"eligibilityCriteria": text})
    # a permitted transfusion may still raise a low value: only a value above the bound decides (partly)
    assert (counts.structured, counts.partly, counts.text) == (len(items) - 2, 2, 0)
    children = criteria[0]["all_of"]
    for transfusable in children[1:3]:
        value, caveat = transfusable["any_of"]
        assert observation(value)["codes"] == ["loinc:718-7"] and "transfusion" in caveat["not_computable"]
    gilbert = children[3]["any_of"][1]["all_of"]
    assert gilbert[0]["condition"]["codes"] == ["icd10cm:E80.4"] and observation(gilbert[1])["uln"] == 3.0
    assert observation(children[4])["codes"] == ["loinc:2164-2", "loinc:35591-7"]
    assert children[5]["creatinine_clearance"] == {"op": ">=", "value": 50.0}


@pytest.mark.parametrize(
    "text",
    [
        "Hemoglobin ≥ 9 g/dL without transfusion within 14 days",
        "Hemoglobin ≥ 9 g/dL (transfusion is allowed if more than 2 weeks before the first dose)",
        "Hemoglobin ≥ 9 g/dL; transfusion within 7 days is not allowed",
        "Alkaline phosphatase ≤ 2.5 × ULN (≤ 5 × ULN if liver or bone metastases)",
    ],
)
def test_qualified_transfusion_or_two_conditions_stay_text(text: str) -> None:
    assert structure(text, exclusion=False).rule is None


# --- HER2 status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "exclusion", "result"),
    [
        ("Known positivity for human epidermal growth factor receptor 2 (HER2)", True, "positive"),  # NCT05913115
        ("HER2-negative breast cancer", False, "negative"),
        ("HER2-positive metastatic breast cancer", False, "positive"),
    ],
)
def test_her2_status_is_a_test_of_the_ihc_and_ish_reports(text: str, exclusion: bool, result: str) -> None:
    tests = [leaf["test"] for leaf in leaves(rule_of(text, exclusion)) if "test" in leaf]
    assert [(t["label"], t["result"]) for t in tests] == [("HER2 status", result)]
    assert {"loinc:48676-1", "loinc:85319-2", "loinc:85318-4"} <= set(tests[0]["codes"])
    assert "gene" not in tests[0]  # a status, not a variant report


@pytest.mark.parametrize(
    "text",
    [
        "HER2-low breast cancer",  # a subset of negative by IHC score
        "HER2 mutation",  # an ERBB2 variant, not the IHC/ISH status
        "Documented HER2 overexpression (immunohistochemistry (IHC) 3+ or gene-amplified tumor with fluorescence in "
        "situ hybridization (FISH) ratio of ≥ 2.0.",  # NCT03377387 inc-3: its own scores
    ],
)
def test_her2_scores_low_or_mutations_are_no_status(text: str) -> None:
    rule = structure(text, exclusion=False).rule
    assert rule is None or not [leaf for leaf in leaves(rule) if leaf.get("test", {}).get("label") == "HER2 status"]


# --- an inclusion's negative pregnancy test for women of childbearing potential -----------------


def test_a_negative_pregnancy_test_for_wocbp_decides_on_records() -> None:
    import datetime as dt

    from service.domain.criteria import Result
    from service.domain.evaluate import evaluate_study
    from service.fhir.patient_bundle import index_facts, parse_body
    from tests.builders import body, concept, observation, patient

    wording = (
        "Women of childbearing potential must have a negative serum pregnancy test within 7 days prior to the first "
        "dose of study treatment."
    )
    criteria, counts = eligibility_criteria({"eligibilityCriteria": f"Inclusion Criteria:\n\n* {wording}"})
    assert counts.partly == 1  # childbearing potential stays the site's to confirm
    trial = parse_trial_criteria({"criteria": criteria}, "NCT-test", "imported")
    snomed = "http://snomed.info/sct"

    def verdict(gender: str, *resources: dict[str, Any]) -> Result:
        facts = index_facts(parse_body(body(patient(gender=gender), *resources)))
        evaluation = evaluate_study(trial, facts, dt.date(2026, 3, 1))
        return next(r.result for r in evaluation.criteria if r.criterion.link_id == "inc-1")

    def hcg(when: str, code: str, display: str) -> dict[str, Any]:
        return observation("2106-3", when, concept(snomed, code, display))

    assert verdict("male") is Result.MET
    assert verdict("female", hcg("2026-02-27", "260385009", "Negative")) is Result.MET
    assert verdict("female", hcg("2026-02-10", "260385009", "Negative")) is Result.UNKNOWN  # older than 7 days
    assert verdict("female") is Result.UNKNOWN
    assert verdict("female", hcg("2026-02-27", "10828004", "Positive")) is Result.UNKNOWN  # never eligible


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Negative pregnancy test (serum) for women of childbearing potential.", "no window: none is safe to assume"),
        (
            "Women of childbearing potential with a negative pregnancy test within 7 days, unless surgically sterile",
            "an exception",
        ),
        ("Women of childbearing potential must not have a negative pregnancy test within 7 days", "a negation"),
    ],
)
def test_negative_pregnancy_test_near_misses_are_not_encoded(text: str, why: str) -> None:
    rule = structure(text, exclusion=False).rule
    assert rule is None or not [leaf for leaf in leaves(rule) if leaf.get("test", {}).get("result") == "negative"], why


def test_two_changes_of_one_gene_joined_by_or_are_alternatives() -> None:
    rule = rule_of("KRAS G12V or G12D mutations")
    assert [(c["test"]["gene"], c["test"]["variant"]) for c in rule["any_of"]] == [("KRAS", "G12V"), ("KRAS", "G12D")]
    assert structure("Prior KRAS G12C or G12D inhibitor", exclusion=True).rule is None  # a drug aimed at them
    assert structure("KRAS G12C, G12D or G12V mutation", exclusion=False).rule is None  # list logic not read


def test_a_qtc_on_a_single_ecg_is_the_threshold_and_a_mean_of_several_stays_text() -> None:
    assert observation(rule_of("QTc > 470 ms on screening ECG", exclusion=True))["value"] == 470.0
    assert observation(rule_of("QTc interval > 480 msec on a 12-lead electrocardiogram", exclusion=True))["op"] == ">"
    mean = "Mean resting corrected QT interval (QTc) > 470 msec obtained from 3 ECGs"
    assert structure(mean, exclusion=True).rule is None  # the mean of a triplicate is not one recorded value
    assert structure("Mean QTc ≤ 470 ms", exclusion=False).rule is None  # nor as a necessary part of an inclusion



@pytest.mark.parametrize(
    "text",
    [
        "Tumors must not be HER2-positive",
        "No known KRAS G12C mutation",
        "Patients without a BRAF V600E mutation",
        "Women of childbearing potential must not have a negative pregnancy test within 7 days",
        # sensitising-mutation near misses: the changes named (not any variant), negated, no gene named
        "Documented EGFR mutation (exon 19 deletion or L858R)",
        "No EGFR sensitizing mutation and no ALK translocation",
        "EGFR sensitizing mutation negative",
        "Tumors with other driver mutations",
    ],
)
def test_a_negated_status_variant_or_test_is_never_required(text: str) -> None:
    rule = structure(text, exclusion=False).rule
    assert rule is None or not [leaf for leaf in leaves(rule) if "test" in leaf]


def test_the_dipstick_note_of_a_24_hour_protein_exclusion_is_procedure() -> None:
    # NCT05832827 exc-6 (lenvatinib protocols): the dipstick only decides who is collected for 24 hours
    text = (
        "Has urine protein ≥1 g/24 hours Note: Participants with proteinuria ≥2+ (≥100 mg/dL) on urine dipstick "
        "testing (urinalysis) will undergo 24-hour urine collection for quantitative assessment of proteinuria"
    )
    body = observation(rule_of(text, exclusion=True))
    assert (body["codes"], body["op"], body["value"], body["unit"]) == (["loinc:2889-4"], ">=", 1.0, "g/d")
    assert structure(text + ". Participants with proteinuria < 2 g may be enrolled", exclusion=True).rule is None


@pytest.mark.parametrize(
    "text", ["Patients with known EGFR, ALK, or ROS1 genomic alterations", "Known EGFR/ALK/ROS1 alterations"]
)
def test_genes_sharing_one_noun_are_any_of_their_variant_tests(text: str) -> None:
    rule = rule_of(text, exclusion=True)
    assert [(c["test"]["gene"], c["test"]["result"]) for c in rule["any_of"]] == [
        ("EGFR", "positive"),
        ("ALK", "positive"),
        ("ROS1", "positive"),
    ]
    # in an inclusion the list is one alternative, never each gene required (all_of)
    assert set(rule_of(text.replace("Known ", ""))) == {"any_of"}


def test_alk_positive_is_a_variant_and_gene_lists_joined_by_and_stay_text() -> None:
    assert rule_of("ALK-positive", exclusion=True)["test"]["gene"] == "ALK"
    assert structure("Known EGFR and ALK mutations", exclusion=True).rule is None  # both, or either?
    assert structure("EGFR-positive", exclusion=True).rule is None  # may be IHC overexpression
    assert structure("No EGFR, ALK or ROS1 alterations", exclusion=False).rule is None


def test_a_window_said_of_a_plan_is_not_the_pregnancy_tests() -> None:
    text = "Positive pregnancy test or breastfeeding within the past 6 months"
    rule = rule_of(text, exclusion=True)
    test = next(leaf["test"] for leaf in leaves(rule) if "test" in leaf)
    assert test["window_days"] == 28  # the default, not 6 months

"""car-nk-solid-tumor-platform (no NCT number): the mapping against its seed.

Expected counts read from seeds/004_7d9d5b0ab8b977af.txt: 9 "*" items under "Inclusion criteria"
(age 18-75; confirmed advanced solid tumour; measurable lesion; antigen positivity; ECOG 0-1;
organ function; lymphodepletion/infusion; pregnancy test + contraception; willingness) and 9
under "Exclusion criteria" (infection; HIV/HBV/HCV; cardiovascular; CNS metastases;
immunosuppression; gene-modified cell therapy; allo-HSCT/GVHD; pregnant/breastfeeding;
investigator's opinion). Arms: single-target (exactly one panel antigen), dual-target (>= 2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from service.catalog import load_catalog
from service.domain.criteria import (
    LOINC,
    AgeRule,
    Combination,
    CombinationCode,
    Comparator,
    CorticosteroidDoseRule,
    ObservationRule,
    Result,
)
from service.domain.criteria import TestRule as QualitativeTest
from service.eligibility import evaluate_request
from tests.mapping_helpers import Mapped, is_not_computable, is_screening, validate_research_study

REPO = Path(__file__).resolve().parents[1]

M = Mapped.load("car-nk-solid-tumor-platform", "004_7d9d5b0ab8b977af.txt")
DOC, TRIAL, IDS = M.doc, M.trial, M.ids
PANEL = ["mesothelin", "TROP2", "HER2", "MUC1", "CLDN18.2", "B7-H3/CD276", "AXL", "GPC3", "CLDN6", "EGFR"]


def test_every_source_criterion_is_a_verbatim_coded_top_level_criterion_in_order() -> None:
    assert M.structure_problems(inclusions=9, exclusions=9) == []
    assert r"\>10 mg/day" in IDS["exc-5"].description  # the seed's characters are kept


def test_id_and_title() -> None:
    assert DOC["id"] == "car-nk-solid-tumor-platform"
    assert "CAR-NK" in DOC["research_study"]["title"]


def _panel(link_id: str) -> Combination:
    rule = IDS[link_id].rule
    assert isinstance(rule, Combination)
    assert [c.description for c in rule.children] == PANEL
    assert all(isinstance(c.rule, QualitativeTest) and c.rule.expect == "positive" for c in rule.children)
    return rule


def test_study_entry_needs_at_least_one_panel_antigen() -> None:
    rule = _panel("inc-4.1")
    assert rule.code is CombinationCode.AT_LEAST and rule.threshold == 1
    assert is_screening(IDS["inc-4.2"])  # protocol-specified assay


def test_antigen_tests_use_loinc_where_it_exists_else_names() -> None:
    her2, egfr, trop2 = IDS["inc-4.1-her2"].rule, IDS["inc-4.1-egfr"].rule, IDS["inc-4.1-trop2"].rule
    assert isinstance(her2, QualitativeTest) and {(LOINC, "48676-1"), (LOINC, "85319-2")} <= her2.codes.exact
    assert isinstance(egfr, QualitativeTest) and (LOINC, "39004-7") in egfr.codes.exact
    assert "egfr" not in egfr.codes.names  # an EGFR mutation report is not antigen expression
    assert isinstance(trop2, QualitativeTest) and not trop2.codes.exact and "trop2" in trop2.codes.names


def test_single_target_arm_is_exactly_one_antigen() -> None:
    (arm,) = [a for a in TRIAL.arms if a.group == "single-target"]
    assert [c.link_id for c in arm.criteria] == ["arm-single"]
    low, high = _panel("arm-single.1"), _panel("arm-single.2")
    assert (low.code, low.threshold) == (CombinationCode.AT_LEAST, 1)
    assert (high.code, high.threshold) == (CombinationCode.AT_MOST, 1)


def test_dual_target_arm_is_two_antigens_or_investigator_judgement() -> None:
    (arm,) = [a for a in TRIAL.arms if a.group == "dual-target"]
    rule = arm.criteria[0].rule
    assert isinstance(rule, Combination) and rule.code is CombinationCode.ANY_OF
    two = _panel("arm-dual.1")
    assert (two.code, two.threshold) == (CombinationCode.AT_LEAST, 2)
    # Not a screening child: inside an OR it would be skipped and a one-antigen patient read ineligible for the arm.
    assert is_not_computable(IDS["arm-dual.2"])


def test_arms_refer_to_comparison_groups() -> None:
    groups = {g["linkId"] for g in DOC["research_study"]["comparisonGroup"]}
    assert {a.group for a in TRIAL.arms} == groups == {"single-target", "dual-target"}


def test_age_ecog_organ_function() -> None:
    age = IDS["inc-1"].rule
    assert isinstance(age, AgeRule) and (age.min_years, age.max_years) == (18, 75)
    ecog = IDS["inc-5"].rule
    assert isinstance(ecog, ObservationRule) and ecog.comparator is Comparator.LE and ecog.value == 1
    assert is_not_computable(IDS["inc-6"])


def test_screening_confirmations() -> None:
    for link_id in ("inc-3", "inc-7", "inc-8.2", "inc-9", "exc-6.3", "exc-9"):
        assert is_screening(IDS[link_id]), link_id


def test_washouts() -> None:
    steroids = IDS["exc-5.1"].rule
    assert isinstance(steroids, CorticosteroidDoseRule) and steroids.prednisone_mg_per_day == 10
    assert steroids.comparator is Comparator.GT
    for link_id, days in (("exc-6.1", 92), ("exc-6.2", 92), ("exc-7.1", 183)):
        within = getattr(IDS[link_id].rule, "within", None)
        assert within is not None and within.days == days, link_id


def test_research_study() -> None:
    study = validate_research_study(DOC)
    assert study.phase.coding[0].code == "phase-1-phase-2"
    keywords = ["allogeneic NK cells", "solid tumor", "CAR-NK", "mesothelin", "tumor"]
    assert [k.text for k in study.keyword] == keywords
    assert study.region[0].coding[0].code == "CN"
    (dlt,) = study.outcomeMeasure
    assert "28 days" in dlt.description and dlt.type[0].coding[0].code == "primary"
    assert not study.identifier  # the source has no registry number


def _car_t_infusion_on(day: str) -> dict[str, Any]:
    """A woman with a coded gastric cancer and one completed CAR-T cell infusion on `day`."""
    subject = {"reference": "Patient/p"}
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1970-05-01"}},
            {
                "resource": {
                    "resourceType": "Procedure",
                    "id": "pr1",
                    "status": "completed",
                    "subject": subject,
                    "code": {"text": "CAR-T cell infusion"},
                    "performedDateTime": day,
                }
            },
        ],
    }


@pytest.mark.parametrize(("day", "within"), [("2026-09-03", True), ("2026-09-02", True), ("2026-09-01", False)])
def test_three_months_reaches_back_three_calendar_months(day: str, within: bool) -> None:
    """Fourth review F18: on 2026-12-03, 3 calendar months reach back to 2026-09-03 (91 days); 92 days cover
    every such span, a day or two more in short-month spans (an exclusion then errs towards excluding)."""
    catalog = load_catalog(REPO / "mappings")
    on = dt.date(2026, 12, 3)
    evaluation = evaluate_request(_car_t_infusion_on(day), [catalog.trials["car-nk-solid-tumor-platform"]], None, on)
    result = {r.criterion.link_id: r for top in evaluation.results[0].all_results() for r in top.walk()}["exc-6.2"]
    assert result.result is (Result.MET if within else Result.NOT_MET), result.reason

"""Issue 11, fourth round: named conditions, therapy classes and other malignancies as oncology
registries phrase them, with the near misses that must stay text (a qualifier the record cannot
decide, a grade, an exception), on real sentence shapes from fixtures/external/ctgov/v2.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.importer.structurer import structure


def rule_of(text: str, exclusion: bool = True, study: tuple[str, ...] | None = None) -> dict[str, Any]:
    result = structure(text, exclusion, study_cancer=study)
    assert result.rule is not None, result.reason
    return result.rule


def condition(rule: dict[str, Any]) -> dict[str, Any]:
    assert set(rule) == {"condition"}, rule
    body: dict[str, Any] = rule["condition"]
    return body


# --- named conditions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "history", "within"),
    [
        ("Phenylketonuria.", "icd10cm:E70.0", False, None),  # NCT05883007 exc-11
        ("Hereditary fructose intolerance.", "icd10cm:E74.12", False, None),  # NCT05883007 exc-12
        ("Requires the use of home oxygen.", "icd10cm:Z99.81", False, None),  # NCT06411691 exc-8
        ("Portal vein thrombosis", "icd10cm:I81", False, None),
        ("History of retinal vein occlusion", "icd10cm:H34.81", True, None),
        ("History of hepatic encephalopathy within the past 12 months", "icd10cm:K76.82", True, 365),
        ("Known myasthenia gravis", "icd10cm:G70.0", False, None),
        ("Patients with a cardiac pacemaker", "icd10cm:Z95.0", False, None),
    ],
)
def test_a_named_condition_alone_is_the_condition(text: str, code: str, history: bool, within: int | None) -> None:
    body = condition(rule_of(text))
    assert code in body["codes"]
    assert body.get("history", False) is history
    assert body.get("within_days") == within


def test_named_conditions_beside_other_findings_are_alternatives() -> None:
    # NCT05883644 exc-12: both ever recorded
    rule = rule_of("History of previous, or current, brain metastases or spinal cord compression")
    keys = {child["key"]: child for child in rule["any_of"]}
    assert keys["cord-compression"]["condition"]["codes"] == ["icd10cm:G95.2"]
    assert keys["cord-compression"]["condition"]["history"] is True
    assert "rest" not in keys
    # NCT05883644 exc-9: the medication part is an unknown alternative, never dropped
    rule = rule_of("History of hepatic encephalopathy within the past 12 months or requirement for medications "
                   "to prevent or control encephalopathy")  # fmt: skip
    assert [child["key"] for child in rule["any_of"]] == ["hepatic-encephalopathy", "rest"]


@pytest.mark.parametrize(
    "text",
    [
        "Symptomatic spinal cord compression.",  # NCT05786924 exc-9: symptomatic is not in the record
        "Evidence of acute main trunk portal vein thrombosis",  # NCT05883644 exc-11: the trunk, acute
        "Uncontrolled myasthenia gravis",
        "Clinically significant retinal vein occlusion",
        "Spinal cord compression due to metastatic disease",  # the cause is not in the record
        "Retinal vein occlusion not treated with anti-VEGF therapy",
    ],
)
def test_a_qualified_named_condition_stays_text(text: str) -> None:
    assert structure(text, exclusion=True).rule is None


def test_a_named_condition_is_no_inclusion() -> None:
    # "Patients with hepatic encephalopathy are eligible" would need the opposite reading: not encoded.
    assert structure("Phenylketonuria.", exclusion=False).rule is None

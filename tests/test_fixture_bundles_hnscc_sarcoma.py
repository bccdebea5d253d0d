"""What tests/test_fixture_bundles.py does not check for the HNSCC (NCT06494995) and sarcoma
(NCT05621668) fixtures: every bundle is dated on or before the evaluation date, each trial has
eligible, ineligible and undetermined cases in both R4 and R5, and every child named under
`decided_by` sits inside a criterion the scenario names, with a met / not-met result.

Inputs only: nothing here runs the engine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.mapping_helpers import ROOT, by_id, load

TRIALS = ("NCT06494995", "NCT05621668")
DATE_KEYS = "effective|occurrence|occurence|onset|abatement|performed|authoredOn|start|end"
DATE = re.compile(rf'"(?:{DATE_KEYS})\w*"\s*:\s*"(\d{{4}}-\d{{2}}-\d{{2}})')


def _listing(trial: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "fixtures" / trial / "scenarios.yaml").read_text(encoding="utf-8"))
    return loaded


SCENARIOS = [(trial, scenario) for trial in TRIALS for scenario in _listing(trial)["scenarios"]]


def _name(value: Any) -> str:
    return value["file"] if isinstance(value, dict) else str(value)


@pytest.mark.parametrize("trial", TRIALS)
def test_each_outcome_and_release_is_covered(trial: str) -> None:
    listing = _listing(trial)
    assert listing["trial"] == trial
    assert {s["verdict"] for s in listing["scenarios"]} == {"eligible", "ineligible", "undetermined"}
    assert {s["fhir"] for s in listing["scenarios"]} == {"R4", "R5"}


@pytest.mark.parametrize(("trial", "scenario"), SCENARIOS, ids=_name)
def test_bundle_is_dated_on_or_before_the_evaluation_date(trial: str, scenario: dict[str, Any]) -> None:
    dates = DATE.findall((ROOT / "fixtures" / trial / scenario["file"]).read_text(encoding="utf-8"))
    assert dates and max(dates) <= _listing(trial)["evaluation_date"]


@pytest.mark.parametrize(("trial", "scenario"), SCENARIOS, ids=_name)
def test_deciding_children_sit_under_a_named_criterion(trial: str, scenario: dict[str, Any]) -> None:
    ids = by_id(load(trial)[1])
    named = [ids[i] for i in scenario.get("not_met", []) + scenario.get("met", []) + scenario.get("unknown", [])]
    for child, result in scenario.get("decided_by", {}).items():
        assert result in ("met", "not-met"), child
        assert any(child in {c.link_id for c in parent.walk()} for parent in named), child
    if scenario["verdict"] == "eligible":
        top = {c.link_id: c for c in load(trial)[1].criteria}
        assert not any(i in top and top[i].exclude for i in scenario.get("met", []))
        assert not any(i in top and not top[i].exclude for i in scenario.get("not_met", []))

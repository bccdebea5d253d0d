"""Patient fixture bundles of NCT06494995 (HNSCC) and NCT05621668 (sarcoma): well-formed inputs
whose expectations name real criteria.

Inputs only: nothing here runs the engine. Each bundle is a JSON Bundle of FHIR resources valid in
the release scenarios.yaml states (R4 through the R4B models, R5), dated on or before the
evaluation date, listed exactly once; every linkId and comparison group an expectation names exists
in the trial's mapping, and a deciding child sits under the criterion it decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from service.fhir.models import validate
from tests.mapping_helpers import ROOT, by_id, load

TRIALS = ("NCT06494995", "NCT05621668")
DATE = re.compile(
    r'"(?:effective|occurrence|occurence|onset|abatement|performed|authoredOn|start|end)\w*"\s*:\s*"(\d{4}-\d{2}-\d{2})'
)


def _scenarios() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for trial in TRIALS:
        listing = yaml.safe_load((ROOT / "fixtures" / trial / "scenarios.yaml").read_text(encoding="utf-8"))
        out += [(trial, scenario) for scenario in listing["scenarios"]]
    return out


SCENARIOS = _scenarios()


def _name(value: Any) -> str:
    return value["file"] if isinstance(value, dict) else str(value)


@pytest.mark.parametrize("trial", TRIALS)
def test_every_bundle_is_listed_once_with_each_kind_of_outcome(trial: str) -> None:
    folder = ROOT / "fixtures" / trial
    listing = yaml.safe_load((folder / "scenarios.yaml").read_text(encoding="utf-8"))
    assert listing["trial"] == trial and listing["evaluation_date"] == "2026-03-01"
    listed = [s["file"] for s in listing["scenarios"]]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in folder.glob("*.json"))
    assert {s["verdict"] for s in listing["scenarios"]} == {"eligible", "ineligible", "undetermined"}
    assert {s["fhir"] for s in listing["scenarios"]} == {"R4", "R5"}


@pytest.mark.parametrize(("trial", "scenario"), SCENARIOS, ids=_name)
def test_bundle_is_valid_fhir_of_its_release_and_dated_before_the_evaluation(
    trial: str, scenario: dict[str, Any]
) -> None:
    text = (ROOT / "fixtures" / trial / scenario["file"]).read_text(encoding="utf-8")
    bundle = json.loads(text)
    release = scenario["fhir"]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] in ("collection", "transaction")
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert [r["resourceType"] for r in resources].count("Patient") == 1
    assert all(entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}" for entry in bundle["entry"])
    for resource in resources:
        validate(resource, release)
    validate(bundle, release)
    if release == "R4":
        assert "occurenceDateTime" not in text and '"medication": {' not in text
    else:
        assert "medicationCodeableConcept" not in text and "performedDateTime" not in text
    dates = DATE.findall(text)
    assert dates and max(dates) <= "2026-03-01"


@pytest.mark.parametrize(("trial", "scenario"), SCENARIOS, ids=_name)
def test_expectations_name_real_criteria(trial: str, scenario: dict[str, Any]) -> None:
    doc, criteria = load(trial)
    ids = by_id(criteria)
    top = {c.link_id: c for c in criteria.criteria}
    assert scenario.get("why")
    assert all(not top[i].exclude for i in scenario.get("not_met", []))
    assert all(top[i].exclude for i in scenario.get("met", []))
    assert set(scenario.get("unknown", [])) <= set(ids)
    decided = scenario.get("decided_by", {})
    named_top = [ids[i] for i in scenario.get("not_met", []) + scenario.get("met", []) + scenario.get("unknown", [])]
    for child, result in decided.items():
        assert result in ("met", "not-met")
        assert any(child in {c.link_id for c in parent.walk()} for parent in named_top), child
    if scenario["verdict"] == "ineligible":
        assert scenario.get("not_met") or scenario.get("met")
    if scenario["verdict"] == "undetermined":
        assert scenario.get("unknown")
    if scenario["verdict"] == "eligible":
        assert not (scenario.get("not_met") or scenario.get("met") or scenario.get("unknown"))
    groups = {g["linkId"] for g in doc["research_study"].get("comparisonGroup", [])}
    assert set(scenario.get("arms", {})) <= groups
    assert set(scenario.get("arms", {}).values()) <= {"met", "not-met", "unknown"}

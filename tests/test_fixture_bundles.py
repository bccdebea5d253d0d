"""Patient fixture bundles (fixtures/<trial>/): well-formed inputs whose expectations name real criteria.

Inputs only: these tests never run the engine. They check what a fixture author can get wrong: the
file is a JSON Bundle of valid FHIR resources of the release scenarios.yaml states (R4 via the R4B
models, R5), every bundle is listed once, and every expected linkId / comparison group exists in the
trial's mapping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.fhir.models import validate
from tests.mapping_helpers import ROOT, all_ids, load

FIXTURES = ROOT / "fixtures"
LISTINGS = sorted(FIXTURES.glob("*/scenarios.yaml"))
VERDICTS = {"eligible", "ineligible", "undetermined"}


def _scenarios() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for listing in LISTINGS:
        for scenario in yaml.safe_load(listing.read_text(encoding="utf-8"))["scenarios"]:
            out.append((listing.parent, scenario))
    return out


SCENARIOS = _scenarios()


def test_there_are_fixtures_for_the_mapped_trials() -> None:
    assert {p.parent.name for p in LISTINGS} >= {
        "NCT06284590",
        "NCT05978102",
        "car-nk-solid-tumor-platform",
        "NCT06494995",
        "NCT05621668",
    }


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda p: p.parent.name)
def test_every_bundle_is_listed_once(listing: Path) -> None:
    spec = yaml.safe_load(listing.read_text(encoding="utf-8"))
    listed = [s["file"] for s in spec["scenarios"]]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in listing.parent.glob("*.json"))
    assert spec["evaluation_date"] == "2026-03-01"


@pytest.mark.parametrize(("folder", "scenario"), SCENARIOS, ids=lambda v: v["file"] if isinstance(v, dict) else v.name)
def test_bundle_is_valid_fhir_of_its_release(folder: Path, scenario: dict[str, Any]) -> None:
    bundle = json.loads((folder / scenario["file"]).read_text(encoding="utf-8"))
    release = scenario["fhir"]
    assert release in ("R4", "R5")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] in ("collection", "transaction")
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert [r["resourceType"] for r in resources].count("Patient") == 1
    assert all(entry["fullUrl"].startswith("urn:uuid:") for entry in bundle["entry"])
    for resource in resources:
        validate(resource, release)
    validate(bundle, release)
    # the release is real: R5-only / R4-only element names appear where the file claims them
    text = json.dumps([r for r in resources if r["resourceType"] != "Immunization"])  # occurrence[x] in both
    if release == "R4":
        assert "occurenceDateTime" not in text and '"occurrenceDateTime"' not in text
    else:
        assert "medicationCodeableConcept" not in text and "performedDateTime" not in text


@pytest.mark.parametrize(("folder", "scenario"), SCENARIOS, ids=lambda v: v["file"] if isinstance(v, dict) else v.name)
def test_expectations_name_real_criteria(folder: Path, scenario: dict[str, Any]) -> None:
    doc, trial = load(folder.name)
    ids = set(all_ids(trial))
    assert scenario["verdict"] in VERDICTS
    assert scenario.get("why"), "each scenario says why in one line"
    named = scenario.get("not_met", []) + scenario.get("met", []) + scenario.get("unknown", [])
    assert set(named) <= ids
    # met / not_met name any criterion (tests/test_scenario_coverage.py); the top-level ones that decide the
    # verdict must agree with it: an inclusion not met or an exclusion met is exactly what makes it ineligible.
    top = {c.link_id: c for c in trial.criteria}
    deciding = [i for i in scenario.get("not_met", []) if i in top and not top[i].exclude] + [
        i for i in scenario.get("met", []) if i in top and top[i].exclude
    ]
    assert bool(deciding) == (scenario["verdict"] == "ineligible"), deciding
    if scenario["verdict"] == "undetermined":
        assert scenario.get("unknown")
    groups = {g["linkId"] for g in doc["research_study"].get("comparisonGroup", [])}
    assert set(scenario.get("arms", {})) <= groups
    assert set(scenario.get("arms", {}).values()) <= {"met", "not-met", "unknown"}

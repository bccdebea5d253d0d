"""Every patient fixture against its trial: the verdict and the decisive criteria written from the
protocol in fixtures/<trial>/scenarios.yaml (expectations never taken from engine output)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from service.catalog import Catalog, load_catalog
from service.domain.criteria import Result
from service.domain.evaluate import CriterionResult
from service.eligibility import evaluate_request

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


def _scenarios() -> list[Any]:
    cases = []
    for manifest in sorted(FIXTURES.glob("*/scenarios.yaml")):
        spec = yaml.safe_load(manifest.read_text())
        for scenario in spec["scenarios"]:
            cases.append(
                pytest.param(
                    spec["trial"],
                    spec["evaluation_date"],
                    manifest.parent / scenario["file"],
                    scenario,
                    id=f"{spec['trial']}/{scenario['file']}",
                )
            )
    return cases


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "mappings")


def _by_link_id(results: tuple[CriterionResult, ...]) -> dict[str, CriterionResult]:
    return {r.criterion.link_id: r for top in results for r in top.walk()}


@pytest.mark.parametrize(("trial_id", "on", "path", "scenario"), _scenarios())
def test_fixture_scenario(catalog: Catalog, trial_id: str, on: str, path: Path, scenario: dict[str, Any]) -> None:
    document = orjson.loads(path.read_bytes())
    evaluations = evaluate_request(document, [catalog.trials[trial_id]], None, dt.date.fromisoformat(str(on)))
    assert evaluations.bundle.release == scenario.get("fhir", evaluations.bundle.release)
    evaluation = evaluations.results[0]
    results = _by_link_id(evaluation.all_results())
    why = scenario.get("why", "")
    assert evaluation.verdict.value == scenario["verdict"], why
    for key, expected in (("not_met", Result.NOT_MET), ("met", Result.MET), ("unknown", Result.UNKNOWN)):
        for link_id in scenario.get(key, []):
            found = results[link_id]
            assert found.result is expected, f"{link_id}: {found.reason} — expected {expected.value}: {why}"
            assert found.reason, link_id
    requested = {code for requirement in evaluation.data_requirements() for _, code in requirement.codes}
    for code in scenario.get("requires", []):
        assert str(code) in requested, f"no dataRequirement asks for {code}: {why}"
    arm_verdicts = {"met": "eligible", "not-met": "ineligible", "unknown": "undetermined"}
    for group, result in (scenario.get("arms") or {}).items():
        arm = next(a for a in evaluation.arms if a.group == group)
        assert arm.verdict.value == arm_verdicts[result], f"arm {group}: {why}"

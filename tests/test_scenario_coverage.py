"""Every computable leaf criterion of every trial in mappings/ is decisive in the scenario fixtures:
evaluated at its manifest's date, some scenario patient of fixtures/<trial>/scenarios.yaml has it
`met` and some has it `not-met` (by linkId; test_fixture_scenarios checks what each scenario asserts).
A new criterion without patients that decide it both ways fails here (DESIGN.md §2, issue 10)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import orjson
import pytest
import yaml

from service.catalog import load_catalog
from service.domain.criteria import Combination, Criterion, NotComputable, Result, ScreeningConfirmation, TrialCriteria
from service.eligibility import evaluate_request

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
CATALOG = load_catalog(REPO / "mappings")


def computable_leaves(trial: TrialCriteria) -> list[Criterion]:
    """Leaves decided from data: not combinations, screening confirmations or not_computable ones."""
    every = [c for c in trial.walk()] + [c for arm in trial.arms for top in arm.criteria for c in top.walk()]
    return [c for c in every if not isinstance(c.rule, Combination | ScreeningConfirmation | NotComputable)]


@cache
def decided(trial_id: str) -> tuple[set[str], set[str]]:
    """(linkIds met for some scenario patient, linkIds not met for some scenario patient)."""
    manifest = FIXTURES / trial_id / "scenarios.yaml"
    if not manifest.is_file():
        return set(), set()
    spec = yaml.safe_load(manifest.read_text())
    on = dt.date.fromisoformat(str(spec["evaluation_date"]))
    met: set[str] = set()
    not_met: set[str] = set()
    for scenario in spec["scenarios"]:
        document = orjson.loads((manifest.parent / scenario["file"]).read_bytes())
        evaluation = evaluate_request(document, [CATALOG.trials[trial_id]], None, on).results[0]
        for top in evaluation.all_results():
            for result in top.walk():
                if result.result is Result.MET:
                    met.add(result.criterion.link_id)
                elif result.result is Result.NOT_MET:
                    not_met.add(result.criterion.link_id)
    return met, not_met


@pytest.mark.parametrize("trial_id", sorted(CATALOG.trials))
def test_every_computable_leaf_is_decisive_both_ways(trial_id: str) -> None:
    met, not_met = decided(trial_id)
    leaves = computable_leaves(CATALOG.trials[trial_id].criteria)
    assert leaves, f"{trial_id} has no computable criterion"
    never_met = [c.link_id for c in leaves if c.link_id not in met]
    never_not_met = [c.link_id for c in leaves if c.link_id not in not_met]
    assert not never_met and not never_not_met, (
        f"{trial_id}: {len(leaves)} computable leaves; met for no scenario patient: {never_met}; "
        f"not met for none: {never_not_met}"
    )


def test_coverage_names_only_real_criteria() -> None:
    """A scenario that names a linkId the mapping does not have is a typo that would hide a gap."""
    for trial_id, trial in CATALOG.trials.items():
        known = {c.link_id for c in trial.criteria.walk()} | {
            c.link_id for arm in trial.criteria.arms for top in arm.criteria for c in top.walk()
        }
        manifest = FIXTURES / trial_id / "scenarios.yaml"
        if not manifest.is_file():
            continue
        for scenario in yaml.safe_load(manifest.read_text())["scenarios"]:
            for key in ("met", "not_met", "unknown"):
                unknown_ids = set(scenario.get(key, [])) - known
                assert not unknown_ids, f"{trial_id}/{scenario['file']} {key}: no such criterion {sorted(unknown_ids)}"

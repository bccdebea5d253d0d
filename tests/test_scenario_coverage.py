"""Every computable leaf criterion of every trial in mappings/ is decisive in the scenario fixtures:
some scenario of fixtures/<trial>/scenarios.yaml asserts it `met` and some scenario asserts it
`not_met` (by linkId; test_fixture_scenarios checks the assertions against the engine). A new
criterion without scenarios that prove it both ways fails here (DESIGN.md §2, issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.catalog import load_catalog
from service.domain.criteria import Combination, Criterion, NotComputable, ScreeningConfirmation, TrialCriteria

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
CATALOG = load_catalog(REPO / "mappings")

# Trials whose scenarios come from another branch; the coordinator removes the entry on merge.
PENDING: dict[str, str] = {"NCT06494995": "scenarios come from branch i10-hnscc"}


def computable_leaves(trial: TrialCriteria) -> list[Criterion]:
    """Leaves decided from data: not combinations, screening confirmations or not_computable ones."""
    every = [c for c in trial.walk()] + [c for arm in trial.arms for top in arm.criteria for c in top.walk()]
    return [c for c in every if not isinstance(c.rule, Combination | ScreeningConfirmation | NotComputable)]


def asserted(trial_id: str) -> tuple[set[str], set[str]]:
    """(linkIds some scenario asserts met, linkIds some scenario asserts not-met)."""
    manifest = FIXTURES / trial_id / "scenarios.yaml"
    if not manifest.is_file():
        return set(), set()
    met: set[str] = set()
    not_met: set[str] = set()
    for scenario in yaml.safe_load(manifest.read_text())["scenarios"]:
        met.update(scenario.get("met", []))
        not_met.update(scenario.get("not_met", []))
    return met, not_met


@pytest.mark.parametrize("trial_id", sorted(CATALOG.trials))
def test_every_computable_leaf_is_decisive_both_ways(trial_id: str) -> None:
    if trial_id in PENDING:
        pytest.skip(PENDING[trial_id])
    met, not_met = asserted(trial_id)
    leaves = computable_leaves(CATALOG.trials[trial_id].criteria)
    assert leaves, f"{trial_id} has no computable criterion"
    never_met = [c.link_id for c in leaves if c.link_id not in met]
    never_not_met = [c.link_id for c in leaves if c.link_id not in not_met]
    assert not never_met and not never_not_met, (
        f"{trial_id}: {len(leaves)} computable leaves; no scenario asserts met: {never_met}; "
        f"none asserts not_met: {never_not_met}"
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

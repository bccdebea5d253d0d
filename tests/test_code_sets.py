"""Every class-coded or name-matched criterion is tested with named examples (tests/code_set_examples.yaml):
class members and texts that must match, and those that must not (the class members that do not mean
the criterion, near-miss texts). A criterion added without examples fails here (issue 10)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.catalog import load_catalog
from service.domain.criteria import CodeSet, ConditionRule, Criterion, TrialCriteria
from tests.code_sets import code_set_problems, needs_examples, record_matches

REPO = Path(__file__).resolve().parents[1]
EXAMPLES: dict[str, dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "code_set_examples.yaml").read_text())
CATALOG = load_catalog(REPO / "mappings")

def _code_set(criterion: Criterion) -> CodeSet | None:
    """The records the criterion reads: its codes less its exceptions (a condition keeps them on the rule)."""
    rule = criterion.rule
    if isinstance(rule, ConditionRule):
        return replace(rule.codes, excluded=rule.except_codes) if rule.except_codes else rule.codes
    codes = getattr(rule, "codes", None) or getattr(rule, "therapy", None)
    return codes if isinstance(codes, CodeSet) else None


def _leaves(trial: TrialCriteria) -> list[Criterion]:
    return list(trial.walk()) + [c for arm in trial.arms for top in arm.criteria for c in top.walk()]


@pytest.mark.parametrize("trial_id", sorted(CATALOG.trials))
def test_every_class_or_names_list_has_examples(trial_id: str) -> None:
    trial = CATALOG.trials[trial_id].criteria
    examples = EXAMPLES.get(trial_id, {})
    ids = {c.link_id: c for c in _leaves(trial)}
    assert set(examples) <= set(ids), f"examples for unknown criteria: {sorted(set(examples) - set(ids))}"
    covered = [_code_set(ids[link_id]) for link_id in examples]
    missing = [
        c.link_id
        for c in _leaves(trial)
        if (codes := _code_set(c)) is not None and needs_examples(codes) and codes not in covered
    ]
    assert not missing, f"{trial_id}: code sets without examples: {missing}"


CASES = [
    pytest.param(trial_id, link_id, spec, id=f"{trial_id}/{link_id}")
    for trial_id, by_id in EXAMPLES.items()
    for link_id, spec in by_id.items()
]


@pytest.mark.parametrize(("trial_id", "link_id", "spec"), CASES)
def test_code_set_matches_what_it_means_and_nothing_else(trial_id: str, link_id: str, spec: dict[str, Any]) -> None:
    criterion = next(c for c in _leaves(CATALOG.trials[trial_id].criteria) if c.link_id == link_id)
    codes = _code_set(criterion)
    assert codes is not None, f"{link_id} has no code set"
    assert code_set_problems(codes, spec["match"], spec["no_match"]) == []


def test_the_helper_reports_what_a_code_set_gets_wrong() -> None:
    """The helper itself: a class without its exception, a bare word, examples that test nothing."""
    from service.mapping import _codes

    car_t = _codes({"codes": ["atc:L01XL"], "names": ["allogeneic"]}, "t")
    problems = code_set_problems(
        car_t, ["atc:L01XL03"], ["atc:L01XL02", "text: Transfusion of allogeneic red blood cells"]
    )
    assert problems == [
        "should not match 'atc:L01XL02'",
        "should not match 'text: Transfusion of allogeneic red blood cells'",
        "a names list needs texts that must match and near misses that must not",
    ]
    fixed = _codes({"codes": ["atc:L01XL"], "except": ["atc:L01XL02"]}, "t", with_except=True)
    assert not record_matches(fixed, "atc:L01XL02") and record_matches(fixed, "atc:L01XL04")


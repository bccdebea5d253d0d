"""Small accessors for the per-trial mapping tests whose ids keep the source's own numbering
(gaps such as a missing exclusion 8 stay gaps), complementing tests/mapping_helpers.py."""

from __future__ import annotations

from typing import TypeVar

from service.domain.criteria import Combination, CombinationCode, Criterion, TrialCriteria
from tests.mapping_helpers import all_ids

R = TypeVar("R")


def parts(ids: dict[str, Criterion], link_id: str) -> tuple[CombinationCode, list[Criterion]]:
    """The combination code and children of a compound criterion."""
    rule = ids[link_id].rule
    assert isinstance(rule, Combination), f"{link_id} is not a combination"
    return rule.code, list(rule.children)


def rule_of(ids: dict[str, Criterion], link_id: str, kind: type[R]) -> R:
    rule = ids[link_id].rule
    assert isinstance(rule, kind), f"{link_id} is {type(rule).__name__}, not {kind.__name__}"
    return rule


def source_order_problems(trial: TrialCriteria, inclusions: list[str], exclusions: list[str]) -> list[str]:
    """Top-level criteria are exactly the source's items, inclusions first, in source order, and
    every id (criteria and arms) is unique."""
    problems: list[str] = []
    got = [c.link_id for c in trial.criteria]
    if got != inclusions + exclusions:
        problems.append(f"top-level ids {got}")
    flags = [c.exclude for c in trial.criteria]
    if flags != [False] * len(inclusions) + [True] * len(exclusions):
        problems.append(f"exclude flags {flags}")
    ids = all_ids(trial)
    if len(ids) != len(set(ids)):
        problems.append("duplicate ids")
    return problems

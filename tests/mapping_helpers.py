"""Shared checks for the per-trial mapping tests: load a mapping file, walk its criteria, and read
the seed it was written from (../shared/seeds, beside the repository as in CI; the comparisons with the
seed skip, saying so, where that folder is absent, as in a fresh clone)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir.resources.researchstudy import ResearchStudy

from service.domain.criteria import (
    Combination,
    Criterion,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ScreeningConfirmation,
    TestRule,
    TrialCriteria,
)
from service.mapping import parse_trial_criteria
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]


SEEDS = SHARED / "seeds"


def load(study_id: str) -> tuple[dict[str, Any], TrialCriteria]:
    doc = yaml.safe_load((ROOT / "mappings" / f"{study_id}.yaml").read_text(encoding="utf-8"))
    return doc, parse_trial_criteria(doc, doc["id"], doc["research_study"]["title"])


SEEDS_ABSENT = "the seed source documents live in ../shared/seeds (beside the repository in CI), absent here"


def seed_text(name: str) -> str | None:
    """The seed's text, whitespace-normalised; None where ../shared/seeds is not beside the repository."""
    path = SEEDS / name
    return _norm(path.read_text(encoding="utf-8")) if path.exists() else None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def not_verbatim(trial: TrialCriteria, seed: str | None) -> list[str]:
    """Criteria whose text is not a verbatim passage of the seed (whitespace-normalised)."""
    if seed is None:
        pytest.skip(SEEDS_ABSENT)
    return [c.link_id for c in trial.walk() if _norm(c.description) not in seed]


def leaves(criterion: Criterion) -> list[Criterion]:
    return [c for c in criterion.walk() if not isinstance(c.rule, Combination)]


def by_id(trial: TrialCriteria) -> dict[str, Criterion]:
    ids = {c.link_id: c for c in trial.walk()}
    for arm in trial.arms:
        for crit in arm.criteria:
            ids.update({c.link_id: c for c in crit.walk()})
    return ids


def all_ids(trial: TrialCriteria) -> list[str]:
    out = [c.link_id for c in trial.walk()]
    for arm in trial.arms:
        for crit in arm.criteria:
            out += [c.link_id for c in crit.walk()]
    return out


def is_screening(criterion: Criterion) -> bool:
    return isinstance(criterion.rule, ScreeningConfirmation)


def is_not_computable(criterion: Criterion) -> bool:
    return isinstance(criterion.rule, NotComputable)


def coded_rule_problems(trial: TrialCriteria) -> list[str]:
    """Every data rule carries what the evaluator needs: codes, a UCUM unit or ULN multiple, and a
    window for observations; a result for tests."""
    problems: list[str] = []
    for c in trial.walk():
        rule = c.rule
        codes = getattr(rule, "codes", None) or getattr(rule, "therapy", None)
        if codes is not None and not codes:
            problems.append(f"{c.link_id}: no codes")
        if isinstance(rule, ObservationRule):
            if rule.unit is None and rule.relative_to is None:
                problems.append(f"{c.link_id}: no unit")
            if not rule.codes.exact:
                problems.append(f"{c.link_id}: observation without LOINC code")
        if isinstance(rule, TestRule) and rule.expect not in ("positive", "negative"):
            problems.append(f"{c.link_id}: test result")
        if isinstance(rule, MedicationRule) and not (rule.codes.exact or rule.codes.prefixes):
            problems.append(f"{c.link_id}: medication without RxNorm/ATC codes")
    return problems


def validate_research_study(doc: dict[str, Any]) -> ResearchStudy:
    body = dict(doc["research_study"])
    assert "id" not in body and "meta" not in body, "the catalog fills id and meta"
    assert "eligibility" not in body.get("recruitment", {}), "the catalog fills recruitment.eligibility"
    return ResearchStudy.model_validate(body)


def structure_problems(trial: TrialCriteria, inclusions: int, exclusions: int) -> list[str]:
    """Every source criterion at the top level, inclusions first, numbered in source order, ids
    unique across criteria and arms, data rules fully coded (texts against the seed: test_mapping_seeds)."""
    problems: list[str] = []
    expected = [f"inc-{n}" for n in range(1, inclusions + 1)] + [f"exc-{n}" for n in range(1, exclusions + 1)]
    got = [c.link_id for c in trial.criteria]
    if got != expected:
        problems.append(f"top-level ids {got} != {expected}")
    flags = [c.exclude for c in trial.criteria]
    if flags != [False] * inclusions + [True] * exclusions:
        problems.append(f"exclude flags {flags}")
    ids = all_ids(trial)
    if len(ids) != len(set(ids)):
        problems.append("duplicate ids")
    return problems + coded_rule_problems(trial)


@dataclass(frozen=True)
class Mapped:
    """One mapping file, parsed, with its criteria by id and the seed text it was written from."""

    doc: dict[str, Any]
    trial: TrialCriteria
    seed: str | None
    ids: dict[str, Criterion] = field(default_factory=dict)

    @classmethod
    def load(cls, study_id: str, seed_name: str) -> Mapped:
        doc, trial = load(study_id)
        return cls(doc, trial, seed_text(seed_name), by_id(trial))

    def structure_problems(self, inclusions: int, exclusions: int) -> list[str]:
        return structure_problems(self.trial, inclusions, exclusions)

    def leaf_rules(self, link_id: str) -> list[object]:
        return [c.rule for c in leaves(self.ids[link_id])]


def walk_characteristics(characteristics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Published EvidenceVariable characteristics, nested ones after their parent (protocol order)."""
    out = []
    for c in characteristics:
        out.append(c)
        out += walk_characteristics(c.get("definitionByCombination", {}).get("characteristic", []))
    return out

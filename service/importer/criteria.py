"""eligibilityModule → mapping criteria (mappings/README.md), with a count of what was structured.

Rule: one mapping criterion per written criterion, in protocol order, its wording verbatim as
`text`; a rule key only where the structurer encoded it (then `machine_derived: true`), otherwise
`not_computable` with the reason. Sub-items become combination children only when the heading
makes the logic plain; otherwise the whole list stays one text criterion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.importer.rules.common import CONDITIONAL, NUMERIC_THRESHOLD, SCREENING, Structured, windows_in
from service.importer.rules.oncology import study_cancer_codes
from service.importer.splitter import Item, split_criteria
from service.importer.structurer import structure

# Headings whose sub-items are alternatives (inclusion) or all required (exclusion).
ANY_SIGNAL = re.compile(
    r"\b(one|any|either|at least one|at least 1) of the following\b|\beither\b|\bone of\b|"
    r"following (histolog|tumou?r types|cancer types|diagnos|condition)",
    re.IGNORECASE,
)
ALL_SIGNAL = re.compile(r"\ball of the following\b|\bboth\b", re.IGNORECASE)
AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(year|month|week|day|hour|minute)s?\s*$", re.IGNORECASE)
YEARS_PER = {
    "year": 1.0,
    "month": 1 / 12,
    "week": 7 / 365.25,
    "day": 1 / 365.25,
    "hour": 1 / 8766,
    "minute": 1 / 525960,
}
NO_CRITERIA = "No eligibility criteria are stated on ClinicalTrials.gov for this study."
# An item that states no criterion ("Nil", "None", "N/A", "-", "Not applicable").
NONE_STATED = re.compile(r"^\W*(?:nil|none|n/?a|not applicable|no(?:ne)? specified|-+)\W*$", re.IGNORECASE)


KINDS = ("structured", "partly", "screening", "text")


@dataclass
class Counts:
    """What became of the written criteria (sub-items of a list count one by one); the registry's
    structured age/sex fields are counted apart (`registry`), they are not criteria text."""

    found: int = 0
    structured: int = 0  # fully encoded
    partly: int = 0  # encoded in part, the rest a not-computable child
    screening: int = 0
    text: int = 0
    registry: int = 0
    exclusions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("found", *KINDS), 0))
    no_criteria_stated: bool = False

    def add(self, kind: str, exclusion: bool = False) -> None:
        self.found += 1
        setattr(self, kind, getattr(self, kind) + 1)
        if exclusion:
            self.exclusions["found"] += 1
            self.exclusions[kind] += 1

    def merge(self, other: Counts) -> None:
        for kind in ("found", *KINDS, "registry"):
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
        for kind, n in other.exclusions.items():
            self.exclusions[kind] += n


def eligibility_criteria(
    module: Mapping[str, Any], conditions: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], Counts]:
    """`conditions` are the registry's conditions: the trial's own cancer, which "another malignancy"
    never means."""
    counts = Counts()
    study = study_cancer_codes([c for c in conditions if isinstance(c, str)])
    criteria: list[dict[str, Any]] = []
    age = _structured_age(module)
    if age:
        criteria.append(age)
        counts.registry += 1
    sex = module.get("sex")
    if sex in ("FEMALE", "MALE"):
        text = f"Sex: {sex.capitalize()}"
        if isinstance(module.get("genderDescription"), str) and module["genderDescription"].strip():
            text += f" ({module['genderDescription'].strip()})"
        criteria.append(
            {
                "id": "sex",
                "text": text,
                "sex": sex.lower(),
                "machine_derived": True,
                "note": "From the registry's structured sex field (ALL adds no criterion).",
            }
        )
        counts.registry += 1
    written = module.get("eligibilityCriteria")
    items = (
        [i for i in split_criteria(written).items if not NONE_STATED.match(i.text)] if isinstance(written, str) else []
    )
    for item in items:
        criteria.append(_criterion(item, counts, None, top=True, study=study))
    if not items:
        # "Inclusion Criteria: Nil": the registry's age/sex fields alone must not make every patient eligible.
        counts.no_criteria_stated = True
        criteria.append(
            {
                "id": "inc-1",
                "text": NO_CRITERIA,
                "not_computable": "the registry states no eligibility criteria: check the protocol",
            }
        )
    return criteria, counts


def _structured_age(module: Mapping[str, Any]) -> dict[str, Any] | None:
    low, high = _years(module.get("minimumAge")), _years(module.get("maximumAge"))
    if low == 0:
        low = None
    if low is None and high is None:
        return None
    parts = []
    body: dict[str, Any] = {}
    if low is not None:
        body["min"] = low
        parts.append(f"Minimum age: {module['minimumAge']}")
    if high is not None:
        body["max"] = high
        parts.append(f"Maximum age: {module['maximumAge']}")
    return {
        "id": "age",
        "text": "; ".join(parts),
        "age": body,
        "machine_derived": True,
        "note": "From the registry's structured minimumAge/maximumAge fields.",
    }


def _years(value: Any) -> float | int | None:
    if not isinstance(value, str):
        return None
    match = AGE.match(value)
    if not match:
        return None
    years = float(match.group(1)) * YEARS_PER[match.group(2).lower()]
    return int(years) if years == int(years) else round(years, 3)


def _criterion(
    item: Item,
    counts: Counts,
    context: str | None,
    top: bool,
    window: int | None = None,
    study: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    head: dict[str, Any] = {"id": item.link_id}
    if top and item.exclusion:
        head["exclude"] = True
    if item.qualifier:
        context = context or f"applies to a subgroup only ({item.qualifier[:60]})"
    if item.or_sibling and top:  # inside a list the parent's combination already reads the "or"
        context = context or "one of two alternative criteria joined by 'or'"
    if item.children:
        combination = _combination(item)
        if combination is None:
            return _collapsed(head, item, counts, "a list whose logic (exceptions, alternatives) is not encoded")
        child_context = context or (
            f"restricted by its heading ({_clip(item.text)})" if CONDITIONAL.search(item.text) else None
        )
        if SCREENING.search(item.text) and not NUMERIC_THRESHOLD.search(item.text):
            # "Women of childbearing potential must use contraception: - post-menopausal defined as ...":
            # the sub-items define who the requirement concerns; none is a criterion of its own.
            counts.add("screening", item.exclusion)
            return {**head, "text": _render(item), "screening": True, "machine_derived": True}
        # "within 21 days before randomization:" over a list of labs is the window of each item.
        stated = windows_in(item.text)
        heading_window = stated.pop() if len(stated) == 1 else window
        sub_counts = Counts()
        children = [
            _criterion(child, sub_counts, child_context, top=False, window=heading_window, study=study)
            for child in item.children
        ]
        if sub_counts.structured + sub_counts.partly == 0:
            return _collapsed(head, item, counts, "no sub-item could be encoded")
        counts.merge(sub_counts)
        return {**head, "text": item.text, combination: children, "machine_derived": True}
    result = structure(item.text, item.exclusion, context, heading_window=window, study_cancer=study)
    return {**head, **_leaf(item, result, counts)}


def _combination(item: Item) -> str | None:
    if item.alternatives or CONDITIONAL.search(item.text) and not ALL_SIGNAL.search(item.text):
        return None
    joined = [child.or_sibling for child in item.children]
    if any(joined) and not all(joined):
        return None
    if item.exclusion:
        return "all_of" if ALL_SIGNAL.search(item.text) else "any_of"
    return "any_of" if all(joined) or ANY_SIGNAL.search(item.text) else "all_of"


def _leaf(item: Item, result: Structured, counts: Counts) -> dict[str, Any]:
    text = item.text
    if result.screening:
        counts.add("screening", item.exclusion)
        return {"text": text, "screening": True, "machine_derived": True}
    if result.rule is None:
        counts.add("text", item.exclusion)
        return {"text": text, "not_computable": result.reason or "not encoded"}
    rule = _with_ids(result.rule, item.link_id, set())
    counts.add("partly" if partly_structured(rule) else "structured", item.exclusion)
    return {"text": text, **rule, "machine_derived": True}


def _with_ids(rule: dict[str, Any], link_id: str, used: set[str]) -> dict[str, Any]:
    """Give the structurer's proto-criteria ids `<parent>-<key>` (stable: derived from the wording)."""
    out: dict[str, Any] = {}
    for key, body in rule.items():
        if key not in ("all_of", "any_of"):
            out[key] = body
            continue
        children = []
        for proto in body:
            child_id = f"{link_id}-{proto['key']}"
            while child_id in used:
                child_id += "x"
            used.add(child_id)
            child_rule = {k: v for k, v in proto.items() if k not in ("key", "text")}
            child: dict[str, Any] = {"id": child_id, "text": proto["text"], **_with_ids(child_rule, child_id, used)}
            if "not_computable" not in child_rule:
                child["machine_derived"] = True
            children.append(child)
        out[key] = children
    return out


def partly_structured(rule: dict[str, Any]) -> bool:
    """Whether part of an encoded criterion is left as text or to the site (a not-computable part or a screening
    confirmation at any depth)."""
    return any(
        "not_computable" in child or "screening" in child or partly_structured(child)
        for key in ("all_of", "any_of")
        for child in rule.get(key, [])
    )


def _collapsed(head: dict[str, Any], item: Item, counts: Counts, reason: str) -> dict[str, Any]:
    counts.add("text", item.exclusion)
    return {**head, "text": _render(item), "not_computable": reason}


def _render(item: Item, depth: int = 0) -> str:
    lines = [item.text if depth == 0 else "  " * (depth - 1) + "- " + item.text.replace("\n", " ")]
    for child in item.children:
        lines.append(_render(child, depth + 1))
    return "\n".join(lines)


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."

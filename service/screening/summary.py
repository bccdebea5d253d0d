"""The population summary: verdict counts per trial and the missing data that would settle the most pairs.

Rule: a mergeable accumulator fed one patient at a time (all its trials together), so partial summaries
from worker processes or Spark partitions add up to the same answer as one pass, in bounded memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from service.screening.core import PatientTrialResult

VERDICTS = ("eligible", "undetermined", "ineligible")


@dataclass(frozen=True)
class Problem:
    """A line or file that could not be screened: where, and why (never its content)."""

    file: str
    line: int | None
    message: str

    def record(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class ItemCount:
    resource_type: str
    label: str
    patients: int = 0  # patients with at least one undetermined trial needing it
    pairs: int = 0  # undetermined patient×trial pairs needing it
    settles: int = 0  # ... of which it is the only missing item (it alone decides them)
    codes: set[str] = field(default_factory=set)

    def sentence(self) -> str:
        """What a coordinator reads: what to record, for how many patients, and what it would settle."""
        alone = "none" if self.settles == 0 else f"{self.settles}"
        return (
            f"{self.label} ({self.resource_type}) is missing for {self.patients} patient{_s(self.patients)}. "
            f"It is needed by {self.pairs} undetermined trial result{_s(self.pairs)}, "
            f"{alone} of which it would settle on its own."
        )


@dataclass
class Summary:
    trials: dict[str, Counter[str]] = field(default_factory=dict)
    items: dict[tuple[str, str], ItemCount] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)  # input: patients, resources, skipped lines, ...
    unlinked: Counter[str] = field(default_factory=Counter)  # resources of no patient, by type
    unused: Counter[str] = field(default_factory=Counter)  # resources of types no rule reads, by type

    def add_trials(self, study_ids: Iterable[str]) -> None:
        for study in study_ids:
            self.trials.setdefault(study, Counter({v: 0 for v in VERDICTS}))

    def add_patient(self, results: list[PatientTrialResult]) -> None:
        """All trials' results of one patient (patient counts need them together)."""
        self.counts["patients_screened"] += 1
        needed: set[tuple[str, str]] = set()
        for result in results:
            self.trials.setdefault(result.study, Counter({v: 0 for v in VERDICTS}))[result.verdict] += 1
            if result.verdict != "undetermined":
                continue
            items = {r.item: r for r in result.requirements}
            for key, requirement in items.items():
                count = self.items.setdefault(key, ItemCount(*key))
                count.pairs += 1
                count.codes.update(requirement.codes)
                if len(items) == 1 and not result.needs_review:
                    count.settles += 1
            needed |= set(items)
        for key in needed:
            self.items[key].patients += 1

    def merge(self, other: Summary) -> None:
        for study, verdicts in other.trials.items():
            self.trials.setdefault(study, Counter()).update(verdicts)
        for key, theirs in other.items.items():
            mine = self.items.setdefault(key, ItemCount(*key))
            mine.patients += theirs.patients
            mine.pairs += theirs.pairs
            mine.settles += theirs.settles
            mine.codes |= theirs.codes
        self.counts.update(other.counts)
        self.unlinked.update(other.unlinked)
        self.unused.update(other.unused)

    def ranking(self) -> list[ItemCount]:
        """Most decisions settled first, then most pairs, then most patients; label for a stable order."""
        return sorted(self.items.values(), key=lambda c: (-c.settles, -c.pairs, -c.patients, c.label, c.resource_type))

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": {study: {v: verdicts[v] for v in VERDICTS} for study, verdicts in sorted(self.trials.items())},
            "missing_data": [
                {
                    "resource_type": c.resource_type,
                    "label": c.label,
                    "patients": c.patients,
                    "pairs": c.pairs,
                    "settles": c.settles,
                    "codes": sorted(c.codes),
                    "text": c.sentence(),
                }
                for c in self.ranking()
            ],
            "input": dict(sorted(self.counts.items())),
            "unlinked_resources": dict(sorted(self.unlinked.items())),
            "unused_resources": dict(sorted(self.unused.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        summary = cls()
        summary.trials = {study: Counter(verdicts) for study, verdicts in data["trials"].items()}
        for item in data["missing_data"]:
            key = (item["resource_type"], item["label"])
            summary.items[key] = ItemCount(*key, item["patients"], item["pairs"], item["settles"], set(item["codes"]))
        summary.counts = Counter(data["input"])
        summary.unlinked = Counter(data["unlinked_resources"])
        summary.unused = Counter(data["unused_resources"])
        return summary

    def report(self, top: int = 10) -> str:
        """The human summary printed at the end of a run."""
        width = max([len("trial"), *(len(study) for study in self.trials)])
        lines = [f"{'trial':<{width}}  {'eligible':>8}  {'undetermined':>12}  {'ineligible':>10}"]
        for study, v in sorted(self.trials.items()):
            lines.append(f"{study:<{width}}  {v['eligible']:>8}  {v['undetermined']:>12}  {v['ineligible']:>10}")
        ranking = self.ranking()[:top]
        if ranking:
            lines.append("Missing data that would settle the most undetermined results:")
            lines.extend(f"  {c.sentence()}" for c in ranking)
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.counts.items()))
        lines.append(f"input: {counts}")
        return "\n".join(lines)


def _s(count: int) -> str:
    return "" if count == 1 else "s"

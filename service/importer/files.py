"""Writing imported mappings to mappings/<NCT>.yaml: readable YAML, reviewed work never lost.

Rule: a mapping still in `status: draft` is replaced by a re-import; a reviewed one (any other
status) keeps its criteria, arms, status and review date, and only its research_study is
refreshed from the registry, with a warning when the registry's eligibility text changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.importer import ImportResult

HASH_LINE = re.compile(r"^# eligibility-text-sha256: ([0-9a-f]+)$", re.MULTILINE)
UPDATE_LINE = re.compile(r"^# Imported from ClinicalTrials.gov API v2 \(record last updated ([^)]+)\)", re.MULTILINE)


@dataclass(frozen=True)
class WriteOutcome:
    path: Path
    action: str  # created | replaced | refreshed (reviewed criteria kept) | unchanged
    warning: str | None = None


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as literal blocks so reviewers read the protocol wording;
    never anchors/aliases (a shared code list must read in full at every criterion)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def to_yaml(result: ImportResult, document: dict[str, Any] | None = None) -> str:
    header = (
        f"# Imported from ClinicalTrials.gov API v2 (record last updated {result.last_update or 'unknown'}).\n"
        "# Criteria marked machine_derived were structured by the importer: check each against its\n"
        "# text, then set status: active and last_reviewed. A re-import replaces this file while it\n"
        "# is a draft and only refreshes research_study once it has been reviewed.\n"
        f"# eligibility-text-sha256: {result.eligibility_sha256}\n"
    )
    body = yaml.dump(
        document if document is not None else result.document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return header + body


def write_mapping(result: ImportResult, directory: Path, force: bool = False) -> WriteOutcome:
    """Write or refresh mappings/<id>.yaml; a record whose lastUpdatePostDate equals the one the file was
    imported from is left untouched (`unchanged`) unless `force`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.study_id}.yaml"
    if not path.exists():
        path.write_text(to_yaml(result), encoding="utf-8")
        return WriteOutcome(path, "created")
    old_text = path.read_text(encoding="utf-8")
    posted = UPDATE_LINE.search(old_text)
    if not force and result.last_update and posted and posted.group(1) == result.last_update:
        return WriteOutcome(path, "unchanged")  # same lastUpdatePostDate: the file is left as it is
    old = yaml.safe_load(old_text)
    if not isinstance(old, dict) or old.get("status", "draft") == "draft":
        path.write_text(to_yaml(result), encoding="utf-8")
        return WriteOutcome(path, "replaced")
    warning = None
    previous = HASH_LINE.search(old_text)
    if previous is None or previous.group(1) != result.eligibility_sha256:
        warning = (
            f"{result.study_id}: the registry's eligibility text differs from the one this reviewed "
            "mapping was made from; its criteria were kept: review them against the registry"
        )
    path.write_text(replace_research_study(old_text, result.document["research_study"]), encoding="utf-8")
    return WriteOutcome(path, "refreshed", warning)


def replace_research_study(text: str, research_study: dict[str, Any]) -> str:
    """Swap the top-level `research_study:` block, leaving every other line (and comment) as it is."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("research_study:")), None)
    block = yaml.dump(
        {"research_study": research_study},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    if start is None:
        return text + ("" if text.endswith("\n") else "\n") + block
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t-"):
        end += 1
    while end > start + 1 and lines[end - 1].startswith("#"):
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])

"""The README's eligibility excerpts are cut from the golden answers they name, so they stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "NCT06494995"


def test_excerpted_values_are_in_the_golden_answers() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ineligible = json.loads((GOLDEN / "ineligible_platelets.parameters.json").read_text(encoding="utf-8"))
    undetermined = json.loads((GOLDEN / "undetermined_stale_platelets.parameters.json").read_text(encoding="utf-8"))
    reasons = re.findall(r'\{"name": "reason", "valueString": "([^"]+)"\}', readme)
    assert reasons and all(f'"{r}"' in json.dumps(ineligible, ensure_ascii=False) for r in reasons)
    assert not [p for p in ineligible["parameter"] if p["name"] == "dataRequirement"]
    excerpt = re.search(r'\{"name": "dataRequirement", "valueDataRequirement": (.+?)\}\n```', readme, re.S)
    assert excerpt is not None
    shown = json.loads(excerpt.group(1))
    assert {"name": "dataRequirement", "valueDataRequirement": shown} in undetermined["parameter"]

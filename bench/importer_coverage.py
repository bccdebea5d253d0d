"""How much of the recorded ClinicalTrials.gov records the importer structures (issue 4 closing figures).

    .venv/bin/python bench/importer_coverage.py [--sample 50 --seed 4]

Imports every record in fixtures/external/ctgov/v2 offline (the three recorded forms), keeps the
oncology ones (conditions or keywords naming a cancer), and prints criteria found / structured /
partly structured / screening / left as text. With --sample it prints N structured criteria chosen
at random, each with its text and rule, for a person to check against the registry wording.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._server import EXTERNAL  # noqa: E402
from service.importer import import_study  # noqa: E402
from service.sources.ctgov import studies_in  # noqa: E402

CTGOV = EXTERNAL / "ctgov" / "v2"
ONCOLOGY = re.compile(r"cancer|carcinom|tumou?r|neoplasm|leuka?emia|lymphoma|myeloma|sarcoma|melanoma|malignan", re.I)
RULE_KEYS = ("age", "sex", "condition", "observation", "test", "creatinine_clearance", "medication", "procedure")


def oncology(study: dict[str, Any]) -> bool:
    module = study["protocolSection"].get("conditionsModule") or {}
    return bool(ONCOLOGY.search(" ".join(module.get("conditions", []) + module.get("keywords", []))))


def structured_leaves(criterion: dict[str, Any]) -> list[dict[str, Any]]:
    if criterion.get("machine_derived") and any(k in criterion for k in RULE_KEYS):
        return [criterion]
    children = criterion.get("all_of") or criterion.get("any_of") or []
    return [leaf for child in children for leaf in structured_leaves(child)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    seen: dict[str, Any] = {}
    for path in sorted(CTGOV.rglob("*.json")):
        for study in studies_in(json.loads(path.read_text(encoding="utf-8"))):
            seen.setdefault(study["protocolSection"]["identificationModule"]["nctId"], study)
    totals = {"trials": 0, "found": 0, "structured": 0, "partly": 0, "screening": 0, "text": 0}
    leaves: list[tuple[str, dict[str, Any]]] = []
    for nct, study in sorted(seen.items()):
        if not oncology(study):
            continue
        result = import_study(study)
        totals["trials"] += 1
        for key in ("found", "structured", "partly", "screening", "text"):
            totals[key] += getattr(result.counts, key)
        leaves += [(nct, leaf) for c in result.document["criteria"] for leaf in structured_leaves(c)]
    found = totals["found"]
    share = (totals["structured"] + totals["partly"]) / found if found else 0.0
    print(
        f"{len(seen)} unique records, {totals['trials']} oncology: {found} criteria found, "
        f"{totals['structured']} structured, {totals['partly']} partly structured ({share:.1%} together), "
        f"{totals['screening']} screening confirmations, {totals['text']} left as text"
    )
    if args.sample:
        chosen = random.Random(args.seed).sample(leaves, min(args.sample, len(leaves)))
        for n, (nct, leaf) in enumerate(chosen, 1):
            rule = {k: v for k, v in leaf.items() if k in RULE_KEYS}
            print(f"\n{n:2d}. {nct} {leaf['id']}: {leaf['text']}\n    → {json.dumps(rule, ensure_ascii=False)}")


if __name__ == "__main__":
    main()

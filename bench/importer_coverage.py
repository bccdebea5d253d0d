"""How much of the recorded ClinicalTrials.gov records the importer structures (issue 11 figures).

    .venv/bin/python bench/importer_coverage.py [--records DIR] [--sample 50 --seed 4 --out FILE [--include-partly]]

Imports every record under fixtures/external/ctgov/v2 (or --records) offline, keeps the oncology ones
(conditions or keywords naming a cancer), and prints a totals line (records, written criteria,
fully / partly structured, screening confirmations, text; the registry's structured age/sex
fields counted apart), the same for inclusions and exclusions, and the structured rules by kind.
With --sample it writes N fully structured criteria chosen at random (the sentence, then the rule in
plain words) to --out, for a reviewer who has not seen the importer to check against the wording;
--include-partly draws from the partly structured ones too (their unencoded part shown as text).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._server import EXTERNAL  # noqa: E402
from service.importer import import_study  # noqa: E402
from service.importer.criteria import Counts, partly_structured  # noqa: E402
from service.sources.ctgov import studies_in  # noqa: E402

CTGOV = EXTERNAL / "ctgov" / "v2"
ONCOLOGY = re.compile(r"cancer|carcinom|tumou?r|neoplasm|leuka?emia|lymphoma|myeloma|sarcoma|melanoma|malignan", re.I)
RULE_KEYS = (
    "age",
    "sex",
    "condition",
    "stage",
    "observation",
    "test",
    "creatinine_clearance",
    "medication",
    "procedure",
    "corticosteroid_dose",
    "progression_after",
)


def oncology(study: dict[str, Any]) -> bool:
    module = study["protocolSection"].get("conditionsModule") or {}
    return bool(ONCOLOGY.search(" ".join(module.get("conditions", []) + module.get("keywords", []))))


def structured_leaves(criterion: dict[str, Any]) -> list[dict[str, Any]]:
    if criterion.get("machine_derived") and any(k in criterion for k in RULE_KEYS):
        return [criterion]
    children = criterion.get("all_of") or criterion.get("any_of") or []
    return [leaf for child in children for leaf in structured_leaves(child)]


def kind_of(leaf: dict[str, Any]) -> str:
    key = next(k for k in RULE_KEYS if k in leaf)
    body = leaf[key]
    return f"{key}: {body['label']}" if isinstance(body, dict) and "label" in body else key


# --- plain words -------------------------------------------------------------------------------

OPS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


def plain(criterion: dict[str, Any], depth: int = 0) -> list[str]:
    """The criterion's rule as sentences a clinician can check against the protocol wording."""
    pad = "    " * depth
    prefix = "NOT: " if criterion.get("exclude") and depth else ""
    for combination, words in (("all_of", "ALL of"), ("any_of", "ANY of")):
        if combination in criterion:
            lines = [f"{pad}{prefix}{words}:"]
            for child in criterion[combination]:
                lines += plain(child, depth + 1)
            return lines
    return [f"{pad}{prefix}{_leaf(criterion)}"]


def _window(days: Any, verb: str = "within the last") -> str:
    return f" {verb} {days} days" if days else ""


def _codes(body: dict[str, Any]) -> str:
    codes = ", ".join(body.get("codes", []))
    return f" [{codes}]" if codes else ""


def _leaf(c: dict[str, Any]) -> str:  # noqa: PLR0911 - one sentence per rule kind
    if "not_computable" in c:
        return f"LEFT AS TEXT (unknown until a person checks): {c['not_computable']}"
    if c.get("screening"):
        return "SCREENING CONFIRMATION (the site confirms it; never decided from data)"
    if "age" in c:
        a = c["age"]
        return (
            "age "
            + " and ".join(
                p
                for p in (f"at least {a['min']}" if "min" in a else "", f"at most {a['max']}" if "max" in a else "")
                if p
            )
            + " years (whole years)"
        )
    if "sex" in c:
        return f"sex is {c['sex']}"
    if "stage" in c:
        return f"latest AJCC stage group is one of {', '.join(c['stage']['allowed'])} (IV admits IVA, IVB...)"
    if "condition" in c:
        b = c["condition"]
        # The evaluator's reading: with a window only the dates count (begun or ended inside it,
        # whatever the status now); without one, "history" admits resolved records.
        if b.get("within_days"):
            when = f"begun or ended within the last {b['within_days']} days (whatever its status now)"
        else:
            when = "ever recorded (active or resolved)" if b.get("history") else "recorded as active"
        exempt = f"; not counting {', '.join(b['except'])}" if b.get("except") else ""
        return f"has the condition '{b['label']}'{_codes(b)} {when}{exempt}"
    if "observation" in c:
        b = c["observation"]
        if "uln" in b:
            value = f"{b['uln']} x the upper limit of normal"
        elif "lln" in b:
            value = f"{b['lln']} x the lower limit of normal"
        else:
            value = f"{b['value']}" + ("" if b["unit"] == "1" else f" {b['unit']}")
        window = f" (latest value within the last {b['window_days']} days)" if b.get("window_days") else ""
        return f"latest '{b['label']}'{_codes(b)} is {OPS[b['op']]} {value}{window}"
    if "test" in c:
        b = c["test"]
        gene = f" (gene {b['gene']})" if b.get("gene") else ""
        if b.get("variant"):
            gene = f" (gene {b['gene']}, change {b['variant']}: a positive report not naming it is unknown)"
        return f"latest '{b['label']}'{gene}{_codes(b)} test reads {b['result']}{_window(b.get('window_days'))}"
    if "medication" in c:
        b = c["medication"]
        when = " (currently taking)" if b.get("current") else _window(b.get("within_days")) or " (ever)"
        exempt = f"; not counting {', '.join(b['except'])}" if b.get("except") else ""
        return f"received '{b['label']}'{_codes(b)}{when}{exempt}"
    if "procedure" in c:
        b = c["procedure"]
        return f"had the procedure '{b['label']}'{_codes(b)}{_window(b.get('within_days')) or ' (ever)'}"
    if "corticosteroid_dose" in c:
        b = c["corticosteroid_dose"]
        return (
            f"systemic corticosteroid {OPS[b['op']]} {b['prednisone_mg_per_day']} mg/day prednisone-equivalent"
            f" within the last {b['within_days']} days"
        )
    if "progression_after" in c:
        b = c["progression_after"]
        when = f"within {b['within_days']} days of its end" if b.get("within_days") else "at any time after it began"
        return f"disease progression recorded during a course of '{b['label']}'{_codes(b)} or {when}"
    if "creatinine_clearance" in c:
        b = c["creatinine_clearance"]
        return f"creatinine clearance (Cockcroft-Gault) is {OPS[b['op']]} {b['value']} mL/min"
    return json.dumps({k: v for k, v in c.items() if k in RULE_KEYS}, ensure_ascii=False)


# --- the run -----------------------------------------------------------------------------------


def line(label: str, found: int, structured: int, partly: int, screening: int, text: int) -> str:
    def share(n: int) -> str:
        return f"{n / found:.1%}" if found else "-"

    return (
        f"{label}: {found} criteria in the text, {structured} fully structured ({share(structured)}), "
        f"{partly} partly ({share(partly)}), {screening} screening confirmations, {text} left as text"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, default=CTGOV, help="folder of recorded v2 JSON (searched deeply)")
    parser.add_argument("--all", action="store_true", help="every record, not only oncology ones")
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--out", type=Path, help="where --sample writes (default: stdout)")
    parser.add_argument("--include-partly", action="store_true", help="--sample draws partly structured ones too")
    args = parser.parse_args()
    seen: dict[str, Any] = {}
    for path in sorted(args.records.rglob("*.json")):
        for study in studies_in(json.loads(path.read_text(encoding="utf-8"))):
            seen.setdefault(study["protocolSection"]["identificationModule"]["nctId"], study)
    totals, records, no_criteria = Counts(), 0, 0
    kinds: Counter[str] = Counter()
    chosen_from: list[tuple[str, dict[str, Any]]] = []
    for nct, study in sorted(seen.items()):
        if not (args.all or oncology(study)):
            continue
        result = import_study(study)
        records += 1
        no_criteria += result.counts.no_criteria_stated
        totals.merge(result.counts)
        for criterion in result.document["criteria"]:
            if criterion["id"] in ("age", "sex"):
                continue
            leaves = structured_leaves(criterion)
            kinds.update(kind_of(leaf) for leaf in leaves)
            if leaves:
                units = _structured_units(criterion)
                chosen_from += [(nct, c) for c in units if args.include_partly or not partly_structured(c)]
    t, e = totals, totals.exclusions
    kind = "" if args.all else "oncology "
    print(f"{len(seen)} unique records, {records} {kind}imported ({no_criteria} state no criteria)")
    totals_line = line("TOTAL", t.found, t.structured, t.partly, t.screening, t.text)
    print(f"{totals_line}; registry age/sex fields: {t.registry}")
    print(
        line(
            "  inclusions",
            t.found - e["found"],
            t.structured - e["structured"],
            t.partly - e["partly"],
            t.screening - e["screening"],
            t.text - e["text"],
        )
    )
    print(line("  exclusions", e["found"], e["structured"], e["partly"], e["screening"], e["text"]))
    print("structured rules by kind (leaves, in fully and partly structured criteria):")
    for kind, n in kinds.most_common():
        print(f"  {n:4d}  {kind}")
    if args.sample:
        chosen = random.Random(args.seed).sample(chosen_from, min(args.sample, len(chosen_from)))
        lines = [
            f"# {len(chosen)} {'structured' if args.include_partly else 'fully structured'} criteria drawn at random "
            f"(seed {args.seed}) from {records} records.",
            "# For each: is every comparator, threshold, unit, code, window, direction and negation right,",
            "# and is nothing the sentence requires missing (an unencoded part must be LEFT AS TEXT)?",
            "# An EXCLUSION is met (the patient is excluded) when its rule is met.",
        ]
        for n, (nct, criterion) in enumerate(chosen, 1):
            side = "EXCLUSION" if criterion["id"].startswith("exc") else "INCLUSION"
            lines += ["", f"{n:2d}. {nct} {criterion['id']} ({side})", f"    text: {criterion['text']!r}", "    rule:"]
            lines += ["      " + row for row in plain(criterion)]
        output = "\n".join(lines) + "\n"
        if args.out:
            args.out.write_text(output, encoding="utf-8")
            print(f"sample of {len(chosen)} written to {args.out}")
        else:
            print(output)


def _structured_units(criterion: dict[str, Any]) -> list[dict[str, Any]]:
    """The written criteria a sample draws from: a list's sub-items one by one, as they are counted."""
    if criterion.get("machine_derived") and any(k in criterion for k in RULE_KEYS):
        return [criterion]
    children = criterion.get("all_of") or criterion.get("any_of") or []
    if children and all(re.fullmatch(re.escape(criterion["id"]) + r"\.\d+", c["id"]) for c in children):
        return [u for c in children for u in _structured_units(c)]  # sub-items of a written list
    return [criterion] if structured_leaves(criterion) else []


if __name__ == "__main__":
    main()

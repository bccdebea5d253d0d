"""Command line: `trial-eligibility import NCT... [--mappings-dir DIR] [--dry-run] [--from-file PATH]`,
`trial-eligibility import --query --condition C [--term T] [--status RECRUITING] [--location L]` and
`trial-eligibility screen --input DIR --output DIR [--date D] [--engine local|spark]` (service.screening.cli).

Rule: one report line per imported study (criteria found / structured / left as text); errors are
one line each and a non-zero exit status, never a traceback for a registry or input problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from service.importer import import_study
from service.importer.files import write_mapping
from service.screening.cli import register as register_screen
from service.screening.cli import run as run_screen
from service.sources.ctgov import CtgovClient, CtgovError, check_nct_id, nct_id_of, studies_in

DEFAULT_MAPPINGS_DIR = Path("mappings")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "import":
        return _import(args, sys.stdout, sys.stderr)
    if args.command == "screen":
        return run_screen(args)
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trial-eligibility")
    commands = parser.add_subparsers(dest="command")
    imp = commands.add_parser(
        "import", help="import studies from ClinicalTrials.gov API v2 into mapping files (drafts)"
    )
    imp.add_argument("nct_ids", nargs="*", metavar="NCT", help="NCT numbers (all studies of --from-file if none)")
    imp.add_argument("--mappings-dir", type=Path, default=DEFAULT_MAPPINGS_DIR)
    imp.add_argument("--dry-run", action="store_true", help="print the ResearchStudy JSON, write nothing")
    imp.add_argument("--query", action="store_true", help="import every study of a registry search (below)")
    imp.add_argument(
        "--condition", help="with --query: condition or disease (query.cond), e.g. 'non-small cell lung cancer'"
    )
    imp.add_argument("--term", help="with --query: other terms (query.term)")
    imp.add_argument(
        "--status", action="append", default=[], help="with --query: overall status, e.g. RECRUITING (repeatable)"
    )
    imp.add_argument("--location", help="with --query: location terms (query.locn), e.g. 'Boston'")
    imp.add_argument("--max-pages", type=int, default=50, help="with --query: stop after this many pages of 100")
    imp.add_argument("--force", action="store_true", help="rewrite drafts even when lastUpdatePostDate is unchanged")
    imp.add_argument(
        "--from-file",
        type=Path,
        help="a recorded API answer (one study, a /studies page or the website's JSON download) instead of the API",
    )
    register_screen(commands)
    return parser


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        wanted = [check_nct_id(n) for n in args.nct_ids]
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if args.query and (wanted or args.from_file):
        print("error: --query searches the registry: give no NCT number and no --from-file", file=err)
        return 2
    try:
        studies = _search(args) if args.query else _studies(args.from_file, wanted)
    except (CtgovError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    if not studies:
        print("error: no study to import", file=err)
        return 1
    actions: Counter[str] = Counter()
    for study in studies:
        result = import_study(study)
        if args.dry_run:
            # The catalog gives the published resource its id; show it as it will be served.
            resource = {"resourceType": "ResearchStudy", "id": result.study_id, **result.document["research_study"]}
            out.write(json.dumps(resource, indent=2, ensure_ascii=False) + "\n")
            print(result.report(), file=err)
            continue
        outcome = write_mapping(result, args.mappings_dir, force=args.force)
        actions[outcome.action] += 1
        if outcome.action == "unchanged":
            print(
                f"{result.study_id}: lastUpdatePostDate {result.last_update} unchanged → {outcome.path} not touched",
                file=out,
            )
            continue
        print(f"{result.report()} → {outcome.path} ({outcome.action})", file=out)
        if outcome.warning:
            print(f"warning: {outcome.warning}", file=err)
    if not args.dry_run and len(studies) > 1:
        print(
            f"{len(studies)} studies: " + ", ".join(f"{n} {action}" for action, n in sorted(actions.items())), file=out
        )
    return 0


def _search(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not (args.condition or args.term or args.location):
        raise ValueError("--query needs --condition, --term and/or --location")
    client = CtgovClient()
    found = client.search_all(
        args.condition, args.term, max_pages=args.max_pages, status=args.status, location=args.location
    )
    return list(found)


def _studies(from_file: Path | None, wanted: list[str]) -> list[dict[str, Any]]:
    if from_file is not None:
        try:
            payload = json.loads(from_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{from_file} is not JSON") from exc
        studies = studies_in(payload)
        if not wanted:
            return studies
        by_id = {nct_id_of(s): s for s in studies}
        missing = [n for n in wanted if n not in by_id]
        if missing:
            raise ValueError(f"{from_file} does not hold {', '.join(missing)}")
        return [by_id[n] for n in wanted]
    if not wanted:
        raise ValueError("give NCT numbers or --from-file")
    client = CtgovClient()
    if len(wanted) == 1:
        return [client.get_study(wanted[0])]
    return client.get_studies(wanted)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

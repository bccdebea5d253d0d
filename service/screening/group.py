"""One patient's raw NDJSON lines → parsed resources → `screen_patient`, with every skipped line accounted for.

Rule: shared by both backends (only where a line comes from differs: a chunk line locally, a Spark row
id on Spark), so a malformed line or an unusable patient is handled the same way by both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

from service.catalog import Trial
from service.catalog.index import TrialIndex
from service.errors import FhirError
from service.fhir.patient_bundle import read_patient_request
from service.screening.bulk import shared_references
from service.screening.core import PatientTrialResult, screen_bundle, screen_patient
from service.screening.export import decompress

Where = TypeVar("Where")


@dataclass
class GroupOutcome(Generic[Where]):
    results: list[PatientTrialResult] = field(default_factory=list)
    problems: list[tuple[Where, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def screen_group(
    rows: Sequence[tuple[Where, bytes]],
    shared: Callable[[str], bytes | None],
    trials: Sequence[Trial],
    on: dt.date,
    release: str | None,
    index: TrialIndex | None = None,
) -> GroupOutcome[Where]:
    """`rows`: (where, raw line) of one patient's resources; `shared`: Type/id → raw shared resource;
    `index`: the trials' prefilter (service.screening.core.screen_bundle)."""
    outcome: GroupOutcome[Where] = GroupOutcome()
    resources = []
    patient_at: Where | None = None
    for where, line in rows:
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError:
            resource = None
            message = "not valid JSON; line skipped"
        else:
            message = "not a FHIR resource (no resourceType); line skipped"
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            outcome.problems.append((where, message))
            outcome.counts["lines_skipped"] += 1
            continue
        if resource.get("resourceType") == "Patient":
            patient_at = where
        resources.append(resource)
    if patient_at is None:
        if resources:
            outcome.problems.append(
                (rows[0][0], f"{len(resources)} resource(s) refer to a Patient that is not in the export; not screened")
            )
            outcome.counts["resources_without_patient"] += len(resources)
        return outcome
    for ref in sorted(shared_references([line for _, line in rows])):
        raw = shared(ref)
        if raw is not None:
            resources.append(orjson.loads(raw))
    try:
        outcome.results = screen_patient(resources, trials, on, release, index)
    except FhirError as exc:
        outcome.problems.append((patient_at, f"patient not screened: {exc.issues[0].diagnostics}"))
        outcome.counts["patients_not_screened"] += 1
    except Exception as exc:  # noqa: BLE001 - one patient's data must not stop a population run
        # Reported like bad input (type only, never values); the engine bug it reveals is in the problems file.
        outcome.problems.append((patient_at, f"patient not screened: the engine failed ({type(exc).__name__})"))
        outcome.counts["patients_not_screened"] += 1
    return outcome


def screen_document(
    name: str, data: bytes, trials: Sequence[Trial], on: dt.date, release: str | None, index: TrialIndex | None = None
) -> GroupOutcome[int | None]:
    """One patient's Bundle file (plain, .bz2 or .gz by `name`); problems carry the JSON line if known."""
    outcome: GroupOutcome[int | None] = GroupOutcome()
    outcome.counts["files"] += 1
    try:
        document = orjson.loads(decompress(name, data))
    except orjson.JSONDecodeError as exc:
        outcome.problems.append((exc.lineno, "not valid JSON; file skipped"))
    except (OSError, EOFError, ValueError):
        outcome.problems.append((None, "not readable as its compression says; file skipped"))
    else:
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            outcome.problems.append((None, "not a FHIR resource; file skipped"))
        else:
            try:
                bundle = read_patient_request(document, {"R4": "4.0", "R5": "5.0"}.get(release or ""))
                outcome.counts["resources"] += len(bundle.resources)
                outcome.counts["patients"] += 1
                outcome.results = screen_bundle(bundle, trials, on, index)
            except FhirError as exc:
                outcome.problems.append((None, f"not screened: {exc.issues[0].diagnostics}"))
    outcome.counts["files_skipped"] += len(outcome.problems)
    return outcome

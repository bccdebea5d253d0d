"""One patient's raw NDJSON lines → parsed resources → `screen_patient`, with every skipped line accounted for.

Rule: shared by both backends (only where a line comes from differs: a chunk line locally, a Spark row
id on Spark), so a malformed line or an unusable patient is handled the same way by both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson
import simdjson

from service.catalog import Trial
from service.catalog.index import GateResults, TrialIndex
from service.domain.evaluate import EvaluationDateOutOfRange
from service.errors import FhirError
from service.fhir.patient_bundle import EvidenceValidator, bundle_from_resources, index_facts, read_patient_request
from service.screening.bulk import LEADING_TYPE, shared_references
from service.screening.core import Json, PatientTrialResult, patient_label, ruled_out_row, screen_bundle, screen_patient
from service.screening.export import decompress

Where = TypeVar("Where")


@dataclass
class GroupOutcome(Generic[Where]):
    results: list[PatientTrialResult] = field(default_factory=list)
    problems: list[tuple[Where, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


# What the index's gates read: age and sex on the Patient, diagnoses on the Conditions. A patient that
# these alone rule out of every trial is answered without reading its other lines into resources (most
# of an export's bytes are Observations); any line whose type is not told by a leading "resourceType" is
# read with them.
GATE_TYPES = frozenset({"Patient", "Condition"})
RELEASES = ("R4", "R5")
# The lines not read are still checked to be JSON, so a malformed line is reported whichever way its patient
# was answered: simdjson validates a line in about a fifth of the time orjson takes to build its objects.
_JSON_CHECK = simdjson.Parser()


def screen_group(
    rows: Sequence[tuple[Where, bytes]],
    shared: Callable[[str], bytes | None],
    trials: Sequence[Trial],
    on: dt.date,
    release: str | None,
    index: TrialIndex | None = None,
) -> GroupOutcome[Where]:
    """`rows`: (where, raw line) of one patient's resources; `shared`: Type/id → raw shared resource;
    `index`: the trials' prefilter (service.screening.core.screen_bundle). With it, the Patient and
    Condition lines are read first; when they rule the patient out of every trial, the other lines are
    only checked to be JSON (counted as `lines_checked_only`, docs/screening.md)."""
    outcome: GroupOutcome[Where] = GroupOutcome()
    resources: list[Json] = []
    patients: list[Where] = []  # where each Patient line is
    unread: list[tuple[Where, bytes]] = list(rows)
    gates: GateResults | None = None
    if index is not None:
        gate_rows: list[tuple[Where, bytes]] = []
        unread = []
        for row in rows:
            (gate_rows if _read_first(row[1]) else unread).append(row)
        patients = _read(gate_rows, outcome, resources)
        if patients and unread:
            early, gates = _ruled_out_of_every_trial(resources, trials, on, release, index)
            if early is not None:
                outcome.results = early
                _check_json(unread, outcome)
                outcome.counts["lines_checked_only"] += len(unread)
                return outcome
    patients += _read(unread, outcome, resources)
    if not patients:
        if resources:
            outcome.problems.append(
                (rows[0][0], f"{len(resources)} resource(s) refer to a Patient that is not in the export; not screened")
            )
            outcome.counts["resources_without_patient"] += len(resources)
        return outcome
    patient_at = patients[-1]
    for ref in sorted(shared_references([line for _, line in rows])):
        raw = shared(ref)
        if raw is not None:
            resources.append(orjson.loads(raw))
    try:
        outcome.results = screen_patient(resources, trials, on, release, index, gates)
    except FhirError as exc:
        outcome.problems.append((patient_at, f"patient not screened: {exc.issues[0].diagnostics}"))
        outcome.counts["patients_not_screened"] += 1
    except Exception as exc:  # noqa: BLE001 - one patient's data must not stop a population run
        # Reported like bad input (type only, never values); the engine bug it reveals is in the problems file.
        outcome.problems.append((patient_at, f"patient not screened: the engine failed ({type(exc).__name__})"))
        outcome.counts["patients_not_screened"] += 1
    return outcome


def _read_first(line: bytes) -> bool:
    """A line of a type the gates read, or of a type not told by a leading "resourceType"."""
    leading = LEADING_TYPE.match(line)
    return leading is None or leading.group(1).decode() in GATE_TYPES


def _check_json(rows: Sequence[tuple[Where, bytes]], outcome: GroupOutcome[Where]) -> None:
    """Report the lines that are not JSON, as `_read` would (the others have a leading resourceType)."""
    for where, line in rows:
        try:
            _JSON_CHECK.parse(line)
        except (ValueError, RuntimeError):  # RuntimeError: an integer beyond 64 bits, which orjson may take
            try:
                orjson.loads(line)  # the same judge as `_read`
            except orjson.JSONDecodeError:
                outcome.problems.append((where, "not valid JSON; line skipped"))
                outcome.counts["lines_skipped"] += 1


def _read(rows: Sequence[tuple[Where, bytes]], outcome: GroupOutcome[Where], resources: list[Json]) -> list[Where]:
    """Parse `rows` into `resources` (a line that is not a FHIR resource becomes a problem); where the
    Patients are."""
    patients: list[Where] = []
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
            patients.append(where)
        resources.append(resource)
    return patients


def _ruled_out_of_every_trial(
    resources: list[Json], trials: Sequence[Trial], on: dt.date, release: str | None, index: TrialIndex
) -> tuple[list[PatientTrialResult] | None, GateResults | None]:
    """The rows when the gates rule out every trial on these resources alone (the same rows the full read
    gives: the gates read nothing else), else None; and the gates' results, which the full read reuses (the
    facts they read are built from the Patient and the Conditions alone, whatever the release). A release
    told by content must give the same answer read as R4 and as R5 (the Patient and Conditions may not tell
    the release the whole record tells, and evidence is validated against it): a gate decides here only on
    evidence valid in both. Any problem with the Patient is left to the full read to report."""
    try:
        bundles = [bundle_from_resources(resources, as_release) for as_release in ((release,) if release else RELEASES)]
    except FhirError:
        return None, None
    first = bundles[0]
    same_warnings = len({len(bundle.warnings) for bundle in bundles}) == 1  # before index_facts adds its own
    try:
        gates = index.evaluate_gates(index_facts(first), on)
    except EvaluationDateOutOfRange:
        return None, None
    validators = [EvidenceValidator(bundle) for bundle in bundles]

    def invalid(refs: Iterable[str]) -> dict[str, str]:
        wanted = list(refs)
        return {ref: problem for validator in validators for ref, problem in validator.problems(wanted).items()}

    if invalid([first.patient_ref]) or not same_warnings:
        return None, gates
    ruling = index.ruling(gates, invalid, trials)
    if len(ruling) < len(trials):
        return None, gates
    patient = patient_label(first)
    return [ruled_out_row(patient, trial.id, ruling[trial.id], len(first.warnings)) for trial in trials], gates


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

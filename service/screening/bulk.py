"""Bulk Data NDJSON → one group of resources per patient, by an external partition on disk.

Rule: memory is bounded by the chunk and bucket sizes, never by the export. Pass 1 reads the files in
byte ranges (in parallel), finds each line's patient (`subject` / `patient` reference, or the Patient's
own id) and appends the raw line to one of B bucket files by a stable hash of that patient; pass 2 reads
one bucket at a time, so a patient's resources are all in one bucket and a bucket fits in memory.

Why a partition and not a byte-offset index: the index grows with the export (one entry per resource,
held by the coordinator), and reading a patient back is one random read per resource; buckets are
sequential IO, need no coordinator state and are what Spark's shuffle does, so both backends share
one model. The lines are copied once to a temporary directory (disk, not memory).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.fhir.patient_bundle import FACT_BUILDERS

FHIR_ID = rb"[A-Za-z0-9\-.]{1,64}"
# A Bulk export references as Type/id (FHIR Bulk Data IG, "Response - Output File Request"); an absolute
# URL ending in Patient/id is accepted too.
SUBJECT = re.compile(
    rb'"(?:subject|patient)"\s*:\s*\{[^{}]*?"reference"\s*:\s*"(?:[^"]*/)?Patient/(' + FHIR_ID + rb')"'
)
PATIENT_TYPE = re.compile(rb'"resourceType"\s*:\s*"Patient"')
PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})$")
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Resources of no patient that the engine follows references to (MedicationRequest.medicationReference):
# kept aside and added to each patient that references them.
SHARED_TYPES = ("Medication",)
SHARED_MARKERS = tuple(f"{t}/".encode() for t in SHARED_TYPES)
SHARED_REFERENCE = re.compile(
    rb'"reference"\s*:\s*"(?:[^"]*/)?((?:' + b"|".join(t.encode() for t in SHARED_TYPES) + rb")/" + FHIR_ID + rb')"'
)

PATIENT, LINKED, SHARED, UNLINKED, UNUSED, MALFORMED = "patient", "linked", "shared", "unlinked", "unused", "malformed"
# The types the engine reads (index_facts' table, the Patient, referenced Medications): lines of any other
# type (Claim, ExplanationOfBenefit, DocumentReference, ImagingStudy, ...: most of an EHR export's bytes)
# are counted and never parsed. Told from a leading "resourceType" (the FHIR JSON convention: it comes first).
READ_TYPES = frozenset({"Patient", *FACT_BUILDERS, *SHARED_TYPES})
LEADING_TYPE = re.compile(rb'\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
LEADING_TYPE_SQL = r'^\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"'


def route(line: bytes) -> tuple[str, str]:
    """(kind, value) of one NDJSON line: the patient id (of a Patient, or of a resource linked to one), a
    shared resource's Type/id, the type of a resource of no patient, or why the line is unusable.
    Fast path: a bytes regex, no JSON parse (a malformed line found this way is reported in pass 2; a line
    of a type the engine does not read is not parsed at all)."""
    leading = LEADING_TYPE.match(line)
    declared = leading.group(1).decode() if leading else None
    if declared is not None and declared not in READ_TYPES:
        return UNUSED, declared
    # A Patient (or a line that may hold one) is parsed: its key is its own id, not a reference.
    if declared != "Patient" and (declared is not None or not PATIENT_TYPE.search(line)):
        match = SUBJECT.search(line)
        if match:
            return LINKED, match.group(1).decode()
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        return MALFORMED, "not valid JSON; line skipped"
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return MALFORMED, "not a FHIR resource (no resourceType); line skipped"
    resource_type: str = resource["resourceType"]
    resource_id = resource.get("id")
    if resource_type == "Patient":
        if isinstance(resource_id, str) and ID.fullmatch(resource_id):
            return PATIENT, resource_id
        return MALFORMED, "a Patient without a valid id; line skipped"
    if resource_type not in READ_TYPES:
        return UNUSED, resource_type
    patient = patient_of(resource)
    if patient:
        return LINKED, patient
    if resource_type in SHARED_TYPES and isinstance(resource_id, str) and ID.fullmatch(resource_id):
        return SHARED, f"{resource_type}/{resource_id}"
    return UNLINKED, resource_type


def patient_of(resource: dict[str, Any]) -> str | None:
    """The Patient id the resource's `subject` or `patient` refers to, if any."""
    holder = resource.get("subject") or resource.get("patient")
    reference = holder.get("reference") if isinstance(holder, dict) else None
    match = PATIENT_REFERENCE.search(reference) if isinstance(reference, str) else None
    return match.group(1) if match else None


def bucket_of(patient: str, buckets: int) -> int:
    """Stable across processes and runs (unlike hash())."""
    return zlib.crc32(patient.encode()) % buckets


@dataclass(frozen=True)
class Chunk:
    """A byte range of one input file, starting at a line start."""

    id: int
    path: Path
    start: int
    end: int


def plan_chunks(paths: list[Path], chunk_bytes: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for path in paths:
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = 0
            while start < size:
                end = min(start + chunk_bytes, size)
                if end < size:
                    handle.seek(end)
                    end += len(handle.readline())  # finish the line the range cut through
                chunks.append(Chunk(len(chunks), path, start, end))
                start = end
    return chunks


def line_of(chunk: Chunk, line_in_chunk: int) -> int:
    """The 1-based line number in the file (counting newlines before the chunk: only done for problems)."""
    before = 0
    with chunk.path.open("rb") as handle:
        remaining = chunk.start
        while remaining:
            block = handle.read(min(remaining, 1 << 24))
            before += block.count(b"\n")
            remaining -= len(block)
    return before + line_in_chunk


@dataclass
class PartitionReport:
    chunk: int
    counts: Counter[str] = field(default_factory=Counter)
    unlinked: Counter[str] = field(default_factory=Counter)
    unused: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, int, str]] = field(default_factory=list)  # (chunk, line in chunk, message)


def partition_chunk(chunk: Chunk, workdir: Path, buckets: int) -> PartitionReport:
    """Pass 1 over one chunk: each line to its patient's bucket (`key \\t chunk \\t line \\t json`)."""
    report = PartitionReport(chunk.id)
    with chunk.path.open("rb") as handle:
        handle.seek(chunk.start)
        data = handle.read(chunk.end - chunk.start)
    out: dict[int, list[bytes]] = {}
    shared: list[bytes] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()
        if not line:
            continue
        report.counts["lines"] += 1
        kind, value = route(line)
        if kind in (PATIENT, LINKED):
            key = value.encode()
            out.setdefault(bucket_of(value, buckets), []).append(b"%s\t%d\t%d\t%s\n" % (key, chunk.id, number, line))
            report.counts["patients"] += kind == PATIENT
        elif kind == SHARED:
            shared.append(b"%s\t%s\n" % (value.encode(), line))
            report.counts["shared_resources"] += 1
        elif kind == UNLINKED:
            report.unlinked[value] += 1
        elif kind == UNUSED:
            report.unused[value] += 1
        else:
            report.counts["lines_skipped"] += 1
            report.problems.append((chunk.id, number, value))
    del data
    for bucket, rows in out.items():
        directory = workdir / f"b{bucket:05d}"
        directory.mkdir(exist_ok=True)
        (directory / f"c{chunk.id:06d}").write_bytes(b"".join(rows))
    if shared:
        (workdir / "shared").mkdir(exist_ok=True)
        (workdir / "shared" / f"c{chunk.id:06d}").write_bytes(b"".join(shared))
    return report


Located = tuple[tuple[int, int], bytes]  # ((chunk, line in chunk), raw line)


def read_bucket(directory: Path) -> Iterator[tuple[str, list[Located]]]:
    """Pass 2: the patients of one bucket, each with its raw lines in input order, sorted by patient id."""
    groups: dict[bytes, list[Located]] = {}
    for part in sorted(directory.iterdir()):
        for row in part.read_bytes().split(b"\n"):
            if row:
                key, chunk, line, json = row.split(b"\t", 3)
                groups.setdefault(key, []).append(((int(chunk), int(line)), json))
    for key in sorted(groups):
        yield key.decode(), groups.pop(key)


def read_shared(workdir: Path) -> dict[str, bytes]:
    """Type/id → raw line of the shared resources (Medication): small reference data, read once per worker."""
    shared: dict[str, bytes] = {}
    directory = workdir / "shared"
    if directory.is_dir():
        for part in sorted(directory.iterdir()):
            for row in part.read_bytes().split(b"\n"):
                if row:
                    ref, json = row.split(b"\t", 1)
                    shared[ref.decode()] = json
    return shared


def shared_references(lines: list[bytes]) -> set[str]:
    """The Type/id of shared resources these lines refer to."""
    return {
        m.decode()
        for line in lines
        if any(marker in line for marker in SHARED_MARKERS)  # a substring test first: most lines have none
        for m in SHARED_REFERENCE.findall(line)
    }

"""Patient Bundles → a FHIR Bulk Data export layout (one NDJSON file per resource type, Type/id references).

Rule: what a server's `$export` would give for the same patients: `urn:uuid:` fullUrl references are
rewritten to `Type/id`, each resource on one line. `copies` > 1 replicates every patient with new ids
(tests and the benchmark), rewriting the ids by bytes so a large export costs little more than its writes.
"""

from __future__ import annotations

import bz2
import gzip
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

UUID = re.compile(rb"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
MARK = bytes(range(1, 9))  # 8 control bytes: never inside orjson output (it escapes them)


def decompress(name: str, data: bytes) -> bytes:
    """A file's bytes, plain or .bz2 / .gz compressed (by its name)."""
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bundle's resources with every reference to an entry's fullUrl rewritten to Type/id."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    targets = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in entries
        if isinstance(e.get("fullUrl"), str) and isinstance(e["resource"].get("id"), str)
    }

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: targets.get(v, v) if k == "reference" and isinstance(v, str) else rewrite(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    return [rewrite(e["resource"]) for e in entries]


def write_bulk_export(bundle_files: Iterable[Path], directory: Path, copies: int = 1) -> Counter[str]:
    """Write {Type}.ndjson files under `directory`; returns the count of lines per type.

    Copy 0 keeps the original ids; copy k > 0 replaces the first 8 hex digits of every UUID (ids,
    references, identifiers) by k, so each copy is a distinct patient with consistent references."""
    directory.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[bytes]] = {}
    for path in bundle_files:
        for resource in bundle_resources(orjson.loads(decompress(path.name, path.read_bytes()))):
            patient_id = str(resource.get("id")).encode()
            if copies > 1 and resource["resourceType"] == "Patient" and not UUID.fullmatch(patient_id):
                raise ValueError(f"{path.name}: replication needs UUID patient ids")
            lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    counts: Counter[str] = Counter()
    for resource_type, originals in lines.items():
        templates = [UUID.sub(MARK + rb"\1", line) for line in originals] if copies > 1 else []
        with (directory / f"{resource_type}.ndjson").open("wb") as out:
            out.write(b"\n".join(originals) + b"\n")
            for copy in range(1, copies):
                out.write(b"\n".join(templates).replace(MARK, b"%08x" % copy) + b"\n")
        counts[resource_type] = len(originals) * copies
    return counts

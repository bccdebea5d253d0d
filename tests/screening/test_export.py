"""Synthea Bundles → Bulk Data NDJSON: Type/id references that resolve inside the export, new ids per copy."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson

from service.screening.export import bundle_resources, decompress, write_bulk_export


def _lines(directory: Path) -> list[dict]:
    return [
        orjson.loads(line) for path in sorted(directory.glob("*.ndjson")) for line in path.read_bytes().splitlines()
    ]


def test_every_reference_is_type_id_and_resolves_inside_the_export(tmp_path: Path, synthea_files: list[Path]) -> None:
    counts = write_bulk_export(synthea_files, tmp_path, copies=2)
    resources = _lines(tmp_path)
    assert len(resources) == sum(counts.values())
    entries = sum(len(orjson.loads(decompress(p.name, p.read_bytes()))["entry"]) for p in synthea_files)
    assert len(resources) == 2 * entries  # the .bz2 bundle is included
    keys = {f"{r['resourceType']}/{r['id']}" for r in resources}
    assert len(keys) == len(resources)  # the copy has new ids, no collisions
    references = [m.decode() for r in resources for m in re.findall(rb'"reference":"([^"]+)"', orjson.dumps(r))]
    assert not [ref for ref in references if ref.startswith("urn:uuid:")]
    # Synthea's conditional Practitioner references and contained (#id) ones stay as they are.
    local = [ref for ref in references if "?" not in ref and not ref.startswith("#")]
    assert local and all(ref in keys for ref in local)
    assert {p.stem for p in tmp_path.glob("*.ndjson")} == {r["resourceType"] for r in resources}


def test_each_copy_is_a_distinct_patient_with_its_own_references(tmp_path: Path, synthea_files: list[Path]) -> None:
    write_bulk_export(synthea_files[:1], tmp_path, copies=3)
    resources = _lines(tmp_path)
    patients = [r["id"] for r in resources if r["resourceType"] == "Patient"]
    assert len(set(patients)) == 3
    subjects = Counter(r["subject"]["reference"] for r in resources if "subject" in r)
    assert set(subjects) == {f"Patient/{p}" for p in patients}
    assert len(set(subjects.values())) == 1  # every copy carries the same number of resources


def test_bundle_resources_rewrites_only_entry_references() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {
                "fullUrl": "urn:uuid:o1",
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "subject": {"reference": "urn:uuid:p1"},
                    "performer": [{"reference": "urn:uuid:elsewhere"}],
                },
            },
        ],
    }
    observation = bundle_resources(bundle)[1]
    assert observation["subject"] == {"reference": "Patient/p1"}
    assert observation["performer"] == [{"reference": "urn:uuid:elsewhere"}]

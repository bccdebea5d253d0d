"""Screening fixtures: Bulk exports built from the real Synthea bundles, and a catalog of two test trials."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import orjson
import pytest

from service.catalog import Trial, load_catalog
from service.screening.export import write_bulk_export
from tests.conftest import EXTERNAL_DATA

ROOT = Path(__file__).resolve().parents[2]
ON = dt.date(2020, 12, 1)  # the Synthea records are from 2020: this date gives all three verdicts
COPIES = 8  # 7 bundles x 8 = 56 patients


SYNTHEA = EXTERNAL_DATA / "patients" / "synthea"


@pytest.fixture(scope="session")
def trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trial, ...]:
    directory = tmp_path_factory.mktemp("screening-mappings")
    shutil.copy(ROOT / "tests" / "data" / "TEST-rules.yaml", directory)
    shutil.copy(Path(__file__).parent / "data" / "TEST-population.yaml", directory)
    return tuple(load_catalog(directory).trials.values())


@pytest.fixture(scope="session")
def synthea_files() -> list[Path]:
    files = sorted(SYNTHEA.iterdir())
    assert any(p.name.endswith(".bz2") for p in files)
    return files


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory, synthea_files: list[Path]) -> Path:
    """The Synthea patients replicated to 56 with new ids, as a Bulk Data export."""
    directory = tmp_path_factory.mktemp("export")
    write_bulk_export(synthea_files, directory, copies=COPIES)
    return directory


NOT_JSON = "not valid JSON; line skipped"
NOT_RESOURCE = "not a FHIR resource (no resourceType); line skipped"
ORPHAN = "1 resource(s) refer to a Patient that is not in the export; not screened"


@pytest.fixture(scope="session")
def broken_export(tmp_path_factory: pytest.TempPathFactory, export: Path) -> tuple[Path, set[tuple[str, int, str]]]:
    """The export with bad lines injected; returns it and the (file, line, message) each must be reported as."""
    directory = tmp_path_factory.mktemp("broken")
    for path in export.iterdir():
        shutil.copy(path, directory)
    observations = (directory / "Observation.ndjson").read_bytes().split(b"\n")
    truncated = observations[9][: len(observations[9]) // 2]  # a patient's Observation cut in half
    orphan = b'{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/nobody"}}'
    patient = orjson.loads((directory / "Patient.ndjson").read_bytes().split(b"\n")[0])["id"]
    # Looks linked to a real patient to a fast scan, but is no resource: found when that patient is read.
    impostor = b'[{"subject": {"reference": "Patient/%s"}}]' % patient.encode()
    bad = {  # file: [(insert before this 0-based line, text, message)]
        "Observation.ndjson": [(0, orphan, ORPHAN), (9, truncated, NOT_JSON)],
        "Condition.ndjson": [(4, b"   ", None), (19, b"not json at all", NOT_JSON)],  # blank: ignored
        "Encounter.ndjson": [(2, b"[1, 2, 3]", NOT_RESOURCE), (30, impostor, NOT_RESOURCE)],
        "Patient.ndjson": [
            (1, b'{"resourceType": "Patient", "gender": "female"}', "a Patient without a valid id; line skipped")
        ],
    }
    expected: set[tuple[str, int, str]] = set()
    for name, edits in bad.items():
        path = directory / name
        lines = path.read_bytes().split(b"\n")
        if name == "Observation.ndjson":
            del lines[9]  # replaced by its truncated copy
        for index, text, _ in sorted(edits, key=lambda e: -e[0]):
            lines.insert(index, text)
        path.write_bytes(b"\n".join(lines))
        for _, text, message in edits:
            if message:
                expected.add((str(path.resolve()), lines.index(text) + 1, message))
    return directory, expected

"""Every kind of answer the server gives is valid R5: fhir.resources parses it and r5check passes it.

r5check (../shared/tools/r5check, HL7 definitions: bindings, cardinality, invariants) runs when node
and the tool are present; otherwise that half is skipped, the fhir.resources half always runs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.config import DEFAULT_MAPPINGS_DIR, Config
from service.fhir.models import validate
from tests.conftest import r5check_or_skip

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/metadata", {}),
    ("GET", "/healthz", {}),
    ("GET", "/readyz", {}),
    ("GET", "/ResearchStudy?_count=50", {}),
    ("GET", "/ResearchStudy?_count=1&_offset=1&status=recruiting", {}),
    ("GET", "/ResearchStudy?_summary=true", {}),
    ("GET", "/ResearchStudy?_summary=text", {}),
    ("GET", "/ResearchStudy?_summary=data", {}),
    ("GET", "/ResearchStudy?_summary=count", {}),
    ("GET", "/ResearchStudy?_elements=title,phase", {}),
    ("GET", "/ResearchStudy?unknown=1&title:contains=a", {}),
    ("GET", "/ResearchStudy/NCT90000001", {}),
    ("GET", "/ResearchStudy/NCT90000001?_summary=true", {}),
    ("GET", "/ResearchStudy/NCT90000002?_elements=identifier", {}),
    ("GET", "/EvidenceVariable?_count=50", {}),
    ("GET", "/EvidenceVariable/NCT90000001-eligibility", {}),
    ("GET", "/EvidenceVariable/NCT90000001-eligibility?_summary=true", {}),
    ("GET", "/StructureDefinition?_count=50", {}),
    ("GET", "/OperationDefinition?_count=50&_summary=true", {}),
    ("GET", "/ResearchStudy/unknown-id", {}),
    ("GET", "/ResearchStudy?_count=x", {}),
    ("GET", "/ResearchStudy?x=1", {"Prefer": "handling=strict"}),
    ("GET", "/metadata", {"Accept": "application/xml"}),
    ("DELETE", "/ResearchStudy/NCT90000001", {}),
]


def served_resources(client: FlaskClient, label: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for resource_type in ("ResearchStudy", "EvidenceVariable", "StructureDefinition", "OperationDefinition"):
        bundle = json.loads(client.get(f"/{resource_type}?_count=100").data)
        assert bundle["total"] <= 100, "raise _count: some resources would go unchecked"
        out += [(f"{label} {entry['fullUrl']}", entry["resource"]) for entry in bundle.get("entry", [])]
    return out


@pytest.fixture(scope="module")
def answers(app: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    client: FlaskClient = app.test_client()
    for method, url, headers in REQUESTS:
        response = client.open(url, method=method, headers=headers)
        out.append((f"{method} {url}", json.loads(response.data)))
    out += served_resources(client, "test catalog")
    # The embedded catalog (mappings/), as the service serves it by default.
    if any(DEFAULT_MAPPINGS_DIR.glob("*.yaml")):
        real = create_app(Config(mappings_dir=DEFAULT_MAPPINGS_DIR, max_count=100)).test_client()
        out += served_resources(real, "mappings/")
        for url in ("/metadata", "/ResearchStudy?_count=100", "/EvidenceVariable?_count=100"):
            out.append((f"mappings/ {url}", json.loads(real.get(url).data)))
    return out


def test_answers_parse_with_fhir_resources_r5(answers: list[tuple[str, dict[str, Any]]]) -> None:
    for where, body in answers:
        try:
            validate(body)
        except Exception as exc:  # noqa: BLE001 - report which answer failed
            pytest.fail(f"{where}: {exc}")
        if body["resourceType"] == "Bundle":
            for entry in body.get("entry", []):
                validate(entry["resource"])


def test_answers_pass_r5check(answers: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    assert_r5check_passes(answers, tmp_path)


def assert_r5check_passes(answers: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    """Run ../shared/tools/r5check once over all answers; skipped where node or the tool is missing."""
    r5check = r5check_or_skip()
    files = []
    for n, (_, body) in enumerate(answers):
        path = tmp_path / f"answer-{n:03d}.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        files.append(str(path))
    result = subprocess.run([str(r5check), *files], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode == 2:
        pytest.skip("r5check could not install its packages")
    names = {f"answer-{n:03d}.json": where for n, (where, _) in enumerate(answers)}
    report = result.stdout + result.stderr
    for file_name, where in names.items():
        report = report.replace(file_name, f"{file_name} ({where})")
    assert result.returncode == 0, report

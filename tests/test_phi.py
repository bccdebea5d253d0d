"""No PHI leaks: bundles full of marker strings go through every endpoint and error path; no marker
reaches a log line (caplog, and the JSON formatter's output) or an error answer.

The rule tested: logs and error answers (every non-2xx OperationOutcome) contain no marker at all.
A successful answer contains no name, identifier, birth date, narrative, note, telecom or address
marker; the ids and fullUrls of the posted resources may appear, but only as references
(`valueReference.reference`, `subject.reference`: the evidence the answer cites).
"""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api.hooks import JsonFormatter
from service.app import create_app
from service.config import Config
from tests.tokens import AUDIENCE, ISSUER, TestIssuer

CONTENT = ["MkNAME-Zeldarine", "MkGIVEN-Quorvath", "MkMRN-884213", "1961-07-13", "MkTEXT-narrative", "MkNOTE-freetext",
           "MkPHONE-5550199", "MkADDR-Elmstreet", "MkOBSNOTE-remark"]  # fmt: skip
REFERENCES = ["MkPID-7731", "urn:uuid:Mk-FULLURL-0042", "MkOBSID-9911"]
MARKERS = CONTENT + REFERENCES
JSON_TYPES = {"content_type": "application/fhir+json"}


def marker_bundle() -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "MkPID-7731",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">MkTEXT-narrative</div>'},
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MkMRN-884213"}],
        "name": [{"family": "MkNAME-Zeldarine", "given": ["MkGIVEN-Quorvath"]}],
        "telecom": [{"system": "phone", "value": "MkPHONE-5550199"}],
        "address": [{"line": ["MkADDR-Elmstreet"]}],
        "gender": "female",
        "birthDate": "1961-07-13",
    }
    observation = {
        "resourceType": "Observation",
        "id": "MkOBSID-9911",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
        "subject": {"reference": "Patient/MkPID-7731"},
        "effectiveDateTime": "2026-11-01",
        "valueInteger": 1,
        "note": [{"text": "MkOBSNOTE-remark"}],
    }
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:Mk-FULLURL-0042", "resource": patient},
        {"fullUrl": "urn:uuid:Mk-FULLURL-0043", "resource": observation},
    ]}  # fmt: skip


def mutated(change: Any) -> bytes:
    bundle = marker_bundle()
    change(bundle)
    return json.dumps(bundle).encode()


def _set(path: list[Any], value: Any) -> Any:
    def change(bundle: dict[str, Any]) -> None:
        node = bundle
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def error_cases() -> dict[str, tuple[str, str, bytes, dict[str, str]]]:
    """name → (method, path, body, headers) that must each answer an error."""
    evaluate = "/ResearchStudy/NCT90000001/$evaluate-eligibility"
    second_patient = copy.deepcopy(marker_bundle()["entry"][0])
    second_patient["fullUrl"] = "urn:uuid:Mk-FULLURL-0044"
    deep: Any = {"MkNAME-Zeldarine": "MkMRN-884213"}
    for _ in range(40):
        deep = {"extension": [deep]}
    return {
        "bad JSON": ("POST", evaluate, b'{"resourceType": "Bundle", "MkNAME-Zeldarine": ', {}),
        "not a resource": ("POST", evaluate, json.dumps(["MkNAME-Zeldarine", "1961-07-13"]).encode(), {}),
        "wrong type": ("POST", evaluate, json.dumps(marker_bundle()["entry"][0]["resource"]).encode(), {}),
        "invalid Patient birthDate": ("POST", evaluate, mutated(_set(["entry", 0, "resource", "birthDate"],
                                                                      "MkNAME-Zeldarine")), {}),
        "invalid Patient element": ("POST", "/ResearchStudy/$match", mutated(_set(["entry", 0, "resource",
                                                                                   "MkGIVEN-Quorvath"], 1)), {}),
        "invalid Patient contained": ("POST", evaluate, mutated(_set(["entry", 0, "resource", "contained"],
                                                                      [{"resourceType": "MkNAME-Zeldarine"}])), {}),
        "invalid Patient id": ("POST", evaluate, mutated(_set(["entry", 0, "resource", "id"], "MkPID 7731!")), {}),
        "two Patients": ("POST", "/ResearchStudy/$match",
                         mutated(lambda b: b["entry"].append(second_patient)), {}),
        "wrong Bundle type": ("POST", evaluate, mutated(_set(["type"], "MkNAME-Zeldarine")), {}),
        "entry not an array": ("POST", evaluate, mutated(_set(["entry"], {"MkNAME-Zeldarine": 1})), {}),
        "huge body": ("POST", evaluate, mutated(_set(["pad"], "MkNAME-Zeldarine" * 4000)), {}),
        "too deep": ("POST", evaluate, mutated(_set(["entry", 0, "resource", "extension"], [deep])), {}),
        "too many entries": ("POST", "/ResearchStudy/$match",
                             mutated(lambda b: b["entry"].extend([b["entry"][1]] * 60)), {}),
        "bad date": ("POST", evaluate + "?date=1961-07-13T00:00", json.dumps(marker_bundle()).encode(), {}),
        "bad date parameter": ("POST", evaluate, json.dumps({"resourceType": "Parameters", "parameter": [
            {"name": "bundle", "resource": marker_bundle()},
            {"name": "date", "valueDate": "MkNAME-Zeldarine"}]}).encode(), {}),  # fmt: skip
        "unknown study": ("POST", "/ResearchStudy/MkPID-7731/$evaluate-eligibility",
                          json.dumps(marker_bundle()).encode(), {}),
        "unknown read": ("GET", "/ResearchStudy/MkMRN-884213", b"", {}),
        "bad search value": ("GET", "/ResearchStudy?_count=MkMRN-884213&_elements=MkNAME-Zeldarine", b"", {}),
        "wrong media type": ("POST", evaluate, json.dumps(marker_bundle()).encode(), {"Content-Type": "text/plain"}),
        "wrong fhirVersion": ("POST", evaluate, json.dumps(marker_bundle()).encode(),
                              {"Content-Type": "application/fhir+json; fhirVersion=3.0"}),
    }  # fmt: skip


@pytest.fixture(scope="module")
def phi_app(mappings_dir: Path) -> Flask:
    return create_app(Config(mappings_dir=mappings_dir, max_body_bytes=40_000, max_json_depth=32,
                             max_bundle_entries=50))  # fmt: skip


@pytest.fixture()
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[pytest.LogCaptureFixture, io.StringIO]]:
    """Every log record at any level, also as the JSON lines the service writes to stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("service").setLevel(logging.DEBUG)
        yield caplog, stream
    root.removeHandler(handler)
    logging.getLogger("service").setLevel(logging.INFO)


def assert_no_marker(text: str, where: str, markers: list[str] = MARKERS) -> None:
    found = [m for m in markers if m in text]
    assert not found, f"{where}: {found}"


def call(client: FlaskClient, method: str, path: str, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/fhir+json", **headers}
    return client.open(path, method=method, data=body or None, headers=headers)


def test_error_paths_leak_nothing(phi_app: Flask, captured: tuple[pytest.LogCaptureFixture, io.StringIO]) -> None:
    caplog, stream = captured
    client = phi_app.test_client()
    for name, (method, path, body, headers) in error_cases().items():
        response = call(client, method, path, body, headers)
        assert response.status_code >= 400, name
        assert response.json["resourceType"] == "OperationOutcome", name
        assert_no_marker(response.get_data(as_text=True), name)
    assert_no_marker(caplog.text + "".join(str(r.__dict__) for r in caplog.records), "log records")
    assert_no_marker(stream.getvalue(), "JSON log lines")
    assert stream.getvalue().count('"logger":"service.access"') == len(error_cases())


def test_every_error_status_is_exercised(phi_app: Flask) -> None:
    client = phi_app.test_client()
    statuses = {call(client, *case).status_code for case in error_cases().values()}
    assert statuses >= {400, 404, 413, 415, 422}


def references_only(node: Any, markers: list[str], inside_reference: bool = False) -> list[str]:
    """Markers found in the JSON anywhere but a `reference` string."""
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in references_only(v, markers, k == "reference")]
    if isinstance(node, list):
        return [m for v in node for m in references_only(v, markers, inside_reference)]
    if isinstance(node, str) and not inside_reference:
        return [m for m in markers if m in node]
    return []


def test_successful_answers_cite_resources_only_by_reference(
    phi_app: Flask, captured: tuple[pytest.LogCaptureFixture, io.StringIO]
) -> None:
    caplog, stream = captured
    client = phi_app.test_client()
    invalid_observation = mutated(_set(["entry", 1, "resource", "effectiveDateTime"], "MkNOTE-freetext"))
    bodies = {"valid": json.dumps(marker_bundle()).encode(), "invalid Observation": invalid_observation}
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": marker_bundle()},
                                                              {"name": "date", "valueDate": "2026-11-20"}]}  # fmt: skip
    bodies["Parameters"] = json.dumps(parameters).encode()
    for name, body in bodies.items():
        for path in ("/ResearchStudy/NCT90000001/$evaluate-eligibility", "/ResearchStudy/$match"):
            response = call(client, "POST", path, body, {})
            assert response.status_code == 200, (name, path, response.get_data(as_text=True))
            answer = response.json
            assert answer["resourceType"] in ("Parameters", "Bundle")
            assert_no_marker(json.dumps(answer), f"{name} {path}", CONTENT)
            assert references_only(answer, REFERENCES) == [], (name, path)
    assert_no_marker(caplog.text + stream.getvalue(), "logs of successful calls")
    audits = [r.fields for r in caplog.records if r.name == "service.audit"]  # type: ignore[attr-defined]
    assert [a["phase"] for a in audits] == ["started", "completed"] * 6


def test_auth_failures_leak_nothing(
    mappings_dir: Path, tmp_path: Path, captured: tuple[pytest.LogCaptureFixture, io.StringIO]
) -> None:
    caplog, stream = captured
    issuer = TestIssuer()
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_file=issuer.write_jwks(
        tmp_path / "jwks.json"), auth_issuer=ISSUER, auth_audience=AUDIENCE))  # fmt: skip
    client = app.test_client()
    body = json.dumps(marker_bundle()).encode()
    tokens = [
        issuer.token(sub="MkNAME-Zeldarine", aud="MkMRN-884213"),
        issuer.token(sub="MkNAME-Zeldarine", iss="MkMRN-884213"),
        issuer.token(sub="MkNAME-Zeldarine", exp=1),
        issuer.token(scope="system/MkMRN-884213.read"),  # a valid token: its sub is the client, logged by design
        issuer.token(kid="MkNAME-Zeldarine"),
        "MkNAME-Zeldarine.MkMRN-884213.x",
    ]
    for token in tokens:
        response = call(client, "POST", "/ResearchStudy/$match", body, {"Authorization": f"Bearer {token}"})
        assert response.status_code in (401, 403)
        assert_no_marker(response.get_data(as_text=True) + str(response.headers), "auth failure answer")
    assert_no_marker(caplog.text + stream.getvalue(), "auth failure logs")

"""HTTP behaviour of the API: reads, caching headers, negotiation, every error status, request ids, logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from flask import Blueprint
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from service.api.body import fhir_json_body
from service.api.schemas import load_evaluation_date
from service.app import create_app
from service.config import Config
from service.errors import FhirError, Issue, MappingError
from tests.conftest import write_mappings

SECRET = "Jane-Doe-1961"  # stands for request content that must never reach a log or an answer


def assert_outcome(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.mimetype == "application/fhir+json"
    body = response.json
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    assert SECRET not in response.get_data(as_text=True)


# ----------------------------------------------------------------- reads and caching


def test_read_has_etag_and_last_modified(client: FlaskClient) -> None:
    response = client.get("/ResearchStudy/NCT90000001")
    assert response.status_code == 200
    body = response.json
    assert body["id"] == "NCT90000001"
    assert response.headers["ETag"] == f'W/"{body["meta"]["versionId"]}"'
    assert response.headers["Last-Modified"] == "Fri, 20 Nov 2026 00:00:00 GMT"  # last_reviewed: 2026-11-20


def test_if_none_match_gives_304_only_for_the_current_version(client: FlaskClient) -> None:
    etag = client.get("/ResearchStudy/NCT90000001").headers["ETag"]
    not_modified = client.get("/ResearchStudy/NCT90000001", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    changed = client.get("/ResearchStudy/NCT90000001", headers={"If-None-Match": 'W/"older"'})
    assert changed.status_code == 200


def test_read_summary_and_elements(client: FlaskClient) -> None:
    summary = client.get("/ResearchStudy/NCT90000001?_summary=true").json
    assert "title" in summary and "progressStatus" not in summary
    elements = client.get("/EvidenceVariable/NCT90000001-eligibility?_elements=title").json
    assert set(elements) == {"resourceType", "id", "meta", "title", "status"}
    assert elements["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_read_of_every_type(client: FlaskClient) -> None:
    for resource_type in ("StructureDefinition", "OperationDefinition"):
        bundle = client.get(f"/{resource_type}?_count=50").json
        assert bundle["total"] >= 1
        first = bundle["entry"][0]["resource"]
        assert client.get(f"/{resource_type}/{first['id']}").json == first


# ----------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("accept", "fmt", "mimetype"),
    [
        (None, None, "application/fhir+json"),
        ("application/fhir+json", None, "application/fhir+json"),
        ("application/json", None, "application/json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, "application/fhir+json"),
        ("application/fhir+json; fhirVersion=5.0", None, "application/fhir+json"),
        ("application/xml", "json", "application/fhir+json"),  # _format overrides Accept
        (None, "application/json", "application/json"),
    ],
)
def test_json_media_types(client: FlaskClient, accept: str | None, fmt: str | None, mimetype: str) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get("/metadata" + (f"?_format={fmt}" if fmt else ""), headers=headers)
    assert response.status_code == 200
    assert response.mimetype == mimetype


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [("application/xml", None), ("application/fhir+xml", None), (None, "xml"), (None, "turtle"),
     ("application/fhir+json; fhirVersion=4.0", None)],
)  # fmt: skip
def test_406_for_anything_but_json_r5(client: FlaskClient, accept: str | None, fmt: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get("/ResearchStudy" + (f"?_format={fmt}" if fmt else ""), headers=headers)
    assert_outcome(response, 406, "not-supported")


# ----------------------------------------------------------------- error statuses


def test_404_unknown_id_and_unknown_route(client: FlaskClient) -> None:
    assert_outcome(client.get(f"/ResearchStudy/{SECRET}"), 404, "not-found")
    assert_outcome(client.get("/Patient/1"), 404, "not-found")
    wrong_method = client.get("/ResearchStudy/$match")  # not an id: no read route; the operation is POST only
    assert_outcome(wrong_method, 405, "not-supported")
    assert wrong_method.headers["Allow"] == "POST"
    assert_outcome(client.get("/ResearchStudy/" + "x" * 65), 404, "not-found")


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/ResearchStudy/NCT90000001")
    assert_outcome(response, 405, "not-supported")
    assert "GET" in response.headers["Allow"]
    assert_outcome(client.options("/metadata"), 405, "not-supported")


def test_413_for_a_body_over_the_limit(client: FlaskClient) -> None:
    response = client.get("/metadata", data=b"x" * 5000, content_type="application/fhir+json")
    assert_outcome(response, 413, "too-long")


@pytest.fixture()
def posting_client(mappings_dir: Path) -> FlaskClient:
    """An app with a POST view built like the operations: body via fhir_json_body, errors raised."""
    app = create_app(Config(mappings_dir=mappings_dir, max_body_bytes=4096))
    bp = Blueprint("probe", __name__)

    @bp.post("/probe")
    def probe() -> dict[str, object]:
        body = fhir_json_body()
        if body["resourceType"] != "Bundle":
            raise FhirError(422, Issue("processing", "Expected a Bundle"))
        return {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}

    @bp.get("/boom")
    def boom() -> None:
        raise RuntimeError(SECRET)

    app.register_blueprint(bp)
    return app.test_client()


def test_post_body_statuses(posting_client: FlaskClient) -> None:
    bundle = json.dumps({"resourceType": "Bundle", "type": "collection"})
    assert posting_client.post("/probe", data=bundle, content_type="application/fhir+json").status_code == 200
    ok_r4 = posting_client.post("/probe", data=bundle, content_type="application/fhir+json; fhirVersion=4.0")
    assert ok_r4.status_code == 200
    assert_outcome(posting_client.post("/probe", data=bundle, content_type="text/plain"), 415, "not-supported")
    assert_outcome(posting_client.post("/probe", data=bundle), 415, "not-supported")
    assert_outcome(posting_client.post("/probe", data="{" + SECRET, content_type="application/json"), 400, "structure")
    assert_outcome(posting_client.post("/probe", data="[1]", content_type="application/json"), 400, "structure")
    patient = json.dumps({"resourceType": "Patient", "name": [{"text": SECRET}]})
    assert_outcome(posting_client.post("/probe", data=patient, content_type="application/json"), 422, "processing")
    big = json.dumps({"resourceType": "Bundle", "pad": "x" * 5000})
    assert_outcome(posting_client.post("/probe", data=big, content_type="application/json"), 413, "too-long")


def test_500_reveals_nothing_and_logs_no_message(posting_client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service"):
        response = posting_client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert_outcome(response, 500, "exception")
    assert "RuntimeError" not in response.get_data(as_text=True)
    assert "req-500" in response.json["issue"][0]["diagnostics"]
    assert SECRET not in caplog.text
    error = next(r for r in caplog.records if r.name == "service.errors")
    assert error.fields["exception"] == "RuntimeError"  # type: ignore[attr-defined]


# ----------------------------------------------------------------- request ids and logging


def test_request_id_echoed_or_generated(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/healthz", headers={"X-Request-ID": 'a b"<script>'}).headers["X-Request-ID"]
    assert unsafe != 'a b"<script>' and len(unsafe) == 32


def test_one_log_line_per_request_without_values(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service"):
        response = client.get(f"/ResearchStudy/NCT90000001?_elements=title&title={SECRET}",
                              headers={"X-Request-ID": "r-1"})  # fmt: skip
        client.get(f"/ResearchStudy/{SECRET}")
    access = [r for r in caplog.records if r.name == "service.access"]
    assert len(access) == 2
    fields = access[0].fields  # type: ignore[attr-defined]
    assert fields["request_id"] == "r-1" == response.headers["X-Request-ID"]
    assert fields["method"] == "GET" and fields["route"] == "/ResearchStudy/<fhirid:id>" and fields["status"] == 200
    assert isinstance(fields["duration_ms"], float)
    assert SECRET not in caplog.text and "NCT90000001" not in caplog.text


def test_log_line_is_json(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    from service.api.hooks import JsonFormatter

    record = logging.LogRecord("service.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"route": "/metadata", "status": 200}
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/metadata" and line["level"] == "INFO"


# ----------------------------------------------------------------- health and start-up


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "3 trials" in ready.json["issue"][0]["diagnostics"]


def test_bad_mapping_stops_the_start_naming_file_and_problem(tmp_path: Path) -> None:
    write_mappings(tmp_path)
    (tmp_path / "NCT90000009.yaml").write_text("format: 1\nid: NCT90000009\nresearch_study: {}\n")
    with pytest.raises(MappingError, match=r"NCT90000009\.yaml: research_study must be a ResearchStudy"):
        create_app(Config(mappings_dir=tmp_path))


def test_missing_mappings_dir_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="does not exist"):
        create_app(Config(mappings_dir=tmp_path / "absent"))


@pytest.mark.parametrize(
    ("query", "expected"), [("date=2026-01-31", dt.date(2026, 1, 31)), ("", None), ("other=1", None)]
)
def test_evaluation_date_argument(query: str, expected: dt.date | None) -> None:
    assert load_evaluation_date(MultiDict(parse_qsl(query))) == expected


@pytest.mark.parametrize(
    "query", ["date=2026-02-30", "date=31.01.2026", "date=2026-01-31T10:00", "date=&date=1", "date="]
)
def test_evaluation_date_argument_rejected(query: str) -> None:
    for _ in range(2):  # dates are remembered per text: a refused one is refused again
        with pytest.raises(FhirError) as caught:
            load_evaluation_date(MultiDict(parse_qsl(query, keep_blank_values=True)))
        assert caught.value.status == 400

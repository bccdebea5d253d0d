"""Abuse limits (nesting depth, entry count, rate limit, worker timeout) and the audit record per operation."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.api import guard
from service.app import create_app
from service.audit import AuditRecord
from service.config import Config
from service.fhir.audit_event import audit_event
from service.fhir.models import json_depth, validate
from service.fhir.patient_bundle import clear_validation_cache, validation_problem
from service.ratelimit import RateLimiter
from tests.conftest import EXTERNAL_DATA, r5check_or_skip
from tests.tokens import AUDIENCE, ISSUER, TestIssuer

REPO = Path(__file__).resolve().parents[1]
EVALUATE = "/ResearchStudy/NCT90000001/$evaluate-eligibility"
PATIENT = {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "birthDate": "1960-01-01"}}


def bundle(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [PATIENT, *entries]}


@pytest.fixture()
def limited(mappings_dir: Path) -> FlaskClient:
    config = Config(mappings_dir=mappings_dir, max_json_depth=20, max_bundle_entries=5, rate_limit_per_minute=0)
    return create_app(config).test_client()


def nested(levels: int) -> bytes:
    return b'{"resourceType":"Bundle","type":"collection","x":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


@pytest.mark.parametrize(("levels", "status"), [(20, 422), (1024, 422), (1025, 413), (100_000, 413)])
def test_body_nesting_depth_limit(limited: FlaskClient, levels: int, status: int) -> None:
    # The parser refuses more than 1024 levels ("depth limit exceeded"): 413. A shallower body is read
    # (here: it has no Patient, so 422); deep nesting inside a resource is checked before validation.
    response = limited.post(EVALUATE, data=nested(levels), content_type="application/fhir+json")
    assert response.status_code == status
    if status == 413:
        assert response.json["issue"][0]["code"] == "too-long"
        assert "nested deeper than the limit of 1024 levels" in response.json["issue"][0]["diagnostics"]


def test_a_resource_nested_deeper_than_the_limit_is_not_validated(limited: FlaskClient) -> None:
    deep: Any = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(25):
        deep = {"url": "http://example.org/x", "extension": [deep]}
    patient = {"fullUrl": "urn:uuid:p1", "resource": {**PATIENT["resource"], "extension": [deep]}}
    body = {"resourceType": "Bundle", "type": "collection", "entry": [patient]}
    response = limited.post(EVALUATE + "?date=2026-03-01", json=body)
    assert response.status_code == 422  # the Patient is always validated: it is not usable
    assert "nested deeper than the limit of 20 levels" in response.json["issue"][0]["diagnostics"]


def test_a_remembered_validation_still_refuses_a_resource_too_deep_for_the_limit_asked() -> None:
    # Validation results are remembered per digest and depth limit, and the depth is only walked on a
    # miss: the same resource must be refused under a tight limit after passing under a loose one.
    deep: Any = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(10):
        deep = {"url": "http://example.org/x", "extension": [deep]}
    patient = {"resourceType": "Patient", "birthDate": "1960-01-01", "extension": [deep]}
    clear_validation_cache()
    assert validation_problem(patient, "R4", 64) is None
    for _ in range(2):  # a miss, then a hit
        assert validation_problem(patient, "R4", 12) == "(root): nested deeper than the limit of 12 levels"
    assert validation_problem(patient, "R4", 64) is None


def test_json_depth_counts_containers() -> None:
    assert json_depth(1, 10) == 0 and json_depth({}, 10) == 1 and json_depth({"a": [{"b": []}]}, 10) == 4


def test_bundle_entry_limit(limited: FlaskClient) -> None:
    observation = {"resource": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}}
    assert limited.post(EVALUATE, json=bundle(*[observation] * 4)).status_code == 200
    too_many = limited.post(EVALUATE, json=bundle(*[observation] * 5))
    assert too_many.status_code == 413 and "more than the limit of 5 entries" in too_many.get_data(as_text=True)
    wrapped = {"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": bundle(*[observation] * 5)}]}
    assert limited.post("/ResearchStudy/$match", json=wrapped).status_code == 413


def test_real_bundles_are_within_the_default_limits() -> None:
    defaults = Config()
    for path in sorted((EXTERNAL_DATA / "patients").rglob("*.json")):
        document = json.loads(path.read_bytes())
        assert json_depth(document, defaults.max_json_depth) <= defaults.max_json_depth, path.name
        assert len(document.get("entry") or []) <= defaults.max_bundle_entries, path.name


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)  # one token per second
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0  # per client
    clock.now += 1.0
    assert limiter.take("a") == 0 and limiter.take("a") == 1
    slow = RateLimiter(per_minute=2, burst=1, clock=clock)
    assert slow.take("c") == 0 and slow.take("c") == 30


def test_rate_limit_is_429_with_retry_after_per_token_subject(mappings_dir: Path, tmp_path: Path) -> None:
    issuer = TestIssuer()
    app = create_app(Config(mappings_dir=mappings_dir, rate_limit_per_minute=6, rate_limit_burst=2, auth_enabled=True,
                            auth_jwks_file=issuer.write_jwks(tmp_path / "jwks.json"), auth_issuer=ISSUER,
                            auth_audience=AUDIENCE))  # fmt: skip
    client = app.test_client()
    first = {"Authorization": f"Bearer {issuer.token(sub='client-a')}"}
    second = {"Authorization": f"Bearer {issuer.token(sub='client-b')}"}
    assert [client.get("/ResearchStudy", headers=first).status_code for _ in range(2)] == [200, 200]
    throttled = client.get("/ResearchStudy", headers=first)
    assert throttled.status_code == 429 and throttled.json["issue"][0]["code"] == "throttled"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert client.get("/ResearchStudy", headers=second).status_code == 200
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))  # probes are not limited


def test_rate_limit_by_client_ip_without_auth(mappings_dir: Path) -> None:
    client = create_app(Config(mappings_dir=mappings_dir, rate_limit_per_minute=60, rate_limit_burst=1)).test_client()
    assert client.get("/metadata").status_code == 200
    assert client.get("/metadata").status_code == 429
    assert client.get("/metadata", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_gunicorn_timeout_comes_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "17")
    settings = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert settings["timeout"] == 17 and settings["graceful_timeout"] >= 17


# ----------------------------------------------------------------- audit


def audit_records(caplog: pytest.LogCaptureFixture, phase: str = "completed") -> list[dict[str, Any]]:
    records = [r.fields for r in caplog.records if r.name == "service.audit"]  # type: ignore[attr-defined]
    return [r for r in records if record_phase(r) == phase]


def record_phase(record: dict[str, Any]) -> str:
    """The `phase` of a plain record, or the `phase` detail of an AuditEvent (AUDIT_FORMAT=fhir)."""
    if "auditEvent" not in record:
        return str(record["phase"])
    details = record["auditEvent"]["entity"][0]["detail"]
    return next(str(d["valueString"]) for d in details if d["type"]["text"] == "phase")


def test_one_audit_record_per_operation_call(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service"):
        client.post(EVALUATE, json=bundle(), headers={"X-Request-ID": "audit-1"})
        client.post("/ResearchStudy/$match", json=bundle(), headers={"X-Request-ID": "audit-2"})
        client.post("/ResearchStudy/NCT99999999/$evaluate-eligibility", json=bundle())
        client.post(EVALUATE, data="{", content_type="application/json")
        client.get("/ResearchStudy")  # a read: no audit record
    records = audit_records(caplog)
    assert len(records) == 4
    evaluate, match, unknown, bad = records
    started = audit_records(caplog, "started")  # every call that reaches its operation is recorded first
    assert [r["request_id"] for r in started[:2]] == ["audit-1", "audit-2"] and len(started) == 4
    assert started[0]["status"] is None and started[0]["verdicts"] == {} and started[0]["study"] == "NCT90000001"
    assert evaluate["request_id"] == "audit-1" and evaluate["operation"] == "evaluate-eligibility"
    assert evaluate["study"] == "NCT90000001" and evaluate["agent"] == "anonymous" and evaluate["status"] == 200
    assert evaluate["verdicts"] == {"NCT90000001": "eligible"}
    # $match's default: the studies open to enrolment (NCT90000002 is active-but-not-recruiting).
    assert match["study"] == "all" and set(match["verdicts"]) == {"NCT90000001", "EU-2024-000001"}
    assert sum(match["counts"].values()) == 2 and evaluate["counts"] == {"eligible": 1}
    assert unknown["study"] == "unknown" and unknown["status"] == 404 and unknown["verdicts"] == {}
    assert bad["status"] == 400 and bad["study"] == "NCT90000001"
    assert evaluate["recorded"].endswith("Z")


def test_a_match_audit_record_lists_only_the_studies_shown(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Counts per verdict for the whole catalog, verdicts only for the page: small at any catalog size."""
    with caplog.at_level(logging.INFO, logger="service"):
        shown = client.post("/ResearchStudy/$match?_count=1", json=bundle()).get_json()
    (record,) = audit_records(caplog)
    (entry,) = [e for e in shown["entry"] if e["search"]["mode"] == "match"]
    assert list(record["verdicts"]) == [entry["resource"]["id"]]
    assert sum(record["counts"].values()) == shown["total"] == 2


def test_audit_names_the_token_subject(mappings_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer()
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, audit_format="fhir",
                            auth_jwks_file=issuer.write_jwks(tmp_path / "jwks.json"), auth_issuer=ISSUER,
                            auth_audience=AUDIENCE))  # fmt: skip
    token = issuer.token(sub="svc-ehr-7", client_id="ehr-integration")
    with caplog.at_level(logging.INFO, logger="service"):
        app.test_client().post(EVALUATE, json=bundle(), headers={"Authorization": f"Bearer {token}"})
    (record,) = audit_records(caplog)
    event = record["auditEvent"]
    validate(event)
    user, application = event["agent"]
    assert user["who"]["identifier"] == {"system": ISSUER, "value": "svc-ehr-7"} and user["requestor"] is True
    # The client id is the application agent, not a network address (agent.network[x] is for addresses).
    assert "networkString" not in user and "networkString" not in application
    assert application["who"]["identifier"]["value"] == "ehr-integration"
    assert application["type"]["coding"][0]["code"] == "110150" and application["requestor"] is False
    assert event["outcome"]["code"]["code"] == "0"
    assert {"reference": "ResearchStudy/NCT90000001"} in [e["what"] for e in event["entity"]]
    (started,) = audit_records(caplog, "started")
    validate(started["auditEvent"])
    assert "outcome" not in started["auditEvent"]


def test_a_call_whose_worker_dies_leaves_its_started_record(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def worker_killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit(1)  # what gunicorn raises in a worker it aborts on timeout

    monkeypatch.setattr("service.api.operations.evaluate_request", worker_killed)
    with caplog.at_level(logging.INFO, logger="service"), pytest.raises(SystemExit):
        client.post(EVALUATE, json=bundle(), headers={"X-Request-ID": "dies-1"})
    (started,) = audit_records(caplog, "started")
    assert started["request_id"] == "dies-1" and started["study"] == "NCT90000001" and started["status"] is None
    assert audit_records(caplog) == []


@pytest.mark.parametrize(("token_kind", "status"), [("none", 401), ("no scope", 403)])
def test_refused_calls_on_a_registered_study_name_it(
    mappings_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, token_kind: str, status: int
) -> None:
    issuer = TestIssuer()
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_file=issuer.write_jwks(
        tmp_path / "jwks.json"), auth_issuer=ISSUER, auth_audience=AUDIENCE))  # fmt: skip
    read_only = issuer.token(scope="system/ResearchStudy.read")
    headers = {"Authorization": f"Bearer {read_only}"} if token_kind != "none" else {}
    with caplog.at_level(logging.INFO, logger="service"):
        assert app.test_client().post(EVALUATE, json=bundle(), headers=headers).status_code == status
        app.test_client().post("/ResearchStudy/NCT99999999/$evaluate-eligibility", json=bundle(), headers=headers)
    registered, unregistered = audit_records(caplog)
    assert registered["study"] == "NCT90000001" and registered["status"] == status
    assert unregistered["study"] == "unknown"


def test_failed_authentications_are_rate_limited_per_address(mappings_dir: Path, tmp_path: Path) -> None:
    issuer = TestIssuer()
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_file=issuer.write_jwks(
        tmp_path / "jwks.json"), auth_issuer=ISSUER, auth_audience=AUDIENCE, auth_failures_per_minute=6))  # fmt: skip
    client = app.test_client()
    forged = {"Authorization": "Bearer not.a.jwt"}
    statuses = [client.get("/ResearchStudy", headers=forged).status_code for _ in range(guard.AUTH_FAILURE_BURST + 1)]
    assert statuses == [401] * guard.AUTH_FAILURE_BURST + [429]
    throttled = client.get("/ResearchStudy")  # no token at all: a failure too
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert throttled.json["issue"][0]["code"] == "throttled"
    # A valid token from the same address is served (behind a proxy every client shares one address).
    assert client.get("/ResearchStudy", headers={"Authorization": f"Bearer {issuer.token()}"}).status_code == 200
    assert client.get("/ResearchStudy", headers=forged, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 401


def test_audit_event_is_valid_r5(tmp_path: Path) -> None:
    records = [
        AuditRecord("r-1", "match", "all", "svc-1", "app-1", 200, "2026-11-22T03:00:00.000Z",
                    {"NCT1": "eligible", "NCT2": "undetermined"}, {"eligible": 1, "undetermined": 1, "ineligible": 7}),
        AuditRecord("r-2", "evaluate-eligibility", "unknown", "anonymous", None, 404, "2026-11-22T03:00:00.000Z"),
        AuditRecord("r-3", "evaluate-eligibility", "NCT1", "svc-1", None, 500, "2026-11-22T03:00:00.000Z"),
    ]  # fmt: skip
    files = []
    for index, record in enumerate(records):
        event = audit_event(record, ISSUER)
        validate(event)
        files.append(tmp_path / f"audit-{index}.json")
        files[-1].write_text(json.dumps(event), encoding="utf-8")
    assert [audit_event(r)["outcome"]["code"]["code"] for r in records] == ["0", "4", "8"]
    result = subprocess.run([str(r5check_or_skip()), *map(str, files)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.count("VALID errors=0") == len(files), result.stdout

"""Bearer-token authentication and per-route SMART scopes, with tokens the tests mint themselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.auth import MAX_JWKS_BYTES, KeySet, Requirement
from service.config import Config, ConfigError
from service.errors import FhirError
from service.fhir.models import validate
from tests.conftest import R5CHECK
from tests.tokens import AUDIENCE, ISSUER, TestIssuer

READ = Requirement("ResearchStudy", "read")
SEARCH = Requirement("ResearchStudy", "search")
OPERATION = Requirement("ResearchStudy", "operation")
PATIENT = {"resourceType": "Patient", "birthDate": "1960-01-01"}
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:p1", "resource": PATIENT}]}


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def auth_config(mappings_dir: Path, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory) -> Config:
    jwks = issuer.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    # Many rejected tokens come from one address here: the failure limit is tested in test_limits_audit.py.
    return Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_file=jwks, auth_issuer=ISSUER,
                  auth_audience=AUDIENCE, auth_clock_skew_seconds=60, auth_failures_per_minute=0)  # fmt: skip


@pytest.fixture(scope="module")
def auth_app(auth_config: Config) -> Flask:
    return create_app(auth_config)


@pytest.fixture()
def api(auth_app: Flask) -> FlaskClient:
    return auth_app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(signature)}"


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "attacker", "exp": now + 300, "scope": "system/*.*", **extra}


def assert_401(response, error: str | None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.json
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "login"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="trial-eligibility"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)


def test_valid_rs256_and_es256_tokens_read(api: FlaskClient, issuer: TestIssuer) -> None:
    for alg in ("RS256", "ES256"):
        response = api.get("/ResearchStudy/NCT90000001", headers=bearer(issuer.token(alg)))
        assert response.status_code == 200, alg
        assert response.json["id"] == "NCT90000001"


def test_no_token_is_401_without_error_code(api: FlaskClient) -> None:
    assert_401(api.get("/ResearchStudy"), None)
    assert_401(api.get("/ResearchStudy", headers={"Authorization": "Basic dXNlcjpwYXNz"}), None)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer  two  parts"])
def test_malformed_authorization_header_is_400_invalid_request(api: FlaskClient, header: str) -> None:
    response = api.get("/ResearchStudy", headers={"Authorization": header})
    assert response.status_code == 400 and response.json["resourceType"] == "OperationOutcome"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_rejected_tokens(api: FlaskClient, issuer: TestIssuer) -> None:
    now = int(time.time())
    other = TestIssuer()  # same kid, different key: the signature cannot verify
    public_pem = issuer.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = hand_made({"alg": "none", "typ": "JWT"}, claims())
    confused_header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    confused_input = hand_made(confused_header, claims()).rsplit(".", 1)[0]
    confused = f"{confused_input}.{b64(hmac.new(public_pem, confused_input.encode(), hashlib.sha256).digest())}"
    cases = {
        "expired": issuer.token(exp=now - 120, iat=now - 600),
        "not yet valid": issuer.token(nbf=now + 600),
        "wrong audience": issuer.token(aud="https://other.example.org"),
        "wrong issuer": issuer.token(iss="https://evil.example.org"),
        "wrong signature": other.token(),
        "alg none": unsigned,
        "HS256 with the public key as secret": confused,
        "unknown key id": issuer.token(kid="rotated-away"),
        "no exp": issuer.token(exp=None),
        "no sub": issuer.token(sub=None),
        "not a JWT": "not-a-jwt",
        "tampered payload": issuer.token().split(".")[0] + "." + b64(json.dumps(claims()).encode()) + ".sig",
    }
    for name, token in cases.items():
        response = api.get("/ResearchStudy/NCT90000001", headers=bearer(token))
        assert_401(response, "invalid_token")
        assert "attacker" not in response.get_data(as_text=True), name


def test_clock_skew_is_tolerated(api: FlaskClient, issuer: TestIssuer) -> None:
    now = int(time.time())
    assert api.get("/ResearchStudy", headers=bearer(issuer.token(exp=now - 20, iat=now - 300))).status_code == 200
    assert api.get("/ResearchStudy", headers=bearer(issuer.token(nbf=now + 20))).status_code == 200


def test_missing_scope_is_403_insufficient_scope(api: FlaskClient, issuer: TestIssuer) -> None:
    token = issuer.token(scope="system/EvidenceVariable.read")
    assert api.get("/EvidenceVariable", headers=bearer(token)).status_code == 200
    response = api.get("/ResearchStudy/NCT90000001", headers=bearer(token))
    assert response.status_code == 403
    assert response.json["issue"][0]["code"] == "forbidden"
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="system/ResearchStudy.read"' in challenge
    operation = api.post("/ResearchStudy/$match", json=BUNDLE, headers=bearer(token))
    assert operation.status_code == 403
    assert 'scope="system/ResearchStudy.$evaluate-eligibility"' in operation.headers["WWW-Authenticate"]


def test_operations_need_their_scope(api: FlaskClient, issuer: TestIssuer) -> None:
    reader = issuer.token(scope="system/*.read")
    assert api.post("/ResearchStudy/NCT90000001/$evaluate-eligibility", json=BUNDLE,
                    headers=bearer(reader)).status_code == 403  # fmt: skip
    evaluator = issuer.token(scope="system/ResearchStudy.$evaluate-eligibility")
    for path in ("/ResearchStudy/NCT90000001/$evaluate-eligibility", "/ResearchStudy/$match"):
        assert api.post(path, json=BUNDLE, headers=bearer(evaluator)).status_code == 200, path
    assert api.get("/ResearchStudy", headers=bearer(evaluator)).status_code == 403


def test_open_routes_need_no_token(api: FlaskClient) -> None:
    for path in ("/metadata", "/healthz", "/readyz"):
        assert api.get(path).status_code == 200, path


def test_unmatched_routes_answer_404_405_without_a_token(api: FlaskClient) -> None:
    # The routes are public (openapi.yaml); a 404/405 reveals nothing a token would protect.
    assert api.get("/Patient/1").status_code == 404
    response = api.open("/metadata", method="TRACE")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_metadata_advertises_smart_security(api: FlaskClient, tmp_path: Path) -> None:
    statement = api.get("/metadata").json
    validate(statement)
    if R5CHECK.exists() and shutil.which("node"):  # the security checks below run everywhere
        (tmp_path / "cs.json").write_text(json.dumps(statement), encoding="utf-8")
        result = subprocess.run([str(R5CHECK), str(tmp_path / "cs.json")], capture_output=True, text=True, check=False)
        assert "VALID errors=0" in result.stdout, result.stdout
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    for scope in (READ.scope, "system/EvidenceVariable.read", OPERATION.scope):
        assert scope in security["description"]
    assert OPERATION.scope == "system/ResearchStudy.$evaluate-eligibility"


def test_metadata_says_when_auth_is_off(client: FlaskClient) -> None:
    security = client.get("/metadata").json["rest"][0]["security"]
    assert "service" not in security and "off" in security["description"]


@pytest.mark.parametrize(
    ("scope", "read", "search", "operation"),
    [
        ("system/ResearchStudy.read", True, True, False),  # SMART v1
        ("system/ResearchStudy.rs", True, True, False),  # SMART v2
        ("system/ResearchStudy.r", True, False, False),
        ("system/ResearchStudy.s", False, True, False),
        ("system/ResearchStudy.cruds", True, True, False),
        ("system/*.read", True, True, False),
        ("system/*.rs", True, True, False),
        ("system/ResearchStudy.*", True, True, True),  # v1 "all"
        ("system/*.*", True, True, True),
        ("system/ResearchStudy.$evaluate-eligibility", False, False, True),
        ("system/EvidenceVariable.read", False, False, False),
        ("system/EvidenceVariable.$evaluate-eligibility", False, False, False),
        ("system/ResearchStudy.rs?status=active", False, False, False),  # narrowed by a query: not honoured
        ("system/ResearchStudy.sr", False, False, False),  # v2 letters out of order
        ("system/ResearchStudy.write", False, False, False),
        ("user/ResearchStudy.read", False, False, False),
        ("patient/*.read", False, False, False),
        ("ResearchStudy.read", False, False, False),
    ],
)
def test_scope_forms(scope: str, read: bool, search: bool, operation: bool) -> None:
    granted = frozenset({scope})
    assert (READ.granted_by(granted), SEARCH.granted_by(granted), OPERATION.granted_by(granted)) == (
        read, search, operation,
    )  # fmt: skip


def test_scp_list_claim_is_read(api: FlaskClient, issuer: TestIssuer) -> None:
    token = issuer.token(scope=None, scp=["system/ResearchStudy.read"])
    assert api.get("/ResearchStudy", headers=bearer(token)).status_code == 200


def test_auth_on_without_settings_stops_the_start(mappings_dir: Path) -> None:
    with pytest.raises(ConfigError, match="AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_FILE or AUTH_JWKS_URL"):
        create_app(Config(mappings_dir=mappings_dir, auth_enabled=True))


def test_unusable_jwks_file_stops_the_start(mappings_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": "nope"}')
    with pytest.raises(ConfigError, match="AUTH_JWKS_FILE"):
        create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_file=bad, auth_issuer=ISSUER,
                          auth_audience=AUDIENCE))  # fmt: skip


JWKS_URL = "https://idp.example.org/.well-known/jwks.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_jwks_url_is_fetched_once_cached_and_refetched_for_a_new_kid(issuer: TestIssuer) -> None:
    responses.get(JWKS_URL, json=issuer.jwks())
    clock = FakeClock()
    keys = KeySet(url=JWKS_URL, cache_seconds=300, timeout_seconds=2, clock=clock)
    keys.key("rsa-1", "RS256")
    keys.key("ec-1", "ES256")
    assert len(responses.calls) == 1  # cached
    clock.now += 301
    keys.key("rsa-1", "RS256")
    assert len(responses.calls) == 2  # cache expired
    with pytest.raises(Exception, match="unknown key"):
        keys.key("new-kid", "RS256")  # refetch refused: fetched less than 30 s ago
    assert len(responses.calls) == 2
    clock.now += 31
    with pytest.raises(Exception, match="unknown key"):
        keys.key("new-kid", "RS256")
    assert len(responses.calls) == 3  # one refetch for the unknown kid


@responses.activate
def test_jwks_url_down_is_503_with_retry_after(mappings_dir: Path, issuer: TestIssuer) -> None:
    responses.get(JWKS_URL, status=500)
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_url=JWKS_URL,
                            auth_issuer=ISSUER, auth_audience=AUDIENCE))  # fmt: skip
    response = app.test_client().get("/ResearchStudy", headers=bearer(issuer.token()))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json["issue"][0]["code"] == "transient"


@responses.activate
def test_jwks_url_end_to_end(mappings_dir: Path, issuer: TestIssuer) -> None:
    responses.get(JWKS_URL, json=issuer.jwks())
    app = create_app(Config(mappings_dir=mappings_dir, auth_enabled=True, auth_jwks_url=JWKS_URL,
                            auth_issuer=ISSUER, auth_audience=AUDIENCE))  # fmt: skip
    client = app.test_client()
    for _ in range(3):
        assert client.get("/ResearchStudy", headers=bearer(issuer.token("ES256"))).status_code == 200
    assert len(responses.calls) == 1


class TickingClock:
    """Each reading is one second after the previous one: a JWKS server that trickles its answer."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def padded_jwks(issuer: TestIssuer, size: int) -> bytes:
    return json.dumps({**issuer.jwks(), "padding": "x" * size}).encode()


@responses.activate
def test_jwks_fetch_has_a_size_limit(issuer: TestIssuer) -> None:
    responses.get(JWKS_URL, body=padded_jwks(issuer, 100_000))
    assert KeySet(url=JWKS_URL).key("rsa-1", "RS256") is not None  # a large but bounded JWKS is read
    responses.replace(responses.GET, JWKS_URL, body=padded_jwks(issuer, MAX_JWKS_BYTES))
    with pytest.raises(FhirError) as refused:
        KeySet(url=JWKS_URL).key("rsa-1", "RS256")
    assert refused.value.status == 503  # refused, like an unreachable JWKS: no keys


@responses.activate
def test_jwks_fetch_has_a_total_timeout(issuer: TestIssuer) -> None:
    # Each 16 KiB piece arrives "one second" after the previous one; the whole fetch may take 3 s.
    responses.get(JWKS_URL, body=padded_jwks(issuer, 100_000))
    with pytest.raises(FhirError) as refused:
        KeySet(url=JWKS_URL, timeout_seconds=3, clock=TickingClock()).key("rsa-1", "RS256")
    assert refused.value.status == 503
    quick = KeySet(url=JWKS_URL, timeout_seconds=3, clock=TickingClock())
    responses.replace(responses.GET, JWKS_URL, json=issuer.jwks())  # one piece: within the timeout
    assert quick.key("rsa-1", "RS256") is not None

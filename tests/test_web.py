"""The page's routes without a browser: landing redirect, the files with their security headers, the
contract at /openapi.yaml, open with auth on, FHIR negotiation of the API unchanged, and the page's
script calling only public FHIR routes of the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Config
from service.web import STATIC_DIR
from tests.conftest import write_mappings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    from tests.tokens import AUDIENCE, ISSUER, TestIssuer

    jwks = TestIssuer().write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    config = Config(
        mappings_dir=write_mappings(tmp_path_factory.mktemp("mappings")),
        auth_enabled=True, auth_issuer=ISSUER, auth_audience=AUDIENCE, auth_jwks_file=jwks,
    )  # fmt: skip
    return create_app(config).test_client()


def test_landing_redirects_to_the_page(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/app/"


@pytest.mark.parametrize(
    ("path", "mimetype", "marker"),
    [("/app/", "text/html", b"<main"), ("/app/app.js", "text/javascript", b"async function route"),
     ("/app/app.css", "text/css", b"@media print")],
)  # fmt: skip
def test_page_files_with_security_headers(client: FlaskClient, path: str, mimetype: str, marker: bytes) -> None:
    response = client.get(path, headers={"Accept": "text/html,application/xhtml+xml;q=0.9"})
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert marker in response.data
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["/app/nothing.js", "/app/../pyproject.toml", "/app/%2e%2e/service/app.py"])
def test_unknown_or_escaping_files_are_404_outcomes(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_openapi_document_is_served(client: FlaskClient) -> None:
    response = client.get("/openapi.yaml", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.data) == yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))


def test_fhir_negotiation_is_unchanged(client: FlaskClient) -> None:
    assert client.get("/metadata", headers={"Accept": "text/html"}).status_code == 406
    assert client.get("/ResearchStudy", headers={"Accept": "application/xml"}).status_code == 406
    assert client.get("/ResearchStudy").mimetype == "application/fhir+json"


def test_page_is_open_with_auth_on_and_the_api_is_not(secured: FlaskClient) -> None:
    for path in ("/", "/app/", "/app/app.js", "/openapi.yaml"):
        assert secured.get(path).status_code in (200, 302), path
    assert secured.get("/ResearchStudy").status_code == 401


def test_page_script_calls_only_public_routes_of_the_contract() -> None:
    """Built only on the public FHIR API: every path the script asks this service for is in openapi.yaml."""
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    called = set(re.findall(r"api\(`(/[A-Za-z$]+(?:/\$\{[^}]+\})?(?:/\$[a-z-]+)?)", script))
    called |= {m for m in re.findall(r'api\("(/[A-Za-z]+)"', script)}
    templated = {re.sub(r"\$\{[^}]+\}", "{id}", path) for path in called}
    documented = set(yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))["paths"])
    assert templated, "no API call found in app.js"
    assert templated <= documented, templated - documented
    assert {"/ResearchStudy", "/ResearchStudy/{id}", "/EvidenceVariable/{id}", "/ResearchStudy/$match",
            "/metadata"} <= templated  # fmt: skip
    # no storage of patient data or tokens in the browser
    assert "localStorage" not in script and "sessionStorage" not in script and "indexedDB" not in script
    assert "innerHTML" not in script  # texts are data: the page builds DOM nodes, never HTML strings

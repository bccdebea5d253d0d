"""Property-based runs of openapi.yaml against the app in-process: no 500, every answer as documented.

Two runs: authentication off (the local default; the document's `security` is stripped, as a client
of such an instance sees it) and on (a valid token with every scope; schemathesis also checks that
requests without or with a broken token are refused with 401).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from service.app import create_app
from service.config import Config
from tests.conftest import write_mappings
from tests.tokens import AUDIENCE, ISSUER, TestIssuer

REPO = Path(__file__).resolve().parents[1]
DOCUMENT: dict[str, Any] = yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))


def without_security(document: dict[str, Any]) -> dict[str, Any]:
    paths = {
        path: {method: {k: v for k, v in op.items() if k != "security"} for method, op in item.items()}
        for path, item in document["paths"].items()
    }
    components = {k: v for k, v in document["components"].items() if k != "securitySchemes"}
    return {**document, "paths": paths, "components": components}


def _config(**auth: Any) -> Config:
    directory = write_mappings(Path(tempfile.mkdtemp(prefix="mappings-")))
    return Config(mappings_dir=directory, default_count=2, max_count=50, **auth)


ISSUER_KEYS = TestIssuer()
TOKEN = ISSUER_KEYS.token()
open_schema = schemathesis.openapi.from_dict(without_security(DOCUMENT))
open_schema.app = create_app(_config())
secured_schema = schemathesis.openapi.from_dict(DOCUMENT)
# Schemathesis sends hundreds of token-less requests from one address, each expecting its 401: no limit on
# failed authentications here (tested in test_limits_audit.py).
secured_schema.app = create_app(_config(
    auth_enabled=True, auth_issuer=ISSUER, auth_audience=AUDIENCE, auth_failures_per_minute=0,
    auth_jwks_file=ISSUER_KEYS.write_jwks(Path(tempfile.mkdtemp(prefix="jwks-")) / "jwks.json"),
))  # fmt: skip


def excluded_for(case: schemathesis.Case) -> list[Any]:
    # A schema-valid operation body is not always usable: JSON Schema cannot say "exactly one valid
    # Patient", so a generated Bundle may rightly get 422. Every other check (no 500, documented
    # status, media type and body) still applies to the operations.
    return [positive_data_acceptance] if case.method == "POST" else []


@open_schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=[*excluded_for(case), ignored_auth])


@secured_schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_secured_api_conforms_to_openapi(case: schemathesis.Case) -> None:
    # The token is added to every request, so a case generated "without Authorization" still carries
    # one: negative data is covered by the open run; ignored_auth sends its own token-less requests.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=[*excluded_for(case), negative_data_rejection]
    )

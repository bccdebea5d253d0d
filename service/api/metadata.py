"""GET /metadata (the CapabilityStatement) and the container probes /healthz and /readyz.

Rule: the CapabilityStatement is computed once per app from what is registered, never hand-written.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from service.api.respond import base_url, config, fhir_response
from service.auth import OPERATION_SCOPE
from service.errors import FhirError, Issue
from service.fhir.capability import READABLE, Security, capability_statement
from service.fhir.outcome import operation_outcome

bp = Blueprint("metadata", __name__)
# Open to anyone: a client reads the CapabilityStatement (and its security) before it has a token.
REQUIREMENTS = {"metadata": None, "healthz": None, "readyz": None}


@bp.get("/metadata")
def metadata() -> Response:
    ext = current_app.extensions
    return fhir_response(capability_statement(base_url(), ext["started"], ext["operations"], security()))


def security() -> Security:
    scopes = tuple((f"system/{t}.read", f"read and search {t}") for t in READABLE)
    operations = ", ".join(f"${op.name}" for op in current_app.extensions["operations"])
    return Security(config().auth_enabled, (*scopes, (OPERATION_SCOPE, operations)))


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers HTTP."""
    return fhir_response(operation_outcome([Issue("informational", "alive", severity="information")]))


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the catalog is loaded (create_app fails otherwise, so this guards a half-built app)."""
    catalog = current_app.extensions.get("catalog")
    if catalog is None:
        raise FhirError(503, Issue("transient", "Catalog not loaded"))
    trials = len(catalog.trials)
    return fhir_response(
        operation_outcome([Issue("informational", f"ready: {trials} trials loaded", severity="information")])
    )

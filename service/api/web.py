"""The coordinator page at /app/, the landing redirect `/` → /app/, and the contract at /openapi.yaml.

Rule: these routes serve files only. The page (service/web/static) is a client of the public FHIR API
like any other: it holds the bearer token and the patient's data in the browser and sends them to the
FHIR endpoints, so nothing about a patient reaches or is stored by these routes. They are open (the
page asks for a token itself and the contract is public) and are not FHIR: no Accept negotiation
(hooks.UNNEGOTIATED_BLUEPRINTS); errors are still OperationOutcomes from the one handler.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory
from werkzeug.wrappers import Response as WerkzeugResponse

from service.errors import FhirError, Issue
from service.web import STATIC_DIR

bp = Blueprint("web", __name__)
REQUIREMENTS = {"landing": None, "page": None, "asset": None, "openapi": None}
OPENAPI = Path(__file__).resolve().parents[2] / "openapi.yaml"
# The page loads only its own files; it talks to this service and, for "load from a FHIR server", to
# the server the coordinator names (any http(s) origin). No inline script, no framing, no referrer.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https: http:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@bp.get("/")
def landing() -> WerkzeugResponse:
    return redirect("/app/", code=302)


@bp.get("/app/")
def page() -> Response:
    return _static("index.html")


@bp.get("/app/<path:asset>")
def asset(asset: str) -> Response:
    return _static(asset)


@bp.get("/openapi.yaml")
def openapi() -> Response:
    if not OPENAPI.is_file():
        raise FhirError(404, Issue("not-found", "openapi.yaml is not installed with this deployment"))
    response = Response(OPENAPI.read_bytes(), mimetype="application/yaml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _static(name: str) -> Response:
    # send_from_directory refuses paths leaving STATIC_DIR (werkzeug safe_join) with a 404.
    response = send_from_directory(STATIC_DIR, name, max_age=0)
    response.headers.update(PAGE_HEADERS)
    return response

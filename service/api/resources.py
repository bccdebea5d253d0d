"""Read and search views for every catalog resource type: GET /{type} and GET /{type}/{id}.

Rule: views only read arguments, call service.fhir and wrap the answer; errors are raised.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from service.api.respond import base_url, config, fhir_response, version_headers
from service.api.schemas import ReadArgs, SearchArgs, load_controls
from service.auth import Requirement
from service.catalog import Catalog
from service.errors import FhirError, Issue
from service.fhir.capability import READABLE
from service.fhir.search import SEARCH_PARAMS, parse_search, search_bundle, shape

bp = Blueprint("resources", __name__)
REQUIREMENTS: dict[str, Requirement | None] = {}
_READ_ARGS = ReadArgs()
_SEARCH_ARGS = SearchArgs()


def catalog() -> Catalog:
    loaded: Catalog = current_app.extensions["catalog"]
    return loaded


def wants_strict_handling() -> bool:
    """`Prefer: handling=strict` (FHIR http.html#prefer): unknown search parameters are errors."""
    prefs = [p.strip().replace(" ", "") for p in request.headers.get("Prefer", "").replace(";", ",").split(",")]
    return "handling=strict" in prefs


def read(resource_type: str, id: str) -> Response:
    cfg = config()
    controls = load_controls(request.args, _READ_ARGS, cfg.default_count, cfg.max_count)
    resource = catalog().get(resource_type, id)
    if resource is None:
        raise FhirError(404, Issue("not-found", f"No {resource_type} with this id"))
    headers = version_headers(resource)
    # If-None-Match with the current version: nothing changed (FHIR http.html#cread, RFC 9110 §13.1.2).
    etag = (resource.get("meta") or {}).get("versionId")
    if etag and (request.if_none_match.contains_weak(str(etag)) or request.if_none_match.star_tag):
        return Response(status=304, headers=headers)
    return fhir_response(shape(resource, controls), headers=headers)


def search(resource_type: str) -> Response:
    cfg = config()
    controls = load_controls(request.args, _SEARCH_ARGS, cfg.default_count, cfg.max_count)
    query = parse_search(resource_type, list(request.args.items(multi=True)), controls, wants_strict_handling())
    found = catalog()

    def full(view: dict[str, Any]) -> dict[str, Any]:
        return found.get(resource_type, str(view["id"])) or view

    return fhir_response(search_bundle(found.resources(resource_type), query, base_url(), full))


for _type in READABLE:
    if SEARCH_PARAMS.get(_type):
        bp.add_url_rule(f"/{_type}", f"search_{_type}", search, methods=["GET"], defaults={"resource_type": _type})
        REQUIREMENTS[f"search_{_type}"] = Requirement(_type, "search")
    bp.add_url_rule(f"/{_type}/<fhirid:id>", f"read_{_type}", read, methods=["GET"], defaults={"resource_type": _type})
    REQUIREMENTS[f"read_{_type}"] = Requirement(_type, "read")

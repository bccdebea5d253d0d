"""Building FHIR HTTP responses: JSON bytes, the negotiated media type, caching headers.

Rule: every body the API sends goes through `fhir_response` (so media type and encoding are uniform).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from flask import Response, current_app, g, request
from werkzeug.http import http_date

from service.config import Config

FHIR_JSON = "application/fhir+json"
JSON = "application/json"


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    mimetype = getattr(g, "mimetype", None) or FHIR_JSON
    response = Response(orjson.dumps(body), status=status, mimetype=mimetype)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def config() -> Config:
    cfg: Config = current_app.extensions["config"]
    return cfg


def base_url() -> str:
    """BASE_URL when configured (behind a proxy), else the URL the client used."""
    return config().base_url or request.host_url.rstrip("/")


def version_headers(resource: dict[str, Any]) -> dict[str, str]:
    """ETag W/"versionId" and Last-Modified from meta (FHIR http.html#versioning, #read)."""
    meta = resource.get("meta") or {}
    headers: dict[str, str] = {}
    if meta.get("versionId"):
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if meta.get("lastUpdated"):
        headers["Last-Modified"] = http_date(datetime.fromisoformat(str(meta["lastUpdated"])))
    return headers

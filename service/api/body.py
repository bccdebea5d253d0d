"""Request bodies of POST operations: FHIR JSON only, size-limited, parsed with orjson.

Rule: a body is checked in this order: media type (415), size (413), JSON (400; 413 past 1024 levels), and
Bundle entry count (413: too large in a dimension other than bytes), a FHIR resource (400).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from flask import request

from service.api.respond import FHIR_JSON, JSON, config
from service.config import ORJSON_MAX_DEPTH
from service.errors import FhirError, Issue

ACCEPTED_BODY_TYPES = (FHIR_JSON, JSON)


def fhir_version_param() -> str | None:
    """The `fhirVersion` MIME parameter of the body (e.g. 4.0 for R4 bundles), if the client sent one."""
    match = re.search(r"fhirVersion\s*=\s*\"?([0-9.]+)", request.headers.get("Content-Type", ""))
    return match.group(1) if match else None


def fhir_json_body() -> dict[str, Any]:
    if request.mimetype not in ACCEPTED_BODY_TYPES:
        raise FhirError(415, Issue("not-supported", f"Send the body as {FHIR_JSON} or {JSON}"))
    limit = config().max_body_bytes
    raw = request.get_data(cache=False)  # werkzeug raises 413 past MAX_CONTENT_LENGTH, even chunked
    if len(raw) > limit:
        raise FhirError(413, Issue("too-long", f"Request body larger than the limit of {limit} bytes"))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # The parser stops at 1024 levels ("depth limit exceeded"). Deeper nesting inside a resource is
        # checked where it could hurt, before a resource is validated (MAX_JSON_DEPTH): walking every
        # body here would cost more than parsing it.
        if "depth limit" in str(exc):
            raise _too_deep(ORJSON_MAX_DEPTH) from None
        raise FhirError(400, Issue("structure", "The body is not valid JSON")) from None
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirError(400, Issue("structure", "The body is not a FHIR resource (no resourceType)"))
    entries, max_entries = bundle_entry_count(body), config().max_bundle_entries
    if entries > max_entries:
        raise FhirError(413, Issue("too-long", f"The Bundle holds more than the limit of {max_entries} entries"))
    return body


def _too_deep(limit: int) -> FhirError:
    return FhirError(413, Issue("too-long", f"The JSON body is nested deeper than the limit of {limit} levels"))


def bundle_entry_count(body: dict[str, Any]) -> int:
    """Entries of the posted Bundle, or of the Bundles a Parameters body carries."""
    bundles: list[Any] = [body]
    if body.get("resourceType") == "Parameters" and isinstance(body.get("parameter"), list):
        bundles = [p.get("resource") for p in body["parameter"] if isinstance(p, dict)]
    return sum(
        len(b["entry"])
        for b in bundles
        if isinstance(b, dict) and b.get("resourceType") == "Bundle" and isinstance(b.get("entry"), list)
    )

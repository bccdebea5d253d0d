"""Per-request plumbing: request id, size limit, content negotiation, one structured log line.

Rule: the access log line carries request id, method, route rule, status and duration only:
never a body, a query value, a raw path (it holds ids) or a header value other than our request id.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from service.api.respond import FHIR_JSON, JSON, config
from service.errors import FhirError, Issue

ACCESS_LOG = logging.getLogger("service.access")
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed only when it is a plain token: it goes into logs and headers.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
FORMAT_ALIASES = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, JSON: JSON}
SUPPORTED_FHIR_VERSIONS = ("5.0",)
# Blueprints that serve files, not FHIR (the page, the contract): the browser's Accept is not negotiated.
UNNEGOTIATED_BLUEPRINTS = frozenset({"web"})
# Methods logged by name; any other token a client sends is logged as OTHER (it may carry anything).
LOGGED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, separators=(",", ":"))


def configure_logging(level: str) -> None:
    root = logging.getLogger("service")
    root.setLevel(level)
    if not any(getattr(h, "_service_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._service_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def install(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
    g.mimetype = FHIR_JSON
    limit = config().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise FhirError(413, Issue("too-long", f"Request body larger than the limit of {limit} bytes"))
    if request.blueprint not in UNNEGOTIATED_BLUEPRINTS:
        g.mimetype = _negotiate()


def _negotiate() -> str:
    """`_format` wins over Accept (FHIR http.html#mime-type); anything but JSON is 406."""
    fmt = request.args.get("_format")
    if fmt is not None:
        chosen = FORMAT_ALIASES.get(fmt.split(";")[0].strip())
        if chosen is None:
            raise FhirError(406, Issue("not-supported", "Only JSON is supported (_format=json)"))
        return chosen
    accept = request.accept_mimetypes
    if not accept:
        return FHIR_JSON
    best, best_quality = None, 0.0
    for value, quality in accept:
        # MIME parameters (fhirVersion) are compared apart: werkzeug's best_match would drop the entry.
        base, _, params = value.partition(";")
        base = base.strip().lower()
        version = re.search(r"fhirversion\s*=\s*\"?([0-9.]+)", params, re.IGNORECASE)
        if base == FHIR_JSON and version and not version.group(1).startswith(SUPPORTED_FHIR_VERSIONS):
            raise FhirError(406, Issue("not-supported", "This server answers FHIR R5 (fhirVersion=5.0) only"))
        for offer in (FHIR_JSON, JSON):
            if quality > best_quality and base in (offer, "*/*", "application/*"):
                best, best_quality = offer, quality
    if best is None:
        raise FhirError(406, Issue("not-supported", f"Acceptable media types: {FHIR_JSON}, {JSON}"))
    return best


def _finish(response: Response) -> Response:
    request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    started = getattr(g, "started", None)
    duration = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    ACCESS_LOG.info(
        "request",
        extra={"fields": {
            "request_id": request_id,
            "method": request.method if request.method in LOGGED_METHODS else "OTHER",
            "route": rule,
            "status": response.status_code,
            "duration_ms": round(duration, 2),
        }},
    )  # fmt: skip
    return response

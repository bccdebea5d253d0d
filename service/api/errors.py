"""The one error handler: FhirError, werkzeug HTTPException or any Exception → OperationOutcome + status.

Rule: a 500 says nothing about internals; its log line has the exception type and code locations,
not the exception message (which may quote request content).
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.api.respond import fhir_response
from service.errors import FhirError, Issue
from service.fhir.outcome import issue_code_for_status, operation_outcome

LOG = logging.getLogger("service.errors")
MESSAGES = {
    400: "Bad request",
    404: "No resource or route at this address",
    405: "Method not allowed here",
    406: "Not acceptable: this server answers application/fhir+json or application/json",
    413: "Request body too large",
    415: "Unsupported media type: send application/fhir+json or application/json",
    422: "Unprocessable content",
}


def install(app: Flask) -> None:
    app.register_error_handler(Exception, handle)


def handle(exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, FhirError):
        status, issues = exc.status, exc.issues
        headers.update(exc.headers)
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        issues = (Issue(issue_code_for_status(status), MESSAGES.get(status, exc.name)),)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    else:
        status = 500
        request_id = getattr(g, "request_id", "")
        issues = (Issue("exception", f"Internal error; the server log has details under request id {request_id}"),)
        where = [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)]
        LOG.error(
            "unhandled exception",
            extra={"fields": {"request_id": request_id, "exception": type(exc).__name__, "traceback": where}},
        )
    return fhir_response(operation_outcome(issues), status=status, headers=headers)

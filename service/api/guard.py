"""Who may call what: bearer-token authentication and scopes per route, the rate limit, the audit record.

Rule: every route declares its Requirement (None = open: /metadata and the probes) in its module's
REQUIREMENTS; a route that declares nothing still needs a valid token when authentication is on.
A request no route matches gets its 404/405 without a token: the routes are public (openapi.yaml).
Failed authentications (401) are limited per client IP (AUTH_FAILURES_PER_MINUTE): past it they are
429. Failures are FhirErrors rendered by the one error handler. The operations are audited when they
start and when they end (service.audit), naming the study whenever it is registered.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, request

from service.audit import AUDIT_LOG, AuditRecord, emit, now_instant
from service.auth import ANONYMOUS, Principal, Requirement, TokenVerifier, bearer_token, forbidden
from service.config import Config
from service.errors import FhirError, Issue
from service.fhir.audit_event import audit_event
from service.ratelimit import RateLimiter

# The probes answer every caller at any rate (orchestrators poll them).
UNLIMITED = frozenset({"metadata.healthz", "metadata.readyz"})
# Marker for "no declared requirement": authentication is still needed (distinct from None = open).
ANY_TOKEN = Requirement("*", "any")
AUDITED = {"operations.evaluate_eligibility": "evaluate-eligibility", "operations.match": "match"}
# Failed authentications a client IP may make at once before the per-minute rate applies.
AUTH_FAILURE_BURST = 10


def install(app: Flask, config: Config, requirements: dict[str, Requirement | None]) -> None:
    app.extensions["requirements"] = requirements
    app.extensions["verifier"] = TokenVerifier.from_config(config) if config.auth_enabled else None
    app.extensions["rate_limiter"] = (
        RateLimiter(config.rate_limit_per_minute, config.rate_limit_burst) if config.rate_limit_per_minute else None
    )
    app.extensions["auth_failure_limiter"] = (
        RateLimiter(config.auth_failures_per_minute, AUTH_FAILURE_BURST)
        if config.auth_enabled and config.auth_failures_per_minute
        else None
    )
    app.before_request(_guard)
    app.before_request(_audit_start)
    app.after_request(_audit)


def principal() -> Principal:
    found: Principal = getattr(g, "principal", ANONYMOUS)
    return found


def _guard() -> None:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    requirements: dict[str, Requirement | None] = current_app.extensions["requirements"]
    verifier: TokenVerifier | None = current_app.extensions["verifier"]
    if verifier is not None and endpoint is not None and requirements.get(endpoint, ANY_TOKEN) is not None:
        g.principal = _authenticate(verifier)
        requirement = requirements.get(endpoint) if endpoint else None
        if requirement is not None and not requirement.granted_by(g.principal.scopes):
            raise forbidden(requirement)
    limiter: RateLimiter | None = current_app.extensions["rate_limiter"]
    if limiter is not None and endpoint not in UNLIMITED:
        # Behind a proxy every client shares the proxy's address unless tokens identify them (README).
        client = f"sub:{g.principal.subject}" if "principal" in g else f"ip:{request.remote_addr}"
        wait = limiter.take(client)
        if wait:
            raise _throttled(wait, "Too many requests from this client; retry later")


def _authenticate(verifier: TokenVerifier) -> Principal:
    """A failed authentication takes a token from the address's bucket; with the bucket empty it is a 429
    (nothing learnt from trying more tokens). A valid token is always served: behind a proxy, every
    client shares the proxy's address, and one client's failures must not lock the others out."""
    try:
        return verifier.verify(bearer_token(request.headers.get("Authorization")))
    except FhirError as exc:
        limiter: RateLimiter | None = current_app.extensions["auth_failure_limiter"]
        wait = limiter.take(f"ip:{request.remote_addr}") if exc.status == 401 and limiter is not None else 0
        if wait:
            raise _throttled(wait, "Too many failed authentications from this address; retry later") from None
        raise


def _throttled(wait: int, text: str) -> FhirError:
    return FhirError(429, Issue("throttled", text), headers={"Retry-After": str(wait)})


def _audit_start() -> None:
    """The 'started' record: written before the operation runs, so a call whose worker dies is traceable."""
    _write_audit(None)


def _audit(response: Response) -> Response:
    _write_audit(response.status_code)
    return response


def _write_audit(status: int | None) -> None:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    operation = AUDITED.get(endpoint or "")
    # Not built when the log level drops it anyway (emit logs at INFO): two records cost ~3% of a request.
    if operation is None or not AUDIT_LOG.isEnabledFor(logging.INFO):
        return
    who = principal()
    config: Config = current_app.extensions["config"]
    record = AuditRecord(
        request_id=getattr(g, "request_id", ""),
        operation=operation,
        study=_audited_study(operation),
        agent=who.subject,
        client_id=who.client_id,
        status=status,
        recorded=now_instant(),
        verdicts=dict(getattr(g, "audit_verdicts", {})) if status is not None else {},
        counts=dict(getattr(g, "audit_counts", {})) if status is not None else {},
    )
    emit(record, audit_event(record, config.auth_issuer) if config.audit_format == "fhir" else None)


def _audited_study(operation: str) -> str:
    """The registered study the call names (also when it was refused: 401, 403, 429), else "unknown"."""
    if operation == "match":
        return "all"
    study = str((request.view_args or {}).get("id"))
    return study if study in current_app.extensions["catalog"].trials else "unknown"

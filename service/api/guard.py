"""Who may call what: bearer-token authentication and scopes per route, the rate limit, the audit record.

Rule: every route declares its Requirement (None = open: /metadata and the probes) in its module's
REQUIREMENTS; a route that declares nothing still needs a valid token when authentication is on.
A request no route matches gets its 404/405 without a token: the routes are public (openapi.yaml).
Failures are FhirErrors rendered by the one error handler.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from service.audit import AuditRecord, emit, now_instant
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


def install(app: Flask, config: Config, requirements: dict[str, Requirement | None]) -> None:
    app.extensions["requirements"] = requirements
    app.extensions["verifier"] = TokenVerifier.from_config(config) if config.auth_enabled else None
    app.extensions["rate_limiter"] = (
        RateLimiter(config.rate_limit_per_minute, config.rate_limit_burst) if config.rate_limit_per_minute else None
    )
    app.before_request(_guard)
    app.after_request(_audit)


def principal() -> Principal:
    found: Principal = getattr(g, "principal", ANONYMOUS)
    return found


def _guard() -> None:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    requirements: dict[str, Requirement | None] = current_app.extensions["requirements"]
    verifier: TokenVerifier | None = current_app.extensions["verifier"]
    if verifier is not None and endpoint is not None and requirements.get(endpoint, ANY_TOKEN) is not None:
        g.principal = verifier.verify(bearer_token(request.headers.get("Authorization")))
        requirement = requirements.get(endpoint) if endpoint else None
        if requirement is not None and not requirement.granted_by(g.principal.scopes):
            raise forbidden(requirement)
    limiter: RateLimiter | None = current_app.extensions["rate_limiter"]
    if limiter is not None and endpoint not in UNLIMITED:
        # Behind a proxy every client shares the proxy's address unless tokens identify them (README).
        client = f"sub:{g.principal.subject}" if "principal" in g else f"ip:{request.remote_addr}"
        wait = limiter.take(client)
        if wait:
            raise FhirError(
                429, Issue("throttled", "Too many requests from this client; retry later"),
                headers={"Retry-After": str(wait)},
            )  # fmt: skip


def _audit(response: Response) -> Response:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    operation = AUDITED.get(endpoint or "")
    if operation is None:
        return response
    who = principal()
    config: Config = current_app.extensions["config"]
    record = AuditRecord(
        request_id=getattr(g, "request_id", ""),
        operation=operation,
        study=getattr(g, "audit_study", "all" if operation == "match" else "unknown"),
        agent=who.subject,
        client_id=who.client_id,
        status=response.status_code,
        recorded=now_instant(),
        verdicts=dict(getattr(g, "audit_verdicts", {})),
        counts=dict(getattr(g, "audit_counts", {})),
    )
    emit(record, audit_event(record, config.auth_issuer) if config.audit_format == "fhir" else None)
    return response

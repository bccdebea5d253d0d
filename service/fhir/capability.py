"""The CapabilityStatement: built from what the server registers, so it lists exactly what it supports.

Rule: no hand-kept list of search parameters or operations here: they come from
service.fhir.search.SEARCH_PARAMS and the OperationSupport values the API modules register.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from service.fhir.search import SEARCH_PARAMS, SearchParam

FHIR_VERSION = "5.0.0"
try:
    VERSION = metadata.version("trial-eligibility-service")
except metadata.PackageNotFoundError:  # running from a checkout that was not pip-installed
    VERSION = "0.0.0"
# Resource types served and their interactions; search-type wherever SEARCH_PARAMS has parameters.
READABLE: tuple[str, ...] = ("ResearchStudy", "EvidenceVariable", "StructureDefinition", "OperationDefinition")
RESULT_PARAMS_DOC = (
    "Every search accepts `_count` (page size, paging links self/first/previous/next/last), `_offset` "
    "(first entry of the page), `_summary` (true|text|data|count|false) and `_elements`; reads accept "
    "`_summary` and `_elements`. Comma-separated values are ORed, repeated parameters ANDed. Unknown "
    "parameters are ignored (absent from the self link, reported by an OperationOutcome entry) unless the "
    'request carries `Prefer: handling=strict`, then 400. Reads send ETag W/"versionId" and Last-Modified; '
    "If-None-Match gives 304."
)


SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


@dataclass(frozen=True)
class Security:
    """How the server authenticates (rest.security): SMART backend services bearer tokens, or nothing."""

    enabled: bool
    # scope → what it grants, in the order the description lists them
    scopes: tuple[tuple[str, str], ...] = ()

    def render(self) -> dict[str, Any]:
        if not self.enabled:
            return {
                "cors": False,
                "description": "Authentication is off on this instance (AUTH_ENABLED=false): for local use only.",
            }
        lines = "\n".join(f"- `{scope}`: {grants}" for scope, grants in self.scopes)
        return {
            "cors": False,
            "service": [
                {
                    "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                    "text": "SMART Backend Services: OAuth 2.0 bearer JWT (RS256/ES256)",
                }
            ],
            "description": (
                "Send `Authorization: Bearer <access token>` issued by the configured authorization server "
                "(SMART Backend Services, client credentials). /metadata, /healthz and /readyz are open; "
                "every other request needs a valid token (401 otherwise) holding the route's scope "
                "(403 otherwise). SMART v1 (`.read`, `.*`) and v2 (`.rs`) forms are accepted, also on `system/*`.\n"
                + lines
            ),
        }


@dataclass(frozen=True)
class OperationSupport:
    """An operation the API serves: `definition` is its OperationDefinition canonical url."""

    name: str  # without the leading `$`
    definition: str
    resource_type: str = "ResearchStudy"
    documentation: str | None = None


def capability_statement(
    base_url: str, date: str, operations: Sequence[OperationSupport] = (), security: Security | None = None
) -> dict[str, Any]:
    resources = []
    for resource_type in READABLE:
        params = SEARCH_PARAMS.get(resource_type, ())
        entry: dict[str, Any] = {
            "type": resource_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            "interaction": [{"code": "read"}] + ([{"code": "search-type"}] if params else []),
            "readHistory": False,
            "conditionalRead": "not-match",
        }
        if params:
            entry["searchParam"] = [_search_param(p) for p in params]
        ops = [_operation(op) for op in operations if op.resource_type == resource_type]
        if ops:
            entry["operation"] = ops
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Trial eligibility service",
        "kind": "instance",
        "software": {"name": "trial-eligibility-service", "version": VERSION},
        "implementation": {
            "description": "Oncology trials as ResearchStudy + EvidenceVariable; eligibility evaluation",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": RESULT_PARAMS_DOC,
                "security": (security or Security(enabled=False)).render(),
                "resource": resources,
            }
        ],
    }


def _search_param(param: SearchParam) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "type": param.type, "documentation": param.documentation}
    if param.definition:
        out["definition"] = param.definition
    return out


def _operation(op: OperationSupport) -> dict[str, Any]:
    out: dict[str, Any] = {"name": op.name, "definition": op.definition}
    if op.documentation:
        out["documentation"] = op.documentation
    return out

"""An audit record (service.audit.AuditRecord) rendered as an R5 AuditEvent.

Rule: the AuditEvent carries exactly the record's facts (agent, client, study, verdicts, request id, status
or "started"): the patient is not named in it, so it holds no PHI. The client id of the token is a second
agent (an application, DICOM 110150), not a network address.
"""

from __future__ import annotations

from html import escape
from typing import Any

from service.audit import AuditRecord

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
SERVICE = "trial-eligibility-service"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"


def audit_event(record: AuditRecord, issuer: str | None = None) -> dict[str, Any]:
    entity: list[dict[str, Any]] = [
        {
            "what": {"display": f"request {record.request_id}"},
            "detail": [
                _detail("request-id", record.request_id),
                _detail("operation", f"${record.operation}"),
                _detail("phase", record.phase),
                *(_detail(f"{verdict}-count", str(n)) for verdict, n in sorted(record.counts.items())),
            ],
        }
    ]
    verdicts: list[tuple[str, str | None]] = [*sorted(record.verdicts.items())] or [(record.study, None)]
    for study, verdict in verdicts:
        what = {"reference": f"ResearchStudy/{study}"} if study not in ("all", "unknown") else {"display": study}
        item: dict[str, Any] = {"what": what}
        if verdict:
            item["detail"] = [_detail("eligibility", verdict)]
        entity.append(item)
    who: dict[str, Any] = {"display": record.agent}
    if record.agent != "anonymous":
        who["identifier"] = {"value": record.agent, **({"system": issuer} if issuer else {})}
    agents: list[dict[str, Any]] = [{"who": who, "requestor": True}]
    if record.client_id:
        application = {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]}
        client = {"identifier": {"value": record.client_id, **({"system": issuer} if issuer else {})}}
        agents.append({"type": application, "who": client, "requestor": False})
    outcome = f"HTTP {record.status}" if record.status is not None else "started"
    summary = f"${record.operation} on {record.study} by {record.agent}: {outcome}"
    event = {
        "resourceType": "AuditEvent",
        # dom-6: a narrative for robust management.
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(summary)}</div>'},
        "category": [{"coding": [{"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}]}],
        "code": {"coding": [{"system": RESTFUL_INTERACTION, "code": "operation", "display": "operation"}]},
        "action": "E",
        "recorded": record.recorded,
        "agent": agents,
        "source": {"observer": {"display": SERVICE}},
        "entity": entity,
    }
    if record.status is not None:
        event["outcome"] = {"code": _outcome(record.status), "detail": [{"text": outcome}]}
    return event


def _detail(kind: str, value: str) -> dict[str, Any]:
    return {"type": {"text": kind}, "valueString": value}


def _outcome(status: int) -> dict[str, str]:
    """0 success, 4 minor failure (the client's request was refused), 8 serious failure (server)."""
    if status < 400:
        code, display = "0", "Success"
    elif status < 500:
        code, display = "4", "Minor failure"
    else:
        code, display = "8", "Serious failure"
    return {"system": OUTCOME, "code": code, "display": display}

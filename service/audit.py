"""Audit trail of the operations: one structured record per $evaluate-eligibility / $match call.

Rule: a record is written when the call starts (`phase` "started", no status yet: a call whose worker
dies still leaves that one) and when it ends ("completed", with status and verdicts). A record says who
(token subject and client id, or "anonymous"), what (operation, study id or "all"), when, the
verdict(s), the request id and the HTTP status; never patient content (no names, identifiers, birth
dates, resource ids or fullUrls of the posted bundle).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

AUDIT_LOG = logging.getLogger("service.audit")


@dataclass(frozen=True)
class AuditRecord:
    request_id: str
    operation: str  # "evaluate-eligibility" | "match"
    study: str  # the registered study id, "all" for $match, "unknown" for an id that is not registered
    agent: str  # token `sub`, or "anonymous" when authentication is off or failed
    client_id: str | None
    status: int | None  # None while the call runs (phase "started")
    recorded: str  # UTC instant, ISO 8601
    # study id → eligible | ineligible | undetermined, for the studies the answer shows ($match: its page,
    # at most MAX_COUNT), so a record stays small whatever the size of the catalog.
    verdicts: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # verdict → how many studies had it

    @property
    def phase(self) -> str:
        return "started" if self.status is None else "completed"

    def fields(self) -> dict[str, Any]:
        return {"audit": "operation", "phase": self.phase, **asdict(self)}


def now_instant() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emit(record: AuditRecord, fhir: dict[str, Any] | None = None) -> None:
    """Log the record (AUDIT_FORMAT=record) or, when given, its FHIR AuditEvent (AUDIT_FORMAT=fhir)."""
    fields = {"request_id": record.request_id, "auditEvent": fhir} if fhir is not None else record.fields()
    AUDIT_LOG.info("audit", extra={"fields": fields})

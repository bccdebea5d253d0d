"""Errors that carry their own OperationOutcome issues: raise anywhere, rendered by one handler.

Rule: no module builds an error response itself; it raises `FhirError` (or a subclass) with the
HTTP status and the issues, and `service.api.errors` turns it into an OperationOutcome.
Diagnostics never contain request content (names, identifiers, values): they describe the shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: `code` from http://hl7.org/fhir/issue-type."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()


class FhirError(Exception):
    """An error answered as an OperationOutcome with `status`."""

    def __init__(self, status: int, *issues: Issue, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(issues[0].diagnostics if issues else str(status))
        self.status = status
        self.issues = issues
        # Response headers the status needs (WWW-Authenticate on 401/403, Retry-After on 429/503).
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, status: int, code: str, diagnostics: str) -> FhirError:
        return cls(status, Issue(code=code, diagnostics=diagnostics))


class MappingError(Exception):
    """A mapping file in mappings/ is unusable: the message names the file and the problem."""

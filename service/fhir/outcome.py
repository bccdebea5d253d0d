"""OperationOutcome rendering: service.errors.Issue values → R5 OperationOutcome JSON.

Rule: the only place an OperationOutcome is built; diagnostics are taken as given (never request content).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from service.errors import Issue

# http://hl7.org/fhir/issue-type codes per HTTP status, for errors raised without their own issues.
ISSUE_CODE_BY_STATUS: dict[int, str] = {
    400: "invalid",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def issue_code_for_status(status: int) -> str:
    return ISSUE_CODE_BY_STATUS.get(status, "exception" if status >= 500 else "invalid")


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome (issue 1..*): an empty list gives one informational 'success' issue."""
    rendered = [_issue(issue) for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "ok"}]
    return {"resourceType": "OperationOutcome", "text": _narrative(rendered), "issue": rendered}


def _narrative(issues: list[dict[str, Any]]) -> dict[str, str]:
    """dom-6 (best practice): a human-readable narrative, here the issues as a list."""
    items = "".join(
        f"<li>{escape(i['severity'])} ({escape(i['code'])}): {escape(i.get('diagnostics', ''))}</li>" for i in issues
    )
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>'}


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
    if issue.expression:
        out["expression"] = list(issue.expression)
    return out

"""Query-argument schemas (marshmallow): the result-shaping parameters of reads and searches.

Rule: invalid arguments become one 400 OperationOutcome naming the parameter, never its value.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from service.errors import FhirError, Issue
from service.fhir.search import SORT_KEYS, Controls
from service.fhir.subset import SUMMARY_MODES

ELEMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
MAX_OFFSET = 1_000_000


def _element_list(value: str) -> None:
    names = [n.strip() for n in value.split(",")]
    if not all(ELEMENT_NAME.match(n) for n in names):
        raise ValidationError("a comma-separated list of element names")


class ReadArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    summary = fields.String(data_key="_summary", validate=validate.OneOf([m for m in SUMMARY_MODES if m != "count"]))
    elements = fields.String(data_key="_elements", validate=_element_list)
    format = fields.String(data_key="_format")


def _sort_list(value: str) -> None:
    keys = [k.strip() for k in value.split(",")]
    if not keys or not all(k.lstrip("-") in SORT_KEYS and k.count("-") <= 1 for k in keys):
        raise ValidationError(f"a comma-separated list of {', '.join(SORT_KEYS)}, each optionally after '-'")


class SearchArgs(ReadArgs):
    summary = fields.String(data_key="_summary", validate=validate.OneOf(SUMMARY_MODES))
    sort = fields.String(data_key="_sort", validate=_sort_list)
    total = fields.String(data_key="_total", validate=validate.OneOf(("none", "estimate", "accurate")))
    count = fields.Integer(data_key="_count", strict=False, validate=validate.Range(min=0, max=MAX_OFFSET))
    offset = fields.Integer(data_key="_offset", strict=False, validate=validate.Range(min=0, max=MAX_OFFSET))


class EvaluationArgs(Schema):
    """Query arguments of $evaluate-eligibility and $match: `date` = the evaluation date (default today)."""

    class Meta:
        unknown = EXCLUDE

    date = fields.Date(data_key="date", format="%Y-%m-%d")


def load_evaluation_date(args: MultiDict[str, str]) -> dt.date | None:
    """The `date` query argument, or None (the caller then uses today); 400 when not YYYY-MM-DD."""
    given = args.getlist("date")
    if len(given) > 1:
        raise FhirError(400, Issue("invalid", "Parameter date may be given only once"))
    return _evaluation_date(given[0]) if given else None


@lru_cache(maxsize=256)
def _evaluation_date(raw: str) -> dt.date:
    """Remembered per text: clients repeat the same few dates, and a marshmallow load costs ~3% of a small
    $evaluate-eligibility (a refused value raises each time: exceptions are not cached)."""
    try:
        data: dict[str, Any] = EvaluationArgs().load({"date": raw})
    except ValidationError:
        raise FhirError(400, Issue("invalid", "Invalid value for parameter date: expected YYYY-MM-DD")) from None
    day: dt.date = data["date"]
    return day


# R5 research-study-status (http://hl7.org/fhir/research-study-status) and the registry's `terminated`.
ENROLMENT_STATES = frozenset({
    "active", "active-but-not-recruiting", "administratively-completed", "approved", "closed-to-accrual",
    "closed-to-accrual-and-intervention", "completed", "disapproved", "enrolling-by-invitation", "in-review",
    "not-yet-recruiting", "recruiting", "temporarily-closed-to-accrual",
    "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn",
})  # fmt: skip
MATCH_FILTERS = ("condition", "phase", "keyword")


class MatchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    count = fields.Integer(data_key="_count", strict=False, validate=validate.Range(min=1, max=MAX_OFFSET))
    offset = fields.Integer(data_key="_offset", strict=False, validate=validate.Range(min=0, max=MAX_OFFSET))


@dataclass(frozen=True)
class MatchQuery:
    """$match's own arguments: the page, the enrolment states (None: the default, open to enrolment) and
    the study filters as ResearchStudy search clauses; `pairs` are the arguments to repeat in links."""

    count: int
    offset: int
    states: tuple[str, ...] | None
    filters: tuple[tuple[str, str], ...]
    pairs: tuple[tuple[str, str], ...]


def load_match_query(args: MultiDict[str, str], default_count: int, max_count: int) -> MatchQuery:
    for name in ("_count", "_offset", "status"):
        if len(args.getlist(name)) > 1:
            raise FhirError(400, Issue("invalid", f"Parameter {name} may be given only once"))
    try:
        data: dict[str, Any] = MatchArgs().load(args.to_dict(flat=True))
    except ValidationError as exc:
        names = sorted(str(k) for k in exc.messages_dict)
        raise FhirError(
            400, *(Issue("invalid", f"Invalid value for parameter {n}: expected a whole number") for n in names)
        ) from None
    states: tuple[str, ...] | None = None
    if "status" in args:
        states = tuple(v.strip() for v in args["status"].split(",") if v.strip())
        unknown = [v for v in states if v not in ENROLMENT_STATES]
        if unknown or not states:
            raise FhirError(
                400,
                Issue("invalid", "Invalid value for parameter status: expected research-study-status codes "
                      f"({', '.join(sorted(ENROLMENT_STATES))})"),
            )  # fmt: skip
    filters = tuple((k, v) for k, v in args.items(multi=True) if k.partition(":")[0] in MATCH_FILTERS)
    kept = ("date", "status", "_count", "_offset", *MATCH_FILTERS)
    pairs = tuple((k, v) for k, v in args.items(multi=True) if k.partition(":")[0] in kept)
    # A server may return fewer than asked (R5 search §3.2.1.6.3): _count is capped at MAX_COUNT.
    count = min(data.get("count", default_count), max_count)
    return MatchQuery(count, data.get("offset", 0), states, filters, pairs)


def load_controls(args: MultiDict[str, str], schema: Schema, default_count: int, max_count: int) -> Controls:
    for key in schema.fields.values():
        if key.data_key and len(args.getlist(key.data_key)) > 1:
            raise FhirError(400, Issue("invalid", f"Parameter {key.data_key} may be given only once"))
    try:
        data: dict[str, Any] = schema.load(args.to_dict(flat=True))
    except ValidationError as exc:
        names = sorted(str(k) for k in exc.messages_dict)
        raise FhirError(400, *(Issue("invalid", f"Invalid value for parameter {n}") for n in names)) from None
    elements = tuple(n.strip() for n in data.get("elements", "").split(",") if n.strip())
    return Controls(
        # A server may return fewer than asked (R5 search §3.2.1.6.3): _count is capped at MAX_COUNT.
        count=min(data.get("count", default_count), max_count),
        offset=data.get("offset", 0),
        summary=data.get("summary"),
        elements=elements,
        format=data.get("format"),
        sort=tuple(k.strip() for k in data.get("sort", "").split(",") if k.strip()),
        total=data.get("total"),
    )

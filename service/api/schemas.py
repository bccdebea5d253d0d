"""Query-argument schemas (marshmallow): the result-shaping parameters of reads and searches.

Rule: invalid arguments become one 400 OperationOutcome naming the parameter, never its value.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from service.errors import FhirError, Issue
from service.fhir.search import Controls
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


class SearchArgs(ReadArgs):
    summary = fields.String(data_key="_summary", validate=validate.OneOf(SUMMARY_MODES))
    count = fields.Integer(data_key="_count", strict=False, validate=validate.Range(min=0, max=MAX_OFFSET))
    offset = fields.Integer(data_key="_offset", strict=False, validate=validate.Range(min=0, max=MAX_OFFSET))


class EvaluationArgs(Schema):
    """Query arguments of $evaluate-eligibility and $match: `date` = the evaluation date (default today)."""

    class Meta:
        unknown = EXCLUDE

    date = fields.Date(data_key="date", format="%Y-%m-%d")


def load_evaluation_date(args: MultiDict[str, str]) -> dt.date | None:
    """The `date` query argument, or None (the caller then uses today); 400 when not YYYY-MM-DD."""
    if len(args.getlist("date")) > 1:
        raise FhirError(400, Issue("invalid", "Parameter date may be given only once"))
    try:
        data: dict[str, Any] = EvaluationArgs().load(args.to_dict(flat=True))
    except ValidationError:
        raise FhirError(400, Issue("invalid", "Invalid value for parameter date: expected YYYY-MM-DD")) from None
    day: dt.date | None = data.get("date")
    return day


class MatchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    count = fields.Integer(data_key="_count", strict=False, validate=validate.Range(min=1, max=MAX_OFFSET))


def load_match_count(args: MultiDict[str, str]) -> int | None:
    """$match `_count`: at most this many studies in the answer (None: all)."""
    if len(args.getlist("_count")) > 1:
        raise FhirError(400, Issue("invalid", "Parameter _count may be given only once"))
    try:
        data: dict[str, Any] = MatchArgs().load(args.to_dict(flat=True))
    except ValidationError:
        raise FhirError(
            400, Issue("invalid", "Invalid value for parameter _count: expected a positive integer")
        ) from None
    count: int | None = data.get("count")
    return count


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
    )

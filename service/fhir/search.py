"""FHIR search over the in-memory catalog: parameters, matching, paging, searchset Bundles.

Rule: the parameter table below is the single source of truth: the matcher, the
CapabilityStatement entries and the documentation all come from it (FHIR R5 search, http.html#search).
Values: comma-separated = OR, a repeated parameter = AND; unknown parameters are ignored (and left
out of the self link) unless the client asked `Prefer: handling=strict`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from service.errors import FhirError, Issue
from service.fhir.outcome import operation_outcome
from service.fhir.subset import apply_elements, apply_summary

PUBLICATION_STATUS = "http://hl7.org/fhir/publication-status"
# NCT number systems: the preferred one and the two older spellings EHRs still send (reference §1).
NCT_SYSTEMS = frozenset({"https://clinicaltrials.gov/nctid", "http://clinicaltrials.gov", "https://clinicaltrials.gov"})
CONTROL_PARAMS = frozenset({"_count", "_offset", "_summary", "_elements", "_format", "_sort", "_total"})
SORT_KEYS = ("_id", "_lastUpdated", "title")
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_DATE_VALUE = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_BAR = re.compile(r"(?<!\\)\|")

Resource = dict[str, Any]
Matcher = Callable[[Resource, str | None, str], bool]  # (resource, modifier, one value) → match


@dataclass(frozen=True)
class SearchParam:
    """One supported search parameter; `definition` only where we follow the standard one exactly."""

    name: str
    type: str  # FHIR search-param-type: token | string | uri
    documentation: str
    match: Matcher
    modifiers: tuple[str, ...] = ()
    definition: str | None = None


@dataclass(frozen=True)
class Controls:
    """The result-shaping parameters, already validated (service.api.schemas)."""

    count: int
    offset: int = 0
    summary: str | None = None
    elements: tuple[str, ...] = ()
    format: str | None = None
    sort: tuple[str, ...] = ()  # keys of SORT_KEYS, `-` first for descending; the id breaks ties
    total: str | None = None  # none | estimate | accurate (the total is always exact; `none` leaves it out)


@dataclass(frozen=True)
class Clause:
    """One `name[:modifier]=v1,v2` occurrence: any of `values` (OR)."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]
    raw_name: str
    raw_value: str


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    clauses: tuple[Clause, ...]
    controls: Controls
    ignored: int  # how many unknown parameters were ignored (names are request content: not kept)


# ---------------------------------------------------------------- value helpers


def split_values(raw: str) -> tuple[str, ...]:
    """Comma = OR; `\\,` is a literal comma (R5 search §3.2.1.5.7 escaping)."""
    return tuple(v for v in (_unescape(part) for part in _UNESCAPED_COMMA.split(raw)) if v != "")


def _unescape(value: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", value)


def _token(value: str) -> tuple[str | None, str | None]:
    """`system|code` → both; `|code` → ("", code) = no system; `code` → (None, code); `system|` → code None."""
    parts = _UNESCAPED_BAR.split(value, maxsplit=1)
    if len(parts) == 1:
        return None, _unescape(parts[0])
    system, code = (_unescape(p) for p in parts)
    return system, code or None


def _fold(text: str) -> str:
    """String search ignores case and accents (R5 search §3.2.1.5.13 string)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _codings(concepts: Iterable[Any]) -> list[tuple[str, str]]:
    return [
        (str(c.get("system", "")), str(c.get("code", "")))
        for cc in concepts
        if isinstance(cc, Mapping)
        for c in cc.get("coding", [])
        if isinstance(c, Mapping)
    ]


def _concept_texts(concepts: Iterable[Any]) -> list[str]:
    texts: list[str] = []
    for cc in concepts:
        if not isinstance(cc, Mapping):
            continue
        texts.extend(str(cc[k]) for k in ("text",) if cc.get(k))
        texts.extend(str(c["display"]) for c in cc.get("coding", []) if isinstance(c, Mapping) and c.get("display"))
    return texts


def _token_matches(pairs: Iterable[tuple[str, str]], value: str, equivalent: frozenset[str] = frozenset()) -> bool:
    system, code = _token(value)
    for sys_, code_ in pairs:
        if system is not None:
            same_system = sys_ == system or (system in equivalent and sys_ in equivalent)
            if not (same_system if system else not sys_):
                continue
        if code is None or code_ == code:
            return True
    return False


def _string_matches(texts: Iterable[str], modifier: str | None, value: str) -> bool:
    if modifier == "exact":
        return any(t == value for t in texts)
    wanted = _fold(value)
    if modifier == "contains":
        return any(wanted in _fold(t) for t in texts)
    return any(_fold(t).startswith(wanted) for t in texts)


# ---------------------------------------------------------------- matchers


def _match_id(resource: Resource, modifier: str | None, value: str) -> bool:
    return resource.get("id") == value


def date_range(value: str) -> tuple[str, dt.datetime, dt.datetime]:
    """`[prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]]` → (prefix, start, end): the value's implicit range
    (R5 search §3.2.1.5.9 date); raises FhirError 400 when malformed or the prefix is not supported."""
    found = _DATE_VALUE.match(value)
    if found is None:
        raise FhirError(
            400, Issue("invalid", "Invalid value for parameter _lastUpdated: expected [prefix]YYYY-MM-DD...")
        )
    prefix = found["prefix"] or "eq"
    if prefix not in DATE_PREFIXES:
        raise FhirError(400, Issue("not-supported", f"Prefix {prefix} is not supported on _lastUpdated"))
    parts = {k: int(found[k]) for k in ("year", "month", "day", "hour", "minute", "second") if found[k]}
    try:
        return prefix, *_bounds(parts, found["tz"])
    except (ValueError, OverflowError):
        raise FhirError(400, Issue("invalid", "Invalid value for parameter _lastUpdated: not a date")) from None


def _bounds(parts: dict[str, int], zone: str | None) -> tuple[dt.datetime, dt.datetime]:
    tz = dt.UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    start = dt.datetime(
        parts["year"], parts.get("month", 1), parts.get("day", 1), parts.get("hour", 0),
        parts.get("minute", 0), parts.get("second", 0), tzinfo=tz,
    )  # fmt: skip
    if "second" in parts:
        end = start + dt.timedelta(seconds=1)
    elif "minute" in parts:
        end = start + dt.timedelta(minutes=1)
    elif "day" in parts:
        end = start + dt.timedelta(days=1)
    elif "month" in parts:
        end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        end = start.replace(year=start.year + 1)
    # In UTC (the catalog's instants are): a zone that moves the range past year 1 or 9999 is an error here.
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _instant(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _match_last_updated(resource: Resource, modifier: str | None, value: str) -> bool:
    when = _instant((resource.get("meta") or {}).get("lastUpdated"))
    if when is None:
        return False
    prefix, start, end = date_range(value)
    inside = start <= when < end
    return {
        "eq": inside,
        "ne": not inside,
        "gt": when >= end,
        "lt": when < start,
        "ge": when >= start,
        "le": when < end,
    }[prefix]


def _match_url(resource: Resource, modifier: str | None, value: str) -> bool:
    return resource.get("url") == value


def _match_title(resource: Resource, modifier: str | None, value: str) -> bool:
    title = resource.get("title")
    return isinstance(title, str) and _string_matches([title], modifier, value)


def _match_identifier(resource: Resource, modifier: str | None, value: str) -> bool:
    pairs = [(str(i.get("system", "")), str(i.get("value", ""))) for i in resource.get("identifier", [])]
    return _token_matches(pairs, value, NCT_SYSTEMS)


def _match_status(resource: Resource, modifier: str | None, value: str) -> bool:
    pairs = [(PUBLICATION_STATUS, str(resource.get("status", "")))]
    pairs += _codings(p.get("state", {}) for p in resource.get("progressStatus", []))
    return _token_matches(pairs, value)


def _concept_matcher(element: str, text_fallback: bool = True) -> Matcher:
    def match(resource: Resource, modifier: str | None, value: str) -> bool:
        concepts = resource.get(element, [])
        concepts = concepts if isinstance(concepts, list) else [concepts]
        if modifier == "text":
            return _string_matches(_concept_texts(concepts), "contains", value)
        if _token_matches(_codings(concepts), value):
            return True
        # A plain word (no `|`) also matches the text/display: "condition=melanoma" works.
        return text_fallback and "|" not in value and _string_matches(_concept_texts(concepts), "contains", value)

    return match


_SPEC = "http://hl7.org/fhir/SearchParameter/"
_ID = SearchParam(
    "_id", "token", "The resource id, exact (for a trial: its NCT number).", _match_id,
    definition=_SPEC + "Resource-id",
)  # fmt: skip
_URL = SearchParam("url", "uri", "The canonical url, exact.", _match_url, definition=_SPEC + "CanonicalResource-url")
_LAST_UPDATED = SearchParam(
    "_lastUpdated", "date",
    "When the resource last changed (meta.lastUpdated), with the prefixes eq (default), ne, gt, lt, ge, le; "
    "a date stands for its whole day (or month, year).",
    _match_last_updated, definition=_SPEC + "Resource-lastUpdated",
)  # fmt: skip
_STRING_DOC = (
    "String search on {what}: case- and accent-insensitive starts-with; `:contains` anywhere; `:exact` "
    "case-sensitive equality."
)


def _title(definition: str) -> SearchParam:
    return SearchParam(
        "title", "string", _STRING_DOC.format(what="the title"), _match_title, ("contains", "exact"),
        _SPEC + definition,
    )  # fmt: skip


def _concept_param(name: str, what: str) -> SearchParam:
    doc = (
        f"Token on the {what} codes (`system|code`, `code`, `|code`); `:text` or a plain word without `|`"
        f" also matches the {what} text/display, case-insensitive, anywhere in it."
    )
    return SearchParam(name, "token", doc, _concept_matcher(name), ("text",))


SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "ResearchStudy": (
        _ID,
        SearchParam(
            "identifier", "token",
            "Token on identifier (`system|value`, `value`, `|value`); the NCT systems "
            "https://clinicaltrials.gov/nctid, http://clinicaltrials.gov and https://clinicaltrials.gov are "
            "equivalent.",
            _match_identifier, definition=_SPEC + "ResearchStudy-identifier",
        ),
        SearchParam(
            "status", "token",
            "Token matching the publication status (ResearchStudy.status, system "
            "http://hl7.org/fhir/publication-status) or any progressStatus.state code "
            "(http://hl7.org/fhir/research-study-status), so `status=recruiting` works.",
            _match_status,
        ),
        _concept_param("condition", "condition"),
        _concept_param("keyword", "keyword"),
        SearchParam(
            "phase", "token", "Token on the phase code (http://hl7.org/fhir/research-study-phase, e.g. phase-2).",
            _concept_matcher("phase", text_fallback=False), definition=_SPEC + "ResearchStudy-phase",
        ),
        _title("ResearchStudy-title"),
        _LAST_UPDATED,
    ),
    "EvidenceVariable": (_ID, _URL, _title("CanonicalResource-title"), _LAST_UPDATED),
    "StructureDefinition": (_ID, _URL),
    "OperationDefinition": (_ID, _URL),
}  # fmt: skip


# ---------------------------------------------------------------- parse, run, render


def parse_search(
    resource_type: str, params: Sequence[tuple[str, str]], controls: Controls, strict: bool = False
) -> SearchQuery:
    known = {p.name: p for p in SEARCH_PARAMS[resource_type]}
    clauses: list[Clause] = []
    ignored = 0
    for raw_name, raw_value in params:
        if raw_name in CONTROL_PARAMS:
            continue
        name, _, modifier = raw_name.partition(":")
        param = known.get(name)
        if param is None:
            if strict:
                raise FhirError(400, Issue("not-supported", f"Unknown search parameter for {resource_type}"))
            ignored += 1
            continue
        if modifier and modifier not in param.modifiers:
            # R5 search §3.2.1.5.5: a server SHALL reject an unsupported modifier.
            raise FhirError(400, Issue("not-supported", f"Unsupported modifier on search parameter {name}"))
        values = split_values(raw_value)
        if not values:
            continue  # an empty value is ignored (R5 search §3.2.1.5.1)
        if param.type == "date":
            for value in values:
                date_range(value)  # a malformed date is a 400 before any resource is looked at
        clauses.append(Clause(param, modifier or None, values, raw_name, raw_value))
    return SearchQuery(resource_type, tuple(clauses), controls, ignored)


def matches(resource: Resource, query: SearchQuery) -> bool:
    return all(any(c.param.match(resource, c.modifier, v) for v in c.values) for c in query.clauses)


def shape(resource: Resource, controls: Controls) -> Resource:
    """Apply `_summary` / `_elements` to one resource (reads and search entries alike)."""
    return apply_elements(apply_summary(resource, controls.summary), controls.elements)


def search_bundle(
    resources: Iterable[Resource],
    query: SearchQuery,
    base_url: str,
    full: Callable[[Resource], Resource] = lambda resource: resource,
) -> Resource:
    """A searchset Bundle with total, self/first/previous/next/last links and one page of entries.

    `resources` may be views holding only the searchable elements; `full` gives the whole resource of a
    view, called for the page's entries only."""
    controls = query.controls
    found = sort_resources([r for r in resources if matches(r, query)], controls.sort)
    total = len(found)
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if controls.total != "none":
        bundle["total"] = total
    links = [("self", controls.offset)]
    if controls.summary != "count" and controls.count > 0:
        last = max(0, (total - 1) // controls.count * controls.count)
        links.append(("first", 0))
        if controls.offset > 0:
            links.append(("previous", max(0, controls.offset - controls.count)))
        if controls.offset + controls.count < total:
            links.append(("next", controls.offset + controls.count))
        links.append(("last", last))
    bundle["link"] = [{"relation": rel, "url": _page_url(query, base_url, off)} for rel, off in links]
    entries: list[Resource] = []
    if controls.summary != "count":
        page = found[controls.offset : controls.offset + controls.count]
        entries = [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": shape(full(r), controls),
                "search": {"mode": "match"},
            }
            for r in page
        ]
    if query.ignored:
        entries.append(_ignored_outcome(query.ignored))
    if entries:
        bundle["entry"] = entries
    return bundle


def sort_resources(found: list[Resource], keys: Sequence[str]) -> list[Resource]:
    """`_sort` keys in order (`-` = descending), then the id: the order, so the pages, are stable."""
    ordered = sorted(found, key=lambda r: str(r.get("id", "")))
    for key in reversed(keys):  # stable sorts, least significant key first
        name = key.lstrip("-")
        ordered.sort(key=lambda r, name=name: _sort_value(r, name), reverse=key.startswith("-"))  # type: ignore[misc]
    return ordered


def _sort_value(resource: Resource, name: str) -> str:
    if name == "_lastUpdated":
        when = _instant((resource.get("meta") or {}).get("lastUpdated"))
        return when.astimezone(dt.UTC).isoformat() if when else ""
    if name == "title":
        return _fold(str(resource.get("title") or ""))
    return str(resource.get("id", ""))


def _ignored_outcome(count: int) -> Resource:
    """Spec: ignored parameters are reported; we say how many (their names are request content)."""
    plural = "s were" if count > 1 else " was"
    diagnostics = (
        f"{count} unknown search parameter{plural} ignored; the self link lists the parameters applied. "
        "Send 'Prefer: handling=strict' to have them rejected."
    )
    return {
        # bdl-15: every searchset entry has a fullUrl; an outcome has no id of its own, so a urn:uuid.
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": operation_outcome([Issue("not-supported", diagnostics, severity="warning")]),
        "search": {"mode": "outcome"},
    }


def _page_url(query: SearchQuery, base_url: str, offset: int) -> str:
    c = query.controls
    pairs: list[tuple[str, str]] = [(cl.raw_name, cl.raw_value) for cl in query.clauses]
    pairs.append(("_count", str(c.count)))
    if offset:
        pairs.append(("_offset", str(offset)))
    if c.summary:
        pairs.append(("_summary", c.summary))
    if c.elements:
        pairs.append(("_elements", ",".join(c.elements)))
    if c.format:
        pairs.append(("_format", c.format))
    if c.sort:
        pairs.append(("_sort", ",".join(c.sort)))
    if c.total:
        pairs.append(("_total", c.total))
    return f"{base_url}/{query.resource_type}?{urlencode(pairs, quote_via=quote, safe=',:')}"

"""`_summary` and `_elements`: subsets of a resource, tagged SUBSETTED (FHIR R5 search §3.2.1.5.9-10).

Rule: never mutates its input; which elements are summary/mandatory comes from the R5 definitions
as fhir.resources carries them (isSummary, min=1), not from a hand-kept list.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from fhir.resources import get_fhir_model_class

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
SUMMARY_MODES = ("true", "false", "text", "data", "count")
ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def _element_flags(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a resource type: JSON names, top level."""
    summary: set[str] = set()
    mandatory: set[str] = set()
    for field in get_fhir_model_class(resource_type).model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        name = field.alias or ""
        if not extra.get("element_property") or name.startswith("_"):
            continue
        if extra.get("summary_element_property"):
            summary.add(name)
        if extra.get("element_required"):
            mandatory.add(name)
    return frozenset(summary), frozenset(mandatory)


def apply_summary(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """`_summary`: true = summary elements; text = text + mandatory; data = all but text."""
    if mode in (None, "false", "count"):
        return resource
    summary, mandatory = _element_flags(resource["resourceType"])
    keep: set[str] | frozenset[str]
    if mode == "true":
        keep = summary | mandatory
    elif mode == "text":
        keep = mandatory | {"text"}
    else:  # data
        keep = (set(_names(resource)) | mandatory) - {"text"}
    return _subset(resource, keep)


def apply_elements(resource: dict[str, Any], elements: Iterable[str]) -> dict[str, Any]:
    """`_elements`: the listed top-level elements plus the mandatory ones (spec: SHOULD include them)."""
    wanted = set(elements)
    if not wanted:
        return resource
    _, mandatory = _element_flags(resource["resourceType"])
    return _subset(resource, wanted | mandatory)


def _names(resource: dict[str, Any]) -> Iterable[str]:
    return (key.lstrip("_") for key in resource)


def _subset(resource: dict[str, Any], keep: set[str] | frozenset[str]) -> dict[str, Any]:
    # `_status` (a primitive's id/extensions) goes with `status`.
    out = {k: v for k, v in resource.items() if k in ALWAYS or k.lstrip("_") in keep}
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t != SUBSETTED]
    meta["tag"] = [*tags, dict(SUBSETTED)]
    out["meta"] = meta
    return out

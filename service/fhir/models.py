"""fhir.resources model lookup and validation: the one place that knows R4B vs R5 model packages.

Rule: validation errors come back as short messages naming the element path and the problem, never
the offending value (it may be patient data).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources import get_fhir_model_class
from fhir.resources.R4B import get_fhir_model_class as get_r4b_model_class
from pydantic import ValidationError


class InvalidResource(ValueError):
    """A resource failed fhir.resources validation; the message has paths, not values."""


@cache
def model_class(resource_type: str, release: str = "R5") -> Any:
    lookup = get_r4b_model_class if release == "R4" else get_fhir_model_class
    try:
        return lookup(resource_type)
    except (KeyError, ValueError) as exc:
        raise InvalidResource(f"unknown resource type for FHIR {release}") from exc


def validate(resource: dict[str, Any], release: str = "R5") -> None:
    """Validate one resource dict with the R5 (default) or R4B ("R4") models."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("resourceType is missing")
    try:
        model_class(resource_type, release).model_validate(resource)
    except ValidationError as exc:
        raise InvalidResource(describe_errors(exc)) from None


def describe_errors(exc: ValidationError, limit: int = 3) -> str:
    problems = [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:limit]]
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")

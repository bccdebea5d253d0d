"""fhir.resources model lookup and validation: the one place that knows R4B vs R5 model packages.

Rule: validation errors come back as short messages naming the element path and the problem, never
the offending value (it may be patient data): an unknown element's name is not repeated, and a
message that would quote any string of the input is replaced by a generic one.
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


DEFAULT_MAX_DEPTH = 64  # MAX_JSON_DEPTH: real FHIR resources nest about a dozen levels


def validate(resource: dict[str, Any], release: str = "R5", max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Validate one resource dict with the R5 (default) or R4B ("R4") models; a resource nested deeper
    than `max_depth` is refused before the (recursive) models see it."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("resourceType is missing")
    if json_depth(resource, max_depth) > max_depth:
        raise InvalidResource(f"(root): nested deeper than the limit of {max_depth} levels")
    try:
        model_class(resource_type, release).model_validate(resource)
    except ValidationError as exc:
        raise InvalidResource(describe_errors(exc)) from None
    except (KeyError, TypeError, AttributeError, RecursionError):
        # fhir.resources looks up contained resource types by name (KeyError on an unknown one).
        raise InvalidResource("(root): a structure the FHIR models cannot read") from None


def json_depth(document: Any, stop_above: int) -> int:
    """Nesting depth of objects/arrays (a scalar is 0, `{}` is 1), walked without recursion; stops early."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > stop_above:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


# Error types whose message quotes the input (fhir.resources names the resourceType it got).
QUOTING_TYPES = {"fhir-validation-wrong-resource-type"}
GENERIC = "invalid value"


def describe_errors(exc: ValidationError, limit: int = 3) -> str:
    problems = [_problem(err) for err in exc.errors()[:limit]]
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _problem(err: Any) -> str:
    loc = [str(part) for part in err["loc"]]
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        # The unknown element's name is request content (it could be anything): name its parent only.
        loc, message = loc[:-1], "an element this resource type does not define"
    elif err["type"] in QUOTING_TYPES or any(text in message for text in _strings(err.get("input"))):
        message = GENERIC
    return f"{'.'.join(loc) or '(root)'}: {message}"


def _strings(value: Any, budget: int = 200) -> list[str]:
    """String leaves (keys and values, 3+ characters) of an error's input, up to `budget` of them."""
    found: list[str] = []
    stack = [value]
    while stack and len(found) < budget:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, str | int | float) and not isinstance(node, bool) and len(str(node)) >= 3:
            found.append(str(node))
    return found

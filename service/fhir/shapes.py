"""The shape of a resource as fhir.resources validates it: equal shapes, equal validation results.

Rule: a resource's validity is a function of its structure (keys, nesting, JSON types, the resourceType
of it and of each contained resource) and of how each primitive leaf fares under its element's own
validator (accepted or not, and whether it becomes None, as the choice and required-element checks read
presence). `shape` computes exactly that, from the models' own field types, so a resource shaped like
one already validated as valid is valid without building the models (~0.5 ms a resource; the shape
costs a fraction of it, and a record's thousands of resources have a few dozen shapes). Only digests of
shapes proven valid are remembered: an invalid resource is always
validated in full, so its message is the models' own. Anything the walk does not understand (an
unknown element, a string where an object is expected) has no shape and is validated in full.
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

import orjson
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import TypeAdapter, ValidationError

from service.fhir.models import model_class

Shape = tuple[Any, ...]
# An element's kind: ("model", class) | ("resource",) | ("list", kind) | ("primitive", TypeAdapter)
Kind = tuple[Any, ...]
PRIMITIVE_MEMO_SIZE = 1 << 16
MEMO_STRING_LENGTH = 256  # longer strings (narratives) are validated each time, not held by the memo
VALID_SHAPES_SIZE = 1 << 14


class NoShape(Exception):
    """The walk met something it does not model; the resource is validated in full."""


@cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    """One validator per primitive annotation: the one the model runs for the element."""
    return TypeAdapter(annotation)


def _kind(annotation: Any) -> Kind:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _kind(args[0])
        return ("primitive", _adapter(annotation))  # fhir_comments: a string or a list of strings
    if origin is list:
        return ("list", _kind(typing.get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, FhirElementOrResourceBase):
        return ("resource",)
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        return ("model", annotation.get_model_klass())
    return ("primitive", _adapter(annotation))


@cache
def _fields(model: type) -> dict[str, Kind]:
    """Element name (JSON alias and Python name alike) → kind, for one model class."""
    fields: dict[str, Kind] = {}
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        kind = _kind(info.annotation)
        fields[name] = kind
        if info.alias:
            fields[info.alias] = kind
    return fields


@lru_cache(maxsize=PRIMITIVE_MEMO_SIZE)
def _primitive(adapter: TypeAdapter[Any], value_type: Any, value: Any) -> tuple[bool, bool]:
    """(accepted, became None) of one primitive value under its element's validator (`value_type` apart:
    1, 1.0 and True are equal keys)."""
    try:
        return True, adapter.validate_python(value) is None
    except (ValidationError, ValueError, TypeError):
        return False, False


def _leaf(adapter: TypeAdapter[Any], value: Any) -> Shape:
    if isinstance(value, dict | list):
        raise NoShape  # a primitive element given an object or array (or fhir_comments as a list): rare
    value_type: Any = type(value)
    if value_type is str and len(value) > MEMO_STRING_LENGTH:  # a narrative: not kept in the memo
        return ("str", *_primitive.__wrapped__(adapter, str, value))
    return (value_type.__name__, *_primitive(adapter, value_type, value))


def _shape(value: Any, kind: Kind, release: str) -> Any:
    tag = kind[0]
    if tag == "list":
        if not isinstance(value, list):
            raise NoShape
        return tuple(None if item is None else _shape(item, kind[1], release) for item in value)
    if tag == "primitive":
        return _leaf(kind[1], value)
    if not isinstance(value, dict):
        raise NoShape
    if tag == "resource":
        resource_type = value.get("resourceType")
        if not isinstance(resource_type, str):
            raise NoShape
        try:
            model = model_class(resource_type, release)
        except ValueError:
            raise NoShape from None
    else:
        model = kind[1]
    fields = _fields(model)
    parts: list[Any] = []
    for key, item in value.items():
        if key == "resourceType":
            if not isinstance(item, str):
                raise NoShape
            parts.append((key, item))
            continue
        field = fields.get(key)
        if field is None:
            raise NoShape
        parts.append((key, None if item is None else _shape(item, field, release)))
    return tuple(parts)


def shape(resource: dict[str, Any], release: str) -> bytes | None:
    """A digest of the resource's validation shape for `release` ("R4" → R4B models, "R5"), or None (no
    shape). A digest, not the shape: a remembered shape then costs 16 bytes, however large the resource."""
    try:
        walked = _shape(resource, ("resource",), release)
        return hashlib.blake2b(orjson.dumps((release, walked)), digest_size=16).digest()
    except (NoShape, RecursionError, orjson.JSONEncodeError):  # orjson: nested past its 254 levels
        return None


class ValidShapes:
    """The shape digests of resources validated as valid, at most `size` of them (least recently used out)."""

    def __init__(self, size: int = VALID_SHAPES_SIZE) -> None:
        self.size = size
        self.shapes: OrderedDict[tuple[int, bytes], None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        if key in self.shapes:
            self.shapes.move_to_end(key)  # type: ignore[arg-type]
            return True
        return False

    def add(self, key: tuple[int, bytes]) -> None:
        self.shapes[key] = None
        if len(self.shapes) > self.size:
            self.shapes.popitem(last=False)

    def clear(self) -> None:
        self.shapes.clear()


def prepare(resource_types: Iterable[str], release: str) -> None:
    """Import the models of these resource types and of every element they nest, and build their
    validators: done once before a process pool forks, so workers share them instead of each paying
    the import (~1 s of CPU) on its first patient."""
    pending = [model_class(resource_type, release) for resource_type in resource_types]
    seen: set[type] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for kind in _fields(model).values():
            while kind[0] == "list":
                kind = kind[1]
            if kind[0] == "model":
                pending.append(kind[1])

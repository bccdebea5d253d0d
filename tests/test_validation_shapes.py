"""Evidence validation by shape: a resource is taken as valid without the models only when one of the
same shape was, and the answer is always the models' own (valid data and every kind of broken data)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from service.fhir.models import InvalidResource, validate
from service.fhir.patient_bundle import clear_validation_cache, validation_problem
from service.fhir.shapes import shape
from service.screening.bulk import READ_TYPES
from service.screening.export import bundle_resources, decompress
from tests.conftest import EXTERNAL_DATA

Json = dict[str, Any]
SYNTHEA = EXTERNAL_DATA / "patients" / "synthea"


def _models_say(resource: Json, release: str = "R4") -> str | None:
    try:
        validate(resource, release)
    except InvalidResource as exc:
        return str(exc)
    return None


def _synthea_resources() -> list[Json]:
    """A few of each type the engine reads, from every vendored Synthea patient."""
    found: list[Json] = []
    for path in sorted(SYNTHEA.iterdir()):
        per_type: dict[str, int] = {}
        for resource in bundle_resources(orjson.loads(decompress(path.name, path.read_bytes()))):
            kind = resource["resourceType"]
            if kind in READ_TYPES and per_type.get(kind, 0) < 6:
                per_type[kind] = per_type.get(kind, 0) + 1
                found.append(resource)
    return found


RESOURCES = _synthea_resources()


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Json], bool]:
    def change(resource: Json) -> bool:
        node: Any = resource
        for step in path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return False
        if isinstance(node, dict) and path[-1] in node or isinstance(node, list) and len(node) > path[-1]:
            node[path[-1]] = value
            return True
        return False

    return change


def _add(key: str, value: Any) -> Callable[[Json], bool]:
    def change(resource: Json) -> bool:
        resource[key] = value
        return True

    return change


# Each keeps the resource's keys and nesting but breaks one value, or breaks the structure itself.
BREAKS: dict[str, Callable[[Json], bool]] = {
    "impossible date": _set(("effectiveDateTime",), "2020-02-30T10:00:00-05:00"),
    "month 13": _set(("onsetDateTime",), "2020-13-01"),
    "date with no zone": _set(("authoredOn",), "2020-01-01T10:00:00"),
    "quantity as text": _set(("valueQuantity", "value"), "12.5"),
    "boolean quantity": _set(("valueQuantity", "value"), True),
    "empty code": _set(("code", "coding", 0, "code"), ""),
    "code with spaces": _set(("code", "coding", 0, "code"), " 8867-4 "),
    "numeric display": _set(("code", "coding", 0, "display"), 5),
    "id with a space": _set(("id",), "not an id"),
    "id too long": _set(("id",), "a" * 65),
    "status as object": _set(("status",), {"code": "final"}),
    "null coding": _set(("code", "coding", 0), None),
    "unknown element": _add("favouriteColour", "blue"),
    "two values": _add("valueString", "twelve"),
    "integer out of range": _add("valueInteger", 2**40),
    "wrong contained type": _add("contained", [{"resourceType": "NotAType", "id": "x"}]),
    "contained of another type": _add("contained", [{"resourceType": "Medication", "id": "m", "status": 7}]),
    "reference as a string": _set(("subject",), "Patient/1"),
    "uri with a space": _set(("code", "coding", 0, "system"), "http://loinc org"),
}

ACCEPTED_BY_THE_MODELS = {"quantity as text", "id too long", "uri with a space"}  # fhir.resources lets these pass


def test_every_synthea_resource_the_engine_reads_has_a_shape() -> None:
    assert RESOURCES and all(shape(resource, "R4") is not None for resource in RESOURCES)


def test_shapes_are_shared_by_resources_of_other_values() -> None:
    # The point of the cache: thousands of observations, a few dozen shapes.
    shapes = {shape(resource, "R4") for resource in RESOURCES}
    assert len(shapes) < len(RESOURCES) / 2


@pytest.mark.parametrize("name", BREAKS)
def test_a_broken_resource_shaped_like_a_valid_one_gets_the_models_answer(name: str) -> None:
    clear_validation_cache()
    answers = []
    for original in RESOURCES:
        assert validation_problem(original, "R4") is None  # remembers its shape as valid
        broken = copy.deepcopy(original)
        if not BREAKS[name](broken):
            continue
        expected = _models_say(broken)
        assert validation_problem(broken, "R4") == expected, orjson.dumps(broken)[:200]
        answers.append(expected)
    assert answers
    # The breaks matter: the models refuse some (apart from the few values the models accept).
    assert name in ACCEPTED_BY_THE_MODELS or any(answers)


def test_the_answer_is_the_same_whatever_was_validated_before() -> None:
    # Broken first, then valid, then broken again: no order makes a broken resource pass.
    for original in RESOURCES[:40]:
        broken = copy.deepcopy(original)
        BREAKS["impossible date"](broken) or BREAKS["id with a space"](broken)
        clear_validation_cache()
        first = validation_problem(broken, "R4")
        assert validation_problem(original, "R4") is None
        clear_validation_cache()
        assert validation_problem(original, "R4") is None
        assert validation_problem(broken, "R4") == first == _models_say(broken)

"""openapi.yaml is a valid OpenAPI 3.1 document describing exactly the app's routes and parameters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from openapi_spec_validator import validate

from service.fhir.search import CONTROL_PARAMS, SEARCH_PARAMS

OPENAPI = Path(__file__).resolve().parents[1] / "openapi.yaml"
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}  # HEAD is GET without a body (RFC 9110 §9.3.2); OPTIONS is off


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return loaded


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def app_routes(app: Flask) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(m.lower() for m in (rule.methods or set()) - IMPLICIT_METHODS)
    return routes


def test_paths_and_methods_are_exactly_the_apps(app: Flask, document: dict[str, Any]) -> None:
    documented = {path: {m for m in item if m != "parameters"} for path, item in document["paths"].items()}
    assert documented == app_routes(app)


def _query_params(document: dict[str, Any], path: str) -> set[str]:
    names = set()
    for param in document["paths"][path]["get"]["parameters"]:
        if "$ref" in param:
            param = document["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        if param["in"] == "query":
            names.add(param["name"])
    return names


@pytest.mark.parametrize("resource_type", sorted(SEARCH_PARAMS))
def test_search_parameters_are_exactly_the_supported_ones(document: dict[str, Any], resource_type: str) -> None:
    supported = {p.name for p in SEARCH_PARAMS[resource_type]}
    supported |= {f"{p.name}:{m}" for p in SEARCH_PARAMS[resource_type] for m in p.modifiers}
    assert _query_params(document, f"/{resource_type}") == supported | CONTROL_PARAMS

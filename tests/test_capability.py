"""GET /metadata lists exactly what the server does: resources, interactions, search params, operations."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Blueprint
from flask.testing import FlaskClient

import service.api
from service.app import create_app
from service.config import Config
from service.fhir.capability import OperationSupport
from service.fhir.models import validate
from tests.conftest import SHARED

ROUTES = {"read": "/{type}/{id}", "search-type": "/{type}"}


def rest_resources(client: FlaskClient) -> dict[str, dict[str, Any]]:
    statement = client.get("/metadata").json
    validate(statement)
    assert statement["fhirVersion"] == "5.0.0" and statement["kind"] == "instance"
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_resources_and_interactions(client: FlaskClient) -> None:
    resources = rest_resources(client)
    assert set(resources) == {"ResearchStudy", "EvidenceVariable", "StructureDefinition", "OperationDefinition"}
    for resource_type, resource in resources.items():
        for interaction in resource["interaction"]:
            route = ROUTES[interaction["code"]].format(type=resource_type, id="none")
            assert client.get(route).status_code in (200, 404)  # a route exists (404 = unknown id)
            assert client.post(route).status_code == 405  # and nothing else is claimed


def test_research_study_search_params(client: FlaskClient) -> None:
    params = {p["name"]: p for p in rest_resources(client)["ResearchStudy"]["searchParam"]}
    assert set(params) == {"_id", "identifier", "status", "condition", "keyword", "phase", "title", "_lastUpdated"}
    assert all(p["documentation"] for p in params.values())


def test_every_listed_search_param_is_applied_not_ignored(client: FlaskClient) -> None:
    for resource_type, resource in rest_resources(client).items():
        for param in resource.get("searchParam", []):
            nothing = "1900-01-01" if param["type"] == "date" else "zzz-no-match"
            bundle = client.get(f"/{resource_type}?{param['name']}={nothing}").json
            assert bundle["total"] == 0, (resource_type, param["name"])
            assert f"{param['name']}={nothing}" in bundle["link"][0]["url"]


def test_a_registered_operation_is_listed(mappings_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ModuleType("fake_operations")
    module.bp = Blueprint("fake_operations", __name__)  # type: ignore[attr-defined]
    module.OPERATIONS = (  # type: ignore[attr-defined]
        OperationSupport("match", "https://example.org/OperationDefinition/ResearchStudy-match"),
    )
    monkeypatch.setattr(service.api, "MODULES", (*service.api.MODULES, module))
    client = create_app(Config(mappings_dir=mappings_dir)).test_client()
    operations = rest_resources(client)["ResearchStudy"]["operation"]
    assert {"name": "match", "definition": "https://example.org/OperationDefinition/ResearchStudy-match"} in operations
    assert "operation" not in rest_resources(client)["EvidenceVariable"]


def test_listed_operations_are_exactly_the_registered_ones(client: FlaskClient) -> None:
    registered = {(op.resource_type, op.name) for m in service.api.MODULES for op in getattr(m, "OPERATIONS", ())}
    listed = {(t, op["name"]) for t, r in rest_resources(client).items() for op in r.get("operation", [])}
    assert listed == registered


R5_CORE = SHARED / "tools" / "r5check" / "node_modules" / "hl7.fhir.r5.core"


def test_search_param_definitions_are_the_standard_r5_ones(client: FlaskClient) -> None:
    """A `definition` claims the standard semantics: it must name a real R5 SearchParameter of that base."""
    core = R5_CORE
    if not core.is_dir():
        pytest.skip("the R5 core definitions come with r5check's node_modules (../shared/tools), absent here")
    for resource_type, resource in rest_resources(client).items():
        for param in resource.get("searchParam", []):
            if "definition" not in param:
                continue
            name = param["definition"].rsplit("/", 1)[1]
            definition = json.loads((core / f"SearchParameter-{name}.json").read_text(encoding="utf-8"))
            assert definition["url"] == param["definition"]
            assert resource_type in definition["base"] or "Resource" in definition["base"], param
            assert definition["type"] == param["type"], param

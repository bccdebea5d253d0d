"""The HTTP layer: the only package importing flask/werkzeug.

Rule: a feature is one module with a Blueprint `bp`, `REQUIREMENTS` (endpoint → the scope Requirement,
None = open to anyone) and optionally `OPERATIONS` (the operations it serves, for the
CapabilityStatement); registering it is one line in MODULES.
"""

from __future__ import annotations

import datetime as dt
from types import ModuleType

from flask import Flask
from werkzeug.routing import BaseConverter

from service.api import errors, guard, hooks, metadata, operations, resources, web
from service.auth import Requirement
from service.catalog import Catalog
from service.config import Config
from service.fhir.capability import OperationSupport

App = Flask


class FhirIdConverter(BaseConverter):
    """`<fhirid:id>`: FHIR id syntax only (R5 datatypes §id), so `/ResearchStudy/$match` is never a read."""

    regex = r"[A-Za-z0-9\-.]{1,64}"


MODULES: tuple[ModuleType, ...] = (metadata, resources, operations, web)


def build_app(config: Config, catalog: Catalog) -> Flask:
    app = Flask("service", static_folder=None)
    app.url_map.converters["fhirid"] = FhirIdConverter
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    # No automatic OPTIONS answers: every route and method is in openapi.yaml; others are 405.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["config"] = config
    app.extensions["catalog"] = catalog
    app.extensions["started"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hooks.install(app)
    errors.install(app)
    requirements = register_blueprints(app)
    guard.install(app, config, requirements)
    return app


def register_blueprints(app: Flask) -> dict[str, Requirement | None]:
    operations: list[OperationSupport] = []
    requirements: dict[str, Requirement | None] = {}
    for module in MODULES:
        app.register_blueprint(module.bp)
        operations.extend(getattr(module, "OPERATIONS", ()))
        for endpoint, requirement in getattr(module, "REQUIREMENTS", {}).items():
            requirements[f"{module.bp.name}.{endpoint}"] = requirement
    app.extensions["operations"] = tuple(operations)
    return requirements

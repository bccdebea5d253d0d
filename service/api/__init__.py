"""The HTTP layer: the only package importing flask/werkzeug.

Rule: a feature is one module with a Blueprint `bp` (and optionally `OPERATIONS`, the operations it
serves for the CapabilityStatement); registering it is one line in MODULES.
"""

from __future__ import annotations

from types import ModuleType

from flask import Flask

from service.api import metadata, resources
from service.fhir.capability import OperationSupport

MODULES: tuple[ModuleType, ...] = (metadata, resources)


def register_blueprints(app: Flask) -> None:
    operations: list[OperationSupport] = []
    for module in MODULES:
        app.register_blueprint(module.bp)
        operations.extend(getattr(module, "OPERATIONS", ()))
    app.extensions["operations"] = tuple(operations)

"""The application factory: config, logging, catalog, error handler, blueprints.

Rule: everything is decided here once at start-up (fail fast on a bad mapping); requests only read.
Served by `gunicorn 'service.app:create_app()'`.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask

from service.api import errors, hooks, register_blueprints
from service.catalog import load_catalog
from service.config import Config


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    hooks.configure_logging(config.log_level)
    # Raises MappingError("<file>: <problem>"): the process does not start on a bad mapping.
    catalog = load_catalog(config.mappings_dir)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    # No automatic OPTIONS answers: every route and method is in openapi.yaml; others are 405.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["config"] = config
    app.extensions["catalog"] = catalog
    app.extensions["started"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hooks.install(app)
    errors.install(app)
    register_blueprints(app)
    return app

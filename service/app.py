"""The application factory: config, logging, catalog, then the HTTP app (service.api).

Rule: everything is decided here once at start-up (fail fast on a bad mapping); requests only read.
Served by `gunicorn 'service.app:create_app()'`.
"""

from __future__ import annotations

import gc

from service.api import App, build_app
from service.api.hooks import configure_logging
from service.catalog import load_catalog
from service.config import Config


def create_app(config: Config | None = None) -> App:
    config = config or Config.from_env()
    configure_logging(config.log_level)
    # Raises MappingError("<file>: <problem>"): the process does not start on a bad mapping.
    catalog = load_catalog(config.mappings_dir, config.catalog_cache_dir)
    app = build_app(config, catalog)
    # gunicorn loads the app once and forks its workers (preload_app): objects moved out of the garbage
    # collector's generations are never touched by a collection, so the catalog's pages stay shared.
    gc.freeze()
    return app

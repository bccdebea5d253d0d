"""The application factory: config, logging, catalog, then the HTTP app (service.api).

Rule: everything is decided here once at start-up (fail fast on a bad mapping); requests only read.
Served by `gunicorn 'service.app:create_app()'`.
"""

from __future__ import annotations

from service.api import App, build_app
from service.api.hooks import configure_logging
from service.catalog import load_catalog
from service.config import Config


def create_app(config: Config | None = None) -> App:
    config = config or Config.from_env()
    configure_logging(config.log_level)
    # Raises MappingError("<file>: <problem>"): the process does not start on a bad mapping.
    catalog = load_catalog(config.mappings_dir, config.catalog_cache_dir)
    return build_app(config, catalog)

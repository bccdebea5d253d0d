"""gunicorn settings from the service's own Config (gunicorn reads ./gunicorn.conf.py by default).

Rule: one source of configuration: the same environment variables as the app (README table).
"""

import gc
from typing import Any

from service.config import Config

_config = Config.from_env()

bind = f"0.0.0.0:{_config.port}"
workers = _config.workers
loglevel = _config.log_level.lower()
# The app writes one structured JSON line per request; gunicorn's own access log would repeat it.
accesslog = None
# Fail fast: load the app (and its catalog) in the master, so a bad mapping stops the start at once.
preload_app = True
# Request timeout: a sync worker silent for longer than this is killed and replaced by the master
# (the client sees its connection closed); README "Deploying" → Limits.
timeout = _config.request_timeout_seconds
graceful_timeout = _config.request_timeout_seconds
# Keep-alive for clients reusing connections; short, as sync workers hold one connection at a time.
keepalive = 5
# Request line and header limits (gunicorn answers 400 past them): a FHIR URL or a token fits easily.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 16384


def pre_fork(server: Any, worker: Any) -> None:
    """The catalog was loaded in the master (preload_app): objects moved out of the collector's generations
    are never written by a collection in a worker, so their pages stay shared copy-on-write (issue 12)."""
    gc.freeze()

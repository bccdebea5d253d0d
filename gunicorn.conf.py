"""gunicorn settings from the service's own Config (gunicorn reads ./gunicorn.conf.py by default).

Rule: one source of configuration: the same environment variables as the app (README table).
"""

import gc
from typing import Any

from service.config import Config

_config = Config.from_env()

# 127.0.0.1 unless BIND_ADDRESS says otherwise (the Docker image binds 0.0.0.0, with authentication on).
bind = f"{_config.bind_address}:{_config.port}"
workers = _config.workers
# Request heads are read by the worker's main loop, requests served by its threads: a slow client holds a
# socket, not a worker (service/serving.py; README "Deploying" → Limits).
worker_class = "service.serving.RequestReadingWorker"
threads = 4
logger_class = "service.serving.RedactingLogger"
loglevel = _config.log_level.lower()
# The app writes one structured JSON line per request; gunicorn's own access log would repeat it.
accesslog = None
# No control socket (gunicorn >= 25.1 would create $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl).
control_socket_disable = True
# Fail fast: load the app (and its catalog) in the master, so a bad mapping stops the start at once.
preload_app = True
# Request timeout: a worker with a request running longer than this is killed and replaced by the master
# (the client sees its connection closed); README "Deploying" → Limits.
timeout = _config.request_timeout_seconds
graceful_timeout = _config.request_timeout_seconds
# Keep-alive: an idle connection waits in the worker's poller (no thread) for this long.
keepalive = 5
# Request line and header limits (answered 414/431/400 as OperationOutcomes): a FHIR URL or a token fits easily.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 16384


def pre_fork(server: Any, worker: Any) -> None:
    """The catalog was loaded in the master (preload_app): objects moved out of the collector's generations
    are never written by a collection in a worker, so their pages stay shared copy-on-write (issue 12)."""
    gc.freeze()


# A request allocates thousands of short-lived objects (the parsed body, the facts, ~180 criterion results,
# the answer's dicts) that reference counting frees when it ends. At the default first threshold (700) the
# collector runs several times mid-request, walks them while they are still alive and promotes them to be
# walked again; at this one they are mostly gone before it runs (issue 12: ~3% of a small-bundle
# $evaluate-eligibility). Cyclic garbage still waits for at most this many new objects.
_GC_FIRST_THRESHOLD = 50_000


def post_fork(server: Any, worker: Any) -> None:
    gc.set_threshold(_GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])

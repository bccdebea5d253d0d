"""gunicorn settings from the service's own Config (gunicorn reads ./gunicorn.conf.py by default).

Rule: one source of configuration: the same environment variables as the app (README table).
"""

from service.config import Config

_config = Config.from_env()

bind = f"0.0.0.0:{_config.port}"
workers = _config.workers
loglevel = _config.log_level.lower()
# The app writes one structured JSON line per request; gunicorn's own access log would repeat it.
accesslog = None
# Fail fast: load the app (and its catalog) in the master, so a bad mapping stops the start at once.
preload_app = True

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRIALS_PORT=8080 \
    BIND_ADDRESS=0.0.0.0 \
    WORKERS=2 \
    LOG_LEVEL=INFO \
    MAPPINGS_DIR=/app/mappings \
    AUTH_ENABLED=true

WORKDIR /app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app

# Dependencies and package first, data last: editing a mapping does not reinstall anything.
COPY pyproject.toml ./
COPY service ./service
RUN pip install --no-cache-dir .
COPY gunicorn.conf.py ./
COPY mappings ./mappings
# Served at GET /openapi.yaml (service/api/web.py reads it beside the service package).
COPY openapi.yaml ./

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "service.healthcheck"]
# gunicorn.conf.py (read from /app) takes bind address, port, workers and timeout from BIND_ADDRESS, TRIALS_PORT/PORT,
# WORKERS and REQUEST_TIMEOUT_SECONDS (BIND_ADDRESS=0.0.0.0: the port is published by `docker run -p`).
# Authentication is on: `docker run` must set AUTH_ISSUER, AUTH_AUDIENCE and AUTH_JWKS_URL (or mount a JWKS
# and set AUTH_JWKS_FILE), else the start stops naming what is missing.
CMD ["gunicorn", "service.app:create_app()"]

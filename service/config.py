"""Service configuration: read once from environment variables into one frozen object.

Rule: nothing else reads os.environ; every variable here is documented in README.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAPPINGS_DIR = REPO_ROOT / "mappings"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
AUDIT_FORMATS = ("record", "fhir")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# orjson refuses JSON nested deeper than 1024 levels itself; a larger MAX_JSON_DEPTH would not be honoured.
ORJSON_MAX_DEPTH = 1024


class ConfigError(ValueError):
    """An environment variable has an unusable value: the message names the variable."""


@dataclass(frozen=True)
class Config:
    port: int = 8080
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR
    # 10 MiB: a Synthea patient bundle with years of observations is 1-5 MB.
    max_body_bytes: int = 10 * 1024 * 1024
    log_level: str = "INFO"
    workers: int = 2
    # Public base URL for Bundle.fullUrl and links; None = derived from each request's host.
    base_url: str | None = None
    # Default and maximum page size of a searchset (`_count`).
    default_count: int = 20
    max_count: int = 100
    # Bearer JWT authentication (README "Deploying"): off for the local ./run.sh, on in the Docker image.
    auth_enabled: bool = False
    auth_jwks_file: Path | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_clock_skew_seconds: int = 60
    auth_jwks_cache_seconds: int = 300
    auth_jwks_timeout_seconds: int = 5
    # Abuse limits. Real bundles nest 11 levels and hold < 1,000 entries (shared/data/patients).
    max_json_depth: int = 64
    max_bundle_entries: int = 10_000
    # Per client (token subject, else client IP) and per worker process; 0 = no rate limit.
    rate_limit_per_minute: int = 0
    rate_limit_burst: int = 20
    # gunicorn kills and replaces a worker whose request runs longer than this.
    request_timeout_seconds: int = 60
    # Slow clients (service.serving): the request line and headers must arrive within HEADER_TIMEOUT_SECONDS;
    # a read of the body waits at most BODY_TIMEOUT_SECONDS, and the whole body must arrive within it (400).
    header_timeout_seconds: int = 10
    body_timeout_seconds: int = 20
    # Failed authentications (401) per client IP and minute before 429; 0 = unlimited.
    auth_failures_per_minute: int = 30
    # ./run.sh serves this machine only; the container sets BIND_ADDRESS=0.0.0.0 (authentication on there).
    bind_address: str = "127.0.0.1"
    audit_format: str = "record"
    # Compiled mappings kept between starts (service.catalog.cache); None: compile every file each start.
    catalog_cache_dir: Path | None = field(default_factory=lambda: _cache_dir(None))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        # TRIALS_PORT wins over PORT (the variable most platforms set) so both can coexist.
        port = env.get("TRIALS_PORT") or env.get("PORT")
        base_url = (env.get("BASE_URL") or "").strip().rstrip("/") or None
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ConfigError("BASE_URL must start with http:// or https://")
        log_level = (env.get("LOG_LEVEL") or cls.log_level).upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        default_count = _int(env, "DEFAULT_COUNT", cls.default_count, low=1)
        audit_format = (env.get("AUDIT_FORMAT") or cls.audit_format).lower()
        if audit_format not in AUDIT_FORMATS:
            raise ConfigError(f"AUDIT_FORMAT must be one of {', '.join(AUDIT_FORMATS)}")
        jwks_url = (env.get("AUTH_JWKS_URL") or "").strip() or None
        if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
            raise ConfigError("AUTH_JWKS_URL must start with https:// (or http:// on a private network)")
        return cls(
            port=_int({"TRIALS_PORT": port} if port else {}, "TRIALS_PORT", cls.port, low=1, high=65535),
            mappings_dir=Path(env["MAPPINGS_DIR"]) if env.get("MAPPINGS_DIR") else DEFAULT_MAPPINGS_DIR,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, low=1),
            log_level=log_level,
            workers=_int(env, "WORKERS", cls.workers, low=1),
            base_url=base_url,
            default_count=default_count,
            max_count=_int(env, "MAX_COUNT", max(cls.max_count, default_count), low=default_count),
            auth_enabled=_bool(env, "AUTH_ENABLED", cls.auth_enabled),
            auth_jwks_file=Path(env["AUTH_JWKS_FILE"]) if env.get("AUTH_JWKS_FILE") else None,
            auth_jwks_url=jwks_url,
            auth_issuer=(env.get("AUTH_ISSUER") or "").strip() or None,
            auth_audience=(env.get("AUTH_AUDIENCE") or "").strip() or None,
            auth_clock_skew_seconds=_int(env, "AUTH_CLOCK_SKEW_SECONDS", cls.auth_clock_skew_seconds, low=0, high=600),
            auth_jwks_cache_seconds=_int(env, "AUTH_JWKS_CACHE_SECONDS", cls.auth_jwks_cache_seconds, low=0),
            auth_jwks_timeout_seconds=_int(env, "AUTH_JWKS_TIMEOUT_SECONDS", cls.auth_jwks_timeout_seconds, low=1),
            max_json_depth=_int(env, "MAX_JSON_DEPTH", cls.max_json_depth, low=4, high=ORJSON_MAX_DEPTH),
            max_bundle_entries=_int(env, "MAX_BUNDLE_ENTRIES", cls.max_bundle_entries, low=1),
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", cls.rate_limit_per_minute, low=0),
            rate_limit_burst=_int(env, "RATE_LIMIT_BURST", cls.rate_limit_burst, low=1),
            request_timeout_seconds=_int(env, "REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds, low=1),
            header_timeout_seconds=_int(env, "HEADER_TIMEOUT_SECONDS", cls.header_timeout_seconds, low=1),
            body_timeout_seconds=_int(env, "BODY_TIMEOUT_SECONDS", cls.body_timeout_seconds, low=1),
            auth_failures_per_minute=_int(env, "AUTH_FAILURES_PER_MINUTE", cls.auth_failures_per_minute, low=0),
            bind_address=(env.get("BIND_ADDRESS") or "").strip() or cls.bind_address,
            audit_format=audit_format,
            catalog_cache_dir=_cache_dir(env.get("CATALOG_CACHE_DIR")),
        )


def _cache_dir(raw: str | None) -> Path | None:
    """CATALOG_CACHE_DIR: unset → a directory of this user under the system temp dir; `off` → no cache."""
    if raw is None or raw.strip() == "":
        return Path(tempfile.gettempdir()) / f"trial-eligibility-catalog-{os.getuid()}"
    return None if raw.strip().lower() in FALSE else Path(raw.strip())


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be between {low} and {high or 'any'}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in TRUE + FALSE:
        raise ConfigError(f"{name} must be true or false")
    return raw in TRUE

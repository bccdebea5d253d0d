"""Service configuration: read once from environment variables into one frozen object.

Rule: nothing else reads os.environ; every variable here is documented in README.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAPPINGS_DIR = REPO_ROOT / "mappings"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
        return cls(
            port=_int({"TRIALS_PORT": port} if port else {}, "TRIALS_PORT", cls.port, low=1, high=65535),
            mappings_dir=Path(env["MAPPINGS_DIR"]) if env.get("MAPPINGS_DIR") else DEFAULT_MAPPINGS_DIR,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, low=1),
            log_level=log_level,
            workers=_int(env, "WORKERS", cls.workers, low=1),
            base_url=base_url,
            default_count=default_count,
            max_count=_int(env, "MAX_COUNT", max(cls.max_count, default_count), low=default_count),
        )


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

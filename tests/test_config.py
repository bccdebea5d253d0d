"""Config.from_env: every variable parsed, defaults documented, bad values named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from service.config import DEFAULT_MAPPINGS_DIR, Config, ConfigError


def test_defaults() -> None:
    config = Config.from_env({})
    assert config == Config()
    assert config.port == 8080 and config.mappings_dir == DEFAULT_MAPPINGS_DIR
    assert Path(__file__).resolve().parents[1] / "mappings" == DEFAULT_MAPPINGS_DIR


def test_every_variable() -> None:
    config = Config.from_env({
        "TRIALS_PORT": "9000", "MAPPINGS_DIR": "/data/m", "MAX_BODY_BYTES": "1000", "LOG_LEVEL": "debug",
        "WORKERS": "4", "BASE_URL": "https://fhir.example.org/trials/", "DEFAULT_COUNT": "5", "MAX_COUNT": "7",
    })  # fmt: skip
    assert config == Config(9000, Path("/data/m"), 1000, "DEBUG", 4, "https://fhir.example.org/trials", 5, 7)


def test_trials_port_wins_over_port() -> None:
    assert Config.from_env({"PORT": "5000"}).port == 5000
    assert Config.from_env({"PORT": "5000", "TRIALS_PORT": "6000"}).port == 6000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TRIALS_PORT": "eighty"}, "TRIALS_PORT"),
        ({"TRIALS_PORT": "70000"}, "TRIALS_PORT"),
        ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES"),
        ({"WORKERS": "-1"}, "WORKERS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BASE_URL": "fhir.example.org"}, "BASE_URL"),
        ({"DEFAULT_COUNT": "50", "MAX_COUNT": "10"}, "MAX_COUNT"),
        ({"AUTH_ENABLED": "maybe"}, "AUTH_ENABLED"),
        ({"AUTH_JWKS_URL": "ftp://idp/jwks"}, "AUTH_JWKS_URL"),
        ({"MAX_JSON_DEPTH": "2000"}, "MAX_JSON_DEPTH"),
        ({"AUTH_CLOCK_SKEW_SECONDS": "-1"}, "AUTH_CLOCK_SKEW_SECONDS"),
        ({"AUDIT_FORMAT": "xml"}, "AUDIT_FORMAT"),
        ({"RATE_LIMIT_BURST": "0"}, "RATE_LIMIT_BURST"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().port = 1  # type: ignore[misc]


def test_security_and_limit_variables() -> None:
    config = Config.from_env({
        "AUTH_ENABLED": "true", "AUTH_JWKS_FILE": "/keys/jwks.json", "AUTH_JWKS_URL": "https://idp.example.org/jwks",
        "AUTH_ISSUER": "https://idp.example.org", "AUTH_AUDIENCE": "https://trials.example.org",
        "AUTH_CLOCK_SKEW_SECONDS": "30", "AUTH_JWKS_CACHE_SECONDS": "600", "AUTH_JWKS_TIMEOUT_SECONDS": "3",
        "MAX_JSON_DEPTH": "32", "MAX_BUNDLE_ENTRIES": "500", "RATE_LIMIT_PER_MINUTE": "120", "RATE_LIMIT_BURST": "10",
        "REQUEST_TIMEOUT_SECONDS": "30", "AUDIT_FORMAT": "FHIR",
    })  # fmt: skip
    assert config.auth_enabled and config.auth_jwks_file == Path("/keys/jwks.json")
    assert (config.auth_issuer, config.auth_audience) == ("https://idp.example.org", "https://trials.example.org")
    assert (config.auth_clock_skew_seconds, config.auth_jwks_cache_seconds, config.auth_jwks_timeout_seconds) == (
        30, 600, 3,
    )  # fmt: skip
    assert (config.max_json_depth, config.max_bundle_entries) == (32, 500)
    assert (config.rate_limit_per_minute, config.rate_limit_burst, config.request_timeout_seconds) == (120, 10, 30)
    assert config.audit_format == "fhir"
    assert Config.from_env({"AUTH_ENABLED": "0"}).auth_enabled is False

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
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().port = 1  # type: ignore[misc]

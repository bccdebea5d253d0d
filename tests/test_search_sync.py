"""What an integration engine pulling trials needs: `_lastUpdated` with prefixes, `_sort`, `_total`, and
pages that together list every match exactly once."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Config
from tests.conftest import study

TRIALS = 45


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """45 trials reviewed on 45 consecutive days from 2026-01-01 (NCT91000000 first), titles in reverse."""
    directory = tmp_path_factory.mktemp("sync-mappings")
    for n in range(TRIALS):
        trial_id = f"NCT91{n:06d}"
        doc = {
            "format": 1,
            "id": trial_id,
            "status": "active",
            "last_reviewed": (dt.date(2026, 1, 1) + dt.timedelta(days=n)).isoformat(),
            "research_study": study(f"Trial {TRIALS - n:03d}", "phase-2", "recruiting"),
            "criteria": [{"id": "inc-1", "text": "Aged 18 years or older", "age": {"min": 18}}],
        }
        (directory / f"{trial_id}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return create_app(Config(mappings_dir=directory, catalog_cache_dir=None)).test_client()


def search(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get(f"/ResearchStudy?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle: dict[str, Any] = response.get_json()
    return bundle


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-03", 1),  # eq: that day
        ("eq2026-01", 31),
        ("gt2026-02-10", 4),  # Feb 11 to 14 (the last trial, n = 44, is Feb 14)
        ("ge2026-02-10", 5),
        ("lt2026-01-05", 4),
        ("le2026-01-05", 5),
        ("ne2026-01", 14),
        ("gt2026-01-31T12:00:00Z", 14),
        ("2027", 0),
    ],
)
def test_last_updated_with_prefixes(client: FlaskClient, value: str, expected: int) -> None:
    assert search(client, f"_lastUpdated={value}&_count=100")["total"] == expected


def test_last_updated_range_is_two_clauses(client: FlaskClient) -> None:
    bundle = search(client, "_lastUpdated=ge2026-01-10&_lastUpdated=lt2026-01-20&_count=100")
    assert bundle["total"] == 10 and ids(bundle)[0] == "NCT91000009"


@pytest.mark.parametrize(
    "value",
    [
        "yesterday", "2026-13-01", "2026-02-30", "xx2026-01-01", "sa2026-01-01", "0000-01-01", "9999",
        "2026-01-01T10:00+99:00", "0001-01-01T00:00+13:00", "2026-01-01T25:00Z",
    ],
)  # fmt: skip
def test_malformed_or_unsupported_last_updated_is_400(client: FlaskClient, value: str) -> None:
    response = client.get(f"/ResearchStudy?_lastUpdated={value}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_sort_by_last_updated_and_title(client: FlaskClient) -> None:
    newest = ids(search(client, "_sort=-_lastUpdated&_count=3"))
    assert newest == ["NCT91000044", "NCT91000043", "NCT91000042"]
    oldest = ids(search(client, "_sort=_lastUpdated&_count=2"))
    assert oldest == ["NCT91000000", "NCT91000001"]
    by_title = ids(search(client, "_sort=title&_count=2"))  # "Trial 001" is the last trial
    assert by_title == ["NCT91000044", "NCT91000043"]


@pytest.mark.parametrize("value", ["status", "_lastUpdated,bogus", "--title", ""])
def test_unknown_sort_is_400(client: FlaskClient, value: str) -> None:
    response = client.get(f"/ResearchStudy?_sort={value}")
    assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "invalid"


def test_total_none_leaves_the_total_out_and_a_bad_value_is_400(client: FlaskClient) -> None:
    assert "total" not in search(client, "_total=none")
    assert search(client, "_total=accurate")["total"] == TRIALS
    assert client.get("/ResearchStudy?_total=maybe").status_code == 400


def test_following_next_links_lists_every_trial_once_in_order(client: FlaskClient) -> None:
    bundle = search(client, "_sort=-_lastUpdated&_count=7")
    seen: list[str] = []
    while True:
        seen += ids(bundle)
        following = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
        if following is None:
            break
        assert "_sort=-_lastUpdated" in following
        bundle = search(client, urlsplit(following).query)
    assert seen == [f"NCT91{n:06d}" for n in reversed(range(TRIALS))]


def test_a_trial_keeps_its_version_while_its_content_does_not_change(client: FlaskClient) -> None:
    first = client.get("/ResearchStudy/NCT91000003").get_json()["meta"]
    again = client.get("/ResearchStudy/NCT91000003").get_json()["meta"]
    # The reviewed date is the lastUpdated; the versionId is the content digest (tests/test_catalog_cache.py).
    assert first == again and first["lastUpdated"] == "2026-01-04T00:00:00Z"

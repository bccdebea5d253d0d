"""$match's parameters on the test catalog (tests/conftest.TRIALS, DEFAULT_COUNT 2): enrolment status
(default: open to enrolment), condition / phase / keyword, `_count` / `_offset` paging with links that
repeat the query; bad values are 400 OperationOutcomes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask.testing import FlaskClient

from service.fhir.models import validate

PATIENT = {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "birthDate": "1960-01-01"}}
BODY = {"resourceType": "Bundle", "type": "collection", "entry": [PATIENT]}


def match(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.post(f"/ResearchStudy/$match{query}", json=BODY)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle: dict[str, Any] = response.get_json()
    validate(bundle)
    return bundle


def studies(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


def test_by_default_only_studies_open_to_enrolment(client: FlaskClient) -> None:
    bundle = match(client)
    assert bundle["total"] == 2
    assert sorted(studies(bundle)) == ["EU-2024-000001", "NCT90000001"]  # not the active-but-not-recruiting one


def test_status_widens_or_narrows_the_studies(client: FlaskClient) -> None:
    assert studies(match(client, "?status=active-but-not-recruiting")) == ["NCT90000002"]
    assert match(client, "?status=recruiting,active-but-not-recruiting&_count=10")["total"] == 3
    assert match(client, "?status=completed")["total"] == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?condition=melanoma", ["NCT90000001"]),
        ("?condition=http://snomed.info/sct|372244006", ["NCT90000001"]),
        ("?phase=phase-3", ["EU-2024-000001"]),
        ("?keyword=immunotherapy", ["NCT90000001"]),
        ("?keyword=Neoplasm&status=active-but-not-recruiting", ["NCT90000002"]),
        ("?condition=osteosarcoma", []),  # that study is not open to enrolment
    ],
)
def test_condition_phase_keyword_filter_as_in_a_search(client: FlaskClient, query: str, expected: list[str]) -> None:
    bundle = match(client, query)
    assert studies(bundle) == expected and bundle["total"] == len(expected)


def test_count_pages_with_next_links_that_keep_the_query(client: FlaskClient) -> None:
    query = "?date=2026-03-01&status=recruiting,active-but-not-recruiting&_count=1"
    seen: list[str] = []
    bundle = match(client, query)
    self_query = dict(parse_qsl(urlsplit(link(bundle, "self") or "").query))
    assert self_query == {"date": "2026-03-01", "status": "recruiting,active-but-not-recruiting", "_count": "1"}
    while True:
        seen += studies(bundle)
        assert bundle["total"] == 3
        following = link(bundle, "next")
        if following is None:
            break
        parts = urlsplit(following)
        assert dict(parse_qsl(parts.query))["status"] == "recruiting,active-but-not-recruiting"
        bundle = match(client, f"?{parts.query}")
    assert sorted(seen) == ["EU-2024-000001", "NCT90000001", "NCT90000002"] and len(seen) == 3
    assert link(bundle, "previous") is not None


def test_one_page_of_everything_has_no_next_link(client: FlaskClient) -> None:
    bundle = match(client, "?_count=10")
    assert len(studies(bundle)) == 2 and link(bundle, "next") is None


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?_count=1000000000", "_count"),
        ("?_count=0", "_count"),
        ("?_offset=-1", "_offset"),
        ("?status=open", "status"),
        ("?status=recruiting,nonsense", "status"),
        ("?status=", "status"),
        ("?_count=1&_count=2", "_count"),
    ],
)
def test_bad_match_arguments_are_400(client: FlaskClient, query: str, parameter: str) -> None:
    response = client.post(f"/ResearchStudy/$match{query}", json=BODY)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "invalid"
    assert parameter in outcome["issue"][0]["diagnostics"]


def test_an_unsupported_modifier_on_a_filter_is_400(client: FlaskClient) -> None:
    response = client.post("/ResearchStudy/$match?phase:text=3", json=BODY)
    assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "not-supported"

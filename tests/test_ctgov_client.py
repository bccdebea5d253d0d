"""The ClinicalTrials.gov v2 client against recorded answers (every HTTP call mocked)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from responses import matchers

from service.sources.ctgov import (
    DEFAULT_BASE_URL,
    CtgovClient,
    MalformedResponse,
    StudyNotFound,
    TransientFailure,
    studies_in,
)
from tests.ctgov_data import recorded

BASE = "https://ctgov.test/api/v2"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> CtgovClient:
    return CtgovClient(base_url=BASE, sleep=sleeps.append, max_retries=3, backoff_seconds=1.0)


@responses.activate
def test_get_study_returns_the_recorded_record(client: CtgovClient) -> None:
    record = recorded("xiaoyibao/NCT06008288.json")
    responses.get(f"{BASE}/studies/NCT06008288", json=record)
    study = client.get_study("nct06008288")
    assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT06008288"
    assert responses.calls[0].request.headers["Accept"] == "application/json"


@responses.activate
def test_unknown_study_is_a_typed_not_found(client: CtgovClient) -> None:
    responses.get(f"{BASE}/studies/NCT99999999", status=404, json={"message": "not found"})
    with pytest.raises(StudyNotFound) as caught:
        client.get_study("NCT99999999")
    assert caught.value.nct_id == "NCT99999999"


@pytest.mark.parametrize(
    "answer",
    [
        {"body": "<html>maintenance</html>", "content_type": "text/html"},
        {"json": {"studies": "nope"}},
        {"json": {"protocolSection": {"identificationModule": {}}}},
        {"json": [1, 2]},
    ],
)
@responses.activate
def test_malformed_answers_are_typed_errors(client: CtgovClient, answer: dict[str, Any]) -> None:
    responses.get(f"{BASE}/studies/NCT06008288", **answer)
    with pytest.raises(MalformedResponse):
        client.get_study("NCT06008288")


def test_a_bad_nct_number_is_refused_before_any_call(client: CtgovClient) -> None:
    with pytest.raises(ValueError):
        client.get_study("NCT123")


@responses.activate
def test_429_is_retried_after_the_time_the_server_asks(client: CtgovClient, sleeps: list[float]) -> None:
    url = f"{BASE}/studies/NCT06008288"
    responses.get(url, status=429, headers={"Retry-After": "7"})
    responses.get(url, json=recorded("xiaoyibao/NCT06008288.json"))
    assert client.get_study("NCT06008288")["protocolSection"]
    assert sleeps == [7.0]


@responses.activate
def test_5xx_backs_off_exponentially_then_gives_up(client: CtgovClient, sleeps: list[float]) -> None:
    responses.get(f"{BASE}/studies/NCT06008288", status=503)
    with pytest.raises(TransientFailure):
        client.get_study("NCT06008288")
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(responses.calls) == 4


@responses.activate
def test_connection_errors_are_retried(client: CtgovClient, sleeps: list[float]) -> None:
    url = f"{BASE}/studies/NCT06008288"
    responses.get(url, body=requests.ConnectionError("reset"))
    responses.get(url, json=recorded("xiaoyibao/NCT06008288.json"))
    assert client.get_study("NCT06008288")["protocolSection"]
    assert sleeps == [1.0]


@responses.activate
def test_search_follows_page_tokens(client: CtgovClient) -> None:
    first = recorded("xiaoyibao/condition_query_response.json")
    second = {"studies": recorded("dgg32/ctg-studies(2).json")}  # the website download array, as a last page
    responses.get(
        f"{BASE}/studies",
        json=first,
        match=[matchers.query_param_matcher({"query.cond": "pancreatic cancer"}, strict_match=False)],
    )
    responses.get(
        f"{BASE}/studies",
        json=second,
        match=[matchers.query_param_matcher({"pageToken": first["nextPageToken"]}, strict_match=False)],
    )
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in client.search_all("pancreatic cancer")]
    assert len(ids) == 11
    assert ids[0] == "NCT05288205" and ids[-1] == "NCT02663973"
    assert "pageToken" not in responses.calls[0].request.url


@responses.activate
def test_get_studies_uses_filter_ids_and_keeps_the_order_asked(client: CtgovClient) -> None:
    page = recorded("xiaoyibao/condition_query_response.json")
    responses.get(
        f"{BASE}/studies",
        json=page,
        match=[matchers.query_param_matcher({"filter.ids": "NCT06411691,NCT05288205"}, strict_match=False)],
    )
    studies = client.get_studies(["NCT06411691", "NCT05288205"])
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in studies] == [
        "NCT06411691",
        "NCT05288205",
    ]


@responses.activate
def test_get_studies_reports_a_missing_id(client: CtgovClient) -> None:
    responses.get(f"{BASE}/studies", json={"studies": [recorded("xiaoyibao/NCT06008288.json")]})
    with pytest.raises(StudyNotFound):
        client.get_studies(["NCT06008288", "NCT00000001"])


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTGOV_BASE_URL", "http://mirror.local/api/v2")
    assert CtgovClient().base_url == "http://mirror.local/api/v2"
    monkeypatch.delenv("CTGOV_BASE_URL")
    assert CtgovClient().base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("xiaoyibao/NCT06008288.json", 1),
        ("xiaoyibao/condition_query_response.json", 10),
        ("dgg32/ctg-studies(5).json", 50),
    ],
)
def test_recorded_files_of_every_shape_give_their_studies(name: str, count: int) -> None:
    assert len(studies_in(recorded(name))) == count

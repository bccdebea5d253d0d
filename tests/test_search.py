"""Search semantics of GET /ResearchStudy and /EvidenceVariable, as a client sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Config


def search(client: FlaskClient, query: str, **headers: str) -> dict[str, Any]:
    response = client.get(f"/ResearchStudy?{query}", headers=headers)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def ids(bundle: dict[str, Any]) -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


ALL = ["EU-2024-000001", "NCT90000001", "NCT90000002"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_id=NCT90000002", ["NCT90000002"]),
        ("_id=NCT90000001,NCT90000002", ["NCT90000001", "NCT90000002"]),
        ("identifier=NCT90000001", ["NCT90000001"]),
        ("identifier=https://clinicaltrials.gov/nctid|NCT90000002", ["NCT90000002"]),  # stored as http://...
        ("identifier=http://clinicaltrials.gov|NCT90000001", ["NCT90000001"]),
        ("identifier=https://clinicaltrials.gov|NCT90000001", ["NCT90000001"]),
        ("identifier=https://euclinicaltrials.eu/clinicalTrialId|", ["EU-2024-000001"]),
        ("identifier=|NCT90000001", []),  # `|value` = an identifier without a system
        ("identifier=http://other.example|NCT90000001", []),
        ("status=recruiting", ["EU-2024-000001", "NCT90000001"]),
        ("status=http://hl7.org/fhir/research-study-status|active-but-not-recruiting", ["NCT90000002"]),
        ("status=draft", ["EU-2024-000001"]),
        ("status=http://hl7.org/fhir/publication-status|active", ["NCT90000001", "NCT90000002"]),
        ("condition=372244006", ["NCT90000001"]),
        ("condition=http://snomed.info/sct|372244006", ["NCT90000001"]),
        ("condition=http://loinc.org|372244006", []),
        ("condition=melanoma", ["NCT90000001"]),  # plain word: display, case-insensitive
        ("condition:text=OSTEO", ["NCT90000002"]),
        ("condition:text=her2", ["EU-2024-000001"]),
        (r"condition:text=cancer\, HER2", ["EU-2024-000001"]),  # escaped comma is part of the value
        ("condition:text=372244006", []),  # :text never matches codes
        ("keyword=immunotherapy", ["NCT90000001"]),
        ("keyword=http://snomed.info/sct|108369006", ["NCT90000002"]),
        ("phase=phase-2", ["NCT90000001"]),
        ("phase=phase-3,phase-1-phase-2", ["EU-2024-000001", "NCT90000002"]),
        ("phase=Phase 2", []),  # phase is a code, never its display
        ("phase=http://hl7.org/fhir/research-study-phase|phase-3", ["EU-2024-000001"]),
        ("title=pembro", ["NCT90000001"]),
        ("title=elan", ["NCT90000002"]),  # accent- and case-insensitive
        ("title=melanoma", []),  # plain string search is starts-with
        ("title:contains=MELANOMA", ["NCT90000001"]),
        ("title:exact=Pembrolizumab in advanced melanoma", ["NCT90000001"]),
        ("title:exact=pembrolizumab in advanced melanoma", []),
        ("status=recruiting&phase=phase-3", ["EU-2024-000001"]),  # repeated params AND
        ("status=recruiting&status=draft", ["EU-2024-000001"]),
        ("title=", ALL),  # an empty value is ignored
    ],
)
def test_research_study_search_parameters(client: FlaskClient, query: str, expected: list[str]) -> None:
    bundle = search(client, query + "&_count=50")
    assert bundle["type"] == "searchset"
    assert ids(bundle) == expected
    assert bundle["total"] == len(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_id=NCT90000001-eligibility", ["NCT90000001-eligibility"]),
        ("title:contains=osteosarcoma", ["NCT90000002-eligibility"]),
    ],
)
def test_evidence_variable_search(client: FlaskClient, query: str, expected: list[str]) -> None:
    bundle = client.get(f"/EvidenceVariable?{query}").json
    assert ids(bundle) == expected


def test_evidence_variable_url_is_exact(client: FlaskClient) -> None:
    ev = client.get("/EvidenceVariable/NCT90000001-eligibility").json
    assert ids(client.get(f"/EvidenceVariable?url={ev['url']}").json) == ["NCT90000001-eligibility"]
    assert ids(client.get(f"/EvidenceVariable?url={ev['url']}x").json) == []


def test_paging_walks_every_result_once(client: FlaskClient) -> None:
    seen: list[str] = []
    url: str | None = "/ResearchStudy?_count=2"
    pages = 0
    while url:
        bundle = client.get(url).json
        assert bundle["total"] == 3
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = link(bundle, "next")
        url = urlsplit(nxt).path + "?" + urlsplit(nxt).query if nxt else None
        pages += 1
    assert pages == 2 and sorted(seen) == ALL and len(seen) == 3


def test_previous_and_self_links(client: FlaskClient) -> None:
    bundle = search(client, "_count=2&_offset=2&status=recruiting,active")
    assert link(bundle, "next") is None
    previous = dict(parse_qsl(urlsplit(link(bundle, "previous") or "").query))
    assert previous.get("_offset", "0") == "0" and previous["_count"] == "2"
    this = dict(parse_qsl(urlsplit(link(bundle, "self") or "").query))
    assert this == {"status": "recruiting,active", "_count": "2", "_offset": "2"}


def test_count_is_capped_and_zero_gives_only_total(client: FlaskClient) -> None:
    capped = search(client, "_count=5000")
    assert "_count=50" in (link(capped, "self") or "")
    zero = search(client, "_count=0")
    assert zero["total"] == 3 and "entry" not in zero


def test_unknown_parameter_ignored_and_left_out_of_self_link(client: FlaskClient) -> None:
    bundle = search(client, "frobnicate=1&phase=phase-2")
    assert ids(bundle) == ["NCT90000001"]
    assert "frobnicate" not in (link(bundle, "self") or "")
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1 and outcomes[0]["resource"]["issue"][0]["severity"] == "warning"


def test_unknown_parameter_rejected_with_strict_handling(client: FlaskClient) -> None:
    response = client.get("/ResearchStudy?frobnicate=1", headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert response.json["issue"][0]["code"] == "not-supported"
    assert client.get("/ResearchStudy?phase=phase-2", headers={"Prefer": "handling=strict"}).status_code == 200


@pytest.mark.parametrize(
    "query", ["title:below=x", "_count=-1", "_count=many", "_offset=-3", "_summary=maybe", "_elements=a.b",
              "_count=1&_count=2"],
)  # fmt: skip
def test_invalid_arguments_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/ResearchStudy?{query}")
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"


def test_summary_count_and_true(client: FlaskClient) -> None:
    counted = search(client, "_summary=count")
    assert counted["total"] == 3 and "entry" not in counted
    summary = search(client, "_summary=true&_id=NCT90000001")
    resource = summary["entry"][0]["resource"]
    assert "title" in resource and "progressStatus" not in resource  # progressStatus is not a summary element
    assert {"code": "SUBSETTED"}.items() <= resource["meta"]["tag"][0].items()


def test_elements_keeps_listed_and_mandatory(client: FlaskClient) -> None:
    resource = search(client, "_elements=title&_id=NCT90000001")["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "title", "status"}  # status is mandatory (1..1)


def test_base_url_setting_shapes_full_urls_and_links(mappings_dir: Path) -> None:
    app = create_app(Config(mappings_dir=mappings_dir, base_url="https://fhir.example.org/trials"))
    bundle = app.test_client().get("/ResearchStudy?_id=NCT90000001").json
    assert bundle["entry"][0]["fullUrl"] == "https://fhir.example.org/trials/ResearchStudy/NCT90000001"
    assert all(lk["url"].startswith("https://fhir.example.org/trials/ResearchStudy?") for lk in bundle["link"])


def test_request_host_is_the_default_base(client: FlaskClient) -> None:
    bundle = client.get("/ResearchStudy?_id=NCT90000001", base_url="http://trials.local:9000").json
    assert bundle["entry"][0]["fullUrl"] == "http://trials.local:9000/ResearchStudy/NCT90000001"

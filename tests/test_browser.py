"""The coordinator page in a real browser: headless Chromium (Debian's package) driven by playwright against
a live server on 127.0.0.1, at 1280 px and 390 px wide, with authentication off and on.

The journey a coordinator makes: find a seed trial by search, read a criterion's machine rule, load a
fixture bundle (a file, or a FHIR server the page fetches from), see the verdicts the API gives, open a
match and read a criterion's evidence and the missing-data checklist, print it. Screenshots of each step
go to test-artifacts/browser/ (gitignored) for a person to look at.

Skips (never silently) where Chromium or playwright is absent: .ci/run installs Chromium with apt-get.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from werkzeug.serving import make_server

from service.app import create_app
from service.config import Config
from tests.mapping_helpers import load as load_mapping
from tests.tokens import AUDIENCE, ISSUER, TestIssuer

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
TRIAL = "NCT06494995"
ON = "2026-03-01"
UNDETERMINED = REPO / "fixtures" / TRIAL / "undetermined_stale_platelets.json"
EHR_RECORD = REPO / "fixtures" / TRIAL / "eligible_r4.json"  # R4, as EHRs answer today
EHR = "http://ehr.invalid/fhir"  # never resolved: the page's requests to it are answered by page.route

# One xdist worker runs them all: they share the artifacts directory and one browser.
pytestmark = pytest.mark.xdist_group("browser")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install '.[test]'): browser tests skipped"
)
if not CHROMIUM.exists():
    pytest.skip(
        f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does): browser tests skipped",
        allow_module_level=True,
    )


@dataclass
class Server:
    url: str
    token: str | None


def _serve(config: Config) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    for url in _serve(Config(mappings_dir=REPO / "mappings")):
        yield Server(url, None)


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    issuer = TestIssuer()
    jwks = issuer.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json")
    config = Config(
        mappings_dir=REPO / "mappings", auth_enabled=True, auth_issuer=ISSUER, auth_audience=AUDIENCE,
        auth_jwks_file=jwks,
    )  # fmt: skip
    for url in _serve(config):
        yield Server(url, issuer.token())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


class Journey:
    """One browser page with console errors collected and numbered screenshots."""

    def __init__(self, browser: Any, name: str, width: int, height: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.step = 0

    def shot(self, what: str, full_page: bool = True) -> Path:
        self.step += 1
        path = ARTIFACTS / f"{self.name}-{self.step:02d}-{what}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()


def _api_verdicts(server: Server, bundle: Path) -> dict[str, str]:
    """What the API itself answers for the bundle (the page must show the same)."""
    headers = {"Content-Type": "application/fhir+json"}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    answer = requests.post(
        f"{server.url}/ResearchStudy/$match?date={ON}&_count=100", data=bundle.read_bytes(), headers=headers, timeout=60
    ).json()
    included = {e["fullUrl"]: e["resource"] for e in answer["entry"] if e["search"]["mode"] == "include"}
    verdicts = {}
    for entry in answer["entry"]:
        if entry["search"]["mode"] == "match":
            parameters = included[entry["link"][0]["url"]]
            verdicts[entry["resource"]["id"]] = next(
                p["valueCode"] for p in parameters["parameter"] if p["name"] == "eligibility"
            )
    return verdicts


def _expected_verdict(fixture: Path) -> str:
    scenarios = yaml.safe_load((fixture.parent / "scenarios.yaml").read_text(encoding="utf-8"))
    return str(next(s["verdict"] for s in scenarios["scenarios"] if s["file"] == fixture.name))


LABELS = {"eligible": "Eligible", "ineligible": "Not eligible", "undetermined": "Undetermined"}


def _find_trial_and_read_a_rule(journey: Journey, server: Server) -> None:
    page = journey.page
    page.goto(f"{server.url}/")  # the landing redirect leads to the page
    assert page.url.startswith(f"{server.url}/app/")
    if server.token:  # a reload forgets the token: the first search is refused, then the token is entered
        page.wait_for_selector("#error:not([hidden])")
        journey.errors.clear()  # the browser logs the refused request; expected before the token
        page.get_by_label("Access token for this service").fill(server.token)
        page.get_by_role("button", name="Use token").click()
    page.wait_for_selector(".cards .card")
    journey.shot("trials")
    assert _unlabelled(page) == []
    page.get_by_label("Phase").select_option("phase-2")
    page.get_by_label("Condition").fill("nasopharyngeal")
    page.get_by_label("Condition").press("Enter")  # the keyboard submits the search
    # (a locator wait: the page's CSP forbids the eval behind wait_for_function)
    playwright_api.expect(page.locator(".cards .card")).to_have_count(1)
    journey.shot("search-result")
    page.get_by_role("link", name="AK104 and Low-dose Radiation").click()
    rule = page.locator('#criteria-inc-9\\.2 > .rule')
    rule.wait_for()
    assert rule.inner_text() == (
        "Machine check: Platelet count [LOINC 26515-7, LOINC 777-3, LOINC 778-1] ≥ 100 10*9/L; within 28 days "
        "before the evaluation date (a default window: the protocol states none)."
    )
    assert page.locator("#criteria-inc-5 .badge-screening").inner_text() == "Screening"
    assert page.locator("#criteria-inc-2 .badge-computable").inner_text() == "Computable"
    # every criterion of the published EvidenceVariable, in protocol order
    shown = page.locator("#main > section ol.criteria > li.criterion").evaluate_all(
        "items => items.map(i => i.dataset.linkId)"
    )
    assert shown == [c.link_id for c in load_mapping("NCT06494995")[1].walk()]
    page.locator("#criteria-inc-9\\.2").scroll_into_view_if_needed()
    journey.shot("trial-criteria", full_page=False)


def _unlabelled(page: Any) -> list[str]:
    """Form controls without an accessible name (a <label>, or aria-label)."""
    found: list[str] = page.locator("input, select, textarea").evaluate_all(
        "els => els.filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
    )
    return found


def _match_a_bundle(journey: Journey, server: Server, fixture: Path) -> None:
    page = journey.page
    page.get_by_role("link", name="Patient matches").click()
    page.get_by_label("Evaluation date").wait_for()
    assert _unlabelled(page) == []
    page.get_by_label("Evaluation date").fill(ON)
    page.get_by_label("Patient Bundle file (FHIR R4 or R5 JSON)").set_input_files(str(fixture))
    page.wait_for_selector("table.matches tbody tr")
    _check_verdicts(journey, server, fixture)
    journey.shot("matches")


def _check_verdicts(journey: Journey, server: Server, fixture: Path) -> None:
    rows = journey.page.locator("table.matches tbody tr").evaluate_all(
        "rows => rows.map(r => [r.querySelector('th .meta').textContent, r.querySelector('.badge').textContent])"
    )
    shown = dict(rows)
    assert shown == {study: LABELS[v] for study, v in _api_verdicts(server, fixture).items()}
    assert shown[TRIAL] == LABELS[_expected_verdict(fixture)]


def _open_the_match(journey: Journey) -> None:
    page = journey.page
    page.get_by_role("link", name="AK104 and Low-dose Radiation").click()
    page.wait_for_selector("#crit-heading")
    assert "Undetermined" in page.locator("dl.facts").inner_text()
    journey.shot("match", full_page=False)
    # inc-9.1 (neutrophils) is met on an Observation: its evidence row says type, date and value
    neutrophils = page.locator('li.result[data-link-id="inc-9.1"]')
    assert neutrophils.locator(".badge").first.inner_text() == "Met"
    row = neutrophils.locator("table.evidence tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "Observation" and cells[1].startswith("2026-02-") and cells[2].endswith("10*9/L")
    assert row.get_by_role("link", name="JSON").get_attribute("href").startswith("blob:")
    platelets = page.locator('li.result[data-link-id="inc-9.2"]')
    assert platelets.locator(".badge").first.inner_text() == "Unknown"
    assert "days" in platelets.locator(".reason").inner_text()
    assert page.locator('li.result[data-link-id="inc-5"] .badge').first.inner_text() == "To confirm at screening"
    neutrophils.scroll_into_view_if_needed()
    journey.shot("evidence", full_page=False)
    checklist = page.locator(".checklist li")
    items = checklist.all_inner_texts()
    wanted = "Platelet count (Observation: LOINC 26515-7"
    assert any(i.strip().startswith(wanted) and i.endswith(f"to {ON}") for i in items), items
    page.locator(".checklist").scroll_into_view_if_needed()
    journey.shot("missing-data", full_page=False)
    page.emulate_media(media="print")
    page.evaluate("window.scrollTo(0, 0)")
    journey.shot("print", full_page=False)
    assert not page.locator("header.site").is_visible()
    page.emulate_media(media="screen")


@pytest.mark.parametrize("viewport", sorted(WIDTHS))
def test_coordinator_journey(browser: Any, open_server: Server, viewport: str) -> None:
    journey = Journey(browser, f"open-{viewport}", *WIDTHS[viewport])
    try:
        assert not journey.page.locator("#token-form").is_visible()
        _find_trial_and_read_a_rule(journey, open_server)
        assert not journey.page.locator("#token-form").is_visible()  # auth off: nothing to enter
        _match_a_bundle(journey, open_server, UNDETERMINED)
        _open_the_match(journey)
        width = journey.page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTHS[viewport][0], f"the page scrolls sideways at {viewport} width ({width} px)"
        assert journey.errors == []
    finally:
        journey.close()


def test_patient_from_a_fhir_server(browser: Any, open_server: Server) -> None:
    """Base URL + patient id + token: the page fetches the Patient, then the types the criteria need."""
    bundle = json.loads(EHR_RECORD.read_text(encoding="utf-8"))
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    seen: list[tuple[str, str | None]] = []

    def ehr(route: Any) -> None:
        request = route.request
        seen.append((request.url, request.headers.get("authorization")))
        path = request.url.removeprefix(EHR + "/").split("?")[0]
        if path == f"Patient/{patient['id']}":
            return route.fulfill(json=patient, headers={"Access-Control-Allow-Origin": "*"})
        if path == "MedicationAdministration":  # a type this server does not serve
            return route.fulfill(status=404, json={"resourceType": "OperationOutcome"},
                                 headers={"Access-Control-Allow-Origin": "*"})  # fmt: skip
        matching = [r for r in resources if r["resourceType"] == path]
        body = {"resourceType": "Bundle", "type": "searchset", "total": len(matching),
                "entry": [{"fullUrl": f"{EHR}/{path}/{r.get('id', i)}", "resource": r, "search": {"mode": "match"}}
                          for i, r in enumerate(matching)]}  # fmt: skip
        return route.fulfill(json=body, headers={"Access-Control-Allow-Origin": "*"})

    journey = Journey(browser, "ehr-desktop", *WIDTHS["desktop"])
    try:
        page = journey.page
        page.route(f"{EHR}/**", ehr)
        page.goto(f"{open_server.url}/app/#/patient")
        page.get_by_label("Evaluation date").fill(ON)
        page.get_by_label("FHIR server base URL").fill(EHR)
        page.get_by_label("Patient id").fill(patient["id"])
        page.get_by_label("Bearer token for that server (if it needs one)").fill("ehr-token-1")
        page.get_by_role("button", name="Load and match").click()
        page.wait_for_selector("table.matches tbody tr")
        journey.shot("matches")
        assert seen[0][0] == f"{EHR}/Patient/{patient['id']}"
        assert {auth for _, auth in seen} == {"Bearer ehr-token-1"}
        fetched = {url.removeprefix(EHR + "/").split("?")[0] for url, _ in seen[1:]}
        assert {"Observation", "Condition", "Immunization", "MedicationStatement"} <= fetched
        assert "Patient" not in fetched
        source = page.locator("#matches .meta").first.inner_text()
        assert "not fetched: MedicationAdministration (The FHIR server answered 404" in source
        row = page.locator("table.matches tbody tr", has_text=TRIAL)
        assert row.locator(".badge").inner_text() == LABELS[_expected_verdict(EHR_RECORD)]
        # the browser logs the EHR's 404 (expected); nothing else went wrong
        assert [e for e in journey.errors if "status of 404" not in e] == []
    finally:
        journey.close()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + json.dumps(getattr(record, "fields", {})))


def test_journey_with_auth_on(browser: Any, secured_server: Server) -> None:
    collect = _Collect()
    logging.getLogger("service").addHandler(collect)
    journey = Journey(browser, "auth-desktop", *WIDTHS["desktop"])
    try:
        page = journey.page
        page.goto(f"{secured_server.url}/app/")
        page.get_by_label("Access token for this service").wait_for()
        page.wait_for_selector("#error:not([hidden])")
        assert "401" in page.locator("#error").inner_text()  # the search needs the token
        journey.errors.clear()  # the browser logs the refused request; expected here
        journey.shot("token-needed")
        _find_trial_and_read_a_rule(journey, secured_server)
        _match_a_bundle(journey, secured_server, UNDETERMINED)
        _open_the_match(journey)
        assert journey.errors == []
    finally:
        journey.close()
        logging.getLogger("service").removeHandler(collect)
    # The page's requests follow the API's PHI rules: no patient name, id or birth date in the logs.
    patient = next(e["resource"] for e in json.loads(UNDETERMINED.read_text())["entry"]
                   if e["resource"]["resourceType"] == "Patient")  # fmt: skip
    logged = "\n".join(collect.lines)
    assert "operations.match" in logged or "$match" in logged or "match" in logged
    for secret in (patient["id"], patient["name"][0]["family"], patient["birthDate"], secured_server.token or ""):
        assert secret not in logged

"""$evaluate-eligibility and $match over HTTP on the embedded catalog (mappings/): the answer shape of
DESIGN.md §1, every kind of bad input, golden answers, and the real shared patient bundles."""

from __future__ import annotations

import bz2
import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.config import DEFAULT_MAPPINGS_DIR, Config
from service.fhir.models import validate
from tests.conftest import EXTERNAL_DATA
from tests.test_r5_valid import assert_r5check_passes

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
GOLDEN = Path(__file__).parent / "golden"
HNSCC = "NCT06494995"
ON = "2026-03-01"
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def real_app() -> Flask:
    return create_app(Config(mappings_dir=DEFAULT_MAPPINGS_DIR, max_body_bytes=20_000_000))


@pytest.fixture()
def client(real_app: Flask) -> Iterator[FlaskClient]:
    with real_app.test_client() as c:
        yield c


def fixture(trial: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / trial / name).read_bytes())
    return loaded


def post(client: FlaskClient, url: str, body: Any, content_type: str = FHIR_JSON) -> TestResponse:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(url, data=data, content_type=content_type)


def evaluate(client: FlaskClient, body: Any, trial: str = HNSCC, query: str = f"?date={ON}") -> TestResponse:
    return post(client, f"/ResearchStudy/{trial}/$evaluate-eligibility{query}", body)


def parts(parameter: dict[str, Any]) -> dict[str, Any]:
    """name → value of a parameter's parts (the last one wins for repeated names)."""
    out: dict[str, Any] = {}
    for part in parameter.get("part", []):
        value = next((v for k, v in part.items() if k.startswith("value")), part.get("part"))
        out[part["name"]] = value
    return out


def named(parameters: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in parameters["parameter"] if p["name"] == name]


def assert_outcome(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body: dict[str, Any] = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    return body


# ------------------------------------------------------------------------------------ answer shape


def test_evaluate_answers_the_contract_shape(client: FlaskClient, real_app: Flask) -> None:
    response = evaluate(client, fixture(HNSCC, "eligible.json"))
    assert response.status_code == 200 and response.mimetype == FHIR_JSON
    answer = response.get_json()
    validate(answer)
    assert named(answer, "eligibility")[0]["valueCode"] == "eligible"
    subject = named(answer, "researchSubject")[0]["resource"]
    assert subject["study"]["reference"] == f"ResearchStudy/{HNSCC}"
    progress = subject["progress"][0]
    assert progress["type"]["coding"][0]["code"] == "Enrollment"
    # Screening confirmations (consent, contraception...) are pending: a candidate, not yet eligible.
    assert progress["subjectState"]["coding"][0]["code"] == "candidate"
    # One criterion per top-level characteristic of the published EvidenceVariable, same linkIds.
    published = real_app.extensions["catalog"].get("EvidenceVariable", f"{HNSCC}-eligibility")
    criteria = [parts(c) for c in named(answer, "criterion")]
    assert [c["linkId"] for c in criteria] == [c["linkId"] for c in published["characteristic"]]
    for criterion in criteria:
        assert criterion["result"] in ("met", "not-met", "unknown") and criterion["reason"]
    age = next(c for c in criteria if c["linkId"] == "inc-2")
    assert age["result"] == "met" and "Age" in age["reason"]


def test_nested_combinations_report_their_children(client: FlaskClient) -> None:
    answer = evaluate(client, fixture(HNSCC, "ineligible_platelets.json")).get_json()
    assert named(answer, "eligibility")[0]["valueCode"] == "ineligible"
    labs = next(c for c in named(answer, "criterion") if parts(c)["linkId"] == "inc-9")
    children = [parts(p) for p in labs["part"] if p["name"] == "criterion"]
    platelets = next(c for c in children if c["linkId"] == "inc-9.2")
    assert platelets["result"] == "not-met"
    assert "Platelet" in platelets["reason"] and "does not meet" in platelets["reason"]
    evidence = [p for p in next(c for c in labs["part"] if p_is(c, "inc-9.2"))["part"] if p["name"] == "evidence"]
    assert evidence and evidence[0]["valueReference"]["reference"].startswith("urn:uuid:")


def p_is(part: dict[str, Any], link_id: str) -> bool:
    return part["name"] == "criterion" and parts(part).get("linkId") == link_id


def test_unknowns_come_with_data_requirements(client: FlaskClient) -> None:
    answer = evaluate(client, fixture(HNSCC, "undetermined_stale_platelets.json")).get_json()
    assert named(answer, "eligibility")[0]["valueCode"] == "undetermined"
    assert named(answer, "researchSubject")[0]["resource"]["progress"][0]["subjectState"]["coding"][0]["code"] == (
        "potential-candidate"
    )
    requirements = [p["valueDataRequirement"] for p in named(answer, "dataRequirement")]
    platelets = [
        r for r in requirements if any(c["code"] == "777-3" for f in r.get("codeFilter", []) for c in f["code"])
    ]
    assert platelets and platelets[0]["type"] == "Observation"
    assert platelets[0]["dateFilter"][0]["valuePeriod"]["end"] == ON


def test_parameters_body_carries_the_bundle_and_the_date(client: FlaskClient) -> None:
    bundle = fixture(HNSCC, "eligible.json")
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": bundle}, {"name": "date", "valueDate": ON}],
    }
    direct = evaluate(client, bundle).get_json()
    via_parameters = evaluate(client, wrapped, query="").get_json()
    assert via_parameters == direct
    assert named(via_parameters, "evaluationDate")[0]["valueDate"] == ON


def test_the_evaluation_date_moves_the_windows(client: FlaskClient) -> None:
    later = evaluate(client, fixture(HNSCC, "eligible.json"), query="?date=2026-06-01").get_json()
    assert named(later, "eligibility")[0]["valueCode"] == "undetermined"  # the labs are now months old
    reasons = [r["valueString"] for c in named(later, "criterion") for r in _walk_parts(c) if r["name"] == "reason"]
    assert any("days old" in reason for reason in reasons)


def _walk_parts(parameter: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for part in parameter.get("part", []):
        yield part
        yield from _walk_parts(part)


def test_r4_mime_parameter_is_honoured(client: FlaskClient) -> None:
    body = orjson.dumps(fixture(HNSCC, "eligible_r4.json"))
    response = post(
        client,
        f"/ResearchStudy/{HNSCC}/$evaluate-eligibility?date={ON}",
        body,
        "application/fhir+json; fhirVersion=4.0",
    )
    assert response.status_code == 200
    assert named(response.get_json(), "eligibility")[0]["valueCode"] == "eligible"


def _criterion_by_link_id(answer: dict[str, Any], link_id: str) -> dict[str, Any]:
    for parameter in named(answer, "criterion"):
        for part in [parameter, *_walk_parts(parameter)]:
            if part["name"] == "criterion" and parts(part).get("linkId") == link_id:
                return {
                    **parts(part),
                    "evidence": [p["valueReference"]["reference"] for p in part["part"] if p["name"] == "evidence"],
                }
    raise KeyError(link_id)


def test_invalid_evidence_decides_nothing_and_is_reported(client: FlaskClient) -> None:
    bundle = copy.deepcopy(fixture(HNSCC, "eligible.json"))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Observation" and resource["code"]["coding"][0]["code"] == "777-3":
            resource["valueQuantity"]["unexpectedElement"] = True  # not valid FHIR: fhir.resources rejects it
            platelets_ref = entry["fullUrl"]
    answer = evaluate(client, bundle).get_json()
    assert named(answer, "eligibility")[0]["valueCode"] == "undetermined"
    platelets = _criterion_by_link_id(answer, "inc-9.2")
    assert platelets["result"] == "unknown" and "not valid FHIR" in platelets["reason"]
    assert platelets["evidence"] == [platelets_ref]  # the coordinator sees which record to fix
    warning = named(answer, "warning")[0]["resource"]
    assert warning["resourceType"] == "OperationOutcome"
    assert any(
        "not valid FHIR" in issue["diagnostics"] and issue["severity"] == "warning" for issue in warning["issue"]
    )


def test_an_invalid_record_of_an_exclusion_never_makes_a_patient_eligible(client: FlaskClient) -> None:
    """Dropping an invalid HIV diagnosis would read as "no HIV" (closed world): a wrong eligible."""
    bundle = copy.deepcopy(fixture(HNSCC, "eligible.json"))
    patient_ref = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    hiv = {
        "resourceType": "Condition",
        "id": "hiv-1",
        "subject": {"reference": patient_ref},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "86406008"}], "text": "HIV infection"},
        "onsetDateTime": "2019-04-01",
        "severityScore": 3,
    }  # not an R5 element: invalid
    bundle["entry"].append({"fullUrl": "urn:uuid:7d0c8f5e-1c6b-4e8e-9a53-5a1f0f6c0001", "resource": hiv})
    answer = evaluate(client, bundle).get_json()
    assert named(answer, "eligibility")[0]["valueCode"] == "undetermined"
    assert _criterion_by_link_id(answer, "exc-11.1")["result"] == "unknown"


def test_match_ranks_every_study_with_grades_and_links(client: FlaskClient, real_app: Flask) -> None:
    response = post(client, f"/ResearchStudy/$match?date={ON}", fixture(HNSCC, "eligible.json"))
    assert response.status_code == 200
    bundle = response.get_json()
    validate(bundle)
    studies = real_app.extensions["catalog"].trials
    assert bundle["type"] == "searchset" and bundle["total"] == len(studies)
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert len(matches) == len(studies)
    first = matches[0]
    assert first["resource"]["id"] == HNSCC and first["search"]["score"] == 0.9
    assert first["search"]["extension"][0]["valueCode"] == "probable"  # eligible, confirmations pending
    order = {"certain": 0, "probable": 0, "possible": 1, "certainly-not": 2}
    grades = [order[e["search"]["extension"][0]["valueCode"]] for e in matches]
    assert grades == sorted(grades)
    included = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    for entry in matches:
        result = included[entry["link"][0]["url"]]
        subject = named(result, "researchSubject")[0]["resource"]
        assert subject["study"]["reference"] == f"ResearchStudy/{entry['resource']['id']}"


def test_match_count_limits_the_entries_not_the_total(client: FlaskClient) -> None:
    bundle = post(client, f"/ResearchStudy/$match?date={ON}&_count=2", fixture(HNSCC, "eligible.json")).get_json()
    assert len([e for e in bundle["entry"] if e["search"]["mode"] == "match"]) == 2
    assert bundle["total"] == 5


# ------------------------------------------------------------------------------------ bad input


def test_unknown_study_is_404(client: FlaskClient) -> None:
    assert_outcome(evaluate(client, fixture(HNSCC, "eligible.json"), trial="NCT00000000"), 404, "not-found")


@pytest.mark.parametrize("query", ["?date=2026-13-01", "?date=yesterday", "?date=2026-03-01&date=2026-03-02"])
def test_bad_date_is_400(client: FlaskClient, query: str) -> None:
    assert_outcome(evaluate(client, fixture(HNSCC, "eligible.json"), query=query), 400, "invalid")


def test_date_in_query_and_parameters_must_agree(client: FlaskClient) -> None:
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": fixture(HNSCC, "eligible.json")},
            {"name": "date", "valueDate": "2026-02-01"},
        ],
    }
    assert_outcome(evaluate(client, wrapped), 400, "invalid")


@pytest.mark.parametrize("count", ["0", "-1", "x"])
def test_bad_match_count_is_400(client: FlaskClient, count: str) -> None:
    response = post(client, f"/ResearchStudy/$match?_count={count}", fixture(HNSCC, "eligible.json"))
    assert_outcome(response, 400, "invalid")


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = post(client, f"/ResearchStudy/{HNSCC}/$evaluate-eligibility", b"<Bundle/>", "application/xml")
    assert_outcome(response, 415, "not-supported")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"entry": []}', b""])
def test_not_fhir_json_is_400(client: FlaskClient, body: bytes) -> None:
    assert_outcome(post(client, "/ResearchStudy/$match", body), 400, "structure")


def _bundle(*resources: dict[str, Any], bundle_type: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"fullUrl": f"urn:uuid:0000000{n}-0000-4000-8000-000000000000", "resource": r}
            for n, r in enumerate(resources)
        ],
    }


PATIENT = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1960-01-01"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (PATIENT, "Expected a Bundle"),
        (_bundle({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}), "no Patient"),
        (_bundle(PATIENT, {**PATIENT, "id": "q"}), "2 Patient"),
        (_bundle(PATIENT, bundle_type="history"), "Bundle.type"),
        ({"resourceType": "Parameters", "parameter": [{"name": "date", "valueDate": ON}]}, "'bundle'"),
        (_bundle({**PATIENT, "birthDate": "the 1st of May"}), "Patient resource is not valid"),
    ],
)
def test_unusable_fhir_is_422(client: FlaskClient, body: dict[str, Any], fragment: str) -> None:
    for url in (f"/ResearchStudy/{HNSCC}/$evaluate-eligibility", "/ResearchStudy/$match"):
        outcome = assert_outcome(post(client, url, body), 422, outcome_code(fragment))
        assert fragment in outcome["issue"][0]["diagnostics"]


def outcome_code(fragment: str) -> str:
    return "required" if fragment in ("no Patient", "'bundle'") else "processing"


def test_wrong_shapes_inside_resources_never_500(client: FlaskClient) -> None:
    odd = _bundle(
        PATIENT,
        {"resourceType": "Observation", "status": "final", "code": "not-a-concept", "valueQuantity": 3},
        {"resourceType": "Condition", "code": {"coding": "nope"}, "onsetDateTime": 12},
        {"resourceType": "MedicationStatement", "status": "active", "medication": [1, 2], "dosage": "x"},
        {"resourceType": "Procedure", "status": "completed", "performedPeriod": "2020"},
    )
    response = post(client, f"/ResearchStudy/$match?date={ON}", odd)
    assert response.status_code == 200
    validate(response.get_json())


# ------------------------------------------------------------------------------------ golden answers

GOLDEN_CASES = [
    (HNSCC, "eligible.json"),
    (HNSCC, "ineligible_alt_uln.json"),
    (HNSCC, "ineligible_platelets.json"),  # the README's first example
    (HNSCC, "undetermined_stale_platelets.json"),
    ("NCT05621668", "eligible_part_b_osteosarcoma.json"),
    ("NCT06284590", "complete-r4.json"),
    ("car-nk-solid-tumor-platform", "dual-target-r5.json"),
]


@pytest.mark.parametrize(("trial", "name"), GOLDEN_CASES, ids=[f"{t}/{n}" for t, n in GOLDEN_CASES])
def test_golden_answers(client: FlaskClient, trial: str, name: str) -> None:
    """The whole answer, byte for byte as JSON, for key scenarios. After an intended change, rewrite
    them with UPDATE_GOLDEN=1 and review the diff like code."""
    answer = evaluate(client, fixture(trial, name), trial=trial).get_json()
    golden = GOLDEN / trial / name.replace(".json", ".parameters.json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(answer, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert answer == json.loads(golden.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ real shared data


def _shared_bundles() -> list[Any]:
    paths = sorted((EXTERNAL_DATA / "patients").rglob("*.json")) + sorted(
        (EXTERNAL_DATA / "patients").rglob("*.json.bz2")
    )
    return [pytest.param(p, id=p.name[:60]) for p in paths]


@pytest.mark.parametrize("path", _shared_bundles())
def test_real_bundles_through_match(client: FlaskClient, path: Path) -> None:
    raw = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    response = post(client, f"/ResearchStudy/$match?date={ON}", raw)
    assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
    body = response.get_json()
    validate(body)
    if response.status_code == 422:  # e.g. the mCODE single-purpose bundles that carry no Patient
        assert "Patient" in body["issue"][0]["diagnostics"]
        return
    for entry in body["entry"]:
        if entry["search"]["mode"] == "include":
            for parameter in _walk_parts(entry["resource"]):
                if parameter["name"] == "reason":
                    assert parameter["valueString"].strip()


def test_real_bundles_read_right(client: FlaskClient) -> None:
    """Spot checks that the verdicts on real records make clinical sense."""
    synthea = EXTERNAL_DATA / "patients" / "synthea"
    breast = post(
        client,
        f"/ResearchStudy/NCT06284590/$evaluate-eligibility?date={ON}",
        (synthea / "44717d84-17d5-cefa-acf9-fe51fddc5d1c.json").read_bytes(),
    ).get_json()
    assert named(breast, "eligibility")[0]["valueCode"] == "ineligible"  # breast cancer is not melanoma
    diagnosis = next(parts(c) for c in named(breast, "criterion") if parts(c)["linkId"] == "inc-2")
    assert diagnosis["result"] == "not-met"
    infant = post(
        client,
        f"/ResearchStudy/{HNSCC}/$evaluate-eligibility?date={ON}",
        (synthea / "8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json").read_bytes(),
    ).get_json()
    age = next(parts(c) for c in named(infant, "criterion") if parts(c)["linkId"] == "inc-2")
    assert age["result"] == "not-met" and "Age" in age["reason"]


def test_operation_answers_pass_r5check(client: FlaskClient, tmp_path: Path) -> None:
    answers = [(f"evaluate {t}/{n}", evaluate(client, fixture(t, n), trial=t).get_json()) for t, n in GOLDEN_CASES]
    synthea = (EXTERNAL_DATA / "patients" / "synthea" / "44717d84-17d5-cefa-acf9-fe51fddc5d1c.json").read_bytes()
    answers.append(("match synthea", post(client, f"/ResearchStudy/$match?date={ON}", synthea).get_json()))
    answers.append(("422", post(client, "/ResearchStudy/$match", PATIENT).get_json()))
    assert_r5check_passes(answers, tmp_path)

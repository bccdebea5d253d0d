"""Odd bodies and dates through the operations (in-process): compressed bodies, repeated JSON keys, evaluation
dates at the ends of the calendar, recorded dates at year 9999, resources nested past orjson's limits.
Each gets an OperationOutcome with a 4xx status, never a 500; verdicts of the fixtures do not change."""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Config
from service.json_keys import has_repeated_key

REPO = Path(__file__).resolve().parents[1]
STUDY = "NCT06494995"
EVALUATE = f"/ResearchStudy/{STUDY}/$evaluate-eligibility"
FIXTURE = REPO / "fixtures" / STUDY / "eligible.json"
LIMIT = 200_000


@cache
def embedded_client() -> FlaskClient:
    """The embedded catalog (mappings/) with a small body limit."""
    return create_app(Config(max_body_bytes=LIMIT, log_level="WARNING")).test_client()


def fixture() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_bytes())
    return document


def verdict(answer: dict[str, Any]) -> str:
    return str(next(p["valueCode"] for p in answer["parameter"] if p["name"] == "eligibility"))


def post(data: bytes, path: str = EVALUATE + "?date=2026-03-01", **headers: str) -> Any:
    return embedded_client().post(path, data=data, headers={"Content-Type": "application/fhir+json", **headers})


def assert_outcome(response: Any, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.json["resourceType"] == "OperationOutcome"
    if code:
        assert response.json["issue"][0]["code"] == code
    return str(response.json["issue"][0]["diagnostics"])


# ----------------------------------------------------------------- Content-Encoding


@pytest.mark.parametrize(("coding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compressed_bodies_are_read(coding: str, compress: Any) -> None:
    plain = post(FIXTURE.read_bytes())
    compressed = post(compress(FIXTURE.read_bytes()), **{"Content-Encoding": coding})
    assert compressed.status_code == plain.status_code == 200
    assert verdict(compressed.json) == verdict(plain.json) == "eligible"


def test_a_compression_bomb_is_413_without_inflating_it() -> None:
    inflated = b'{"resourceType":"Bundle","type":"collection","x":"' + b"a" * (LIMIT * 1000) + b'"}'
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(inflated) / len(bomb) > 900 and len(bomb) < LIMIT  # a 1,000:1 bomb that fits the limit sent
    assert "larger than the limit" in assert_outcome(post(bomb, **{"Content-Encoding": "gzip"}), 413, "too-long")


@pytest.mark.parametrize(
    ("coding", "data", "status"),
    [("br", b"\x1b\x00", 415), ("compress", b"x", 415), ("gzip", b"not gzip at all", 400),
     ("gzip", gzip.compress(FIXTURE.read_bytes())[:-20], 400), ("deflate", b"\x78\x9c\x00", 400)],
)  # fmt: skip
def test_unsupported_or_broken_codings(coding: str, data: bytes, status: int) -> None:
    assert_outcome(post(data, **{"Content-Encoding": coding}), status)


# ----------------------------------------------------------------- repeated keys


def test_a_repeated_key_is_400() -> None:
    # orjson alone keeps the last value: the second birthDate made the patient too young to be eligible.
    text = FIXTURE.read_text(encoding="utf-8")
    birth = json.dumps(fixture()["entry"][0]["resource"]["birthDate"])
    repeated = text.replace(f'"birthDate": {birth}', f'"birthDate": {birth}, "birthDate": "2020-01-01"', 1)
    assert repeated != text
    assert "repeats a key" in assert_outcome(post(repeated.encode()), 400, "structure")
    patient = b'"resourceType":"Patient"'
    compact = orjson.dumps(fixture()).replace(patient, patient + b',"id":"a","id":"b"')
    assert_outcome(post(compact), 400, "structure")
    assert verdict(post(FIXTURE.read_bytes()).json) == "eligible"


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        (b'{"a":1,"b":2}', False), (b'{"a":1,"a":2}', True), (b'{"a" : 1, "a" : 2}', True),
        (b'{"a" : 1, "b" : 2}', False), (b'{\n  "a": 1,\n  "a": 2\n}', True),
        (b'{"a":"x\\": y","b":1}', False), (b'{"a":"x\\" : y","b":1}', False), (b'{"a":"x\\": y","a":1}', True),
        (b'{"a":{"c":[{"d":1,"d":1}]}}', True), (b'{"k\\\\":1,"b":2}', False), (b'{"k\\\\":1,"k\\\\":2}', True),
        # escapes: a colon escaped as \u003a makes the exact check decide
        (b'{"a":"\\u0022:","b":1}', False), (b'{"a":"\\u0022:","a":1}', True), (b'{"a":"\\u00e9","a":1}', True),
        (b'{"\\u0061":1,"a":2}', True), (b'{"a":"\\u003a","b":1}', False), (b'{"a":"\\u003A","a":1}', True),
        (b'{"a":"x:y","a":"z"}', True), (b'{"a":"x:y","b":"z"}', False), (b'{"a" :1,"b"\n:2}', False),
        # deeper than orjson writes (254 levels): counted while walking
        (b'{"a":' + b"[" * 300 + b'{"b":1,"b":2}' + b"]" * 300 + b"}", True),
        (b'{"a":' + b"[" * 300 + b'{"b":1,"c":"q\\": r"}' + b"]" * 300 + b"}", False),
    ],
)  # fmt: skip
def test_repeated_key_detection(text: bytes, repeated: bool) -> None:
    assert has_repeated_key(text, orjson.loads(text)) is repeated


# ----------------------------------------------------------------- dates at the ends of the calendar


def parameters(bundle: dict[str, Any], day: str) -> bytes:
    wrapped = {"resourceType": "Parameters",
               "parameter": [{"name": "bundle", "resource": bundle}, {"name": "date", "valueDate": day}]}  # fmt: skip
    return json.dumps(wrapped).encode()


@pytest.mark.parametrize("path", [EVALUATE, "/ResearchStudy/$match"])
@pytest.mark.parametrize("day", ["0001-01-01", "0001-01-20"])
def test_an_evaluation_date_whose_windows_start_before_year_1_is_400(path: str, day: str) -> None:
    in_query = post(FIXTURE.read_bytes(), f"{path}?date={day}")
    assert "too early" in assert_outcome(in_query, 400, "value")
    assert in_query.json["issue"][0]["expression"] == ["date"]
    assert "too early" in assert_outcome(post(parameters(fixture(), day), path), 400, "value")


@pytest.mark.parametrize("day", ["0100-01-01", "1900-01-01", "9999-12-31"])
def test_evaluation_dates_far_from_today_are_answered(day: str) -> None:
    for path in (EVALUATE, "/ResearchStudy/$match"):
        assert post(FIXTURE.read_bytes(), f"{path}?date={day}").status_code == 200


def test_a_therapy_recorded_as_ending_in_9999_is_evaluated() -> None:
    # A recorded end date at the end of the calendar plus a trial's "within N days" is past year 9999.
    bundle = fixture()
    changed = 0
    for entry in bundle["entry"]:
        resource = entry["resource"]
        for period in ("effectivePeriod", "performedPeriod"):
            if period in resource:
                resource[period]["end"] = "9999-12-31"
                changed += 1
        if resource["resourceType"] == "Procedure" and "performedDateTime" in resource:
            resource["performedPeriod"] = {"start": resource.pop("performedDateTime"), "end": "9999-12-31"}
            changed += 1
    assert changed >= 2
    for path in (EVALUATE, "/ResearchStudy/$match"):
        assert post(json.dumps(bundle).encode(), f"{path}?date=2026-03-01").status_code == 200


# ----------------------------------------------------------------- nesting past orjson's limits


def nested_extension(levels: int) -> dict[str, Any]:
    deep: dict[str, Any] = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(levels):
        deep = {"url": "http://example.org/x", "extension": [deep]}
    return deep


def body_with(levels: int, where: str) -> bytes:
    """The fixture with `levels` nested extensions on its Patient or one Observation (written by hand:
    json and orjson refuse to write that deep)."""
    bundle = fixture()
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == where)
    bundle["entry"][index]["resource"]["extension"] = ["PLACEHOLDER"]
    inner = b'{"url":"http://example.org/x","valueString":"x"}'
    for _ in range(levels):
        inner = b'{"url":"http://example.org/x","extension":[' + inner + b"]}"
    return orjson.dumps(bundle).replace(b'"PLACEHOLDER"', inner)


@pytest.mark.parametrize("max_depth", [64, 1024])
@pytest.mark.parametrize("levels", [126, 130, 400])
def test_resources_nested_past_what_orjson_writes(max_depth: int, levels: int) -> None:
    client = create_app(Config(max_json_depth=max_depth, log_level="WARNING")).test_client()
    headers = {"Content-Type": "application/fhir+json"}
    patient = client.post(EVALUATE + "?date=2026-03-01", data=body_with(levels, "Patient"), headers=headers)
    assert "not valid FHIR" in assert_outcome(patient, 422, "processing")
    observation = client.post(EVALUATE + "?date=2026-03-01", data=body_with(levels, "Observation"), headers=headers)
    # The Observation is not used: the criteria resting on it are unknown, and a warning says why.
    assert observation.status_code == 200 and verdict(observation.json) == "undetermined"
    assert [i["expression"] for i in _warnings(observation.json)] == [["Observation"]]


def _warnings(answer: dict[str, Any]) -> list[dict[str, Any]]:
    outcomes = [p["resource"] for p in answer["parameter"] if p["name"] == "warning"]
    return [issue for outcome in outcomes for issue in outcome["issue"]]


def test_nested_extension_helper_matches_the_hand_written_body() -> None:
    shallow = copy.deepcopy(nested_extension(3))
    assert json.loads(body_with(3, "Patient"))["entry"][0]["resource"]["extension"] == [shallow]

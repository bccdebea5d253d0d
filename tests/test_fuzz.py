"""Fuzz of the bundle parser and both operations over mutated real bundles: never a 500, every answer
a valid FHIR R5 resource (Parameters or Bundle on 200, else OperationOutcome). bench/fuzz.py runs
the same property longer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.config import Config
from service.fhir.models import validate
from tests.fuzzing import mutated_body, real_bundles, request_target

EXPECTED = {200: ("Parameters", "Bundle")}

_APP: Flask | None = None


def real_app() -> Flask:
    """The embedded catalog (mappings/), built once."""
    global _APP
    if _APP is None:
        _APP = create_app(Config())
    return _APP


def check_answer(app: Flask, target: str, body: bytes) -> int:
    response = app.test_client().post(target, data=body, content_type="application/fhir+json")
    assert response.status_code < 500, (target, response.get_data(as_text=True)[:500])
    answer: Any = json.loads(response.get_data())
    allowed = EXPECTED.get(response.status_code, ("OperationOutcome",))
    assert answer["resourceType"] in allowed, (response.status_code, answer["resourceType"])
    validate(answer)  # a valid R5 resource (fhir.resources)
    return response.status_code


def test_the_corpus_is_real() -> None:
    assert len(real_bundles()) >= 20


@pytest.mark.parametrize("name", [name for name, _ in real_bundles()])
def test_every_unmutated_bundle_gets_a_fhir_answer(name: str) -> None:
    text = dict(real_bundles())[name]
    assert check_answer(real_app(), "/ResearchStudy/$match?date=2026-11-22", text.encode()) in (200, 422)


@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_mutated_bundles_never_crash(data: st.DataObject) -> None:
    app = real_app()
    _, body, _ = data.draw(mutated_body())
    target = data.draw(request_target(sorted(app.extensions["catalog"].trials)))
    check_answer(app, target, body)


@pytest.mark.parametrize("status", [{"code": "final"}, ["final"], 7, None])
def test_a_status_of_the_wrong_json_type_is_no_crash(status: object) -> None:
    """Found by bench/fuzz.py (seed 2): an unhashable Observation.status was a 500."""
    patient = {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "birthDate": "1970-01-01"}}
    observation = {"fullUrl": "urn:uuid:o", "resource": {"resourceType": "Observation", "status": status,
                                                        "code": {"text": "ECOG"}, "valueInteger": 1}}  # fmt: skip
    body = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [patient, observation]}).encode()
    assert check_answer(real_app(), "/ResearchStudy/$match?date=2026-11-22", body) == 200

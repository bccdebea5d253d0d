"""The eligibility operations: POST /ResearchStudy/{id}/$evaluate-eligibility and /ResearchStudy/$match.

Rule: views read the body and arguments, call service.eligibility once, and render one success
shape; every failure is a FhirError raised on the way (400/404/413/415/422).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, g, request

from service.api.body import fhir_json_body, fhir_version_param
from service.api.resources import catalog
from service.api.respond import base_url, config, fhir_response
from service.api.schemas import load_evaluation_date, load_match_count
from service.auth import Requirement
from service.eligibility import evaluate_request
from service.errors import FhirError, Issue
from service.fhir.capability import OperationSupport
from service.fhir.conformance import OP_EVALUATE, OP_MATCH
from service.fhir.eligibility_render import evaluation_parameters, match_bundle

bp = Blueprint("operations", __name__)
OPERATIONS = (OperationSupport("evaluate-eligibility", OP_EVALUATE), OperationSupport("match", OP_MATCH))
# One scope for both (service.auth.OPERATION_SCOPE); the audit record comes from g.audit_* (service.api.guard).
REQUIREMENTS = dict.fromkeys(("evaluate_eligibility", "match"), Requirement("ResearchStudy", "operation"))


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _max_depth() -> int:
    """MAX_JSON_DEPTH: a resource nested deeper is not used as evidence (checked before validation)."""
    return config().max_json_depth


@bp.post("/ResearchStudy/<fhirid:id>/$evaluate-eligibility")
def evaluate_eligibility(id: str) -> Response:
    trial = catalog().trials.get(id)
    if trial is None:
        raise FhirError(404, Issue("not-found", "No ResearchStudy with this id"))
    on = load_evaluation_date(request.args)
    evaluations = evaluate_request(fhir_json_body(), [trial], on, _today(), fhir_version_param(), _max_depth())
    result = evaluations.results[0]
    g.audit_verdicts = {result.study_id: result.verdict.value}
    return fhir_response(evaluation_parameters(result, evaluations.bundle.patient_ref, evaluations.warnings))


@bp.post("/ResearchStudy/$match")
def match() -> Response:
    on = load_evaluation_date(request.args)
    count = load_match_count(request.args)
    trials = list(catalog().trials.values())
    evaluations = evaluate_request(fhir_json_body(), trials, on, _today(), fhir_version_param(), _max_depth())
    g.audit_verdicts = {result.study_id: result.verdict.value for result in evaluations.results}
    studies = {trial.id: trial.research_study for trial in trials}
    bundle = match_bundle(
        evaluations.results, studies, evaluations.bundle.patient_ref, evaluations.warnings, base_url(), count
    )
    return fhir_response(bundle)

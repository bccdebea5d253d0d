"""The eligibility operations: POST /ResearchStudy/{id}/$evaluate-eligibility and /ResearchStudy/$match.

Rule: views read the body and arguments, call service.eligibility once, and render one success
shape; every failure is a FhirError raised on the way (400/404/413/415/422).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, g, request

from service.api.body import fhir_json_body, fhir_version_param
from service.api.resources import catalog
from service.api.respond import base_url, config, fhir_response
from service.api.schemas import MatchQuery, load_evaluation_date, load_match_query
from service.auth import Requirement
from service.catalog import Catalog, Trial
from service.catalog.index import OPEN_STATES, UNRECORDED
from service.eligibility import evaluate_request, match_page, read_request
from service.errors import FhirError, Issue
from service.fhir.capability import OperationSupport
from service.fhir.conformance import OP_EVALUATE, OP_MATCH
from service.fhir.eligibility_render import evaluation_parameters, match_bundle
from service.fhir.search import Controls, matches, parse_search

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
    g.audit_counts = {result.verdict.value: 1}
    return fhir_response(evaluation_parameters(result, evaluations.bundle.patient_ref, evaluations.warnings))


@bp.post("/ResearchStudy/$match")
def match() -> Response:
    on = load_evaluation_date(request.args)
    cfg = config()
    query = load_match_query(request.args, cfg.default_count, cfg.max_count)
    found = catalog()
    candidates = _candidates(found, query)
    bundle, day = read_request(fhir_json_body(), on, _today(), fhir_version_param())
    result = match_page(bundle, candidates, day, query.offset, query.count, found.index, _max_depth())
    g.audit_counts = {verdict.value: n for verdict, n in result.counts.items()}
    g.audit_verdicts = {e.study_id: e.verdict.value for e in result.page}
    studies = {e.study_id: found.trials[e.study_id].research_study for e in result.page}
    links = _match_links(query, result.total, base_url())
    return fhir_response(
        match_bundle(result.page, studies, bundle.patient_ref, result.warnings, result.total, links, base_url())
    )


def _candidates(found: Catalog, query: MatchQuery) -> list[Trial]:
    """The studies that pass $match's filters: enrolment state (default: open to enrolment, or no state
    recorded), then condition / phase / keyword as in a ResearchStudy search."""
    ids = found.index.with_states(query.states if query.states is not None else (*OPEN_STATES, UNRECORDED))
    trials = [trial for trial in found.trials.values() if trial.id in ids]
    if query.filters:
        search = parse_search("ResearchStudy", query.filters, Controls(count=0), strict=True)
        trials = [trial for trial in trials if matches(trial.study_view, search)]
    return trials


def _match_links(query: MatchQuery, total: int, base: str) -> list[tuple[str, str]]:
    """self (the query as applied), first, previous, next: each repeats the arguments; POST the same body."""
    kept = [(k, v) for k, v in query.pairs if k not in ("_count", "_offset")]

    def url(offset: int) -> str:
        pairs = [*kept, ("_count", str(query.count)), *([("_offset", str(offset))] if offset else [])]
        return f"{base}/ResearchStudy/$match?{urlencode(pairs, quote_via=quote, safe=',:|')}"

    links = [("self", url(query.offset)), ("first", url(0))]
    if query.offset > 0:
        links.append(("previous", url(max(0, query.offset - query.count))))
    if query.offset + query.count < total:
        links.append(("next", url(query.offset + query.count)))
    return links

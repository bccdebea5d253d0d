"""Record readings fixed after the fifth clinical review (2026-12-03): ranges, ICD-10-GM, coarser WHO codes,
HER2 IHC scores, viral loads written as text, tumour biomarkers found on any specimen, hedged disease
assessments (docs/clinical-review.md, "Engine readings fixed in the fifth review")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.domain.criteria import ICD10CM, Result, TrialCriteria
from service.domain.evaluate import CriterionResult, evaluate_study
from service.domain.values import qualitative_value
from service.fhir.patient_bundle import index_facts, parse_body
from service.mapping import parse_trial_criteria
from tests.builders import LOINC, SNOMED, administration_r4, body, concept, condition, observation, patient

ON = dt.date(2026, 3, 1)
M, N, U = Result.MET, Result.NOT_MET, Result.UNKNOWN
WHO = "http://hl7.org/fhir/sid/icd-10"
GM = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"
GM_DIMDI = "http://fhir.de/CodeSystem/dimdi/icd-10-gm"
SECURITY = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
KBV_SECURITY = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT"


def criteria(*specs: dict[str, Any]) -> TrialCriteria:
    return parse_trial_criteria({"criteria": list(specs)}, "NCT-test", "fifth")


def decide(trial: TrialCriteria, link_id: str, *resources: dict[str, Any], on: dt.date = ON) -> CriterionResult:
    evaluation = evaluate_study(trial, index_facts(parse_body(body(patient(), *resources))), on)
    for top in evaluation.all_results():
        for found in top.walk():
            if found.criterion.link_id == link_id:
                return found
    raise KeyError(link_id)


# --- a range is never its lower end ------------------------------------------------------------------

ECOG = criteria(
    {
        "id": "inc-ecog",
        "text": "ECOG 0-1",
        "observation": {"label": "ECOG", "codes": ["loinc:89247-1"], "op": "<=", "value": 1, "unit": "1"},
    },
    {
        "id": "inc-kps",
        "text": "KPS >= 70",
        "observation": {"label": "KPS", "codes": ["loinc:89243-0"], "op": ">=", "value": 70, "unit": "%"},
    },
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-2", U),
        ("1 to 2", U),
        ("ECOG 1-2", U),
        ("1–2", U),
        ("1/2", U),
        ("1 or 2", U),
        ("0-1", M),  # both ends meet ≤ 1
        ("2-3", N),  # neither end does
        ("1", M),
        ("2-1", U),  # not a range of one score: unread
    ],
)
def test_an_ecog_range_holds_only_when_both_ends_hold(text: str, expected: Result) -> None:
    found = decide(ECOG, "inc-ecog", observation("89247-1", "2026-02-20", text))
    assert found.result is expected
    if expected is U and "-" in text and text != "2-1":
        assert "range" in found.reason


def test_a_karnofsky_range_in_percent() -> None:
    assert decide(ECOG, "inc-kps", observation("89243-0", "2026-02-20", "70-80%")).result is M
    assert decide(ECOG, "inc-kps", observation("89243-0", "2026-02-20", "60-70%")).result is U


def test_a_range_is_never_given_to_a_reader_that_compares_one_number() -> None:
    from service.domain.criteria import CodeSet
    from service.domain.values import numeric_value

    facts = index_facts(parse_body(body(patient(), observation("89247-1", "2026-02-20", "1-2"))))
    codes = CodeSet(frozenset({(LOINC, "89247-1")}))
    assert numeric_value(facts.observations[0], codes) is None
    ranged = numeric_value(facts.observations[0], codes, ranges=True)
    assert ranged is not None and (ranged.value, ranged.high) == (1.0, 2.0)


# --- ICD-10-GM, and WHO / GM codes coarser than a CM class -----------------------------------------

DX = criteria(
    {"id": "inc-mel", "text": "melanoma", "condition": {"label": "melanoma", "codes": ["icd10cm:C43"]}},
    {
        "id": "exc-brain",
        "text": "brain metastases",
        "condition": {"label": "brain metastases", "codes": ["icd10cm:C79.31"]},
    },
    {"id": "exc-t2dm", "text": "T2DM complication", "condition": {"label": "T2DM", "codes": ["icd10cm:E11.65"]}},
)


def _gm(code: str, display: str, security: str | None = None, system: str = GM, **extra: Any) -> dict[str, Any]:
    record = condition(system, code, display, **extra)
    if security:
        coding = record["code"]["coding"][0]
        coding["extension"] = [{"url": SECURITY, "valueCoding": {"system": KBV_SECURITY, "code": security}}]
    return record


def test_an_icd10_gm_code_reads_as_the_cm_class_it_spells() -> None:
    assert decide(DX, "inc-mel", _gm("C43.5", "Bösartiges Melanom des Rumpfes")).result is M
    assert decide(DX, "inc-mel", _gm("C43.5", "Bösartiges Melanom des Rumpfes", system=GM_DIMDI)).result is M
    assert decide(DX, "inc-mel", _gm("C43.5 G", "Bösartiges Melanom des Rumpfes")).result is M  # confirmed
    # A GM 5th character is GM's own: E11.90 is read as E11.9, never as a finer CM code.
    assert decide(DX, "exc-t2dm", _gm("E11.90", "Diabetes mellitus, Typ 2")).result is N
    assert decide(DX, "inc-mel", _gm("E10.30†", "Diabetes mellitus, Typ 1")).result is N  # marker read, no match


def test_the_gm_diagnosis_security_is_read() -> None:
    excluded = decide(DX, "inc-mel", _gm("C43.5", "Bösartiges Melanom des Rumpfes", "A"))
    assert excluded.result is N  # ausgeschlossen: ruled out
    suspected = decide(DX, "inc-mel", _gm("C43.5", "Bösartiges Melanom des Rumpfes", "V"))
    assert suspected.result is U and "provisional" in suspected.reason  # Verdacht
    assert decide(DX, "inc-mel", _gm("C43.5V", "Bösartiges Melanom des Rumpfes")).result is U  # the letter in the code
    status_after = _gm("C43.5", "Bösartiges Melanom des Rumpfes", "Z", status=None)
    assert decide(DX, "inc-mel", status_after).result is N  # Zustand nach, no clinical status: resolved
    active_after = _gm("C43.5", "Bösartiges Melanom des Rumpfes", "Z")
    assert decide(DX, "inc-mel", active_after).result is M  # a recorded clinical status wins


def test_a_who_or_gm_code_coarser_than_the_cm_class_is_unknown() -> None:
    """WHO / GM C79.3 is "brain and cerebral meninges"; CM splits it into C79.31 brain and C79.32 meninges."""
    for system in (WHO, GM):
        coarse = decide(DX, "exc-brain", condition(system, "C79.3", ""))
        assert coarse.result is U and "C79.3" in coarse.reason and "C79.31" in coarse.reason
    assert decide(DX, "exc-brain", condition(ICD10CM, "C79.31", "")).result is M
    assert decide(DX, "exc-brain", condition(WHO, "C79.9", "")).result is N  # another site
    resolved_long_ago = condition(WHO, "C79.3", "", status="resolved")
    assert decide(DX, "exc-brain", resolved_long_ago).result is N  # the rule's own reading of status holds


# --- HER2 IHC scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("3+", "positive"),
        ("Score 3+", "positive"),
        ("3+, strong complete membrane staining", "positive"),
        ("0", "negative"),
        ("1+", "negative"),
        ("0/1+", "negative"),
        ("2+", None),  # equivocal: the ISH decides
        ("1-2+", None),
        ("HER2-low 1+, positive", "positive"),  # words beside a score decide
        ("30%", None),
    ],
)
def test_a_her2_ihc_score_is_read(text: str, reading: str | None) -> None:
    facts = index_facts(parse_body(body(patient(), observation("48676-1", "2026-02-20", text))))
    assert qualitative_value(facts.observations[0]) == reading


def test_a_score_is_read_only_on_a_her2_immunostain() -> None:
    facts = index_facts(parse_body(body(patient(), observation("5196-1", "2026-02-20", "3+"))))
    assert qualitative_value(facts.observations[0]) is None
    by_name = {**observation("0", "2026-02-20", "3+"), "code": {"text": "HER2 IHC"}}
    facts = index_facts(parse_body(body(patient(), by_name)))
    assert qualitative_value(facts.observations[0]) == "positive"


# --- result words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("BRAF p.V600E mutation identified (VAF 32%)", "positive"),
        ("BRAF mutated", "positive"),
        ("No mutation identified", "negative"),
        ("Not mutated", "negative"),
        ("Variant of uncertain significance identified", None),
        ("Not amplified (HER2/CEP17 ratio 1.3)", "negative"),
        ("Amplified", "positive"),
    ],
)
def test_variant_and_ish_wordings(text: str, reading: str | None) -> None:
    facts = index_facts(parse_body(body(patient(), observation("53844-7", "2026-02-20", text))))
    assert qualitative_value(facts.observations[0]) == reading


# --- a viral load written as text ---------------------------------------------------------------------

HBV = criteria(
    {
        "id": "inc-hbv",
        "text": "HBV DNA < 500 IU/mL",
        "observation": {"label": "HBV DNA", "codes": ["loinc:42595-9"], "op": "<", "value": 500, "unit": "[IU]/mL"},
    },
    {
        "id": "exc-hbv",
        "text": "HBV DNA >= 500 IU/mL",
        "observation": {"label": "HBV DNA", "codes": ["loinc:42595-9"], "op": ">=", "value": 500, "unit": "[IU]/mL"},
    },
    {
        "id": "exc-detectable",
        "text": "detectable HBV DNA",
        "test": {"label": "HBV DNA (detectable)", "codes": ["loinc:42595-9"], "result": "positive", "window_days": 28},
    },
)


def test_detected_below_the_limit_of_quantification_is_below_a_higher_threshold_and_detected() -> None:
    trace = observation("42595-9", "2026-02-20", "Detected, <20 IU/mL (below limit of quantification)")
    assert decide(HBV, "inc-hbv", trace).result is M
    assert decide(HBV, "exc-hbv", trace).result is N
    assert decide(HBV, "exc-detectable", trace).result is M  # detected, for a detectability rule
    amount = observation("42595-9", "2026-02-20", "Detected, 1,200 IU/mL")
    assert decide(HBV, "exc-hbv", amount).result is M
    assert decide(HBV, "inc-hbv", observation("42595-9", "2026-02-20", "12,5 IU/mL")).result is U  # unclear comma


# --- which result decides -----------------------------------------------------------------------------


def _biomarker(positive_wins: bool) -> TrialCriteria:
    test = {"label": "mesothelin", "names": ["mesothelin"], "result": "positive", "window_days": 90}
    return criteria({"id": "inc-msln", "text": "mesothelin", "test": test | {"positive_wins": positive_wins}})


def _msln(when: str, value: str, where: str = "tumour tissue") -> dict[str, Any]:
    return {**observation("0", when, value), "code": {"text": f"Mesothelin expression, {where}"}}


def test_a_tumour_biomarker_positive_on_any_specimen_decides() -> None:
    tissue, ctc = _msln("2026-01-20", "Positive, 3+"), _msln("2026-02-24", "Not detected", "circulating tumour cells")
    found = decide(_biomarker(True), "inc-msln", tissue, ctc)
    assert found.result is M and "later negative one of 2026-02-24" in found.reason and len(found.evidence) == 2
    assert decide(_biomarker(False), "inc-msln", tissue, ctc).result is N  # a lab value: the latest decides
    assert decide(_biomarker(True), "inc-msln", ctc).result is N
    old = _msln("2025-10-01", "Positive")  # outside the 90-day window
    assert decide(_biomarker(True), "inc-msln", old, ctc).result is N


def test_a_newer_result_that_cannot_be_read_leaves_the_older_one_undecided() -> None:
    older, newer = _msln("2026-01-20", "Negative"), _msln("2026-02-24", "see pathology report")
    found = decide(_biomarker(False), "inc-msln", older, newer)
    assert found.result is U and "see pathology report" in found.reason and "reads negative" in found.reason
    assert decide(_biomarker(False), "inc-msln", newer, _msln("2026-02-25", "Negative")).result is N
    only = decide(_biomarker(False), "inc-msln", newer)
    assert only.result is U and "cannot be read" in only.reason


def test_positive_wins_is_a_boolean_in_the_mapping_format() -> None:
    from service.errors import MappingError

    with pytest.raises(MappingError):
        test = {"label": "x", "names": ["x"], "result": "positive", "positive_wins": "yes"}
        criteria({"id": "inc-1", "text": "x", "test": test})


# --- a hedged or undetermined disease assessment ------------------------------------------------------

PROGRESSION = criteria(
    {
        "id": "inc-prog",
        "text": "progression within 12 weeks of the last anti-PD-1 dose",
        "progression_after": {"label": "Anti-PD-1", "codes": ["rxnorm:1547545"], "within_days": 84},
    }
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (concept(SNOMED, "709137006", "Patient condition undetermined"), U),
        ({"text": "Possible progression vs pseudoprogression; repeat CT in 6 weeks"}, U),
        ({"text": "Mixed response"}, U),
        (concept(SNOMED, "359746009", "Patient's condition stable"), N),
        ({"text": "Stable disease, no new lesions"}, N),
        (concept(LOINC, "LA28369-9", "Partial response"), N),
        (concept(SNOMED, "271299001", "Patient's condition worsened"), M),
    ],
)
def test_only_an_assessment_stating_no_progression_shows_none(value: dict[str, Any], expected: Result) -> None:
    doses = [administration_r4("1547545", "pembrolizumab", d) for d in ("2025-09-01", "2025-09-22", "2025-10-13")]
    found = decide(PROGRESSION, "inc-prog", *doses, observation("97509-4", "2025-12-15", value))
    assert found.result is expected
    if expected is U:
        assert "states neither progression nor its absence" in found.reason


def test_a_hedged_assessment_beside_a_stable_one_leaves_progression_open() -> None:
    doses = [administration_r4("1547545", "pembrolizumab", d) for d in ("2025-09-01", "2025-09-22", "2025-10-13")]
    stable = observation("97509-4", "2025-11-15", concept(SNOMED, "359746009", "Patient's condition stable"))
    hedged = observation("97509-4", "2025-12-15", {"text": "Possible progression"})
    assert decide(PROGRESSION, "inc-prog", *doses, stable, hedged).result is U

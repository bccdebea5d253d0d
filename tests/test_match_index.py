"""$match with the catalog's prefilter gives the same answer as evaluating every trial: same ranking,
verdicts, scores and full results, on every patient bundle of fixtures/ (and of ../shared when present)."""

from __future__ import annotations

import bz2
import datetime as dt
import shutil
from pathlib import Path

import orjson
import pytest

from service.catalog import Catalog, load_catalog
from service.domain.criteria import AgeRule, ConditionRule, SexRule
from service.eligibility import evaluate_bundle, match_page
from service.errors import FhirError
from service.fhir.eligibility_render import evaluation_parameters
from service.fhir.patient_bundle import EvidenceValidator, index_facts, read_patient_request
from tests.conftest import EXTERNAL_DATA, TEST_MAPPINGS
from tests.mapping_helpers import ROOT

ON = dt.date(2026, 3, 1)
BUNDLES = sorted((ROOT / "fixtures").rglob("*.json"))
REAL_BUNDLES = sorted((EXTERNAL_DATA / "patients").rglob("*.json"))
_CANCER_FREE = "cd185ab5-8efb-c68a-4779-d49dd4ba8f28.json"  # Synthea, no cancer on record, aged 18-75 on ON


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The five mappings and the rule-kind test mapping, each also under a second id (as a large catalog
    repeats criteria), so the prefilter's shared gates and the per-request memo are both exercised."""
    directory = tmp_path_factory.mktemp("mappings")
    for source in [*sorted((ROOT / "mappings").glob("*.yaml")), TEST_MAPPINGS / "TEST-rules.yaml"]:
        shutil.copy(source, directory)
        text = source.read_text(encoding="utf-8")
        twin = f"{source.stem}-twin"
        (directory / f"{twin}.yaml").write_text(text.replace(f"\nid: {source.stem}\n", f"\nid: {twin}\n"), "utf-8")
    return load_catalog(directory)


def _answers(catalog: Catalog, raw: bytes, offset: int, count: int, indexed: bool) -> tuple[object, ...]:
    bundle = read_patient_request(orjson.loads(raw))
    trials = list(catalog.trials.values())
    try:
        page = match_page(bundle, trials, ON, offset, count, catalog.index if indexed else None)
    except FhirError as error:  # e.g. a Patient that is not valid FHIR: the same refusal either way
        return (error.status,)
    shown = [
        (e.study_id, e.verdict, e.score, orjson.dumps(evaluation_parameters(e, bundle.patient_ref, ())))
        for e in page.page
    ]
    return page.total, page.counts, shown


def _read(path: Path) -> bytes:
    raw = path.read_bytes()
    return bz2.decompress(raw) if path.suffix == ".bz2" else raw


def test_the_prefilter_rules_trials_out(catalog: Catalog) -> None:
    """Not a vacuous comparison: on the fixtures some trials are ruled out without being evaluated."""
    ruled = set()
    for path in BUNDLES:
        try:
            bundle = read_patient_request(orjson.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001 - fixtures of bad input (no Patient...) are not patients to match
            continue
        gates = catalog.index.evaluate_gates(index_facts(bundle), ON)
        ruled |= catalog.index.ruled_out(gates, EvidenceValidator(bundle).problems)
    assert len(ruled) >= 4


@pytest.mark.parametrize("path", BUNDLES + REAL_BUNDLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_answer_with_and_without_the_index(catalog: Catalog, path: Path) -> None:
    raw = _read(path)
    try:
        read_patient_request(orjson.loads(raw))
    except Exception:  # noqa: BLE001 - not a patient bundle the operation accepts: nothing to compare
        pytest.skip("not a matchable patient bundle")
    size = len(catalog.trials)
    assert _answers(catalog, raw, 0, size, True) == _answers(catalog, raw, 0, size, False)
    # Small pages: the trials ruled out are evaluated when they fall on the page, in the same order.
    for offset in range(0, size, 5):
        assert _answers(catalog, raw, offset, 5, True) == _answers(catalog, raw, offset, 5, False)


def test_a_combined_criterion_rules_a_trial_out_by_its_diagnosis_part(catalog: Catalog) -> None:
    """The sarcoma trial's inc-2 is a combination whose other parts read Observations (stage, metastases);
    for a patient with no sarcoma its diagnosis part alone makes it not met, so the index rules the trial out
    (those parts taken as unknown change nothing: Kleene logic is monotone), as the full evaluation finds."""
    inc_2 = next(c for c in catalog.trials["NCT05621668"].criteria.criteria if c.link_id == "inc-2")
    leaves = [c.rule for c in inc_2.walk()]
    assert any(isinstance(r, ConditionRule) for r in leaves)
    assert any(not isinstance(r, (AgeRule, SexRule, ConditionRule)) and not hasattr(r, "children") for r in leaves)
    bundle = read_patient_request(orjson.loads(_read(EXTERNAL_DATA / "patients" / "synthea" / _CANCER_FREE)))
    gates = catalog.index.evaluate_gates(index_facts(bundle), ON)
    ruled = catalog.index.ruling(gates, EvidenceValidator(bundle).problems, [catalog.trials["NCT05621668"]])
    assert ruled == {"NCT05621668": ("inc-2",)}
    full = evaluate_bundle(bundle, [catalog.trials["NCT05621668"]], ON).results[0]
    assert next(r for r in full.criteria if r.criterion.link_id == "inc-2").effective.value == "not-met"

"""The three trials as the catalog publishes them: one characteristic per source criterion with the
source wording, screening confirmations flagged, arm criteria reachable from their comparisonGroup."""

from __future__ import annotations

import shutil

import pytest

from service.catalog import Catalog, load_catalog
from service.fhir.conformance import EXT_ARM_ELIGIBILITY, EXT_SCREENING
from tests.mapping_helpers import ROOT, load, walk_characteristics

STUDIES = ["NCT06284590", "NCT05978102", "car-nk-solid-tumor-platform", "NCT06494995", "NCT05621668"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    directory = tmp_path_factory.mktemp("mappings")
    for study in STUDIES:
        shutil.copy(ROOT / "mappings" / f"{study}.yaml", directory)
    return load_catalog(directory)


@pytest.mark.parametrize("study", STUDIES)
def test_one_characteristic_per_source_criterion(catalog: Catalog, study: str) -> None:
    _, trial = load(study)
    ev = catalog.get("EvidenceVariable", f"{study}-eligibility")
    assert ev is not None
    published = [(c["linkId"], c["description"], c.get("exclude", False)) for c in ev["characteristic"]]
    assert published == [(c.link_id, c.description, c.exclude) for c in trial.criteria]


@pytest.mark.parametrize("study", STUDIES)
def test_screening_confirmations_are_visible(catalog: Catalog, study: str) -> None:
    _, trial = load(study)
    ev = catalog.get("EvidenceVariable", f"{study}-eligibility")
    assert ev is not None
    flagged = {
        c["linkId"]
        for c in walk_characteristics(ev["characteristic"])
        if any(e["url"] == EXT_SCREENING and e.get("valueBoolean") for e in c.get("extension", []))
    }
    assert flagged == {c.link_id for c in trial.walk() if c.is_screening}


def test_car_nk_arms_are_published_from_their_comparison_groups(catalog: Catalog) -> None:
    study = catalog.get("ResearchStudy", "car-nk-solid-tumor-platform")
    assert study is not None
    for group in study["comparisonGroup"]:
        (extension,) = [e for e in group["extension"] if e["url"] == EXT_ARM_ELIGIBILITY]
        target = extension["valueReference"]["reference"].rsplit("/", 1)[-1]
        arm = catalog.get("EvidenceVariable", target)
        assert arm is not None and arm["characteristic"][0]["linkId"].startswith("arm-")

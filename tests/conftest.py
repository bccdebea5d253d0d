"""Shared fixtures: the synthetic rules catalog, and an app over a temporary mappings dir of three trials."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.catalog import Catalog, Trial, load_catalog
from service.config import Config

REPO = Path(__file__).resolve().parents[1]
TEST_MAPPINGS = Path(__file__).parent / "data"
# Optional: shared/ beside the repository (CI, main checkout; one level higher from a git worktree) holds
# the seed documents and the r5check validator; tests that need them skip where it is absent.
_SHARED_PLACES = (REPO.parent / "shared", REPO.parent.parent / "shared")
SHARED = next((d for d in _SHARED_PLACES if d.is_dir()), _SHARED_PLACES[0])
R5CHECK = SHARED / "tools" / "r5check" / "r5check"
# Real data written by others, vendored verbatim with its provenance (fixtures/external/README.md).
EXTERNAL_DATA = REPO / "fixtures" / "external"
SNOMED = "http://snomed.info/sct"
PHASE = "http://hl7.org/fhir/research-study-phase"
STATE = "http://hl7.org/fhir/research-study-status"


def r5check_or_skip() -> Path:
    """The official-definitions R5 validator, or a skip that says why it cannot run on this machine."""
    if not R5CHECK.exists():
        pytest.skip("r5check lives in ../shared/tools (beside the repository in CI), which is absent here")
    if shutil.which("node") is None:
        pytest.skip("r5check needs node, which is not installed")
    return R5CHECK


def study(title: str, phase: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ResearchStudy",
        "status": extra.pop("status", "active"),
        "title": title,
        "phase": {"coding": [{"system": PHASE, "code": phase, "display": phase.replace("-", " ").title()}]},
        "progressStatus": [{"state": {"coding": [{"system": STATE, "code": state}]}, "actual": True}],
        **extra,
    }


TRIALS: dict[str, dict[str, Any]] = {
    "NCT90000001": study(
        "Pembrolizumab in advanced melanoma", "phase-2", "recruiting",
        identifier=[{"system": "https://clinicaltrials.gov/nctid", "value": "NCT90000001"}],
        condition=[{"coding": [{"system": SNOMED, "code": "372244006", "display": "Malignant melanoma"}]}],
        keyword=[{"text": "immunotherapy"}],
    ),
    "NCT90000002": study(
        "Élan: cabozantinib for osteosarcoma", "phase-1-phase-2", "active-but-not-recruiting",
        identifier=[{"system": "http://clinicaltrials.gov", "value": "NCT90000002"}],
        condition=[{"text": "Osteosarcoma"}],
        keyword=[{"coding": [{"system": SNOMED, "code": "108369006", "display": "Neoplasm"}]}],
    ),
    "EU-2024-000001": study(
        "Adjuvant trastuzumab, breast cancer", "phase-3", "recruiting", status="draft",
        identifier=[{"system": "https://euclinicaltrials.eu/clinicalTrialId", "value": "2024-000001-01"}],
        condition=[{"text": "Breast cancer, HER2-positive"}],
    ),
}  # fmt: skip


def write_mappings(directory: Path, trials: dict[str, dict[str, Any]] = TRIALS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for trial_id, research_study in trials.items():
        doc = {
            "format": 1,
            "id": trial_id,
            "status": "active",
            "last_reviewed": "2026-11-20",
            "research_study": research_study,
            "criteria": [{"id": "inc-1", "text": "Aged 18 years or older", "age": {"min": 18}}],
        }
        (directory / f"{trial_id}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mappings(tmp_path_factory.mktemp("mappings"))


@pytest.fixture(scope="session")
def config(mappings_dir: Path) -> Config:
    return Config(mappings_dir=mappings_dir, max_body_bytes=4096, default_count=2, max_count=50)


@pytest.fixture(scope="session")
def app(config: Config) -> Flask:
    return create_app(config)


@pytest.fixture()
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture(scope="session")
def rules_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The synthetic mapping exercising every rule kind (tests/data/TEST-rules.yaml)."""
    directory = tmp_path_factory.mktemp("rules-mappings")
    shutil.copy(TEST_MAPPINGS / "TEST-rules.yaml", directory)
    return load_catalog(directory)


@pytest.fixture(scope="session")
def rules_trial(rules_catalog: Catalog) -> Trial:
    return rules_catalog.trials["TEST-rules"]

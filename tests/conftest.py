from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.catalog import Catalog, Trial, load_catalog

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_MAPPINGS = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def rules_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The synthetic mapping exercising every rule kind (tests/data/TEST-rules.yaml)."""
    directory = tmp_path_factory.mktemp("rules-mappings")
    shutil.copy(TEST_MAPPINGS / "TEST-rules.yaml", directory)
    return load_catalog(directory)


@pytest.fixture(scope="session")
def rules_trial(rules_catalog: Catalog) -> Trial:
    return rules_catalog.trials["TEST-rules"]

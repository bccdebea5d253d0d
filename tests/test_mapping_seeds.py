"""Every criterion text in mappings/ is a verbatim passage of the source document the trial was mapped
from (../shared/seeds; skipped, saying so, where that folder is absent, as in a fresh clone)."""

from __future__ import annotations

import pytest

from tests.mapping_helpers import load, not_verbatim, seed_text

SEED_OF_TRIAL = {
    "NCT06284590": "000_73681c0c6337fe37.txt",  # EU patient-facing summary (melanoma)
    "NCT06494995": "001_f6d4f4387d659b53.txt",  # registry page (HNSCC)
    "NCT05621668": "002_57b9f978a61e90e2.txt",  # registry page (sarcoma)
    "NCT05978102": "003_faade6fef4f1016a.txt",  # news article (ILKN421H)
    "car-nk-solid-tumor-platform": "004_7d9d5b0ab8b977af.txt",  # platform-trial description
}


@pytest.mark.parametrize("study_id", sorted(SEED_OF_TRIAL))
def test_criterion_texts_are_verbatim_from_the_seed(study_id: str) -> None:
    _, trial = load(study_id)
    assert not_verbatim(trial, seed_text(SEED_OF_TRIAL[study_id])) == []

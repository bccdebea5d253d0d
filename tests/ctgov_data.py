"""Where the recorded ClinicalTrials.gov records live: ../shared/data beside the repository (CI),
or one level further up when the repository is a git worktree (development)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import EXTERNAL_DATA

CTGOV = EXTERNAL_DATA / "ctgov" / "v2"


def recorded(name: str) -> Any:
    return json.loads((CTGOV / name).read_text(encoding="utf-8"))


def all_record_files() -> list[Path]:
    return sorted(CTGOV.glob("*/*.json"))

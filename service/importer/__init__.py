"""ClinicalTrials.gov v2 study record → a mapping document (mappings/README.md, format 1).

Rule: an imported mapping is a draft: its EvidenceVariable is published with status `draft`
until a person reviews it, every criterion the importer structured says `machine_derived: true`,
and a mapping a person already reviewed is never overwritten by a re-import (only its
research_study is refreshed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.importer.criteria import Counts, eligibility_criteria
from service.importer.research_study import research_study

MAPPING_FORMAT = 1
DEFAULT_LAB_WINDOW_DAYS = 28


@dataclass(frozen=True)
class ImportResult:
    study_id: str
    document: dict[str, Any]
    counts: Counts
    eligibility_sha256: str  # of the registry's eligibility text: tells a later import what changed
    last_update: str | None

    def report(self) -> str:
        c = self.counts
        registry = f"; registry age/sex fields: {c.registry}"
        if c.no_criteria_stated:
            return f"{self.study_id}: no criteria stated{registry}"
        return (
            f"{self.study_id}: {c.found} criteria found in the text, {c.structured} fully structured, "
            f"{c.partly} partly structured, {c.screening} screening confirmations, {c.text} left as text{registry}"
        )


def import_study(study: Mapping[str, Any]) -> ImportResult:
    protocol = study["protocolSection"]
    nct = protocol["identificationModule"]["nctId"]
    module = protocol.get("eligibilityModule") or {}
    conditions = (protocol.get("conditionsModule") or {}).get("conditions") or []
    criteria, counts = eligibility_criteria(module, conditions if isinstance(conditions, list) else [])
    document: dict[str, Any] = {
        "format": MAPPING_FORMAT,
        "id": nct,
        "status": "draft",
        "lab_window_days": DEFAULT_LAB_WINDOW_DAYS,
        "research_study": research_study(study),
        "criteria": criteria,
    }
    digest = hashlib.sha256(str(module.get("eligibilityCriteria", "")).encode()).hexdigest()[:16]
    status = protocol.get("statusModule") or {}
    # The posted date is what the registry's search and a re-import compare (lastUpdatePostDate).
    last_update = (status.get("lastUpdatePostDateStruct") or {}).get("date") or status.get("lastUpdateSubmitDate")
    return ImportResult(nct, document, counts, digest, last_update if isinstance(last_update, str) else None)

"""The trial catalog: every mapping in mappings/ loaded once at start-up, read-only afterwards.

Rule: fail fast. A file that does not parse, breaks the mapping format or renders invalid R5 stops
the start with a MappingError naming the file and the problem; nothing is half-loaded.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.domain.criteria import TrialCriteria
from service.errors import MappingError
from service.fhir.conformance import (
    CANONICAL_BASE,
    EXT_ARM_ELIGIBILITY,
    operation_definitions,
    structure_definitions,
)
from service.fhir.evidence_variable import arm_eligibility_id, eligibility_id, render_evidence_variables
from service.fhir.models import InvalidResource, validate
from service.fhir.narrative import with_narrative
from service.mapping import LINK_ID, parse_trial_criteria

Json = dict[str, Any]
MAPPING_FORMAT = 1
EV_STATUSES = ("draft", "active", "retired", "unknown")


@dataclass(frozen=True)
class Trial:
    id: str
    research_study: Json
    evidence_variables: tuple[Json, ...]
    criteria: TrialCriteria
    source: Path


@dataclass(frozen=True)
class Catalog:
    trials: Mapping[str, Trial]
    _by_type: Mapping[str, Mapping[str, Json]] = field(repr=False)

    def resources(self, resource_type: str) -> list[Json]:
        return list(self._by_type.get(resource_type, {}).values())

    def get(self, resource_type: str, resource_id: str) -> Json | None:
        return self._by_type.get(resource_type, {}).get(resource_id)


def load_catalog(directory: Path) -> Catalog:
    if not directory.is_dir():
        raise MappingError(f"{directory}: the mappings directory does not exist")
    trials: dict[str, Trial] = {}
    for path in sorted(directory.glob("*.yaml")):
        trial = load_trial(path)
        if trial.id in trials:
            raise MappingError(f"{path}: study id {trial.id!r} is already defined in {trials[trial.id].source.name}")
        trials[trial.id] = trial
    conformance_meta = {"versionId": "1", "lastUpdated": "2026-11-22T00:00:00Z"}
    by_type: dict[str, dict[str, Json]] = {
        "ResearchStudy": {t.id: t.research_study for t in trials.values()},
        "EvidenceVariable": {ev["id"]: ev for t in trials.values() for ev in t.evidence_variables},
        "StructureDefinition": {sd["id"]: {**sd, "meta": conformance_meta} for sd in structure_definitions()},
        "OperationDefinition": {od["id"]: {**od, "meta": conformance_meta} for od in operation_definitions()},
    }
    return Catalog(trials, by_type)


def load_trial(path: Path) -> Trial:
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return _build_trial(path, raw, _plain_json(doc))
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from exc
    except InvalidResource as exc:
        raise MappingError(f"{path}: not valid FHIR R5: {exc}") from exc


def _build_trial(path: Path, raw: bytes, doc: Any) -> Trial:
    if not isinstance(doc, dict):
        raise MappingError("the file must hold a mapping (format, id, research_study, criteria)")
    if doc.get("format") != MAPPING_FORMAT:
        raise MappingError(f"format must be {MAPPING_FORMAT}")
    study_id = doc.get("id")
    if not isinstance(study_id, str) or not LINK_ID.match(study_id) or study_id != path.stem:
        raise MappingError(f"id {study_id!r} must be a FHIR id equal to the file name {path.stem!r}")
    status = doc.get("status", "active")
    if status not in EV_STATUSES:
        raise MappingError(f"status must be one of {EV_STATUSES}")
    study = doc.get("research_study")
    if not isinstance(study, dict) or study.get("resourceType") != "ResearchStudy":
        raise MappingError("research_study must be a ResearchStudy resource")
    for key in ("id", "meta"):
        if key in study:
            raise MappingError(f"research_study must not set {key!r}: the catalog fills it")
    title = study.get("title") or study_id
    criteria = parse_trial_criteria(doc, study_id, title)
    meta = {
        "versionId": hashlib.sha256(raw).hexdigest()[:12],
        "lastUpdated": _last_updated(doc.get("last_reviewed"), path),
    }
    research_study = with_narrative(_publish_study(study, study_id, criteria, meta))
    evidence_variables = tuple(
        with_narrative({**ev, "meta": meta}) for ev in render_evidence_variables(criteria, status, CANONICAL_BASE)
    )
    for resource in (research_study, *evidence_variables):
        validate(resource)
    return Trial(study_id, research_study, evidence_variables, criteria, path)


def _publish_study(study: Json, study_id: str, criteria: TrialCriteria, meta: Json) -> Json:
    published = copy.deepcopy(study)
    published = {
        "resourceType": "ResearchStudy",
        "id": study_id,
        "meta": meta,
        **{k: v for k, v in published.items() if k != "resourceType"},
    }
    published.setdefault("url", f"{CANONICAL_BASE}/ResearchStudy/{study_id}")
    recruitment = published.setdefault("recruitment", {})
    recruitment["eligibility"] = {"reference": f"EvidenceVariable/{eligibility_id(study_id)}"}
    groups = {g.get("linkId"): g for g in published.get("comparisonGroup", [])}
    for arm in criteria.arms:
        group = groups.get(arm.group)
        if group is None:
            raise MappingError(f"arms: {arm.group!r} is not a research_study.comparisonGroup linkId")
        group.setdefault("extension", []).append(
            {
                "url": EXT_ARM_ELIGIBILITY,
                "valueReference": {"reference": f"EvidenceVariable/{arm_eligibility_id(study_id, arm.group)}"},
            }
        )
    return published


def _last_updated(reviewed: Any, path: Path) -> str:
    if isinstance(reviewed, str):
        try:
            reviewed = dt.date.fromisoformat(reviewed)
        except ValueError as exc:
            raise MappingError("last_reviewed must be a date YYYY-MM-DD") from exc
    if isinstance(reviewed, dt.date):
        return f"{reviewed.isoformat()}T00:00:00Z"
    if reviewed is not None:
        raise MappingError("last_reviewed must be a date YYYY-MM-DD")
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    return modified.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain_json(value: Any) -> Any:
    """YAML turns unquoted dates into date objects; FHIR JSON wants ISO strings (except last_reviewed)."""
    if isinstance(value, dict):
        return {str(k): (v if k == "last_reviewed" else _plain_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value

"""One mapping file → one compiled trial: parsed, checked, rendered as R5 and validated.

Rule: fail fast. A file that does not parse, breaks the mapping format or renders invalid R5 raises a
MappingError naming the file and the problem. The compiled form holds the criteria (domain objects) and
the published resources as zlib-compressed JSON bytes (decoded when read), so a large catalog stays small in
memory: a whole resource is read only for a GET by id or a page of results, never by a search or $match.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.domain.criteria import TrialCriteria
from service.errors import MappingError
from service.fhir.conformance import CANONICAL_BASE, EXT_ARM_ELIGIBILITY
from service.fhir.evidence_variable import arm_eligibility_id, eligibility_id, render_evidence_variables
from service.fhir.models import InvalidResource, validate
from service.fhir.narrative import with_narrative
from service.mapping import LINK_ID, parse_trial_criteria

Json = dict[str, Any]
MAPPING_FORMAT = 1
EV_STATUSES = ("draft", "active", "retired", "unknown")
STUDY_VIEW = (
    "resourceType", "id", "meta", "url", "identifier", "title", "status", "progressStatus", "phase", "condition",
    "keyword",
)  # fmt: skip
EV_VIEW = ("resourceType", "id", "meta", "url", "title", "status")  # what an EvidenceVariable search reads
# libyaml's C parser when PyYAML was built with it (the wheels are): ~30x faster than the pure-Python one,
# same documents (both are YAML 1.1 safe loaders).
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, eq=False)
class Trial:
    """A registered trial: its criteria for evaluation and its published resources (compressed JSON)."""

    id: str
    criteria: TrialCriteria
    source: str  # the mapping file's path
    study_packed: bytes
    evidence_packed: tuple[bytes, ...]
    # The elements searches and filters read (id, meta, identifier, status, progressStatus, condition,
    # keyword, phase, title, url), kept decoded: a search over 10,000 trials decodes no full resource.
    study_view: Json
    evidence_views: tuple[Json, ...]  # the same for each EvidenceVariable (EV_VIEW)

    @property
    def research_study(self) -> Json:
        """A fresh dict each time (callers may shape it)."""
        return _unpack(self.study_packed)

    @property
    def evidence_variables(self) -> tuple[Json, ...]:
        return tuple(_unpack(ev) for ev in self.evidence_packed)

    def evidence_variable(self, position: int) -> Json:
        return _unpack(self.evidence_packed[position])


def _pack(resource: Json) -> bytes:
    return zlib.compress(orjson.dumps(resource))


def _unpack(packed: bytes) -> Json:
    resource: Json = orjson.loads(zlib.decompress(packed))
    return resource


def file_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load_trial(path: Path, raw: bytes | None = None, last_updated: str | None = None) -> Trial:
    """Compile one mapping file; `last_updated`: the date remembered for this content (else computed)."""
    raw = path.read_bytes() if raw is None else raw
    try:
        doc = yaml.load(raw, Loader=_YamlLoader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return _build_trial(path, raw, _plain_json(doc), last_updated)
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from exc
    except InvalidResource as exc:
        raise MappingError(f"{path}: not valid FHIR R5: {exc}") from exc


def _build_trial(path: Path, raw: bytes, doc: Any, last_updated: str | None) -> Trial:
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
        # The content digest: the version changes exactly when the file's bytes do.
        "versionId": file_digest(raw)[:12],
        "lastUpdated": _last_updated(doc.get("last_reviewed"), path) if last_updated is None else last_updated,
    }
    research_study = with_narrative(_publish_study(study, study_id, criteria, meta))
    evidence_variables = tuple(
        with_narrative({**ev, "meta": meta}) for ev in render_evidence_variables(criteria, status, CANONICAL_BASE)
    )
    for resource in (research_study, *evidence_variables):
        validate(resource)
    return Trial(
        study_id,
        criteria,
        str(path),
        _pack(research_study),
        tuple(_pack(ev) for ev in evidence_variables),
        _view(research_study, STUDY_VIEW),
        tuple(_view(ev, EV_VIEW) for ev in evidence_variables),
    )


def _view(resource: Json, keys: tuple[str, ...]) -> Json:
    return {k: resource[k] for k in keys if k in resource}


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

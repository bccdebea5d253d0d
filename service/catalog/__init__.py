"""The trial catalog: every mapping in mappings/ loaded once at start-up, read-only afterwards, with its index.

Rule: fail fast. A file that does not parse, breaks the mapping format or renders invalid R5 stops
the start with a MappingError naming the file and the problem; nothing is half-loaded. A file whose
exact bytes were compiled before by the same code is taken from the compiled cache (service.catalog.cache).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.catalog.cache import CompiledCache, Entries
from service.catalog.compile import MAPPING_FORMAT, Json, Trial, file_digest, load_trial
from service.catalog.index import TrialIndex, build_index
from service.domain.criteria import ArmEligibility, Combination, Criterion, TrialCriteria
from service.errors import MappingError
from service.fhir.conformance import operation_definitions, structure_definitions

__all__ = ["MAPPING_FORMAT", "Catalog", "Json", "Trial", "load_catalog", "load_trial"]
LOG = logging.getLogger(__name__)
CONFORMANCE_META = {"versionId": "1", "lastUpdated": "2026-11-22T00:00:00Z"}


@dataclass(frozen=True)
class Catalog:
    trials: Mapping[str, Trial]
    index: TrialIndex
    _evidence: Mapping[str, tuple[Trial, int]] = field(repr=False)  # EvidenceVariable id → (trial, position)
    _views: Mapping[str, Mapping[str, Json]] = field(repr=False)
    _conformance: Mapping[str, Mapping[str, Json]] = field(repr=False)

    def resources(self, resource_type: str) -> list[Json]:
        """What searches match on: for trials the searchable elements only (`get` gives the whole resource)."""
        return list(self._views.get(resource_type, {}).values())

    def get(self, resource_type: str, resource_id: str) -> Json | None:
        if resource_type == "ResearchStudy":
            trial = self.trials.get(resource_id)
            return trial.research_study if trial else None
        if resource_type == "EvidenceVariable":
            found = self._evidence.get(resource_id)
            return found[0].evidence_variable(found[1]) if found else None
        resource = self._conformance.get(resource_type, {}).get(resource_id)
        return dict(resource) if resource is not None else None


def load_catalog(directory: Path, cache_dir: Path | None = None) -> Catalog:
    """Every *.yaml of `directory`; `cache_dir`: where compiled mappings are kept between starts (None: none)."""
    if not directory.is_dir():
        raise MappingError(f"{directory}: the mappings directory does not exist")
    with _long_lived():
        return _load(directory, CompiledCache(cache_dir, directory) if cache_dir is not None else None)


def _load(directory: Path, cache: CompiledCache | None) -> Catalog:
    cached: Entries = cache.read() if cache else {}
    # Paths as text: 10,000 pathlib objects cost a second to build, sort and unpickle.
    root = str(directory)
    paths = [os.path.join(root, name) for name in sorted(os.listdir(root)) if name.endswith(".yaml")]
    files = [(path, _read(path)) for path in paths]
    keys = [(os.path.basename(path), file_digest(raw)) for path, raw in files]
    compiled = _compile([(path, raw) for (path, raw), key in zip(files, keys, strict=True) if key not in cached])
    table: dict[Criterion, Criterion] = {}
    entries: Entries = {}
    trials: dict[str, Trial] = {}
    for path, key in zip(paths, keys, strict=True):
        trial = cached.get(key)
        if not isinstance(trial, Trial):
            fresh = compiled[path]
            if isinstance(fresh, MappingError):
                raise fresh
            if not table:  # share criteria with the trials already loaded (built only when compiling)
                for loaded in trials.values():
                    _intern_trial(loaded.criteria, table)
            trial = dataclasses.replace(fresh, criteria=_intern_trial(fresh.criteria, table))
        elif trial.source != path:
            trial = dataclasses.replace(trial, source=path)
        if trial.id in trials:
            defined = os.path.basename(trials[trial.id].source)
            raise MappingError(f"{path}: study id {trial.id!r} is already defined in {defined}")
        trials[trial.id] = trial
        entries[key] = trial
    if cache is not None and entries.keys() != cached.keys():
        cache.write(entries)
    return _catalog(trials)


@contextmanager
def _long_lived() -> Iterator[None]:
    """Start-up makes millions of objects that live as long as the process and hold no garbage cycles: the
    cyclic collector would scan them at every threshold while loading, and again at every full collection
    during requests (half a second per $match at 10,000 trials), freeing nothing. So no collection while
    loading, and what exists once loaded is moved out of the collector's generations (gc.freeze; objects
    are still freed when no longer referenced, gunicorn.conf.py's pre_fork does the same for the workers)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


PARALLEL_FROM = 64  # files to compile: below this, starting worker processes costs more than it saves


def _compile(files: list[tuple[str, bytes]]) -> dict[str, Trial | MappingError]:
    """Compile files, on every CPU when there are many (a first start of a large catalog); a file's
    MappingError is returned in its place, so the caller raises the first bad file in name order."""
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < PARALLEL_FROM or workers < 2:
        return {path: _compile_one(path, raw) for path, raw in files}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = pool.map(_compile_one, *zip(*files, strict=True), chunksize=16)
        return dict(zip((path for path, _ in files), results, strict=True))


def _compile_one(path: str, raw: bytes) -> Trial | MappingError:
    try:
        return load_trial(Path(path), raw)
    except MappingError as error:
        return error


def _catalog(trials: dict[str, Trial]) -> Catalog:
    evidence: dict[str, tuple[Trial, int]] = {}
    ev_views: dict[str, Json] = {}
    for trial in trials.values():
        for n, view in enumerate(trial.evidence_views):
            evidence[view["id"]] = (trial, n)
            ev_views[view["id"]] = view
    conformance: dict[str, dict[str, Json]] = {
        "StructureDefinition": {sd["id"]: {**sd, "meta": CONFORMANCE_META} for sd in structure_definitions()},
        "OperationDefinition": {od["id"]: {**od, "meta": CONFORMANCE_META} for od in operation_definitions()},
    }
    views: dict[str, Mapping[str, Json]] = {
        "ResearchStudy": {t.id: t.study_view for t in trials.values()},
        "EvidenceVariable": ev_views,
        **conformance,
    }
    index = build_index((t.id, t.criteria, t.study_view.get("progressStatus")) for t in trials.values())
    return Catalog(trials, index, evidence, views, conformance)


def _intern_trial(criteria: TrialCriteria, table: dict[Criterion, Criterion]) -> TrialCriteria:
    """One shared object per distinct criterion across the catalog: less memory, and a criterion common to
    many trials is evaluated once per request (service.domain.evaluate.Memo)."""
    return dataclasses.replace(
        criteria,
        criteria=tuple(_intern(c, table) for c in criteria.criteria),
        arms=tuple(
            ArmEligibility(arm.group, arm.title, tuple(_intern(c, table) for c in arm.criteria))
            for arm in criteria.arms
        ),
    )


def _intern(criterion: Criterion, table: dict[Criterion, Criterion]) -> Criterion:
    rule: Any = criterion.rule
    if isinstance(rule, Combination):
        children = tuple(_intern(c, table) for c in rule.children)
        criterion = dataclasses.replace(criterion, rule=dataclasses.replace(rule, children=children))
    return table.setdefault(criterion, criterion)

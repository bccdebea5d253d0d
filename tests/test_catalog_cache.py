"""The compiled-catalog cache: an unchanged file is not compiled again, a changed or bad one always is."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest

import service.catalog as catalog_module
from service.catalog import load_catalog
from service.errors import MappingError
from tests.mapping_helpers import ROOT

STUDIES = ("NCT06494995", "NCT05621668")


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    directory.mkdir()
    for study in STUDIES:
        shutil.copy(ROOT / "mappings" / f"{study}.yaml", directory)
    return directory


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    compiled: list[str] = []
    original = catalog_module.load_trial

    def counting(path: Path, raw: bytes | None = None) -> catalog_module.Trial:
        compiled.append(path.stem)
        return original(path, raw)

    monkeypatch.setattr(catalog_module, "load_trial", counting)
    return compiled


def test_a_second_start_takes_unchanged_files_from_the_cache(
    mappings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_catalog(mappings, cache)
    compiled = _compiles(monkeypatch)
    second = load_catalog(mappings, cache)
    assert compiled == []
    for study in STUDIES:
        assert second.get("ResearchStudy", study) == first.get("ResearchStudy", study)
        assert second.trials[study].criteria == first.trials[study].criteria


def test_an_edited_file_is_compiled_again_and_gets_a_new_version(
    mappings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    before = load_catalog(mappings, cache).get("ResearchStudy", "NCT06494995")
    path = mappings / "NCT06494995.yaml"
    path.write_text(path.read_text().replace("title: ", "title: Edited ", 1))
    compiled = _compiles(monkeypatch)
    after = load_catalog(mappings, cache).get("ResearchStudy", "NCT06494995")
    assert compiled == ["NCT06494995"]
    assert before and after and after["meta"]["versionId"] != before["meta"]["versionId"]


def test_touching_a_file_without_changing_it_keeps_its_version(mappings: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = load_catalog(mappings, cache).get("ResearchStudy", "NCT05621668")
    path = mappings / "NCT05621668.yaml"
    os.utime(path, (path.stat().st_atime + 86400 * 3, path.stat().st_mtime + 86400 * 3))
    after = load_catalog(mappings, cache).get("ResearchStudy", "NCT05621668")
    assert before and after and after["meta"] == before["meta"]


def test_a_bad_file_still_stops_the_start_naming_it(mappings: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_catalog(mappings, cache)
    path = mappings / "NCT05621668.yaml"
    path.write_text(path.read_text().replace("format: 1", "format: 2", 1))
    with pytest.raises(MappingError, match="NCT05621668.yaml: format must be 1"):
        load_catalog(mappings, cache)


def test_a_cache_others_can_write_is_not_read(mappings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    load_catalog(mappings, cache)
    cache.chmod(0o777)
    compiled = _compiles(monkeypatch)
    load_catalog(mappings, cache)
    assert sorted(compiled) == sorted(STUDIES)


def test_a_large_first_start_compiles_in_parallel_and_still_names_the_first_bad_file(tmp_path: Path) -> None:
    from service.catalog import PARALLEL_FROM
    from tests.conftest import study, write_mappings

    trials = {f"NCT92{n:06d}": study(f"Trial {n}", "phase-2", "recruiting") for n in range(PARALLEL_FROM + 6)}
    directory = write_mappings(tmp_path / "many", trials)
    assert len(load_catalog(directory, tmp_path / "cache").trials) == len(trials)
    for name in ("NCT92000040", "NCT92000050"):
        path = directory / f"{name}.yaml"
        path.write_text(path.read_text().replace("format: 1", "format: 3"))
    with pytest.raises(MappingError, match="NCT92000040.yaml: format must be 1"):
        load_catalog(directory, tmp_path / "cache")


def test_search_views_from_a_cached_start_agree_with_the_resources_read(mappings: Path, tmp_path: Path) -> None:
    """Searches read compiled views and GET reads the compressed resource: both say the same thing."""
    cache = tmp_path / "cache"
    load_catalog(mappings, cache)
    catalog = load_catalog(mappings, cache)
    for kind in ("ResearchStudy", "EvidenceVariable"):
        views = catalog.resources(kind)
        assert len(views) >= len(STUDIES)
        for view in views:
            resource = catalog.get(kind, view["id"]) or {}
            assert resource["resourceType"] == kind
            assert {key: resource[key] for key in view} == view


@pytest.mark.parametrize("enabled", [True, False])
def test_a_failed_start_leaves_the_garbage_collector_as_it_was(mappings: Path, enabled: bool) -> None:
    """Loading pauses the cyclic collector; a process that goes on after a bad file (the tests, a check
    command) must get it back in the state it had."""
    path = mappings / "NCT05621668.yaml"
    path.write_text(path.read_text().replace("format: 1", "format: 2", 1))
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(MappingError, match="NCT05621668.yaml"):
            load_catalog(mappings)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()

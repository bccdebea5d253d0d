"""The layering rules of DESIGN.md §3, checked on the source: who may import flask and fhir.resources."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("library", "allowed"),
    [(("flask", "werkzeug"), "api"), (("fhir.resources",), "fhir")],
)
def test_only_one_package_imports(library: tuple[str, ...], allowed: str) -> None:
    offenders = [
        str(path.relative_to(SERVICE))
        for path in SERVICE.rglob("*.py")
        if path.relative_to(SERVICE).parts[0] != allowed
        and any(name == lib or name.startswith(lib + ".") for name in imported_roots(path) for lib in library)
    ]
    assert offenders == []

"""Generated narratives of what the catalog publishes: well-formed XHTML in the xhtml namespace, status
generated, only narrative-safe markup, and saying what the structured elements say (every criterion with
its wording and its rule in words)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from service.catalog import Catalog, load_catalog
from service.fhir.narrative import criterion_kind, rule_in_words, with_narrative
from tests.mapping_helpers import walk_characteristics

ROOT = Path(__file__).resolve().parents[1]
XHTML = "{http://www.w3.org/1999/xhtml}"
# R5 narrative.html: the XHTML allowed in a narrative (no script, form, object, iframe, style element...).
ALLOWED_TAGS = {"div", "p", "b", "i", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "br", "span"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "mappings")


def _published(catalog: Catalog) -> list[dict[str, Any]]:
    """Whole resources (a catalog search view holds only the searchable elements)."""
    kinds = ("ResearchStudy", "EvidenceVariable")
    return [catalog.get(kind, view["id"]) or {} for kind in kinds for view in catalog.resources(kind)]


def test_every_published_resource_has_a_generated_xhtml_narrative(catalog: Catalog) -> None:
    resources = _published(catalog)
    assert len(resources) >= 10
    for resource in resources:
        text = resource["text"]
        assert text["status"] == "generated"
        root = ET.fromstring(text["div"])  # well-formed XML, or this raises
        assert root.tag == f"{XHTML}div", resource["id"]
        tags = {element.tag.removeprefix(XHTML) for element in root.iter()}
        assert tags <= ALLOWED_TAGS, (resource["id"], tags - ALLOWED_TAGS)
        attributes = {name for element in root.iter() for name in element.attrib}
        assert attributes <= {"style"}, attributes


def test_evidence_variable_narrative_lists_every_criterion_in_protocol_order(catalog: Catalog) -> None:
    variable = catalog.get("EvidenceVariable", "NCT06494995-eligibility")
    assert variable is not None
    rows = ET.fromstring(variable["text"]["div"]).iter(f"{XHTML}tr")
    cells = [["".join(td.itertext()) for td in row.iter(f"{XHTML}td")] for row in rows]
    body = [c for c in cells if c]
    characteristics = walk_characteristics(variable["characteristic"])
    assert [row[0].split()[0] for row in body] == [c["linkId"] for c in characteristics]
    top_level = {c["linkId"] for c in variable["characteristic"]}
    for row, characteristic in zip(body, characteristics, strict=True):
        negation = " (exclusion)" if characteristic["linkId"] in top_level else " (must not hold)"
        assert row[0].endswith(negation) == characteristic["exclude"], row[0]
    assert [row[1] for row in body] == [c["description"] for c in characteristics]
    platelets = next(row for row in body if row[0] == "inc-9.2")
    assert platelets[2] == (
        "Platelet count [LOINC 26515-7, LOINC 777-3, LOINC 778-1] ≥ 100 10*9/L; within 28 days before the "
        "evaluation date (a default window: the protocol states none)."
    )
    assert platelets[3] == "computable"


def test_research_study_narrative_names_status_phase_conditions_and_arms(catalog: Catalog) -> None:
    study = catalog.get("ResearchStudy", "NCT06284590")
    assert study is not None
    words = "".join(ET.fromstring(study["text"]["div"]).itertext())
    assert study["title"] in words
    assert "Recruiting (Germany)" in words and "Phase II" in words and "Metastatic Melanoma" in words
    for group in study["comparisonGroup"]:
        assert group["name"] in words


def test_values_are_escaped_and_text_sits_after_meta() -> None:
    study = {
        "resourceType": "ResearchStudy",
        "id": "x",
        "meta": {"versionId": "1"},
        "title": "<script>alert(1)</script> & co",
        "status": "active",
    }
    out = with_narrative(study)
    assert list(out) == ["resourceType", "id", "meta", "text", "title", "status"]
    root = ET.fromstring(out["text"]["div"])
    assert "<script>" in "".join(root.itertext())
    assert not list(root.iter(f"{XHTML}script"))


@pytest.mark.parametrize(
    ("characteristic", "words", "kind"),
    [
        (
            {"definitionByTypeAndValue": {"type": {"text": "ECOG"}, "valueQuantity": {"value": 1, "comparator": "<=",
                                                                                       "unit": "1"}}},
            "ECOG ≤ 1.",
            "computable",
        ),
        (
            {"definitionByCombination": {"code": "at-least", "threshold": 2, "characteristic": [
                {"definitionCodeableConcept": {"text": "Not computable from structured data: prose"}}]}},
            "Holds when at least 2 of the following.",
            "text",
        ),
        (
            {"extension": [{"url": "https://trial-eligibility.example.org/fhir/StructureDefinition/"
                                   "eligibility-screening-confirmation", "valueBoolean": True}],
             "definitionCodeableConcept": {"text": "Confirmed by the site"}},
            "Not decided from data: the site confirms it at screening.",
            "screening",
        ),
    ],
)  # fmt: skip
def test_rule_in_words_and_kind(characteristic: dict[str, Any], words: str, kind: str) -> None:
    assert rule_in_words(characteristic) == words
    assert criterion_kind(characteristic) == kind

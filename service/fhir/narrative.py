"""Generated narratives (`text`, status `generated`) of the published ResearchStudy and EvidenceVariable.

Rule: a narrative is written from the resource JSON as published (never from the mapping), so it says
exactly what a consumer reads in the structured elements; it is XHTML in the xhtml namespace with the
elements and attributes FHIR narratives allow (R5 narrative.html: no scripts, forms or event attributes),
and every value is escaped. The plain-words reading of a characteristic (`rule_in_words`) is the one the
coordinator page (service/web) also shows, written there in JavaScript from the same JSON.
"""

from __future__ import annotations

from html import escape
from typing import Any

from service.fhir.conformance import EXT_RULE, EXT_SCREENING

Json = dict[str, Any]
XHTML_NS = "http://www.w3.org/1999/xhtml"

SYSTEM_NAMES = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://www.whocc.no/atc": "ATC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://hl7.org/fhir/administrative-gender": "gender",
}
COMBINATIONS = {
    "all-of": "all of the following",
    "any-of": "any of the following",
    "at-least": "at least {n} of the following",
    "at-most": "at most {n} of the following",
}
COMPARATORS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "ad": "="}
KIND_WORDS = {"computable": "computable", "screening": "confirmed at screening", "text": "text only"}


def with_narrative(resource: Json) -> Json:
    """The resource with its generated `text` placed after `meta` (the conventional position)."""
    if resource["resourceType"] == "ResearchStudy":
        div = research_study_div(resource)
    elif resource["resourceType"] == "EvidenceVariable":
        div = evidence_variable_div(resource)
    else:
        raise TypeError(f"no narrative for {resource['resourceType']}")
    out: Json = {}
    for key, value in resource.items():
        if key != "text":
            out[key] = value
        if key == "meta" or (key == "id" and "meta" not in resource):
            out["text"] = {"status": "generated", "div": div}
    return out


def research_study_div(study: Json) -> str:
    rows = [
        ("Identifier", ", ".join(i.get("value", "") for i in study.get("identifier", []) if i.get("value"))),
        ("Status", _study_status(study)),
        ("Phase", _concept_words(study.get("phase"), with_codes=False)),
        ("Conditions", "; ".join(_concept_words(c) for c in study.get("condition", []))),
        ("Eligibility criteria", (study.get("recruitment", {}).get("eligibility") or {}).get("reference", "")),
    ]
    parts = [f"<p><b>{escape(study.get('title') or study.get('id', ''))}</b></p>"]
    if study.get("descriptionSummary"):
        parts.append(f"<p>{escape(study['descriptionSummary'])}</p>")
    parts.append("<table><tbody>")
    parts += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows if v]
    parts.append("</tbody></table>")
    groups = study.get("comparisonGroup", [])
    if groups:
        parts.append("<p>Arms:</p><ul>")
        for group in groups:
            text = escape(group.get("name") or group.get("linkId", ""))
            if group.get("description"):
                text += f": {escape(group['description'])}"
            parts.append(f"<li>{text}</li>")
        parts.append("</ul>")
    return _div("".join(parts))


def evidence_variable_div(variable: Json) -> str:
    parts = [f"<p><b>{escape(str(variable.get('title') or variable.get('id', '')))}</b></p>"]
    if variable.get("description"):
        parts.append(f"<p>{escape(variable['description'])}</p>")
    parts.append(
        "<table><thead><tr><th>Criterion</th><th>Protocol wording</th><th>What the service checks</th>"
        "<th>Kind</th></tr></thead><tbody>"
    )
    for characteristic, depth in _walk(variable.get("characteristic", []), 0):
        label = characteristic.get("linkId", "")
        if characteristic.get("exclude"):
            # A nested exclude negates its part of the parent's combination; a top-level one excludes.
            label += " (must not hold)" if depth else " (exclusion)"
        parts.append(
            f'<tr><td style="padding-left: {depth * 1.5:g}em">{escape(label)}</td>'
            f"<td>{escape(characteristic.get('description', ''))}</td>"
            f"<td>{escape(rule_in_words(characteristic))}</td>"
            f"<td>{escape(KIND_WORDS[criterion_kind(characteristic)])}</td></tr>"
        )
    parts.append("</tbody></table>")
    return _div("".join(parts))


def criterion_kind(characteristic: Json) -> str:
    """computable (decided from data), screening (confirmed by the site) or text (not computable)."""
    if _flag(characteristic, EXT_SCREENING):
        return "screening"
    combination = characteristic.get("definitionByCombination")
    if combination is not None:
        kinds = {criterion_kind(c) for c in combination.get("characteristic", [])}
        return "computable" if "computable" in kinds else ("text" if "text" in kinds else "screening")
    if "definitionByTypeAndValue" in characteristic:
        return "computable"
    return "text"


def rule_in_words(characteristic: Json) -> str:
    """What the machine checks, in words: the codes with their names, comparator, threshold, unit, window."""
    if _flag(characteristic, EXT_SCREENING):
        return "Not decided from data: the site confirms it at screening."
    combination = characteristic.get("definitionByCombination")
    if combination is not None:
        words = COMBINATIONS.get(combination.get("code", ""), combination.get("code", ""))
        return f"Holds when {words.format(n=combination.get('threshold', ''))}."
    concept = characteristic.get("definitionCodeableConcept")
    if concept is not None:
        return str(concept.get("text", "Not computable from structured data"))
    definition = characteristic.get("definitionByTypeAndValue")
    if definition is None:
        return "No rule."
    rule = _rule_parts(characteristic)
    sentence = f"{_concept_words(definition.get('type'))} {_value_words(definition)}".strip()
    if rule.get("kind") == "condition" and not rule.get("includeResolved", True):
        sentence += ", active (resolved diagnoses do not count)"
    if rule.get("kind") == "medication" and rule.get("current"):
        sentence += ", currently taken"
    if rule.get("gene"):
        sentence += f", gene {rule['gene']}" + (f" {rule['variant']}" if rule.get("variant") else "")
    if "therapy" in rule:
        sentence += f", after {_concept_words(rule['therapy'])}"
    if "withinDaysAfterLastDose" in rule:
        sentence += f" (within {rule['withinDaysAfterLastDose']} days of its last dose)"
    excepted = [_coding_words(c) for c in rule.get("exceptCode", [])] + list(rule.get("exceptName", []))
    if excepted:
        sentence += f", except {', '.join(excepted)}"
    doses = (characteristic.get("instancesRange") or {}).get("low", {}).get("value")
    if doses is not None:
        sentence += f", at least {doses} doses"
    for method in definition.get("method", []):
        sentence += f"; computed by {method.get('text', '')}"
    for timing in characteristic.get("timeFromEvent", []):
        sentence += f"; {timing.get('description', '')[:1].lower()}{timing.get('description', '')[1:]}"
    return sentence + "."


def _value_words(definition: Json) -> str:
    if "valueQuantity" in definition:
        quantity = definition["valueQuantity"]
        unit = quantity.get("unit") or quantity.get("code") or ""
        comparator = COMPARATORS.get(quantity.get("comparator", ""), "=")
        # "1" is UCUM's unitless unit (scores such as ECOG): no word to show.
        return f"{comparator} {_number(quantity.get('value'))} {'' if unit == '1' else unit}".strip()
    if "valueRange" in definition:
        low, high = definition["valueRange"].get("low"), definition["valueRange"].get("high")
        if low and high:
            return f"between {_number(low['value'])} and {_number(high['value'])} {high.get('unit', '')}".strip()
        if low:
            return f"≥ {_number(low['value'])} {low.get('unit', '')}".strip()
        if high:
            return f"≤ {_number(high['value'])} {high.get('unit', '')}".strip()
    if "valueCodeableConcept" in definition:
        return f"is {_concept_words(definition['valueCodeableConcept'])}"
    if "valueBoolean" in definition:
        return "is present" if definition["valueBoolean"] else "is absent"
    return ""


def _concept_words(concept: Json | None, with_codes: bool = True) -> str:
    """`text` (else the displays) followed by the codes with their systems' names."""
    if not concept:
        return ""
    codings = concept.get("coding", [])
    name = concept.get("text") or ", ".join(c["display"] for c in codings if c.get("display"))
    codes = ", ".join(_coding_words(c) for c in codings) if with_codes else ""
    return f"{name} [{codes}]" if name and codes else name or codes


def _coding_words(coding: Json) -> str:
    system = coding.get("system", "")
    return f"{SYSTEM_NAMES.get(system, system)} {coding.get('code', '')}".strip()


def _study_status(study: Json) -> str:
    states = [
        _concept_words(p.get("state"), with_codes=False)
        for p in study.get("progressStatus", [])
        if p.get("state") and not any(c.get("code") == "overall-study" for c in p["state"].get("coding", []))
    ]
    return "; ".join(states) or study.get("status", "")


def _rule_parts(characteristic: Json) -> Json:
    parts: Json = {}
    for extension in characteristic.get("extension", []):
        if extension.get("url") != EXT_RULE:
            continue
        for part in extension.get("extension", []):
            value = next((v for k, v in part.items() if k.startswith("value")), None)
            if part["url"] in ("exceptCode", "exceptName"):
                parts.setdefault(part["url"], []).append(value)
            else:
                parts[part["url"]] = value
    return parts


def _flag(characteristic: Json, url: str) -> bool:
    return any(e.get("url") == url and e.get("valueBoolean") for e in characteristic.get("extension", []))


def _walk(characteristics: list[Json], depth: int) -> list[tuple[Json, int]]:
    out: list[tuple[Json, int]] = []
    for characteristic in characteristics:
        out.append((characteristic, depth))
        children = characteristic.get("definitionByCombination", {}).get("characteristic", [])
        out += _walk(children, depth + 1)
    return out


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _div(body: str) -> str:
    return f'<div xmlns="{XHTML_NS}">{body}</div>'

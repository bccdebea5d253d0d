"""Small builders of realistic FHIR R4/R5 resources for tests (shapes as EHRs send them)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

Json = dict[str, Any]
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
_ids = itertools.count(1)


def _id() -> str:
    return f"r{next(_ids)}"


def concept(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def patient(birth: str | None = "1970-05-02", gender: str | None = "female", pid: str = "p1") -> Json:
    out: Json = {"resourceType": "Patient", "id": pid}
    if birth:
        out["birthDate"] = birth
    if gender:
        out["gender"] = gender
    return out


def observation(
    code: str,
    when: str,
    value: Any = None,
    unit: str | None = None,
    *,
    system: str = LOINC,
    high: float | None = None,
    status: str = "final",
    **extra: Any,
) -> Json:
    out: Json = {
        "resourceType": "Observation",
        "id": _id(),
        "status": status,
        "code": concept(system, code),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
    }
    if isinstance(value, bool):
        out["valueBoolean"] = value
    elif isinstance(value, int | float) and unit is not None:
        out["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    elif isinstance(value, int):
        out["valueInteger"] = value
    elif isinstance(value, str):
        out["valueString"] = value
    elif isinstance(value, dict):
        out["valueCodeableConcept"] = value
    if high is not None:
        out["referenceRange"] = [{"high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}]
    out.update(extra)
    return out


def condition(
    system: str, code: str, display: str, onset: str = "2024-01-10", status: str | None = "active", **extra: Any
) -> Json:
    out: Json = {
        "resourceType": "Condition",
        "id": _id(),
        "code": concept(system, code, display),
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": onset,
    }
    if status:
        out["clinicalStatus"] = concept("http://terminology.hl7.org/CodeSystem/condition-clinical", status)
    out.update(extra)
    return out


def administration_r4(code: str, display: str, when: str, system: str = RXNORM) -> Json:
    return {
        "resourceType": "MedicationAdministration",
        "id": _id(),
        "status": "completed",
        "medicationCodeableConcept": concept(system, code, display),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
    }


def administration_r5(code: str, display: str, when: str, system: str = RXNORM) -> Json:
    return {
        "resourceType": "MedicationAdministration",
        "id": _id(),
        "status": "completed",
        "medication": {"concept": concept(system, code, display)},
        "subject": {"reference": "Patient/p1"},
        "occurenceDateTime": when,
    }


def statement_r4(
    code: str, display: str, start: str, end: str | None = None, dosage: list[Json] | None = None, system: str = RXNORM
) -> Json:
    out: Json = {
        "resourceType": "MedicationStatement",
        "id": _id(),
        "status": "active",
        "medicationCodeableConcept": concept(system, code, display),
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": start, **({"end": end} if end else {})},
    }
    if dosage:
        out["dosage"] = dosage
    return out


def procedure_r4(system: str, code: str, display: str, when: str) -> Json:
    return {
        "resourceType": "Procedure",
        "id": _id(),
        "status": "completed",
        "code": concept(system, code, display),
        "subject": {"reference": "Patient/p1"},
        "performedDateTime": when,
    }


def bundle(*resources: Json, bundle_type: str = "collection") -> Json:
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def body(*resources: Json) -> bytes:
    return orjson.dumps(bundle(*resources))

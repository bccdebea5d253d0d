"""Request body → one patient's resources (R4 or R5) → indexed, version-neutral PatientFacts.

Rule: parse once with orjson and walk plain dicts; nothing here validates whole resources (that is
~40x the parse cost). Only what becomes evidence is validated, by `EvidenceValidator`. Bad input
raises FhirError with a shape-only diagnostic: never a value, name or identifier from the body.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from service.domain.criteria import ICD10_GM, ICD10_WHO, ICD10CM, UCUM, Coding
from service.domain.facts import (
    ComponentFact,
    ConditionFact,
    Dosage,
    MedicationFact,
    ObservationFact,
    PartialDate,
    PatientFact,
    PatientFacts,
    ProcedureFact,
    Quantity,
    Value,
)
from service.errors import FhirError, Issue
from service.fhir.models import DEFAULT_MAX_DEPTH, InvalidResource, validate
from service.fhir.shapes import ValidShapes, shape

Json = dict[str, Any]

BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document", "transaction-response", "batch-response")
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationDispense")
SKIPPED_STATUSES = {
    "Observation": {"entered-in-error", "cancelled", "registered"},
    "Condition": set(),
    "Procedure": {"entered-in-error", "not-done", "preparation"},
    "MedicationStatement": {"entered-in-error", "not-taken", "draft", "intended"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationAdministration": {"entered-in-error", "not-done"},
    "MedicationDispense": {"entered-in-error", "cancelled", "declined", "preparation"},
    "Immunization": {"entered-in-error", "not-done"},
}
UNORDERED_INTENTS = ("plan", "proposal")
DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
# Elements that exist in only one release: how an unlabelled body tells R4 from R5.
R4_ONLY = {
    **dict.fromkeys(MEDICATION_TYPES, ("medicationCodeableConcept", "medicationReference")),
    "Procedure": ("performedDateTime", "performedPeriod", "performedString", "asserter"),
    "Condition": ("asserter",),
}
R5_ONLY = {
    "Procedure": ("occurrenceDateTime", "occurrencePeriod", "occurrenceAge", "occurrenceString"),
    "MedicationAdministration": ("occurenceDateTime", "occurencePeriod", "occurenceTiming"),
    "Condition": ("participant",),
}
VALIDATION_CACHE_SIZE = 65_536  # remembered validation results (16-byte digests, a few MB at most)
PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}


@dataclass
class PatientBundle:
    """One patient's posted resources, by the reference each fact cites."""

    release: str  # "R4" | "R5"
    patient_ref: str
    resources: dict[str, Json]
    evaluation_date: dt.date | None = None
    warnings: list[Issue] = field(default_factory=list)


def parse_body(body: bytes, fhir_version: str | None = None) -> PatientBundle:
    """Raw request bytes → PatientBundle (400 when the bytes are not a FHIR JSON resource)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirError.of(400, "structure", "The request body is not valid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise FhirError.of(400, "structure", "The request body is not a FHIR resource (no resourceType).")
    return read_patient_request(document, fhir_version)


def read_patient_request(document: Json, fhir_version: str | None = None) -> PatientBundle:
    """Body of $evaluate-eligibility / $match: a Bundle, or Parameters with `bundle` and `date`."""
    evaluation_date = None
    if document["resourceType"] == "Parameters":
        document, evaluation_date = _unwrap_parameters(document)
    if document.get("resourceType") != "Bundle":
        raise FhirError.of(422, "processing", "Expected a Bundle of the patient's data, or Parameters carrying one.")
    bundle = _read_bundle(document, _release(fhir_version, document))
    bundle.evaluation_date = evaluation_date
    return bundle


def _unwrap_parameters(parameters: Json) -> tuple[Json, dt.date | None]:
    found: Json | None = None
    evaluation_date: dt.date | None = None
    entries = parameters.get("parameter")
    if not isinstance(entries, list):
        raise FhirError.of(422, "required", "Parameters must carry a 'bundle' parameter with the patient's Bundle.")
    for parameter in entries:
        if not isinstance(parameter, dict):
            raise FhirError.of(400, "structure", "Parameters.parameter entries must be objects.")
        resource = parameter.get("resource")
        if parameter.get("name") == "date":
            evaluation_date = _parameter_date(parameter)
        elif isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            if found is not None:
                raise FhirError.of(422, "processing", "Parameters carries more than one Bundle.")
            found = resource
    if found is None:
        raise FhirError.of(422, "required", "Parameters must carry a 'bundle' parameter with the patient's Bundle.")
    return found, evaluation_date


def _parameter_date(parameter: Json) -> dt.date:
    raw = parameter.get("valueDate", parameter.get("valueDateTime"))
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw[:10])
        except ValueError:
            pass
    raise FhirError.of(400, "value", "The 'date' parameter must be a valueDate YYYY-MM-DD.")


def _release(fhir_version: str | None, bundle: Json) -> str:
    """R4 or R5: from the MIME fhirVersion parameter, else from elements only one release has."""
    if fhir_version:
        if fhir_version.startswith("4."):
            return "R4"
        if fhir_version.startswith("5."):
            return "R5"
        raise FhirError.of(415, "not-supported", "fhirVersion must be 4.0 / 4.0.1 / 4.3 (R4, R4B) or 5.0 (R5).")
    r4 = r5 = 0
    for resource in _resources(bundle):
        resource_type = str(resource.get("resourceType"))
        r4 += len([key for key in R4_ONLY.get(resource_type, ()) if key in resource])
        r5 += len([key for key in R5_ONLY.get(resource_type, ()) if key in resource])
        medication = resource.get("medication")
        if resource_type in MEDICATION_TYPES and isinstance(medication, dict):
            r5 += 1  # R5 CodeableReference
    # EHRs send R4 (US Core, mCODE) today; a body with no telling element is read as R4.
    return "R5" if r5 > r4 else "R4"


def _resources(bundle: Json) -> Iterable[Json]:
    entries = bundle.get("entry") or []
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]


def _read_bundle(bundle: Json, release: str) -> PatientBundle:
    bundle_type = bundle.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise FhirError.of(422, "processing", f"Bundle.type must be one of {', '.join(BUNDLE_TYPES)}.")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError.of(400, "structure", "Bundle.entry must be an array.")
    warnings: list[Issue] = []
    resources: dict[str, Json] = {}
    patients: list[str] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue  # e.g. a searchset outcome or a transaction-response entry without resource
        ref = _entry_ref(entry, resource)
        if ref is None:
            warnings.append(_warning(index, "The resource has neither fullUrl nor id, so it cannot be cited; skipped."))
            continue
        resources[ref] = resource
        if resource["resourceType"] == "Patient":
            patients.append(ref)
    if not patients:
        raise FhirError.of(422, "required", "The Bundle holds no Patient resource.")
    if len(patients) > 1:
        raise FhirError.of(422, "processing", f"The Bundle holds {len(patients)} Patient resources; send one patient.")
    return PatientBundle(release, patients[0], resources, warnings=warnings)


def _entry_ref(entry: Json, resource: Json) -> str | None:
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and full_url:
        return full_url
    resource_id = resource.get("id")
    if isinstance(resource_id, str) and resource_id:
        return f"{resource['resourceType']}/{resource_id}"
    return None


def _warning(index: int, text: str) -> Issue:
    return Issue(code="processing", diagnostics=text, severity="warning", expression=(f"Bundle.entry[{index}]",))


class EvidenceValidator:
    """Validates, once each, the resources that become evidence (R4B models for R4 input, R5 for R5)."""

    def __init__(self, bundle: PatientBundle, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.bundle = bundle
        self.max_depth = max_depth
        self.checked: dict[str, str | None] = {}

    def problems(self, refs: Iterable[str]) -> dict[str, str]:
        """ref → why it is invalid, for the refs that fail validation."""
        for ref in refs:
            if ref not in self.checked:
                resource = self.bundle.resources.get(ref)
                self.checked[ref] = (
                    None if resource is None else validation_problem(resource, self.bundle.release, self.max_depth)
                )
        return {ref: problem for ref in refs if (problem := self.checked.get(ref))}


def validation_problem(resource: Json, release: str, max_depth: int = DEFAULT_MAX_DEPTH) -> str | None:
    """Why the resource is not valid FHIR of `release`, or None. Results are remembered per content
    digest: EHRs re-send the same resources (one $evaluate-eligibility per trial, repeated $match), and
    a fhir.resources validation costs ~0.5 ms where the digest costs ~10 µs. Only digests are kept.

    The depth limit is checked by `validate` on a miss, not before the digest: the key holds `max_depth`,
    so a remembered result already says whether these bytes were too deep, and a hit skips the walk."""
    try:
        # orjson refuses more than 254 levels (JSONEncodeError): such a resource is too deep for any limit.
        digest = hashlib.blake2b(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
    except orjson.JSONEncodeError:  # too deep, or e.g. an integer past 64 bits: not remembered
        return _validate(resource, release, max_depth)
    key = (release, max_depth, digest)
    with _VALIDATED_LOCK:
        if key in _VALIDATED:
            _VALIDATED.move_to_end(key)
            return _VALIDATED[key]
    # A resource shaped like one already found valid is valid (service.fhir.shapes says why that is exact).
    resource_shape = shape(resource, release)
    shape_key = (max_depth, resource_shape) if resource_shape is not None else None
    with _VALIDATED_LOCK:
        known_valid = shape_key is not None and shape_key in _VALID_SHAPES
    problem = None if known_valid else _validate(resource, release, max_depth)
    with _VALIDATED_LOCK:
        if problem is None and shape_key is not None:
            _VALID_SHAPES.add(shape_key)
        _VALIDATED[key] = problem
        if len(_VALIDATED) > VALIDATION_CACHE_SIZE:
            _VALIDATED.popitem(last=False)
    return problem


def _validate(resource: Json, release: str, max_depth: int) -> str | None:
    try:
        validate(resource, release, max_depth)
    except InvalidResource as exc:
        return str(exc)
    return None


_VALIDATED: OrderedDict[tuple[str, int, bytes], str | None] = OrderedDict()
_VALIDATED_LOCK = threading.Lock()
_VALID_SHAPES = ValidShapes()


def clear_validation_cache() -> None:
    with _VALIDATED_LOCK:
        _VALIDATED.clear()
        _VALID_SHAPES.clear()


# --- facts ---------------------------------------------------------------------------------------


def index_facts(bundle: PatientBundle) -> PatientFacts:
    """Walk the resources once and build the facts the evaluator reads."""
    patient_resource = bundle.resources[bundle.patient_ref]
    patient_keys = _patient_keys(bundle.patient_ref, patient_resource)
    resolver = _Resolver(bundle.resources)
    found: dict[str, list[Any]] = {"observations": [], "conditions": [], "medications": [], "procedures": []}
    for ref, resource in bundle.resources.items():
        resource_type = resource["resourceType"]
        builder = FACT_BUILDERS.get(resource_type)
        if builder is None:
            continue
        status = resource.get("status")
        # A status of the wrong JSON type (an object, a list) is unhashable: not a 500 (found by bench/fuzz.py).
        if isinstance(status, str) and status in SKIPPED_STATUSES.get(resource_type, ()):
            continue
        # A planned or proposed order (a bridging regimen to start later) gives no drug and is no current therapy.
        if resource_type == "MedicationRequest" and resource.get("intent") in UNORDERED_INTENTS:
            continue
        subject = resource.get("subject") or resource.get("patient")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if isinstance(reference, str) and reference not in patient_keys:
            bundle.warnings.append(
                Issue("processing", f"A {resource_type} refers to another patient; skipped.", "warning")
            )
            continue
        try:
            fact = builder(ref, resource, resolver)
        except (TypeError, ValueError, AttributeError, KeyError):
            # A shape we cannot read (wrong JSON types): skipped and reported, never a 500.
            bundle.warnings.append(
                Issue("structure", f"A {resource_type} has an unreadable structure; skipped.", "warning")
            )
            continue
        if fact is not None:
            found[FACT_LISTS[resource_type]].append(fact)
    return PatientFacts(_patient(bundle.patient_ref, patient_resource), **found)


def _patient_keys(ref: str, patient: Json) -> set[str]:
    keys = {ref}
    if isinstance(patient.get("id"), str):
        keys |= {f"Patient/{patient['id']}", f"urn:uuid:{patient['id']}"}
    if ref.startswith("http"):
        keys.add("/".join(ref.rstrip("/").split("/")[-2:]))
    return keys


class _Resolver:
    """References by fullUrl, by Type/id (also the tail of an absolute fullUrl), and contained #id."""

    def __init__(self, resources: dict[str, Json]) -> None:
        self.by_key: dict[str, Json] = {}
        for ref, resource in resources.items():
            self.by_key[ref] = resource
            if isinstance(resource.get("id"), str):
                self.by_key[f"{resource['resourceType']}/{resource['id']}"] = resource

    def resolve(self, reference: Any, container: Json) -> Json | None:
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        target: str = reference["reference"]
        if target.startswith("#"):
            for contained in container.get("contained") or []:
                if isinstance(contained, dict) and contained.get("id") == target[1:]:
                    return contained
            return None
        if target in self.by_key:
            return self.by_key[target]
        tail = "/".join(target.rstrip("/").split("/")[-2:])
        return self.by_key.get(tail)


def _patient(ref: str, resource: Json) -> PatientFact:
    gender = resource.get("gender")
    return PatientFact(ref, _partial_date(resource.get("birthDate")), gender if isinstance(gender, str) else None)


def _partial_date(raw: Any) -> PartialDate | None:
    return _parse_date(raw) if isinstance(raw, str) else None


@lru_cache(maxsize=8192)
def _parse_date(raw: str) -> PartialDate | None:
    """Cached: a record repeats the same timestamps (every result of one encounter shares one)."""
    match = DATE.match(raw)
    if not match:
        return None
    year, month, day = match.groups()
    try:
        if day:
            exact = dt.date(int(year), int(month), int(day))
            return PartialDate(exact, exact)
        if month:
            first = dt.date(int(year), int(month), 1)
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return PartialDate(first, following - dt.timedelta(days=1))
        return PartialDate(dt.date(int(year), 1, 1), dt.date(int(year), 12, 31))
    except ValueError:
        return None


def _date(raw: Any) -> dt.date | None:
    """A FHIR date/dateTime as a date; a partial date reads as its latest day. Only observations are dated so
    (a result is read as of its latest possible day); conditions, procedures and medications keep the
    PartialDate and the evaluator places its whole period in a window."""
    partial = _partial_date(raw)
    return partial.latest if partial else None


def _period_dates(value: Any) -> tuple[dt.date | None, dt.date | None]:
    if isinstance(value, dict):
        return _date(value.get("start")), _date(value.get("end"))
    return None, None


def _period_partials(value: Any) -> tuple[PartialDate | None, PartialDate | None]:
    """A Period's start and end as written (partial dates kept as the days they can be)."""
    if isinstance(value, dict):
        return _partial_date(value.get("start")), _partial_date(value.get("end"))
    return None, None


# WHO ICD-10 (what sites outside the US code in) shares its categories and most 4-character subdivisions
# with ICD-10-CM, which the mappings are written in; CM adds 5th-7th characters. A WHO code is also read
# as the CM code it spells, so it matches CM classes of its length or shorter (K57.2 in K57), never a
# finer CM code it does not spell (K57.2 is not K57.20).
# ICD-10-GM, the German modification (the German Basisprofil's system; DIMDI's URL before BfArM took it over)
# shares the WHO categories and 4-character subdivisions, but its 5th characters are its own (E11.90 is
# no CM code): it is read as the CM class its first 4 characters spell. A GM code may carry, in the code or
# in coding extensions, a dagger/asterisk/exclamation mark (+ † * !), a side (R L B) and the diagnosis
# security (Diagnosesicherheit, KBV): A excluded, V suspected, Z status after, G confirmed.
GM_SECURITY_EXTENSION = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
_GM_CODE = re.compile(r"^\s*([A-Z]\d{2}(?:\.\d{1,2})?)\s*[+†‡*!]?\s*([AGVZRLB]{0,2})\s*$")


def _gm_code(code: str) -> tuple[str, str] | None:
    """(the CM class a GM code spells, its diagnosis security letter or "") or None when it is no GM code."""
    match = _GM_CODE.match(code.upper())
    if match is None:
        return None
    security = "".join(letter for letter in match.group(2) if letter in "AGVZ")
    return match.group(1)[:5], security[:1]


def gm_security(concept: Any) -> str | None:
    """The ICD-10-GM diagnosis security a CodeableConcept states (A, V, Z, G), from a coding extension or
    the letter after the code; the most cautious when codings disagree."""
    found: set[str] = set()
    for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
        if not isinstance(coding, dict) or coding.get("system") not in ICD10_GM:
            continue
        for extension in coding.get("extension") or []:
            if isinstance(extension, dict) and extension.get("url") == GM_SECURITY_EXTENSION:
                value = extension.get("valueCoding")
                if isinstance(value, dict) and isinstance(value.get("code"), str):
                    found.add(value["code"].strip().upper())
        parsed = _gm_code(coding["code"]) if isinstance(coding.get("code"), str) else None
        if parsed and parsed[1]:
            found.add(parsed[1])
    return next((letter for letter in "AVZG" if letter in found), None)


def _codings(concept: Any) -> tuple[tuple[Coding, ...], str]:
    """(system, code) pairs and the lower-case text + displays of a CodeableConcept."""
    if not isinstance(concept, dict):
        return (), ""
    codings: list[Coding] = []
    words: list[str] = []
    for coding in concept.get("coding") or []:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(code, str):
            codings.append((system if isinstance(system, str) else "", code))
            if system == ICD10_WHO:
                codings.append((ICD10CM, code))
            elif system in ICD10_GM:
                parsed = _gm_code(code)
                if parsed is not None:
                    codings.append((ICD10CM, parsed[0]))
        if isinstance(coding.get("display"), str):
            words.append(coding["display"])
    if isinstance(concept.get("text"), str):
        words.append(concept["text"])
    return tuple(codings), " ".join(words).lower()


def _quantity(raw: Any) -> Quantity | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), int | float) or isinstance(raw.get("value"), bool):
        return None
    unit = raw.get("code") if raw.get("system") == UCUM and raw.get("code") else raw.get("unit") or raw.get("code")
    comparator = raw.get("comparator")
    return Quantity(
        float(raw["value"]),
        unit if isinstance(unit, str) else "",
        comparator if comparator in ("<", "<=", ">", ">=") else None,
    )


def _value(element: Json) -> Value:
    concept_codes, concept_text = _codings(element.get("valueCodeableConcept"))
    text = element.get("valueString") if isinstance(element.get("valueString"), str) else concept_text or None
    integer = element.get("valueInteger")
    boolean = element.get("valueBoolean")
    return Value(
        quantity=_quantity(element.get("valueQuantity")),
        integer=integer if isinstance(integer, int) and not isinstance(integer, bool) else None,
        concept=concept_codes,
        text=text,
        boolean=boolean if isinstance(boolean, bool) else None,
    )


def _observation(ref: str, resource: Json, resolver: _Resolver) -> ObservationFact:
    codes, text = _codings(resource.get("code"))
    when = _date(resource.get("effectiveDateTime") or resource.get("effectiveInstant"))
    if when is None and isinstance(resource.get("effectivePeriod"), dict):
        start, end = _period_dates(resource["effectivePeriod"])
        when = end or start
    if when is None:
        when = _date(resource.get("issued"))
    interpretation: list[Coding] = []
    for concept in resource.get("interpretation") or []:
        interpretation.extend(_codings(concept)[0])
    low = high = None
    for reference_range in resource.get("referenceRange") or []:
        if isinstance(reference_range, dict) and (reference_range.get("low") or reference_range.get("high")):
            low, high = _quantity(reference_range.get("low")), _quantity(reference_range.get("high"))
            break
    components = tuple(
        ComponentFact(_codings(component.get("code"))[0], _value(component))
        for component in resource.get("component") or []
        if isinstance(component, dict)
    )
    return ObservationFact(ref, codes, text, when, _value(resource), tuple(interpretation), low, high, components)


def _condition(ref: str, resource: Json, resolver: _Resolver) -> ConditionFact | None:
    codes, text = _codings(resource.get("code"))
    verification = _first_code(resource.get("verificationStatus"))
    if verification == "entered-in-error":
        return None
    clinical_status = _first_code(resource.get("clinicalStatus"))
    security = gm_security(resource.get("code"))
    if security == "A":  # ausgeschlossen: the diagnosis was ruled out
        verification = "refuted"
    elif security == "V" and verification in (None, "confirmed"):  # Verdacht: suspected
        verification = "provisional"
    elif security == "Z" and clinical_status is None:  # Zustand nach: status after, no longer present
        clinical_status = "resolved"
    # Partial dates stay periods ("2026": some day of 2026): the evaluator places them in a window.
    onset = _partial_date(resource.get("onsetDateTime"))
    if onset is None:
        onset = _period_partials(resource.get("onsetPeriod"))[0]
    abatement = _partial_date(resource.get("abatementDateTime"))
    if abatement is None:
        start, end = _period_partials(resource.get("abatementPeriod"))
        abatement = end or start
    stages = tuple(
        Value(concept=_codings(stage.get("summary"))[0], text=_codings(stage.get("summary"))[1] or None)
        for stage in resource.get("stage") or []
        if isinstance(stage, dict) and stage.get("summary")
    )
    return ConditionFact(
        ref,
        codes,
        text,
        clinical_status,
        verification,
        onset,
        abatement,
        _partial_date(resource.get("recordedDate")),
        stages,
    )


def _first_code(concept: Any) -> str | None:
    codes = _codings(concept)[0]
    return codes[0][1] if codes else None


def _medication(ref: str, resource: Json, resolver: _Resolver) -> MedicationFact:
    concept = resource.get("medicationCodeableConcept")
    reference = resource.get("medicationReference")
    medication = resource.get("medication")
    if isinstance(medication, dict):  # R5 CodeableReference
        concept = concept or medication.get("concept")
        reference = reference or medication.get("reference")
    codes, text = _codings(concept)
    target = resolver.resolve(reference, resource)
    if target is not None:
        more_codes, more_text = _codings(target.get("code"))
        codes += more_codes
        text = f"{text} {more_text}".strip()
        for ingredient in target.get("ingredient") or []:
            if isinstance(ingredient, dict):
                item = ingredient.get("itemCodeableConcept") or (ingredient.get("item") or {}).get("concept")
                ingredient_codes, ingredient_text = _codings(item)
                codes += ingredient_codes
                text = f"{text} {ingredient_text}".strip()
    elif isinstance(reference, dict) and isinstance(reference.get("display"), str):
        text = f"{text} {reference['display'].lower()}".strip()
    start, end, open_period = _medication_dates(resource)
    dosages = [resource["dosage"]] if isinstance(resource.get("dosage"), dict) else resource.get("dosage") or []
    dosages += resource.get("dosageInstruction") or []
    if end is None:
        for dosage in dosages:
            bounds = (
                ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod")
                if isinstance(dosage, dict)
                else None
            )
            bound_start, bound_end = _period_partials(bounds)
            start, end = start or bound_start, bound_end or end
            open_period = open_period or (bound_start is not None and bound_end is None)
    open_period = open_period and end is None
    return MedicationFact(
        ref,
        resource["resourceType"],
        codes,
        text,
        resource.get("status"),
        start,
        end,
        tuple(_dosage(d) for d in dosages if isinstance(d, dict)),
        open_period,
    )


def _medication_dates(resource: Json) -> tuple[PartialDate | None, PartialDate | None, bool]:
    """(start, end, whether a period with a start and no end dates it)."""
    for key in ("effective", "occurence", "occurrence"):
        moment = _partial_date(resource.get(f"{key}DateTime"))
        if moment:
            return moment, None, False
        start, end = _period_partials(resource.get(f"{key}Period"))
        if start or end:
            return start, end, end is None
    for key in ("authoredOn", "whenHandedOver", "whenPrepared", "dateAsserted"):
        moment = _partial_date(resource.get(key))
        if moment:
            return moment, None, False
    return None, None, False


def _dosage(dosage: Json) -> Dosage:
    dose = _quantity(dosage.get("dose"))
    for dose_and_rate in dosage.get("doseAndRate") or []:
        if dose is None and isinstance(dose_and_rate, dict):
            dose = _quantity(dose_and_rate.get("doseQuantity"))
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    per_day = None
    frequency, period, unit = repeat.get("frequency"), repeat.get("period"), repeat.get("periodUnit")
    if isinstance(period, int | float) and period > 0 and unit in PER_DAY:
        per_day = (frequency if isinstance(frequency, int) else 1) * PER_DAY[unit] / period
    route_codes, route_text = _codings(dosage.get("route"))
    route = " ".join([route_text, *(code for _, code in route_codes)]).lower()
    return Dosage(dose, per_day, route)


def _immunization(ref: str, resource: Json, resolver: _Resolver) -> MedicationFact:
    """Vaccines given (CVX vaccineCode): read by medication rules on vaccine codes (live-vaccine washouts)."""
    codes, text = _codings(resource.get("vaccineCode"))
    when = _partial_date(resource.get("occurrenceDateTime"))
    return MedicationFact(ref, "Immunization", codes, text, resource.get("status"), when, None)


def _procedure(ref: str, resource: Json, resolver: _Resolver) -> ProcedureFact:
    codes, text = _codings(resource.get("code"))
    when = None
    for key in ("performed", "occurrence"):
        when = _partial_date(resource.get(f"{key}DateTime"))
        if when is None:
            start, end = _period_partials(resource.get(f"{key}Period"))
            when = end or start
        if when:
            break
    return ProcedureFact(ref, codes, text, resource.get("status"), when)


FACT_BUILDERS = {
    "Observation": _observation,
    "Condition": _condition,
    "Procedure": _procedure,
    **dict.fromkeys(MEDICATION_TYPES, _medication),
    "Immunization": _immunization,
}
FACT_LISTS = {
    "Observation": "observations",
    "Condition": "conditions",
    "Procedure": "procedures",
    **dict.fromkeys(MEDICATION_TYPES, "medications"),
    "Immunization": "medications",
}


# --- population screening --------------------------------------------------------------------------


def bundle_from_resources(resources: Iterable[Json], release: str | None = None) -> PatientBundle:
    """One patient's loose resources (a Bulk Data export group) → PatientBundle keyed by Type/id.

    `release` None: told by content, as for an unlabelled request body. Raises FhirError 422 like a
    posted Bundle would (no Patient, two Patients)."""
    document: Json = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return _read_bundle(document, release or _release(None, document))

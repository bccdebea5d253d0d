"""Criteria tree → R5 EvidenceVariable JSON, native elements first, the project's extensions for the rest.

Rule: a consumer that does not run this code can read every criterion from what is rendered here
(mappings/README.md "How it is published" is the human description of the same conventions).
"""

from __future__ import annotations

import re
from typing import Any

from service.domain.criteria import (
    ATC,
    LOINC,
    SNOMED,
    UCUM,
    AgeRule,
    ArmEligibility,
    CodeSet,
    Combination,
    ConditionRule,
    CorticosteroidDoseRule,
    CreatinineClearanceRule,
    Criterion,
    MedicationRule,
    NotComputable,
    ObservationRule,
    ProcedureRule,
    ProgressionAfterTherapyRule,
    ScreeningConfirmation,
    SexRule,
    StageRule,
    TestRule,
    TrialCriteria,
    Window,
)
from service.fhir.conformance import (
    EXT_MACHINE_DERIVED,
    EXT_REFERENCE_LIMIT_MULTIPLE,
    EXT_RULE,
    EXT_SCREENING,
)

Json = dict[str, Any]

POSITIVE = {"system": SNOMED, "code": "10828004", "display": "Positive"}
NEGATIVE = {"system": SNOMED, "code": "260385009", "display": "Negative"}
EVALUATION_EVENT = {"text": "Date of the eligibility evaluation (the `date` of $evaluate-eligibility)"}


def eligibility_id(study_id: str) -> str:
    return f"{study_id}-eligibility"


def arm_eligibility_id(study_id: str, group: str) -> str:
    return f"{study_id}-arm-{group}"


def render_evidence_variables(trial: TrialCriteria, status: str, canonical_base: str) -> list[Json]:
    main_id = eligibility_id(trial.study_id)
    resources = [
        _evidence_variable(
            main_id,
            f"Eligibility criteria of {trial.title}",
            trial.criteria,
            status,
            canonical_base,
            f"Inclusion and exclusion criteria of ResearchStudy/{trial.study_id}.",
        )
    ]
    for arm in trial.arms:
        resources.append(_arm_variable(trial.study_id, arm, status, canonical_base))
    return resources


def _arm_variable(study_id: str, arm: ArmEligibility, status: str, canonical_base: str) -> Json:
    return _evidence_variable(
        arm_eligibility_id(study_id, arm.group),
        f"{arm.title}: assignment criteria",
        arm.criteria,
        status,
        canonical_base,
        f"Criteria deciding assignment to comparisonGroup '{arm.group}' of ResearchStudy/{study_id}.",
    )


def _evidence_variable(
    resource_id: str,
    title: str,
    criteria: tuple[Criterion, ...],
    status: str,
    canonical_base: str,
    description: str,
) -> Json:
    return {
        "resourceType": "EvidenceVariable",
        "id": resource_id,
        "url": f"{canonical_base}/EvidenceVariable/{resource_id}",
        "name": "".join(part[:1].upper() + part[1:] for part in re.split(r"[-.]", resource_id)),
        "title": title,
        "status": status,
        "description": description,
        "actual": False,
        "characteristic": [render_characteristic(c) for c in criteria],
    }


def render_characteristic(criterion: Criterion) -> Json:
    out: Json = {"linkId": criterion.link_id, "description": criterion.description}
    extensions: list[Json] = []
    if criterion.is_screening:
        extensions.append({"url": EXT_SCREENING, "valueBoolean": True})
    if criterion.machine_derived:
        extensions.append({"url": EXT_MACHINE_DERIVED, "valueBoolean": True})
    if criterion.note:
        out["note"] = [{"text": criterion.note}]
    out["exclude"] = criterion.exclude
    out.update(_definition(criterion))
    rule_extension = _rule_extension(criterion)
    if rule_extension:
        extensions.append(rule_extension)
    if extensions:
        out = {"extension": extensions, **out}
    return out


def _definition(criterion: Criterion) -> Json:
    """The definition[x] and the native timing elements of one characteristic."""
    rule = criterion.rule
    if isinstance(rule, Combination):
        combo: Json = {"code": rule.code.value}
        if rule.threshold is not None:
            combo["threshold"] = rule.threshold
        combo["characteristic"] = [render_characteristic(child) for child in rule.children]
        return {"definitionByCombination": combo}
    if isinstance(rule, ScreeningConfirmation):
        return {"definitionCodeableConcept": {"text": "Confirmed by the site at screening (not decided from data)"}}
    if isinstance(rule, NotComputable):
        return {"definitionCodeableConcept": {"text": f"Not computable from structured data: {rule.explanation}"}}
    if isinstance(rule, AgeRule):
        age_range: Json = {}
        if rule.min_years is not None:
            age_range["low"] = _quantity(rule.min_years, "a", "years")
        if rule.max_years is not None:
            age_range["high"] = _quantity(rule.max_years, "a", "years")
        return _by_type(
            {"coding": [{"system": SNOMED, "code": "397669002", "display": "Age"}]}, {"valueRange": age_range}
        )
    if isinstance(rule, SexRule):
        codings = [{"system": "http://hl7.org/fhir/administrative-gender", "code": s} for s in sorted(rule.sexes)]
        return _by_type(
            {"coding": [{"system": LOINC, "code": "46098-0", "display": "Sex"}]},
            {"valueCodeableConcept": {"coding": codings}},
        )
    if isinstance(rule, ConditionRule):
        return _by_type(
            {"coding": [{"system": SNOMED, "code": "64572001", "display": "Disease"}]},
            {"valueCodeableConcept": _concept(rule.codes, rule.label)},
            rule.within,
        )
    if isinstance(rule, StageRule):
        stage_type = {
            "coding": [
                {"system": LOINC, "code": "21908-9", "display": "Stage group.clinical Cancer"},
                {"system": LOINC, "code": "21902-2", "display": "Stage group.pathology Cancer"},
            ]
        }
        stages = {"text": "AJCC stage group " + " or ".join(rule.allowed)}
        return _by_type(stage_type, {"valueCodeableConcept": stages})
    if isinstance(rule, ObservationRule):
        return _observation_definition(rule)
    if isinstance(rule, TestRule):
        return _by_type(
            _concept(rule.codes, rule.label),
            {"valueCodeableConcept": {"coding": [POSITIVE if rule.expect == "positive" else NEGATIVE]}},
            rule.window,
        )
    if isinstance(rule, MedicationRule):
        out = _by_type(
            {"coding": [{"system": SNOMED, "code": "18629005", "display": "Administration of drug or medicament"}]},
            {"valueCodeableConcept": _concept(rule.codes, rule.label)},
            rule.within,
        )
        if rule.min_doses is not None:
            out["instancesRange"] = {"low": {"value": rule.min_doses}}
        return out
    if isinstance(rule, ProcedureRule):
        return _by_type(
            {"coding": [{"system": SNOMED, "code": "71388002", "display": "Procedure"}]},
            {"valueCodeableConcept": _concept(rule.codes, rule.label)},
            rule.within,
        )
    if isinstance(rule, CreatinineClearanceRule):
        crcl_type = {
            "coding": [
                {
                    "system": LOINC,
                    "code": "35591-7",
                    "display": "Creatinine renal clearance predicted by Cockcroft-Gault formula",
                }
            ]
        }
        out = _by_type(
            crcl_type, {"valueQuantity": _quantity(rule.value, "mL/min", "mL/min", rule.comparator.value)}, rule.window
        )
        out["definitionByTypeAndValue"]["method"] = [
            {"text": "Cockcroft–Gault: (140 − age) × weight [kg] / (72 × serum creatinine [mg/dL]), × 0.85 if female"}
        ]
        return out
    if isinstance(rule, CorticosteroidDoseRule):
        steroid_type = {
            "coding": [{"system": ATC, "code": "H02AB", "display": "Glucocorticoids"}],
            "text": "Systemic corticosteroid, daily dose in prednisone equivalents",
        }
        return _by_type(
            steroid_type,
            {"valueQuantity": _quantity(rule.prednisone_mg_per_day, "mg/d", "mg/day", rule.comparator.value)},
            rule.within,
        )
    if isinstance(rule, ProgressionAfterTherapyRule):
        status_type = {"coding": [{"system": LOINC, "code": "97509-4", "display": "Cancer disease status"}]}
        worsened = {"coding": [{"system": SNOMED, "code": "271299001", "display": "Patient's condition worsened"}]}
        return _by_type(status_type, {"valueCodeableConcept": worsened})
    raise TypeError(f"unrendered rule {type(rule).__name__}")


def _observation_definition(rule: ObservationRule) -> Json:
    if rule.relative_to is None:
        value = _quantity(rule.value, rule.unit or "1", rule.unit or "1", rule.comparator.value)
        return _by_type(_concept(rule.codes, rule.label), {"valueQuantity": value}, rule.window)
    limit = "UNL" if rule.relative_to == "ULN" else "LNL"
    display = "Upper Normal Limit" if limit == "UNL" else "Lower Normal Limit"
    out = _by_type(
        _concept(rule.codes, rule.label),
        {"valueQuantity": {"value": rule.value, "comparator": rule.comparator.value, "unit": f"× {rule.relative_to}"}},
        rule.window,
    )
    definition = out["definitionByTypeAndValue"]
    definition["offset"] = {
        "coding": [{"system": "http://hl7.org/fhir/characteristic-offset", "code": limit, "display": display}]
    }
    definition["modifierExtension"] = [{"url": EXT_REFERENCE_LIMIT_MULTIPLE, "valueDecimal": rule.value}]
    return out


def _by_type(type_concept: Json, value: Json, window: Window | None = None) -> Json:
    out: Json = {"definitionByTypeAndValue": {"type": type_concept, **value}}
    if window is not None:
        out["timeFromEvent"] = [
            {
                "description": f"Within {window.days} days before the evaluation date"
                + (" (a default window: the protocol states none)" if window.is_default else ""),
                "eventCodeableConcept": EVALUATION_EVENT,
                "range": {"low": _quantity(-window.days, "d", "days"), "high": _quantity(0, "d", "days")},
            }
        ]
    return out


def _rule_extension(criterion: Criterion) -> Json | None:
    """Parameters R5 has no element for, as a complex extension (kind + typed parts)."""
    rule = criterion.rule
    parts: list[Json] = []
    if isinstance(rule, ConditionRule):
        parts.append({"url": "kind", "valueCode": "condition"})
        parts.append({"url": "includeResolved", "valueBoolean": rule.include_resolved})
        parts.extend(_except_parts(rule.except_codes))
    elif isinstance(rule, MedicationRule):
        parts.append({"url": "kind", "valueCode": "medication"})
        parts.append({"url": "current", "valueBoolean": rule.current})
        if rule.systemic:
            parts.append({"url": "systemic", "valueBoolean": True})
        if rule.given_once:
            parts.append({"url": "givenOnce", "valueBoolean": True})
        parts.extend(_except_parts(rule.codes.excluded))
    elif isinstance(rule, ProcedureRule) and rule.codes.excluded:
        parts.append({"url": "kind", "valueCode": "procedure"})
        parts.extend(_except_parts(rule.codes.excluded))
    elif isinstance(rule, TestRule) and (rule.gene or rule.codes.excluded or rule.decides_alone or rule.positive_wins):
        parts.append({"url": "kind", "valueCode": "test"})
        if rule.gene:
            parts.append({"url": "gene", "valueString": rule.gene})
        if rule.variant:
            parts.append({"url": "variant", "valueString": rule.variant})
        parts.extend(_except_parts(rule.codes.excluded))
        if rule.decides_alone:
            parts.append({"url": "decidesAlone", "valueBoolean": True})
        if rule.positive_wins:
            parts.append({"url": "positiveWins", "valueBoolean": True})
    elif isinstance(rule, CreatinineClearanceRule):
        parts.append({"url": "kind", "valueCode": "creatinine-clearance-cockcroft-gault"})
    elif isinstance(rule, CorticosteroidDoseRule):
        parts.append({"url": "kind", "valueCode": "corticosteroid-prednisone-equivalent"})
    elif isinstance(rule, ProgressionAfterTherapyRule):
        parts.append({"url": "kind", "valueCode": "progression-after-therapy"})
        parts.append({"url": "therapy", "valueCodeableConcept": _concept(rule.therapy, rule.label)})
        parts.extend(_except_parts(rule.therapy.excluded))
        if rule.within_days is not None:
            parts.append({"url": "withinDaysAfterLastDose", "valueInteger": rule.within_days})
    elif isinstance(rule, ObservationRule) and (rule.molar_mass is not None or rule.room_air or rule.or_value):
        parts.append({"url": "kind", "valueCode": "observation"})
        if rule.or_value is not None:
            parts.append(
                {"url": "orValue", "valueQuantity": _quantity(rule.or_value[0], rule.or_value[1], rule.or_value[1])}
            )
        if rule.molar_mass is not None:
            parts.append({"url": "molarMass", "valueQuantity": _quantity(rule.molar_mass, "g/mol", "g/mol")})
        if rule.room_air:
            parts.append({"url": "roomAir", "valueBoolean": True})
    if not parts:
        return None
    return {"url": EXT_RULE, "extension": parts}


def _except_parts(codes: CodeSet | None) -> list[Json]:
    if codes is None:
        return []
    return [{"url": "exceptCode", "valueCoding": _coding(s, c)} for s, c in codes.all_codings()] + [
        {"url": "exceptName", "valueString": n} for n in codes.names
    ]


def _concept(codes: CodeSet, label: str) -> Json:
    concept: Json = {}
    codings = [_coding(system, code) for system, code in codes.all_codings()]
    if codings:
        concept["coding"] = codings
    text = label
    if codes.names:
        text = f"{label} (names: {', '.join(codes.names)})"
    concept["text"] = text
    return concept


def _coding(system: str, code: str) -> Json:
    return {"system": system, "code": code}


def _quantity(value: float, code: str, unit: str, comparator: str | None = None) -> Json:
    quantity: Json = {"value": int(value) if float(value).is_integer() else value}
    if comparator:
        quantity["comparator"] = comparator
    quantity.update({"unit": unit, "system": UCUM, "code": code})
    return quantity

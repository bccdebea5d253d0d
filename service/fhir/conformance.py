"""The project's own conformance resources: extension StructureDefinitions and OperationDefinitions.

Rule: every extension URL the service writes is defined here and served by GET /StructureDefinition,
so a consumer can read the published criteria and answers without this code.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

CANONICAL_BASE = "https://trial-eligibility.example.org/fhir"
PUBLISHER = "Trial eligibility service"
DATE = "2026-11-22"


def _sd_url(name: str) -> str:
    return f"{CANONICAL_BASE}/StructureDefinition/{name}"


EXT_SCREENING = _sd_url("eligibility-screening-confirmation")
EXT_MACHINE_DERIVED = _sd_url("eligibility-machine-derived")
EXT_REFERENCE_LIMIT_MULTIPLE = _sd_url("eligibility-reference-limit-multiple")
EXT_RULE = _sd_url("eligibility-rule")
EXT_ARM_ELIGIBILITY = _sd_url("comparison-group-eligibility")
EXT_MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"

OP_EVALUATE = f"{CANONICAL_BASE}/OperationDefinition/ResearchStudy-evaluate-eligibility"
OP_MATCH = f"{CANONICAL_BASE}/OperationDefinition/ResearchStudy-match"

CHARACTERISTIC = "EvidenceVariable.characteristic"

# (url part/name, value type, short) of the parts of the complex eligibility-rule extension.
RULE_PARTS: tuple[tuple[str, str, str], ...] = (
    (
        "kind",
        "code",
        "Rule kind: condition | medication | procedure | test | observation | "
        "creatinine-clearance-cockcroft-gault | corticosteroid-prednisone-equivalent | progression-after-therapy",
    ),
    ("includeResolved", "boolean", "Condition: resolved (historical) conditions count too"),
    (
        "exceptCode",
        "Coding",
        "A code the criterion exempts: a condition the protocol exempts (e.g. basal cell carcinoma), or a member "
        "of a code class that does not mean the criterion (e.g. ATC L01XL02 in L01XL)",
    ),
    ("exceptName", "string", "A name the criterion exempts, matched in a record's text"),
    (
        "decidesAlone",
        "boolean",
        "Test: the result is the definition of this path (e.g. detectable HBV DNA); with no result the path is "
        "not met and the criterion's other paths decide",
    ),
    (
        "positiveWins",
        "boolean",
        "Test: a tumour biomarker; a positive result anywhere in the window decides, whatever later results read "
        "(a later negative on another specimen, e.g. a plasma ctDNA, does not undo it)",
    ),
    ("current", "boolean", "Medication: only a medication active at the evaluation date counts"),
    (
        "systemic",
        "boolean",
        "Medication: a record whose every dosage has a non-systemic route (topical, otic, ophthalmic, inhaled) "
        "does not count",
    ),
    (
        "givenOnce",
        "boolean",
        "Medication: each record is one administration of a product given once (a CAR-T infusion); a record "
        "left active is dated by its own day, not read as running on to the evaluation date",
    ),
    ("gene", "string", "Test: the HGNC symbol of the gene a variant report must concern"),
    (
        "variant",
        "string",
        "Test: the protein change (one-letter, e.g. G12C) a positive variant report must name; one that names "
        "none leaves the criterion unknown",
    ),
    ("therapy", "CodeableConcept", "Progression: the therapy after whose last dose progression is looked for"),
    (
        "withinDaysAfterLastDose",
        "integer",
        "Progression: days after the end of the therapy record (course) the progression followed",
    ),
    ("molarMass", "Quantity", "Observation: analyte molar mass (g/mol) for mass/substance unit conversion"),
    (
        "orValue",
        "Quantity",
        "Observation: the protocol's second threshold for results in another unit (2500 copies/mL beside 500 "
        "IU/mL), same comparator, no conversion between the two units",
    ),
    (
        "roomAir",
        "boolean",
        "Observation: measured without supplemental oxygen; a result whose components record inhaled oxygen "
        "flow (LOINC 3151-8) above 0 or inhaled oxygen concentration (3150-0) above 21 % does not count",
    ),
)


def _simple_extension(
    name: str, title: str, description: str, context: str, value_type: str, modifier: bool = False
) -> Json:
    url = _sd_url(name)
    root: Json = {"id": "Extension", "path": "Extension", "short": title, "definition": description, "max": "1"}
    if modifier:
        root["isModifier"] = True
        root["isModifierReason"] = description
    elements = [
        root,
        {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": value_type}]},
    ]
    return _structure_definition(name, title, description, context, elements)


def _rule_extension() -> Json:
    name = "eligibility-rule"
    description = (
        "The rule kind and the parameters of a criterion that R5 EvidenceVariable has no element for. "
        "Evaluated by the service as documented in its mappings/README.md."
    )
    elements: list[Json] = [
        {
            "id": "Extension",
            "path": "Extension",
            "short": "Eligibility rule parameters",
            "definition": description,
            "max": "1",
        },
        {
            "id": "Extension.extension",
            "path": "Extension.extension",
            "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"},
        },
    ]
    for part, value_type, short in RULE_PARTS:
        slice_id = f"Extension.extension:{part}"
        elements += [
            {
                "id": slice_id,
                "path": "Extension.extension",
                "sliceName": part,
                "short": short,
                "definition": short,
                "min": 1 if part == "kind" else 0,
                "max": "*" if part == "exceptCode" or part == "exceptName" else "1",
            },
            {"id": f"{slice_id}.url", "path": "Extension.extension.url", "fixedUri": part},
            {
                "id": f"{slice_id}.value[x]",
                "path": "Extension.extension.value[x]",
                "min": 1,
                "type": [{"code": value_type}],
            },
        ]
    elements += [
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": _sd_url(name)},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
    ]
    return _structure_definition(name, "Eligibility rule parameters", description, CHARACTERISTIC, elements)


def _structure_definition(name: str, title: str, description: str, context: str, elements: list[Json]) -> Json:
    return {
        "resourceType": "StructureDefinition",
        "id": name,
        "url": _sd_url(name),
        "version": "1.0.0",
        "name": "".join(part.capitalize() for part in name.split("-")),
        "title": title,
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "fhirVersion": "5.0.0",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": context}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def structure_definitions() -> list[Json]:
    return [
        _simple_extension(
            "eligibility-screening-confirmation",
            "Screening confirmation",
            "The criterion cannot be settled from any record (consent, willingness, investigator judgement): "
            "the site confirms it at screening. It never decides the eligibility verdict; while it is pending an "
            "otherwise eligible subject is a candidate.",
            CHARACTERISTIC,
            "boolean",
        ),
        _simple_extension(
            "eligibility-machine-derived",
            "Machine-derived criterion",
            "The computable definition was derived automatically from registry text (ClinicalTrials.gov "
            "importer) and has not been reviewed by a person.",
            CHARACTERISTIC,
            "boolean",
        ),
        _simple_extension(
            "eligibility-reference-limit-multiple",
            "Multiple of a reference limit",
            "The valueQuantity threshold is this multiple of the limit named by `offset` (UNL: the upper, LNL: the "
            "lower limit of normal) taken from the result's own Observation.referenceRange, not an additive offset "
            "(e.g. ALT <= 3 x ULN). A result without a reference range cannot be evaluated.",
            f"{CHARACTERISTIC}.definitionByTypeAndValue",
            "decimal",
            modifier=True,
        ),
        _rule_extension(),
        _simple_extension(
            "comparison-group-eligibility",
            "Comparison group eligibility",
            "The EvidenceVariable whose criteria decide whether a subject is assigned to this comparison group "
            "(arm); R5 has no per-arm eligibility element.",
            "ResearchStudy.comparisonGroup",
            "Reference",
        ),
    ]


def _param(
    name: str,
    use: str,
    low: int,
    high: str,
    kind: str | None = None,
    doc: str | None = None,
    parts: list[Json] | None = None,
) -> Json:
    """One OperationDefinition.parameter (a part list instead of a type for the compound ones)."""
    out: Json = {"name": name, "use": use, "min": low, "max": high}
    if kind:
        out["type"] = kind
    if doc:
        out["documentation"] = doc
    if parts:
        out["part"] = parts
    return out


def operation_definitions() -> list[Json]:
    patient_in = [
        _param(
            "bundle",
            "in",
            0,
            "1",
            "Bundle",
            "The patient's data: a Bundle (R4 or R5; collection, transaction, batch, searchset or document) "
            "with exactly one Patient. When the request body is this Bundle itself, no Parameters wrapper is "
            "used.",
        ),
        _param(
            "date",
            "in",
            0,
            "1",
            "date",
            "The evaluation date (YYYY-MM-DD); lookback windows end on it. Default: today (UTC).",
        ),
    ]
    criterion_parts = [
        _param("linkId", "out", 1, "1", "string"),
        _param("description", "out", 1, "1", "string"),
        _param("exclude", "out", 1, "1", "boolean"),
        _param(
            "result", "out", 1, "1", "code", "met | not-met | unknown: whether the characteristic's condition holds"
        ),
        _param("reason", "out", 1, "1", "string"),
        _param("evidence", "out", 0, "*", "Reference"),
        _param("screeningConfirmation", "out", 0, "1", "boolean"),
    ]
    evaluate = {
        "resourceType": "OperationDefinition",
        "id": "ResearchStudy-evaluate-eligibility",
        "url": OP_EVALUATE,
        "version": "1.0.0",
        "name": "EvaluateEligibility",
        "title": "Evaluate a patient's eligibility for a research study",
        "status": "active",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "Evaluates one patient's Bundle against every eligibility criterion of the study, "
        "criterion by criterion, with the evidence used and the data still missing.",
        "affectsState": False,
        "code": "evaluate-eligibility",
        "resource": ["ResearchStudy"],
        "system": False,
        "type": False,
        "instance": True,
        "parameter": patient_in
        + [
            _param("eligibility", "out", 1, "1", "code", "eligible | ineligible | undetermined"),
            _param("evaluationDate", "out", 1, "1", "date", "The date the criteria were evaluated at"),
            _param(
                "researchSubject",
                "out",
                1,
                "1",
                "ResearchSubject",
                "progress[Enrollment].subjectState: eligible, candidate (screening confirmations pending), "
                "potential-candidate (undetermined) or ineligible",
            ),
            _param(
                "criterion", "out", 0, "*", None, "One per characteristic, nested for combinations", criterion_parts
            ),
            _param("dataRequirement", "out", 0, "*", "DataRequirement"),
            _param(
                "comparisonGroup",
                "out",
                0,
                "*",
                None,
                "Arm-level eligibility where arms differ",
                [
                    _param("linkId", "out", 1, "1", "string"),
                    _param("name", "out", 1, "1", "string"),
                    _param("eligibility", "out", 1, "1", "code"),
                    _param(
                        "criterion", "out", 0, "*", None, "The arm's criteria, shaped as the study's", criterion_parts
                    ),
                ],
            ),
            _param(
                "warning",
                "out",
                0,
                "1",
                "OperationOutcome",
                "Resources of the posted bundle that were skipped, and why",
            ),
        ],
    }
    match = {
        **{k: v for k, v in evaluate.items() if k not in ("parameter",)},
        "id": "ResearchStudy-match",
        "url": OP_MATCH,
        "name": "Match",
        "title": "Rank every registered research study for a patient",
        "description": "Evaluates one patient's Bundle against the registered studies that pass the filters "
        "(by default those open to enrolment) and returns a searchset Bundle ordered eligible, undetermined, "
        "ineligible, with search.score and the match-grade extension, one page at a time (total: every study "
        "that passed the filters); each entry's full $evaluate-eligibility result is an included entry.",
        "code": "match",
        "type": True,
        "instance": False,
        "parameter": patient_in
        + [
            _param(
                "status",
                "in",
                0,
                "1",
                "string",
                "Enrolment states (research-study-status codes of ResearchStudy.progressStatus.state, comma = "
                "OR) the studies must be in. Default: open to enrolment (recruiting, not-yet-recruiting, "
                "enrolling-by-invitation), and studies whose mapping records no state. An unknown code is a 400.",
            ),
            _param(
                "condition",
                "in",
                0,
                "*",
                "string",
                "Only studies with this condition, as the ResearchStudy search parameter `condition` "
                "(`system|code`, `code`, or a word of its text); comma = OR, repeated = AND.",
            ),
            _param(
                "phase",
                "in",
                0,
                "*",
                "string",
                "Only studies in this phase (research-study-phase code, e.g. phase-2); comma = OR.",
            ),
            _param(
                "keyword",
                "in",
                0,
                "*",
                "string",
                "Only studies with this keyword, as the ResearchStudy search parameter `keyword`.",
            ),
            _param(
                "_count",
                "in",
                0,
                "1",
                "integer",
                "Page size: at most this many studies per answer (default DEFAULT_COUNT, capped at MAX_COUNT); "
                "the `next` link gives the following page (POST the same body to it).",
            ),
            _param("_offset", "in", 0, "1", "integer", "How many ranked studies to skip (from the paging links)."),
            _param(
                "return",
                "out",
                1,
                "1",
                "Bundle",
                "searchset Bundle of ResearchStudy (search.mode=match) and Parameters (search.mode=include) entries",
            ),
        ],
    }
    return [evaluate, match]

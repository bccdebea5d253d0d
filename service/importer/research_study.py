"""ClinicalTrials.gov v2 protocolSection → R5 ResearchStudy (a JSON dict), without id/meta/eligibility.

Rule: carry what the registry says, coded where a code system says the same thing and as text
where it does not; never invent. The catalog adds id, meta and recruitment.eligibility.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NCT_SYSTEM = "https://clinicaltrials.gov/nctid"
EU_CT_SYSTEM = "https://euclinicaltrials.eu/clinicalTrialId"
MESH_SYSTEM = "urn:oid:2.16.840.1.113883.6.177"
STATUS_SYSTEM = "http://hl7.org/fhir/research-study-status"
PHASE_SYSTEM = "http://hl7.org/fhir/research-study-phase"
# The brief and the official R5 ctgov example use the THO system; the R5 core value set lists the
# hl7.org/fhir one. Both codings are written so either kind of consumer recognises the purpose.
PURPOSE_SYSTEMS = (
    "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type",
    "http://hl7.org/fhir/research-study-prim-purp-type",
)
DESIGN_SYSTEM = "http://hl7.org/fhir/study-design"
ARM_TYPE_SYSTEM = "http://hl7.org/fhir/research-study-arm-type"
PARTY_ROLE_SYSTEM = "http://hl7.org/fhir/research-study-party-role"
PARTY_ORG_SYSTEM = "http://hl7.org/fhir/research-study-party-organization-type"
OBJECTIVE_TYPE_SYSTEM = "http://hl7.org/fhir/research-study-objective-type"
TITLE_TYPE_SYSTEM = "http://hl7.org/fhir/title-type"
CLASSIFIER_SYSTEM = "http://hl7.org/fhir/research-study-classifiers"

# overallStatus → research-study-status. UNKNOWN ("status not verified for 2 years") has no code:
# it stays text, and lastKnownStatus is deliberately not used (it is stale by definition).
OVERALL_STATUS = {
    "RECRUITING": ("recruiting", "Recruiting"),
    "NOT_YET_RECRUITING": ("not-yet-recruiting", "Not yet recruiting"),
    "ACTIVE_NOT_RECRUITING": ("active-but-not-recruiting", "Active, not recruiting"),
    "ENROLLING_BY_INVITATION": ("enrolling-by-invitation", "Enrolling by invitation"),
    "COMPLETED": ("completed", "Completed"),
    "SUSPENDED": ("temporarily-closed-to-accrual", "Temporarily Closed to Accrual"),
    "TERMINATED": ("terminated", "Terminated"),
    "WITHDRAWN": ("withdrawn", "Withdrawn"),
}
PHASES = {
    ("NA",): ("n-a", "N/A"),
    ("EARLY_PHASE1",): ("early-phase-1", "Early Phase 1"),
    ("PHASE1",): ("phase-1", "Phase 1"),
    ("PHASE1", "PHASE2"): ("phase-1-phase-2", "Phase 1/Phase 2"),
    ("PHASE2",): ("phase-2", "Phase 2"),
    ("PHASE2", "PHASE3"): ("phase-2-phase-3", "Phase 2/Phase 3"),
    ("PHASE3",): ("phase-3", "Phase 3"),
    ("PHASE4",): ("phase-4", "Phase 4"),
}
PURPOSES = {
    "TREATMENT": ("treatment", "Treatment"),
    "PREVENTION": ("prevention", "Prevention"),
    "DIAGNOSTIC": ("diagnostic", "Diagnostic"),
    "SUPPORTIVE_CARE": ("supportive-care", "Supportive Care"),
    "SCREENING": ("screening", "Screening"),
    "HEALTH_SERVICES_RESEARCH": ("health-services-research", "Health Services Research"),
    "BASIC_SCIENCE": ("basic-science", "Basic Science"),
    "DEVICE_FEASIBILITY": ("device-feasibility", "Device Feasibility"),
}
# Only the SEVCO codes whose definitions match the registry value one to one. Intervention model
# (parallel/single group/sequential), masking levels and observational models stay text: SEVCO's
# "parallel cohort design" or "uncontrolled cohort design" say more than the registry does.
STUDY_TYPES = {
    "INTERVENTIONAL": ("SEVCO:01001", "Interventional research"),
    "OBSERVATIONAL": ("SEVCO:01002", "Observational research"),
}
ALLOCATIONS = {
    "RANDOMIZED": ("SEVCO:01003", "randomized assignment"),
    "NON_RANDOMIZED": ("SEVCO:01005", "Non-randomized assignment"),
}
WHO_MASKED = {
    "PARTICIPANT": ("SEVCO:01060", "Blinding of study participants"),
    "OUTCOMES_ASSESSOR": ("SEVCO:01062", "Blinding of outcome assessors"),
}
ARM_TYPES = {
    "EXPERIMENTAL": ("experimental", "Experimental"),
    "ACTIVE_COMPARATOR": ("active-comparator", "Active Comparator"),
    "PLACEBO_COMPARATOR": ("placebo-comparator", "Placebo Comparator"),
    "SHAM_COMPARATOR": ("sham-comparator", "Sham Comparator"),
    "NO_INTERVENTION": ("no-intervention", "No Intervention"),
    "OTHER": ("other-arm-type", "Other Arm Type"),
}
OFFICIAL_ROLES = {
    "PRINCIPAL_INVESTIGATOR": "primary-investigator",
    "STUDY_DIRECTOR": "study-director",
    "STUDY_CHAIR": "study-chair",
}
ORG_CLASSES = {"INDUSTRY": "industry", "NIH": "nih", "FED": "government", "OTHER_GOV": "government"}
EU_CT_NUMBER = re.compile(r"^\d{4}-5\d{5}-\d{2}(-\d{2})?$")  # CTIS: YYYY-5NNNNN-CC(-NN)
EUDRACT_NUMBER = re.compile(r"^\d{4}-[0-4]\d{5}-\d{2}$")


def research_study(study: Mapping[str, Any]) -> dict[str, Any]:
    protocol = study["protocolSection"]
    ident = _module(protocol, "identificationModule")
    status = _module(protocol, "statusModule")
    design = _module(protocol, "designModule")
    nct = ident["nctId"]
    rs: dict[str, Any] = {"resourceType": "ResearchStudy"}
    locations = _locations(protocol)
    rs["identifier"] = _identifiers(ident)
    rs["title"] = _text(ident.get("briefTitle")) or _text(ident.get("officialTitle")) or nct
    labels = [
        _label("official", "Official title", ident.get("officialTitle")),
        _label("acronym", "Acronym", ident.get("acronym")),
    ]
    if any(labels):
        rs["label"] = [lab for lab in labels if lab]
    rs["relatedArtifact"] = [
        {
            "type": "derived-from",
            "label": "ClinicalTrials.gov record",
            "document": {"url": f"https://clinicaltrials.gov/study/{nct}", "contentType": "text/html"},
        }
    ]
    rs["status"] = "active"  # publication status of this resource; recruitment is progressStatus
    last_update = _text(status.get("lastUpdateSubmitDate"))
    if last_update:
        rs["date"] = last_update
    purpose = design.get("designInfo", {}).get("primaryPurpose")
    if purpose in PURPOSES:
        code, display = PURPOSES[purpose]
        rs["primaryPurposeType"] = {"coding": [_coding(s, code, display) for s in PURPOSE_SYSTEMS]}
    elif purpose:
        rs["primaryPurposeType"] = {"text": _words(purpose)}
    phases = tuple(design.get("phases") or ())
    if phases in PHASES:
        code, display = PHASES[phases]
        rs["phase"] = {"coding": [_coding(PHASE_SYSTEM, code, display)], "text": display}
    elif phases:
        rs["phase"] = {"text": "/".join(_words(p) for p in phases)}
    study_design = _study_design(design)
    if study_design:
        rs["studyDesign"] = study_design
    focus = [
        {"concept": {"text": _text(i.get("name"))}}
        for i in _list(protocol, "armsInterventionsModule", "interventions")
        if _text(i.get("name"))
    ]
    if focus:
        rs["focus"] = focus
    conditions = _conditions(protocol, study.get("derivedSection", {}))
    if conditions:
        rs["condition"] = conditions
    keywords = [{"text": k.strip()} for k in _list(protocol, "conditionsModule", "keywords") if _text(k)]
    if keywords:
        rs["keyword"] = keywords
    regions = sorted({country for _, country in locations if country})
    if regions:
        rs["region"] = [{"text": country} for country in regions]
    summary = _text(_module(protocol, "descriptionModule").get("briefSummary"))
    if summary:
        rs["descriptionSummary"] = summary
    description = _text(_module(protocol, "descriptionModule").get("detailedDescription"))
    if description:
        rs["description"] = description
    period = {
        k: v
        for k, v in (
            ("start", _date(status.get("startDateStruct"))),
            ("end", _date(status.get("completionDateStruct"))),
        )
        if v
    }
    if period and _period_ok(period):
        rs["period"] = period
    if locations:
        rs["site"] = [{"display": display} for display, _ in locations]
    classifiers = _classifiers(protocol)
    if classifiers:
        rs["classifier"] = classifiers
    parties = _parties(protocol)
    if parties:
        rs["associatedParty"] = parties
    rs["progressStatus"] = _progress(status)
    why = _text(status.get("whyStopped"))
    if why:
        rs["whyStopped"] = {"text": why}
    recruitment = _recruitment(design)
    if recruitment:
        rs["recruitment"] = recruitment
    groups = _comparison_groups(protocol)
    if groups:
        rs["comparisonGroup"] = groups
    outcomes = _outcomes(protocol)
    if outcomes:
        rs["outcomeMeasure"] = outcomes
    return rs


def _identifiers(ident: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids: list[dict[str, Any]] = [{"use": "official", "system": NCT_SYSTEM, "value": ident["nctId"]}]
    org_id = _text(ident.get("orgStudyIdInfo", {}).get("id"))
    if org_id:
        entry: dict[str, Any] = {
            "use": "secondary",
            "type": {"text": "Organization study ID"},
            "value": org_id,
        }
        org = _text(ident.get("organization", {}).get("fullName"))
        if org:
            entry["assigner"] = {"display": org}
        ids.append(entry)
    for info in ident.get("secondaryIdInfos") or ():
        value = _text(info.get("id"))
        if not value:
            continue
        kind = info.get("type") or ""
        domain = _text(info.get("domain"))
        entry = {"use": "secondary", "value": value}
        eu_domain = bool(domain and re.search(r"CTIS|EU CT|EU Trial", domain, re.IGNORECASE))
        if kind == "CTIS" or eu_domain or (kind != "EUDRACT_NUMBER" and EU_CT_NUMBER.match(value)):
            entry["system"] = EU_CT_SYSTEM
            entry["type"] = {"text": "EU CT number"}
        elif kind == "EUDRACT_NUMBER" or EUDRACT_NUMBER.match(value):
            entry["type"] = {"text": "EudraCT number"}
        else:
            entry["type"] = {"text": domain or _words(kind) or "Secondary ID"}
        if domain:
            entry["assigner"] = {"display": domain}
        ids.append(entry)
    return ids


def _label(code: str, display: str, value: Any) -> dict[str, Any] | None:
    text = _text(value)
    if not text:
        return None
    return {"type": {"coding": [_coding(TITLE_TYPE_SYSTEM, code, display)]}, "value": text}


def _study_design(design: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    info = design.get("designInfo") or {}
    study_type = design.get("studyType")
    if study_type in STUDY_TYPES:
        code, display = STUDY_TYPES[study_type]
        out.append({"coding": [_coding(DESIGN_SYSTEM, code, display)]})
    elif study_type:
        out.append({"text": f"Study type: {_words(study_type)}"})
    allocation = info.get("allocation")
    if allocation in ALLOCATIONS:
        code, display = ALLOCATIONS[allocation]
        out.append({"coding": [_coding(DESIGN_SYSTEM, code, display)]})
    for key, label in (
        ("interventionModel", "Intervention model"),
        ("observationalModel", "Observational model"),
        ("timePerspective", "Time perspective"),
    ):
        if info.get(key):
            out.append({"text": f"{label}: {_words(info[key])}"})
    masking = info.get("maskingInfo") or {}
    if masking.get("masking"):
        out.append({"text": f"Masking: {_words(masking['masking'])}"})
    for who in masking.get("whoMasked") or ():
        if who in WHO_MASKED:
            code, display = WHO_MASKED[who]
            out.append({"coding": [_coding(DESIGN_SYSTEM, code, display)]})
        else:
            out.append({"text": f"Masked: {_words(who)}"})
    return out


def _conditions(protocol: Mapping[str, Any], derived: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each listed condition as text; the MeSH terms the registry derived are attached to the
    condition of the same name, or added on their own (the registry does not pair them)."""
    out: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for name in _list(protocol, "conditionsModule", "conditions"):
        text = _text(name)
        if text and text.lower() not in by_name:
            concept: dict[str, Any] = {"text": text}
            by_name[text.lower()] = concept
            out.append(concept)
    for mesh in (derived.get("conditionBrowseModule") or {}).get("meshes") or ():
        code, term = _text(mesh.get("id")), _text(mesh.get("term"))
        if not code:
            continue
        coding = _coding(MESH_SYSTEM, code, term)
        target = by_name.get((term or "").lower())
        if target is not None:
            target.setdefault("coding", []).append(coding)
        else:
            out.append({"coding": [coding], "text": term or code})
    return out


def _locations(protocol: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """Sites as display-only references ("facility, city, state, country") and their countries.

    Withdrawn sites are left out: they are no longer sites. Contained Locations were tried: big
    trials list hundreds of sites and the contained-resource invariant (dom-3) makes validating
    such a ResearchStudy take seconds; the display keeps what a coordinator needs.
    """
    out: list[tuple[str, str | None]] = []
    for loc in _list(protocol, "contactsLocationsModule", "locations"):
        if loc.get("status") == "WITHDRAWN":
            continue
        parts = [_text(loc.get(k)) for k in ("facility", "city", "state", "country")]
        display = ", ".join(dict.fromkeys(p for p in parts if p))
        if display:
            out.append((display, _text(loc.get("country"))))
    return out


def _classifiers(protocol: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    oversight = _module(protocol, "oversightModule")
    if oversight.get("isFdaRegulatedDrug") is True:
        out.append({"coding": [_coding(CLASSIFIER_SYSTEM, "fda-regulated-drug", "FDA regulated drug")]})
    if oversight.get("isFdaRegulatedDevice") is True:
        out.append({"coding": [_coding(CLASSIFIER_SYSTEM, "fda-regulated-device", "FDA regulated device")]})
    healthy = _module(protocol, "eligibilityModule").get("healthyVolunteers")
    if isinstance(healthy, bool):
        # A property of the study population, not a per-patient test: published here, not as a criterion.
        out.append({"text": "Accepts healthy volunteers" if healthy else "Does not accept healthy volunteers"})
    return out


def _parties(protocol: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sponsors = _module(protocol, "sponsorCollaboratorsModule")
    lead = sponsors.get("leadSponsor") or {}
    if _text(lead.get("name")):
        out.append(_party(lead["name"], "lead-sponsor", lead.get("class")))
    for collaborator in sponsors.get("collaborators") or ():
        if _text(collaborator.get("name")):
            out.append(_party(collaborator["name"], "collaborator", collaborator.get("class")))
    responsible = sponsors.get("responsibleParty") or {}
    if responsible.get("type") == "SPONSOR_INVESTIGATOR" and _text(responsible.get("investigatorFullName")):
        out.append(_party(responsible["investigatorFullName"], "sponsor-investigator", None))
    for official in _list(protocol, "contactsLocationsModule", "overallOfficials"):
        role = OFFICIAL_ROLES.get(official.get("role", ""))
        name = _text(official.get("name"))
        if role and name:
            affiliation = _text(official.get("affiliation"))
            out.append(_party(f"{name} ({affiliation})" if affiliation else name, role, None))
    return out


def _party(name: str, role: str, org_class: Any) -> dict[str, Any]:
    party: dict[str, Any] = {
        "name": name.strip(),
        "role": {"coding": [{"system": PARTY_ROLE_SYSTEM, "code": role}]},
    }
    if org_class in ORG_CLASSES:
        code = ORG_CLASSES[org_class]
        party["classifier"] = [{"coding": [{"system": PARTY_ORG_SYSTEM, "code": code}]}]
    return party


def _progress(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    overall = status.get("overallStatus")
    if overall in OVERALL_STATUS:
        code, display = OVERALL_STATUS[overall]
        state: dict[str, Any] = {"coding": [_coding(STATUS_SYSTEM, code, display)]}
    else:
        state = {"text": f"{_words(overall or 'unknown')} status (ClinicalTrials.gov)"}
    entries: list[dict[str, Any]] = [{"state": state, "actual": True}]
    # Milestones: `actual` says whether the date happened or is anticipated (ESTIMATED). Primary
    # completion is a data-collection milestone with no R5 state of its own: left out.
    for key, code, display, edge in (
        ("startDateStruct", "active", "Active", "start"),
        ("completionDateStruct", "completed", "Completed", "end"),
    ):
        date = _date(status.get(key))
        if date:
            entries.append(
                {
                    "state": {"coding": [_coding(STATUS_SYSTEM, code, display)]},
                    "actual": (status.get(key) or {}).get("type") == "ACTUAL",
                    "period": {edge: date},
                }
            )
    return entries


def _recruitment(design: Mapping[str, Any]) -> dict[str, Any]:
    info = design.get("enrollmentInfo") or {}
    count = info.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return {}
    return {"actualNumber": count} if info.get("type") == "ACTUAL" else {"targetNumber": count}


def _comparison_groups(protocol: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Arms. intendedExposure must reference an EvidenceVariable, which the registry does not give:
    the intervention names go into the description instead."""
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for n, arm in enumerate(_list(protocol, "armsInterventionsModule", "armGroups"), start=1):
        name = _text(arm.get("label")) or f"Arm {n}"
        group: dict[str, Any] = {"linkId": arm_link_id(name, n, used), "name": name}
        if arm.get("type") in ARM_TYPES:
            code, display = ARM_TYPES[arm["type"]]
            group["type"] = {"coding": [_coding(ARM_TYPE_SYSTEM, code, display)]}
        parts = [_text(arm.get("description"))]
        interventions = [_text(i) for i in arm.get("interventionNames") or () if _text(i)]
        if interventions:
            parts.append("Interventions: " + "; ".join(i for i in interventions if i))
        description = "\n\n".join(p for p in parts if p)
        if description:
            group["description"] = description
        out.append(group)
    return out


def arm_link_id(label: str, position: int, used: set[str]) -> str:
    """A readable, stable id (FHIR `id`: [A-Za-z0-9-.]{1,64}) from the arm label."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:56].strip("-") or f"arm-{position}"
    candidate = slug
    while candidate in used:
        candidate = f"{slug}-{position}"
        position += 1000
    used.add(candidate)
    return candidate


def _outcomes(protocol: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, code, display in (
        ("primaryOutcomes", "primary", "Primary"),
        ("secondaryOutcomes", "secondary", "Secondary"),
        ("otherOutcomes", "exploratory", "Exploratory"),
    ):
        for outcome in _list(protocol, "outcomesModule", key):
            measure = _text(outcome.get("measure"))
            if not measure:
                continue
            entry: dict[str, Any] = {
                "name": measure,
                "type": [{"coding": [_coding(OBJECTIVE_TYPE_SYSTEM, code, display)]}],
            }
            parts = [_text(outcome.get("description"))]
            if _text(outcome.get("timeFrame")):
                parts.append(f"Time frame: {_text(outcome.get('timeFrame'))}")
            description = "\n\n".join(p for p in parts if p)
            if description:
                entry["description"] = description
            out.append(entry)
    return out


def _period_ok(period: Mapping[str, str]) -> bool:
    # per-1: start <= end. Partial dates compare correctly as strings at the same precision.
    start, end = period.get("start"), period.get("end")
    return not (start and end and len(start) == len(end) and start > end)


def _date(struct: Any) -> str | None:
    if not isinstance(struct, Mapping):
        return None
    value = _text(struct.get("date"))
    if value and re.match(r"^\d{4}(-\d{2}(-\d{2})?)?$", value):
        return value
    return None


def _coding(system: str, code: str, display: str | None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _module(protocol: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = protocol.get(name)
    return value if isinstance(value, Mapping) else {}


def _list(protocol: Mapping[str, Any], module: str, key: str) -> list[Any]:
    value = _module(protocol, module).get(key)
    return [v for v in value if v is not None] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None


def _words(code: str) -> str:
    """RECRUITING_STATUS → Recruiting status (registry enum to words)."""
    return code.replace("_", " ").capitalize()

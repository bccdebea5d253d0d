"""Rule-based structuring of one eligibility criterion's wording into mapping rule keys.

Rule: precision over recall. A pattern is encoded only when the words around it cannot change its
meaning (no exception, condition, alternative, transfusion, cohort, "unless"...); an inclusion may
keep a not-computable remainder inside `all_of` (the encoded part is then a necessary condition),
an exclusion is encoded only when nothing but the recognised findings is left. Everything else is
returned with the reason it stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from service.importer.rules.common import (
    CONDITIONAL,
    FILLER,
    INVESTIGATOR_JUDGEMENT,
    NUMERIC_THRESHOLD,
    SCREENING,
    SEXES,
    SUPPORT,
    TIME_OF_CONSENT,
    WITHIN_DAYS,
    Atom,
    Structured,
    blank,
    window_positions,
    windows_in,
)
from service.importer.rules.findings import (
    VIRUS_CODES,
    find_brain_metastases,
    find_cardiovascular,
    find_infection,
    find_named_conditions,
    find_negative_pregnancy_test,
    find_pregnancy,
    find_viruses,
    qualified_cns_exclusion,
    treated_autoimmune_exclusion,
)
from service.importer.rules.labs import ANALYTES, TRANSAMINASES, find_labs, lab_exceptions, with_exception
from service.importer.rules.oncology import (
    CONFIRMATION,
    GENE_VARIANT,
    LIVE_VACCINE,
    NEGATION,
    ONCOLOGY_KEYS,
    POSITIVE_GENE,
    confirmation_is_the_record,
    find_biomarkers,
    find_current_steroids,
    find_diagnosis,
    find_extent,
    find_her2_status,
    find_lung_and_transplant,
    find_named_drugs,
    find_pdl1,
    find_progression_after,
    find_stage,
    find_steroid_dose,
    find_therapies,
    other_malignancy_exclusion,
    pneumonitis_exclusion,
)
from service.importer.rules.scores import (
    find_age,
    find_body_weight,
    find_ecog,
    find_karnofsky,
    find_life_expectancy,
    find_sex,
)

Rule = dict[str, Any]  # one mapping rule key and its body, e.g. {"observation": {...}}


# --- the decision ------------------------------------------------------------------------------


def _therapies(text: str) -> list[Atom]:
    windows = window_positions(text)
    return find_therapies(text, windows) + find_steroid_dose(text, windows)


# Washouts an inclusion names are almost always the time since them ("recovered from major surgery
# within 4 weeks", "at least 28 days since anti-cancer drugs"): never read as a required receipt.
WASHOUT_ONLY = frozenset({"major-surgery", "anticancer", "immunosuppressant"})


def _inclusion_therapies(text: str) -> list[Atom]:
    return [a for a in _therapies(text) if a.key not in WASHOUT_ONLY and not a.key.endswith("-hl")]


INCLUSION_FINDERS: tuple[Callable[[str], list[Atom]], ...] = (
    find_sex,
    find_age,
    find_ecog,
    find_karnofsky,
    find_life_expectancy,
    find_body_weight,
    find_diagnosis,
    find_extent,
    find_stage,
    find_biomarkers,
    find_her2_status,
    find_pdl1,
    find_negative_pregnancy_test,
    find_progression_after,
    _inclusion_therapies,
)
EXCLUSION_FINDERS: tuple[Callable[[str], list[Atom]], ...] = (
    find_ecog,
    find_karnofsky,
    find_life_expectancy,
    find_body_weight,
    find_pregnancy,
    find_viruses,
    find_brain_metastases,
    find_biomarkers,
    find_her2_status,
    _therapies,
    find_lung_and_transplant,
    find_infection,
    find_pdl1,
    find_named_drugs,
    find_cardiovascular,
    find_current_steroids,
    find_named_conditions,
)


def structure(
    text: str,
    exclusion: bool,
    context_reason: str | None = None,
    heading_window: int | None = None,
    study_cancer: tuple[str, ...] | None = None,
) -> Structured:
    """Structure one criterion (see `_structure`), keeping a condition of the measurement as a
    not-computable part beside the threshold:

    - a saturation "on room air": on supplemental oxygen it reads higher, so a recorded value below the
      bound settles it either way and one above it stays unknown. An exclusion "SpO2 < 95% on room air"
      is any_of [SpO2 < 95%, unknown], an inclusion "≥ 92% on room air" all_of [SpO2 ≥ 92%, unknown];
    - a transfusion an inclusion permits ("Hb > 8 g/dL; subjects may be transfused to reach this
      cut-off"): a value above the bound meets it, one below may still be raised, so any_of [Hb, unknown].
    """
    confirmation = None if exclusion else CONFIRMATION.search(text)
    if confirmation is not None:
        # "Histologically confirmed HCC": the recorded diagnosis is computed, how it was made is not (an HCC
        # may be diagnosed on imaging alone, blind check seed 5150 #9): the pathology is confirmed at screening.
        result = _structure(text, exclusion, context_reason, heading_window, study_cancer)
        if result.rule is None or not _names_a_diagnosis(result.rule):
            return result
        if confirmation_is_the_record(confirmation.group(0), _diagnosis_labels(result.rule)):
            return result
        how = {"key": "confirmation", "text": confirmation.group(0).strip(" ;,.()"), "screening": True}
        return _beside(result.rule, "all_of", how, {"key": "dx", "text": text})
    caveats = (
        (ROOM_AIR if SATURATION.search(text) else None, "any_of" if exclusion else "all_of", ROOM_AIR_REASON),
        (None if exclusion else TRANSFUSION_ALLOWED, "any_of", TRANSFUSION_REASON),
    )
    for pattern, combination, reason in caveats:
        found = pattern.search(text) if pattern else None
        if found is None:
            continue
        blanked = text[: found.start()] + " " * len(found.group(0)) + text[found.end() :]
        result = _structure(blanked, exclusion, context_reason, heading_window, study_cancer)
        if result.rule is None:
            return result
        caveat = {"key": "caveat", "text": found.group(0).strip(" ;,.()"), "not_computable": reason}
        return _beside(result.rule, combination, caveat, {"key": "value", "text": text})
    return _structure(text, exclusion, context_reason, heading_window, study_cancer)


def _beside(rule: dict[str, Any], combination: str, part: dict[str, Any], head: dict[str, Any]) -> Structured:
    """`part` added to `rule` under `combination`: beside its children when the rule already is that
    combination, else beside the rule itself (named by `head`)."""
    children = rule[combination] if set(rule) == {combination} else [{**head, **rule}]
    return _combine(combination, [*children, part])


def _diagnosis_labels(rule: dict[str, Any]) -> list[str]:
    """The labels of the conditions a rule names, at any depth."""
    children = [child for key in ("all_of", "any_of") for child in rule.get(key, [])]
    own = [rule["condition"]["label"]] if "condition" in rule else []
    return own + [label for child in children for label in _diagnosis_labels(child)]


def _names_a_diagnosis(rule: dict[str, Any]) -> bool:
    children = [child for key in ("all_of", "any_of") for child in rule.get(key, [])]
    return "condition" in rule or any(child.get("key") == "dx" or _names_a_diagnosis(child) for child in children)


ROOM_AIR_REASON = "whether the saturation was measured on room air (on supplemental oxygen it reads higher)"
TRANSFUSION_REASON = "whether a transfusion the protocol permits would raise the value to the bound"


SATURATION = re.compile(r"oxygen saturation|pulse oximetry|\bSpO2\b|\bSaO2\b", re.IGNORECASE)
ROOM_AIR = re.compile(r"\s*\b(?:on|at|in|breathing)\s+(?:ambient\s+)?room air\b", re.IGNORECASE)


def _structure(
    text: str,
    exclusion: bool,
    context_reason: str | None = None,
    heading_window: int | None = None,
    study_cancer: tuple[str, ...] | None = None,
) -> Structured:
    """Structure one criterion. `context_reason` (cohort heading, OR sibling...) forbids encoding;
    `heading_window` is the lookback window a list heading states for the items under it;
    `study_cancer` the codes of the trial's own cancer ("another malignancy" is any other).

    The rule is a mapping rule (`{"observation": {...}}`) or a combination whose children are
    proto-criteria `{"key", "text", <rule key>: ...}`: the caller gives them ids.
    """
    if context_reason:
        return Structured(None, context_reason)
    # A reason ("because of the potentially dangerous effects on the fetus or infant") is no criterion,
    # nor are its words list items; blanked (same length) so offsets hold.
    text = re.sub(r"\bbecause\b[^.;]*", lambda m: " " * len(m.group(0)), text, flags=re.IGNORECASE)
    # "LVEF ≥ 50% measured by MUGA or echocardiogram": how it is measured, not alternative criteria.
    text = CARDIAC_IMAGING_METHOD.sub(lambda m: " " * len(m.group(0)), text)
    # "QTc > 470 ms on the screening ECG": where a single QTc is read (a mean of several is another measure).
    text = ECG_METHOD.sub(lambda m: " " * len(m.group(0)), text)
    # "(see Appendix 3)", and how a positive urine test is confirmed: references and procedure, no criterion.
    text = PROCEDURE_NOTE.sub(lambda m: " " * len(m.group(0)), text)
    # "Uncontrolled hypertension (systolic > 150 mmHg or diastolic > 100 mmHg)": the readings define the term.
    text = HYPERTENSION_DEFINED.sub(lambda m: " " * len(m.group("term")) + m.group(0)[len(m.group("term")) :], text)
    # An inclusion's relaxed bound ("≤ 5 × ULN if liver metastases") joins its threshold below. In an
    # exclusion the same words would need the reverse logic (a strict bound that excludes only without
    # the condition): they stay a qualifying clause there, and the criterion text.
    exceptions = [] if exclusion else lab_exceptions(text)
    text = blank(text, [(e.start, e.end) for e in exceptions])
    if GENE_VARIANT.search(text) or POSITIVE_GENE.search(text):
        # "KRAS G12C mutation in tumor tissue or circulating tumor DNA": where it was found, no alternative.
        text = SPECIMEN.sub(lambda m: " " * len(m.group(0)), text)
    if re.search(LIVE_VACCINE, text, re.IGNORECASE):
        # "Administration of killed vaccines is allowed" restates that only live vaccines count: no exception.
        text = NON_LIVE_VACCINES_ALLOWED.sub(lambda m: " " * len(m.group(0)), text)
    if exclusion:
        for whole in (qualified_cns_exclusion, treated_autoimmune_exclusion):
            rule = whole(text)
            if rule is not None:
                return Structured(rule, children=rule["all_of"])
        rule = pneumonitis_exclusion(text) or other_malignancy_exclusion(text, study_cancer)
        if rule is not None:
            return Structured(rule, children=rule.get("any_of") or rule.get("all_of", []))
    finders = EXCLUSION_FINDERS if exclusion else INCLUSION_FINDERS
    atoms = [a for finder in finders for a in finder(text)]
    lab_atoms, refused = find_labs(text, text)
    atoms = _without_overlaps(atoms + lab_atoms)
    if not atoms:
        if SCREENING.search(TIME_OF_CONSENT.sub(" ", text)) and not NUMERIC_THRESHOLD.search(text):
            return Structured(None, screening=True)
        if OTHER_STUDY.search(text) and not OTHER_THERAPY.search(text) and not NUMERIC_THRESHOLD.search(text):
            return Structured(None, screening=True)
        return Structured(None, refused[0] if refused else "free text: no pattern the importer encodes safely")
    judged = TIME_OF_CONSENT.sub(" ", text)
    if all(a.key == "life-expectancy" for a in atoms):
        judged = INVESTIGATOR_JUDGEMENT.sub(" ", judged)  # a life expectancy is the clinician's estimate anyway
    if SCREENING.search(judged):
        return Structured(None, "mixes a screening confirmation with data: review by hand")
    if refused:
        return Structured(None, refused[0])
    blocked = _blocked(text, exclusion)
    if blocked is None or (exclusion and blocked):
        return Structured(None, "the wording has a condition, exception or support clause the importer does not encode")
    window = _window(text) or heading_window
    if window:
        for atom in atoms:
            if "observation" in atom.rule:
                atom.rule["observation"]["window_days"] = window
            elif atom.key == "hcg" and windows_in(text[atom.end : atom.end + 12]) == {window}:
                # "a positive pregnancy test within 72 hours": the window said of the test itself, not of a
                # plan ("or planning to become pregnant within 6 months")
                atom.rule["test"]["window_days"] = window
    if exceptions:
        relaxed = [with_exception(a, exceptions, text) if a in lab_atoms else a for a in atoms]
        if any(a is None for a in relaxed) or sum(a.rule.keys() == {"any_of"} for a in relaxed if a) < len(exceptions):
            return Structured(None, "a relaxed lab bound the importer cannot tie to its threshold")
        atoms = [a for a in relaxed if a is not None]
    atoms = [a for a in atoms if not _negated_or_conditional(text, a)]
    if not atoms:
        return Structured(None, "the findings sit in a negated or conditional sentence the importer does not encode")
    if exclusion:
        if EXCEPTION_WORDS.search(text):
            return Structured(None, "the exclusion names exceptions the importer does not encode")
        return _exclusion(text, atoms)
    return _inclusion(text, [a for a in atoms if a.key.split("-")[0] not in blocked], bool(blocked))


def _negated_or_conditional(text: str, atom: Atom) -> bool:
    """An oncology finding after a negation or inside a conditional sentence is not what the text requires."""
    if atom.key not in ONCOLOGY_KEYS:
        return False
    for start, end in _clauses(text):
        if start <= atom.start < end:
            sentence = text[start:end]
            before = text[start : atom.start]
            return bool(
                NEGATION.search(before)
                or CONDITIONAL.search(sentence)
                or EXCEPTION_WORDS.search(sentence)
                or PERMISSIVE.search(sentence)
            )
    return False


# "Prior taxane therapy is not required", "Patients may have received a PARP inhibitor": a permission, no
# requirement.
PERMISSIVE = re.compile(
    r"\bmay\b|\bnot\s+(?:required|necessary|mandatory|needed)\b|\boptional\b|\bcan\s+(?:have|be)\b", re.IGNORECASE
)


_CARDIAC_IMAGING = (
    r"(?:an?\s+)?(?:multiple[- ]gated acquisition|multigated acquisition|MUGA|echocardiogra(?:m|phy)|ECHO)"
    r"(?:\s+scans?)?(?:\s*\((?:MUGA|ECHO)\))?"
)
CARDIAC_IMAGING_METHOD = re.compile(
    rf"\b(?:as\s+)?(?:measured|assessed|determined|evaluated|documented)\s+(?:by|on|with|using)\s+{_CARDIAC_IMAGING}"
    rf"(?:\s*(?:,|or|and/or)\s*{_CARDIAC_IMAGING})*",
    re.IGNORECASE,
)
# The specimen a variant was found in: tissue, blood, plasma, ctDNA (a liquid biopsy counts as much).
_SAMPLE = (
    r"(?:(?:archival|fresh|primary|metastatic)\s+)?(?:tumou?r\s+)?(?:tissue|biopsy|specimens?|samples?)"
    r"|(?:peripheral\s+)?blood|plasma|liquid biopsy"
    r"|(?:circulating\s+)?tumou?r\s+(?:DNA|deoxyribonucleic acid)(?:\s*\((?:ct)?DNA\))?|ctDNA|cfDNA"
)
SPECIMEN = re.compile(
    rf"\b(?:as\s+)?(?:detected\s+|determined\s+|identified\s+|confirmed\s+)?(?:in|from|on|by)\s+(?:the\s+)?(?:{_SAMPLE})"
    rf"(?:\s*(?:,|or|and/or|and)\s*(?:{_SAMPLE}))*",
    re.IGNORECASE,
)
# A transfusion the protocol permits, said on its own (no window, no "without", no exception).
TRANSFUSION_ALLOWED = re.compile(
    r"\(\s*(?:transfusions?\s+(?:is|are)\s+(?:allowed|permitted|acceptable)|may have been transfused"
    r"|(?:with or without|after) (?:a\s+)?(?:blood\s+|red (?:blood )?cell\s+)?transfusions?)\s*\)"
    r"|[;,.]?\s*(?:\b(?:red (?:blood )?cell\s+|blood\s+)?transfusions?\s+(?:is|are)\s+(?:allowed|permitted)"
    r"|\b(?:subjects|patients|participants)\s+may\s+(?:be|have been)\s+transfused(?:\s+to\s+(?:reach|meet|achieve)"
    r"\s+th(?:is|e)\s+(?:cut-?off|level|threshold|value|requirement|criterion))?)\s*[.;]?(?=\s*$)",
    re.IGNORECASE,
)
PROCEDURE_NOTE = re.compile(
    r"\(\s*(?:see|refer to|as (?:defined|described) in|per)\s+(?:the\s+)?(?:protocol\s+)?"
    r"(?:appendix|section|table|attachment|annex)\s*[\w.]{1,6}\s*\)"
    # a dipstick that triggers the 24-hour collection the threshold is read from (lenvatinib protocols)
    r"|\bNote:?\s*(?:participants|patients|subjects)\s+with\s+proteinuria\s*[≥>]=?\s*[1-4]\+\s*(?:\([^()]{0,20}\)\s*)?"
    r"on\s+(?:a\s+)?urine\s+dipstick(?:\s+testing)?(?:\s*\(urinalysis\))?\s+will\s+undergo\s+(?:a\s+)?24[- ]hour\s+"
    r"urine\s+collection\s+for\s+(?:the\s+)?quantitative\s+assessment\s+of\s+proteinuria\s*\.?(?=\s*$)"
    # the confirmation step of a urine test, nothing else in the sentence (an exception beside it must stay)
    r"|\bif the urine (?:pregnancy )?test is positive or (?:cannot|can ?not) be confirmed as negative,?\s*"
    r"a serum pregnancy test will be (?:required|performed)\s*[.;]?(?=\s*$)",
    re.IGNORECASE,
)
# A hypertension term followed at once by the blood pressure bounds that define it.
HYPERTENSION_DEFINED = re.compile(
    r"(?P<term>\b(?:uncontrolled|poorly controlled|inadequately controlled|not well controlled)\s+"
    r"(?:arterial\s+)?hypertension\s*(?:,\s*)?(?:defined as|i\.e\.,?|:)?)"
    r"(?=\s*\(?\s*(?:systolic|diastolic|SBP|DBP|blood pressure|BP)\b)",
    re.IGNORECASE,
)
ECG_METHOD = re.compile(
    r"\b(?:on|by|at)\s+(?:an?\s+|the\s+)?(?:(?:screening|baseline|resting|single|standard)\s+)*"
    r"(?:12-lead\s+)?(?:ECG|EKG|electrocardiogram)\b(?!s)(?:\s*\((?:ECG|EKG)\))?",
    re.IGNORECASE,
)
# Taking part in another interventional study, or receiving an investigational agent, is known to the
# site, seldom to the record (investigational products carry no code): a screening confirmation.
OTHER_STUDY = re.compile(
    r"\b(?:participat\w*|enrol+ed|co-?enrol+ed)\b[^.;]{0,60}?\b(?:(?:clinical|interventional|investigational|"
    r"another|other|therapeutic) (?:clinical )?(?:study|studies|trials?)|study of an investigational)"
    r"|\b(?:receiving|received|concurrent|concomitant|treatment with|therapy with|use of)\b[^.;]{0,30}?"
    r"\binvestigational (?:agents?|products?|drugs?|therap(?:y|ies)|devices?|medicinal products?)",
    re.IGNORECASE,
)
# Another therapy named beside it is data the record holds: such a criterion stays text.
OTHER_THERAPY = re.compile(
    r"anti-?cancer|anti-?tumou?r|antineoplastic|chemotherap|radiotherap|radiation|surgery|immunotherap|"
    r"hormon|biologic|targeted|systemic",
    re.IGNORECASE,
)
# A sentence allowing vaccines that are not live (killed, inactivated, "excluding live vaccines").
NON_LIVE_VACCINES_ALLOWED = re.compile(
    r"(?:(?<=[.;])|^)[^.;]*\b(?:killed|inactivated|non-live|not live|excluding live|do(?:es)? not contain live)\b"
    r"[^.;]*\bvaccin[^.;]*\b(?:are|is)\s+(?:allowed|permitted)\b[^.;]*[.;]?"
    r"|(?:(?<=[.;])|^)[^.;]*\b(?:killed|inactivated|non-live)\s+vaccin[^.;]*\b(?:are|is)\s+(?:allowed|permitted)\b[^.;]*[.;]?",
    re.IGNORECASE,
)
CHILDBEARING_WORDS = frozenset({"child-bearing", "childbearing", "potential", "wocbp", "reproductive"})
LIST_SEPARATOR = re.compile(
    r"\s*(?:,\s*(?:and/)?or\b|\band/or\b|\bor\b|,|(?<![\d.])\.\s+(?=[A-Z])|[;\n])\s*", re.IGNORECASE
)
# An exclusion that names who stays eligible ("palliative radiotherapy is permitted") has an exception.
EXCEPTION_WORDS = re.compile(
    r"\b(?:allowed|permitted|eligible|acceptable|exempt|may (?:participate|be (?:enrolled|included|eligible)))\b",
    re.IGNORECASE,
)
# Severity words that narrow the finding they stand beside (and nothing else).
# "spinal cord compression due to metastatic disease": a cause narrows it the same way.
NARROWING = re.compile(
    r"poorly|symptomatic|severe|uncontrolled|refractory|recurrent|acute|chronic|due|metastatic|metastases|malignant|"
    r"malignancy|disease",
    re.IGNORECASE,
)
# Words that qualify a finding: a list item made of them narrows its neighbour, it is no alternative.
QUALIFYING = re.compile(
    r"\b(untreated|treated|symptomatic|asymptomatic|active|inactive|stable|unstable|progressive|progressing|"
    r"uncontrolled|controlled|requiring|required|clinically|significant|severe|mild|moderate|new|newly|"
    r"detectable|undetectable|unless|except|allowed|permitted|eligible)\b",
    re.IGNORECASE,
)


# Words that only narrow one finding to a part of it (a narrower exclusion is met only where the finding is).
# Not "controlled", "treated", "stable", "asymptomatic", "history" or "except": they turn it the other way.
NARROWING_ONLY = frozenset(
    {"symptomatic", "uncontrolled", "severe", "serious", "clinically", "significant", "relevant", "refractory"}
)


def _narrowing_qualifier(words: list[str]) -> str | None:
    lowered = [w.lower() for w in words]
    if lowered in (["poorly", "controlled"], ["not", "well", "controlled"]):
        return "poorly controlled"
    if lowered and all(w in NARROWING_ONLY for w in lowered):
        return " ".join(lowered)
    return None


# "Prior platinum-based chemotherapy for metastatic NSCLC": the setting a therapy was given in (advanced disease,
# not adjuvant or neoadjuvant) is in no medication record.
THERAPY_SETTING = re.compile(
    r"\s*\b(?:for|in)\s+(?:the\s+|their\s+)?(?:(?:locally\s+)?advanced|metastatic|recurrent|unresectable|stage\s+IV)"
    r"(?:\s*(?:,|/|or|and/or)\s*(?:(?:locally\s+)?advanced|metastatic|recurrent|unresectable|stage\s+IV))*"
    r"(?:\s+(?:NSCLC|non-small[- ]cell lung cancer|disease|cancer|setting))?\b",
    re.IGNORECASE,
)


def _exclusion(text: str, atoms: list[Atom]) -> Structured:
    """The findings (`_any_finding`); one therapy received in a named setting keeps the setting for the site."""
    setting = THERAPY_SETTING.search(text)
    body = atoms[0].rule.get("medication", {}) if len(atoms) == 1 else {}
    if setting and body and "within_days" not in body and not body.get("current"):
        inner = _any_finding(blank(text, [(setting.start(), setting.end())]), atoms)
        if inner.rule is None:
            return inner
        where = setting.group(0).strip()
        part = {"key": "setting", "text": where,
                "not_computable": f"whether it was given {where} (not as adjuvant or neoadjuvant therapy): the site "
                "confirms at screening"}  # fmt: skip
        return _beside(inner.rule, "all_of", part, {"key": atoms[0].key, "text": text})
    return _any_finding(text, atoms)


def _any_finding(text: str, atoms: list[Atom]) -> Structured:
    """Met when any recognised finding is present. The text is read as a list ("A, B or C"): an
    item holding a finding must say nothing else; an item without one (at least two words, none
    qualifying) becomes a not-computable alternative, so `any_of` is met only on a finding."""
    virus_only = all(a.key in VIRUS_CODES for a in atoms)
    pregnancy_only = all(a.key in ("pregnant", "breastfeeding", "hcg") for a in atoms)
    segments = _segments(text, atoms)
    rest: list[str] = []
    for n, (start, end) in enumerate(segments):
        inside = [a for a in atoms if start <= a.start < end]
        segment = text[start:end]
        if virus_only:
            # "Hepatitis B (defined as HBsAg reactive)": the one positive test that shows the infection. The
            # diagnosis decides; the test itself is the remainder added below (VIRUS_TEST_WORDING).
            segment = VIRUS_TEST_NAMED.sub(lambda m: " " * len(m.group(0)), segment)
        local = [Atom(a.start - start, a.end - start, a.key, a.rule, a.label) for a in inside]
        words = _leftover(segment, local)
        if pregnancy_only and inside:  # beside the finding only: "or women of childbearing potential" alone is a group
            # "Women of childbearing potential who are pregnant": only they can be; the qualifier adds nothing.
            words = [w for w in words if w.lower() not in CHILDBEARING_WORDS]
        if virus_only:
            # The condition rule counts active diagnoses: "active"/"chronic" infection says the same.
            words = [w for w in words if w.lower() not in ("active", "chronic", "acute", "seropositive")]
        if inside and words and len(segments) == 1 and len(atoms) == 1 and "condition" in atoms[0].rule:
            qualifier = _narrowing_qualifier(words)
            if qualifier:
                # "Symptomatic spinal cord compression", "Clinically significant ILD": the one finding qualified;
                # without it on record the exclusion is not met, with it whether it is that is for the site.
                reason = f"whether it is {qualifier} as the protocol means: the site confirms at screening"
                narrowed = {"key": "qualifier", "text": text.strip(), "not_computable": reason}
                return _combine("all_of", [_child(atoms[0], text), narrowed])
        if inside and words and n > 0 and all(QUALIFYING.fullmatch(w) or NARROWING.fullmatch(w) for w in words):
            # "MI, unstable angina, symptomatic congestive heart failure": a later list item's own qualifier
            # narrows its finding only (one before the list may qualify every item, so the first never counts
            # here): the item is an alternative the site checks, the others still decide.
            atoms = [a for a in atoms if a not in inside]
            rest.extend(words + [a.label.lower() for a in inside])
            continue
        if inside and words:
            return Structured(None, f"exclusion wording beyond the encoded findings ({_short(words)})")
        if not inside and words:
            if all(QUALIFYING.fullmatch(w) for w in words):
                return Structured(None, f"exclusion wording that may qualify the findings ({_short(words)})")
            rest.extend(words)
    if virus_only and VIRUS_TEST_WORDING.search(text):
        # "HBV positive", "HBsAg-positive carriers": a positive test with no diagnosis recorded would read
        # as "no hepatitis" (a wrong eligible); the test results are not encoded, so they stay unknown.
        rest.append("a positive test result or carrier state")
    elif virus_only and VIRUS_TEST_ASKED.search(text):
        # "The test should be performed within 28 days prior to the first dose": a positive test with no
        # coded diagnosis would pass, and an untested patient is not cleared.
        rest.append("the test it asks for")
    connectors = [_connector(text[a.end : b.start]) for a, b in zip(atoms, atoms[1:], strict=False)]
    # "Pregnant women and lactating females": both groups are excluded, the 'and' lists them.
    if ("and" in connectors and not pregnancy_only) or "?" in connectors:
        return Structured(None, "findings joined by 'and' in an exclusion: meaning unclear")
    children = [_child(a, text) for a in atoms]
    if rest:
        children.append(
            {
                "key": "rest",
                "text": text,
                "not_computable": f"the other findings of this list are not encoded ({_short(rest)})",
            }
        )
    return _combine("any_of", children)


# One test and its positive reading, in brackets, nothing else: not a quantity ("HBV DNA ≥ 500 IU/mL") nor two
# tests ("HBsAg positive and detectable HBV DNA"), which define a narrower infection than the diagnosis.
VIRUS_TEST_NAMED = re.compile(
    r"\(\s*(?:defined\s+(?:as|by)\s+)?(?:HBsAg|hepatitis\s+B\s+surface\s+antigen|HCV[- ]RNA|HBV[- ]DNA|anti-?HCV"
    r"(?:\s+(?:Ab|antibod(?:y|ies)))?|HCV\s+(?:Ab|antibod(?:y|ies))|HIV(?:[- ]?1/2)?\s+(?:Ab|antibod(?:y|ies)))"
    r"(?:\s+(?:is|are))?\s*(?:positive|reactive|detected|detectable|\+)?\s*\)",
    re.IGNORECASE,
)
VIRUS_TEST_ASKED = re.compile(r"\btest(?:s|ing)?\b|\bscreened\b|\bserolog", re.IGNORECASE)
VIRUS_TEST_WORDING = re.compile(
    r"\b(?:sero)?positiv|\bcarrier|\bantibod|\bantigen|\bHBsAg|\bHBcAb|\b(?:DNA|RNA)\b|\bviral load|\bdetectable",
    re.IGNORECASE,
)


def _segments(text: str, atoms: list[Atom]) -> list[tuple[int, int]]:
    """List items of an exclusion ("A, B, or C"); separators inside brackets or a finding do not split."""
    depth, level = [], 0
    for char in text:
        if char in "([（":
            level += 1
        depth.append(level)
        if char in ")]）":
            level = max(0, level - 1)
    out: list[tuple[int, int]] = []
    start = 0
    for m in LIST_SEPARATOR.finditer(text):
        if m.start() == m.end() or depth[m.start()] > 0 or any(a.start <= m.start() < a.end for a in atoms):
            continue  # inside brackets, or inside one finding ("anti-PD-1 or anti-PD-L1 antibody")
        if any(s.start() <= m.start() < s.end() for s in TREATMENT_START.finditer(text)):
            continue  # "before the first dose of durvalumab or tremelimumab": the reference point, no list
        if m.start() > start:
            out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    return [(a, b) for a, b in out if b > a]


def _inclusion(text: str, atoms: list[Atom], dropped: bool) -> Structured:
    """A conjunction of clauses: each clause's thresholds (or its 'or' alternatives) are necessary;
    what is not encoded becomes one not-computable child, so `all_of` can only fail on data."""
    if not atoms:
        return Structured(None, "the wording has a condition, exception or support clause the importer does not encode")
    children: list[dict[str, Any]] = []
    rest: list[str] = ["thresholds with a condition or exception"] if dropped else []
    rest_words: list[str] = ["(qualified", "thresholds)"] if dropped else []
    for start, end in _clauses(text):
        inside = [a for a in atoms if start <= a.start < end]
        clause = text[start:end]
        if not inside:
            if _leftover(clause, [], sex_matters=True):
                rest.append(clause.strip())
                rest_words.extend(_leftover(clause, [], sex_matters=True))
            continue
        local = [Atom(a.start - start, a.end - start, a.key, a.rule, a.label) for a in inside]
        connectors = [_connector(clause[a.end : b.start]) for a, b in zip(local, local[1:], strict=False)]
        leftover = _leftover(clause, local, sex_matters=True)
        outside = clause[: local[0].start] + " " + clause[local[-1].end :]
        if connectors and all(c == "or" for c in connectors):
            has_or = bool(re.search(r"\bor\b", SEXES.sub(" ", outside), re.IGNORECASE))
            if leftover or has_or:
                rest.append(clause.strip())
                rest_words.extend(leftover or ["or"])
                continue
            children.append(
                {
                    "key": local[0].key + "-or",
                    "text": clause.strip(" ,;:.；"),
                    "any_of": [_child(a, clause) for a in local],
                }
            )
            continue
        has_or = bool(re.search(r"\bor\b", _remainder(clause, local), re.IGNORECASE))
        if any(c in ("or", "?") for c in connectors) or has_or:
            rest.append(clause.strip())
            rest_words.extend(leftover or ["or"])
            continue
        children.extend(_child(a, clause) for a in local)
        if leftover:
            rest.append(clause.strip())
            rest_words.extend(leftover)
    if not children:
        return Structured(None, "the thresholds are alternatives mixed with other wording")
    if rest:
        words = rest_words
        children.append(
            {
                "key": "rest",
                "text": text,
                "not_computable": f"the rest of this criterion is not encoded ({_short(words)})",
            }
        )
    return _combine("all_of", children)


def _combine(combination: str, children: list[dict[str, Any]]) -> Structured:
    if all("not_computable" in child for child in children):
        return Structured(None, screening=True)  # nothing in it is data: the site confirms it
    if len(children) == 1:
        only = {k: v for k, v in children[0].items() if k not in ("key", "text")}
        return Structured(only)
    return Structured({combination: children}, children=children)


TRIGGERS = (
    (re.compile(r"gilbert", re.IGNORECASE), {"tbil"}),
    (re.compile(r"liver|hepatic|biliary|bile", re.IGNORECASE), {"ast", "alt", "tbil"}),
    (re.compile(r"anticoagula|warfarin|heparin", re.IGNORECASE), {"inr", "aptt", "pt"}),
    (
        re.compile(
            r"marrow|transfus|growth factor(?! receptor)|g-?csf|filgrastim|colony|erythropoie|\bepo\b|support"
            r"|stimulating (?:factor|agent)",
            re.IGNORECASE,
        ),
        {"anc", "plt", "hb", "wbc", "alc"},
    ),
)
NAMED = (
    ("age", re.compile(r"\b(age|aged|years? old|years of age)\b", re.IGNORECASE)),
    ("ecog", re.compile(r"\b(ECOG|Eastern Cooperative|Zubrod|performance status)\b", re.IGNORECASE)),
    ("kps", re.compile(r"\b(Karnofsky|KPS|Lansky)\b", re.IGNORECASE)),
)


GLOBAL_QUALIFIER = re.compile(
    r"\b(regardless|above|these|this requirement|thresholds?|requirements?|criteri(a|on))\b",
    re.IGNORECASE,
)


def _blocked(text: str, exclusion: bool) -> set[str] | None:
    """Keys whose thresholds a conditional/support clause qualifies; None when it could be any."""
    blocked: set[str] = set()
    for start, end in _clauses(text):
        clause = text[start:end]
        if not (CONDITIONAL.search(clause) or SUPPORT.search(clause)):
            continue
        affected = {a.key for a in ANALYTES if re.search(a.pattern, clause, re.IGNORECASE)}
        if TRANSAMINASES.search(clause):
            affected |= {"ast", "alt"}
        affected |= {key for key, pattern in NAMED if pattern.search(clause)}
        for trigger, keys in TRIGGERS:
            if trigger.search(clause):
                affected |= keys
        if not affected and (exclusion or GLOBAL_QUALIFIER.search(clause)):
            return None
        blocked |= affected
    return blocked


CLAUSE_BREAK = re.compile(r"[;；\n]+|(?<![\d.])\.\s+(?=\S)|(?<=\S)\s*(?=\b\d{1,2}\)(?!\d))|(?<=[.;；])\s*\d{1,2}\)")


def _clauses(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = 0
    for m in CLAUSE_BREAK.finditer(text):
        if m.start() > start:
            out.append((start, m.start()))
        start = max(start, m.end())
    if start < len(text):
        out.append((start, len(text)))
    return out


def _remainder(text: str, atoms: list[Atom]) -> str:
    rest = text
    for atom in sorted(atoms, key=lambda a: a.start, reverse=True):
        rest = rest[: atom.start] + " " + rest[atom.end :]
    return SEXES.sub(" ", _said_of_the_atoms(rest, atoms))


# "Confirmed diagnosis of NSCLC", "diagnosis of NSCLC confirmed by ...": the recorded diagnosis is what they name.
# Not "prior diagnosis of": a past diagnosis is met by a resolved record too, the rule reads an active one.
DIAGNOSIS_WORDS = re.compile(
    r"(?<!prior )(?<!previous )(?<!past )(?<!history of )(?<!history of a )"
    r"\b(?:(?:confirmed|established|documented)\s+)?diagnos(?:is|ed)\b(?:\s+(?:of|with|as))?",
    re.IGNORECASE,
)
# "Stage IV NSCLC (according to AJCC 8th edition)": the staging system the recorded stage group is read in.
AJCC_EDITION = re.compile(
    r"\(?\s*\b(?:according\s+to|per|as\s+defined\s+by|based\s+on|by)\s+(?:the\s+)?(?:\d{1,2}(?:st|nd|rd|th)\s+edition\s+of\s+"
    r"(?:the\s+)?)?(?:AJCC|American Joint Committee on Cancer)(?:\s*/\s*UICC)?(?:\s*\(AJCC\))?(?:\s+TNM)?"
    r"(?:\s*,?\s*(?:v\s?)?\d{1,2}(?:st|nd|rd|th)?(?:\s+edition)?)?(?:\s+(?:staging\s+)?(?:system|criteria|"
    r"classification|manual))?\s*\)?",
    re.IGNORECASE,
)


ADULT_AGE = 18
AT_LEAST_ONE = re.compile(
    r"\b(?:at\s+least|a\s+minimum\s+of)\s+(?:one|1)\s+(?:prior\s+|previous\s+)?(?:(?:lines?|regimens?|courses?|cycles?|doses?)"
    r"(?:\s+of)?\b)?"
    # "(must) have received": what a medication rule reads (not "receiving", which may say taken now)
    r"|\b(?:(?:must\s+)?(?:has|have|had)\s+)?received\b",
    re.IGNORECASE,
)


def _said_of_the_atoms(rest: str, atoms: list[Atom]) -> str:
    """The words left beside the atoms without those that only say how a diagnosis was made or in which system
    a stage was read."""
    if any(a.key == "dx" for a in atoms):
        rest = DIAGNOSIS_WORDS.sub(" ", CONFIRMATION.sub(" ", rest))  # "histologically confirmed": how, not what
    if any(a.key == "stage" for a in atoms):
        rest = AJCC_EDITION.sub(" ", rest)
    if any(a.rule.get("age", {}).get("min", 0) >= ADULT_AGE for a in atoms):
        rest = re.sub(r"\badults?\b", " ", rest, flags=re.IGNORECASE)  # "Adults aged ≥ 18": the bound says it
    if any("medication" in a.rule or "progression_after" in a.rule for a in atoms):
        rest = AT_LEAST_ONE.sub(" ", rest)  # "received at least one regimen of X" is "received X"; two are not
    return rest


def _child(atom: Atom, text: str) -> dict[str, Any]:
    return {
        "key": atom.key,
        "text": text[atom.start : atom.end].strip(" ,;:.") or atom.label,
        **atom.rule,
    }


def _without_overlaps(atoms: list[Atom]) -> list[Atom]:
    atoms = sorted(atoms, key=lambda a: (a.start, -(a.end - a.start)))
    out: list[Atom] = []
    for atom in atoms:
        if out and atom.start < out[-1].end and not (atom.start == out[-1].start and atom.end == out[-1].end):
            continue
        out.append(atom)
    return out


def _connector(between: str) -> str:
    words = re.findall(r"[a-z/]+", between.lower())
    if "or" in words and "and" not in words:
        return "or"
    if "and" in words and "or" not in words:
        return "and"
    if "and" in words and "or" in words:
        return "?"
    return ","


# "Adequate bone marrow function as defined by:" heads a list of thresholds; said on its own
# ("... and adequate organ function") it is a requirement of its own, which must stay text.
ORGAN_HEADER = re.compile(
    r"^\s*(?:adequate|acceptable|sufficient)\s[^:;]{0,60}?(?:function|reserve|parameters|requirements)\b"
    r"[^:;]{0,25}?(?::|：|\bdefined (?:as|by)\b:?|\bas follows\b:?)",
    re.IGNORECASE,
)
# The event a washout counts back from ("prior to initiation of investigational products"): the
# evaluation date stands for it, as for "before the first dose of study drug".
TREATMENT_START = re.compile(
    r"\b(?:prior to|before|of)\s+(?:the\s+)?(?:initiation|start|first dose|first administration)\s+of\s+(?:the\s+)?"
    r"(?:study\s+|trial\s+)?(?:investigational\s+(?:products?|agents?|drugs?|medicinal products?)|drugs?|treatment|"
    r"interventions?|therapy)\b"
    # "before the first dose of durvalumab or tremelimumab": the study drugs by name
    r"|\b(?:prior to|before)\s+(?:the\s+)?first\s+dose\s+of\s+[a-z][a-z0-9-]+"
    r"(?:\s+(?:or|and|and/or)\s+[a-z][a-z0-9-]+)?\b"
    # "prior to Cycle 1 Day 1", "before the scheduled BNCT": the study treatment's start by another name
    r"|\b(?:prior to|before)\s+(?:the\s+)?(?:cycle\s*1,?\s*day\s*1|C1D1|day\s*1\s+of\s+cycle\s*1)\b"
    r"|\b(?:prior to|before)\s+(?:the\s+)?scheduled\s+(?:start\s+of\s+)?[A-Za-z][\w-]*\b",
    re.IGNORECASE,
)
SEX_WORDS = frozenset({"male", "males", "female", "females", "women", "woman", "men", "man"})


def _leftover(text: str, atoms: list[Atom], sex_matters: bool = False) -> list[str]:
    """Words not explained by the atoms. In an inclusion a sex ("Woman ≥ 18 years old") is a
    requirement of its own, so `sex_matters` keeps those words (the rest becomes not computable)."""
    rest = text
    for atom in sorted(atoms, key=lambda a: a.start, reverse=True):
        rest = rest[: atom.start] + " " + rest[atom.end :]
    rest = _said_of_the_atoms(rest, atoms)
    rest = re.sub(r"\bbecause\b.*$", " ", rest, flags=re.IGNORECASE | re.DOTALL)
    rest = SEXES.sub(" ", TIME_OF_CONSENT.sub(" ", rest))
    rest = re.sub(r"\btested positive (?:for|to)\b", " ", rest, flags=re.IGNORECASE)
    rest = INVESTIGATOR_JUDGEMENT.sub(" ", rest)
    rest = ORGAN_HEADER.sub(" ", rest)
    if not any(a.key == "dx" for a in atoms):
        # a window belongs to a measurement or a washout; "diagnosed within the past 6 months" is none the
        # diagnosis rule reads, so it stays a remainder
        rest = WITHIN_DAYS.sub(" ", rest)
    rest = TREATMENT_START.sub(" ", rest)
    words = re.findall(r"[A-Za-z][A-Za-z'/-]*", rest)
    kept = [w for w in words if len(w) > 1 and (w.lower() not in FILLER or (sex_matters and w.lower() in SEX_WORDS))]
    # A number or comparator left over is a threshold nobody encoded: never filler.
    thresholds = re.findall(r"[<>≤≥≦≧＜＞]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?", rest)
    return kept + [t.replace(" ", "") for t in thresholds]


def _window(text: str) -> int | None:
    found = windows_in(text)
    return found.pop() if len(found) == 1 else None


def _short(words: list[str]) -> str:
    return " ".join(words[:8]) + (" ..." if len(words) > 8 else "")

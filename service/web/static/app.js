// The coordinator page: a client of the public FHIR API of this service, nothing else.
// Views (hash routes): #/trials, #/trial/<id>, #/patient, #/match/<study id>.
// Patient data lives in `state.patient` (memory only) and is sent only as the body of $match.
// Every element is built with DOM calls (textContent), never from HTML strings: trial and patient
// texts are data, not markup.
"use strict";

const API = new URL("..", window.location.href).href.replace(/\/$/, "");
const FHIR_JSON = "application/fhir+json";
const EXT = "https://trial-eligibility.example.org/fhir/StructureDefinition/";
const EXT_SCREENING = EXT + "eligibility-screening-confirmation";
const EXT_RULE = EXT + "eligibility-rule";
const EXT_ARM = EXT + "comparison-group-eligibility";
const EXT_MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade";
const SYSTEM_NAMES = {
  "http://loinc.org": "LOINC",
  "http://snomed.info/sct": "SNOMED CT",
  "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
  "http://hl7.org/fhir/sid/icd-10": "ICD-10",
  "http://www.whocc.no/atc": "ATC",
  "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
  "http://hl7.org/fhir/sid/cvx": "CVX",
  "http://hl7.org/fhir/administrative-gender": "gender",
};
const COMPARATORS = { ">=": "≥", "<=": "≤", ">": ">", "<": "<" };
const COMBINATIONS = {
  "all-of": "all of the following", "any-of": "any of the following",
  "at-least": "at least {n} of the following", "at-most": "at most {n} of the following",
};
const KIND_LABELS = { computable: "Computable", screening: "Screening", text: "Text only" };
const KIND_HELP = {
  computable: "decided from the patient's data",
  screening: "confirmed by the site at screening, never decided from data",
  text: "not computable from structured data: reviewed by a person",
};
const RESULT_LABELS = {
  met: "Met", "not-met": "Not met", unknown: "Unknown", screening: "To confirm at screening",
};
const VERDICT_LABELS = { eligible: "Eligible", ineligible: "Not eligible", undetermined: "Undetermined" };
const GRADE_LABELS = {
  certain: "certain", probable: "probable (screening confirmations pending)",
  possible: "possible (data missing)", "certainly-not": "not a match",
};
const STATUSES = [
  ["", "Any status"], ["recruiting", "Recruiting"], ["not-yet-recruiting", "Not yet recruiting"],
  ["active-but-not-recruiting", "Active, not recruiting"], ["enrolling-by-invitation", "Enrolling by invitation"],
  ["completed", "Completed"], ["temporarily-closed-to-accrual", "Temporarily closed"],
];
const PHASES = [
  ["", "Any phase"], ["early-phase-1", "Early phase 1"], ["phase-1", "Phase 1"],
  ["phase-1-phase-2", "Phase 1/2"], ["phase-2", "Phase 2"], ["phase-2-phase-3", "Phase 2/3"],
  ["phase-3", "Phase 3"], ["phase-4", "Phase 4"],
];
// Pages of 100 fetched per resource type from a FHIR server (see loadFromServer).
const PAGE_LIMIT = 5;
// A requirement names one medication type, but the engine reads drugs and vaccines from every
// medication record type and from Immunization: needing one of them fetches them all.
const MEDICATION_FAMILY = ["Immunization", "MedicationAdministration", "MedicationRequest", "MedicationStatement"];

const state = {
  authRequired: false,
  token: "",
  patient: null, // {bundle, index: Map(reference -> resource), source, name}
  date: todayUtc(),
  matches: null, // {bundle, byStudy: Map(studyId -> {entry, parameters})}
  variables: new Map(), // EvidenceVariable id -> resource (public data, cached for the page's life)
};

// ------------------------------------------------------------------------------------ plumbing

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}

function say(message) {
  document.getElementById("status").textContent = message;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

class ApiError extends Error {}

function outcomeText(body, status) {
  const issues = (body && body.resourceType === "OperationOutcome" && body.issue) || [];
  const details = issues.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean);
  const hint = status === 401 ? " Paste an access token in the field at the top of the page."
    : status === 403 ? " The token lacks the scope this request needs." : "";
  return `The server answered ${status}: ${details.join("; ") || "no details"}.${hint}`;
}

async function api(path, options = {}) {
  const headers = { Accept: FHIR_JSON, ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(API + path, { ...options, headers, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) revealTokenField();
    throw new ApiError(outcomeText(body, response.status));
  }
  return body;
}

async function evidenceVariable(id) {
  if (!state.variables.has(id)) state.variables.set(id, await api(`/EvidenceVariable/${encodeURIComponent(id)}`));
  return state.variables.get(id);
}

function revealTokenField() {
  state.authRequired = true;
  document.getElementById("token-form").hidden = false;
}

// ------------------------------------------------------------------------------------ FHIR reading

function conceptWords(concept, withCodes = true) {
  if (!concept) return "";
  const codings = concept.coding || [];
  const name = concept.text || codings.map((c) => c.display).filter(Boolean).join(", ");
  const codes = withCodes ? codings.map(codingWords).join(", ") : "";
  return name && codes ? `${name} [${codes}]` : name || codes;
}

function codingWords(coding) {
  const system = SYSTEM_NAMES[coding.system] || coding.system || "";
  return `${system} ${coding.code || ""}`.trim();
}

function flag(characteristic, url) {
  return (characteristic.extension || []).some((e) => e.url === url && e.valueBoolean);
}

function ruleParts(characteristic) {
  const parts = {};
  for (const ext of characteristic.extension || []) {
    if (ext.url !== EXT_RULE) continue;
    for (const part of ext.extension || []) {
      const key = Object.keys(part).find((k) => k.startsWith("value"));
      if (part.url === "exceptCode" || part.url === "exceptName") (parts[part.url] ||= []).push(part[key]);
      else parts[part.url] = part[key];
    }
  }
  return parts;
}

function kindOf(characteristic) {
  if (flag(characteristic, EXT_SCREENING)) return "screening";
  const combination = characteristic.definitionByCombination;
  if (combination) {
    const kinds = new Set((combination.characteristic || []).map(kindOf));
    return kinds.has("computable") ? "computable" : kinds.has("text") ? "text" : "screening";
  }
  return characteristic.definitionByTypeAndValue ? "computable" : "text";
}

function number(value) {
  return String(value);
}

function valueWords(definition) {
  if (definition.valueQuantity) {
    const q = definition.valueQuantity;
    const unit = q.unit || q.code || "";
    return `${COMPARATORS[q.comparator] || "="} ${number(q.value)} ${unit === "1" ? "" : unit}`.trim();
  }
  if (definition.valueRange) {
    const { low, high } = definition.valueRange;
    if (low && high) return `between ${number(low.value)} and ${number(high.value)} ${high.unit || ""}`.trim();
    if (low) return `≥ ${number(low.value)} ${low.unit || ""}`.trim();
    if (high) return `≤ ${number(high.value)} ${high.unit || ""}`.trim();
  }
  if (definition.valueCodeableConcept) return `is ${conceptWords(definition.valueCodeableConcept)}`;
  if (definition.valueBoolean !== undefined) return definition.valueBoolean ? "is present" : "is absent";
  return "";
}

// The same reading as the published narrative (service/fhir/narrative.py), from the same JSON.
function ruleInWords(characteristic) {
  if (flag(characteristic, EXT_SCREENING)) return "Not decided from data: the site confirms it at screening.";
  const combination = characteristic.definitionByCombination;
  if (combination) {
    const words = (COMBINATIONS[combination.code] || combination.code).replace("{n}", combination.threshold);
    return `Holds when ${words}.`;
  }
  if (characteristic.definitionCodeableConcept) return characteristic.definitionCodeableConcept.text || "";
  const definition = characteristic.definitionByTypeAndValue;
  if (!definition) return "No rule.";
  const rule = ruleParts(characteristic);
  let sentence = `${conceptWords(definition.type)} ${valueWords(definition)}`.trim();
  if (rule.kind === "condition" && rule.includeResolved === false) sentence += ", active (resolved diagnoses do not count)";
  if (rule.kind === "medication" && rule.current) sentence += ", currently taken";
  if (rule.gene) sentence += `, gene ${rule.gene}`;
  if (rule.therapy) sentence += `, after ${conceptWords(rule.therapy)}`;
  if (rule.withinDaysAfterLastDose !== undefined) sentence += ` (within ${rule.withinDaysAfterLastDose} days of its last dose)`;
  const excepted = (rule.exceptCode || []).map(codingWords).concat(rule.exceptName || []);
  if (excepted.length) sentence += `, except ${excepted.join(", ")}`;
  const doses = characteristic.instancesRange && characteristic.instancesRange.low;
  if (doses) sentence += `, at least ${doses.value} doses`;
  for (const method of definition.method || []) sentence += `; computed by ${method.text || ""}`;
  for (const timing of characteristic.timeFromEvent || []) {
    const text = timing.description || "";
    sentence += `; ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
  }
  return `${sentence}.`;
}

function walk(characteristics, into = []) {
  for (const c of characteristics || []) {
    into.push(c);
    walk(c.definitionByCombination && c.definitionByCombination.characteristic, into);
  }
  return into;
}

function studyStatus(study) {
  const states = (study.progressStatus || [])
    .filter((p) => p.state && !(p.state.coding || []).some((c) => c.code === "overall-study"))
    .map((p) => conceptWords(p.state, false));
  return states.join("; ") || study.status || "";
}

function partsOf(parameter) {
  const out = { criteria: [], evidence: [] };
  for (const part of parameter.part || []) {
    if (part.name === "criterion") out.criteria.push(part);
    else if (part.name === "evidence") out.evidence.push(part.valueReference && part.valueReference.reference);
    else {
      const key = Object.keys(part).find((k) => k.startsWith("value"));
      out[part.name] = key ? part[key] : part.resource;
    }
  }
  return out;
}

function named(parameters, name) {
  return (parameters.parameter || []).filter((p) => p.name === name);
}

function firstValue(parameters, name) {
  const p = named(parameters, name)[0];
  if (!p) return undefined;
  const key = Object.keys(p).find((k) => k.startsWith("value"));
  return key ? p[key] : p.resource;
}

// ------------------------------------------------------------------------------------ patient data

function indexBundle(bundle) {
  const index = new Map();
  for (const entry of bundle.entry || []) {
    const resource = entry.resource;
    if (!resource || !resource.resourceType) continue;
    if (entry.fullUrl) index.set(entry.fullUrl, resource);
    if (resource.id) index.set(`${resource.resourceType}/${resource.id}`, resource);
  }
  return index;
}

function patientName(patient) {
  const name = (patient.name || [])[0];
  if (!name) return `Patient ${patient.id || ""}`.trim();
  return name.text || [...(name.given || []), name.family].filter(Boolean).join(" ");
}

function usePatient(bundle, source) {
  if (!bundle || bundle.resourceType !== "Bundle") throw new ApiError("The file is not a FHIR Bundle.");
  const patients = (bundle.entry || []).map((e) => e.resource).filter((r) => r && r.resourceType === "Patient");
  if (patients.length !== 1) throw new ApiError(`The Bundle must hold exactly one Patient (it holds ${patients.length}).`);
  const patient = patients[0];
  state.patient = { bundle, index: indexBundle(bundle), source, patient, name: patientName(patient) };
  state.matches = null;
}

function resourceDate(r) {
  const period = r.effectivePeriod || r.performedPeriod || r.onsetPeriod || r.occurrencePeriod || r.period;
  return r.effectiveDateTime || r.effectiveInstant || (period && period.start) || r.onsetDateTime
    || r.performedDateTime || r.occurrenceDateTime || r.authoredOn || r.recordedDate || r.issued
    || r.dateAsserted || r.date || "";
}

// Date and time to the minute ("2026-02-19 09:00"): the reasons speak in dates.
function shortDate(text) {
  return text.length > 10 ? `${text.slice(0, 10)} ${text.slice(11, 16)}` : text;
}

function resourceValue(r) {
  if (r.resourceType === "Patient") return [r.gender, r.birthDate && `born ${r.birthDate}`].filter(Boolean).join(", ");
  if (r.valueQuantity) return `${number(r.valueQuantity.value)} ${r.valueQuantity.unit || r.valueQuantity.code || ""}`.trim();
  if (r.valueCodeableConcept) return conceptWords(r.valueCodeableConcept, false);
  for (const key of ["valueString", "valueBoolean", "valueInteger"]) if (r[key] !== undefined) return String(r[key]);
  const concept = r.code || r.medicationCodeableConcept || (r.medication && r.medication.concept) || r.vaccineCode;
  const clinical = r.clinicalStatus && (conceptWords(r.clinicalStatus, false) || ((r.clinicalStatus.coding || [])[0] || {}).code);
  const status = clinical || r.status;
  return [conceptWords(concept, false), status].filter(Boolean).join(", ");
}

function jsonLink(resource, label) {
  const blob = new Blob([JSON.stringify(resource, null, 2)], { type: "application/json" });
  return h("a", { href: URL.createObjectURL(blob), target: "_blank", rel: "noopener", class: "json-link" }, label);
}

// ------------------------------------------------------------------------------------ views

const main = () => document.getElementById("main");

function render(title, ...content) {
  document.title = `${title} · Trial eligibility`;
  main().replaceChildren(...content.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function badge(kind, text, extraClass = "") {
  return h("span", { class: `badge badge-${kind} ${extraClass}`.trim() }, text);
}

function field(id, label, control, help) {
  control.id = id;
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    help ? h("p", { id: `${id}-help`, class: "help" }, help) : null);
}

function select(options, value) {
  return h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

async function trialsView(query) {
  const params = new URLSearchParams(query);
  const form = h("form", { class: "search", role: "search", "aria-label": "Search trials" },
    field("q-title", "Title contains", h("input", { type: "search", name: "title", value: params.get("title") || "" })),
    field("q-condition", "Condition", h("input", { type: "search", name: "condition", value: params.get("condition") || "",
      placeholder: "a word, or system|code" })),
    field("q-status", "Status", Object.assign(select(STATUSES, params.get("status") || ""), { name: "status" })),
    field("q-phase", "Phase", Object.assign(select(PHASES, params.get("phase") || ""), { name: "phase" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value.trim()) chosen.set(key, value.trim());
    window.location.hash = `#/trials?${chosen}`;
  });
  const results = h("section", { "aria-labelledby": "results-heading" }, h("h2", { id: "results-heading" }, "Trials"));
  render("Trials", h("h1", {}, "Find a trial"), form, results);
  const search = new URLSearchParams({ _count: "100" });
  if (params.get("title")) search.set("title:contains", params.get("title"));
  for (const key of ["condition", "status", "phase"]) if (params.get(key)) search.set(key, params.get(key));
  say("Searching trials…");
  const bundle = await api(`/ResearchStudy?${search}`);
  const studies = (bundle.entry || []).filter((e) => e.search && e.search.mode === "match").map((e) => e.resource);
  say(`${bundle.total} trial${bundle.total === 1 ? "" : "s"} found.`);
  results.append(studies.length ? h("ul", { class: "cards" }, studies.map(trialCard))
    : h("p", {}, "No trial matches these filters."));
}

function trialCard(study) {
  return h("li", { class: "card" },
    h("h3", {}, h("a", { href: `#/trial/${encodeURIComponent(study.id)}` }, study.title || study.id)),
    h("p", { class: "meta" }, [study.id, studyStatus(study), conceptWords(study.phase, false)].filter(Boolean).join(" · ")),
    h("p", {}, (study.condition || []).map((c) => conceptWords(c, false)).join("; ")));
}

function eligibilityIdOf(study) {
  return study.recruitment.eligibility.reference.split("/").pop();
}

function armVariableId(group) {
  const ext = (group.extension || []).find((e) => e.url === EXT_ARM);
  return ext && ext.valueReference.reference.split("/").pop();
}

async function trialView(id) {
  say("Loading the trial…");
  const study = await api(`/ResearchStudy/${encodeURIComponent(id)}`);
  const eligibilityId = eligibilityIdOf(study);
  const variable = await evidenceVariable(eligibilityId);
  const groups = study.comparisonGroup || [];
  const armVariables = await Promise.all(groups.map((g) => (armVariableId(g) ? evidenceVariable(armVariableId(g)) : null)));
  const facts = [
    ["Identifier", (study.identifier || []).map((i) => i.value).filter(Boolean).join(", ") || study.id],
    ["Status", studyStatus(study)],
    ["Phase", conceptWords(study.phase, false)],
    ["Conditions", (study.condition || []).map((c) => conceptWords(c)).join("; ")],
    ["Criteria status", `${variable.status}${variable.status === "draft" ? " (imported, not yet reviewed by a person)" : ""}`],
  ];
  render(study.title || id,
    h("p", { class: "crumbs" }, h("a", { href: "#/trials" }, "Trials"), " › ", id),
    h("h1", {}, study.title || id),
    study.descriptionSummary ? h("p", { class: "lead" }, study.descriptionSummary) : null,
    h("dl", { class: "facts" }, facts.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    groups.length ? h("section", { "aria-labelledby": "arms-heading" },
      h("h2", { id: "arms-heading" }, "Arms"),
      h("ul", { class: "arms" }, groups.map((g, i) => h("li", {},
        h("strong", {}, g.name || g.linkId), g.description ? `: ${g.description}` : "",
        armVariables[i] ? criteriaTable(armVariables[i], `arm-${g.linkId}`) : null)))) : null,
    h("section", { "aria-labelledby": "criteria-heading" },
      h("h2", { id: "criteria-heading" }, "Eligibility criteria"),
      h("p", { class: "help" }, "In protocol order. Kind: ",
        Object.entries(KIND_LABELS).map(([k, label], i) => [i ? "; " : "", badge(k, label), ` ${KIND_HELP[k]}`])),
      criteriaTable(variable, "criteria")),
    h("p", {}, h("a", { class: "button", href: "#/patient" }, "Match a patient against the trials")));
  say(`${study.title || id}: ${variable.characteristic.length} criteria (${walk(variable.characteristic).length} with their parts).`);
}

function criteriaTable(variable, idPrefix) {
  const list = (characteristics, depth) => h("ol", { class: depth ? "criteria nested" : "criteria" },
    characteristics.map((c) => {
      const kind = kindOf(c);
      const children = c.definitionByCombination && c.definitionByCombination.characteristic;
      const negation = c.exclude ? (depth ? "Must not hold" : "Exclusion") : depth ? null : "Inclusion";
      return h("li", { class: "criterion", id: `${idPrefix}-${c.linkId}`, "data-link-id": c.linkId },
        h("div", { class: "criterion-head" },
          h("span", { class: "link-id" }, c.linkId), negation ? badge(c.exclude ? "exclude" : "include", negation) : null,
          badge(kind, KIND_LABELS[kind])),
        h("p", { class: "wording" }, c.description || ""),
        h("p", { class: "rule" }, h("span", { class: "rule-label" }, "Machine check: "), ruleInWords(c)),
        (c.note || []).map((n) => h("p", { class: "note" }, `Note: ${n.text}`)),
        children ? list(children, depth + 1) : null);
    }));
  return list(variable.characteristic || [], 0);
}

function patientView() {
  const file = h("input", { type: "file", accept: ".json,application/json,application/fhir+json" });
  const drop = h("div", { class: "drop" },
    field("bundle-file", "Patient Bundle file (FHIR R4 or R5 JSON)", file, "Choose the file, or drop it on this box."));
  const date = h("input", { type: "date", value: state.date, required: true });
  const base = h("input", { type: "url", placeholder: "https://ehr.example.org/fhir", autocomplete: "url" });
  const patientId = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const ehrToken = h("input", { type: "password", autocomplete: "off", spellcheck: "false" });
  const results = h("section", { id: "matches", "aria-labelledby": "matches-heading" });

  const run = async (load) => {
    showError("");
    try {
      state.date = date.value || todayUtc();
      await load();
      await runMatch();
      drawMatches(results);
    } catch (error) {
      showError(error.message);
      say("");
    }
  };
  file.addEventListener("change", () => file.files[0] && run(() => readFile(file.files[0])));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) run(() => readFile(e.dataTransfer.files[0]));
  });
  const serverForm = h("form", { class: "server", "aria-labelledby": "server-heading" },
    h("h3", { id: "server-heading" }, "…or load from a FHIR server"),
    field("ehr-base", "FHIR server base URL", base),
    field("ehr-patient", "Patient id", patientId),
    field("ehr-token", "Bearer token for that server (if it needs one)", ehrToken,
      "Sent only to that server, kept in this page's memory only."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Load and match")));
  serverForm.addEventListener("submit", (e) => {
    e.preventDefault();
    run(() => loadFromServer(base.value.trim(), patientId.value.trim(), ehrToken.value.trim()));
  });
  const dateForm = h("form", { class: "date" }, field("evaluation-date", "Evaluation date", date,
    "Lookback windows and ages are computed at this date."),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Match again at this date")));
  dateForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!state.patient) { showError("Load a patient first."); return; }
    run(async () => {});
  });
  render("Patient matches", h("h1", {}, "A patient's matches"), dateForm,
    h("div", { class: "load" },
      h("section", { "aria-labelledby": "file-heading" }, h("h3", { id: "file-heading" }, "Load a patient Bundle"), drop),
      serverForm),
    results);
  if (state.matches) drawMatches(results);
}

async function readFile(file) {
  say(`Reading ${file.name}…`);
  let bundle;
  try {
    bundle = JSON.parse(await file.text());
  } catch {
    throw new ApiError(`${file.name} is not JSON.`);
  }
  usePatient(bundle, file.name);
}

async function fetchFhir(url, token) {
  const headers = { Accept: `${FHIR_JSON}, application/json` };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { headers, cache: "no-store" });
  if (!response.ok) throw new ApiError(`The FHIR server answered ${response.status} for ${new URL(url).pathname}.`);
  return response.json();
}

// The Patient first; a $match on it alone names (in dataRequirement) the resource types the criteria
// need; those are fetched for the patient (bounded paging), then matched.
async function loadFromServer(base, id, token) {
  if (!/^https?:\/\//.test(base) || !id) throw new ApiError("Enter the FHIR server's base URL (http or https) and a patient id.");
  const root = base.replace(/\/$/, "");
  say("Fetching the patient…");
  const patient = await fetchFhir(`${root}/Patient/${encodeURIComponent(id)}`, token);
  const entries = [{ fullUrl: `${root}/Patient/${patient.id}`, resource: patient }];
  const probe = await api(`/ResearchStudy/$match?date=${state.date}&_count=100`, {
    method: "POST", headers: { "Content-Type": FHIR_JSON },
    body: JSON.stringify({ resourceType: "Bundle", type: "collection", entry: entries }),
  });
  const types = new Set();
  for (const entry of probe.entry || []) {
    if (entry.resource.resourceType !== "Parameters") continue;
    for (const req of named(entry.resource, "dataRequirement")) types.add(req.valueDataRequirement.type);
  }
  if (MEDICATION_FAMILY.some((t) => types.has(t))) MEDICATION_FAMILY.forEach((t) => types.add(t));
  const skipped = [];
  for (const type of [...types].sort()) {
    say(`Fetching ${type} records…`);
    let url = `${root}/${type}?patient=${encodeURIComponent(patient.id)}&_count=100`;
    for (let page = 0; url && page < PAGE_LIMIT; page += 1) {
      let bundle;
      try {
        bundle = await fetchFhir(url, token);
      } catch (error) {
        // A type the server does not serve: its criteria stay unknown, and the page says so.
        skipped.push(`${type} (${error.message})`);
        break;
      }
      for (const entry of bundle.entry || []) {
        if (entry.resource && (!entry.search || entry.search.mode !== "outcome")) {
          entries.push({ fullUrl: entry.fullUrl || `${root}/${type}/${entry.resource.id}`, resource: entry.resource });
        }
      }
      const next = (bundle.link || []).find((l) => l.relation === "next");
      url = next && next.url;
    }
  }
  const missing = skipped.length ? `; not fetched: ${skipped.join(", ")}` : "";
  usePatient({ resourceType: "Bundle", type: "collection", entry: entries }, `${root} (Patient/${id})${missing}`);
}

async function runMatch() {
  say(`Matching ${state.patient.name} against every trial at ${state.date}…`);
  const bundle = await api(`/ResearchStudy/$match?date=${encodeURIComponent(state.date)}&_count=100`, {
    method: "POST", headers: { "Content-Type": FHIR_JSON }, body: JSON.stringify(state.patient.bundle),
  });
  const included = new Map((bundle.entry || []).filter((e) => e.search && e.search.mode === "include")
    .map((e) => [e.fullUrl, e.resource]));
  const byStudy = new Map();
  for (const entry of bundle.entry || []) {
    if (!entry.search || entry.search.mode !== "match") continue;
    const related = (entry.link || []).find((l) => l.relation === "related");
    byStudy.set(entry.resource.id, { entry, parameters: related && included.get(related.url) });
  }
  // The criteria (public, cached) tell screening confirmations apart from unknowns in the counts.
  await Promise.all([...byStudy.values()].map(({ entry }) => evidenceVariable(eligibilityIdOf(entry.resource))));
  state.matches = { bundle, byStudy };
  say(`${byStudy.size} trials ranked for ${state.patient.name} at ${state.date}.`);
}

function gradeOf(entry) {
  const ext = (entry.search.extension || []).find((e) => e.url === EXT_MATCH_GRADE);
  return ext ? ext.valueCode : "";
}

function counts(parameters, variable) {
  const screening = new Set(walk(variable ? variable.characteristic : []).filter((c) => kindOf(c) === "screening").map((c) => c.linkId));
  const tally = { met: 0, "not-met": 0, unknown: 0, screening: 0 };
  for (const c of named(parameters, "criterion")) {
    const { linkId, result } = partsOf(c);
    tally[result === "unknown" && screening.has(linkId) ? "screening" : result] += 1;
  }
  return tally;
}

function drawMatches(container) {
  const p = state.patient;
  const rows = [...state.matches.byStudy.entries()].map(([id, { entry, parameters }], i) => {
    const verdict = firstValue(parameters, "eligibility");
    const tally = counts(parameters, state.variables.get(eligibilityIdOf(entry.resource)));
    return h("tr", {},
      h("td", { "data-label": "Rank" }, String(i + 1)),
      h("th", { scope: "row", "data-label": "Trial" }, h("a", { href: `#/match/${encodeURIComponent(id)}` }, entry.resource.title || id),
        h("span", { class: "meta" }, id)),
      h("td", { "data-label": "Verdict" }, badge(verdict, VERDICT_LABELS[verdict] || verdict)),
      h("td", { "data-label": "Match grade" }, `${GRADE_LABELS[gradeOf(entry)] || gradeOf(entry)} (score ${entry.search.score})`),
      h("td", { "data-label": "Criteria" }, `${tally.met} met, ${tally["not-met"]} not met, ${tally.unknown} unknown, ${tally.screening} to confirm at screening`));
  });
  container.replaceChildren(
    h("h2", { id: "matches-heading" }, `Trials for ${p.name}`),
    h("p", { class: "meta" }, `Source: ${p.source} · evaluated at ${state.date} · ${(p.bundle.entry || []).length} resources`),
    h("table", { class: "matches" },
      h("caption", {}, "Best match first. Open a trial to see every criterion with its evidence."),
      h("thead", {}, h("tr", {}, ["Rank", "Trial", "Verdict", "Match grade", "Criteria"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}

async function matchView(id) {
  if (!state.patient || !state.matches || !state.matches.byStudy.has(id)) {
    render("Match", h("h1", {}, "No patient loaded"),
      h("p", {}, "Patient data is kept only in this tab's memory. ", h("a", { href: "#/patient" }, "Load a patient"), " first."));
    return;
  }
  const { entry, parameters } = state.matches.byStudy.get(id);
  const study = entry.resource;
  say("Loading the trial's criteria…");
  const variable = await evidenceVariable(eligibilityIdOf(study));
  const flags = new Map();
  for (const c of walk(variable.characteristic)) flags.set(c.linkId, c);
  const armVariables = await Promise.all((study.comparisonGroup || []).map((g) => (armVariableId(g) ? evidenceVariable(armVariableId(g)) : null)));
  for (const v of armVariables) for (const c of walk(v ? v.characteristic : [])) flags.set(c.linkId, c);
  const verdict = firstValue(parameters, "eligibility");
  const subject = firstValue(parameters, "researchSubject") || {};
  const groups = named(parameters, "comparisonGroup").map(partsOf);
  const assigned = subject.assignedComparisonGroup;
  const assignedName = assigned && ((study.comparisonGroup || []).find((g) => g.linkId === assigned) || {}).name;
  const outcome = firstValue(parameters, "warning");
  render(`${study.title || id}: ${state.patient.name}`,
    h("p", { class: "crumbs" }, h("a", { href: "#/patient" }, "Patient matches"), " › ", id),
    h("h1", {}, study.title || id),
    h("dl", { class: "facts" },
      h("dt", {}, "Patient"), h("dd", {}, state.patient.name),
      h("dt", {}, "Trial"), h("dd", {}, h("a", { href: `#/trial/${encodeURIComponent(id)}` }, id)),
      h("dt", {}, "Evaluation date"), h("dd", {}, firstValue(parameters, "evaluationDate") || state.date),
      h("dt", {}, "Verdict"), h("dd", {}, badge(verdict, VERDICT_LABELS[verdict] || verdict),
        ` match grade ${GRADE_LABELS[gradeOf(entry)] || gradeOf(entry)}`),
      h("dt", {}, "Arm"), h("dd", { class: "arm" }, armWords(study, groups, assigned, assignedName))),
    h("p", { class: "no-print" }, h("button", { type: "button", onclick: () => window.print() }, "Print for the screening log")),
    outcome ? h("p", { class: "warning" }, `Some records were not used: ${(outcome.issue || []).map((i) => i.diagnostics).join("; ")}`) : null,
    checklist(parameters, variable, verdict),
    h("section", { "aria-labelledby": "crit-heading" }, h("h2", { id: "crit-heading" }, "Criteria"),
      resultsList(named(parameters, "criterion"), flags, 0)),
    groups.length ? h("section", { "aria-labelledby": "arm-heading" }, h("h2", { id: "arm-heading" }, "Arm assignment"),
      groups.map((g) => h("div", { class: "arm-group" },
        h("h3", {}, `${g.name || g.linkId} `, badge(g.eligibility, VERDICT_LABELS[g.eligibility] || g.eligibility)),
        resultsList(g.criteria, flags, 0)))) : null);
  say(`${id}: ${VERDICT_LABELS[verdict] || verdict} for ${state.patient.name}.`);
}

function armWords(study, groups, assigned, assignedName) {
  const arms = (study.comparisonGroup || []).map((g) => g.name || g.linkId);
  if (assigned) return `The data point to ${assignedName || assigned}.`;
  if (groups.length) {
    const each = groups.map((g) => `${g.name || g.linkId}: ${VERDICT_LABELS[g.eligibility] || g.eligibility}`);
    return `No arm is decided from the data (${each.join("; ")}).`;
  }
  if (arms.length) return `Not decided from data: the protocol has no arm criteria (${arms.join("; ")}).`;
  return "The trial has a single arm.";
}

function resultsList(criteria, flags, depth) {
  return h("ol", { class: depth ? "results nested" : "results" }, criteria.map((c) => {
    const parts = partsOf(c);
    const characteristic = flags.get(parts.linkId) || {};
    const result = parts.result === "unknown" && kindOf(characteristic) === "screening" ? "screening" : parts.result;
    const negation = parts.exclude ? (depth ? "Must not hold" : "Exclusion") : null;
    return h("li", { class: `result result-${result}`, "data-link-id": parts.linkId },
      h("div", { class: "criterion-head" }, badge(result, RESULT_LABELS[result] || result),
        h("span", { class: "link-id" }, parts.linkId), negation ? badge("exclude", negation) : null),
      h("p", { class: "wording" }, parts.description || ""),
      parts.reason ? h("p", { class: "reason" }, h("span", { class: "rule-label" }, "Why: "), parts.reason) : null,
      parts.evidence.length ? evidenceTable(parts.evidence) : null,
      parts.criteria.length ? h("details", { open: result !== "met" || undefined },
        h("summary", {}, `${parts.criteria.length} part${parts.criteria.length === 1 ? "" : "s"}`),
        resultsList(parts.criteria, flags, depth + 1)) : null);
  }));
}

function evidenceTable(references) {
  const rows = references.map((reference) => {
    const resource = state.patient.index.get(reference);
    if (!resource) return h("tr", {}, h("td", { colspan: 4 }, `${reference} (not in the loaded data)`));
    return h("tr", {},
      h("td", { "data-label": "Type" }, resource.resourceType),
      h("td", { "data-label": "Date" }, shortDate(resourceDate(resource)) || "—"),
      h("td", { "data-label": "Value" }, resourceValue(resource)),
      h("td", { class: "no-print" }, jsonLink(resource, "JSON")));
  });
  return h("table", { class: "evidence" }, h("caption", {}, "Evidence"),
    h("thead", {}, h("tr", {}, ["Type", "Date", "Value"].map((t) => h("th", { scope: "col" }, t)),
      h("th", { scope: "col", class: "no-print" }, h("span", { class: "visually-hidden" }, "Resource")))),
    h("tbody", {}, rows));
}

// What to order: the dataRequirements, each named by the criterion concept whose codes it lists.
function checklist(parameters, variable, verdict) {
  const labels = new Map();
  for (const c of walk(variable.characteristic)) {
    const d = c.definitionByTypeAndValue;
    if (!d) continue;
    for (const concept of [d.type, d.valueCodeableConcept]) {
      for (const coding of (concept && concept.coding) || []) {
        if (concept.text) labels.set(`${coding.system}|${coding.code}`, concept.text.replace(/ \(names:.*\)$/, ""));
      }
    }
  }
  const items = named(parameters, "dataRequirement").map((p, i) => {
    const req = p.valueDataRequirement;
    const codes = (req.codeFilter || []).flatMap((f) => f.code || []);
    const label = codes.map((c) => labels.get(`${c.system}|${c.code}`)).find(Boolean);
    const period = ((req.dateFilter || [])[0] || {}).valuePeriod;
    const when = period ? ` dated ${period.start || "…"} to ${period.end || "…"}` : "";
    const what = label || (codes.length ? codes.map(codingWords).join(", ") : `any ${req.type} record`);
    return h("li", {}, h("input", { type: "checkbox", id: `need-${i}`, "aria-label": `Done: ${what}` }), " ",
      h("strong", {}, what), ` (${req.type}${codes.length ? `: ${codes.map(codingWords).join(", ")}` : ""})${when}`);
  });
  return h("section", { class: "checklist", "aria-labelledby": "missing-heading" },
    h("h2", { id: "missing-heading" }, "Missing data"),
    items.length ? [h("p", {}, "Order or record these to settle the unknown criteria:"), h("ul", {}, items)]
      : h("p", {}, verdict === "undetermined"
        ? "No data to order: the open criteria are text only and need a person's judgement (the Unknown ones below)."
        : "Nothing missing: every data-evaluable criterion is decided."));
}

// ------------------------------------------------------------------------------------ router

async function route() {
  showError("");
  const hash = window.location.hash || "#/trials";
  const [path, query] = hash.slice(1).split("?");
  const segments = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = segments[0] === "match" ? "patient" : segments[0] === "trial" ? "trials" : segments[0] || "trials";
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (segments[0] === "trial" && segments[1]) await trialView(segments[1]);
    else if (segments[0] === "patient") patientView();
    else if (segments[0] === "match" && segments[1]) await matchView(segments[1]);
    else await trialsView(query || "");
  } catch (error) {
    showError(error.message);
    say("");
  }
  // A new view starts at its top (a hash route keeps the previous view's scroll position otherwise).
  window.scrollTo(0, 0);
  main().focus({ preventScroll: true });
}

async function start() {
  document.getElementById("service-token").addEventListener("input", (e) => { state.token = e.target.value.trim(); });
  document.getElementById("token-form").addEventListener("submit", (e) => { e.preventDefault(); route(); });
  try {
    const capability = await api("/metadata");
    const security = ((capability.rest || [])[0] || {}).security || {};
    if ((security.service || []).length) revealTokenField();
  } catch (error) {
    showError(error.message);
  }
  window.addEventListener("hashchange", route);
  // A printed match shows every nested part, also those folded on screen.
  window.addEventListener("beforeprint", () => { for (const d of document.querySelectorAll("details")) d.open = true; });
  route();
}

start();

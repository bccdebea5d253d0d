"""ClinicalTrials.gov v2 records → mapping documents: valid R5, accepted by the mapping parser,
faithful to the registry; and the `trial-eligibility import` command that writes them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from fhir.resources.researchstudy import ResearchStudy

from service.cli import main
from service.importer import import_study
from service.mapping import parse_trial_criteria
from service.sources.ctgov import studies_in
from tests.conftest import r5check_or_skip
from tests.ctgov_data import CTGOV, all_record_files, recorded


def every_study() -> list[dict[str, Any]]:
    return [s for path in all_record_files() for s in studies_in(json.loads(path.read_text(encoding="utf-8")))]


def study(nct: str) -> dict[str, Any]:
    return next(s for s in every_study() if s["protocolSection"]["identificationModule"]["nctId"] == nct)


def published(document: dict[str, Any]) -> dict[str, Any]:
    """What the catalog adds before publishing (id, eligibility reference)."""
    rs = {"resourceType": "ResearchStudy", "id": document["id"], **document["research_study"]}
    rs["recruitment"] = {
        **rs.get("recruitment", {}),
        "eligibility": {"reference": f"EvidenceVariable/{document['id']}-eligibility"},
    }
    return rs


def test_every_shared_record_imports_into_a_parseable_mapping_and_valid_r5(tmp_path: Path) -> None:
    studies = every_study()
    assert len(studies) == 76  # 12 aact + 51 dgg32 + 2 mitre + 11 xiaoyibao (NCT06008288 twice)
    for record in studies:
        result = import_study(record)
        doc = result.document
        assert doc["format"] == 1 and doc["status"] == "draft" and doc["id"] == result.study_id
        parse_trial_criteria(doc, doc["id"], doc["research_study"]["title"])
        resource = published(doc)
        ResearchStudy.model_validate(resource)
        (tmp_path / f"{doc['id']}.json").write_text(json.dumps(resource), encoding="utf-8")
    run = subprocess.run(
        [str(r5check_or_skip()), "--json", *sorted(str(p) for p in tmp_path.glob("*.json"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_identifiers_titles_and_status() -> None:
    rs = import_study(study("NCT04956640")).document["research_study"]
    ids = {(i.get("system"), i["value"]) for i in rs["identifier"]}
    assert ("https://clinicaltrials.gov/nctid", "NCT04956640") in ids
    assert ("https://euclinicaltrials.eu/clinicalTrialId", "2022-502756-31-00") in ids  # type CTIS
    eudract = next(i for i in rs["identifier"] if i["value"] == "2021-000595-12")
    assert "system" not in eudract and eudract["type"]["text"] == "EudraCT number"
    org = next(i for i in rs["identifier"] if i.get("type", {}).get("text") == "Organization study ID")
    assert org["value"] == study("NCT04956640")["protocolSection"]["identificationModule"]["orgStudyIdInfo"]["id"]
    assert rs["phase"]["coding"][0] == {
        "system": "http://hl7.org/fhir/research-study-phase",
        "code": "phase-1-phase-2",
        "display": "Phase 1/Phase 2",
    }
    official = next(lab for lab in rs["label"] if lab["type"]["coding"][0]["code"] == "official")
    assert official["value"] == study("NCT04956640")["protocolSection"]["identificationModule"]["officialTitle"]


def test_eu_ct_number_given_only_in_the_domain_text() -> None:
    rs = import_study(study("NCT05921903")).document["research_study"]
    eu = next(i for i in rs["identifier"] if i["value"] == "2023-503951-81-00")
    assert eu["system"] == "https://euclinicaltrials.eu/clinicalTrialId"


def test_progress_status_comes_from_overall_status_not_last_known_status() -> None:
    # NCT03475563: overallStatus UNKNOWN, lastKnownStatus RECRUITING
    rs = import_study(study("NCT03475563")).document["research_study"]
    current = rs["progressStatus"][0]
    assert "coding" not in current["state"] and current["state"]["text"].startswith("Unknown")
    assert not any(c.get("code") == "recruiting" for p in rs["progressStatus"] for c in p["state"].get("coding", []))


def test_recruiting_study_with_dates_sites_arms_and_outcomes() -> None:
    record = study("NCT06008288")
    rs = import_study(record).document["research_study"]
    states = [(p["state"]["coding"][0]["code"], p.get("actual"), p.get("period")) for p in rs["progressStatus"]]
    assert states == [
        ("recruiting", True, None),
        ("active", True, {"start": "2023-10-27"}),
        ("completed", False, {"end": "2027-12-31"}),
    ]
    assert rs["period"] == {"start": "2023-10-27", "end": "2027-12-31"}
    assert rs["primaryPurposeType"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
    )
    pancreatic = next(c for c in rs["condition"] if "coding" in c)
    assert pancreatic["coding"][0] == {
        "system": "urn:oid:2.16.840.1.113883.6.177",
        "code": "D010190",
        "display": "Pancreatic Neoplasms",
    }
    assert rs["focus"] == [{"concept": {"text": "JAB-21822"}}]
    arm = rs["comparisonGroup"][0]
    assert arm["name"] == "JAB-21822" and arm["type"]["coding"][0]["code"] == "experimental"
    assert "Drug: JAB-21822" in arm["description"]
    locations = record["protocolSection"]["contactsLocationsModule"]["locations"]
    assert len(rs["site"]) == len(locations)
    assert rs["site"][0] == {"display": "Anhui Provincial Cancer Hospital, Hefei, Anhui, China"}
    assert rs["region"] == [{"text": "China"}]
    assert rs["recruitment"] == {"targetNumber": 88}
    lead = next(p for p in rs["associatedParty"] if p["role"]["coding"][0]["code"] == "lead-sponsor")
    assert lead["name"] == "Allist Pharmaceuticals, Inc." and lead["classifier"][0]["coding"][0]["code"] == "industry"
    assert {o["type"][0]["coding"][0]["code"] for o in rs["outcomeMeasure"]} == {"primary", "secondary"}
    assert rs["descriptionSummary"].startswith("Patients with other advanced solid tumors")


def test_withdrawn_sites_are_not_published() -> None:
    record = study("NCT05850520")
    locations = record["protocolSection"]["contactsLocationsModule"]["locations"]
    rs = import_study(record).document["research_study"]
    assert len(rs["site"]) == sum(1 for loc in locations if loc.get("status") != "WITHDRAWN") < len(locations)


def test_structured_eligibility_fields_become_age_and_sex_criteria() -> None:
    doc = import_study(study("NCT03377387")).document
    by_id = {c["id"]: c for c in doc["criteria"]}
    assert by_id["age"]["age"] == {"min": 18} and by_id["age"]["machine_derived"] is True
    assert by_id["sex"]["sex"] == "female"
    exclusions = [c for c in doc["criteria"] if c.get("exclude")]
    assert exclusions and all(c["id"].startswith("exc-") for c in exclusions)


def test_a_record_without_eligibility_still_gives_a_valid_mapping() -> None:
    result = import_study(study("NCT03453554"))
    assert len(result.document["criteria"]) == 1
    assert "not_computable" in result.document["criteria"][0]
    assert result.counts.found == 0 and result.counts.no_criteria_stated
    assert "no criteria stated" in result.report()


# --- the command line --------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_from_a_search_page_writes_readable_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = CTGOV / "xiaoyibao" / "condition_query_response.json"
    code, out, _ = run_cli(capsys, "import", "NCT05438667", "--from-file", str(page), "--mappings-dir", str(tmp_path))
    assert code == 0
    assert re.match(
        r"NCT05438667: \d+ criteria found in the text, \d+ fully structured, .*, \d+ left as text; "
        r"registry age/sex fields: 1 → ",
        out,
    )
    text = (tmp_path / "NCT05438667.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Imported from ClinicalTrials.gov API v2")
    assert "Absolute neutrophil count≥1.5×10⁹/L" in text  # unicode kept, not escaped
    assert "{" not in text.split("criteria:")[1].splitlines()[1]  # block style
    doc = yaml.safe_load(text)
    parse_trial_criteria(doc, doc["id"], doc["research_study"]["title"])


def test_reimporting_a_draft_replaces_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    single = CTGOV / "xiaoyibao" / "NCT06008288.json"
    path = tmp_path / "NCT06008288.yaml"
    run_cli(capsys, "import", "--from-file", str(single), "--mappings-dir", str(tmp_path))
    path.write_text(path.read_text(encoding="utf-8").replace("inc-1", "inc-1-edited"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "import", "--from-file", str(single), "--mappings-dir", str(tmp_path))
    assert code == 0 and "unchanged" in out and "inc-1-edited" in path.read_text(encoding="utf-8")
    code, out, _ = run_cli(capsys, "import", "--from-file", str(single), "--mappings-dir", str(tmp_path), "--force")
    assert code == 0 and "(replaced)" in out
    assert "inc-1-edited" not in path.read_text(encoding="utf-8")


def test_reimporting_a_reviewed_mapping_keeps_its_criteria_and_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = CTGOV / "xiaoyibao" / "NCT06008288.json"
    path = tmp_path / "NCT06008288.yaml"
    run_cli(capsys, "import", "--from-file", str(single), "--mappings-dir", str(tmp_path))
    reviewed = path.read_text(encoding="utf-8").replace("status: draft", "status: active")
    reviewed = reviewed.replace("criteria:\n", "criteria:\n# reviewed by Dr X: inc-2 checked against protocol v3\n", 1)
    reviewed = reviewed.replace("title: A Phase II Study", "title: An outdated title")
    reviewed = reviewed.replace("# eligibility-text-sha256:", "# eligibility-text-sha256: 0000 was")
    path.write_text(reviewed, encoding="utf-8")
    code, out, err = run_cli(capsys, "import", "--from-file", str(single), "--mappings-dir", str(tmp_path), "--force")
    assert code == 0 and "(refreshed)" in out
    assert "eligibility text differs" in err
    text = path.read_text(encoding="utf-8")
    assert "# reviewed by Dr X" in text and "status: active" in text
    assert "An outdated title" not in text and "title: A Phase II Study" in text
    doc = yaml.safe_load(text)
    parse_trial_criteria(doc, doc["id"], doc["research_study"]["title"])


def test_dry_run_prints_the_research_study_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    download = CTGOV / "dgg32" / "ctg-studies(2).json"
    code, out, err = run_cli(
        capsys, "import", "--from-file", str(download), "--dry-run", "--mappings-dir", str(tmp_path)
    )
    assert code == 0 and not list(tmp_path.iterdir())
    resource = json.loads(out)
    assert resource["resourceType"] == "ResearchStudy" and resource["id"] == "NCT02663973"
    assert resource["identifier"][0]["value"] == "NCT02663973"
    assert "NCT02663973:" in err and "criteria found" in err


@responses.activate
def test_import_from_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTGOV_BASE_URL", "https://ctgov.test/api/v2")
    responses.get("https://ctgov.test/api/v2/studies/NCT06008288", json=recorded("xiaoyibao/NCT06008288.json"))
    code, out, _ = run_cli(capsys, "import", "NCT06008288", "--mappings-dir", str(tmp_path))
    assert code == 0 and (tmp_path / "NCT06008288.yaml").exists()


@responses.activate
def test_unknown_study_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTGOV_BASE_URL", "https://ctgov.test/api/v2")
    responses.get("https://ctgov.test/api/v2/studies/NCT00000001", status=404)
    code, _, err = run_cli(capsys, "import", "NCT00000001", "--mappings-dir", str(tmp_path))
    assert code == 1 and err.strip() == "error: NCT00000001 is not on ClinicalTrials.gov"


def test_bad_nct_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "import", "12345")
    assert code == 2 and "NCT" in err


def test_imported_mappings_load_into_the_catalog(tmp_path: Path) -> None:
    """The catalog publishes every imported study: ResearchStudy + a draft EvidenceVariable whose
    characteristics are the imported criteria, machine-derived ones flagged."""
    from service.catalog import load_catalog
    from service.fhir.conformance import EXT_MACHINE_DERIVED
    from service.importer.files import write_mapping

    studies = {s["protocolSection"]["identificationModule"]["nctId"]: s for s in every_study()}
    for record in studies.values():
        write_mapping(import_study(record), tmp_path)
    catalog = load_catalog(tmp_path)
    assert set(catalog.trials) == set(studies)
    trial = catalog.trials["NCT05438667"]
    assert trial.research_study["recruitment"]["eligibility"]["reference"] == "EvidenceVariable/NCT05438667-eligibility"
    eligibility = catalog.get("EvidenceVariable", "NCT05438667-eligibility")
    assert eligibility is not None and eligibility["status"] == "draft"
    link_ids = [c["linkId"] for c in eligibility["characteristic"]]
    assert link_ids[:3] == ["age", "inc-1", "inc-2"]
    flagged = {
        c["linkId"]
        for c in eligibility["characteristic"]
        if any(e["url"] == EXT_MACHINE_DERIVED and e["valueBoolean"] for e in c.get("extension", []))
    }
    assert flagged >= {"age", "inc-5", "exc-3"} and "inc-2" not in flagged
    r5check = r5check_or_skip()
    out = tmp_path / "published"
    out.mkdir()
    for view in catalog.resources("EvidenceVariable"):
        resource = catalog.get("EvidenceVariable", view["id"]) or {}
        (out / f"{resource['id']}.json").write_text(json.dumps(resource), encoding="utf-8")
    run = subprocess.run(
        [str(r5check), *sorted(str(p) for p in out.glob("*.json"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]


# --- self-contained records (no ../shared): Nil criteria, registry search, re-import by date -----


def minimal_study(nct: str, criteria: str, posted: str = "2025-08-07") -> dict[str, Any]:
    """The smallest v2 record the importer accepts, shaped like the API's."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": f"Study {nct} in non-small cell lung cancer"},
            "statusModule": {
                "overallStatus": "RECRUITING",
                "lastUpdateSubmitDate": "2025-08-04",
                "lastUpdatePostDateStruct": {"date": posted, "type": "ACTUAL"},
            },
            "conditionsModule": {"conditions": ["Non-small Cell Lung Cancer"]},
            "eligibilityModule": {"eligibilityCriteria": criteria, "sex": "ALL", "minimumAge": "18 Years"},
        }
    }


@pytest.mark.parametrize("nil", ["Nil", "None", "N/A", "Not applicable", "-"])
def test_nil_criteria_are_no_criteria_and_the_trial_cannot_be_eligible_on_age_alone(nil: str) -> None:
    result = import_study(
        minimal_study("NCT09000001", f"Inclusion Criteria:\n\n* {nil}\n\nExclusion Criteria:\n\n* {nil}")
    )
    criteria = result.document["criteria"]
    assert result.counts.no_criteria_stated and result.counts.found == 0 and result.counts.registry == 1
    assert "no criteria stated" in result.report() and "registry age/sex fields: 1" in result.report()
    assert [c["id"] for c in criteria] == ["age", "inc-1"] and "not_computable" in criteria[1]
    trial = parse_trial_criteria(result.document, "NCT09000001", "t")
    assert len(trial.criteria) == 2  # the unknown criterion keeps every patient from `eligible` (and `certain`)


def test_report_counts_the_registry_fields_apart_and_exclusions_separately() -> None:
    result = import_study(
        minimal_study(
            "NCT09000002",
            "Inclusion Criteria:\n\n* Histologically confirmed NSCLC\n* ECOG PS 0~1\n\n"
            "Exclusion Criteria:\n\n* Pregnant or breastfeeding women\n* Inability to swallow tablets",
        )
    )
    counts = result.counts
    # "Histologically confirmed NSCLC": the diagnosis is computed, the histology confirmed at screening (partly)
    assert (counts.found, counts.structured, counts.partly, counts.text, counts.registry) == (4, 2, 1, 1, 1)
    assert counts.exclusions == {"found": 2, "structured": 1, "partly": 0, "screening": 0, "text": 1}
    assert result.report().startswith("NCT09000002: 4 criteria found in the text, 2 fully structured, 1 partly")
    for criterion in result.document["criteria"]:
        assert criterion.get("machine_derived") or "not_computable" in criterion
    assert result.document["status"] == "draft"


API = "https://ctgov.test/api/v2"


@responses.activate
def test_import_query_pages_through_the_search_and_reimport_touches_only_changed_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTGOV_BASE_URL", API)
    first = minimal_study("NCT09000011", "Inclusion Criteria:\n\n* ECOG 0-1")
    second = minimal_study("NCT09000012", "Inclusion Criteria:\n\n* Age ≥ 18 years")
    query = {"query.cond": "NSCLC", "filter.overallStatus": "RECRUITING", "query.locn": "Boston"}
    responses.get(
        f"{API}/studies",
        match=[responses.matchers.query_param_matcher(query, strict_match=False)],
        json={"studies": [first], "nextPageToken": "page-2", "totalCount": 2},
    )
    responses.get(
        f"{API}/studies",
        match=[responses.matchers.query_param_matcher({**query, "pageToken": "page-2"}, strict_match=False)],
        json={"studies": [second], "totalCount": 2},
    )
    argv = ["import", "--query", "--condition", "NSCLC", "--status", "recruiting", "--location", "Boston"]
    code, out, _ = run_cli(capsys, *argv, "--mappings-dir", str(tmp_path))
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["NCT09000011.yaml", "NCT09000012.yaml"]
    assert "2 studies: 2 created" in out
    assert [("pageToken" in c.request.url) for c in responses.calls] == [False, True]  # two pages, then stop
    # The registry posts an update of the second record only.
    responses.reset()
    responses.get(
        f"{API}/studies",
        match=[responses.matchers.query_param_matcher(query, strict_match=False)],
        json={"studies": [first], "nextPageToken": "page-2", "totalCount": 2},
    )
    responses.get(
        f"{API}/studies",
        match=[responses.matchers.query_param_matcher({**query, "pageToken": "page-2"}, strict_match=False)],
        json={"studies": [minimal_study("NCT09000012", "Inclusion Criteria:\n\n* Age ≥ 20 years", "2025-09-01")]},
    )
    before = (tmp_path / "NCT09000011.yaml").stat().st_mtime_ns
    code, out, _ = run_cli(capsys, *argv, "--mappings-dir", str(tmp_path))
    assert code == 0
    assert "NCT09000011: lastUpdatePostDate 2025-08-07 unchanged" in out and "1 replaced, 1 unchanged" in out
    assert (tmp_path / "NCT09000011.yaml").stat().st_mtime_ns == before
    assert "min: 20" in (tmp_path / "NCT09000012.yaml").read_text(encoding="utf-8")


def test_import_query_needs_a_search_term(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "import", "--query")
    assert code == 1 and "--query needs --condition" in err
    code, _, err = run_cli(capsys, "import", "--query", "NCT09000011")
    assert code == 2 and "give no NCT number" in err

"""The screening report: `screen` writes report.html beside the results, self-contained (opens offline),
with a funnel chart per trial, the missing items, and per-patient rows with their reasons."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from service.screening.cli import main
from service.screening.report import MAX_ROWS

ROOT = Path(__file__).resolve().parents[2]
TRIAL = "NCT06494995"
FILES = ("eligible.json", "ineligible_platelets.json", "undetermined_stale_platelets.json")


class Resources(HTMLParser):
    """Every URL the page would load (src, href of link, url() in styles) and the svg count."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        for name in ("src", "href", "xlink:href"):
            if values.get(name) and not str(values[name]).startswith("#"):
                self.loads.append(str(values[name]))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    base = tmp_path_factory.mktemp("report")
    (base / "in").mkdir()
    (base / "mappings").mkdir()
    for name in FILES:
        shutil.copy(ROOT / "fixtures" / TRIAL / name, base / "in" / name)
    shutil.copy(ROOT / "mappings" / f"{TRIAL}.yaml", base / "mappings")
    argv = ["screen", "--input", str(base / "in"), "--output", str(base / "out"), "--date", "2026-03-01",
            "--mappings-dir", str(base / "mappings"), "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    path = base / "out" / "report.html"
    return path.read_text(encoding="utf-8"), base


def test_report_is_self_contained(report: tuple[str, Path]) -> None:
    html, _ = report
    parsed = Resources()
    parsed.feed(html)
    assert parsed.loads == []  # nothing fetched: no script, stylesheet, image or font from anywhere
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "@import" not in html


def test_report_has_a_funnel_chart_per_trial_and_the_verdict_counts(report: tuple[str, Path]) -> None:
    html, _ = report
    parsed = Resources()
    parsed.feed(html)
    assert parsed.svgs == 2  # one funnel (one trial) + the missing-items chart
    assert f"{TRIAL}: eligibility funnel" in html
    expected = yaml.safe_load((ROOT / "fixtures" / TRIAL / "scenarios.yaml").read_text(encoding="utf-8"))
    verdicts = [s["verdict"] for s in expected["scenarios"] if s["file"] in FILES]
    assert sorted(verdicts) == ["eligible", "ineligible", "undetermined"]
    assert "1 eligible, 1 undetermined, 1 not eligible" in re.sub(r"\s+", " ", html)


def test_report_lists_missing_items_and_each_patients_reasons(report: tuple[str, Path]) -> None:
    html, _ = report
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Platelet count Observation 1 1 1" in text  # the item, its type, patients, settles, pairs
    assert "inc-9: Good organ function" in text  # the ineligible patient's deciding criterion, in words
    assert "missing Platelet count (Observation) dated 2026-02-01 to 2026-03-01" in text
    assert "screening confirmation(s) pending" in text  # the eligible patient
    assert "3 patient × trial rows" in text
    assert MAX_ROWS >= 1000

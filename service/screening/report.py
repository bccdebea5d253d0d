"""The screening report: one self-contained HTML file (report.html) beside results.ndjson and summary.json.

Rule: made from the files the run wrote (summary.json, results.ndjson) and the trials' criteria, with a
Jinja2 template (autoescaped) and pygal charts rendered to inline SVG without pygal's external tooltip
script (`js=[]`; each chart keeps only its inline config object): the file opens
offline, from disk, in any browser, and can be mailed. It holds patient references (Patient/<id>) as the
results do, so it is kept where the results are kept. Per-patient rows are capped (MAX_ROWS) so the file
stays openable for a large population; the NDJSON results have every row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pygal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pygal.style import Style

from service.catalog import Trial
from service.screening.summary import VERDICTS

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_ROWS = 2000
TOP_ITEMS = 10
VERDICT_WORDS = {"eligible": "Eligible", "undetermined": "Undetermined", "ineligible": "Not eligible"}
# The page's verdict colours (service/web/static/app.css): green, amber, red; each bar is also labelled.
CHART_STYLE = Style(
    background="white", plot_background="white", foreground="#1b1f24", foreground_strong="#1b1f24",
    foreground_subtle="#4a5360", colors=("#2f7d46", "#b7791f", "#b3362c", "#0b5cad"),
    font_family="system-ui, sans-serif", value_font_size=12, label_font_size=12, major_label_font_size=12,
    legend_font_size=13, title_font_size=15,
)  # fmt: skip


@dataclass(frozen=True)
class PatientRow:
    patient: str
    study: str
    verdict: str
    reasons: tuple[str, ...]


def write_report(output: Path, trials: Sequence[Trial], on: dt.date) -> Path:
    summary = orjson.loads((output / "summary.json").read_bytes())
    by_id = {t.id: t for t in trials}
    rows, total_rows = _patient_rows(output / "results.ndjson", by_id)
    funnels = [
        _funnel(study, by_id[study].research_study.get("title", study) if study in by_id else study, counts)
        for study, counts in summary["trials"].items()
    ]
    items = summary["missing_data"][:TOP_ITEMS]
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = environment.get_template("report.html.j2").render(
        on=on.isoformat(),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        inputs=summary["input"],
        funnels=funnels,
        items=items,
        items_chart=_items_chart(items) if items else None,
        rows=rows,
        total_rows=total_rows,
        verdict_words=VERDICT_WORDS,
    )
    path = output / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _funnel(study: str, title: str, counts: dict[str, int]) -> dict[str, Any]:
    """Screened → not ruled out (eligible + undetermined) → eligible, as a horizontal bar funnel."""
    screened = sum(counts[v] for v in VERDICTS)
    steps = [
        ("Screened", screened),
        ("Not ruled out", counts["eligible"] + counts["undetermined"]),
        ("Eligible", counts["eligible"]),
    ]
    chart = pygal.HorizontalBar(
        style=CHART_STYLE, show_legend=False, print_values=True, width=640, height=200,
        js=[], disable_xml_declaration=True, explicit_size=False, show_y_guides=False,
    )  # fmt: skip
    chart.title = f"{study}: eligibility funnel"
    chart.x_labels = [label for label, _ in reversed(steps)]
    chart.add("patients", [value for _, value in reversed(steps)])
    return {"study": study, "title": title, "counts": counts, "screened": screened, "svg": _svg(chart)}


def _items_chart(items: list[dict[str, Any]]) -> Markup:
    chart = pygal.HorizontalBar(
        style=CHART_STYLE, show_legend=True, print_values=True, width=1000, height=140 + 44 * len(items),
        js=[], disable_xml_declaration=True, explicit_size=False, legend_at_bottom=True,
        truncate_label=-1, truncate_legend=-1,
    )  # fmt: skip
    chart.title = "Missing items: patients they would unlock"
    labels = [str(item["label"]) for item in reversed(items)]
    chart.x_labels = labels
    chart.add("patients needing it", [item["patients"] for item in reversed(items)])
    chart.add("decisions it alone settles", [item["settles"] for item in reversed(items)])
    return _svg(chart)


def _svg(chart: Any) -> Markup:
    # pygal builds the SVG with an XML library: every label and title in it is escaped.
    return Markup(chart.render(is_unicode=True))


def _patient_rows(results: Path, trials: dict[str, Trial]) -> tuple[list[PatientRow], int]:
    rows: list[PatientRow] = []
    total = 0
    for record in _records(results):
        total += 1
        if len(rows) < MAX_ROWS:
            rows.append(PatientRow(record["patient"], record["study"], record["verdict"], _reasons(record, trials)))
    return rows, total


def _records(results: Path) -> Iterator[dict[str, Any]]:
    with results.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


def _reasons(record: dict[str, Any], trials: dict[str, Trial]) -> tuple[str, ...]:
    trial = trials.get(record["study"])
    wording = {c.link_id: c.description for c in trial.criteria.walk()} if trial else {}
    reasons = [f"{link_id}: {wording.get(link_id, '')}".rstrip(": ") for link_id in record["deciding"]]
    for requirement in record["requirements"]:
        window = f" dated {requirement['since']} to {requirement['until']}" if requirement.get("since") else ""
        reasons.append(f"missing {requirement['label']} ({requirement['resource_type']}){window}")
    if record["needs_review"]:
        reasons.append("a criterion only a person can judge (text) is open")
    if record["verdict"] == "eligible" and record["screening"]:
        reasons.append(f"{record['screening']} screening confirmation(s) pending")
    return tuple(reasons)

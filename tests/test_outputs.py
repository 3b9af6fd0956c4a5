"""The one output writer (report/outputs.py) and the per-lesion registry (report/lesion_columns.py).

Expected values come from the demo study's files (truth.json and its clinical sidecar, written
by sample_data/make_sample.py) and from the report JSON read back independently of the writers.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netlm_imaging.api import analyze_with_context
from netlm_imaging.batch import run_cohort
from netlm_imaging.batch.cohort import discover_cohort
from netlm_imaging.errors import NetlmError
from netlm_imaging.report.lesion_columns import csv_columns, csv_names, html_columns
from netlm_imaging.report.outputs import OutputSet, write_outputs
from netlm_imaging.report.tables import LESION_COLUMNS, format_lesions_csv, lesion_rows

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_data" / "netlm_demo"


@pytest.fixture(scope="module")
def demo():
    return analyze_with_context(DEMO)


def test_write_outputs_writes_the_requested_set(demo, tmp_path):
    report, ctx = demo
    written = write_outputs(report, ctx, tmp_path, OutputSet.study(html=True))
    assert written == [tmp_path / "report.json", tmp_path / "report.html"]
    assert json.loads((tmp_path / "report.json").read_text()) == report.to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]  # no temporary left


def test_write_outputs_is_all_or_none(demo, tmp_path):
    """The SR needs a DICOM image: the demo is NIfTI, so the set fails and nothing already there changes."""
    report, ctx = demo
    (tmp_path / "report.json").write_text("previous run\n")
    with pytest.raises(NetlmError, match="DICOM"):
        write_outputs(report, ctx, tmp_path, OutputSet.study(html=True, sr=True))
    assert (tmp_path / "report.json").read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_batch_names_put_the_json_report_last():
    names = OutputSet.batch("s07", html=True, sr=True, json_extra={"batch": {}}).names()
    assert names == [
        "reports/s07.json",
        "reports/s07.html",
        "reports/s07.seg.dcm",
        "reports/s07.sr.dcm",
        "reports/s07.thumb.png",
    ]


class _Table(HTMLParser):
    """Rows of the first <table> after the 'Lesions' heading."""

    def __init__(self) -> None:
        super().__init__()
        self.state, self.rows, self.cell = "before", [], None

    def handle_starttag(self, tag, attrs):
        if self.state == "heading" and tag == "table":
            self.state = "table"
        elif self.state == "table" and tag == "tr":
            self.rows.append([])
        elif self.state == "table" and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if self.state == "table" and tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None
        elif self.state == "table" and tag == "table":
            self.state = "done"

    def handle_data(self, data):
        if self.state == "before" and data.strip() == "Lesions":
            self.state = "heading"
        elif self.cell is not None:
            self.cell += data


def _shown(value, decimals):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def test_html_lesion_table_shows_each_report_value_under_its_heading(demo, tmp_path):
    report, ctx = demo
    write_outputs(report, ctx, tmp_path, OutputSet.study(json=False, html=True))
    parser = _Table()
    parser.feed((tmp_path / "report.html").read_text())
    head, *body = parser.rows
    lesions = json.loads(report.to_json())["lesions"]
    assert len(body) == len(lesions) == 6
    expected_heads = {
        "id": "id",
        "volume (mL)": "volume_ml",
        "longest axial (mm)": "longest_axial_diameter_mm",
        "short axis (mm)": "short_axis_diameter_mm",
        "max 3D (mm)": "max_3d_diameter_mm",
        "segment": "couinaud_segment",
        "SUVmax": "suv_max",
    }
    decimals = {c.key: max(0, c.html_decimals or 0) for c in html_columns()}
    for title, key in expected_heads.items():
        if all(les[key] is None for les in lesions):  # e.g. SUVmax without PET: the column is left out
            assert title not in head
            continue
        col = head.index(title)
        for row, les in zip(body, lesions):
            assert row[col] == _shown(les[key], decimals[key]), (title, les["id"])
    # the long and the short axis differ on the demo's lesions: a swapped column is seen
    assert any(les["longest_axial_diameter_mm"] - les["short_axis_diameter_mm"] > 0.1 for les in lesions)


def test_lesion_rows_come_from_the_registry(demo):
    report, _ = demo
    data = report.to_dict()
    rows = lesion_rows(data, "demo")
    assert [r["lesion_id"] for r in rows] == [les["id"] for les in data["lesions"]]
    assert list(rows[0]) == list(LESION_COLUMNS)
    registered = {n for c in csv_columns() for n in csv_names(c)}
    assert set(LESION_COLUMNS[2:]) == registered
    back = list(csv.DictReader(io.StringIO(format_lesions_csv(rows))))
    for row, les in zip(back, data["lesions"]):
        assert float(row["volume_ml"]) == les["volume_ml"]
        assert float(row["short_axis_diameter_mm"]) == les["short_axis_diameter_mm"]
        xyz = [float(row[f"centroid_{a}_mm"]) for a in "xyz"]
        assert xyz == les["centroid_lps_mm"]


def test_cohort_csv_carries_the_classifications(tmp_path):
    """The demo's clinical sidecar declares extrahepatic disease: Cloyd 2020 makes it not resectable."""
    clinical = json.loads((DEMO / "clinical.json").read_text())
    assert clinical["extrahepatic_disease"] is True
    cohort = tmp_path / "cohort"
    shutil.copytree(DEMO, cohort / "demo")
    result = run_cohort(discover_cohort(cohort), tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "cohort.csv").read_text())))
    assert [r["status"] for r in rows] == ["ok"]
    assert rows[0]["resectable_cloyd"] == "false"
    report = json.loads((tmp_path / "out" / "reports" / "demo.json").read_text())
    assert report["batch"]["study_id"] == "demo"
    for col in ("mahuron_type", "burden_category", "distribution"):
        assert rows[0][col] == str(report["classification"][col]) != ""
    assert result.exit_code == 0


def test_an_earlier_runs_file_not_rewritten_is_kept_and_named(demo, tmp_path, caplog):
    """A QA page from a run with --html beside the report.json of a later run without it: kept, warned."""
    report, ctx = demo
    write_outputs(report, ctx, tmp_path, OutputSet.study(html=True))
    page = (tmp_path / "report.html").read_bytes()
    with caplog.at_level("WARNING", logger="netlm_imaging.report.outputs"):
        write_outputs(report, ctx, tmp_path, OutputSet.study())
    assert (tmp_path / "report.html").read_bytes() == page  # nothing already written is lost
    (msg,) = [r.getMessage() for r in caplog.records]
    assert f"{tmp_path}: report.html left by an earlier run is not rewritten" in msg
    caplog.clear()
    with caplog.at_level("WARNING", logger="netlm_imaging.report.outputs"):
        write_outputs(report, ctx, tmp_path, OutputSet.study(html=True))  # asked again: rewritten, no warning
    assert caplog.records == []

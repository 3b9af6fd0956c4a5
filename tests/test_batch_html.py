"""`netlm batch --html`: one QA page per study and a cohort index linking them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_batch import write_study

from netlm_imaging.cli import main


def test_batch_html_writes_pages_thumbnails_and_index(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    truths = {f"s{n:02d}": write_study(cohort / f"s{n:02d}", n) for n in range(2)}
    out = tmp_path / "out"
    disc = tmp_path / "disc.csv"
    disc.write_text("study,quantity,verdict\ns01,liver_volume_ml,DISCREPANT\n")
    args = ["batch", str(cohort), "--out", str(out), "--html", "--html-budget-mb", "2", "--discrepancies", str(disc)]
    assert main([*args, "--quiet"]) == 0
    index = (out / "index.html").read_text()
    for sid in truths:
        page = (out / "reports" / f"{sid}.html").read_text()
        m = re.search(r'<script type="application/json" id="netlm-data">(.*?)</script>', page, re.S)
        assert m
        report = json.loads((out / "reports" / f"{sid}.json").read_text())
        ids = [les["id"] for les in json.loads(m.group(1))["lesions"]]
        assert ids == [les["id"] for les in report["lesions"]]
        assert (out / "reports" / f"{sid}.thumb.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert re.search(rf'href="reports/{sid}\.html"', index), sid
    assert index.count('<img src="data:image/png;base64,') == len(truths)
    flags = dict(re.findall(r'<tr data-study="(\w+)" data-flags="(\d+)">', index))
    assert int(flags["s01"]) >= 1
    assert ">check</span>" in index


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--html", "--html-budget-mb", "0"], "--html-budget-mb 0.0: give a positive size"),
        (["--discrepancies", "x.csv"], "--discrepancies flags studies in index.html: add --html"),
        (["--html", "--discrepancies", "missing.csv"], "--discrepancies missing.csv: file not found"),
    ],
)
def test_batch_html_option_errors(tmp_path: Path, capsys, extra, message) -> None:
    cohort = tmp_path / "cohort"
    write_study(cohort / "s00", 0)
    assert main(["batch", str(cohort), "--out", str(tmp_path / "out"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err

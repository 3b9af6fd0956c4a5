"""`netlm batch --html`: one QA page per study and a cohort index linking them."""

from __future__ import annotations

import re
from pathlib import Path

from test_batch import write_study

from netlm_imaging.cli import main


def test_batch_html_writes_pages_and_index(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    truths = {f"s{n:02d}": write_study(cohort / f"s{n:02d}", n) for n in range(2)}
    out = tmp_path / "out"
    assert main(["batch", str(cohort), "--out", str(out), "--html", "--quiet"]) == 0
    index = (out / "index.html").read_text()
    for sid in truths:
        page = out / "reports" / f"{sid}.html"
        assert page.is_file()
        assert "data:image/png;base64," in page.read_text()
        assert re.search(rf"href=['\"]reports/{sid}\.html['\"]", index), sid

"""The QA page's lesion table gives the mean intensity in the image's unit (HU for CT, a.u. for MR)."""

from __future__ import annotations

import re

import pytest
from test_html import _ctx, _report

from netlm_imaging.report.html import write_study_html


@pytest.mark.parametrize(("modality", "unit"), [("CT", "HU"), ("MR", "a.u.")])
def test_mean_intensity_carries_the_unit_of_the_image(tmp_path, modality: str, unit: str) -> None:
    ctx = _ctx()
    ctx.image.meta["modality"] = modality
    for les in ctx.lesions:
        les.mean_intensity = 120.0
    report = _report(ctx)
    report["study"]["modality"] = modality
    text = write_study_html(report, ctx, tmp_path / "report.html").read_text()
    headers = re.findall(r"<button[^>]*>(mean intensity[^<]*)</button>", text)
    assert headers == [f"mean intensity ({unit})"]

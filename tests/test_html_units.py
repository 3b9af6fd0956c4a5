"""The QA page's lesion table gives the mean intensity in the image's unit (HU for CT, a.u. for MR, SUV for
a PET, Bq/mL for a PET that could not be converted to SUV: no patient weight)."""

from __future__ import annotations

import re

import pytest
from test_html import _ctx, _report

from netlm_imaging.report.html import write_study_html


@pytest.mark.parametrize(
    ("modality", "units", "unit"),
    [("CT", None, "HU"), ("MR", None, "a.u."), ("PT", "SUVbw", "SUV"), ("PT", "BQML", "Bq/mL")],
)
def test_mean_intensity_carries_the_unit_of_the_image(tmp_path, modality: str, units, unit: str) -> None:
    ctx = _ctx()
    ctx.image.meta["modality"] = modality
    if units is not None:  # as io/pet.py sets it: BQML when no weight allowed the SUV
        ctx.image.meta["units"] = units
    for les in ctx.lesions:
        les.mean_intensity = 120.0
    report = _report(ctx)
    report["study"]["modality"] = modality
    text = write_study_html(report, ctx, tmp_path / "report.html").read_text()
    headers = re.findall(r"<button[^>]*>(mean intensity[^<]*)</button>", text)
    assert headers == [f"mean intensity ({unit})"]
    readout_unit = re.search(r'"unit":\s*"([^"]+)"', text)
    assert readout_unit is not None
    assert readout_unit.group(1) == unit  # the crosshair readout's unit
    assert ("SUV 0-" in text) is (unit == "SUV")  # SUV window presets only on an image in SUV

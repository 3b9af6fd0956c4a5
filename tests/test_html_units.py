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


def test_a_pet_without_patient_weight_reads_in_bq_per_ml_through_analyze(tmp_path) -> None:
    """A real PET DICOM series (tests/pet_factory.py) without PatientWeight: no SUV, the image stays in Bq/mL
    (report.json says why), and the QA page labels it so."""
    import json

    import numpy as np
    from pet_factory import write_pet_series
    from phantoms import grid_affine, sphere_mask, write_nifti

    from netlm_imaging.cli import main

    aff = grid_affine((4.0, 4.0, 4.0), (-40.0, -40.0, -30.0))
    shape = (20, 20, 16)
    liver = sphere_mask(shape, aff, (0.0, 0.0, 0.0), 30.0)
    lesion = sphere_mask(shape, aff, (6.0, 4.0, 2.0), 8.0)
    act = np.where(lesion, 40000.0, np.where(liver, 8000.0, 1000.0))
    write_pet_series(tmp_path / "pet", act, aff, weight_kg=None)
    seg = write_nifti(tmp_path / "seg.nii.gz", np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8), aff)
    out = tmp_path / "out"
    argv = ["analyze", "--image", str(tmp_path / "pet"), "--seg", str(seg), "--out", str(out), "--html", "--quiet"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    (les,) = report["lesions"]
    assert les["mean_intensity"] == pytest.approx(40000.0, rel=1e-3)  # Bq/mL: the activity written
    text = (out / "report.html").read_text()
    assert re.findall(r"<button[^>]*>(mean intensity[^<]*)</button>", text) == ["mean intensity (Bq/mL)"]
    assert "SUV 0-" not in text

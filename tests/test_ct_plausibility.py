"""CT values that cannot be Hounsfield units are said so ([ct_plausibility], [D]), through ``netlm analyze``.

A CT whose export lost RescaleIntercept (Type 1 in the CT Image module) is read as stored values, as
pydicom's ``apply_modality_lut`` and SimpleITK read it: the volumes are right, but every mean
intensity of the report is 1024 higher than the HU the console labels it with. The phantom's liver
holds one value everywhere, so the mean the report must give is that value (the test's truth,
independent of the code); the stored value is computed here from the file's own RescaleIntercept.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from phantoms import physical_grid, write_nifti
from rules_coverage import covers
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main

SHAPE = (40, 36, 24)
AFFINE = oblique_affine(spacing=(1.2, 1.1, 2.5), angles_deg=(6.0, -4.0, 15.0), origin=(-30.0, 12.0, 80.0))
KEY = "ct_plausibility.liver_mean_hu_range"


def _liver() -> np.ndarray:
    pts = physical_grid(SHAPE, AFFINE)
    centre = AFFINE[:3, :3] @ ((np.array(SHAPE) - 1) / 2.0) + AFFINE[:3, 3]
    return np.linalg.norm(pts - centre, axis=-1) <= 18.0


def _nifti_study(tmp_path: Path, liver_value: float, background: float = -1000.0) -> tuple[Path, Path]:
    liver = _liver()
    ct = np.where(liver, liver_value, background).astype(np.float32)
    return (
        write_nifti(tmp_path / "ct.nii.gz", ct, AFFINE),
        write_nifti(tmp_path / "seg.nii.gz", liver.astype(np.uint8), AFFINE),
    )


def _run(tmp_path: Path, args: list[str], capsys) -> tuple[int, dict, str]:
    out = Path(tempfile.mkdtemp(prefix="out", dir=tmp_path))  # one per run: --out refuses another study's outputs
    rc = main(["analyze", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    report = json.loads((out / "report.json").read_text()) if rc == 0 else {}
    return rc, report, err


def _hu_warnings(report: dict) -> list[str]:
    return [w for w in report["warnings"] if KEY in w]


def _rules(tmp_path: Path, low: float, high: float) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"ct_plausibility": {"liver_mean_hu_range": [low, high]}}))
    return path


@pytest.mark.parametrize(("value", "warned"), [(60.0, False), (-50.0, False), (400.0, False), (400.5, True)])
def test_liver_mean_against_the_shipped_range(tmp_path, capsys, value, warned):
    """Shipped range -300 to 400 HU, ends included: 400 passes, 400.5 is said to be no HU value."""
    ct, seg = _nifti_study(tmp_path, value)
    rc, report, _ = _run(
        tmp_path, ["--image", str(ct), "--seg", str(seg), "--labels", "liver=1", "--modality", "CT"], capsys
    )
    assert rc == 0
    assert report["liver"]["mean_intensity"] == pytest.approx(value, abs=1e-3)
    assert bool(_hu_warnings(report)) is warned


def test_a_nifti_of_stored_values_is_warned(tmp_path, capsys):
    """Unsigned stored values (HU + 1024, no scl_inter): liver 60 HU reads 1084; the warning names the image."""
    ct, seg = _nifti_study(tmp_path, 60.0 + 1024.0, background=-1000.0 + 1024.0)
    rc, report, _ = _run(
        tmp_path, ["--image", str(ct), "--seg", str(seg), "--labels", "liver=1", "--modality", "CT"], capsys
    )
    assert rc == 0
    assert report["liver"]["mean_intensity"] == pytest.approx(1084.0)
    (warning,) = _hu_warnings(report)
    assert "ct.nii.gz" in warning
    assert "1084.0" in warning
    assert "not Hounsfield units" in warning


def test_an_image_of_unknown_modality_is_not_judged(tmp_path, capsys):
    """Without --modality a NIfTI is OT: its values claim no unit, so nothing is said of them."""
    ct, seg = _nifti_study(tmp_path, 1084.0)
    rc, report, _ = _run(tmp_path, ["--image", str(ct), "--seg", str(seg), "--labels", "liver=1"], capsys)
    assert rc == 0
    assert report["study"]["modality"] == "OT"
    assert not _hu_warnings(report)


def test_dicom_ct_without_rescale_intercept(tmp_path, capsys):
    """The real fault: every slice lost RescaleIntercept; the values are the stored ones, and the report says so."""
    liver = _liver()
    hu = np.where(liver, 60.0, -1000.0)
    files = write_image_series(tmp_path / "study" / "CT", hu, AFFINE)
    intercept = float(pydicom.dcmread(files[0]).RescaleIntercept)
    write_seg(tmp_path / "study" / "seg.dcm", files, [SegmentSpec("Liver", liver)])
    rc, report, _ = _run(tmp_path, [str(tmp_path / "study")], capsys)
    assert rc == 0
    assert report["liver"]["mean_intensity"] == pytest.approx(60.0)
    assert not _hu_warnings(report)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.RescaleIntercept
        ds.save_as(f)
    rc, report, _ = _run(tmp_path, [str(tmp_path / "study")], capsys)
    assert rc == 0
    assert report["liver"]["mean_intensity"] == pytest.approx(60.0 - intercept)  # stored = HU - intercept
    assert report["liver"]["volume_ml"] == pytest.approx(
        np.count_nonzero(liver) * abs(np.linalg.det(AFFINE[:3, :3])) / 1000
    )
    assert len(_hu_warnings(report)) == 1


@covers(KEY)
def test_the_range_comes_from_the_rules_file(tmp_path, capsys):
    """A rules file narrowing the range to -300..50 HU makes a 60 HU liver implausible; widening it accepts 1084."""
    ct, seg = _nifti_study(tmp_path, 60.0)
    base = ["--image", str(ct), "--seg", str(seg), "--labels", "liver=1", "--modality", "CT"]
    assert not _hu_warnings(_run(tmp_path, base, capsys)[1])
    rc, report, _ = _run(tmp_path, [*base, "--rules", str(_rules(tmp_path, -300.0, 50.0))], capsys)
    assert rc == 0
    assert "outside -300 to 50 HU" in _hu_warnings(report)[0]
    (tmp_path / "stored").mkdir()
    ct2, seg2 = _nifti_study(tmp_path / "stored", 1084.0)
    stored = ["--image", str(ct2), "--seg", str(seg2), "--labels", "liver=1", "--modality", "CT"]
    assert _hu_warnings(_run(tmp_path, stored, capsys)[1])
    rc, report, _ = _run(tmp_path, [*stored, "--rules", str(_rules(tmp_path, -300.0, 2000.0))], capsys)
    assert rc == 0
    assert not _hu_warnings(report)


@pytest.mark.parametrize("bad", [[400.0, -300.0], [0.0], ["a", "b"], [-300.0, float("inf")]])
def test_a_bad_range_is_refused(tmp_path, capsys, bad):
    """A range that is not two finite numbers low < high stops the run before any image is read (exit 3)."""
    ct, seg = _nifti_study(tmp_path, 60.0)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"ct_plausibility": {"liver_mean_hu_range": bad}}).replace("Infinity", "1e999"))
    rc = main(
        [
            "analyze",
            "--image",
            str(ct),
            "--seg",
            str(seg),
            "--labels",
            "liver=1",
            "--out",
            str(tmp_path / "o"),
            "--rules",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 3
    assert KEY in err
    assert "rules.json" in err
    assert len(err.strip().splitlines()) == 1

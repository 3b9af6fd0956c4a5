"""`netlm analyze` on a DICOM CT + SEG folder with every output: JSON, HTML, SR and derived SEG."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import highdicom as hd
import numpy as np
import pydicom
import pytest
from conftest import ROOT, oblique_affine
from dicom_factory import write_image_series
from phantoms import sphere_mask
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.dicom_tools import assert_dciodvfy_clean


def test_dicom_study_with_all_outputs(tmp_path):
    aff = oblique_affine(spacing=(1.2, 1.1, 2.5), angles_deg=(6.0, -3.0, 10.0), origin=(-40.0, -30.0, 100.0))
    shape = (48, 44, 20)
    ijk = np.indices(shape)
    liver = (ijk[0] >= 6) & (ijk[0] < 42) & (ijk[1] >= 5) & (ijk[1] < 40) & (ijk[2] >= 3) & (ijk[2] < 17)
    centre = aff[:3, :3] @ np.array([20.0, 20.0, 10.0]) + aff[:3, 3]
    lesion = sphere_mask(shape, aff, centre, 7.0)
    study = tmp_path / "study"
    files = write_image_series(study / "ct", np.where(liver, 60.0, -80.0), aff, shuffle_names=True, seed=5)
    write_seg(
        study / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver),
            SegmentSpec("Metastasis 1", lesion, property_type=pydicom.sr.codedict.codes.SCT.Neoplasm),
        ],
    )
    (study / "README.txt").write_text("exported by a PACS")
    out = tmp_path / "out"
    assert main(["analyze", str(study), "--out", str(out), "--html", "--sr", "--seg-out", "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    vox_ml = 1.2 * 1.1 * 2.5 / 1000
    assert rep["liver"]["volume_ml"] == pytest.approx((liver | lesion).sum() * vox_ml, rel=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(lesion.sum() * vox_ml, rel=1e-6)
    assert rep["study"]["modality"] == "CT"
    assert rep["study"]["study_instance_uid"] == str(pydicom.dcmread(files[0]).StudyInstanceUID)
    assert_dciodvfy_clean(out / "report_sr.dcm")
    assert_dciodvfy_clean(out / "derived_seg.dcm")
    sr = read_sr_measurements(out / "report_sr.dcm")
    assert sr["liver_volume_ml"] == pytest.approx(rep["liver"]["volume_ml"], rel=1e-4)
    assert sr["tumor_volume_ml"] == pytest.approx(rep["tumor"]["intrahepatic_volume_ml"], rel=1e-4)
    derived = pydicom.dcmread(out / "derived_seg.dcm")
    assert derived.Modality == "SEG"
    assert "Doe" not in str(derived.get("PatientName", ""))
    assert (out / "report.html").stat().st_size > 10_000
    text = (out / "report.json").read_text() + (out / "report.html").read_text()
    assert "SECRET-ID-123" not in text


def test_real_ge_ct_with_empty_charset_writes_sr_and_seg(tmp_path, shared):
    # dcmqi ct-3slice (real GE CT): SpecificCharacterSet present but empty, a one-component PatientName;
    # MANIFEST: liver.dcm = 107,098 voxels = 70.362 mL. highdicom refused the empty character set
    # ("'' is not a valid SpecificCharacterSetValues") and its person-name warning quoted the name.
    segs = shared("dcmqi_ct3slice_seg", "data", "segmentations")
    study = tmp_path / "study"
    shutil.copytree(segs / "ct-3slice", study / "ct")
    shutil.copy(segs / "liver.dcm", study / "liver.dcm")
    src = pydicom.dcmread(study / "ct" / "01.dcm", stop_before_pixels=True)
    assert src.SpecificCharacterSet == ""  # the file's own fact, the case under test
    name = str(src.PatientName)
    assert name
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", str(study), "--out", str(out), "--sr", "--seg-out"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert name not in res.stderr  # highdicom's person-name warning quoted it
    assert_dciodvfy_clean(out / "report_sr.dcm")
    assert_dciodvfy_clean(out / "derived_seg.dcm")
    sr = read_sr_measurements(out / "report_sr.dcm")
    assert sr["liver_volume_ml"] == pytest.approx(70.362, abs=5e-4)
    assert sr["tumor_volume_ml"] is None  # a liver-only segmentation measured no tumour: no tumour group
    derived = hd.seg.segread(out / "derived_seg.dcm")
    liver = derived.get_volume(combine_segments=True, skip_overlap_checks=True).array
    assert int(np.count_nonzero(liver)) == 107098
    assert name not in str(pydicom.dcmread(out / "derived_seg.dcm").get("PatientName", ""))

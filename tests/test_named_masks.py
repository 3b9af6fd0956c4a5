"""A 0/1 mask named after its structure, passed as ``--seg PATH`` without ``ROLE=``, is that role's mask.

TotalSegmentator writes one 0/1 file per structure (``liver.nii.gz``, ``liver_tumor.nii.gz``,
``spleen.nii.gz``); a study folder reads them by name (docs/study_folders.md), but the same files
passed with ``--seg`` were read with the LiTS numbering, whose 1 is the liver: the tumour became
liver (0 % involvement, no warning) and the spleen was added to the liver. Truths: voxel counts of
boxes placed here x |det(affine)| of an oblique grid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, oblique_affine
from phantoms import write_nifti

from netlm_imaging.api import analyze
from netlm_imaging.errors import LabelError

AFF = oblique_affine(spacing=(1.5, 1.25, 3.0), angles_deg=(6.0, -9.0, 18.0))
SHAPE = (44, 40, 20)
VOXEL_ML = abs(float(np.linalg.det(AFF[:3, :3]))) / 1000.0
LIVER = (slice(5, 35), slice(5, 30), slice(3, 15))  # 30 x 25 x 12 = 9000
TUMOUR = (slice(10, 16), slice(10, 16), slice(5, 9))  # 6 x 6 x 4 = 144
SPLEEN = (slice(37, 43), slice(30, 38), slice(4, 12))  # 6 x 8 x 8 = 384, beside the liver


def _mask(where) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    m[where] = 1
    return m


@pytest.fixture
def totalseg(tmp_path):
    out = tmp_path / "segmentations"
    out.mkdir()
    for name, where in (("liver", LIVER), ("liver_tumor", TUMOUR), ("spleen", SPLEEN)):
        write_nifti(out / f"{name}.nii.gz", _mask(where), AFF)
    write_nifti(tmp_path / "ct.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    return tmp_path


def test_totalsegmentator_masks_passed_with_seg_on_the_command_line(totalseg):
    segs = [str(totalseg / "segmentations" / f"{n}.nii.gz") for n in ("liver", "liver_tumor", "spleen")]
    argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", "--image", str(totalseg / "ct.nii.gz")]
    for s in segs:
        argv += ["--seg", s]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([*argv, "--json", "-"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, rel=1e-6)  # the spleen is not liver
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, rel=1e-6)
    assert rep["involvement_percent"] == pytest.approx(100 * 144 / 9000, abs=0.01)
    assert any("liver_tumor.nii.gz: read as the lesion mask its file name says" in w for w in rep["warnings"])


def test_a_liver_mask_alone_is_not_a_tumour_free_liver(totalseg):
    # as in a study folder: the lesions were not segmented, so no 0 % involvement
    rep = analyze(image=totalseg / "ct.nii.gz", segs=[totalseg / "segmentations" / "liver.nii.gz"])
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML, rel=1e-6)
    assert rep.tumor["lesions_segmented"] is False
    assert rep.involvement_percent is None


def test_labels_and_other_maps_are_read_as_before(totalseg):
    seg = totalseg / "segmentations" / "liver_tumor.nii.gz"
    # --labels always wins: the user reads the file's 1 as liver
    rep = analyze(image=totalseg / "ct.nii.gz", segs=[seg], labels="liver=1")
    assert rep.liver["volume_ml"] == pytest.approx(144 * VOXEL_ML, rel=1e-6)
    # a map named tumour that holds 1 and 2 is a label map (LiTS), not a 0/1 mask
    lab = _mask(LIVER)
    lab[TUMOUR] = 2
    write_nifti(totalseg / "tumour.nii.gz", lab, AFF)
    rep = analyze(image=totalseg / "ct.nii.gz", segs=[totalseg / "tumour.nii.gz"])
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, rel=1e-6)
    # a 0/1 map whose name has no role keeps the LiTS reading (1 = liver)
    write_nifti(totalseg / "case_007.nii.gz", _mask(LIVER), AFF)
    rep = analyze(image=totalseg / "ct.nii.gz", segs=[totalseg / "case_007.nii.gz"])
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML, rel=1e-6)
    assert rep.tumor["lesions_segmented"] is True  # a LiTS map without value 2: a tumour-free liver


def test_a_float_mask_named_after_its_structure(totalseg):
    # masks saved by scripts as float 0.0 / 1.0 are masks too
    write_nifti(totalseg / "tumor.nii.gz", _mask(TUMOUR).astype(np.float32), AFF)
    segs = [totalseg / "segmentations" / "liver.nii.gz", totalseg / "tumor.nii.gz"]
    rep = analyze(image=totalseg / "ct.nii.gz", segs=segs)
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, rel=1e-6)
    # a float map with other values is no mask: the LiTS reading (and its checks) as before
    half = _mask(TUMOUR).astype(np.float32) * 0.5
    write_nifti(totalseg / "tumor.nii.gz", half, AFF)
    with pytest.raises(LabelError, match="non-integer values"):
        analyze(image=totalseg / "ct.nii.gz", segs=segs)

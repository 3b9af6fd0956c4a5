"""Issue 12: inputs as clinical systems export them (single slices, junk files, odd contours, other grids).

Every truth is computed here, independently of the package: voxel counts of
masks the tests draw, times the voxel volume from the affine, or a peer reader
(SimpleITK) on the same files.
"""

from __future__ import annotations

import json
import subprocess
import sys

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------- item 3: single-slice series

PIXEL = 0.78125  # mm; 1314 pixels x 0.78125^2 x 5 mm = 4.01 mL


@pytest.mark.parametrize(
    ("tags", "step", "named"),
    [
        ({"SliceThickness": 5.0, "SpacingBetweenSlices": None}, 5.0, "SliceThickness"),
        ({"SliceThickness": 5.0, "SpacingBetweenSlices": 6.0}, 6.0, "SpacingBetweenSlices"),
    ],
)
def test_single_slice_step_from_the_header(tmp_path, tags, step, named):
    aff = np.diag([PIXEL, PIXEL, 2.0, 1.0])  # the 2 mm of the affine is not written anywhere a reader may use
    aff[:3, 3] = (-20.0, -15.0, 42.0)
    shape = (48, 40, 1)
    ii, jj = np.indices(shape[:2])
    disc = ((ii - 23.5) ** 2 + (jj - 19.5) ** 2 <= 20.5**2)[:, :, None]
    files = write_image_series(tmp_path / "ct", np.where(disc, 60.0, -100.0), aff, seed=3, extra_tags=tags)
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", disc)])
    if named == "SpacingBetweenSlices":  # SimpleITK (GDCM) reads it too; with SliceThickness alone it says 1.0
        assert sitk.ReadImage(str(files[0])).GetSpacing()[2] == pytest.approx(step)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    expected_ml = int(disc.sum()) * PIXEL * PIXEL * step / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(expected_ml, abs=1e-6)
    assert rep["study"]["grid"]["spacing_mm"][2] == pytest.approx(step)
    assert any("single slice" in w and named in w for w in rep["warnings"])


def test_single_slice_four_mL_like_simpleitk(tmp_path):
    """The issue's case: a 5 mm slice and 1314 pixels of 0.78125 mm give 4.01 mL (SimpleITK and highdicom agree)."""
    aff = np.diag([PIXEL, PIXEL, 1.0, 1.0])
    shape = (40, 40, 1)
    mask = np.zeros(shape, bool)
    mask.reshape(-1)[:1314] = True
    files = write_image_series(
        tmp_path / "ct", np.zeros(shape), aff, seed=4, extra_tags={"SliceThickness": 5.0, "SpacingBetweenSlices": 5.0}
    )
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", mask)])
    peer = sitk.ReadImage(str(files[0]))
    peer_ml = 1314 * float(np.prod(peer.GetSpacing())) / 1000.0
    hd_spacing = hd.imread(str(files[0])).get_volume().spacing
    assert 1314 * float(np.prod(hd_spacing)) / 1000.0 == pytest.approx(peer_ml)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert peer_ml == pytest.approx(4.01, abs=0.005)
    assert rep["liver"]["volume_ml"] == pytest.approx(peer_ml, abs=1e-6)


# ---------------------------------------------------------------- item 6: junk in study folders

JUNK_AFF = oblique_affine(spacing=(1.2, 1.1, 2.5))
JUNK_SHAPE = (20, 18, 8)


def _junk_study(root):
    ijk = np.indices(JUNK_SHAPE)
    liver = (ijk[0] >= 3) & (ijk[0] < 16) & (ijk[1] >= 2) & (ijk[1] < 15) & (ijk[2] >= 1) & (ijk[2] < 7)
    files = write_image_series(root / "ct", np.where(liver, 50.0, -50.0), JUNK_AFF, seed=6)
    (root / "seg").mkdir()
    write_seg(root / "seg" / "seg.dcm", files, [SegmentSpec("Liver", liver)])
    return files, int(liver.sum())


@pytest.mark.parametrize("junk", ["thumbs", "dangling", "cycle", "fake_dcm"])
def test_junk_in_a_study_folder_is_skipped_with_a_note(tmp_path, junk):
    study = tmp_path / "study"
    _, n_liver = _junk_study(study)
    ct = study / "ct"
    if junk == "thumbs":
        (ct / "Thumbs.db").write_bytes(b"")
        name = "Thumbs.db"
    elif junk == "dangling":
        (ct / "IM9999").symlink_to(tmp_path / "gone" / "IM9999")
        name = "IM9999: dangling symbolic link"
    elif junk == "cycle":
        (ct / "loop_a").symlink_to(ct / "loop_b")
        (ct / "loop_b").symlink_to(ct / "loop_a")
        name = "symbolic link cycle"
    else:
        (ct / "report.dcm").write_bytes(b"%PDF-1.4 this is a scanned request form, not DICOM" * 8)
        name = "report.dcm"
    res = _analyze(str(study))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(n_liver * abs(np.linalg.det(JUNK_AFF[:3, :3])) / 1000, abs=1e-6)
    assert any(name in n for n in rep["notes"]), rep["notes"]


@pytest.mark.parametrize("damage", ["preamble", "file_meta", "zero_bytes"])
def test_a_damaged_file_that_is_dicom_stays_an_error(tmp_path, damage):
    study = tmp_path / "study"
    files, _ = _junk_study(study)
    victim = files[3]
    data = bytearray(victim.read_bytes())
    if damage == "preamble":  # "DICM" intact, the header cut in the middle of the file meta group
        victim.write_bytes(bytes(data[:150]))
    elif damage == "file_meta":  # "DICM" marker damaged, the file meta group still there
        data[128] ^= 1
        victim.write_bytes(bytes(data))
    else:  # an interrupted copy of a slice
        victim.write_bytes(b"")
    res = _analyze(str(study))
    assert res.returncode == 3
    assert victim.name in res.stderr
    assert "Traceback" not in res.stderr

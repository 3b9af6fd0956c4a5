"""NIfTI geometry (io/nifti.py): sform/qform precedence, pixdim never a second source of spacing.

The headers are written here with nibabel; the expected affines are the LPS
affines the test chose (RAS in the file = diag(-1, -1, 1) @ LPS), and expected
volumes are voxel counts x |det| of the chosen affine.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import oblique_affine

from netlm_imaging.api import analyze
from netlm_imaging.errors import GeometryError, InputError
from netlm_imaging.io.nifti import read_nifti

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS, written out here
LPS = oblique_affine(spacing=(2.0, 1.5, 3.0), angles_deg=(7.0, -12.0, 30.0), origin=(-35.0, 18.0, 120.0))
SHAPE = (12, 10, 6)


def _save(path, array, *, sform=None, qform=None, pixdim=None):
    img = nib.Nifti1Image(array, None)
    img.set_sform(None if sform is None else FLIP @ sform, code=0 if sform is None else 1)
    img.set_qform(None if qform is None else FLIP @ qform, code=0 if qform is None else 1)
    if pixdim is not None:
        img.header["pixdim"][1:4] = pixdim
    nib.save(img, str(path))
    return path


def test_spacing_comes_from_the_sform_not_pixdim(tmp_path):
    # STYLE.md: nibabel's mask_volume reads pixdim; with sform 2 x 1.5 x 3 mm and pixdim 1 mm it is 9x too small
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:10, 2:8, 1:5] = 1
    seg[4:6, 4:6, 2:4] = 2
    p_img = _save(tmp_path / "img.nii.gz", np.zeros(SHAPE, np.int16), sform=LPS, pixdim=(1.0, 1.0, 1.0))
    p_seg = _save(tmp_path / "seg.nii.gz", seg, sform=LPS, pixdim=(1.0, 1.0, 1.0))
    assert nib.load(str(p_img)).header.get_zooms()[:3] == (1.0, 1.0, 1.0)  # the trap is really in the file
    vol = read_nifti(p_img)
    np.testing.assert_allclose(vol.affine, LPS, atol=1e-5)
    rep = analyze(image=p_img, segs=[p_seg])
    vox_ml = 2.0 * 1.5 * 3.0 / 1000.0
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(seg) * vox_ml, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(8 * vox_ml, rel=1e-6)


def test_qform_only(tmp_path):
    p = _save(tmp_path / "q.nii.gz", np.zeros(SHAPE, np.int16), qform=LPS)
    vol = read_nifti(p)
    np.testing.assert_allclose(vol.affine, LPS, atol=1e-4)  # quaternion storage: float32 precision
    assert vol.meta["geometry_known"] is True


def test_sform_wins_over_a_disagreeing_qform_with_a_warning(tmp_path):
    moved = LPS.copy()
    moved[:3, 3] += [5.0, 0.0, 0.0]
    p = _save(tmp_path / "sq.nii.gz", np.zeros(SHAPE, np.int16), sform=LPS, qform=moved)
    vol = read_nifti(p)
    np.testing.assert_allclose(vol.affine, LPS, atol=1e-5)
    assert any("sform and qform disagree" in w for w in vol.meta["warnings"])
    same = _save(tmp_path / "same.nii.gz", np.zeros(SHAPE, np.int16), sform=LPS, qform=LPS)
    assert read_nifti(same).meta["warnings"] == []


def test_no_geometry_is_flagged(tmp_path):
    p = _save(tmp_path / "none.nii.gz", np.zeros(SHAPE, np.int16))
    assert read_nifti(p).meta["geometry_known"] is False


def test_four_dimensional_images(tmp_path):
    one = _save(tmp_path / "one.nii.gz", np.zeros((*SHAPE, 1), np.int16), sform=LPS)
    assert read_nifti(one).shape == SHAPE
    two = _save(tmp_path / "two.nii.gz", np.zeros((*SHAPE, 2), np.int16), sform=LPS)
    with pytest.raises(InputError, match=r"two\.nii\.gz: expected a 3-D image, got shape \(12, 10, 6, 2\); split"):
        read_nifti(two)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.nii\.gz: file not found"):
        read_nifti(tmp_path / "nowhere.nii.gz")
    full = _save(tmp_path / "full.nii", np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE), sform=LPS)
    cut = tmp_path / "cut.nii"
    cut.write_bytes(full.read_bytes()[:-200])  # header intact, data short
    with pytest.raises(InputError, match=r"cut\.nii: image data cannot be read .*truncated or corrupt file"):
        read_nifti(cut)


def test_the_folder_scan_tells_nifti_from_dicom_without_importing_pydicom(tmp_path):
    # the folder scan sees .nii.gz / .nii / junk by their first bytes before it imports pydicom
    # (nibabel itself may import pydicom later, for its DICOM header extensions)
    import subprocess
    import sys
    from pathlib import Path

    seg = np.zeros(SHAPE, np.uint8)
    seg[2:10, 2:8, 1:5] = 1
    seg[4:6, 4:6, 2:4] = 2
    _save(tmp_path / "image.nii.gz", np.zeros(SHAPE, np.int16), sform=LPS)
    _save(tmp_path / "seg.nii", seg, sform=LPS)
    (tmp_path / "notes.txt").write_text("not an image")
    code = (
        "import sys, json\n"
        "from netlm_imaging.api import AnalyzeOptions, resolve_inputs\n"
        f"i = resolve_inputs({str(tmp_path)!r}, image=None, segs=(), labels=None, pet=None, options=AnalyzeOptions())\n"
        "print(json.dumps({'pydicom': 'pydicom' in sys.modules, 'image': str(i.image).rsplit('/', 1)[-1]}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    import json

    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts == {"pydicom": False, "image": "image.nii.gz"}, out.stderr[-800:]


def _zero_pixdim_on_disk(path, axis):
    """Write pixdim[axis] = 0 into the stored header (nibabel would recompute it from the affine on save)."""
    raw = bytearray(path.read_bytes())
    hdr = nib.Nifti1Header(bytes(raw[:348]), check=False)
    hdr["pixdim"][axis] = 0.0
    raw[:348] = hdr.binaryblock
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("with_qform", [True, False])
def test_a_zero_pixdim_without_sform_is_refused_not_read_as_1_mm(tmp_path, with_qform):
    # nibabel sets a zero pixdim to 1 when loading: 3 mm slices became 1 mm ones, every volume a third of the truth
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:10, 2:8, 1:5] = 1
    p_img = _save(tmp_path / "img.nii", np.zeros(SHAPE, np.int16), qform=LPS if with_qform else None)
    p_seg = _save(tmp_path / "seg.nii", seg, qform=LPS if with_qform else None)
    _zero_pixdim_on_disk(p_img, 3)
    assert nib.Nifti1Header(p_img.read_bytes()[:348], check=False)["pixdim"][3] == 0.0  # the trap is on disk
    with pytest.raises(GeometryError, match=r"img\.nii: pixdim\[3\] = 0: a voxel size of zero .*re-save the file"):
        read_nifti(p_img)
    with pytest.raises(GeometryError, match=r"img\.nii: pixdim\[3\] = 0"):
        analyze(image=p_img, segs=[p_seg])


def test_a_zero_pixdim_beside_an_sform_is_not_read(tmp_path):
    # the sform gives the spacing (2 x 1.5 x 3 mm); pixdim is never a second source of it
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:10, 2:8, 1:5] = 1
    p_img = _zero_pixdim_on_disk(_save(tmp_path / "img.nii", np.zeros(SHAPE, np.int16), sform=LPS), 3)
    p_seg = _zero_pixdim_on_disk(_save(tmp_path / "seg.nii", seg, sform=LPS), 3)
    np.testing.assert_allclose(read_nifti(p_img).affine, LPS, atol=1e-5)
    rep = analyze(image=p_img, segs=[p_seg])
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(seg) * 2.0 * 1.5 * 3.0 / 1000.0, rel=1e-6)

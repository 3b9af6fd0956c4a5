"""NRRD and MetaImage label maps whose header does not place them in space (pynrrd / numpy scripts).

A NRRD written with only ``spacings`` (no ``space``, ``space directions`` or ``space origin``), or a
MetaImage without Offset / TransformMatrix, has no placement: SimpleITK gives it origin 0 and
identity axes, which nobody declared. It was resampled from there onto the image and refused as
"outside the image ... an LPS/RAS flip". Such a file is now read like a NIfTI without sform / qform:
assumed on the image grid when the shapes agree, with a warning; refused when they differ.

Truths: the boxes' voxel counts times |det| of the image's (rotated) affine, computed here.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import analyze_json
from tests.test_faults_messages import netlm, one_line
from tests.test_nifti_exports import AFFINE_RAS, SHAPE, VOXEL_ML


def _labels(shape=SHAPE) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[5:25, 5:22, 2:10] = 1
    lab[10:14, 10:14, 4:7] = 2
    return lab


def _ct(tmp_path):
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), AFFINE_RAS), path)
    return path


#: Headers that give the size and spacings only: a NRRD (teem) and a MetaImage.
NRRD_HEADER = (
    "NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: {sizes}\nspacings: 0.8 0.9 2.5\n"
    "kinds: domain domain domain\nencoding: raw\n\n"
)
MHA_HEADER = (
    "ObjectType = Image\nNDims = 3\nDimSize = {sizes}\nElementSpacing = 0.8 0.9 2.5\n"
    "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n"
)


def _bare(path, lab, header=NRRD_HEADER):
    path.write_bytes(header.format(sizes=" ".join(map(str, lab.shape))).encode() + lab.tobytes(order="F"))
    return path


@pytest.mark.parametrize(("name", "header"), [("seg.nrrd", NRRD_HEADER), ("seg.mha", MHA_HEADER)])
def test_label_map_without_placement_is_taken_on_the_image_grid_with_a_warning(tmp_path, name, header):
    seg = _bare(tmp_path / name, _labels(), header)
    report = analyze_json("--image", str(_ct(tmp_path)), "--seg", str(seg))
    assert report["liver"]["volume_ml"] == pytest.approx(20 * 17 * 8 * VOXEL_ML, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(4 * 4 * 3 * VOXEL_ML, abs=1e-4)
    assert any(f"{seg.name}: mask or image has no orientation in its header" in w for w in report["warnings"])


def test_label_map_without_placement_and_another_shape_is_refused(tmp_path):
    seg = _bare(tmp_path / "seg.nrrd", _labels((30, 28, 10)))
    line = one_line(netlm("analyze", "--image", _ct(tmp_path), "--seg", seg, "--out", tmp_path / "out"))
    assert line.startswith(f"netlm: error: {seg}: mask shape (30, 28, 10) differs from image shape (30, 28, 12)")

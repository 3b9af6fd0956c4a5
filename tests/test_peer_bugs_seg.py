"""PEERS.md, highdicom / dcmqi / OHIF: DICOM SEG objects as those tools write them.

OHIF #1346, dcmjs PR #309, dcmqi #467: binary masks are often written as FRACTIONAL SEGs, and the
MaximumFractionalValue "does not look reliable": some exporters store 0/1 under a declared maximum of
255. Read literally every voxel of such a segment is 1/255 inside: the sum-of-fractions volume is 255
times too small and the >= 0.5 mask is empty, while the lesion count still comes from its voxels (a
0.003 mL "lesion" of 600 voxels). A segment storing only 0 and 1 under a maximum above 1 is a binary
mask; it is read so, with a warning. A properly scaled FRACTIONAL SEG (highdicom's writing of a binary
mask: 0/255) gives the BINARY volume, and a genuine fractional map is still the sum of its fractions.

Phantom: an oblique anisotropic CT (pydicom), SEGs written by highdicom; truths are numpy voxel counts
times the voxel volume from the affine's determinant.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (36, 34, 12)
AFFINE = oblique_affine(spacing=(0.8, 0.75, 2.0), angles_deg=(8.0, -5.0, 17.0), origin=(-80.0, 40.0, 380.0))
VOXEL_ML = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0


def _masks() -> tuple[np.ndarray, np.ndarray]:
    liver = np.zeros(SHAPE, bool)
    liver[4:32, 5:30, 1:11] = True
    tumour = np.zeros(SHAPE, bool)
    tumour[10:20, 12:24, 3:8] = True
    return liver, tumour


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("frac")
    paths = write_image_series(root / "ct", np.full(SHAPE, 60.0), AFFINE, seed=41)
    liver, tumour = _masks()
    segs = [SegmentSpec("Liver", liver.astype(float)), SegmentSpec("Tumour", tumour.astype(float), codes.SCT.Neoplasm)]
    scaled = write_seg(root / "frac255.dcm", paths, segs, segmentation_type="FRACTIONAL")
    ds = pydicom.dcmread(scaled)
    stored = ds.pixel_array
    assert int(stored.max()) == 255
    assert int(ds.MaximumFractionalValue) == 255
    ds.PixelData = (stored > 0).astype(np.uint8).tobytes()  # the exporter's 0/1 under the same declared maximum
    ds.save_as(root / "frac01.dcm")
    return root, scaled, root / "frac01.dcm"


def _run(root, seg) -> dict:
    return analyze_json("--image", str(root / "ct"), "--seg", str(seg))


def test_binary_mask_stored_as_fractional_0_1_under_a_maximum_of_255_is_read_as_binary(study):
    root, _, frac01 = study
    liver, tumour = _masks()
    rep = _run(root, frac01)
    assert rep["liver"]["voxel_count"] == int(liver.sum())
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour.sum() * VOXEL_ML, abs=1e-3)
    assert rep["tumor"]["intrahepatic_volume_ml_binary"] == pytest.approx(tumour.sum() * VOXEL_ML, abs=1e-3)
    (lesion,) = rep["lesions"]
    assert lesion["volume_ml"] == pytest.approx(tumour.sum() * VOXEL_ML, abs=1e-3)
    assert rep["involvement_percent"] == pytest.approx(100.0 * tumour.sum() / liver.sum(), abs=1e-3)
    said = [w for w in rep["warnings"] if "no stored value above 1; read as a binary mask" in w]
    assert len(said) == 2
    assert "MaximumFractionalValue 255" in said[0]


def test_binary_mask_written_as_fractional_by_highdicom_gives_the_binary_volumes(study):
    root, scaled, _ = study
    liver, tumour = _masks()
    rep = _run(root, scaled)
    assert rep["liver"]["voxel_count"] == int(liver.sum())
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour.sum() * VOXEL_ML, abs=1e-3)
    assert not any("read as a binary mask" in w for w in rep["warnings"])


def test_a_faint_fractional_map_storing_0_to_2_stays_the_sum_of_its_fractions(study, tmp_path):
    """Stored values 0, 1 and 2 under 255: a genuine (faint) probability map, not a mislabelled binary one."""
    root, scaled, _ = study
    liver, _ = _masks()
    ds = pydicom.dcmread(scaled)
    stored = ds.pixel_array.copy()
    n_frames = stored.shape[0]
    tum_frames = [
        f
        for f in range(n_frames)
        if int(ds.PerFrameFunctionalGroupsSequence[f].SegmentIdentificationSequence[0].ReferencedSegmentNumber) == 2
    ]
    faint = np.where(stored[tum_frames] > 0, 1, 0).astype(np.uint8)
    faint[:, ::2, :] *= 2  # every other row stores 2
    stored[tum_frames] = faint
    ds.PixelData = stored.astype(np.uint8).tobytes()
    ds.save_as(tmp_path / "faint.dcm")
    rep = _run(root, tmp_path / "faint.dcm")
    expected_ml = float(faint.sum()) / 255.0 * VOXEL_ML
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(expected_ml, abs=1e-5)
    assert not any("'Tumour'" in w and "read as a binary mask" in w for w in rep["warnings"])
    assert rep["liver"]["voxel_count"] == int(liver.sum())

"""A regular series whose ImagePositionPatient values were written rounded (0.1 mm, by an old exporter).

A 1.25 mm CT written to one decimal reads steps of 1.2 and 1.3 mm: not a missing slice and not an
irregular acquisition, but one regular step rounded. It was refused as "non-uniform slice steps"
(and --allow-resample would interpolate the pixels). The positions' decimal unit is read from the
values; when the least-squares line through them leaves residuals within that unit (and the unit is
under a fifth of the step), the fitted slope is the step, with a warning. Truths: the step and the
voxel count the factory wrote, and the real PET's irregular bed steps (MANIFEST: 3.27 / 3.29 / 3.19
mm, written to 6 decimals) still refused.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from netlm_imaging.errors import DicomError
from netlm_imaging.io.dicom_series import read_dicom_series
from tests.dicom_factory import write_image_series

SHAPE = (20, 18, 40)
STEP = 1.25


def _series(folder, decimals: int, *, drop: int | None = None, step: float = STEP, shift_from: int | None = None):
    """The factory's series, positions written to ``decimals``; slices from ``shift_from`` on moved 0.3 mm
    along the normal (one step of ``step + 0.3`` mm: an irregular acquisition, not a rounding)."""
    affine = np.diag([0.7, 0.7, step, 1.0])
    affine[:3, 3] = [-100.0, -90.0, -100.0]
    ks = [k for k in range(SHAPE[2]) if k != drop]
    paths = write_image_series(folder, np.zeros(SHAPE), affine, seed=7, slice_indices=ks)
    for p in paths:
        ds = pydicom.dcmread(p)
        position = [float(v) for v in ds.ImagePositionPatient]
        if shift_from is not None and int(ds.InstanceNumber) - 1 >= shift_from:
            position[2] += 0.3
        ds.ImagePositionPatient = [f"{v:.{decimals}f}" for v in position]
        ds.save_as(p)
    return paths


def test_positions_rounded_to_a_tenth_read_as_the_regular_step(tmp_path):
    _series(tmp_path / "ct", 1)
    vol = read_dicom_series(tmp_path / "ct")
    assert vol.shape == SHAPE
    assert vol.spacing[2] == pytest.approx(STEP, abs=0.005)  # 0.4 % of the step at most from 0.1 mm rounding
    assert not vol.meta["resampled"]
    (note,) = [w for w in vol.meta["warnings"] if "written to 0.1 mm" in w]
    assert "1.30 mm x" in note
    assert "1.20 mm x" in note


def test_a_missing_slice_of_a_rounded_series_is_still_a_missing_slice(tmp_path):
    _series(tmp_path / "ct", 1, drop=17)
    with pytest.raises(DicomError, match=r"missing slice: a gap of 2\.5 mm"):
        read_dicom_series(tmp_path / "ct")


def test_an_irregular_step_beyond_the_written_unit_stays_refused(tmp_path):
    # 2.5 mm steps written to 0.1 mm, one step of 2.8 mm: 0.3 mm off is three units, not a rounding
    _series(tmp_path / "ct", 1, step=2.5, shift_from=20)
    with pytest.raises(DicomError, match=r"non-uniform slice steps.*first irregular step 2\.8 mm"):
        read_dicom_series(tmp_path / "ct")


def test_positions_written_to_whole_millimetres_of_a_2_5_mm_series_stay_refused(tmp_path):
    # steps 2 / 3 mm: a whole-mm unit is 40 % of the step, too coarse to tell a rounding from an irregular series
    _series(tmp_path / "ct", 0, step=2.5)
    with pytest.raises(DicomError, match=r"non-uniform slice steps"):
        read_dicom_series(tmp_path / "ct")


def test_irregular_steps_written_precisely_stay_refused(shared):
    pet = shared("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET", "image")
    with pytest.raises(DicomError, match=r"non-uniform slice steps \(3\.27 mm x261"):
        read_dicom_series(pet)

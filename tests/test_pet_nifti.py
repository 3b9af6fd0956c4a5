"""PET as NIfTI (public PET/CT collections such as AutoPET publish SUV.nii.gz beside the CT).

A NIfTI/NRRD PET carries no units, dose, weight or times: values within the SUV limit are taken
as SUVbw with a warning; values above it (Bq/mL from a converter) cannot be converted and are
refused when the PET is given for uptake. Expected numbers are the phantom's own values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from phantoms import grid_affine, sphere_mask, write_nifti

ROOT = Path(__file__).resolve().parents[1]
C, S = np.cos(np.radians(10.0)), np.sin(np.radians(10.0))
AFF = grid_affine((4.0, 4.0, 4.0), (-60.0, -60.0, -40.0), np.array([[C, -S, 0.0], [S, C, 0.0], [0.0, 0.0, 1.0]]))
SHAPE = (30, 30, 20)
LIVER = sphere_mask(SHAPE, AFF, (0.0, 0.0, 0.0), 35.0)
SPLEEN = sphere_mask(SHAPE, AFF, (45.0, 40.0, 10.0), 12.0) & ~LIVER
LESION = sphere_mask(SHAPE, AFF, (8.0, 4.0, 2.0), 9.0)
LABELS = np.where(LESION, 2, np.where(LIVER, 1, np.where(SPLEEN, 3, 0))).astype(np.uint8)


def _suv(lesion: float = 25.0, scale: float = 1.0) -> np.ndarray:
    return (np.where(LESION, lesion, np.where(LIVER, 5.0, np.where(SPLEEN, 15.0, 1.0))) * scale).astype(np.float32)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--quiet"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("pet_nifti")
    write_nifti(d / "ct.nii.gz", np.where(LIVER, 60, -50).astype(np.int16), AFF)
    write_nifti(d / "suv.nii.gz", _suv(), AFF)
    write_nifti(d / "seg.nii.gz", LABELS, AFF)
    return d


def test_suv_nifti_in_a_study_folder_gives_the_pet_block(folder, tmp_path):
    # docs/study_folders.md names suv/pet/pt volumes the PET; it exited 3 ("no DICOM image series")
    out = tmp_path / "out"
    proc = _run([str(folder), "--labels", "liver=1,lesion=2,spleen=3", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    (les,) = rep["lesions"]
    assert les["suv_max"] == pytest.approx(25.0, abs=1e-3)
    assert les["krenning_score"] == 4  # 25 above the spleen's 15
    assert rep["pet"]["liver_suv_mean"] == pytest.approx(5.0, abs=1e-3)
    assert rep["pet"]["spleen_suv_mean"] == pytest.approx(15.0, abs=1e-3)
    assert any("suv.nii.gz" in w and "taken as SUVbw" in w for w in rep["warnings"])


def test_pet_nifti_in_bq_per_ml_is_refused_with_the_fix(folder, tmp_path):
    pet = tmp_path / "pet_bqml.nii.gz"
    write_nifti(pet, _suv(scale=2400.0), AFF)  # SUV x 2400: Bq/mL of 180 MBq in 75 kg
    out = tmp_path / "out"
    args = ["--image", str(folder / "ct.nii.gz"), "--seg", str(folder / "seg.nii.gz"), "--pet", str(pet)]
    proc = _run([*args, "--labels", "liver=1,lesion=2,spleen=3", "--out", str(out)])
    assert proc.returncode == 3
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in (str(pet), "reach 60000", "above SUV 200", "Pass the PET DICOM series folder"):
        assert needle in lines[0], (needle, lines[0])
    assert not (out / "report.json").exists()


@pytest.mark.parametrize(("scale", "measured"), [(1.0, True), (2400.0, False)])
def test_pet_nifti_as_the_image(folder, tmp_path, scale, measured):
    pet = tmp_path / "image.nii.gz"
    write_nifti(pet, _suv(scale=scale), AFF)
    out = tmp_path / "out"
    args = ["--image", str(pet), "--modality", "PT", "--seg", str(folder / "seg.nii.gz")]
    proc = _run([*args, "--labels", "liver=1,lesion=2,spleen=3", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(LIVER) * 64.0 / 1000.0, rel=1e-6)
    if measured:
        assert rep["lesions"][0]["suv_max"] == pytest.approx(25.0, abs=1e-3)
        assert rep["lesions"][0]["krenning_score"] == 4
    else:  # Bq/mL: the volumes stand, no SUV is invented, and the warning says why
        assert rep["pet"] is None
        assert any("no PET uptake was measured" in w for w in rep["warnings"])


def test_pet_nifti_at_the_suv_limit_is_suv_and_just_above_is_refused(tmp_path):
    """The rules file's pet_plausibility.suv_max_limit is 200: a maximum of 200 is still an SUV image, 200.5 is not."""
    from netlm_imaging.errors import InputError
    from netlm_imaging.io.loader import load_image
    from netlm_imaging.io.pet import suv_from_image_values

    for top, accepted in ((200.0, True), (200.5, False)):
        path = tmp_path / f"pet_{top:g}.nii.gz"
        write_nifti(path, _suv(lesion=top), AFF)
        vol = load_image(path)
        if accepted:
            assert suv_from_image_values(vol).meta["units"] == "SUVbw"
        else:
            with pytest.raises(InputError, match=r"reach 200\.5, above SUV 200"):
                suv_from_image_values(vol)

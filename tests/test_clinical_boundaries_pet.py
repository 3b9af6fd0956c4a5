"""clinical_rules.md 7.3 / 7.4 at their boundaries, through ``netlm analyze`` on a PET/CT study.

The study: a noise-free SUV NIfTI (taken as SUVbw, as public PET/CT collections publish it)
on an oblique 4 mm grid with a CT and a label map on the same grid; liver ball SUV 5, spleen
ball SUV 15, background 1, one 14 mm-radius lesion of uniform uptake ``v`` in the liver. Every
statistic of a uniform region is its value, so the lesion sits exactly where the test puts it
relative to the references. The expected grades are the project rule of section 7.3 written
out here: grade 2 when the uptake differs from the liver by LESS than 10 % (edges excluded),
1 below that band, 3 above it, 4 greater than the spleen (the kidney after splenectomy),
0 below 25 % of the liver; FDG PET is advised for grades <= 2. SRETV counts the lesion
voxels above the liver-reference SUVmax (section 7.4, normal-liver-background family).
"""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import write_nifti
from test_rules_outcomes_pet import published_grade

from netlm_imaging.cli import main

SHAPE = (50, 40, 36)
_R = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(7.0, -5.0, 11.0), origin=(0.0, 0.0, 0.0))[:3, :3]
AFFINE = np.eye(4)
AFFINE[:3, :3] = _R
AFFINE[:3, 3] = -_R @ ((np.array(SHAPE) - 1) / 2.0)
VOXEL_ML = 0.064  # 4 x 4 x 4 mm (a rotation keeps the volume)
_PTS = (np.indices(SHAPE).reshape(3, -1).T @ _R.T + AFFINE[:3, 3]).reshape(*SHAPE, 3)


def _ball(centre, radius):
    return np.linalg.norm(_PTS - np.asarray(centre, dtype=np.float64), axis=-1) <= radius


LIVER = _ball((-20.0, 0.0, 0.0), 60.0)
ORGAN = _ball((75.0, 0.0, 0.0), 22.0)  # the spleen, or a kidney after splenectomy
LESION = _ball((10.0, 0.0, 0.0), 14.0)
L_SUV, UPPER_SUV = 5.0, 15.0


def _expected_grade(v: float, upper: float | None = UPPER_SUV) -> int | None:
    """Section 7.3 written out (tests/test_rules_outcomes_pet.py); above the liver band without a spleen or
    kidney, 3 and 4 cannot be told apart."""
    if upper is None:
        return None if v >= 1.1 * L_SUV else published_grade(v, L_SUV, 0.0)
    return published_grade(v, L_SUV, upper)


def _run(tmp_path, v: float, organ: str | None = "spleen", liver: float = L_SUV) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    suv = np.ones(SHAPE, dtype=np.float32)
    suv[LIVER] = liver
    suv[ORGAN] = UPPER_SUV
    suv[LESION] = v
    labels = np.where(LESION, 2, np.where(LIVER, 1, np.where(ORGAN & (organ is not None), 3, 0))).astype(np.uint8)
    write_nifti(tmp_path / "ct.nii.gz", np.where(LIVER, 60, -50).astype(np.int16), AFFINE)
    write_nifti(tmp_path / "pet.nii.gz", suv, AFFINE)
    write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE)
    roles = "liver=1,lesion=2" + (f",{organ}=3" if organ else "")
    argv = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
    argv += ["--pet", str(tmp_path / "pet.nii.gz"), "--labels", roles, "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


@pytest.mark.parametrize(
    "v",
    [
        1.2, 1.25, 1.3,  # 0/1 edge: 25 % of the liver (1.25)
        4.4, 4.5, 4.6,  # 1/2 edge: 10 % below the liver (4.5 differs by exactly 10 %: outside the band)
        5.0,  # equal to the liver
        5.4, 5.5, 5.6,  # 2/3 edge: 10 % above the liver (5.5: outside the band, greater than liver)
        14.9, 15.0, 15.1,  # 3/4 edge: the spleen (15.0 is not greater than the spleen)
    ],
)  # fmt: skip
def test_krenning_grade_and_fdg_advice_at_each_edge(tmp_path, v):
    rep = _run(tmp_path, v)
    pet, (les,) = rep["pet"], rep["lesions"]
    assert (pet["liver_reference"]["suv_mean"], pet["upper_reference"]["suv_mean"]) == (L_SUV, UPPER_SUV)
    assert pet["upper_reference"]["organ"] == "spleen"
    assert les["krenning_statistic_suv"] == pytest.approx(v, rel=1e-6)
    grade = _expected_grade(v)
    assert les["krenning_score"] == grade
    assert les["fdg_pet_advised"] is (grade <= 2)
    assert (les["id"] in pet["fdg_pet_advised_lesion_ids"]) is (grade <= 2)


@pytest.mark.parametrize(
    ("liver", "v"),
    [("4.7", "4.23"), ("4.7", "5.17"), ("5.3", "4.77"), ("5.3", "5.83"), ("5.3", "1.325"), ("5.3", "5.82")],
)
def test_a_float32_pet_exactly_at_a_band_edge_is_graded_as_the_edge(tmp_path, liver, v):
    """A float32 PET (most NIfTI PETs) stores a liver of 4.7 and a lesion of 4.23 (= 0.9 x 4.7) each rounded to
    float32: the lesion reads 4.5e-8 above 0.9 x the liver it reads, and was graded 2, inside the band; 5.83 =
    1.1 x 5.3 read 4.9e-8 below 1.1 x liver and was 2, not 3. The expected grade is section 7.3 in exact decimal
    arithmetic."""
    rep = _run(tmp_path, float(v), liver=float(liver))
    les = rep["lesions"][0]
    assert les["krenning_statistic_suv"] == pytest.approx(float(v), rel=1e-6)
    exact = published_grade(Decimal(v), Decimal(liver), Decimal(UPPER_SUV), band=Decimal("0.10"),
                            no_uptake=Decimal("0.25"), ratio=Decimal(1))  # fmt: skip
    assert les["krenning_score"] == exact


@pytest.mark.parametrize("v", [14.9, 15.0, 15.1])
def test_after_splenectomy_the_kidney_is_the_grade_4_reference(tmp_path, v):
    """Section 7.3: score 4 is uptake greater than the spleen, "kidneys if spleen not applicable"."""
    rep = _run(tmp_path, v, organ="kidney")
    assert rep["pet"]["upper_reference"]["organ"] == "kidney"
    assert rep["lesions"][0]["krenning_score"] == _expected_grade(v) == (4 if v > 15.0 else 3)


def test_without_spleen_or_kidney_grade_3_and_4_stay_undecided(tmp_path):
    rep = _run(tmp_path, 15.1, organ=None)
    les = rep["lesions"][0]
    assert les["krenning_score"] is None  # above the liver: 3 or 4, the reference that decides is missing
    assert _run(tmp_path / "low", 5.4, organ=None)["lesions"][0]["krenning_score"] == 2  # decided without it


@pytest.mark.parametrize("v", [4.9, 5.0, 5.1])
def test_hepatic_sretv_counts_only_tissue_above_the_liver_suvmax(tmp_path, v):
    """rel:0.45 delineation, avid floor = liver-reference SUVmax (5.0): a lesion at the liver level adds no
    SRETV; just above it the whole lesion counts (TLSRE = SRETV x SUVmean)."""
    pet = _run(tmp_path, v)["pet"]
    assert pet["sretv_avid_floor_suv"] == L_SUV
    expected_ml = float(np.count_nonzero(LESION)) * VOXEL_ML if v > L_SUV else 0.0
    assert pet["sretv_ml"] == pytest.approx(expected_ml, abs=1e-6)
    assert pet["tlsre"] == pytest.approx(expected_ml * v, rel=1e-5, abs=1e-6)


INNER = _ball((10.0, 0.0, 0.0), 8.0)  # the lesion's hot centre (SUV 20); its shell is LESION minus INNER


@pytest.mark.parametrize(
    ("delineation", "edge"),
    [("rel:0.45", 0.45 * 20.0), ("abs:9", 9.0), ("liver:1.8", 1.8 * L_SUV)],  # all three put the edge at SUV 9
)
@pytest.mark.parametrize("shell", [8.9, 9.0, 9.1])
def test_sretv_delineations_count_voxels_at_their_threshold(tmp_path, delineation, edge, shell):
    """Section 7.4: rel:p counts voxels >= p x the lesion SUVmax, abs:t >= t, liver:k >= k x liver SUVmean.
    A lesion with a 20 SUV centre and a shell at 8.9 / 9.0 / 9.1: the shell counts from 9.0 (both are above the
    liver SUVmax 5, the avid floor)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "rules.toml").write_text(f'[pet]\ndefault_delineation = "{delineation}"\n')
    suv = np.ones(SHAPE, dtype=np.float32)
    suv[LIVER] = L_SUV
    suv[ORGAN] = UPPER_SUV
    suv[LESION] = shell
    suv[INNER] = 20.0
    labels = np.where(LESION, 2, np.where(LIVER, 1, np.where(ORGAN, 3, 0))).astype(np.uint8)
    for name, arr in (("ct", np.where(LIVER, 60, -50).astype(np.int16)), ("pet", suv), ("seg", labels)):
        write_nifti(tmp_path / f"{name}.nii.gz", arr, AFFINE)
    argv = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
    argv += ["--pet", str(tmp_path / "pet.nii.gz"), "--labels", "liver=1,lesion=2,spleen=3", "--rules"]
    argv += [str(tmp_path / "rules.toml"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    pet = json.loads((tmp_path / "out" / "report.json").read_text())["pet"]
    assert pet["delineation"] == delineation
    counted = np.count_nonzero(INNER) + (np.count_nonzero(LESION & ~INNER) if shell >= edge else 0)
    assert pet["sretv_ml"] == pytest.approx(counted * VOXEL_ML, abs=1e-6)


#: (true SUV, expected grade) of four lesions on a ring in the liver, away from the grade edges
RING = {0: (5.0, 2), 90: (14.0, 3), 180: (1.0, 0), 270: (20.0, 4)}


def _ring_centre(angle: int) -> np.ndarray:
    a = np.radians(angle)
    return np.array([-20.0, 0.0, 0.0]) + 35.0 * np.array([np.cos(a), np.sin(a), 0.0])


@pytest.mark.parametrize("image", ["clean", "noise 12 %", "blur 7 mm"])
def test_a_noisy_or_blurred_pet_keeps_every_grade(tmp_path, image):
    """Issue 14's cases through ``netlm analyze``: equal to liver stays 2, SUV 14 (spleen 15) stays 3, background
    stays 0, above the spleen stays 4, with seeded 12 % voxel noise or a 7 mm FWHM blur."""
    from scipy import ndimage

    truth = np.ones(SHAPE)
    truth[LIVER] = L_SUV
    truth[ORGAN] = UPPER_SUV
    lesions = np.zeros(SHAPE, dtype=bool)
    for angle, (v, _) in RING.items():
        ball = _ball(_ring_centre(angle), 14.0)
        truth[ball] = v
        lesions |= ball
    if image.startswith("noise"):
        truth = truth * (1.0 + 0.12 * np.random.default_rng(35).standard_normal(SHAPE))
    elif image.startswith("blur"):
        truth = ndimage.gaussian_filter(truth, 7.0 / (2.0 * np.sqrt(2.0 * np.log(2.0))) / 4.0)
    labels = np.where(lesions, 2, np.where(LIVER, 1, np.where(ORGAN, 3, 0))).astype(np.uint8)
    for name, arr in (("ct", np.where(LIVER, 60, -50).astype(np.int16)), ("pet", truth.astype(np.float32))):
        write_nifti(tmp_path / f"{name}.nii.gz", arr, AFFINE)
    write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE)
    argv = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
    argv += ["--pet", str(tmp_path / "pet.nii.gz"), "--labels", "liver=1,lesion=2,spleen=3"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(rep["lesions"]) == 4
    for les in rep["lesions"]:
        angle = min(RING, key=lambda a: np.linalg.norm(np.asarray(les["centroid_lps_mm"]) - _ring_centre(a)))
        assert np.linalg.norm(np.asarray(les["centroid_lps_mm"]) - _ring_centre(angle)) < 2.0
        assert les["krenning_score"] == RING[angle][1], (image, RING[angle][0], les["krenning_statistic_suv"])

"""PET uptake against a peer: SimpleITK reads the same PET DICOM series and labels and computes the statistics.

The phantom has seeded noise; the SUVs are computed here from SimpleITK's Bq/mL and the QIBA
factor written out in the test, the per-lesion SUVmax / SUVmean with SimpleITK's
LabelStatisticsImageFilter on its own connected components, and the liver reference mean and SD
with numpy over the voxel centres of the reported 3 cm sphere.
"""

from __future__ import annotations

import numpy as np
import pytest
from pet_factory import write_pet_series
from phantoms import grid_affine, physical_grid, sphere_mask, write_nifti

from netlm_imaging.api import analyze

sitk = pytest.importorskip("SimpleITK")

T_HALF, DOSE, WEIGHT, DELAY = 4069.8, 180e6, 82.0, 3900.0  # injection 09:55:00, series 11:00:00
FACTOR = WEIGHT * 1000.0 / (DOSE * 2.0 ** (-DELAY / T_HALF))  # QIBA: SUVbw per Bq/mL
C, S = np.cos(np.radians(7.0)), np.sin(np.radians(7.0))
AFF = grid_affine((3.0, 3.0, 3.5), (-90.0, -84.0, -70.0), np.array([[C, -S, 0.0], [S, C, 0.0], [0.0, 0.0, 1.0]]))
SHAPE = (60, 56, 40)
LESIONS = (((-20.0, -5.0, 0.0), 9.0, 14.0), ((15.0, 10.0, 8.0), 7.0, 4.0), ((-5.0, 25.0, -10.0), 6.0, 25.0))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("pet_peer")
    liver = sphere_mask(SHAPE, AFF, (0.0, 5.0, 0.0), 52.0)
    spleen = sphere_mask(SHAPE, AFF, (62.0, 55.0, 25.0), 14.0) & ~liver
    suv = np.full(SHAPE, 1.0)
    suv[liver], suv[spleen] = 5.0, 15.0
    labels = np.where(liver, 1, 0) + np.where(spleen, 3, 0)
    for centre, radius, uptake in LESIONS:
        m = sphere_mask(SHAPE, AFF, centre, radius)
        suv[m], labels[m] = uptake, 2
    rng = np.random.default_rng(1405)
    noisy = suv * (1.0 + 0.12 * rng.standard_normal(SHAPE))
    slopes = [2.0 + 0.25 * (k % 5) for k in range(SHAPE[2])]  # per-slice RescaleSlope (Bq/mL per count)
    write_pet_series(
        root / "pet",
        np.clip(noisy, 0.0, None) / FACTOR,
        AFF,
        slopes=slopes,
        weight_kg=WEIGHT,
        dose_bq=DOSE,
        injection_time="095500",
    )
    seg = write_nifti(root / "labels.nii.gz", labels.astype(np.uint8), AFF)
    rep = analyze(image=root / "pet", segs=[seg], labels="liver=1,lesion=2,spleen=3")
    return root, rep


def _sitk_suv(root):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(root / "pet")))
    bqml = sitk.Cast(reader.Execute(), sitk.sitkFloat64)
    return bqml * FACTOR


def test_lesion_suvmax_and_suvmean_match_simpleitk(study):
    root, rep = study
    suv = _sitk_suv(root)
    labels = sitk.ReadImage(str(root / "labels.nii.gz"))
    labels = sitk.Resample(labels, suv, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    components = sitk.ConnectedComponent(labels == 2, True)
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(suv, components)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(components)
    peers = {
        tuple(np.round(shape.GetCentroid(n), 0)): (stats.GetMaximum(n), stats.GetMean(n))
        for n in stats.GetLabels()
        if n
    }
    assert len(peers) == len(rep.lesions) == 3
    for les in rep.lesions:
        # SimpleITK's centroids are LPS, as ours
        key = min(peers, key=lambda c: np.linalg.norm(np.subtract(c, les["centroid_lps_mm"])))
        peak, mean = peers[key]
        assert les["suv_max"] == pytest.approx(peak, rel=2e-4, abs=1e-3)
        assert les["suv_mean"] == pytest.approx(mean, rel=2e-4, abs=1e-3)


def test_liver_reference_matches_numpy_over_its_sphere(study):
    root, rep = study
    ref = rep.pet["liver_reference"]
    assert ref["method"] == "sphere"
    suv = sitk.GetArrayFromImage(_sitk_suv(root)).transpose(2, 1, 0)  # SimpleITK arrays are [k, j, i]
    dist = np.sqrt(((physical_grid(SHAPE, AFF) - np.asarray(ref["centre_lps_mm"])) ** 2).sum(-1))
    inside = dist <= ref["diameter_mm"] / 2 + 1e-3  # ties at 15 mm count; the centre is reported to 1e-4 mm
    assert ref["voxel_count"] == int(inside.sum())
    assert ref["suv_mean"] == pytest.approx(float(suv[inside].mean()), rel=2e-4)
    assert ref["suv_sd"] == pytest.approx(float(suv[inside].std(ddof=1)), rel=2e-3)
    assert rep.pet["liver_suv_mean"] == pytest.approx(5.0, rel=0.03)  # the phantom's healthy liver

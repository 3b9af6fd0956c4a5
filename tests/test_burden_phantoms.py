"""Burden and lesion geometry on analytic phantoms (anisotropic, oblique; truths computed here)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import grid_affine, physical_grid, sphere_mask, write_nifti
from scipy.spatial.distance import pdist

from netlm_imaging.api import analyze
from netlm_imaging.classify.recist import measurable_limit_mm
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.measure.burden import measure_burden
from netlm_imaging.measure.lesions import max_pairwise_distance
from netlm_imaging.segmentation import MaskLayer
from netlm_imaging.volume import Volume


def _layers(vol: Volume, **masks: np.ndarray) -> list[MaskLayer]:
    return [MaskLayer(role, vol.with_array(m)) for role, m in masks.items()]


def test_cube_volumes_on_oblique_anisotropic_grid():
    aff = oblique_affine(spacing=(0.5, 0.5, 2.0))
    shape = (30, 30, 12)
    vol = Volume(np.zeros(shape, dtype=np.float32), aff)
    liver = np.zeros(shape, bool)
    liver[2:28, 2:28, 1:11] = True
    lesion = np.zeros(shape, bool)
    lesion[10:20, 10:20, 3:8] = True  # 10 x 10 x 5 voxels = 500 voxels
    res = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion))
    vox_ml = 0.5 * 0.5 * 2.0 / 1000.0
    assert res.ctx.intrahepatic_tumor_ml == pytest.approx(500 * vox_ml)
    assert res.ctx.liver_volume_ml == pytest.approx(26 * 26 * 10 * vox_ml)
    (les,) = res.ctx.lesions
    # box between voxel centres: extents 4.5, 4.5, 8.0 mm -> space diagonal
    assert les.max_3d_diameter_mm == pytest.approx(np.sqrt(4.5**2 + 4.5**2 + 8.0**2))
    assert les.voxel_count == 500


def test_liver_including_or_excluding_lesions_gives_same_totals():
    aff = grid_affine((0.8, 0.8, 2.5), (-50.0, 20.0, -100.0))
    shape = (60, 50, 20)
    vol = Volume(np.zeros(shape, dtype=np.float32), aff)
    liver_incl = sphere_mask(shape, aff, (-26.0, 40.0, -75.0), 18.0)
    lesion = sphere_mask(shape, aff, (-30.0, 38.0, -75.0), 6.0) & liver_incl
    liver_excl = liver_incl & ~lesion
    a = measure_burden(vol, _layers(vol, liver=liver_incl, lesion=lesion))
    b = measure_burden(vol, _layers(vol, liver=liver_excl, lesion=lesion))
    assert a.ctx.liver_volume_ml == pytest.approx(b.ctx.liver_volume_ml)
    assert a.ctx.intrahepatic_tumor_ml == pytest.approx(b.ctx.intrahepatic_tumor_ml)
    vox_ml = 0.8 * 0.8 * 2.5 / 1000
    assert a.ctx.liver_volume_ml == pytest.approx(liver_incl.sum() * vox_ml)
    assert b.extra["liver_mask_included_lesions"] is False
    assert a.extra["liver_mask_included_lesions"] is True


def test_total_liver_map_box_and_volumes_with_bulging_abutting_and_distant_lesions():
    """Total liver = liver mask UNION the intrahepatic lesions (truth: the masks OR-ed here), in memory order."""
    aff = oblique_affine(spacing=(0.7, 0.8, 2.0), angles_deg=(4.0, -6.0, 12.0))
    shape = (50, 44, 18)
    vox_ml = 0.7 * 0.8 * 2.0 / 1000
    for order in ("C", "F"):
        liver = np.zeros(shape, bool, order=order)
        liver[5:30, 6:30, 2:14] = True
        bulging = np.zeros(shape, bool, order=order)
        bulging[24:36, 10:18, 4:9] = True  # half inside the liver, half beyond its box
        abutting = np.zeros(shape, bool, order=order)
        abutting[30:34, 22:26, 5:8] = True  # face to face with the liver (x = 30), outside it
        distant = np.zeros(shape, bool, order=order)
        distant[44:48, 36:40, 12:16] = True  # far from the liver: extrahepatic
        lesion = bulging | abutting | distant
        vol = Volume(np.zeros(shape, np.int16, order=order), aff)
        res = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion))
        total = liver | bulging | abutting
        assert np.array_equal(res.ctx.liver, total)
        lo, hi = np.argwhere(total).min(0), np.argwhere(total).max(0) + 1
        assert res.ctx.liver_bbox == tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        assert res.ctx.liver_volume_ml == pytest.approx(np.count_nonzero(total) * vox_ml)
        assert res.ctx.intrahepatic_tumor_ml == pytest.approx(np.count_nonzero(bulging | abutting) * vox_ml)
        assert res.ctx.extrahepatic_tumor_ml == pytest.approx(np.count_nonzero(distant) * vox_ml)
        assert sorted(les.location for les in res.ctx.lesions) == ["extrahepatic", "intrahepatic", "intrahepatic"]
        assert res.extra["liver_mask_included_lesions"] is False
        inclusive = measure_burden(vol, _layers(vol, liver=total, lesion=bulging | abutting))
        assert inclusive.extra["liver_mask_included_lesions"] is True
        assert np.array_equal(inclusive.ctx.liver, total)


def test_sphere_voxel_counts_match_lattice_enumeration():
    # the truth: lattice points of the grid within r of the centre, enumerated independently
    aff = oblique_affine(spacing=(0.9, 0.7, 1.5), angles_deg=(8.0, -4.0, 15.0))
    shape = (70, 80, 40)
    centre = aff[:3, :3] @ np.array([35.0, 40.0, 20.0]) + aff[:3, 3]
    p = physical_grid(shape, aff)
    truths = {}
    for r in (4.0, 9.5, 12.0):
        truths[r] = int((((p - centre) ** 2).sum(-1) <= r * r).sum())
    for r, n in truths.items():
        vol = Volume(np.zeros(shape, np.float32), aff)
        m = sphere_mask(shape, aff, centre, r)
        res = measure_burden(vol, _layers(vol, lesion=m))
        assert res.ctx.lesions[0].voxel_count == n
        assert res.ctx.lesions[0].volume_ml == pytest.approx(n * 0.9 * 0.7 * 1.5 / 1000)
        # voxel-count volume converges on 4/3 pi r^3 for the larger spheres
        if r >= 9:
            assert res.ctx.lesions[0].volume_ml == pytest.approx(4 / 3 * np.pi * r**3 / 1000, rel=0.03)
        # max 3D diameter via the hull equals brute force over all voxel centres
        pts = p[m]
        brute = pdist(pts).max()
        assert res.ctx.lesions[0].max_3d_diameter_mm == pytest.approx(brute, abs=1e-6)
        assert 2 * r - 2 * 1.5 <= brute <= 2 * r


def test_axial_diameters_of_a_box_in_an_axial_image():
    aff = grid_affine((0.6, 0.9, 4.0), (10.0, -20.0, 30.0))
    shape = (40, 40, 10)
    vol = Volume(np.zeros(shape, np.float32), aff)
    lesion = np.zeros(shape, bool)
    lesion[5:25, 10:16, 2:5] = True  # 20 x 6 x 3 voxels
    (les,) = measure_burden(vol, _layers(vol, lesion=lesion)).ctx.lesions
    ex, ey = 19 * 0.6, 5 * 0.9  # extents between voxel centres
    diag = np.hypot(ex, ey)
    assert les.longest_axial_diameter_mm == pytest.approx(diag)
    # short axis: width of the rectangle perpendicular to its diagonal = 2 * ex * ey / diag
    assert les.short_axis_diameter_mm == pytest.approx(2 * ex * ey / diag)
    assert les.max_3d_diameter_mm == pytest.approx(np.sqrt(ex**2 + ey**2 + 8.0**2))


def test_axial_diameter_on_an_oblique_mr_is_measured_in_the_patient_transverse_plane():
    # an ellipsoid with semi-axes 12 (L), 6 (P), 5 (S) mm on a 10-degree oblique grid
    aff = oblique_affine(spacing=(0.7, 0.7, 1.0), angles_deg=(10.0, 0.0, 0.0), origin=(-25.0, -25.0, -20.0))
    shape = (72, 72, 42)
    p = physical_grid(shape, aff)
    c = p[36, 36, 21]
    m = ((p[..., 0] - c[0]) / 12) ** 2 + ((p[..., 1] - c[1]) / 6) ** 2 + ((p[..., 2] - c[2]) / 5) ** 2 <= 1
    vol = Volume(np.zeros(shape, np.float32), aff)
    (les,) = measure_burden(vol, _layers(vol, lesion=m)).ctx.lesions
    # analytic: longest transverse diameter 24 mm (L-R), short axis 12 mm; voxel-centre sampling
    # and the transverse resampling lose up to about one voxel
    assert les.longest_axial_diameter_mm == pytest.approx(24.0, abs=1.5)
    assert les.short_axis_diameter_mm == pytest.approx(12.0, abs=1.5)
    assert les.max_3d_diameter_mm == pytest.approx(24.0, abs=1.5)


def test_two_mm_rule_for_intrahepatic_lesions():
    aff = grid_affine((1.0, 0.75, 2.0), (0.0, 0.0, 0.0))
    shape = (50, 20, 10)
    vol = Volume(np.zeros(shape, np.float32), aff)
    liver = np.zeros(shape, bool)
    liver[0:20, :, :] = True  # last liver voxel centre at x = 19 mm
    near = np.zeros(shape, bool)
    near[21:24, 5:8, 3:6] = True  # first centre at x = 21: 2.0 mm away -> intrahepatic
    far = np.zeros(shape, bool)
    far[32:35, 5:8, 3:6] = True  # 13 mm away -> extrahepatic
    gap3 = np.zeros(shape, bool)
    gap3[22:25, 12:15, 3:6] = True  # first centre at x = 22: 3.0 mm -> extrahepatic
    res = measure_burden(vol, _layers(vol, liver=liver, lesion=near | far | gap3))
    loc = {tuple(np.round(les.centroid_lps_mm, 3)): les.location for les in res.ctx.lesions}
    assert sorted(loc.values()) == ["extrahepatic", "extrahepatic", "intrahepatic"]
    assert loc[(22.0, 4.5, 8.0)] == "intrahepatic"
    assert loc[(23.0, 9.75, 8.0)] == "extrahepatic"
    vox_ml = 1.0 * 0.75 * 2.0 / 1000
    assert res.ctx.intrahepatic_tumor_ml == pytest.approx(27 * vox_ml)
    assert res.ctx.extrahepatic_tumor_ml == pytest.approx(54 * vox_ml)
    # extrahepatic voxels never enter the liver total
    assert res.ctx.liver_volume_ml == pytest.approx((20 * 20 * 10 + 27) * vox_ml)


def test_border_lesion_is_flagged_not_zeroed_and_mean_intensity():
    aff = grid_affine((1.0, 1.0, 3.0), (5.0, 5.0, 5.0))
    shape = (20, 20, 8)
    img = np.full(shape, 40.0, np.float32)
    lesion = np.zeros(shape, bool)
    lesion[0:4, 5:9, 2:4] = True
    img[lesion] = 130.0
    img[0:2, 5:9, 2:4] = 150.0  # half of the lesion brighter: mean = 140
    vol = Volume(img, aff)
    (les,) = measure_burden(vol, _layers(vol, lesion=lesion)).ctx.lesions
    assert les.touches_image_border is True
    assert les.voxel_count == 32
    assert les.mean_intensity == pytest.approx(140.0)


def test_connected_components_26_vs_6():
    aff = grid_affine((1.0, 1.0, 1.0), (3.0, -4.0, 7.0))
    shape = (10, 10, 10)
    vol = Volume(np.zeros(shape, np.float32), aff)
    m = np.zeros(shape, bool)
    m[2, 2, 2] = m[3, 3, 3] = True  # touching only at a corner
    assert len(measure_burden(vol, _layers(vol, lesion=m), connectivity=26).ctx.lesions) == 1
    assert len(measure_burden(vol, _layers(vol, lesion=m), connectivity=6).ctx.lesions) == 2


@pytest.mark.parametrize(
    ("longest", "slice_mm", "expected"),
    [(10.0, 5.0, True), (9.9, 2.0, False), (11.0, 6.0, False), (12.0, 6.0, True)],
)
def test_recist_measurability_rule(longest, slice_mm, expected):
    # the one RECIST implementation (classify.recist) with the shipped rules: 10 mm, or 2 x slices over 5 mm
    assert (longest >= measurable_limit_mm(slice_mm, load_rules()["recist"])) is expected


def test_max_pairwise_distance_hull_equals_brute_force():
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(3000, 3)) * [10, 4, 2]
    d, u = max_pairwise_distance(pts)
    sub = pts
    brute = 0.0
    for s in range(0, len(sub), 500):
        brute = max(brute, float(np.sqrt(((sub[s : s + 500, None] - sub[None]) ** 2).sum(-1)).max()))
    assert d == pytest.approx(brute)
    assert np.linalg.norm(u) == pytest.approx(1.0)


def test_masks_on_another_grid_are_resampled_by_physical_position(tmp_path):
    aff = oblique_affine(spacing=(1.0, 1.0, 2.0), angles_deg=(0.0, 0.0, 20.0))
    shape = (40, 40, 16)
    img = np.zeros(shape, np.int16)
    write_nifti(tmp_path / "img.nii.gz", img, aff)
    full = np.zeros(shape, np.uint8)
    full[5:35, 5:35, 2:14] = 1
    full[10:16, 10:16, 5:9] = 2
    vox_ml = 2.0 / 1000
    # a label map on a twice finer in-plane grid with the same origin: every image voxel centre is one of its
    # voxel centres, so nearest-neighbour resampling by position returns the image-grid masks
    fine = np.repeat(np.repeat(full, 2, axis=0), 2, axis=1)
    fine_aff = aff.copy()
    fine_aff[:3, :2] *= 0.5
    write_nifti(tmp_path / "fine.nii.gz", fine, fine_aff)
    report = analyze(image=tmp_path / "img.nii.gz", segs=[tmp_path / "fine.nii.gz"])
    assert report.study["grid"]["resampled"] is True
    assert any("resampled onto the image grid" in w for w in report.warnings)
    assert report.liver["volume_ml"] == pytest.approx(30 * 30 * 12 * vox_ml)
    assert report.tumor["intrahepatic_volume_ml"] == pytest.approx(6 * 6 * 4 * vox_ml)
    # a crop of the same grid (shape and origin differ, voxel positions coincide) is placed, not resampled
    crop = full[4:37, 3:38, 1:15]
    crop_aff = aff.copy()
    crop_aff[:3, 3] = aff[:3, :3] @ np.array([4, 3, 1]) + aff[:3, 3]
    write_nifti(tmp_path / "seg.nii.gz", crop, crop_aff)
    report = analyze(image=tmp_path / "img.nii.gz", segs=[tmp_path / "seg.nii.gz"])
    assert report.study["grid"]["resampled"] is False
    assert not any("resampled" in w for w in report.warnings)
    assert report.liver["volume_ml"] == pytest.approx(30 * 30 * 12 * vox_ml)
    assert report.tumor["intrahepatic_volume_ml"] == pytest.approx(6 * 6 * 4 * vox_ml)


def test_lesion_mask_without_liver_reports_volumes_and_null_involvement(tmp_path):
    aff = oblique_affine()
    shape = (30, 30, 10)
    write_nifti(tmp_path / "img.nii.gz", np.zeros(shape, np.int16), aff)
    les = np.zeros(shape, np.uint8)
    les[3:8, 3:8, 2:5] = 1
    write_nifti(tmp_path / "les.nii.gz", les, aff)
    report = analyze(image=tmp_path / "img.nii.gz", segs=[f"lesion={tmp_path / 'les.nii.gz'}"])
    assert report.involvement_percent is None
    assert report.liver["volume_ml"] is None
    vox_ml = abs(np.linalg.det(aff[:3, :3])) / 1000
    assert report.tumor["intrahepatic_volume_ml"] == pytest.approx(75 * vox_ml)
    assert any("no liver mask" in w for w in report.warnings)
    report.to_dict()  # validates against the schema


def _gap_phantom(gap_voxels: int) -> tuple[Volume, np.ndarray, np.ndarray]:
    """Liver box and a lesion ``gap_voxels`` steps of 0.5 mm past its last voxel along i (oblique grid)."""
    vol = Volume(np.zeros((40, 12, 6), dtype=np.float32), oblique_affine(spacing=(0.5, 0.8, 2.5)))
    liver = np.zeros(vol.shape, bool)
    liver[2:20, 2:10, 1:5] = True
    lesion = np.zeros(vol.shape, bool)
    first = 19 + gap_voxels  # the liver's last voxel along i is 19
    lesion[first : first + 3, 4:7, 2:4] = True
    return vol, liver, lesion


@pytest.mark.parametrize(("gap_voxels", "location"), [(4, "intrahepatic"), (5, "extrahepatic"), (6, "extrahepatic")])
def test_intrahepatic_margin_is_two_mm(gap_voxels, location):
    """DESIGN.md: a lesion is intrahepatic if it overlaps the liver dilated by 2 mm.

    Voxel centres 0.5 mm apart along i: a lesion whose nearest voxel centre is 4 steps (2.0 mm) from
    the liver is intrahepatic, 5 steps (2.5 mm) or more is extrahepatic. Checked with the default
    margin of both the measurement and the API (a 2.9 mm margin would make 2.5 mm intrahepatic).
    """
    vol, liver, lesion = _gap_phantom(gap_voxels)
    # independent distance: nearest voxel centres of the two masks, in patient mm
    a = vol.index_to_lps(np.argwhere(liver))
    b = vol.index_to_lps(np.argwhere(lesion))
    nearest = min(np.linalg.norm(a - p, axis=1).min() for p in b)
    assert nearest == pytest.approx(0.5 * gap_voxels)
    (les,) = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion)).ctx.lesions
    assert les.location == location
    from netlm_imaging.api import AnalyzeOptions

    assert AnalyzeOptions().margin_mm == 2.0


@pytest.mark.parametrize(("gap_voxels", "location"), [(6, "intrahepatic"), (7, "extrahepatic")])
def test_intrahepatic_margin_option_is_a_distance_in_mm(gap_voxels, location):
    """margin_mm=3: 6 steps of 0.5 mm (3.0 mm) are inside the margin, 7 (3.5 mm) are not."""
    vol, liver, lesion = _gap_phantom(gap_voxels)
    (les,) = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion), margin_mm=3.0).ctx.lesions
    assert les.location == location


@pytest.mark.parametrize("side", ["below", "above"])
def test_lesion_abutting_across_a_thick_slice_is_intrahepatic(side):
    """Slices 2.5 mm apart (more than the 2 mm margin): a lesion on the next slice, face to face, abuts."""
    aff = oblique_affine(spacing=(0.7, 0.8, 2.5))
    shape = (16, 16, 9)
    vol = Volume(np.zeros(shape, dtype=np.float32), aff)
    liver = np.zeros(shape, bool)
    liver[3:13, 3:13, 3:6] = True
    lesion = np.zeros(shape, bool)
    k = 2 if side == "below" else 6
    lesion[6:9, 6:9, k] = True
    (les,) = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion)).ctx.lesions
    assert les.location == "intrahepatic"
    lesion[6:9, 6:9, k] = False
    lesion[6:9, 6:9, 1 if side == "below" else 7] = True  # one more slice away (5 mm): outside
    (les,) = measure_burden(vol, _layers(vol, liver=liver, lesion=lesion)).ctx.lesions
    assert les.location == "extrahepatic"


@pytest.mark.parametrize("n", [254, 255, 300])
def test_the_lesion_label_map_holds_every_id(n):
    """n one-voxel lesions two voxels apart: the map gives each its own id, whatever the count (the uint8 map
    holds at most 254 lesions; beyond, a wider type)."""
    side = int(np.ceil(np.sqrt(n)))
    shape = (2 * side + 2, 2 * side + 2, 5)
    vol = Volume(np.zeros(shape, np.int16), oblique_affine(spacing=(1.0, 1.2, 2.0)))
    liver = np.zeros(shape, bool)
    liver[:, :, 1:4] = True
    lesion = np.zeros(shape, bool)
    spots = [(1 + 2 * (m % side), 1 + 2 * (m // side), 2) for m in range(n)]
    for s in spots:
        lesion[s] = True
    res = measure_burden(vol, _layers(vol, liver=liver & ~lesion, lesion=lesion))
    labels = np.asarray(res.ctx.lesion_labels)
    assert len(res.ctx.lesions) == n
    ids = sorted(int(labels[s]) for s in spots)
    assert ids == list(range(1, n + 1))  # distinct: none wrapped around
    assert int(np.count_nonzero(labels)) == n


def test_fractional_total_liver_takes_the_bulging_lesion_and_not_the_distant_one():
    """Fractional masks (SEG FRACTIONAL): total liver = per-voxel max(liver fraction, intrahepatic lesion fraction),
    summed; a lesion bulging out of the liver adds its outside fractions, a distant one adds nothing. Truths are
    sums over the arrays built here (oblique anisotropic grid)."""
    aff = oblique_affine(spacing=(0.7, 0.9, 2.0))
    shape = (40, 36, 16)
    vol = Volume(np.zeros(shape, dtype=np.float32), aff)
    rng = np.random.default_rng(11)
    liver = np.zeros(shape, np.float32)
    liver[4:24, 4:30, 2:14] = rng.integers(1, 256, size=(20, 26, 12)) / 255.0
    bulging = np.zeros(shape, np.float32)
    bulging[18:30, 10:20, 5:10] = rng.integers(1, 256, size=(12, 10, 5)) / 255.0  # i 24..29 outside the liver
    bulging[26:28, 12:14, 6] = 0.5  # exactly at the binary view's threshold (>= 0.5 counts)
    liver[6:8, 6:8, 3] = 0.5
    ii, jj, kk = np.indices(shape)
    ball = (ii - 35.5) ** 2 + (jj - 31.5) ** 2 + 4 * (kk - 11) ** 2 <= 6.5  # its box holds voxels outside it
    distant = np.where(ball, rng.integers(1, 256, size=shape) / 255.0, 0.0).astype(np.float32)
    lesions = bulging + distant
    layers = [
        MaskLayer("liver", vol.with_array(liver), fractional=True),
        MaskLayer("lesion", vol.with_array(lesions), fractional=True),
    ]
    res = measure_burden(vol, layers)
    vox_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    f64 = np.float64
    assert res.method["volume"] == "fractional_sum"
    assert res.ctx.intrahepatic_tumor_ml == pytest.approx(bulging.sum(dtype=f64) * vox_ml, rel=1e-6)
    assert res.ctx.extrahepatic_tumor_ml == pytest.approx(distant.sum(dtype=f64) * vox_ml, rel=1e-6)
    total = np.maximum(liver, bulging)  # the distant lesion is not liver
    assert res.ctx.liver_volume_ml == pytest.approx(total.sum(dtype=f64) * vox_ml, rel=1e-6)
    assert res.ctx.liver_volume_ml > liver.sum(dtype=f64) * vox_ml + 0.01  # the bulge counts: the rule matters
    binary = (liver >= 0.5) | (bulging >= 0.5)
    assert res.extra["liver_volume_ml_binary"] == pytest.approx(np.count_nonzero(binary) * vox_ml, rel=1e-9)
    assert res.extra["intrahepatic_volume_ml_binary"] == pytest.approx(
        np.count_nonzero(bulging >= 0.5) * vox_ml, rel=1e-9
    )
    assert res.extra["liver_mask_included_lesions"] is False
    truth = (liver > 0) | (bulging > 0)
    np.testing.assert_array_equal(np.asarray(res.ctx.liver), truth)
    assert res.ctx.liver_bbox == tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(truth))


def test_fractional_liver_with_a_binary_lesion_inside_it():
    """A fractional liver with a binary lesion mask inside it (a model's probabilities and a drawn lesion): the
    lesion's voxels count whole (fraction 1) in the total liver, and the liver mask already includes them."""
    aff = oblique_affine(spacing=(0.8, 0.8, 2.5))
    shape = (36, 32, 14)
    vol = Volume(np.zeros(shape, dtype=np.float32), aff)
    rng = np.random.default_rng(12)
    liver = np.zeros(shape, np.float32)
    liver[3:33, 3:29, 1:13] = rng.integers(1, 256, size=(30, 26, 12)) / 255.0
    lesion = np.zeros(shape, bool)
    lesion[10:16, 8:14, 4:9] = True
    layers = [MaskLayer("liver", vol.with_array(liver), fractional=True), MaskLayer("lesion", vol.with_array(lesion))]
    res = measure_burden(vol, layers)
    vox_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    assert res.method["volume"] == "fractional_sum"
    assert res.ctx.intrahepatic_tumor_ml == pytest.approx(lesion.sum() * vox_ml, rel=1e-9)
    total = np.where(lesion, 1.0, liver)
    assert res.ctx.liver_volume_ml == pytest.approx(total.sum(dtype=np.float64) * vox_ml, rel=1e-6)
    assert res.extra["liver_mask_included_lesions"] is True
    np.testing.assert_array_equal(np.asarray(res.ctx.liver), liver > 0)

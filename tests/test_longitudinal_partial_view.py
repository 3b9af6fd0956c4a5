"""compare: a follow-up image that holds only part of the liver (a shorter scan, an MR slab).

The liver Dice over the whole baseline liver is then low however good the alignment, and the liver
volumes measure different extents: the comparison says how much of the baseline liver the follow-up
shows, judges the alignment within the follow-up's view, and keeps a lesion beyond it not imaged.
Truths: the phantom's known motion and grids (numpy here, no package code).
"""

from __future__ import annotations

import numpy as np
import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context, rotation, voxel_centres

from netlm_imaging.verify.longitudinal import compare_studies

ROT, SHIFT = rotation((4.0, -3.0, 6.0)), np.array([7.0, -5.0, 4.0])
UPPER, LOWER = (-25.0, 5.0, 20.0), (-30.0, 0.0, -30.0)
SHAPE_B = (80, 64, 44)
AFF_B = grid_affine(SHAPE_B, (2.2, 2.0, 2.5), (0.0, 0.0, 0.0), (5.0, 0.0, 0.0))
SPACING_F = (2.4, 2.1, 2.5)


def _pair(n_slices: int, centre_z: float, *, shared: bool):
    shape_f = (90, 80, n_slices)
    aff_f = grid_affine(shape_f, SPACING_F, (0.0, 0.0, 0.0), (12.0, -5.0, centre_z))
    lesions = [Sphere(UPPER, 7.0), Sphere(LOWER, 6.0)]
    fu = LiverPhantom(lesions) if shared else LiverPhantom(lesions, ROT, SHIFT)
    ctx_b = make_context(LiverPhantom(lesions), SHAPE_B, AFF_B, frame_of_reference_uid="1.2.3", seed=1)
    ctx_f = make_context(fu, shape_f, aff_f, frame_of_reference_uid="1.2.3" if shared else "9.8.7", seed=2)
    if ctx_f.lesions[1].voxel_count == 0:  # the lower lesion is beyond the follow-up image: not segmented there
        ctx_f.lesions = ctx_f.lesions[:1]
    return ctx_b, ctx_f, shape_f, aff_f


def _true_percent_in_view(ctx_b, shape_f, aff_f, shared: bool) -> float:
    pts = voxel_centres(SHAPE_B, AFF_B)[ctx_b.liver]
    if not shared:
        pts = pts @ ROT.T + SHIFT  # baseline patient space -> follow-up scanner space
    inv = np.linalg.inv(aff_f)
    idx = pts @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((idx > -0.5) & (idx < np.asarray(shape_f) - 0.5), axis=1)
    return 100.0 * inside.mean()


@pytest.mark.parametrize("shared", [True, False])
def test_a_follow_up_holding_three_quarters_of_the_liver(shared: bool) -> None:
    ctx_b, ctx_f, shape_f, aff_f = _pair(26, 21.5, shared=shared)  # z from -11 to 54 mm: the lower liver is cut
    truth = _true_percent_in_view(ctx_b, shape_f, aff_f, shared)
    assert 60.0 < truth < 90.0
    res = compare_studies(ctx_b, ctx_f)
    al = res.alignment
    assert al.baseline_liver_in_view_percent == pytest.approx(truth, abs=0.1 if shared else 1.5)
    assert al.liver_dice_after < 0.9  # over the whole baseline liver
    assert al.liver_dice_after_in_view > 0.95  # within the view the livers agree
    assert any(f"holds {al.baseline_liver_in_view_percent:.1f}% of the baseline liver" in w for w in res.warnings)
    assert not any("doubtful" in w for w in res.warnings)  # 0.85 judged within the view
    assert [(c.status, c.baseline_id) for c in res.lesions if c.baseline_id == 2] == [("not_imaged", 2)]
    d = res.to_dict()["alignment"]
    assert d["baseline_liver_in_view_percent"] == pytest.approx(al.baseline_liver_in_view_percent, abs=0.01)


def test_a_follow_up_holding_the_whole_liver_says_nothing_about_its_view() -> None:
    ctx_b, ctx_f, shape_f, aff_f = _pair(56, -5.0, shared=False)  # z from -74 to 64 mm
    assert _true_percent_in_view(ctx_b, shape_f, aff_f, False) == 100.0
    res = compare_studies(ctx_b, ctx_f)
    assert res.alignment.baseline_liver_in_view_percent == 100.0
    assert res.alignment.liver_dice_after_in_view == res.alignment.liver_dice_after
    assert not any("of the baseline liver" in w for w in res.warnings)
    assert all(c.status == "matched" for c in res.lesions)


def test_a_view_missing_a_few_liver_voxels_never_reads_100_percent() -> None:
    """A follow-up scan ending one slice short of a liver dome of 3 voxels: 99.99 % in view, 3 voxels outside.

    The warning said 'holds 100.0% of the baseline liver (the rest lies outside ...)'. Truth: counted here.
    """
    from netlm_imaging.verify.registration import identity_alignment
    from netlm_imaging.volume import Volume

    aff = grid_affine((40, 36, 30), (0.8, 0.9, 1.5), (5.0, -3.0, 8.0), (10.0, -20.0, 30.0))
    liver = np.zeros((40, 36, 30), bool)
    liver[2:38, 2:34, 1:29] = True
    liver[10:13, 10, 29] = True  # the dome: 3 voxels on the last slice
    followup = Volume(liver[:, :, :29], aff)  # same grid, one slice shorter
    al = identity_alignment(Volume(liver, aff), followup, "shared frame of reference")
    n = int(liver.sum())
    assert al.baseline_liver_in_view_percent == pytest.approx(100.0 * (n - 3) / n)
    assert al.baseline_liver_in_view_percent > 99.95
    (warning,) = al.warnings
    assert "100.0%" not in warning
    assert "holds more than 99.9% of the baseline liver" in warning
    assert f"({3 * 0.8 * 0.9 * 1.5 / 1000:.3g} mL of it lies outside its field of view)" in warning

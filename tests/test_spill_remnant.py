"""A resected lesion's part over a segment boundary takes its margin from the kept segment's remnant.

Phantom: the oblique anisotropic slab liver of ``surgical_phantoms`` (4 x 5 x 5 mm voxels of 0.1 mL; segment 4 is
x-slices 8..11, segment 5 x-slices 12..15, 20 x 20 voxels each). Lesion 1 is a 3 x 4 x 4 box in segment 5 (48
voxels) and one voxel face-connected to it across the 4 | 5 boundary, at (11, 2, 2): 0.1 mL, 1/49 = 2 % of the
lesion, below the shipped involvement tolerance (0.5 mL or 5 %), a spill. Only whole-segment resection treats
lesion 1 (its 60 mm diameter is above the wedge limit; ablation disabled), and the plan resects segment 5 alone.

Truth written here, not read from the planner: the remnant is the non-tumorous voxels of the kept segments (1-4
and 6-8) minus the spill's zone: the non-tumorous liver voxels of the kept segments whose centre lies within
``planner.margin_mm`` (the wedge zones' margin) of the spill voxel's centre, the distances taken between patient
coordinates through the phantom's affine (:func:`_grown`, a brute-force distance, not the planner's dilation).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import oblique_affine
from rules_coverage import covers, user_rules
from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, SPACING, VOXEL_ML, SlabLiver, assess

from netlm_imaging.volume import Volume

SPILL = (11, 2, 2)
KEPT = (1, 2, 3, 4, 6, 7, 8)
#: No wedge (lesion 1 is above enucleation_max_diameter_mm anyway), no ablation: resection treats lesion 1.
BASE = {"planner.allow_ablation": False, "flr.denominator": "non_tumorous"}


def _liver(*, spill: bool = True, sheared: bool = False) -> SlabLiver:
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    if sheared:  # a gantry-tilt-like grid: the third axis leans along the first by 2 mm per step
        a = oblique_affine(spacing=SPACING, angles_deg=(12.0, -8.0, 25.0), origin=(-150.0, 40.0, 300.0))
        a[:3, 2] += 0.4 * a[:3, 0]
        p.affine = a
    les = p.add_in_segment(5, 3, 4, 4, y0=2, z0=2, max_3d_diameter_mm=60.0)  # x 12..14, 48 voxels
    assert p.seg[12:15, 2:6, 2:6].min() == p.seg[12:15, 2:6, 2:6].max() == 5
    if spill:
        assert p.seg[SPILL] == 4
        assert p.labels[SPILL] == 0
        p.labels[SPILL] = les.id
        p.lesions[0] = dataclasses.replace(les, volume_ml=49 * VOXEL_ML, voxel_count=49)
    return p


def _grown(p: SlabLiver, seeds: np.ndarray, margin_mm: float) -> np.ndarray:
    """Liver voxels whose centre lies within ``margin_mm`` of a ``seeds`` voxel centre (patient space, by hand)."""
    idx = np.argwhere(p.liver)
    pts = idx @ p.affine[:3, :3].T
    seed_pts = np.argwhere(seeds) @ p.affine[:3, :3].T
    d = np.sqrt(((pts[:, None, :] - seed_pts[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    out = np.zeros(p.shape, dtype=bool)
    out[tuple(idx[d <= margin_mm + 1e-6].T)] = True
    return out


def _truth(p: SlabLiver, margin_mm: float = 10.0) -> tuple[float, float, float]:
    """(the kept segments' non-tumorous mL, the spill zone's mL there, the non-tumorous liver mL)."""
    kept = np.isin(p.seg, KEPT) & p.liver
    flr = float(np.count_nonzero(kept & (p.labels == 0))) * VOXEL_ML
    spill = np.zeros(p.shape, dtype=bool)
    spill[SPILL] = p.labels[SPILL] > 0
    zone = (
        float(np.count_nonzero(_grown(p, spill, margin_mm) & kept & (p.labels == 0))) * VOXEL_ML if spill.any() else 0.0
    )
    return flr, zone, float(np.count_nonzero(p.liver & (p.labels == 0))) * VOXEL_ML


def _assess(p: SlabLiver, tmp_path, threshold_ml: float, nt_ml: float, **changes):
    rules = user_rules(
        tmp_path, {**BASE, "flr.non_tumorous_threshold_percent.normal": 100 * threshold_ml / nt_ml, **changes}
    )
    a = assess(p.ctx(), FULL_CLINICAL, rules, resections=[(5,)])
    user = next(r for r in a.remnant["standard_resections"] if r["name"] == "custom:5")["plan_with_sparing"]
    return a.remnant["resection_plan"], user


@pytest.mark.parametrize("sheared", [False, True])
def test_the_spill_and_its_margin_leave_the_remnant(tmp_path, sheared):
    p = _liver(sheared=sheared)
    assert Volume(np.zeros(p.shape, np.float32), p.affine).sheared is sheared
    flr, zone, nt = _truth(p)
    # within 10 mm of (11, 2, 2) on 4 x 5 x 5 mm: x 9..11 of segment 4 (x 12, 13 are resected segment 5)
    assert 10 < zone / VOXEL_ML < 60
    plan, user = _assess(p, tmp_path, 0.5 * flr, nt)
    assert plan["resected_segments"] == [5]
    assert plan["treated_lesion_count"] == 1
    assert plan["remnant_ml"] == pytest.approx(flr - zone, abs=1e-9)
    assert plan["flr_percent_of_non_tumorous"] == pytest.approx(100 * (flr - zone) / nt)
    by_seg = {int(k): v for k, v in plan["zone_union_ml_by_segment"].items()}
    assert by_seg[4] == pytest.approx(zone, abs=1e-9)
    assert sum(by_seg.values()) == pytest.approx(zone, abs=1e-9)
    [entry] = plan["ignored_segment_overlaps"]
    assert (entry["segment"], entry["segment_resected"]) == (4, False)
    assert entry["remnant_ml_taken"] == pytest.approx(zone, abs=1e-9)
    [note] = [n for n in plan["notes"] if "transection plane must include that part" in n]
    assert f"10 mm margin (planner.margin_mm): {zone:.2f} mL" in note
    # the user's resection of segment 5 reports the same remnant
    assert user["feasible"] is True
    assert user["remnant_ml"] == pytest.approx(flr - zone, abs=1e-9)
    assert user["ignored_segment_overlaps"][0]["remnant_ml_taken"] == pytest.approx(zone, abs=1e-9)


@covers("planner.margin_mm")
def test_the_margin_key_sizes_the_spill_zone(tmp_path):
    """planner.margin_mm = 5 (one x-slice at 4 mm, the voxel's y / z neighbours at 5 mm): a smaller zone."""
    p = _liver()
    flr, zone10, nt = _truth(p, 10.0)
    _, zone5, _ = _truth(p, 5.0)
    assert round(zone5 / VOXEL_ML) == 5  # (10, 2, 2), (11, 2 +- 1, 2), (11, 2, 2 +- 1); (12, 2, 2) is tumour
    plan, _ = _assess(p, tmp_path, 0.5 * flr, nt, **{"planner.margin_mm": 5.0})
    assert plan["remnant_ml"] == pytest.approx(flr - zone5, abs=1e-9)
    assert zone5 < zone10


def test_a_threshold_between_the_two_remnants_flips_the_adequacy(tmp_path):
    """Required FLR between the kept segments' liver and that minus the spill zone: the resection of segment 5 no
    longer keeps an adequate FLR (the plan leaving the spill's margin in the remnant called it adequate)."""
    p = _liver()
    flr, zone, nt = _truth(p)
    plan, user = _assess(p, tmp_path, flr - 0.5 * zone, nt)
    assert user["feasible"] is False
    assert user["remnant_ml"] == pytest.approx(flr - zone, abs=1e-9)
    assert any(f"take {zone:.2f} mL of non-tumorous liver" in n for n in user["notes"])
    assert plan["resected_segments"] != [5]
    assert plan["treated_lesion_count"] == 0
    # just below the remnant with the zone taken: adequate again, the same remnant
    plan, user = _assess(p, tmp_path, flr - 1.5 * zone, nt)
    assert (user["feasible"], plan["resected_segments"]) == (True, [5])
    assert plan["remnant_ml"] == pytest.approx(flr - zone, abs=1e-9)


def test_without_a_spill_nothing_is_taken_and_the_margin_changes_nothing(tmp_path):
    p = _liver(spill=False)
    flr, zone, nt = _truth(p)
    assert zone == 0.0
    plan, user = _assess(p, tmp_path, 0.5 * flr, nt)
    assert plan["resected_segments"] == [5]
    assert plan["ignored_segment_overlaps"] == []
    assert plan["remnant_ml"] == pytest.approx(flr, abs=1e-9)
    assert user["remnant_ml"] == pytest.approx(flr, abs=1e-9)
    assert all(v == 0.0 for v in plan["zone_union_ml_by_segment"].values())
    other, other_user = _assess(p, tmp_path, 0.5 * flr, nt, **{"planner.margin_mm": 5.0})
    strip = lambda b: {k: v for k, v in b.items() if k != "margin_mm"}  # noqa: E731
    assert strip(other) == strip(plan)
    assert strip(other_user) == strip(user)


def test_a_wedge_zone_overlapping_the_spill_zone_is_counted_once(tmp_path):
    """Lesion 2, a 2 x 2 x 2 box in segment 4 at x 9..10, z 5..6 (10 mm: wedge-able), 10 mm from the spill at
    (11, 2, 4): its wedge zone and the spill's zone share voxels; the remnant subtracts their union."""
    p = _liver()
    wedged = p.add_box(9, 2, 2, 2, 5, 2, max_3d_diameter_mm=10.0)
    flr, spill_zone, nt = _truth(p)
    kept = np.isin(p.seg, KEPT) & p.liver & (p.labels == 0)
    spill = np.zeros(p.shape, dtype=bool)
    spill[SPILL] = True
    a, b = _grown(p, spill, 10.0) & kept, _grown(p, p.labels == wedged.id, 10.0) & kept
    assert np.count_nonzero(a & b) > 0
    union = float(np.count_nonzero(a | b)) * VOXEL_ML
    plan, user = _assess(p, tmp_path, 0.5 * flr, nt)
    assert plan["resected_segments"] == [5]
    assert {t["lesion_id"]: t["treatment"] for t in plan["lesion_treatments"]} == {1: "resection", 2: "enucleation"}
    assert plan["remnant_ml"] == pytest.approx(flr - union, abs=1e-9)
    assert sum(plan["zone_union_ml_by_segment"].values()) == pytest.approx(union, abs=1e-9)
    assert plan["ignored_segment_overlaps"][0]["remnant_ml_taken"] == pytest.approx(spill_zone, abs=1e-9)
    assert user["remnant_ml"] == pytest.approx(flr - union, abs=1e-9)

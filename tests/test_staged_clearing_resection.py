"""Staged strategies (PVE, two-stage hepatectomy, ALPPS) grow the remnant of a segment resection.

When wedges / ablations alone would clear every lesion but spend more FLR than the threshold leaves,
the staged figures must come from a clearing plan WITH a segment resection that takes a lesion (there
is no portal branch to embolise in a plan of ablations only): it reported PVE of "no resection" with an
expected FLR of 137 % of the non-tumorous liver.

Phantom: three 2x2x2-voxel lesions (20 mm, ablatable) in segments 2, 4 and 6 of the slab liver; the
ablation zones (lesion dilated 5 mm on the oblique grid) are measured here with a k-d tree
(surgical_phantoms.zone_mask), the segments' volumes are slices x 20 x 20 voxels. The threshold on the
non-tumorous liver (99.5 %) leaves less than the three zones. Truth by hand: every clearing plan with a
resection removes at least one lesion's segment; the one keeping the most FLR resects segment 2 (the
smallest: 3 slices; anatomically possible: 3 keeps the left pedicle and left hepatic vein) and ablates
the lesions of 4 and 6 (clinical_rules.md section 6: PVE growth 37.9 %).
"""

from __future__ import annotations

import pytest
from rules_coverage import user_rules
from surgical_phantoms import (
    FULL_CLINICAL,
    NY,
    NZ,
    SLICES,
    VOXEL_ML,
    SlabLiver,
    assess,
    parenchyma_ml_by_segment,
    zone_mask,
)


def test_the_clearing_plan_of_the_staged_strategies_resects_a_lesions_segment(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    les = {s: p.add_in_segment(s, 2, 2, 2, x_off=1, y0=9, z0=9, max_3d_diameter_mm=20.0) for s in (2, 4, 6)}
    zones = {s: parenchyma_ml_by_segment(p, zone_mask(p, les[s].id, 5.0)) for s in les}
    nt_ml = (p.liver.sum() - 24) * VOXEL_ML
    assert sum(sum(z.values()) for z in zones.values()) > nt_ml * (1 - 0.995)  # ablating all three is too costly
    rules = user_rules(tmp_path, {"flr.denominator": "non_tumorous", "flr.non_tumorous_threshold_percent.normal": 99.5})
    a = assess(p.ctx(), FULL_CLINICAL, rules)
    staged = a.classification["staged_strategies"]
    assert staged["needed"] is True
    assert staged["clearing_resected_segments"] == [2]
    seg2_nt = (SLICES[2] * NY * NZ - 8) * VOXEL_ML
    kept = [k for k in range(1, 9) if k != 2]
    flr_now = nt_ml - seg2_nt - sum(zones[s][k] for s in (4, 6) for k in kept)
    assert staged["flr_now_ml"] == pytest.approx(flr_now)
    pve = staged["strategies"]["portal_vein_embolisation"]
    assert pve["expected_flr_ml"] == pytest.approx(flr_now * 1.379)
    assert staged["strategies"]["two_stage_hepatectomy"]["first_stage_clears_lesions"] == [les[4].id, les[6].id]


def test_without_a_clearing_resection_no_staged_strategy_applies(tmp_path):
    """Segment resection disabled: only ablations clear the lesions, so PVE / ALPPS have nothing to grow."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for s in (2, 4, 6):
        p.add_in_segment(s, 2, 2, 2, x_off=1, y0=9, z0=9, max_3d_diameter_mm=20.0)
    changes = {
        "flr.denominator": "non_tumorous",
        "flr.non_tumorous_threshold_percent.normal": 99.5,
        "planner.allow_segment_resection": False,
    }
    staged = assess(p.ctx(), FULL_CLINICAL, user_rules(tmp_path, changes)).classification["staged_strategies"]
    assert staged["needed"] is True
    assert staged["possible"] is False
    assert staged["strategies"] == {}
    assert "no plan with a segment resection clears them" in staged["reason"]

"""The planner's segment-involvement tolerance at its edges (classify/involvement.py).

Each table is written by hand: voxel counts per Couinaud segment (index 0 = liver voxels without a
segment) and a voxel volume, so a part's mL and fraction are exact products and quotients of the
counts. The tolerance is the shipped rules' ``planner.segment_involvement_min_ml`` (0.5 mL) and
``segment_involvement_min_fraction`` (0.05), read from the rules file; "at least" means a part
exactly at either value involves its segment (docs/rules.md, default_rules.toml).
"""

from __future__ import annotations

import numpy as np
import pytest

from netlm_imaging.classify.involvement import involved_segments, spill_entries, spill_notes
from netlm_imaging.measure.segments import SegmentTable
from netlm_imaging.rules_data import default_section

PLANNER = default_section("planner")


def _table(voxel_ml: float, counts: dict[int, int], majority: int) -> SegmentTable:
    row = np.zeros(9, dtype=np.int64)
    for s, n in counts.items():
        row[s] = n
    return SegmentTable(voxel_ml, np.zeros(9), np.zeros(9), [3], row[None, :], {3: majority})


def test_the_shipped_tolerance_is_half_a_millilitre_or_five_percent():
    assert (PLANNER["segment_involvement_min_ml"], PLANNER["segment_involvement_min_fraction"]) == (0.5, 0.05)


def test_a_part_of_exactly_the_minimum_volume_involves_its_segment():
    # 0.1 mL voxels, 200 voxels: 5 voxels = 0.5 mL (2.5 % of the lesion) counts, 4 voxels = 0.4 mL (2 %) does not
    segs, spills = involved_segments(_table(0.1, {5: 191, 4: 5, 6: 4}, 5), 3, PLANNER)
    assert segs == {4, 5}
    assert [(s.segment, s.voxels) for s in spills] == [(6, 4)]
    assert spills[0].volume_ml == pytest.approx(0.4)
    assert spills[0].fraction == pytest.approx(4 / 200)


def test_a_part_of_exactly_the_minimum_fraction_involves_its_segment():
    # 0.001 mL voxels (every part far below 0.5 mL), 100 voxels in the liver of which 10 have no segment:
    # 5 voxels are 5 % of the lesion (counted over all its liver voxels, segment 0 included), 4 are 4 %
    segs, spills = involved_segments(_table(0.001, {0: 10, 8: 81, 7: 5, 2: 4}, 8), 3, PLANNER)
    assert segs == {7, 8}
    [spill] = spills
    assert (spill.lesion_id, spill.segment, spill.voxels) == (3, 2, 4)
    assert spill.fraction == pytest.approx(0.04)
    assert spill.volume_ml == pytest.approx(0.004)


def test_the_majority_segment_counts_even_below_both_minima():
    # min_fraction 1 leaves the decision to the volume; a 10-voxel lesion of 0.01 mL voxels split 6 / 4: only
    # the majority rule makes segment 5 involved (0.06 mL, 60 %)
    planner = {**PLANNER, "segment_involvement_min_fraction": 1.0}
    segs, spills = involved_segments(_table(0.01, {5: 6, 4: 4}, 5), 3, planner)
    assert segs == {5}
    assert [(s.segment, s.voxels, s.fraction) for s in spills] == [(4, 4, pytest.approx(0.4))]


def test_a_zero_tolerance_counts_every_voxel_and_no_empty_segment():
    planner = {**PLANNER, "segment_involvement_min_ml": 0.0}
    segs, spills = involved_segments(_table(0.1, {1: 1, 5: 300, 8: 1}, 5), 3, planner)
    assert (segs, spills) == ({1, 5, 8}, [])


def test_spill_entries_and_notes_follow_the_plan():
    _, spills = involved_segments(_table(0.1, {5: 195, 4: 1, 6: 1}, 5), 3, PLANNER)
    assert [s.segment for s in spills] == [4, 6]
    entries = spill_entries(spills, resected=[5, 6])
    assert [(e["segment"], e["segment_resected"], e["voxels"]) for e in entries] == [(4, False, 1), (6, True, 1)]
    assert entries[0]["fraction_of_lesion"] == pytest.approx(1 / 197)
    notes = spill_notes(spills, {3: ("resection", 1.0)}, resected=[5, 6])
    assert len(notes) == 1  # segment 6 is resected anyway: no note for it
    assert "segment 4 is kept" in notes[0]
    assert "0.10 mL (1 voxel(s), 0.5% of the lesion)" in notes[0]
    assert spill_notes(spills, {3: ("ablation", 1.0)}, resected=[5]) == []  # not resected: no transection plane
    assert spill_notes(spills, {}, resected=[5]) == []

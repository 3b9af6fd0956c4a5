"""classify/distribution.py: the unilobar / bilobar distribution and its counts, on slab livers.

Truths are the lesions the tests place: each lesion box lies in one Couinaud slab (or in the
unlabelled slices), so the counts per hemiliver follow from the rules' hemiliver lists
(right 5-8, left 2-4, caudate 1 separate or left: clinical_rules.md section 9).
"""

from __future__ import annotations

import pytest
from surgical_phantoms import SlabLiver

from netlm_imaging.classify.distribution import lesion_distribution
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.measure.segments import compute_segment_table

SLICES = {1: 2, 2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5}


def _distribution(segments, *, caudate_side="separate", unassigned=0):
    p = SlabLiver(SLICES, ny=20, nz=20, unlabeled_slices=2)
    for n, s in enumerate(segments):  # lesions of one segment side by side
        p.add_in_segment(s, 1, 2, 2, y0=4 * n)
    for n in range(unassigned):  # boxes in the two slices without a segment label
        p.add_box(p.nx - 2, 1, 4 * n, 2, 0, 2)
    anatomy = dict(load_rules()["anatomy"], caudate_side=caudate_side)
    return lesion_distribution(compute_segment_table(p.ctx()), anatomy, len(segments) + unassigned)


@pytest.mark.parametrize(
    ("segments", "caudate_side", "unassigned", "right", "left", "caudate", "expected"),
    [
        ([6, 7, 3], "separate", 0, 2, 1, 0, "bilobar"),
        ([6, 7, 3, 1], "separate", 1, 2, 1, 1, "bilobar"),
        ([1, 5], "left", 0, 1, 1, 1, "bilobar"),  # the caudate lesion counts on the left
        ([1, 3], "left", 0, 0, 2, 1, "unilobar"),
        ([2, 4], "left", 0, 0, 2, 0, "unilobar"),  # the left hemiliver keeps 2-4 when 1 joins it
        ([8, 5], "separate", 0, 2, 0, 0, "unilobar"),
    ],
)
def test_counts_per_hemiliver(segments, caudate_side, unassigned, right, left, caudate, expected):
    d = _distribution(segments, caudate_side=caudate_side, unassigned=unassigned)
    assert (d["right_lesion_count"], d["left_lesion_count"], d["caudate_lesion_count"]) == (right, left, caudate)
    assert d["distribution"] == expected
    assert d["caudate_involved"] is (caudate > 0)
    assert d["caudate_only"] is False
    assert d["missing_inputs"] == []
    outside = [r for r in d["rationale"] if "outside every Couinaud segment" in r]
    note = f"{unassigned} lesion(s) lie outside every Couinaud segment and are not counted"
    assert outside == ([note] if unassigned else [])
    side = (
        "counted with the left hemiliver"
        if caudate_side == "left"
        else "counted on neither side (caudate_side=separate)"
    )
    assert any(
        r.startswith("lesions by majority segment") and r.endswith(f"{side} -> {expected}") for r in d["rationale"]
    )


def test_caudate_only_and_all_unassigned():
    only = _distribution([1, 1])
    assert (only["distribution"], only["caudate_only"], only["caudate_involved"]) == ("unilobar", True, True)
    assert "caudate-only disease: every assigned lesion lies in segment 1" in only["rationale"]
    assert only["caudate_lesion_count"] == 2
    # every lesion outside the segments: nothing to call uni- or bilobar; the lesions are named
    none = _distribution([], unassigned=2)
    assert (none["distribution"], none["caudate_only"], none["caudate_involved"]) == ("unknown", False, False)
    assert (none["right_lesion_count"], none["left_lesion_count"]) == (0, 0)
    assert none["missing_inputs"] == ["segment map covering lesion(s) 1, 2"]


@pytest.mark.parametrize(
    ("segments", "expected", "missing"),
    [
        # lesions 2 and 3 (ids after the segment lesions) lie in liver without a segment label: they could be
        # on the left, so one right-liver lesion does not make the disease unilobar
        ([8], "unknown", ["segment map covering lesion(s) 2, 3"]),
        ([1], "unknown", ["segment map covering lesion(s) 2, 3"]),  # nor caudate-only
        ([8, 3], "bilobar", []),  # already both hemilivers: the unassigned ones cannot change it
    ],
)
def test_lesions_outside_every_segment_leave_unilobar_open(segments, expected, missing):
    d = _distribution(segments, unassigned=2)
    assert d["distribution"] == expected
    assert d["missing_inputs"] == missing
    assert d["caudate_only"] is False


def test_without_lesions_or_segment_map():
    anatomy = load_rules()["anatomy"]
    no_lesions = lesion_distribution(None, anatomy, 0)
    assert no_lesions == {
        "distribution": None,
        "caudate_involved": False,
        "caudate_only": False,
        "rationale": ["no intrahepatic lesions: distribution not applicable"],
        "missing_inputs": [],
    }
    no_map = lesion_distribution(None, anatomy, 3)
    assert no_map == {
        "distribution": "unknown",
        "caudate_involved": None,
        "caudate_only": None,
        "rationale": ["no Couinaud segment map: distribution unknown"],
        "missing_inputs": ["segment map"],
    }

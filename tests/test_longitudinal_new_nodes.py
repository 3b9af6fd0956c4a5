"""compare: a lymph node that appears at follow-up with a short axis below 10 mm is normal, not a new lesion.

RECIST 1.1 (clinical_rules.md section 8, [C]): lymph nodes of short axis < 10 mm are normal (not
lesions); 10 to < 15 mm pathological (non-target); any new lesion is PD. ``analyze`` reports a node
below 10 mm as ``normal_node``; a follow-up reader who outlines such a node must not turn a stable
disease into PD. Truths come from the phantom (make_context: short axis 2 r), not from the package.
"""

from __future__ import annotations

import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context, rotation
from rules_coverage import covers, user_rules

from netlm_imaging.verify.longitudinal import compare_studies

SHAPE_B, SPACING_B = (80, 64, 36), (2.0, 2.0, 2.5)
SHAPE_F, SPACING_F = (72, 72, 44), (2.4, 2.1, 2.5)
AFF_B = grid_affine(SHAPE_B, SPACING_B, (0.0, 0.0, 8.0), (5.0, 0.0, 0.0))
AFF_F = grid_affine(SHAPE_F, SPACING_F, (6.0, 3.0, -5.0), (0.0, 4.0, 2.0))
LIVER_LESION, NODE = (-25.0, 5.0, 0.0), (60.0, 30.0, -10.0)


def _pair(node_radius_mm: float, *, shared: bool, label: str = "lymph node 2"):
    """Baseline: one liver lesion (16 mm). Follow-up: the same lesion and a new extrahepatic one at NODE."""
    base = LiverPhantom([Sphere(LIVER_LESION, 8.0)])
    fu_lesions = [Sphere(LIVER_LESION, 8.0), Sphere(NODE, node_radius_mm)]
    fu = LiverPhantom(fu_lesions) if shared else LiverPhantom(fu_lesions, rotation((4.0, -3.0, 6.0)), (7.0, -5.0, 4.0))
    ctx_b = make_context(base, SHAPE_B, AFF_B, frame_of_reference_uid="1.2.3", seed=1)
    ctx_f = make_context(fu, SHAPE_F, AFF_F, frame_of_reference_uid="1.2.3" if shared else "9.8.7", seed=2)
    new = ctx_f.lesions[1]
    assert new.voxel_count > 0
    new.location, new.label = "extrahepatic", label
    return ctx_b, ctx_f


@pytest.mark.parametrize("shared", [True, False])
def test_a_new_node_below_10_mm_is_normal_not_progression(shared: bool) -> None:
    res = compare_studies(*_pair(3.5, shared=shared))  # short axis 7 mm
    status = {c.followup_id: c.status for c in res.lesions if c.followup_id is not None}
    assert status == {1: "matched", 2: "normal_node"}
    assert res.recist["new_lesions"] == 0
    assert res.to_dict()["new_lesion_ids"] == []
    assert res.recist["category"] == "SD"  # the target is unchanged: 16 -> 16 mm
    assert any("lymph node(s) 2 (short axis 7.0 mm)" in r and "not new lesions" in r for r in res.recist["rationale"])
    assert res.volumetric["category"] == "SD"


@covers("recist.node_pathological_short_axis_mm")
@pytest.mark.parametrize(("radius", "status", "category"), [(4.9, "normal_node", "SD"), (5.0, "new", "PD")])
def test_the_10_mm_boundary_of_a_new_node(radius: float, status: str, category: str) -> None:
    """Short axis 9.8 mm: normal; 10.0 mm: pathological (RECIST: < 10 mm normal), a new lesion -> PD."""
    res = compare_studies(*_pair(radius, shared=True))
    assert [c.status for c in res.lesions if c.followup_id == 2] == [status]
    assert res.recist["category"] == category


def test_the_rules_node_limit_decides_what_is_normal(tmp_path) -> None:
    rules = user_rules(tmp_path, {"recist.node_pathological_short_axis_mm": 6.0})
    res = compare_studies(*_pair(3.5, shared=True), recist=rules["recist"])  # 7 mm >= 6 mm: pathological
    assert res.recist["category"] == "PD"
    assert res.to_dict()["new_lesion_ids"] == [2]


def test_a_new_small_lesion_that_is_no_node_is_still_new() -> None:
    """The rule is for lymph nodes only: a new 7 mm lung nodule is a new lesion (PD)."""
    res = compare_studies(*_pair(3.5, shared=True, label="lung met 2"))
    assert res.to_dict()["new_lesion_ids"] == [2]
    assert res.recist["category"] == "PD"


def test_a_pd_resting_only_on_a_small_new_lesion_says_so() -> None:
    """RECIST 1.1: a new lesion counts when unequivocal; one equivocal for its small size is confirmed later.

    The category stays PD (the tool cannot tell equivocal), and the rationale and warnings say that it rests
    only on a new lesion below the 10 mm measurable size, and what the response is without it.
    """
    res = compare_studies(*_pair(3.5, shared=True, label="lung met 2"))  # a new 7 mm nodule
    assert res.recist["category"] == "PD"
    text = "the PD rests only on new lesion(s) 2 (7.0 mm) below the measurable size"
    assert any(text in r and "without them the target response is SD" in r for r in res.recist["rationale"])
    assert any(text in w for w in res.warnings)
    # a new 12 mm lesion is measurable: an unequivocal PD, nothing to say
    big = compare_studies(*_pair(6.0, shared=True, label="lung met 2"))
    assert big.recist["category"] == "PD"
    assert not any("rests only" in r for r in big.recist["rationale"] + big.warnings)


def test_a_pd_by_size_is_not_said_to_rest_on_a_small_new_lesion() -> None:
    """The liver target grows 16 -> 22 mm (+37.5 %, +6 mm): PD without the new 7 mm nodule too."""
    base = LiverPhantom([Sphere(LIVER_LESION, 8.0)])
    fu = LiverPhantom([Sphere(LIVER_LESION, 11.0), Sphere(NODE, 3.5)])
    ctx_b = make_context(base, SHAPE_B, AFF_B, frame_of_reference_uid="1.2.3", seed=1)
    ctx_f = make_context(fu, SHAPE_F, AFF_F, frame_of_reference_uid="1.2.3", seed=2)
    ctx_f.lesions[1].location, ctx_f.lesions[1].label = "extrahepatic", "lung met 2"
    res = compare_studies(ctx_b, ctx_f)
    assert res.recist["category"] == "PD"
    assert not any("rests only" in r for r in res.recist["rationale"])


def test_a_pd_on_a_new_pathological_node_is_not_said_to_rest_on_a_small_lesion() -> None:
    """A new node of short axis 12 mm (10 to < 15: pathological, non-target) is an unequivocal new lesion:
    PD, and no note that it is below the measurable size (that is for non-nodal lesions)."""
    res = compare_studies(*_pair(6.0, shared=True))  # label "lymph node 2": short axis 12 mm
    assert [c.status for c in res.lesions if c.followup_id == 2] == ["new"]
    assert res.recist["category"] == "PD"
    assert not any("rests only" in r for r in res.recist["rationale"] + res.warnings)

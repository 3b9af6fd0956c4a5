"""Vessel warnings and notes for every plan that names its lesions' treatments: a user's resection plan
(``--resection``: ``plan_with_sparing``) and the staged strategies' clearing plan, as for the tool's plan.

Phantom on an oblique anisotropic grid (0.8 x 0.8 x 2.5 mm, rotated): a box liver cut along the first array
axis into Couinaud slabs (segment 7 the widest), a large box lesion in segment 7 (52 mm: neither ablatable,
30 mm, nor enucleable, 50 mm: only a segment resection takes it) and a 7 mm sphere next to a finite cylinder
(the portal vein, radius 3 mm) whose axis runs 16 mm from the sphere's centre in a direction none of the grid's
axes. The truth is analytic: gap = 16 - 7 - 3 = 6 mm, computed here from the geometry alone; the measured gap
lies within one voxel diagonal of it (tests/test_vascular_contact.py checks the measurement itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import physical_grid, write_nifti
from rules_coverage import covers

from netlm_imaging.api import analyze

SPACING = (0.8, 0.8, 2.5)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(12.0, -9.0, 27.0), origin=(-31.0, 12.5, 140.0))
SHAPE = (96, 96, 36)
DIAGONAL_MM = float(np.sqrt(sum(s * s for s in SPACING)))  # 2.74 mm
SLABS = {1: (2, 8), 2: (8, 16), 3: (16, 30), 4: (30, 38), 5: (38, 46), 6: (46, 54), 7: (54, 84), 8: (84, 94)}
R_SPHERE, R_CYL, AXIS_DISTANCE, HALF_LENGTH = 7.0, 3.0, 16.0, 20.0
GAP_MM = AXIS_DISTANCE - R_SPHERE - R_CYL  # 6.0 mm: the analytic surface-to-surface gap
SPHERE_CENTRE = {7: (69, 75, 24), 3: (23, 75, 24)}  # voxel index of the small lesion's centre in segment 7 or 3
NEAR, FAR = GAP_MM + DIAGONAL_MM, 0.5 * (GAP_MM - DIAGONAL_MM)  # 8.7 mm: always within; 1.6 mm: never
LEFT_LATERAL, RIGHT_HEMI = (2, 3), (5, 6, 7, 8)


def _write(root: Path, small_in: int) -> list[str]:
    p = physical_grid(SHAPE, AFFINE)
    seg = np.zeros(SHAPE, np.uint8)
    for s, (a, b) in SLABS.items():
        seg[a:b, 2:94, 2:34] = s
    big = np.zeros(SHAPE, bool)
    big[56:82, 10:60, 4:16] = True  # 20.8 x 40 x 30 mm: 52 mm corner to corner
    centre = p[SPHERE_CENTRE[small_in]]
    small = ((p - centre) ** 2).sum(-1) <= R_SPHERE**2
    axis = np.array([0.3, -0.5, 0.81])
    axis /= np.linalg.norm(axis)
    offset = np.cross(axis, [1.0, 0.0, 0.0])
    offset /= np.linalg.norm(offset)  # perpendicular to the axis: the nearest axis point is the foot, t = 0
    rel = p - (centre + AXIS_DISTANCE * offset)
    t = rel @ axis
    vessel = (((rel - t[..., None] * axis) ** 2).sum(-1) <= R_CYL**2) & (np.abs(t) <= HALF_LENGTH)
    assert not (vessel & (big | small)).any()
    assert min(vessel.sum(), small.sum()) > 100
    seg[vessel] = 0  # the vessel carved out of the liver and its segments
    root.mkdir(parents=True, exist_ok=True)
    write_nifti(root / "ct.nii.gz", np.full(SHAPE, 60, np.int16), AFFINE)
    write_nifti(root / "liver.nii.gz", (seg > 0).astype(np.uint8), AFFINE)
    write_nifti(root / "liver_tumor.nii.gz", (big | small).astype(np.uint8), AFFINE)
    write_nifti(root / "portal_vein.nii.gz", vessel.astype(np.uint8), AFFINE)
    write_nifti(root / "couinaud.nii.gz", seg, AFFINE)
    roles = {"liver": "liver", "lesion": "liver_tumor", "vessel": "portal_vein", "segments": "couinaud"}
    return [f"{role}={root / name}.nii.gz" for role, name in roles.items()]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("vascular_plans")
    return {k: (root / str(k) / "ct.nii.gz", _write(root / str(k), k)) for k in (7, 3)}


def _analyze(study, *, resections=(), rules=None):
    image, segs = study
    return analyze(
        image=image, segs=segs, clinical={"liver_condition": "normal"}, rules=rules, options={"resections": resections}
    ).to_dict()


def _small(rep) -> tuple[int, float]:
    """The small lesion's id and its measured gap to the portal vein (checked against the analytic gap)."""
    les = min(rep["lesions"], key=lambda x: x["volume_ml"])
    gap = les["vessel_distances_mm"]["portal vein"]
    assert abs(gap - GAP_MM) <= DIAGONAL_MM, (gap, GAP_MM)
    return les["id"], gap


def _ablation_warnings(rep) -> list[str]:
    return [w for w in rep["warnings"] if "planner.ablation_vessel_contact_mm" in w]


def _user_plan(rep, removed) -> dict:
    name = "custom:" + "+".join(map(str, removed))
    return next(r for r in rep["remnant"]["standard_resections"] if r["name"] == name)["plan_with_sparing"]


def _kinds(treatments) -> dict[int, str | None]:
    return {t["lesion_id"]: t["treatment"] for t in treatments}


@covers("planner.ablation_vessel_contact_mm")
def test_a_user_plan_ablating_a_lesion_near_the_portal_vein_is_warned_of_by_name(studies):
    # both lesions in segment 7: the tool resects segment 7 (no ablation); the user's left lateral
    # sectionectomy leaves segment 7 and ablates the small lesion 6 mm from the portal vein
    reps = {
        k: _analyze(studies[7], resections=[LEFT_LATERAL], rules={"planner": {"ablation_vessel_contact_mm": k}})
        for k in (NEAR, FAR)
    }
    lid, gap = _small(reps[NEAR])
    assert _kinds(reps[NEAR]["remnant"]["resection_plan"]["lesion_treatments"])[lid] == "resection"
    user = {k: _user_plan(r, LEFT_LATERAL) for k, r in reps.items()}
    assert _kinds(user[NEAR]["lesion_treatments"])[lid] == "ablation"
    assert user[NEAR]["lesion_treatments"] == user[FAR]["lesion_treatments"]  # the warning changes no plan
    (warning,) = _ablation_warnings(reps[NEAR])
    assert warning.startswith(
        f"user plan 'Left lateral sectionectomy' (segments 2+3): lesion {lid} is planned for ablation "
        f"{gap:.1f} mm from the portal vein (within planner.ablation_vessel_contact_mm {NEAR:g} mm)"
    )
    assert "heat-sink" in warning
    assert _ablation_warnings(reps[FAR]) == []


@covers("planner.resection_vessel_contact_mm")
def test_a_user_plan_resecting_a_lesion_near_the_portal_vein_notes_it_in_that_plan(studies):
    # the small lesion in segment 3: the tool ablates it, the user's left lateral sectionectomy resects it
    reps = {
        k: _analyze(studies[3], resections=[LEFT_LATERAL], rules={"planner": {"resection_vessel_contact_mm": k}})
        for k in (NEAR, FAR)
    }
    lid, gap = _small(reps[NEAR])
    assert _kinds(reps[NEAR]["remnant"]["resection_plan"]["lesion_treatments"])[lid] == "ablation"
    user = {k: _user_plan(r, LEFT_LATERAL) for k, r in reps.items()}
    assert _kinds(user[NEAR]["lesion_treatments"])[lid] == "resection"
    note = f"lesion {lid} (resection) is {gap:.1f} mm from the portal vein (planner.resection_vessel_contact_mm"
    assert next(n for n in user[NEAR]["notes"] if "portal vein" in n).startswith(note)
    named = [n for n in reps[NEAR]["vascular_contact"]["plan_notes"] if "(resection)" in n]
    assert len(named) == 1
    assert named[0].startswith(f"user plan 'Left lateral sectionectomy' (segments 2+3): {note}")
    assert not any("portal vein" in n for n in reps[NEAR]["remnant"]["resection_plan"]["notes"])  # the tool ablates
    assert not any("portal vein" in n for n in user[FAR]["notes"])
    assert not any("(resection)" in n for n in reps[FAR]["vascular_contact"]["plan_notes"])


def test_a_warning_identical_for_the_tools_plan_is_given_once_naming_the_user_plan(studies):
    # the small lesion in segment 3: the tool (segment 7 resected) and the user's right hemihepatectomy both
    # ablate it; the shipped 5 mm key holds the measured gap (within a voxel diagonal of 6 mm: 3.3 .. 8.7 mm)
    rep = _analyze(studies[3], resections=[RIGHT_HEMI], rules={"planner": {"ablation_vessel_contact_mm": NEAR}})
    lid, gap = _small(rep)
    assert _kinds(rep["remnant"]["resection_plan"]["lesion_treatments"])[lid] == "ablation"
    assert _kinds(_user_plan(rep, RIGHT_HEMI)["lesion_treatments"])[lid] == "ablation"
    (warning,) = _ablation_warnings(rep)
    assert warning.startswith(f"lesion {lid} is planned for ablation {gap:.1f} mm from the portal vein")
    assert warning.endswith("; the same in user plan 'Right hemihepatectomy' (segments 5+6+7+8)")


def test_the_staged_strategies_clearing_plan_ablating_a_lesion_near_the_portal_vein_is_warned_of(studies):
    # an FLR threshold of 99 % of the non-tumorous liver: even the small lesion's ablation zone (at least the
    # 5 mm shell round a 7 mm sphere, 4/3 pi (12^3 - 7^3) = 5.8 mL of the ~430 mL liver, 1.3 %) leaves too
    # little, so the one-stage plan treats nothing; the clearing plan resects segment 7 and ablates the sphere
    flr = {"denominator": "non_tumorous", "non_tumorous_threshold_percent": {"normal": 99.0}}
    reps = {
        k: _analyze(studies[3], rules={"flr": flr, "planner": {"ablation_vessel_contact_mm": k}}) for k in (NEAR, FAR)
    }
    lid, gap = _small(reps[NEAR])
    assert set(_kinds(reps[NEAR]["remnant"]["resection_plan"]["lesion_treatments"]).values()) == {None}
    staged = reps[NEAR]["classification"]["staged_strategies"]
    assert staged["needed"] is True
    assert staged["clearing_resected_segments"] == [7]
    assert _kinds(staged["clearing_lesion_treatments"])[lid] == "ablation"
    assert staged["strategies"]["two_stage_hepatectomy"]["first_stage_clears_lesions"] == [lid]
    (warning,) = _ablation_warnings(reps[NEAR])
    assert warning.startswith(
        f"the staged strategies (PVE / two-stage hepatectomy / ALPPS, then {staged['clearing_resection']}): "
        f"lesion {lid} is planned for ablation {gap:.1f} mm from the portal vein"
    )
    assert _ablation_warnings(reps[FAR]) == []

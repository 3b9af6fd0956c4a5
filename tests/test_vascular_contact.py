"""Vascular contact: each lesion's gap to each hepatic vessel, and what the plan says of it (never a change).

The phantom lies on an oblique anisotropic grid (0.8 x 0.8 x 2.5 mm, rotated): a spherical lesion and a
cylindrical vessel (the portal vein) whose axis runs at a known distance from the sphere's centre, in a
direction that is none of the grid's axes. The truth is analytic: gap = distance(centre, axis) - r_sphere -
r_cylinder, computed here from the geometry alone; the measured gap must lie within one voxel diagonal of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import physical_grid, write_nifti
from rules_coverage import covers

from netlm_imaging.api import analyze
from netlm_imaging.report.tables import lesion_rows

SPACING = (0.8, 0.8, 2.5)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(12.0, -9.0, 27.0), origin=(-31.0, 12.5, 140.0))
SHAPE = (96, 96, 36)
DIAGONAL_MM = float(np.sqrt(sum(s * s for s in SPACING)))  # 2.74 mm
CENTRE = physical_grid(SHAPE, AFFINE)[48, 48, 18]
R_SPHERE, R_CYL = 7.0, 3.0
AXIS = np.array([0.3, -0.5, 0.81])
AXIS = AXIS / np.linalg.norm(AXIS)
OFFSET = np.cross(AXIS, [1.0, 0.0, 0.0])
OFFSET = OFFSET / np.linalg.norm(OFFSET)  # perpendicular to the axis
AXIS_DISTANCE = 16.0
GAP_MM = AXIS_DISTANCE - R_SPHERE - R_CYL  # 6.0 mm: the analytic surface-to-surface gap


def _masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = physical_grid(SHAPE, AFFINE)
    lesion = ((p - CENTRE) ** 2).sum(-1) <= R_SPHERE**2
    rel = p - (CENTRE + AXIS_DISTANCE * OFFSET)
    radial = rel - (rel @ AXIS)[..., None] * AXIS
    vessel = (radial**2).sum(-1) <= R_CYL**2
    d = ((p - CENTRE) / np.array([30.0, 30.0, 30.0])) ** 2
    liver = (d.sum(-1) <= 1.0) & ~vessel  # the liver around both, the vessel carved out of it
    return liver, lesion, vessel


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("vascular")
    liver, lesion, vessel = _masks()
    write_nifti(root / "ct.nii.gz", np.full(SHAPE, 60, np.int16), AFFINE)
    write_nifti(root / "liver.nii.gz", liver.astype(np.uint8), AFFINE)
    write_nifti(root / "liver_tumor.nii.gz", lesion.astype(np.uint8), AFFINE)
    write_nifti(root / "vessel_mask.nii.gz", vessel.astype(np.uint8), AFFINE)
    return root


def _segs(root, vessel: bool = True) -> list[str]:
    out = [f"liver={root / 'liver.nii.gz'}", f"lesion={root / 'liver_tumor.nii.gz'}"]
    return [*out, f"vessel={root / 'vessel_mask.nii.gz'}"] if vessel else out


def test_the_gap_to_a_cylindrical_vessel_on_an_oblique_grid_is_the_analytic_gap(study):
    _liver, lesion, vessel = _masks()
    assert not (lesion & vessel).any()
    assert lesion.sum() > 100
    assert vessel.sum() > 100
    rep = analyze(image=study / "ct.nii.gz", segs=_segs(study)).to_dict()
    (les,) = rep["lesions"]
    gaps = les["vessel_distances_mm"]
    assert list(gaps) == ["vessel_mask"]  # named by its file
    (gap,) = gaps.values()
    assert abs(gap - GAP_MM) <= DIAGONAL_MM, (gap, GAP_MM)
    assert rep["vascular_contact"]["assessed"] is True
    assert les["nearest_vessel"] == "vessel_mask"
    assert les["nearest_vessel_distance_mm"] == pytest.approx(gap, abs=1e-3)


def test_a_vessel_named_portal_vein_is_found_by_its_name_in_a_study_folder(tmp_path):
    liver, lesion, vessel = _masks()
    write_nifti(tmp_path / "ct.nii.gz", np.full(SHAPE, 60, np.int16), AFFINE)
    write_nifti(tmp_path / "liver.nii.gz", liver.astype(np.uint8), AFFINE)
    write_nifti(tmp_path / "liver_tumor.nii.gz", lesion.astype(np.uint8), AFFINE)
    write_nifti(tmp_path / "portal_vein.nii.gz", vessel.astype(np.uint8), AFFINE)
    rep = analyze(tmp_path).to_dict()
    (les,) = rep["lesions"]
    assert set(les["vessel_distances_mm"]) == {"portal vein"}
    assert abs(les["vessel_distances_mm"]["portal vein"] - GAP_MM) <= DIAGONAL_MM
    assert rep["vascular_contact"]["vessels"] == ["portal vein"]


def test_without_a_vessel_the_report_says_vascular_contact_was_not_assessed(study):
    rep = analyze(image=study / "ct.nii.gz", segs=_segs(study, vessel=False)).to_dict()
    (les,) = rep["lesions"]
    assert "vessel_distances_mm" not in les
    assert les.get("nearest_vessel") is None
    block = rep["vascular_contact"]
    assert block["assessed"] is False
    assert block["vessels"] == []
    assert block["note"].startswith("vascular contact was not assessed")
    assert not any("ablation" in w and "from the" in w for w in rep["warnings"])


def _ablation_warnings(rep: dict) -> list[str]:
    return [w for w in rep["warnings"] if "planner.ablation_vessel_contact_mm" in w]


@covers("planner.ablation_vessel_contact_mm")
def test_the_ablation_contact_key_decides_the_warning_and_never_the_plan(study):
    below, above = 0.5 * (GAP_MM - DIAGONAL_MM), GAP_MM + DIAGONAL_MM  # 1.6 mm: never reached; 8.7: always
    reps = {
        key: analyze(
            image=study / "ct.nii.gz", segs=_segs(study), rules={"planner": {"ablation_vessel_contact_mm": key}}
        ).to_dict()
        for key in (below, above)
    }
    plans = {k: r["remnant"]["resection_plan"]["lesion_treatments"] for k, r in reps.items()}
    assert [t["treatment"] for t in plans[below]] == ["ablation"]
    assert plans[below] == plans[above]  # the warning changes nothing in the plan
    assert _ablation_warnings(reps[below]) == []
    (warning,) = _ablation_warnings(reps[above])
    assert warning.startswith("lesion 1 is planned for ablation ")
    assert "heat-sink" in warning
    gap = reps[above]["lesions"][0]["vessel_distances_mm"]["vessel_mask"]
    assert f"{gap:.1f} mm from the vessel_mask" in warning


@covers("planner.resection_vessel_contact_mm")
def test_the_resection_contact_key_notes_a_wedge_next_to_a_named_major_vessel(tmp_path):
    liver, lesion, vessel = _masks()
    write_nifti(tmp_path / "ct.nii.gz", np.full(SHAPE, 60, np.int16), AFFINE)
    write_nifti(tmp_path / "liver.nii.gz", liver.astype(np.uint8), AFFINE)
    write_nifti(tmp_path / "liver_tumor.nii.gz", lesion.astype(np.uint8), AFFINE)
    write_nifti(tmp_path / "portal_vein.nii.gz", vessel.astype(np.uint8), AFFINE)
    no_ablation = {"allow_ablation": False}
    reps = {
        key: analyze(tmp_path, rules={"planner": {**no_ablation, "resection_vessel_contact_mm": key}}).to_dict()
        for key in (0.0, GAP_MM + DIAGONAL_MM)
    }
    plans = {k: r["remnant"]["resection_plan"] for k, r in reps.items()}
    assert [t["treatment"] for t in plans[0.0]["lesion_treatments"]] == ["enucleation"]
    assert plans[0.0]["lesion_treatments"] == plans[GAP_MM + DIAGONAL_MM]["lesion_treatments"]
    assert not any("portal vein" in n for n in plans[0.0]["notes"])
    (note,) = [n for n in plans[GAP_MM + DIAGONAL_MM]["notes"] if "portal vein" in n]
    assert note.startswith("lesion 1 (enucleation) is ")
    assert "the plan is not changed" in note


def test_the_cli_reports_the_gap_and_the_warning(study, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(f"[planner]\nablation_vessel_contact_mm = {GAP_MM + DIAGONAL_MM}\n")
    out = tmp_path / "out"
    args = ["--image", str(study / "ct.nii.gz"), *(a for s in _segs(study) for a in ("--seg", s))]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlm_imaging.cli",
            "analyze",
            *args,
            "--rules",
            str(rules),
            "--out",
            str(out),
            "--html",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    (gap,) = rep["lesions"][0]["vessel_distances_mm"].values()
    assert abs(gap - GAP_MM) <= DIAGONAL_MM
    assert len(_ablation_warnings(rep)) == 1
    page = (out / "report.html").read_text()
    (para,) = re.findall(r'<p id="plan-vascular">(.*?)</p>', page)
    assert f"measured against vessel_mask (nearest: lesion 1: {gap:.1f} mm to the vessel_mask)" in para
    (row,) = lesion_rows(rep)  # the lesions.csv row of a cohort
    assert row["nearest_vessel"] == "vessel_mask"
    assert abs(row["nearest_vessel_distance_mm"] - GAP_MM) <= DIAGONAL_MM


@pytest.mark.parametrize("empty_slices", [0, 1, 3])
def test_boxes_k_slices_apart_are_k_slice_thicknesses_apart(tmp_path, empty_slices):
    # a lesion box and a vessel box on the oblique grid, separated by k empty slices along the 2.5 mm axis: their
    # faces are k x 2.5 mm apart in patient space (0: touching faces, 0 mm)
    liver = np.zeros(SHAPE, np.uint8)
    liver[20:70, 20:70, 5:30] = 1
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[40:46, 40:46, 10:14] = 1
    vessel = np.zeros(SHAPE, np.uint8)
    vessel[38:50, 38:50, 14 + empty_slices : 20 + empty_slices] = 1
    liver[vessel.astype(bool)] = 0
    for name, arr in (("ct", np.full(SHAPE, 60, np.int16)), ("liver", liver), ("liver_tumor", lesion)):
        write_nifti(tmp_path / f"{name}.nii.gz", arr, AFFINE)
    write_nifti(tmp_path / "inferior_vena_cava.nii.gz", vessel, AFFINE)
    rep = analyze(tmp_path).to_dict()
    (les,) = rep["lesions"]
    assert les["vessel_distances_mm"] == {"inferior vena cava": pytest.approx(empty_slices * SPACING[2], abs=1e-6)}


def test_rtstruct_rois_named_portal_vein_and_ivc_are_measured_and_warned_of(tmp_path):
    # an RTSTRUCT as a planning system exports it: Liver, Tumor, "Portal Vein", "IVC" (no codes), on a rotated
    # 1.5 x 1.5 x 3 mm grid; boxes whose contours hold whole voxels, so the gaps are exact
    from dicom_factory import write_image_series
    from seg_factory import Contour, RoiSpec, write_rtstruct

    aff = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(0.0, 0.0, 15.0), origin=(-30.0, -20.0, 50.0))

    def box(i0, i1, j0, j1, k0, k1):  # voxel centres i0..i1-1, j0..j1-1 on k0..k1-1
        corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
        return [Contour(np.array([aff[:3, :3] @ [i, j, k] + aff[:3, 3] for i, j in corners])) for k in range(k0, k1)]

    files = write_image_series(tmp_path / "ct", np.zeros((40, 40, 12), np.float32), aff, seed=29)
    rois = [
        RoiSpec("Liver", box(5, 35, 5, 35, 1, 11), interpreted_type="ORGAN"),
        RoiSpec("Tumor", box(10, 16, 10, 16, 3, 7), interpreted_type="GTV"),
        RoiSpec("Portal Vein", box(18, 22, 10, 16, 3, 7), interpreted_type="ORGAN"),  # i 16, 17 empty: 3.0 mm
        RoiSpec("IVC", box(10, 16, 10, 16, 7, 10), interpreted_type="ORGAN"),  # the next slice: touching, 0 mm
    ]
    rt = write_rtstruct(tmp_path / "rt.dcm", files, rois, seed=29)
    rep = analyze(image=tmp_path / "ct", segs=[rt]).to_dict()
    (les,) = rep["lesions"]
    assert les["vessel_distances_mm"] == {
        "portal vein": pytest.approx(2 * 1.5, abs=1e-3),
        "inferior vena cava": pytest.approx(0.0, abs=1e-9),
    }
    assert les["nearest_vessel"] == "inferior vena cava"
    kinds = [t["treatment"] for t in rep["remnant"]["resection_plan"]["lesion_treatments"]]
    assert kinds == ["ablation"]  # 9 x 9 x 12 mm: within ablation_max_diameter_mm
    # both vessels within the shipped 5 mm: one warning each, nearest first
    assert [w.split(" (within")[0] for w in _ablation_warnings(rep)] == [
        "lesion 1 is planned for ablation 0.0 mm from the inferior vena cava",
        "lesion 1 is planned for ablation 3.0 mm from the portal vein",
    ]

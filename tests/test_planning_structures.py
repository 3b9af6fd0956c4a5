"""Planning-system helper structures and second versions of the liver in one structure set.

Eclipse, RayStation, MIM and Monaco users add helper structures named after the organ with an
underscore (Liver_ring, Liver_opt, Liver_eval, Liver_FLR, Tumor_bed, zLiver: TG-263 marks helper
structures with a ``z`` or ``_`` prefix). Joined by ``_``, the short words were not seen as words
(``\\b`` treats ``_`` as a letter): Liver_ring (a ring *around* the liver) was added to the liver and
Tumor_bed was measured as a lesion, with no warning. They are now derived structures, never guessed.

A second version of the liver (``Liver`` and ``Liver_1``, as MIM numbers a copy) is measured as the
union, as any two liver segments are, with a warning that names both and the flag choosing one.

Phantom: an oblique anisotropic CT; structures are boxes (and a ring of two boxes) outlined through
voxel edges, so their voxel counts, computed here, are the truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.role_precedence import decide_role
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, box_outline, write_rtstruct

SHAPE = (40, 36, 14)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
VOXEL_ML = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
LIVER = ((4, 34), (3, 33), range(2, 12))
LIVER_V2 = ((4, 32), (3, 33), range(2, 13))  # an edited copy: 2 columns less, one slice more
RING_OUTER = ((1, 37), (1, 35), range(2, 12))  # with LIVER as its hole: a ring around the liver
GTV = ((10, 16), (9, 14), range(4, 7))
BED = ((8, 18), (7, 16), range(3, 8))


def _outline(box, k: int) -> Contour:
    return box_outline(AFFINE, box, k)


def _contours(*boxes) -> list[Contour]:
    return [_outline(b, k) for b in boxes for k in b[2]]


def _voxels(box) -> int:
    (i0, i1), (j0, j1), ks = box
    return (i1 - i0) * (j1 - j0) * len(ks)


@pytest.mark.parametrize(
    "name",
    [
        "Liver_ring",
        "Liver_opt",
        "Liver_Optimization",
        "Liver_eval",
        "Liver_FLR",
        "Liver_Hollow",
        "Liver_avoid",
        "Liver_sub",
        "Liver_Exp",
        "Liver_spare",
        "zLiver",
        "z_GTV",
        "_Liver",
        "Tumor_bed",
        "GTV_bed",
        "Liver_IVC",
    ],
)
def test_helper_structures_joined_by_underscores_get_no_role(name):
    decision = decide_role(name, None, parse_label_spec(None))
    assert decision.role is None
    assert decision.reason == "unmatched-ignored"


@pytest.mark.parametrize(
    ("name", "role"),
    [("Liver_1", "liver"), ("Liver_2", "liver"), ("Liver (AI)", "liver"), ("Liver_MIM", "liver"), ("GTV_1", "lesion")],
)
def test_numbered_and_tagged_copies_keep_their_role(name, role):
    assert decide_role(name, None, parse_label_spec(None)).role == role


def _study(tmp_path, rois):
    study = tmp_path / "study"
    paths = write_image_series(study / "ct", np.zeros(SHAPE), AFFINE, seed=41)
    write_rtstruct(study / "rt.dcm", paths, rois)
    return study


def test_ring_and_bed_structures_are_not_measured_as_liver_and_lesion(tmp_path):
    rois = [
        RoiSpec("Liver", _contours(LIVER)),
        RoiSpec("Liver_ring", _contours(RING_OUTER, LIVER)),
        RoiSpec("GTV", _contours(GTV), interpreted_type="GTV"),
        RoiSpec("Tumor_bed", _contours(BED), interpreted_type="GTV"),
    ]
    report = analyze_json(str(_study(tmp_path, rois)))
    assert report["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_voxels(GTV) * VOXEL_ML, abs=1e-4)
    assert report["tumor"]["lesion_count"] == 1
    roles = {r["name"]: (r["role"], r["reason"]) for r in report["study"]["segment_roles"]}
    assert roles["Liver_ring"] == (None, "unmatched-ignored")
    assert roles["Tumor_bed"] == (None, "unmatched-ignored")


def test_two_versions_of_the_liver_warn_and_name_the_flag(tmp_path):
    rois = [
        RoiSpec("Liver", _contours(LIVER)),
        RoiSpec("Liver_1", _contours(LIVER_V2)),
        RoiSpec("GTV", _contours(GTV), interpreted_type="GTV"),
    ]
    study = _study(tmp_path, rois)
    report = analyze_json(str(study))
    union = np.zeros(SHAPE, bool)
    for (i0, i1), (j0, j1), ks in (LIVER, LIVER_V2):
        union[i0:i1, j0:j1, ks.start : ks.stop] = True
    assert report["liver"]["volume_ml"] == pytest.approx(union.sum() * VOXEL_ML, abs=1e-3)
    (warning,) = [w for w in report["warnings"] if "two versions of the liver" in w]
    assert f"'Liver' ({_voxels(LIVER) * VOXEL_ML:.2f} mL)" in warning
    assert f"'Liver_1' ({_voxels(LIVER_V2) * VOXEL_ML:.2f} mL)" in warning
    assert 'Choose one with --labels liver="Liver"' in warning
    chosen = analyze_json(str(study), "--labels", 'liver="Liver",lesion="GTV"')  # the flag it names works
    assert chosen["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-3)
    assert not any("two versions" in w for w in chosen["warnings"])


def test_two_parts_of_the_liver_are_not_called_versions(tmp_path):
    left, right = ((4, 18), (3, 33), range(2, 12)), ((18, 34), (3, 33), range(2, 12))
    rois = [
        RoiSpec("Liver left lobe", _contours(left)),
        RoiSpec("Liver right lobe", _contours(right)),
        RoiSpec("GTV", _contours(GTV), interpreted_type="GTV"),
    ]
    report = analyze_json(str(_study(tmp_path, rois)))
    assert report["liver"]["volume_ml"] == pytest.approx((_voxels(left) + _voxels(right)) * VOXEL_ML, abs=1e-3)
    assert not any("two versions" in w for w in report["warnings"])


def test_the_flag_suggested_for_an_ignored_roi_keeps_the_liver(tmp_path):
    """A user mapping is exclusive: the example flag for the ignored 'Target A' must name 'Liver' too.

    It suggested --labels lesion="Target A" alone, which drops the liver the rules had found.
    """
    rois = [RoiSpec("Liver", _contours(LIVER)), RoiSpec("Target A", _contours(GTV), interpreted_type="GTV")]
    study = _study(tmp_path, rois)
    report = analyze_json(str(study))
    (warning,) = [w for w in report["warnings"] if "got no role and were ignored" in w]
    flag = warning.split("map one with e.g. --labels ", 1)[1].split(" (study.segment_roles", 1)[0]
    assert flag == 'liver="Liver",lesion="Target A"'
    mapped = analyze_json(str(study), "--labels", flag)
    assert mapped["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-3)
    assert mapped["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_voxels(GTV) * VOXEL_ML, abs=1e-4)

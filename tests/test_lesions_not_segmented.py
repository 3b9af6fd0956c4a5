"""A liver-only segmentation is not a tumour-free liver.

When no input declares a lesion role (no segment or ROI given the lesion role, no
``lesion=PATH`` mask, no label-map value mapped to lesion), the tumour totals of 0 are not
measurements: the involvement and the burden decisions are null with ``lesion segmentation``
named as missing, and the report says so (``tumor.lesions_segmented`` and a warning). A label
map read with a mapping that has a lesion value (the LiTS default: 2) declares the role, so a
map without that value is measured as 0 % involvement, as the convention says.

Expected numbers: real files' measured facts (shared/data/MANIFEST.md) and analytic phantoms.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import write_nifti

from netlm_imaging.api import AnalyzeOptions, analyze
from netlm_imaging.classify.classifications import burden_category, mahuron_type
from netlm_imaging.classify.rules import load_rules

DCMQI = ("dcmqi_ct3slice_seg", "data", "segmentations")
TS = ("totalseg_example", "tests", "reference_files")


def _assert_not_segmented(rep) -> None:
    assert rep.tumor["lesions_segmented"] is False
    assert rep.involvement_percent is None
    cls = rep.classification
    assert cls["burden_category"] is None
    assert cls["clarinet_split"] is None
    assert cls["mahuron_type"] is None
    assert "lesion segmentation" in cls["missing_inputs"]
    assert any(w.startswith("no lesion segmentation among the inputs") for w in rep.warnings)


def test_liver_only_dicom_seg_leaves_involvement_null(shared):
    # MANIFEST: liver.dcm (one segment "Liver") on ct-3slice: 107,098 voxels = 70.362 mL
    rep = analyze(image=shared(*DCMQI, "ct-3slice"), segs=[shared(*DCMQI, "liver.dcm")])
    assert rep.liver["voxel_count"] == 107098
    assert rep.liver["volume_ml"] == pytest.approx(70.362, abs=5e-4)
    _assert_not_segmented(rep)
    assert rep.classification["cloyd_criteria"]["resection_feasible"]["missing_inputs"] == ["lesion segmentation"]


def test_totalsegmentator_liver_mapping_without_lesion(shared):
    # MANIFEST: liver = label 5 of the TotalSegmentator map: 1043.12 mL; the model has no tumour label
    rep = analyze(
        image=shared(*TS, "example_ct_sm.nii.gz"),
        segs=[shared(*TS, "example_seg.nii.gz")],
        labels="liver=5",
        options=AnalyzeOptions(modality="CT"),
    )
    assert rep.liver["volume_ml"] == pytest.approx(1043.12, abs=0.005)
    _assert_not_segmented(rep)


@pytest.fixture
def grid(tmp_path):
    aff = oblique_affine(spacing=(1.0, 1.2, 2.5))
    shape = (24, 20, 10)
    img = np.full(shape, 40, np.int16)
    write_nifti(tmp_path / "img.nii.gz", img, aff)
    liver = np.zeros(shape, np.uint8)
    liver[4:20, 4:16, 2:8] = 1  # 16 x 12 x 6 = 1152 voxels of 3.0 uL
    return tmp_path, aff, liver


def test_lits_map_without_lesion_value_is_zero_involvement(grid):
    d, aff, liver = grid
    write_nifti(d / "seg.nii.gz", liver, aff)  # LiTS: 1 liver, 2 lesion; no 2 present = no tumour
    rep = analyze(image=d / "img.nii.gz", segs=[d / "seg.nii.gz"])
    assert rep.liver["volume_ml"] == pytest.approx(1152 * 1.0 * 1.2 * 2.5 / 1000)
    assert rep.tumor["lesions_segmented"] is True
    assert rep.involvement_percent == 0.0
    assert rep.classification["burden_category"] == "<=10"
    assert not any(w.startswith("no lesion segmentation") for w in rep.warnings)


def test_user_mapping_that_leaves_out_the_lesion_value(grid):
    d, aff, liver = grid
    seg = liver.copy()
    seg[8:12, 8:12, 4:6] = 2  # a lesion the user's mapping does not take
    write_nifti(d / "seg.nii.gz", seg, aff)
    rep = analyze(image=d / "img.nii.gz", segs=[d / "seg.nii.gz"], labels="liver=1")
    _assert_not_segmented(rep)
    both = analyze(image=d / "img.nii.gz", segs=[d / "seg.nii.gz"], labels="liver=1,lesion=2")
    assert both.tumor["lesions_segmented"] is True
    assert both.involvement_percent == pytest.approx(100 * 32 / 1152, abs=5e-5)


def test_role_masks_declare_what_they_are(grid):
    d, aff, liver = grid
    write_nifti(d / "liver.nii.gz", liver, aff)
    only_liver = analyze(image=d / "img.nii.gz", segs=[f"liver={d / 'liver.nii.gz'}"])
    _assert_not_segmented(only_liver)
    les = np.zeros_like(liver)
    les[8:12, 8:12, 4:6] = 1
    write_nifti(d / "lesion.nii.gz", les, aff)
    with_lesion = analyze(image=d / "img.nii.gz", segs=[f"liver={d / 'liver.nii.gz'}", f"lesion={d / 'lesion.nii.gz'}"])
    assert with_lesion.tumor["lesions_segmented"] is True
    assert with_lesion.involvement_percent == pytest.approx(100 * 32 / 1152, abs=5e-5)
    assert with_lesion.classification["burden_category"] == "<=10"


def test_burden_and_mahuron_name_the_missing_segmentation():
    rules = load_rules(None)
    unknown = burden_category(None, rules["burden"], unknown_because="lesion segmentation")
    assert unknown["category"] is None
    assert unknown["missing_inputs"] == ["lesion segmentation"]
    assert burden_category(None, rules["burden"])["missing_inputs"] == ["liver mask"]
    kw = {
        "n_lesions": 0,
        "achievable_percent": None,
        "achievable_missing": [],
        "symptoms": None,
        "distribution": None,
        "debulking": rules["debulking"],
        "mahuron": rules["mahuron"],
    }
    assert mahuron_type(**kw, lesions_segmented=False)["missing_inputs"] == ["lesion segmentation"]
    none_there = mahuron_type(**kw)
    assert none_there["type"] is None
    assert none_there["missing_inputs"] == []


def test_an_empty_lesion_roi_declares_the_role(tmp_path):
    # an RTSTRUCT with a Liver ROI and a GTV ROI without contours: the lesion role is declared (the GTV
    # simply holds nothing), so the involvement is a measured 0 %, unlike a liver-only structure set
    from dicom_factory import write_image_series
    from seg_factory import Contour, RoiSpec, write_rtstruct

    aff = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(0.0, 0.0, 12.0))
    shape = (30, 28, 10)
    files = write_image_series(tmp_path / "ct", np.full(shape, 50.0), aff)

    def square(k: int) -> Contour:
        corners = [(4.5, 4.5), (24.5, 4.5), (24.5, 22.5), (4.5, 22.5)]  # voxel centres 5..24 x 5..22
        return Contour(np.array([aff[:3, :3] @ np.array([i, j, k], float) + aff[:3, 3] for i, j in corners]))

    liver = RoiSpec("Liver", [square(k) for k in range(2, 8)])
    write_rtstruct(tmp_path / "rtss.dcm", files, [liver, RoiSpec("GTV", [], interpreted_type="GTV")])
    rep = analyze(tmp_path)
    assert rep.liver["voxel_count"] == 20 * 18 * 6
    assert rep.tumor["lesions_segmented"] is True
    assert rep.involvement_percent == 0.0
    write_rtstruct(tmp_path / "rtss.dcm", files, [liver])
    _assert_not_segmented(analyze(tmp_path))

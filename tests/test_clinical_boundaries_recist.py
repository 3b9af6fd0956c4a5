"""clinical_rules.md section 8 (RECIST 1.1 baseline) at its boundaries, through ``netlm analyze``.

Lesions are drawn as one-voxel-wide lines (and crosses, for lymph nodes) along the in-plane grid
axes of a 0.5 x 0.5 mm grid rotated in the axial plane, so an edge-to-edge diameter (the rules'
``diameter_method = "edge"``: voxel-centre distance plus one voxel along the measured direction)
of n voxels is n x 0.5 mm: the truth is counted here. The rules: a non-nodal lesion is measurable
from a longest diameter of 10 mm on slices of at most 5 mm, else from 2 x the slice thickness;
a lymph node is a target from a short axis of 15 mm, non-target (pathological) from 10 mm, normal
below; at most 5 targets, 2 per organ (all nodes one organ); the sum of diameters adds the long
axes of non-nodal targets and the short axes of nodal ones.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from dicom_factory import write_image_series
from phantoms import write_nifti
from pydicom.sr.codedict import codes
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main

PIXEL_MM = 0.5


def _affine(slice_mm: float, angle_deg: float = 30.0) -> np.ndarray:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    a = np.eye(4)
    a[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([PIXEL_MM, PIXEL_MM, slice_mm])
    a[:3, 3] = (-30.0, 20.0, 100.0)
    return a


def _nifti_line(tmp_path, n: int, slice_mm: float, angle_deg: float) -> dict:
    shape = (80, 60, 6)
    labels = np.ones(shape, dtype=np.uint8)  # liver everywhere
    labels[10 : 10 + n, 30, 3] = 2  # an intrahepatic lesion n voxels long along the first grid axis
    aff = _affine(slice_mm, angle_deg)
    write_nifti(tmp_path / "ct.nii.gz", np.full(shape, 60, np.int16), aff)
    write_nifti(tmp_path / "seg.nii.gz", labels, aff)
    argv = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
    assert main([*argv, "--modality", "CT", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


@pytest.mark.parametrize("angle_deg", [30.0, 17.0])
@pytest.mark.parametrize(
    ("n", "slice_mm", "measurable"),
    [
        (19, 2.5, False),  # 9.5 mm
        (20, 2.5, True),  # 10.0 mm: the minimum is inclusive
        (21, 2.5, True),
        (20, 5.0, True),  # 5 mm slices are still thin: minimum 10 mm
        (23, 6.0, False),  # 6 mm slices: minimum 2 x 6 = 12 mm; 11.5 mm
        (24, 6.0, True),  # 12.0 mm
        (25, 6.0, True),
    ],
)
def test_non_nodal_measurability_at_10_mm_and_2x_slice_thickness(tmp_path, n, slice_mm, measurable, angle_deg):
    """A lesion exactly at the minimum on a rotated grid (float32 NIfTI affine: it reads 10.0 mm to 1e-7)
    is measurable; it was reported as "10.0 mm < 10 mm: non-measurable"."""
    rep = _nifti_line(tmp_path, n, slice_mm, angle_deg)
    c, (les,) = rep["classification"], rep["lesions"]
    assert c["recist_measurable_limit_mm"] == pytest.approx(max(10.0, 2.0 * slice_mm) if slice_mm > 5 else 10.0)
    assert les["longest_axial_diameter_edge_mm"] == pytest.approx(n * PIXEL_MM, abs=1e-4)
    assert les["recist_measurable"] is measurable
    assert [t["lesion_id"] for t in c["recist_targets"]] == ([les["id"]] if measurable else [])


NEOPLASM = codes.SCT.Neoplasm
SHAPE = (200, 140, 6)


def _line(n: int, i0: int, j: int, k: int = 3) -> np.ndarray:
    m = np.zeros(SHAPE, dtype=bool)
    m[i0 : i0 + n, j, k] = True
    return m


def _cross(long_n: int, short_n: int, i0: int, j0: int, k: int = 3) -> np.ndarray:
    """A node: a long arm of ``long_n`` voxels along i, crossed at its middle by a ``short_n`` arm along j."""
    m = _line(long_n, i0, j0 + short_n // 2, k)
    mid = i0 + long_n // 2
    m[mid, j0 : j0 + short_n, k] = True
    return m


def _seg_study(tmp_path, segments: list[tuple[str, np.ndarray]]) -> dict:
    aff = _affine(2.5)
    liver = np.zeros(SHAPE, dtype=bool)
    liver[:100, :, :] = True
    files = write_image_series(tmp_path / "ct", np.where(liver, 60.0, 0.0), aff)
    specs = [SegmentSpec("Liver", liver)] + [SegmentSpec(name, m, property_type=NEOPLASM) for name, m in segments]
    write_seg(tmp_path / "seg.dcm", files, specs)
    argv = ["analyze", "--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


@pytest.mark.parametrize(
    ("short_n", "category"),
    [
        (19, "normal_node"),  # 9.5 mm
        (20, "non_target"),  # 10.0 mm: pathological from 10 mm
        (21, "non_target"),
        (29, "non_target"),  # 14.5 mm
        (30, "target"),  # 15.0 mm: a target from 15 mm
        (31, "target"),
    ],
)
def test_lymph_node_short_axis_at_10_and_15_mm(tmp_path, short_n, category):
    """The node's long axis (40 mm) would make any non-nodal lesion measurable; its short axis decides."""
    rep = _seg_study(tmp_path, [("Lymph node metastasis", _cross(80, short_n, 110, 40))])
    (les,) = rep["lesions"]
    assert les["short_axis_diameter_edge_mm"] == pytest.approx(short_n * PIXEL_MM, abs=1e-4)
    targets = rep["classification"]["recist_targets"]
    assert [t["lesion_id"] for t in targets] == ([les["id"]] if category == "target" else [])
    assert les["recist_measurable"] is (category == "target")
    assert les["recist_category"] == category


def test_at_most_5_targets_and_2_per_organ_with_the_sum_of_diameters(tmp_path):
    """Liver 3 lesions (30, 25, 20 mm), nodes 3 (short axes 20, 18, 16 mm), lung 2 (24, 12 mm), bone 1 (14 mm):
    the largest of every organ first (liver 30, lung 24, node 20, bone 14), then the largest second
    lesion (liver 25): 5 targets, none of a third liver lesion or node."""
    segs = [
        ("Liver metastasis 1", _line(60, 10, 10)),
        ("Liver metastasis 2", _line(50, 10, 30)),
        ("Liver metastasis 3", _line(40, 10, 50)),
        ("Lymph node 1", _cross(90, 40, 105, 5)),
        ("Lymph node 2", _cross(90, 36, 105, 50)),
        ("Lymph node 3", _cross(90, 32, 105, 95)),
        ("Lung metastasis 1", _line(48, 105, 134)),
        ("Lung metastasis 2", _line(24, 150, 134, k=1)),
        ("Bone metastasis", _line(28, 105, 138, k=5)),
    ]
    rep = _seg_study(tmp_path, segs)
    c = rep["classification"]
    by_name = {les["label"]: les["id"] for les in rep["lesions"]}
    assert len(by_name) == 9
    got = {t["lesion_id"]: (t["organ"], t["diameter_mm"]) for t in c["recist_targets"]}
    expected = {
        by_name["Liver metastasis 1"]: ("liver", 30.0),
        by_name["Liver metastasis 2"]: ("liver", 25.0),
        by_name["Lung metastasis 1"]: ("lung", 24.0),
        by_name["Lymph node 1"]: ("lymph nodes", 20.0),
        by_name["Bone metastasis"]: ("bone", 14.0),
    }
    assert {k: (o, pytest.approx(d, abs=1e-4)) for k, (o, d) in got.items()} == expected
    assert c["recist_sum_of_diameters_mm"] == pytest.approx(30 + 25 + 24 + 20 + 14, abs=1e-3)


def test_three_measurable_liver_lesions_alone_give_two_targets(tmp_path):
    """With every lesion in one organ the 2-per-organ limit binds before the 5 targets (above it never does): the
    30 and 25 mm lesions are targets, the 20 mm one is measurable but not a target; the sum is 30 + 25 mm."""
    segs = [("Liver metastasis 1", _line(60, 10, 10)), ("Liver metastasis 2", _line(50, 10, 30))]
    rep = _seg_study(tmp_path, [*segs, ("Liver metastasis 3", _line(40, 10, 50))])
    c = rep["classification"]
    by_name = {les["label"]: les for les in rep["lesions"]}
    assert {t["lesion_id"] for t in c["recist_targets"]} == {by_name[f"Liver metastasis {i}"]["id"] for i in (1, 2)}
    assert by_name["Liver metastasis 3"]["recist_measurable"] is True
    assert c["recist_sum_of_diameters_mm"] == pytest.approx(30 + 25, abs=1e-3)

"""A gantry-tilted CT is measured on its acquired, sheared grid: nothing is resampled.

The slices of a tilted gantry are parallel planes whose origins move along the table, off the
planes' normal; the affine's slice column is that step, so each voxel lies where the scanner put
it. Every expected number here comes from the written geometry alone: the voxel volume is the
parallelepiped ``|det A|``, distances are ``|A (p - q)|`` between voxel centres by brute force.

Real data: dicom2nifti_geometry_edgecases (icometrix/dicom2nifti, MIT), a CT series with a
14 degree tilt (headers only; its pixels are noise). Peer bugs: TotalSegmentator #610 (SEG
output fails on a tilted CT) and QIICR/dcmqi #430 (frame origins "outside image geometry").
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.api import analyze_with_context
from netlm_imaging.classify.zones import compute_zones
from netlm_imaging.cli import main
from netlm_imaging.errors import DicomError, GeometryError, InputError
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.volume import Volume
from tests.conftest import shared_path, tilted_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, SegmentSpec, write_rtstruct, write_seg

TILT_DEG = 30.0
SHAPE = (40, 36, 24)


def _phantom():
    """Liver box; lesion 1 inside; lesion 2 touches the liver only diagonally at 1.30 mm, lesion 3 at 2.02 mm.

    With the grid's true metric lesion 2 is within the 2 mm margin and lesion 3 is not; read as if
    the axes were orthogonal, both would be 1.70 mm from the liver.
    """
    liver = np.zeros(SHAPE, bool)
    liver[4:36, 4:20, 3:21] = True
    les = np.zeros(SHAPE, np.uint8)
    les[8:14, 8:13, 8:12] = 1  # inside
    les[10:14, 20:23, 21] = 2  # one slice above the liver's top slice, one column beyond it: offset (0, -1, -1)
    les[23:28, 20:23, 2] = 3  # one slice below its bottom slice, one column beyond: offset (0, -1, +1)
    return liver, les


def _min_distance_mm(a: np.ndarray, b: np.ndarray, aff: np.ndarray) -> float:
    pa, pb = np.argwhere(a) @ aff[:3, :3].T, np.argwhere(b) @ aff[:3, :3].T
    return float(np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1).min()))


def _max_distance_mm(a: np.ndarray, aff: np.ndarray) -> float:
    p = np.argwhere(a) @ aff[:3, :3].T
    return float(np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1).max()))


@pytest.fixture(scope="module")
def tilted_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("tilt")
    aff = tilted_affine()
    liver, les = _phantom()
    hu = np.where(les > 0, 120.0, np.where(liver, 60.0, -50.0))
    files = write_image_series(root / "ct", hu, aff, modality="CT", seed=3)
    write_seg(
        root / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver & (les == 0)),
            SegmentSpec(
                "Lesion",
                les > 0,
                property_type=codes.SCT.Neoplasm,
                property_category=codes.SCT.MorphologicallyAbnormalStructure,
            ),
        ],
    )
    return root, aff, liver, les, files


# --------------------------------------------------------------------------- the grid
def test_real_tilted_series_is_read_on_its_sheared_grid():
    folder = shared_path("dicom2nifti_geometry_edgecases", "tests", "data", "failing", "gantrytilting", "001")
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.glob("*.dcm"))]
    iop = np.array([float(x) for x in headers[0].ImageOrientationPatient])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    ipp = sorted((np.array([float(x) for x in h.ImagePositionPatient]) for h in headers), key=lambda p: p @ normal)
    dr, dc = (float(x) for x in headers[0].PixelSpacing)
    separation = float((ipp[1] - ipp[0]) @ normal)
    vol = read_dicom_series(folder)
    assert vol.sheared
    assert vol.voxel_volume_mm3 == pytest.approx(dr * dc * separation, rel=1e-6)
    assert vol.slice_separation_mm == pytest.approx(separation, rel=1e-6)
    for k, p in enumerate(ipp):  # every slice origin where its header puts it
        np.testing.assert_allclose(vol.index_to_lps([0, 0, k])[0], p, atol=1e-3)
    step = ipp[1] - ipp[0]
    tilt = math.degrees(math.acos(abs(float(step @ normal)) / float(np.linalg.norm(step))))
    assert 13.5 < tilt < 14.5
    assert vol.shear_deg == pytest.approx(tilt, abs=1e-3)
    assert vol.meta["gantry_tilt_deg"] == pytest.approx(tilt, abs=1e-3)
    assert any(f"gantry tilt of {tilt:.1f} degrees" in w and "nothing resampled" in w for w in vol.meta["warnings"])


def test_sheared_volume_properties_and_other_shears_refused():
    aff = tilted_affine()
    vol = Volume(np.zeros((4, 4, 3)), aff)
    assert vol.sheared
    assert vol.slice_axis == 2
    assert vol.shear_deg == pytest.approx(TILT_DEG, abs=1e-9)
    assert vol.slice_separation_mm == pytest.approx(1.5 * math.cos(math.radians(TILT_DEG)), rel=1e-12)
    np.testing.assert_allclose(
        vol.slice_normal, [0.0, math.sin(math.radians(TILT_DEG)), math.cos(math.radians(TILT_DEG))]
    )
    assert not Volume(np.zeros((4, 4, 3)), np.diag([0.8, 0.8, 1.5, 1.0])).sheared
    bad = aff.copy()
    bad[:3, 1] = [0.3, 0.74, 0.0]  # rows and columns not orthogonal: no scanner writes that
    with pytest.raises(GeometryError, match="not a gantry-tilt shear"):
        Volume(np.zeros((4, 4, 3)), bad)
    steep = tilted_affine(tilt_deg=50.0)
    with pytest.raises(GeometryError, match="within 45 degrees"):
        Volume(np.zeros((4, 4, 3)), steep)


# --------------------------------------------------------------------------- measurements
def test_volumes_distances_and_the_margin_on_a_tilted_ct(tilted_study):
    root, aff, liver, les, _files = tilted_study
    vox_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    report, _ctx = analyze_with_context(root)
    d = report.to_dict()
    total_liver = liver | (les == 1) | (les == 2)  # the lesions within the margin are hepatic
    assert _min_distance_mm(les == 2, liver, aff) == pytest.approx(1.3, abs=1e-9)
    assert _min_distance_mm(les == 3, liver, aff) == pytest.approx(math.sqrt(4.09), abs=1e-9)
    assert d["liver"]["volume_ml"] == pytest.approx(int(total_liver.sum()) * vox_ml, rel=1e-6, abs=1e-6)
    intra = int(((les == 1) | (les == 2)).sum()) * vox_ml
    assert d["tumor"]["intrahepatic_volume_ml"] == pytest.approx(intra, rel=1e-6, abs=1e-6)
    by_size = sorted(d["lesions"], key=lambda x: -x["voxel_count"])
    where = {int((les == n).sum()): n for n in (1, 2, 3)}
    locations = {where[x["voxel_count"]]: x["location"] for x in by_size}
    assert locations == {1: "intrahepatic", 2: "intrahepatic", 3: "extrahepatic"}
    for x in by_size:
        assert x["max_3d_diameter_mm"] == pytest.approx(_max_distance_mm(les == where[x["voxel_count"]], aff), abs=1e-3)
    assert any("gantry tilt of 30.0 degrees" in w for w in d["warnings"])
    grid = d["study"]["grid"]
    assert grid["shear_deg"] == pytest.approx(TILT_DEG, abs=1e-3)
    assert grid["slice_separation_mm"] == pytest.approx(1.5 * math.cos(math.radians(TILT_DEG)), abs=1e-6)
    assert grid["spacing_mm"] == pytest.approx([0.8, 0.8, 1.5])  # the steps along the array axes


def test_zones_on_a_tilted_grid_are_the_voxels_within_the_margin(tilted_study):
    root, aff, _liver, _les, _files = tilted_study
    _report, ctx = analyze_with_context(root)
    labels = np.asarray(ctx.lesion_labels)
    total = np.asarray(ctx.liver, dtype=bool)
    lid = int(labels[10, 10, 10])  # the lesion inside the liver
    zones = compute_zones(ctx, [lid], 5.0, 3.0)[lid]
    p_les = np.argwhere(labels == lid) @ aff[:3, :3].T
    cand = np.argwhere(total & (labels == 0))
    d = np.sqrt((((cand @ aff[:3, :3].T)[:, None, :] - p_les[None, :, :]) ** 2).sum(-1)).min(1)
    vox_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    for kind, margin, ml in (
        ("enucleation", 5.0, zones.enucleation_ml_by_label),
        ("ablation", 3.0, zones.ablation_ml_by_label),
    ):
        expected = int(np.count_nonzero(d <= margin * (1 + 1e-6)))
        assert float(ml.sum()) == pytest.approx(expected * vox_ml, rel=1e-9), kind
        assert expected > 0
        zone = np.zeros(labels.shape, bool)
        zone[zones.box] = zones.zone(kind)
        assert int((zone & (labels == 0)).sum()) == expected


def test_rtstruct_on_a_tilted_ct_fills_the_boxes_it_outlines(tmp_path, tilted_study):
    _root, aff, _liver, _les, files = tilted_study
    vox_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    box_liver, box_lesion = ((5, 35), (5, 19), (4, 20)), ((9, 13), (9, 12), (9, 11))

    def outline(box):
        (i0, i1), (j0, j1), (k0, k1) = box
        out = []
        for k in range(k0, k1):  # a square through the half-voxel corners, on each slice plane
            corners = np.array(
                [[i0 - 0.5, j0 - 0.5, k], [i1 - 0.5, j0 - 0.5, k], [i1 - 0.5, j1 - 0.5, k], [i0 - 0.5, j1 - 0.5, k]]
            )
            out.append(Contour(corners @ aff[:3, :3].T + aff[:3, 3]))
        return out

    study = tmp_path / "study"
    shutil.copytree(files[0].parent, study / "ct")
    write_rtstruct(
        study / "rtss.dcm",
        files,
        [RoiSpec("Liver", outline(box_liver)), RoiSpec("GTV lesion", outline(box_lesion), "GTV")],
    )
    report, _ctx = analyze_with_context(study)
    d = report.to_dict()
    n = [math.prod(b - a for a, b in box) for box in (box_liver, box_lesion)]
    assert d["liver"]["volume_ml"] == pytest.approx(n[0] * vox_ml, rel=1e-6, abs=1e-6)
    assert d["tumor"]["intrahepatic_volume_ml"] == pytest.approx(n[1] * vox_ml, rel=1e-6, abs=1e-6)


def test_seg_out_on_a_tilted_ct_reads_back(tmp_path, tilted_study):
    root, _aff, _liver, _les, files = tilted_study
    out = tmp_path / "out"
    assert main(["analyze", str(root), "--out", str(out), "--seg-out", "--quiet"]) == 0
    first = json.loads((out / "report.json").read_text())
    derived = next(out.glob("*seg*.dcm"))
    args = ["analyze", "--image", str(files[0].parent), "--seg", str(derived), "--out", str(tmp_path / "out2")]
    assert main([*args, "--quiet"]) == 0
    second = json.loads((tmp_path / "out2" / "report.json").read_text())
    assert second["liver"]["volume_ml"] == first["liver"]["volume_ml"]
    assert second["tumor"]["intrahepatic_volume_ml"] == first["tumor"]["intrahepatic_volume_ml"]


# --------------------------------------------------------------------------- what is still refused
def _series(tmp_path, aff, positions=None, n=6):
    files = write_image_series(tmp_path, np.zeros((6, 6, n)), aff, modality="CT", seed=1)
    if positions is not None:
        for f, p in zip(files, positions):
            ds = pydicom.dcmread(f)
            ds.ImagePositionPatient = [float(x) for x in p]
            ds.save_as(f)
    return files


def test_drift_that_is_not_a_tilt_is_refused(tmp_path):
    aff = tilted_affine()
    ipp = [aff[:3, :3] @ [0, 0, k] + aff[:3, 3] for k in range(6)]
    ipp[3] = ipp[3] + np.array([2.0, 0.0, 0.0])  # one slice off along the rows
    _series(tmp_path, aff, ipp)
    with pytest.raises(DicomError, match="not in proportion to the slice position"):
        read_dicom_series(tmp_path)


def test_tilt_with_a_missing_slice_is_refused_even_with_resampling(tmp_path):
    aff = tilted_affine()
    ipp = [aff[:3, :3] @ [0, 0, k] + aff[:3, 3] for k in (0, 1, 2, 4, 5, 6)]
    _series(tmp_path, aff, ipp)
    with pytest.raises(DicomError, match=r"gantry tilt of 30\.0 degrees with irregular slice steps.*dcm2niix"):
        read_dicom_series(tmp_path, nonuniform="resample")


def test_a_tilted_pet_grid_is_refused(tilted_study):
    from netlm_imaging.measure.pet import measure_pet

    root, aff, _liver, _les, _files = tilted_study
    _report, ctx = analyze_with_context(root)
    suv = Volume(np.ones(ctx.image.shape, np.float32), aff, source="pet-series")
    with pytest.raises(InputError, match=r"pet-series: the PET grid is sheared \(30\.0 degrees"):
        measure_pet(ctx, suv)


def test_a_sheared_mr_grid_is_refused(tilted_study):
    from netlm_imaging.stages.measure_mr import measure_study_mr

    root, _aff, _liver, _les, _files = tilted_study
    _report, ctx = analyze_with_context(root)
    with pytest.raises(InputError, match=r"the MR grid is sheared \(30\.0 degrees\).*dcm2niix"):
        measure_study_mr(ctx, None, {"mri": {}}, n4=False)  # type: ignore[arg-type]


def test_recist_takes_the_slice_separation_along_the_normal(tmp_path):
    """6 mm table steps at 30 degrees: slices 5.196 mm apart, so RECIST's measurable minimum is 10.39 mm (not 12)."""
    shape = (48, 44, 12)
    aff = tilted_affine(step=6.0)
    liver = np.zeros(shape, bool)
    liver[2:46, 2:42, 1:11] = True
    les = np.zeros(shape, bool)
    les[5:15, 10:20, 5] = True  # 10 x 10 voxels on one slice
    files = write_image_series(tmp_path / "ct", np.where(les, 120.0, np.where(liver, 60.0, -50.0)), aff, seed=2)
    lesion_spec = SegmentSpec(
        "Lesion", les, property_type=codes.SCT.Neoplasm, property_category=codes.SCT.MorphologicallyAbnormalStructure
    )
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", liver & ~les), lesion_spec])
    report, _ctx = analyze_with_context(tmp_path)
    (lesion,) = report.to_dict()["lesions"]
    separation = 6.0 * math.cos(math.radians(TILT_DEG))
    minimum = max(10.0, 2.0 * separation)  # RECIST 1.1 on slices thicker than 5 mm
    diameter = lesion["longest_axial_diameter_edge_mm"]
    assert minimum <= diameter < 2.0 * 6.0  # measurable by the separation, not by the 6 mm step
    assert lesion["recist_measurable"] is True


def test_a_sheared_nifti_pair_gives_the_dicom_numbers_and_says_it_is_sheared(tmp_path, tilted_study):
    """The tilted series as a NIfTI with the shear in its sform (as dcm2niix writes it untilted)."""
    import nibabel as nib

    from netlm_imaging.volume import lps_to_ras

    root, aff, liver, les, _files = tilted_study
    ct = read_dicom_series(root / "ct")
    lab = np.where(les > 0, 2, np.where(liver, 1, 0)).astype(np.uint8)
    nib.save(nib.Nifti1Image(np.asarray(ct.array), lps_to_ras(ct.affine)), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(lab, lps_to_ras(aff)), tmp_path / "seg.nii.gz")
    report, _ctx = analyze_with_context(image=tmp_path / "ct.nii.gz", segs=[tmp_path / "seg.nii.gz"])
    d = report.to_dict()
    vox_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    assert d["tumor"]["intrahepatic_volume_ml"] == pytest.approx(
        int(((les == 1) | (les == 2)).sum()) * vox_ml, abs=1e-6
    )
    assert d["tumor"]["extrahepatic_volume_ml"] == pytest.approx(int((les == 3).sum()) * vox_ml, abs=1e-6)
    assert any("the image grid is sheared (30.0 degrees" in w for w in d["warnings"])


def test_the_qa_views_of_a_tilted_ct_are_scaled_by_the_plane_separation(tilted_study):
    """The QA page draws the views as rectangles: a tilted CT's slice axis spans the distance between its slice
    planes (step x cos(tilt)), not the longer step along the tilted axis (15 % taller at 30 degrees)."""
    from netlm_imaging.report.viewer_data import build_viewer_data

    root, aff, _liver, _les, _files = tilted_study
    report, ctx = analyze_with_context(root)
    data = build_viewer_data(ctx, report.to_dict(), modality="CT")
    payload = data.payload
    step = aff[:3, 2]
    normal = np.cross(aff[:3, 0], aff[:3, 1])
    separation = abs(float(step @ normal)) / np.linalg.norm(normal)  # computed here from the written affine
    assert separation == pytest.approx(np.linalg.norm(step) * np.cos(np.deg2rad(TILT_DEG)), rel=1e-6)
    assert payload["spacing"][2] == pytest.approx(separation, rel=1e-6)
    assert payload["spacing"][:2] == pytest.approx([np.linalg.norm(aff[:3, 0]), np.linalg.norm(aff[:3, 1])])
    assert any("30.0 degrees of gantry tilt" in n for n in data.notes)

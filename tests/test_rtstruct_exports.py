"""RTSTRUCT as planning systems export it: structure sets that cover several frames of reference.

A structure set lists every frame of reference its ROIs are drawn in
(ReferencedFrameOfReferenceSequence); planning systems keep ROIs drawn on a registered MR or an
earlier CT beside the planning CT's (OHIF #3537, rt-utils #76). The liver and tumour ROIs on the
CT are unambiguous; an unused ROI of the other frame of reference must not make the file
unreadable, and a used one must be refused naming it.

Phantom: an oblique anisotropic CT; the liver is a box outlined through voxel edges (so its voxel
count is the box's, computed here), the tumour a smaller box inside it.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from scipy import ndimage

from netlm_imaging.errors import DicomError
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, declare_slabs, write_rtstruct

SHAPE = (30, 28, 12)
SPACING = (0.9, 0.8, 2.0)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
MR_FOR = "1.2.826.0.1.3680043.8.498.4242.1"
LIVER = ((4, 26), (3, 25), range(2, 10))  # voxel index ranges (i, j half-open; k slices)
TUMOUR = ((10, 16), (9, 14), range(4, 7))


def _outline(box, k: int) -> Contour:
    """The box's outline on slice k through the voxel edges (every centre inside is strictly inside)."""
    (i0, i1), (j0, j1), _ = box
    corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
    return Contour(np.array([(AFFINE @ [i, j, k, 1.0])[:3] for i, j in corners]))


def _voxels(box) -> int:
    (i0, i1), (j0, j1), ks = box
    return (i1 - i0) * (j1 - j0) * len(ks)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct")
    paths = write_image_series(folder, np.zeros(SHAPE), AFFINE, seed=23)
    return paths, read_dicom_series(folder)


def _two_frames_rtstruct(path, paths, other_name: str):
    """CT ROIs Liver and Tumour, and ``other_name`` drawn in an MR's frame of reference (listed too)."""
    mr_contour = Contour(np.array([[0.0, 0.0, 10.0], [30.0, 0.0, 10.0], [30.0, 30.0, 10.0]]))
    rois = [
        RoiSpec("Liver", [_outline(LIVER, k) for k in LIVER[2]]),
        RoiSpec("Tumour", [_outline(TUMOUR, k) for k in TUMOUR[2]], interpreted_type="GTV"),
        RoiSpec(other_name, [mr_contour], frame_of_reference_uid=MR_FOR),
    ]
    out = write_rtstruct(path, paths, rois)
    ds = pydicom.dcmread(out)
    item = Dataset()
    item.FrameOfReferenceUID = MR_FOR
    ds.ReferencedFrameOfReferenceSequence.append(item)
    ds.save_as(out)
    return out


def test_unused_roi_in_another_frame_of_reference_does_not_block_the_ct_rois(ct, tmp_path):
    paths, ref = ct
    rt = _two_frames_rtstruct(tmp_path / "rt.dcm", paths, "Kidney_L MR")  # an organ with no role here
    layers = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    got = {layer.role: int(layer.mask.array.sum()) for layer in layers}
    assert got == {"liver": _voxels(LIVER), "lesion": _voxels(TUMOUR)}


def test_used_roi_in_another_frame_of_reference_is_refused_naming_it(ct, tmp_path):
    paths, ref = ct
    rt = _two_frames_rtstruct(tmp_path / "rt.dcm", paths, "Liver MR")  # a liver drawn on the MR
    with pytest.raises(
        DicomError,
        match=rf"rt\.dcm: ROI 3 'Liver MR': its FrameOfReferenceUID {MR_FOR} differs from the image's .*"
        r'or read the 2 ROI\(s\) on the image with --labels liver="Liver",lesion="Tumour",ignore="Liver MR"\.$',
    ) as err:
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    flag = str(err.value).rsplit("--labels ", 1)[1].rstrip(".")  # the mapping the message suggests works
    layers = read_rtstruct(rt, ref, parse_label_spec(flag), role_log=[])
    assert [int(layer.mask.array.sum()) for layer in layers] == [_voxels(LIVER), _voxels(TUMOUR)]


def _box_on(box2d, k: int) -> Contour:
    return _outline((*box2d, range(k, k + 1)), k)


def test_a_contour_repeated_on_its_slice_is_not_xored_away(ct, tmp_path):
    """Two copies of one outline (another start point and direction) on slice 5: XOR would leave slice 5 empty."""
    paths, ref = ct
    liver = [_outline(LIVER, k) for k in LIVER[2]]
    twin = Contour(np.roll(liver[3].points[::-1], 2, axis=0))  # slice 5 again, reversed and started elsewhere
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, [RoiSpec("Liver", [*liver, twin])])
    (layer,) = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    assert int(layer.mask.array[:, :, 5].sum()) == _voxels((*LIVER[:2], range(1)))
    assert int(layer.mask.array.sum()) == _voxels(LIVER)
    assert any("repeats another contour" in w for w in layer.mask.meta["warnings"])


def test_crossing_outlines_on_a_slice_are_xored_and_the_overlap_reported(ct, tmp_path):
    """Two boxes crossing on slice 4 (neither inside the other): XOR leaves out their overlap, and says so."""
    paths, ref = ct
    a, b = ((4, 14), (3, 13)), ((10, 20), (9, 19))  # overlap 4 x 4 voxels
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, [RoiSpec("Liver", [_box_on(a, 4), _box_on(b, 4)])])
    (layer,) = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    assert int(layer.mask.array.sum()) == 100 + 100 - 2 * 16
    assert any("their 16 shared voxel(s) are left out" in w for w in layer.mask.meta["warnings"])
    hole = write_rtstruct(  # a hole inside the region is what XOR is for: no warning
        tmp_path / "hole.dcm", paths, [RoiSpec("Liver", [_box_on(((4, 20), (3, 19)), 4), _box_on(a, 4)])]
    )
    (layer,) = read_rtstruct(hole, ref, parse_label_spec(None), role_log=[])
    assert int(layer.mask.array.sum()) == 16 * 16 - 100
    assert not any("overlap" in w for w in layer.mask.meta["warnings"])


@pytest.mark.parametrize(
    ("offset", "declared"),
    [(0.0, None), (0.5, None), (0.0, "both-series-listed"), (0.0, "ContourSlabThickness"), (0.5, "SourcePixelPlanes")],
    ids=[
        "thick-on-thin-slices",
        "thick-between-thin-slices",
        "both-series-listed",
        "slab-thickness-declared",
        "source-planes-declared",
    ],
)
def test_structure_set_of_the_thick_reconstruction_on_the_thin_one(tmp_path, offset, declared):
    """An RTSTRUCT drawn on the 5 mm reconstruction, read on the 2.5 mm one (same frame of reference).

    Each 5 mm contour plane is a slab of two thin slices: the liver box (30 x 25 voxels on 5 planes) covers
    exactly 2 x 5 thin slices, the tumour box (7 x 8 on 3 planes) 2 x 3, whether the thick planes fall on thin
    slices (they filled every second slice) or half-way between them (they were refused as off-slice). The
    structure set says so by referencing the thick series, or (referencing the thin one) by declaring the slab:
    ContourSlabThickness (3006,0044) on each contour, or the Source Pixel Planes (3006,004A) spacing.
    """
    thin_aff = oblique_affine(spacing=(0.9, 0.8, 2.5), angles_deg=(5.0, -4.0, 10.0), origin=(-20.0, 10.0, 200.0))
    thick_aff = thin_aff @ np.diag([1.0, 1.0, 2.0, 1.0])
    thick_aff[:3, 3] += offset * thin_aff[:3, 2]
    for_uid = "1.2.826.0.1.3680043.8.498.4242.8"
    write_image_series(tmp_path / "thin", np.zeros((40, 36, 20)), thin_aff, frame_of_reference_uid=for_uid, seed=1)
    thick = write_image_series(
        tmp_path / "thick", np.zeros((40, 36, 10)), thick_aff, frame_of_reference_uid=for_uid, seed=2
    )

    def box(k: int, i0: int, i1: int, j0: int, j1: int) -> Contour:
        corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
        return Contour(np.array([(thick_aff @ [i, j, k, 1.0])[:3] for i, j in corners]))

    rois = [
        RoiSpec("Liver", [box(k, 5, 35, 5, 30) for k in range(2, 7)]),
        RoiSpec("Tumour", [box(k, 15, 22, 12, 20) for k in range(3, 6)], interpreted_type="GTV"),
    ]
    thin = read_dicom_series(tmp_path / "thin")
    rt = write_rtstruct(tmp_path / "rt.dcm", thick, rois)
    if declared == "both-series-listed":  # RTReferencedSeriesSequence lists the thin series too; contours: thick
        ds = pydicom.dcmread(rt)
        study = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
        item = Dataset()
        item.SeriesInstanceUID = thin.meta["series_instance_uid"]
        study.RTReferencedSeriesSequence.append(item)
        ds.save_as(rt)
        declared = None
    if declared is not None:  # the structure set names the thin series (and none of the thick images)
        declare_slabs(rt, thin.meta["series_instance_uid"], declared, 5.0, (0.8, 0.9))
    layers = read_rtstruct(rt, thin, parse_label_spec(None), role_log=[])
    by_role = {layer.role: layer.mask.array for layer in layers}
    assert int(by_role["liver"].sum()) == 30 * 25 * 5 * 2
    assert int(by_role["lesion"].sum()) == 7 * 8 * 3 * 2
    _, n_instances = ndimage.label(by_role["lesion"], structure=np.ones((3, 3, 3)))
    assert n_instances == 1
    said = "5 mm apart" if declared is None else "5 mm slabs"
    assert all(any(said in w for w in layer.mask.meta["warnings"]) for layer in layers)


def test_closedplanar_xor_contours_are_regions(ct, tmp_path):
    """CLOSEDPLANAR_XOR (PS3.3 C.8.8.6.3): an outer box, a hole in it and an island in the hole, XOR-combined.

    They were ignored as "not CLOSED_PLANAR": the ROI came out empty.
    """
    paths, ref = ct
    outer, hole, island = ((4, 20), (3, 19)), ((7, 17), (6, 16)), ((10, 13), (9, 12))

    def xor(box2d, k):
        return Contour(_box_on(box2d, k).points, "CLOSEDPLANAR_XOR")

    rt = write_rtstruct(
        tmp_path / "rt.dcm", paths, [RoiSpec("Liver", [xor(b, k) for k in (4, 5) for b in (outer, hole, island)])]
    )
    (layer,) = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    assert int(layer.mask.array.sum()) == 2 * (16 * 16 - 10 * 10 + 3 * 3)
    assert not any("overlap" in w or "ignored" in w for w in layer.mask.meta["warnings"])


def test_structure_set_without_preamble(ct, tmp_path):
    """A planning system's old export: the RTSTRUCT as a raw dataset (no preamble, DICM or file meta)."""
    paths, ref = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, [RoiSpec("Liver", [_outline(LIVER, k) for k in LIVER[2]])])
    ds = pydicom.dcmread(rt)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(rt, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    (layer,) = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    assert int(layer.mask.array.sum()) == _voxels(LIVER)


def test_folder_image_from_the_contours_own_images(tmp_path):
    """No RTReferencedStudySequence (Type 3, dropped by exports: rt-utils #33), two kernels of one acquisition
    (same frame of reference): each contour's ContourImageSequence names the soft-kernel images, so that series
    is the image (the run stopped: "2 image series share its frame of reference"). Truth: box volume, 60 HU."""
    for_uid = "1.2.826.0.1.3680043.8.498.4242.9"
    study = tmp_path / "study"
    soft = write_image_series(
        study / "soft", np.full(SHAPE, 60.0), AFFINE, frame_of_reference_uid=for_uid, seed=61, series_number=2
    )
    write_image_series(study / "bone", np.full(SHAPE, 200.0), AFFINE, frame_of_reference_uid=for_uid, seed=62)
    rt = write_rtstruct(study / "rt.dcm", soft, [RoiSpec("Liver", [_outline(LIVER, k) for k in LIVER[2]])])
    ds = pydicom.dcmread(rt)
    del ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence
    ds.save_as(rt)
    rep = analyze_json(str(study))
    assert rep["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * 0.9 * 0.8 * 2.0 / 1000.0, abs=1e-6)
    assert rep["liver"]["mean_intensity"] == pytest.approx(60.0)

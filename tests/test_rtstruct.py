"""RTSTRUCT reader: oblique MR phantom with analytic ellipsoid/annulus truth, and the real FDG PET structure set.

Real file (../shared/data/MANIFEST.md): ``mirp_sts_fdg_pet`` -- oncoray/mirp @d8a6a726, TCIA Soft-tissue-Sarcoma
STS_001 FDG PET (CC BY 3.0, Vallieres et al. 2015, doi 10.7937/K9/TCIA.2015.7GO2GSKS): 128x128x267 PET with
non-uniform slice steps and ``mask/1-1.dcm`` (GTV_Mass about 365 mL by planimetry).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from netlm_imaging.errors import DicomError, GeometryError, ResourceLimitError
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rt_rois, read_rtstruct
from netlm_imaging.volume import Volume
from tests.conftest import oblique_affine, shared_path
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, ellipse_points, write_rtstruct

SHAPE = (80, 80, 40)
STEP = (1.0, 1.0, 2.0)
AFFINE = oblique_affine(spacing=STEP, angles_deg=(10.0, 0.0, 0.0), origin=(-40.0, -60.0, 100.0))  # ~10 deg oblique
U, V, W = (AFFINE[:3, n] / np.linalg.norm(AFFINE[:3, n]) for n in range(3))
PIXEL_MM2 = STEP[0] * STEP[1]
VOXEL_MM3 = STEP[0] * STEP[1] * STEP[2]


def lps(ijk) -> np.ndarray:
    """Index -> LPS with the known affine (the test's own geometry)."""
    return AFFINE[:3, :3] @ np.asarray(ijk, float) + AFFINE[:3, 3]


def ellipsoid_contours(centre_ijk, a_mm, b_mm, c_mm) -> list[Contour]:
    """Analytic cross-sections of an ellipsoid (axes along U, V, W) in each slice plane it crosses."""
    centre = lps(centre_ijk)
    out = []
    for k in range(SHAPE[2]):
        z = (k - centre_ijk[2]) * STEP[2]
        if abs(z) >= c_mm:
            continue
        s = np.sqrt(1.0 - (z / c_mm) ** 2)
        out.append(Contour(ellipse_points(centre + z * W, U, V, a_mm * s, b_mm * s, n=360)))
    return out


def ring_contours(centre_ij, k_range, r_out_mm, r_in_mm) -> list[Contour]:
    out = []
    for k in k_range:
        c = lps((*centre_ij, k))
        out.append(Contour(ellipse_points(c, U, V, r_out_mm, r_out_mm, n=360)))
        out.append(Contour(ellipse_points(c, U, V, r_in_mm, r_in_mm, n=360)))
    return out


LESION_A = ((40.3, 38.6, 20.35), (16.0, 11.0, 13.0))  # centre (index), semi-axes (mm): 22-32 mm lesion
LESION_B = ((60.2, 22.7, 9.6), (6.0, 5.0, 7.0))  # 10-14 mm lesion
RING = ((20.2, 60.4), range(5, 9), 12.0, 5.0)
DISC = ((60.3, 60.2), 33, 8.0)


def _square(corners_ij, k) -> Contour:
    (i0, j0), (i1, j1) = corners_ij
    return Contour(np.array([lps((i0, j0, k)), lps((i1, j0, k)), lps((i1, j1, k)), lps((i0, j1, k))]))


def _rois() -> list[RoiSpec]:
    disc_c = lps((*DISC[0], DISC[1]))
    sub_pixel = np.array([[0.0, 0.0], [0.12, 0.0], [0.12, 0.12], [0.0, 0.12]])  # 0.12 mm square, no centre inside
    sub = Contour(np.array([lps((60.55 + p[0], 60.45 + p[1], DISC[1])) for p in sub_pixel]))
    disc = Contour(ellipse_points(disc_c, U, V, DISC[2], DISC[2], n=360))
    two_point = Contour(np.array([lps((58.0, 58.0, DISC[1] + 1)), lps((62.0, 62.0, DISC[1] + 1))]))
    point = Contour(np.array([lps((60.0, 60.0, DISC[1] + 2))]), geometric_type="POINT")
    open_line = Contour(np.array([lps((50, 50, 3)), lps((55, 50, 3)), lps((55, 55, 3))]), geometric_type="OPEN_PLANAR")
    return [
        RoiSpec("Lesion A", ellipsoid_contours(*LESION_A[:1], *LESION_A[1])),
        RoiSpec("Lesion B", ellipsoid_contours(*LESION_B[:1], *LESION_B[1])),
        RoiSpec("Ring tumour", ring_contours(*RING)),
        RoiSpec("Lesion D", [disc, sub, two_point, point]),
        RoiSpec("Lesion disc only", [disc]),
        RoiSpec("Liver squares", [_square(((10.5, 10.5), (14.5, 13.5)), 36), _square(((20, 20), (24, 23)), 37)]),
        RoiSpec("Open line", [open_line]),
    ]


NAMES = "lesion=Lesion A+Lesion B+Ring tumour+Lesion D+Lesion disc only,liver=Liver squares,ignore=Open line"


@pytest.fixture(scope="module")
def mr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mr")
    rng = np.random.default_rng(5)
    paths = write_image_series(folder, rng.normal(300, 20, SHAPE).round(), AFFINE, modality="MR", seed=21)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    ref = Volume(
        np.zeros(SHAPE, np.float32),
        AFFINE,
        str(dss[0].FrameOfReferenceUID),
        meta={"sop_instance_uids": [str(d.SOPInstanceUID) for d in dss]},
    )
    rt = write_rtstruct(folder.parent / "rt.dcm", paths, _rois())
    layers = {la.label: la for la in read_rtstruct(rt, ref, parse_label_spec(NAMES))}
    return paths, ref, rt, layers


def _ml(layer) -> float:
    return float(layer.mask.array.sum()) * layer.mask.voxel_volume_ml


@pytest.mark.parametrize("lesion", [LESION_A, LESION_B])
def test_ellipsoid_volume_within_2_percent_on_oblique_mr(mr, lesion):
    *_, layers = mr
    name = "Lesion A" if lesion is LESION_A else "Lesion B"
    a, b, c = lesion[1]
    analytic_ml = 4.0 / 3.0 * np.pi * a * b * c / 1000.0
    assert layers[name].role == "lesion"
    assert _ml(layers[name]) == pytest.approx(analytic_ml, rel=0.02)
    assert layers[name].mask.voxel_volume_mm3 == pytest.approx(VOXEL_MM3)


def test_ring_hole_by_xor(mr):
    *_, layers = mr
    mask = layers["Ring tumour"].mask.array
    (ci, cj), ks, r_out, r_in = RING
    for k in ks:
        area_mm2 = mask[:, :, k].sum() * PIXEL_MM2
        assert area_mm2 == pytest.approx(np.pi * (r_out**2 - r_in**2), rel=0.03)
        assert not mask[round(ci), round(cj), k]  # the hole is empty
        assert mask[round(ci + 8.5), round(cj), k]  # the ring itself (radius 8.5 mm) is filled
    assert mask.sum() == mask[:, :, ks.start : ks.stop].sum()


def test_voxel_centre_rule_exact(mr):
    *_, layers = mr
    mask = layers["Liver squares"].mask.array
    assert layers["Liver squares"].role == "liver"
    expected = np.zeros(SHAPE, bool)
    expected[11:15, 11:14, 36] = True  # centres strictly inside (10.5..14.5) x (10.5..13.5)
    expected[20:24, 20:23, 37] = True  # vertices on centres: half-open [20, 24) x [20, 23)
    np.testing.assert_array_equal(mask, expected)


def test_sub_pixel_two_point_and_point_contours_are_harmless(mr):
    *_, layers = mr
    with_extras, disc_only = layers["Lesion D"], layers["Lesion disc only"]
    np.testing.assert_array_equal(with_extras.mask.array, disc_only.mask.array)  # nothing erased, nothing added
    area_mm2 = disc_only.mask.array[:, :, DISC[1]].sum() * PIXEL_MM2
    assert area_mm2 == pytest.approx(np.pi * DISC[2] ** 2, rel=0.05)
    warns = " | ".join(with_extras.mask.meta["warnings"])
    assert "encloses no voxel centre" in warns
    assert "2 point(s) ignored" in warns
    assert "POINT contour ignored" in warns
    assert with_extras.mask.meta["n_contours"] == 4
    assert with_extras.mask.meta["n_contours_used"] == 2
    assert "Open line" not in layers  # mapped to ignore


def test_missing_contour_image_sequence_matches_by_position(mr, tmp_path):
    paths, ref, rt, layers = mr
    rt2 = write_rtstruct(tmp_path / "rt_nocis.dcm", paths, _rois(), contour_image_sequence=False)
    ds = pydicom.dcmread(rt2)
    assert all("ContourImageSequence" not in c for rc in ds.ROIContourSequence for c in rc.ContourSequence)
    other = {la.label: la for la in read_rtstruct(rt2, ref, parse_label_spec(NAMES))}
    for name, layer in layers.items():
        np.testing.assert_array_equal(other[name].mask.array, layer.mask.array)
    meta = layers["Lesion A"].mask.meta
    assert meta["roi_number"] == 1
    assert meta["roi_name"] == "Lesion A"
    assert meta["sop_instance_uid"] == pydicom.dcmread(rt, stop_before_pixels=True).SOPInstanceUID


def test_resampled_reference_takes_nearest_contour_plane(mr):
    """A reference with a 1 mm step shifted by 0.5 mm: planes fall between slices; allowed only when resampled."""
    _, ref, rt, _ = mr
    aff = AFFINE.copy()
    aff[:3, 2] = W * 1.0
    aff[:3, 3] = AFFINE[:3, 3] - 0.5 * W
    fine = Volume(np.zeros((80, 80, 81), np.float32), aff, ref.frame_of_reference_uid, meta={"resampled": True})
    layers = {la.label: la for la in read_rtstruct(rt, fine, parse_label_spec(NAMES))}
    a, b, c = LESION_A[1]
    assert _ml(layers["Lesion A"]) == pytest.approx(4.0 / 3.0 * np.pi * a * b * c / 1000.0, rel=0.02)
    assert any("between slices" in w for w in layers["Lesion A"].mask.meta["warnings"])
    not_resampled = Volume(fine.array, aff, ref.frame_of_reference_uid, meta={})
    with pytest.raises(GeometryError, match="between image slices"):
        read_rtstruct(rt, not_resampled, parse_label_spec(NAMES))


def test_frame_of_reference_mismatch(mr, tmp_path):
    paths, ref, _, _ = mr
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, _rois()[:1], frame_of_reference_uid="1.2.3.999")
    with pytest.raises(DicomError, match=r"FrameOfReferenceUID 1\.2\.3\.999 differs"):
        read_rtstruct(rt, ref, parse_label_spec(NAMES))


def test_unmapped_roi_names(mr, tmp_path):
    paths, ref, _, _ = mr
    rois = [*_rois()[:1], RoiSpec("BODY", [_square(((2, 2), (70, 70)), 10)], interpreted_type="EXTERNAL")]
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, rois)
    log: list = []
    layers = read_rtstruct(rt, ref, parse_label_spec(None), role_log=log)  # EXTERNAL: ignored by its type
    assert [la.label for la in layers] == ["Lesion A"]
    assert [(d.name, d.role, d.reason, d.interpreted_type) for d in log] == [
        ("Lesion A", "lesion", "pattern", "ORGAN"),
        ("BODY", None, "type-ignored", "EXTERNAL"),
    ]
    layers = read_rtstruct(rt, ref, parse_label_spec("lesion=Lesion A,ignore=BODY"))
    assert [la.label for la in layers] == ["Lesion A"]
    assert [r.name for r in read_rt_rois(rt)] == ["Lesion A", "BODY"]


def test_bad_geometry_and_files(mr, tmp_path):
    paths, ref, rt, _ = mr
    spec = parse_label_spec("lesion=X")
    between = [_square(((5, 5), (9, 9)), 10.5)]
    # (without ContourImageSequence: a plane between slices naming no slice is not decided; tests/
    # test_rtstruct_between_slices.py reads one that names its slice)
    f = write_rtstruct(tmp_path / "between.dcm", paths, [RoiSpec("X", between)], contour_image_sequence=False)
    with pytest.raises(GeometryError, match="between image slices"):
        read_rtstruct(f, ref, spec)
    tilted = Contour(np.array([lps((5, 5, 10)), lps((9, 5, 10)), lps((9, 9, 12)), lps((5, 9, 12))]))
    f = write_rtstruct(tmp_path / "tilted.dcm", paths, [RoiSpec("X", [tilted])])
    with pytest.raises(GeometryError, match="not in a slice plane"):
        read_rtstruct(f, ref, spec)
    outside = [_square(((5, 5), (9, 9)), 45)]
    f = write_rtstruct(tmp_path / "outside.dcm", paths, [RoiSpec("X", outside)])
    with pytest.raises(DicomError, match="outside the image"):
        read_rtstruct(f, ref, spec)
    trunc = tmp_path / "trunc.dcm"
    trunc.write_bytes(Path(rt).read_bytes()[:400])
    with pytest.raises(DicomError, match=r"trunc\.dcm.*(truncated|not a readable|not an RT Structure Set)"):
        read_rtstruct(trunc, ref, spec)
    with pytest.raises(DicomError, match="not an RT Structure Set"):
        read_rtstruct(paths[0], ref, spec)
    with pytest.raises(ResourceLimitError, match="above the limit"):
        read_rtstruct(rt, ref, spec, max_voxels=1000)


# ----------------------------------------------------------------------------- real FDG PET


def test_fdg_pet_gtv_mass_about_365_ml():
    """GTV_Mass on the non-uniformly spaced PET vs an independent planimetry on the true slice positions."""
    base = shared_path("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET")
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in (base / "image").glob("*.dcm")]
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))
    z = np.array([float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))) for d in dss])
    steps = np.diff(z)
    assert steps.max() - steps.min() > 0.05  # the series really is non-uniform (3.19 .. 3.29 mm)
    # Regular grid from first to last slice (what a resampling series reader produces), marked resampled.
    row_mm, col_mm = (float(x) for x in dss[0].PixelSpacing)
    first, last = (np.asarray(d.ImagePositionPatient, float) for d in (dss[0], dss[-1]))
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1] = iop[:3] * col_mm, iop[3:] * row_mm
    aff[:3, 2], aff[:3, 3] = (last - first) / (len(dss) - 1), first
    shape = (int(dss[0].Columns), int(dss[0].Rows), len(dss))
    ref = Volume(np.zeros(shape, np.float32), aff, str(dss[0].FrameOfReferenceUID), meta={"resampled": True})
    rt = base / "mask" / "1-1.dcm"
    layers = {la.label: la for la in read_rtstruct(rt, ref, parse_label_spec("lesion=GTV_Mass,ignore=GTV_Edema"))}
    got_ml = _ml(layers["GTV_Mass"])

    # Independent planimetry: shoelace area of each contour x the local slice step at its true position.
    ds = pydicom.dcmread(rt)
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTV_Mass")
    contours = next(rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) == number).ContourSequence
    local = np.empty_like(z)
    local[1:-1] = (z[2:] - z[:-2]) / 2
    local[0], local[-1] = steps[0], steps[-1]
    planimetry_mm3 = 0.0
    for c in contours:
        p = np.asarray(c.ContourData, float).reshape(-1, 3)
        x, y = p[:, 0], p[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        planimetry_mm3 += area * local[int(np.argmin(np.abs(z - p[0, 2])))]
    planimetry_ml = planimetry_mm3 / 1000.0
    assert planimetry_ml == pytest.approx(365.0, rel=0.02)  # MANIFEST.md: about 365 mL
    # 4.69 mm pixels: centre-rule rasterisation of a ~9-pixel-radius mass agrees to within 2%.
    assert got_ml == pytest.approx(planimetry_ml, rel=0.02)


# dicompyler/dicompyler-core @0d5729d7 tests/testdata/example_data/rtss.dcm (BSD-3-Clause; shared/data/MANIFEST.md):
# its contour counts per ROI, as the MANIFEST lists them
DICOMPYLER_CONTOURS = {
    "BODY": 141,
    "Lt Lung": 165,
    "Breast": 48,
    "Heart": 33,
    "Tumor Bed Block": 24,
    "Tumor Bed": 18,
    "Scar": 6,
    "Nodes": 4,
    "Borders": 2,
    "Areola": 0,
}


def _contour_counts(ds):
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    counts = dict.fromkeys(names.values(), 0)
    for item in ds.ROIContourSequence:
        if "ReferencedROINumber" not in item:  # an item the cut left without its number
            continue
        counts[names[int(item.ReferencedROINumber)]] = len(getattr(item, "ContourSequence", None) or [])
    return counts


@pytest.mark.parametrize("kept", [0.5, 0.9, 0.999])
def test_a_cut_short_rtstruct_is_refused_not_read_with_contours_missing(tmp_path, kept):
    real = shared_path("dicompyler_rtss", "tests", "testdata", "example_data", "rtss.dcm")
    assert _contour_counts(pydicom.dcmread(str(real))) == DICOMPYLER_CONTOURS
    assert len(read_rt_rois(real)) == 10  # the whole file is not refused
    data = real.read_bytes()
    cut = tmp_path / "rtss.dcm"
    cut.write_bytes(data[: int(len(data) * kept)])
    # the trap: pydicom reads the cut file without a word, and contours are missing
    assert sum(_contour_counts(pydicom.dcmread(str(cut))).values()) < sum(DICOMPYLER_CONTOURS.values())
    with pytest.raises(DicomError, match=r"rtss\.dcm: the RTSTRUCT file is truncated .*export it again"):
        read_rt_rois(cut)

"""Issue 12: inputs as clinical systems export them (single slices, junk files, odd contours, other grids).

Every truth is computed here, independently of the package: voxel counts of
masks the tests draw, times the voxel volume from the affine, or a peer reader
(SimpleITK) on the same files.
"""

from __future__ import annotations

import json
import subprocess
import sys

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import Contour, RoiSpec, SegmentSpec, seg_identity, write_rtstruct, write_seg

from netlm_imaging.io._dicom_files import iter_candidate_files


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------- item 3: single-slice series

PIXEL = 0.78125  # mm; 1314 pixels x 0.78125^2 x 5 mm = 4.01 mL


@pytest.mark.parametrize(
    ("tags", "step", "named"),
    [
        ({"SliceThickness": 5.0, "SpacingBetweenSlices": None}, 5.0, "SliceThickness"),
        ({"SliceThickness": 5.0, "SpacingBetweenSlices": 6.0}, 6.0, "SpacingBetweenSlices"),
    ],
)
def test_single_slice_step_from_the_header(tmp_path, tags, step, named):
    aff = np.diag([PIXEL, PIXEL, 2.0, 1.0])  # the 2 mm of the affine is not written anywhere a reader may use
    aff[:3, 3] = (-20.0, -15.0, 42.0)
    shape = (48, 40, 1)
    ii, jj = np.indices(shape[:2])
    disc = ((ii - 23.5) ** 2 + (jj - 19.5) ** 2 <= 20.5**2)[:, :, None]
    files = write_image_series(tmp_path / "ct", np.where(disc, 60.0, -100.0), aff, seed=3, extra_tags=tags)
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", disc)])
    if named == "SpacingBetweenSlices":  # SimpleITK (GDCM) reads it too; with SliceThickness alone it says 1.0
        assert sitk.ReadImage(str(files[0])).GetSpacing()[2] == pytest.approx(step)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    expected_ml = int(disc.sum()) * PIXEL * PIXEL * step / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(expected_ml, abs=1e-6)
    assert rep["study"]["grid"]["spacing_mm"][2] == pytest.approx(step)
    assert any("single slice" in w and named in w for w in rep["warnings"])


def test_single_slice_four_mL_like_simpleitk(tmp_path):
    """The issue's case: a 5 mm slice and 1314 pixels of 0.78125 mm give 4.01 mL (SimpleITK and highdicom agree)."""
    aff = np.diag([PIXEL, PIXEL, 1.0, 1.0])
    shape = (40, 40, 1)
    mask = np.zeros(shape, bool)
    mask.reshape(-1)[:1314] = True
    files = write_image_series(
        tmp_path / "ct", np.zeros(shape), aff, seed=4, extra_tags={"SliceThickness": 5.0, "SpacingBetweenSlices": 5.0}
    )
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", mask)])
    peer = sitk.ReadImage(str(files[0]))
    peer_ml = 1314 * float(np.prod(peer.GetSpacing())) / 1000.0
    hd_spacing = hd.imread(str(files[0])).get_volume().spacing
    assert 1314 * float(np.prod(hd_spacing)) / 1000.0 == pytest.approx(peer_ml)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert peer_ml == pytest.approx(4.01, abs=0.005)
    assert rep["liver"]["volume_ml"] == pytest.approx(peer_ml, abs=1e-6)


# ---------------------------------------------------------------- item 6: junk in study folders

JUNK_AFF = oblique_affine(spacing=(1.2, 1.1, 2.5))
JUNK_SHAPE = (20, 18, 8)


def _junk_study(root):
    ijk = np.indices(JUNK_SHAPE)
    liver = (ijk[0] >= 3) & (ijk[0] < 16) & (ijk[1] >= 2) & (ijk[1] < 15) & (ijk[2] >= 1) & (ijk[2] < 7)
    files = write_image_series(root / "ct", np.where(liver, 50.0, -50.0), JUNK_AFF, seed=6)
    (root / "seg").mkdir()
    write_seg(root / "seg" / "seg.dcm", files, [SegmentSpec("Liver", liver)])
    return files, int(liver.sum())


@pytest.mark.parametrize("junk", ["thumbs", "dangling", "cycle", "fake_dcm"])
def test_junk_in_a_study_folder_is_skipped_with_a_note(tmp_path, junk):
    study = tmp_path / "study"
    _, n_liver = _junk_study(study)
    ct = study / "ct"
    if junk == "thumbs":
        (ct / "Thumbs.db").write_bytes(b"")
        name = "Thumbs.db"
    elif junk == "dangling":
        (ct / "IM9999").symlink_to(tmp_path / "gone" / "IM9999")
        name = "IM9999: dangling symbolic link"
    elif junk == "cycle":
        (ct / "loop_a").symlink_to(ct / "loop_b")
        (ct / "loop_b").symlink_to(ct / "loop_a")
        name = "symbolic link cycle"
    else:
        (ct / "report.dcm").write_bytes(b"%PDF-1.4 this is a scanned request form, not DICOM" * 8)
        name = "report.dcm"
    res = _analyze(str(study))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(n_liver * abs(np.linalg.det(JUNK_AFF[:3, :3])) / 1000, abs=1e-6)
    assert any(name in n for n in rep["notes"]), rep["notes"]


def test_a_study_assembled_with_linked_folders_is_read_each_real_folder_once(tmp_path):
    """``ln -s ../export/ct ct``: the linked series is read (it was 'no DICOM files'); a second link to
    the same folder and a link back to the study (a cycle) add no file twice."""
    export = tmp_path / "export"
    _, n_liver = _junk_study(export)
    study = tmp_path / "study"
    study.mkdir()
    (study / "ct").symlink_to(export / "ct", target_is_directory=True)
    (study / "seg").symlink_to(export / "seg", target_is_directory=True)
    (study / "seg_again").symlink_to(export / "seg", target_is_directory=True)
    (study / "loop").symlink_to(study, target_is_directory=True)
    listed = [p.relative_to(study).as_posix() for p in iter_candidate_files(study)]
    n_ct = len(list((export / "ct").iterdir()))
    assert sorted(listed) == sorted([f"ct/{p.name}" for p in (export / "ct").iterdir()] + ["seg/seg.dcm"])
    assert len(listed) == n_ct + 1
    res = _analyze(str(study))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(n_liver * abs(np.linalg.det(JUNK_AFF[:3, :3])) / 1000, abs=1e-6)


@pytest.mark.parametrize("damage", ["preamble", "file_meta", "zero_bytes"])
def test_a_damaged_file_that_is_dicom_stays_an_error(tmp_path, damage):
    study = tmp_path / "study"
    files, _ = _junk_study(study)
    victim = files[3]
    data = bytearray(victim.read_bytes())
    if damage == "preamble":  # "DICM" intact, the header cut in the middle of the file meta group
        victim.write_bytes(bytes(data[:150]))
    elif damage == "file_meta":  # "DICM" marker damaged, the file meta group still there
        data[128] ^= 1
        victim.write_bytes(bytes(data))
    else:  # an interrupted copy of a slice
        victim.write_bytes(b"")
    res = _analyze(str(study))
    assert res.returncode == 3
    assert victim.name in res.stderr
    assert "Traceback" not in res.stderr


# ---------------------------------------------------------------- item 7: contours wound twice, figure-eights

RT_AFF = oblique_affine(spacing=(1.4, 1.4, 3.0), angles_deg=(0.0, 0.0, 12.0), origin=(-40.0, -30.0, 80.0))
RT_SHAPE = (40, 40, 8)


def _lps(ij, k):
    return np.array([RT_AFF[:3, :3] @ np.array([i, j, k], float) + RT_AFF[:3, 3] for i, j in ij])


def _odd_contours(root):
    files = write_image_series(root / "ct", np.zeros(RT_SHAPE), RT_AFF, seed=7)
    square = [(4.5, 4.5), (20.5, 4.5), (20.5, 18.5), (4.5, 18.5)]  # holds centres 5..20 x 5..18
    twice = [Contour(_lps(square + square, k)) for k in range(2, 6)]
    bowtie = [(24.3, 20.2), (35.7, 33.6), (35.7, 20.2), (24.3, 33.6)]  # edges cross: opposite lobes, signed area 0
    eight = [Contour(_lps(bowtie, k)) for k in range(3, 5)]
    rt = write_rtstruct(root / "rt.dcm", files, [RoiSpec("Twice", twice), RoiSpec("Eight", eight)], seed=7)
    return root / "ct", rt, square, bowtie


def test_twice_wound_and_figure_eight_contours_like_plastimatch(tmp_path):
    from skimage.draw import polygon2mask  # dcmrtstruct2nii's fill: the peer for one traversal

    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.io.loader import load_image
    from netlm_imaging.io.rtstruct import read_rtstruct

    ct, rt, square, bowtie = _odd_contours(tmp_path)
    ref = load_image(ct)
    layers = {la.label: la for la in read_rtstruct(rt, ref, parse_label_spec("lesion=Twice+Eight"))}
    plane = RT_SHAPE[:2]
    one_square = polygon2mask(plane, np.array(square))
    assert polygon2mask(plane, np.array(square + square)).sum() < 0.1 * one_square.sum()  # the peer loses it
    twice = layers["Twice"].mask.array
    assert int(twice.sum()) == 4 * 16 * 14  # 16 x 14 centres on each of 4 slices
    for k in range(2, 6):
        np.testing.assert_array_equal(twice[:, :, k], one_square)
    assert any("round the same outline 2 times" in w for w in layers["Twice"].mask.meta["warnings"])
    eight = layers["Eight"].mask.array
    peer = polygon2mask(plane, np.array(bowtie))  # even-odd, both lobes
    assert peer.sum() > 40
    for k in (3, 4):
        np.testing.assert_array_equal(eight[:, :, k], peer)
    assert int(eight.sum()) == 2 * int(peer.sum())
    assert any("crosses itself (figure-eight)" in w for w in layers["Eight"].mask.meta["warnings"])


def test_twice_wound_lesion_keeps_its_volume_end_to_end(tmp_path):
    ct, rt, _, _ = _odd_contours(tmp_path)
    res = _analyze("--image", str(ct), "--seg", str(rt), "--labels", "lesion=Twice")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    voxel_ml = abs(np.linalg.det(RT_AFF[:3, :3])) / 1000.0
    total = rep["tumor"]["intrahepatic_volume_ml"] + rep["tumor"]["extrahepatic_volume_ml"]
    assert total == pytest.approx(4 * 16 * 14 * voxel_ml, abs=1e-6)
    assert any("same outline 2 times" in w for w in rep["warnings"])


# ---------------------------------------------------------------- item 4: SEG on another grid, contradicting UIDs

GRID_AFF = oblique_affine(spacing=(1.0, 1.0, 2.0), angles_deg=(0.0, 0.0, 20.0), origin=(-20.0, -25.0, 60.0))
GRID_SHAPE = (40, 36, 12)


def _seg_on_grid(path, files, mask, affine):
    """A highdicom SEG whose frames lie on ``affine`` (its own grid), one frame per slice ``k`` of ``mask``."""
    import highdicom as hd
    import pydicom

    from netlm_imaging.volume import Volume

    sources = [pydicom.dcmread(f) for f in files]
    vol = Volume(mask, affine)
    row = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    col = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    spacing = [float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 0]))]
    step = float(np.linalg.norm(affine[:3, 2]))
    positions = [
        hd.PlanePositionSequence("PATIENT", [float(x) for x in vol.index_to_lps(np.array([[0.0, 0.0, k]]))[0]])
        for k in range(mask.shape[2])
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.transpose(mask, (2, 1, 0)).astype(np.uint8),
        segmentation_type="BINARY",
        segment_descriptions=[
            hd.seg.SegmentDescription(
                1,
                "Liver",
                pydicom.sr.codedict.codes.SCT.Organ,
                pydicom.sr.codedict.codes.SCT.Liver,
                hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        ],
        **seg_identity(5, "grid"),
        pixel_measures=hd.PixelMeasuresSequence(spacing, step, step),
        plane_orientation=hd.PlaneOrientationSequence("PATIENT", [*row, *col]),
        plane_positions=positions,
        omit_empty_frames=False,
    )
    seg.save_as(path)
    return path


def _grid_case(tmp_path, seg_affine, seg_shape, box):
    files = write_image_series(tmp_path / "ct", np.zeros(GRID_SHAPE), GRID_AFF, seed=44)
    mask = np.zeros(seg_shape, bool)
    mask[box] = True
    _seg_on_grid(tmp_path / "seg.dcm", files, mask, seg_affine)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), mask


def _shifted(affine, shift_ijk):
    out = affine.copy()
    out[:3, 3] = affine[:3, :3] @ np.asarray(shift_ijk, float) + affine[:3, 3]
    return out


def test_seg_twice_coarser_is_resampled_by_position(tmp_path):
    coarse = _shifted(GRID_AFF, (0.5, 0.5, 0.5)) @ np.diag([2.0, 2.0, 2.0, 1.0])  # centres between fine centres
    rep, mask = _grid_case(tmp_path, coarse, (20, 18, 6), (slice(3, 12), slice(4, 13), slice(1, 5)))
    # every coarse voxel holds exactly 2 x 2 x 2 fine voxel centres: the volume is preserved exactly
    assert rep["liver"]["voxel_count"] == int(mask.sum()) * 8
    assert rep["liver"]["volume_ml"] == pytest.approx(int(mask.sum()) * 16.0 / 1000.0, abs=1e-6)
    assert rep["study"]["grid"]["resampled"] is True
    assert any("not on the image grid" in w for w in rep["warnings"])
    assert any("resampled onto the image grid by physical coordinates" in w for w in rep["warnings"])


def test_seg_of_twice_the_pixel_spacing_warns_its_finding_without_the_advice(tmp_path):
    coarse = _shifted(GRID_AFF, (0.5, 0.5, 0.0)) @ np.diag([2.0, 2.0, 1.0, 1.0])  # slices shared, pixels 2 x 2
    rep, mask = _grid_case(tmp_path, coarse, (20, 18, 12), (slice(3, 12), slice(4, 13), slice(2, 9)))
    assert rep["liver"]["voxel_count"] == int(mask.sum()) * 4  # each SEG pixel holds 2 x 2 image pixel centres
    (line,) = [w for w in rep["warnings"] if w.startswith("the SEG is not on the image grid")]
    assert "(frame 1: the SEG pixel grid (column step = [2.0, 0.0, 0.0] reference voxels) is not the" in line
    assert "(different orientation or pixel spacing)); its masks were built on its own grid" in line
    assert "resample the segmentation" not in line


def test_seg_half_pixel_shift_is_resampled_by_position(tmp_path):
    box = (slice(8, 20), slice(6, 18), slice(2, 9))
    rep, mask = _grid_case(tmp_path, _shifted(GRID_AFF, (0.5, 0.0, 0.0)), GRID_SHAPE, box)
    n = int(mask.sum())
    layer = 12 * 7  # one boundary layer along the shifted axis (j x k extent of the box)
    # nearest neighbour at exact half-voxel ties may take either neighbour: the box moves by at most one layer
    assert n - layer <= rep["liver"]["voxel_count"] <= n + layer
    assert abs(rep["liver"]["voxel_count"] - n) in (0, layer)
    assert rep["study"]["grid"]["resampled"] is True
    assert any("not on the image grid" in w for w in rep["warnings"])
    # the advice of the error it would have been (resample it yourself, pass another series) is not given
    (line,) = [w for w in rep["warnings"] if w.startswith("the SEG is not on the image grid")]
    assert "off the voxel grid by more than 0.2 voxel; the SEG is on another grid); its masks were built" in line
    assert "Resample it" not in line


def test_seg_off_the_grid_and_off_regular_slices_is_one_line_naming_it_once(tmp_path):
    """Off the grid by half a pixel and one frame 0.4 slice off its plane: no grid of its own either.

    The refusal names the file once, says both findings and ends on the advice (it named the file twice
    and gave the grid error's advice in the middle: '... made on.; and its frame positions ...').
    """
    import pydicom

    files = write_image_series(tmp_path / "ct", np.zeros(GRID_SHAPE), GRID_AFF, seed=44)
    mask = np.zeros(GRID_SHAPE, bool)
    mask[8:20, 6:18, 2:9] = True
    seg_aff = _shifted(GRID_AFF, (0.5, 0.0, 0.0))
    seg_path = _seg_on_grid(tmp_path / "seg.dcm", files, mask, seg_aff)
    ds = pydicom.dcmread(seg_path)
    plane = ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0]
    plane.ImagePositionPatient = [
        float(x) for x in np.asarray(plane.ImagePositionPatient, float) + 0.4 * seg_aff[:3, 2]
    ]
    ds.save_as(seg_path)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(seg_path))
    assert res.returncode == 3, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert line.count(str(seg_path)) == 1
    assert "off the voxel grid by more than 0.2 voxel; the SEG is on another grid, and its frame positions" in line
    advice = (
        "resample the segmentation onto the image (e.g. with dcmqi/Slicer) or pass the image series the SEG was made on"
    )
    assert line.endswith(advice + ".")
    assert "Resample it" not in line


def test_seg_100_mm_offset_same_frame_of_reference(tmp_path):
    # the SEG grid starts 100.25 mm away along the rows (off the voxel grid), its mask lies inside the image
    seg_aff = _shifted(GRID_AFF, (-100.25, 0.0, 0.0))
    box = (slice(110, 125), slice(5, 20), slice(3, 8))  # SEG index 110.. = image index ~9.75..
    rep, mask = _grid_case(tmp_path, seg_aff, (140, 36, 12), box)
    assert rep["liver"]["voxel_count"] == int(mask.sum())  # 0.25 voxel shift: nearest neighbour is unambiguous
    assert rep["study"]["grid"]["resampled"] is True
    assert any("not on the image grid" in w for w in rep["warnings"])


def test_seg_source_uids_contradicting_positions_warn_which_was_believed(tmp_path):
    import pydicom

    files = write_image_series(tmp_path / "ct", np.zeros(GRID_SHAPE), GRID_AFF, seed=45)
    mask = np.zeros(GRID_SHAPE, bool)
    mask[5:15, 5:15, 2:6] = True
    seg_path = write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", mask)])
    ds = pydicom.dcmread(seg_path)
    uids = [pydicom.dcmread(f).SOPInstanceUID for f in files]
    for item in ds.PerFrameFunctionalGroupsSequence:  # every frame names the slice mirrored through the stack
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        src.ReferencedSOPInstanceUID = uids[len(uids) - 1 - uids.index(src.ReferencedSOPInstanceUID)]
    ds.save_as(seg_path)
    from netlm_imaging.api import analyze_with_context

    rep, ctx = analyze_with_context(image=tmp_path / "ct", segs=[str(seg_path)])
    assert rep.liver["voxel_count"] == int(mask.sum())
    np.testing.assert_array_equal(ctx.liver, mask)  # placed by position: slices 2..5, not the mirrored 6..9
    assert any("another slice than their position" in w and "positions were believed" in w for w in rep.warnings)


# ---------------------------------------------------------------- item 5: overlapping lesion segments


def test_overlapping_lesion_segments_measure_one_voxel_set_each(tmp_path):
    """A GTV inside an oedema ROI: volume and PET statistics of each lesion come from the same voxels."""
    from pet_factory import write_pet_series

    aff = oblique_affine(spacing=(4.0, 4.0, 3.0), angles_deg=(0.0, 0.0, 8.0), origin=(-60.0, -50.0, 20.0))
    shape = (30, 28, 16)
    big = np.zeros(shape, bool)
    big[5:25, 4:22, 2:14] = True  # "Edema", listed first
    small = np.zeros(shape, bool)
    small[10:16, 9:15, 5:9] = True  # "GTV", inside it
    act = np.where(small, 20000.0, np.where(big, 5000.0, 1000.0))  # Bq/mL
    files = write_pet_series(tmp_path / "pet", act, aff, seed=5)
    write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Edema", big), SegmentSpec("GTV", small)])
    # QIBA SUVbw with the factory's headers: 70 kg, 150 MBq at 10:00, series 11:00 (START), T1/2 4069.8 s
    suv_per_bq_ml = 70_000.0 / (150e6 * 2.0 ** (-3600.0 / 4069.8))
    res = _analyze("--image", str(tmp_path / "pet"), "--seg", str(tmp_path / "seg.dcm"), "--labels", "lesion=Edema+GTV")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    les = {x["label"]: x for x in rep["lesions"]}
    assert les["GTV"]["voxel_count"] == int(small.sum())
    assert les["GTV"]["volume_ml"] == pytest.approx(int(small.sum()) * voxel_ml, abs=1e-6)
    assert les["GTV"]["suv_mean"] == pytest.approx(20000.0 * suv_per_bq_ml, abs=2e-3)
    assert les["GTV"]["suv_max"] == pytest.approx(20000.0 * suv_per_bq_ml, abs=2e-3)
    shell = int(big.sum()) - int(small.sum())  # the oedema keeps only what the smaller GTV does not claim
    assert les["Edema"]["voxel_count"] == shell
    assert les["Edema"]["volume_ml"] == pytest.approx(shell * voxel_ml, abs=1e-6)
    assert les["Edema"]["suv_max"] == pytest.approx(5000.0 * suv_per_bq_ml, abs=2e-3)  # no GTV voxel in it
    assert les["Edema"]["suv_mean"] == pytest.approx(5000.0 * suv_per_bq_ml, abs=2e-3)
    tumour = rep["tumor"]["intrahepatic_volume_ml"] + rep["tumor"]["extrahepatic_volume_ml"]
    assert tumour == pytest.approx(les["GTV"]["volume_ml"] + les["Edema"]["volume_ml"], abs=1e-5)
    assert "smallest" in rep["method"]["lesion_overlap"]
    assert any("lesion segments overlap" in w for w in rep["warnings"])


# ---------------------------------------------------------------- item 2: two reconstructions, one SeriesInstanceUID

RECON_AFF = oblique_affine(spacing=(1.5, 1.5, 2.5), angles_deg=(0.0, 0.0, 10.0), origin=(-30.0, -30.0, 40.0))
RECON_SHAPE = (24, 22, 10)


def _two_reconstructions(root, *, interleave=True, tags_b=None):
    """Reconstruction A (B30f, SeriesNumber 2) and B (B70f, SeriesNumber 3) filed under one SeriesInstanceUID."""
    from dicom_factory import deterministic_uid

    series = deterministic_uid("one-series-two-recons")
    frame = deterministic_uid("one-frame-of-reference")
    ijk = np.indices(RECON_SHAPE)
    liver = (ijk[0] >= 4) & (ijk[0] < 20) & (ijk[1] >= 3) & (ijk[1] < 18) & (ijk[2] >= 2) & (ijk[2] < 8)
    common = {"series_uid": series, "frame_of_reference_uid": frame, "study_uid": deterministic_uid("study-12")}
    a = write_image_series(
        root / "ct" / "a", np.where(liver, 60.0, -80.0), RECON_AFF, seed=21, series_number=2,
        extra_tags={"ConvolutionKernel": "B30f", "SliceThickness": 2.5}, **common,
    )  # fmt: skip
    aff_b = RECON_AFF.copy()
    if interleave:
        aff_b[:3, 3] += 0.5 * RECON_AFF[:3, 2]  # 1.25 mm between the two stacks
    b = write_image_series(
        root / "ct" / "b", np.where(liver, 40.0, -60.0), aff_b, seed=22, series_number=3,
        extra_tags={"ConvolutionKernel": "B70f", "SliceThickness": 2.5, **(tags_b or {})}, **common,
    )  # fmt: skip
    return a, b, liver


@pytest.mark.parametrize("interleave", [True, False])
def test_two_reconstructions_in_one_series_take_the_one_the_seg_references(tmp_path, interleave):
    study = tmp_path / "study"
    a, _, liver = _two_reconstructions(study, interleave=interleave)
    (study / "seg").mkdir()
    write_seg(study / "seg" / "seg.dcm", a, [SegmentSpec("Liver", liver)])
    res = _analyze(str(study))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    voxel_ml = abs(np.linalg.det(RECON_AFF[:3, :3])) / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(int(liver.sum()) * voxel_ml, abs=1e-6)  # not half of it
    assert rep["study"]["grid"]["shape"] == list(RECON_SHAPE)
    assert rep["study"]["grid"]["spacing_mm"][2] == pytest.approx(2.5)
    assert rep["liver"]["mean_intensity"] == pytest.approx(60.0, abs=0.01)  # reconstruction A's voxels
    assert any("holds 2 reconstructions" in n and "B30f" in n for n in rep["notes"])


def test_two_reconstructions_with_explicit_seg_and_without_any_reference(tmp_path):
    a, _, liver = _two_reconstructions(tmp_path)
    write_seg(tmp_path / "seg.dcm", a, [SegmentSpec("Liver", liver)])
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm"))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["liver"]["voxel_count"] == int(liver.sum())
    nifti = tmp_path / "seg.nii.gz"  # a label map references nothing: the stacks are listed with the flag
    import nibabel as nib

    nib.save(nib.Nifti1Image(liver.astype(np.uint8), np.diag([-1.0, -1.0, 1.0, 1.0]) @ RECON_AFF), nifti)
    res = _analyze("--image", str(tmp_path / "ct"), "--seg", str(nifti))
    assert res.returncode == 3
    assert "2 image series found" in res.stderr
    assert "kernel B30f" in res.stderr
    assert "kernel B70f" in res.stderr
    assert "--image-series" in res.stderr


@pytest.mark.parametrize(
    ("attr", "value", "shown"),
    [
        ("SliceThickness", None, "(none)"),  # the attribute missing from one slice
        ("SliceThickness", -1.0, "-1"),
        ("ImageType", ["DERIVED", "SECONDARY"], "DERIVED\\SECONDARY"),
        ("ConvolutionKernel", "B70f", "B70f"),
    ],
)
def test_one_slice_with_another_reconstruction_attribute_stays_in_its_stack(tmp_path, attr, value, shown):
    """One slice of a regular stack states another SliceThickness / ImageType / kernel: it fills its own
    gap of the stack, every position once, so it is no second reconstruction (it was refused as "2
    reconstructions" that the SEG references both of). Measured as one series, with a note naming the slice."""
    import pydicom

    study = tmp_path / "study"
    ijk = np.indices(RECON_SHAPE)
    liver = (ijk[0] >= 4) & (ijk[0] < 20) & (ijk[1] >= 3) & (ijk[1] < 18) & (ijk[2] >= 1) & (ijk[2] < 9)
    files = write_image_series(
        study / "ct", np.where(liver, 60.0, -80.0), RECON_AFF, seed=24, extra_tags={"ConvolutionKernel": "B30f"}
    )
    odd = files[4]  # an inner slice
    ds = pydicom.dcmread(odd)
    if value is None:
        del ds[attr]
    else:
        setattr(ds, attr, value)
    ds.save_as(odd)
    write_seg(study / "seg.dcm", files, [SegmentSpec("Liver", liver)])
    res = _analyze(str(study))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    voxel_ml = abs(np.linalg.det(RECON_AFF[:3, :3])) / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(int(liver.sum()) * voxel_ml, abs=1e-6)
    assert rep["study"]["grid"]["shape"] == list(RECON_SHAPE)
    (note,) = [n for n in rep["warnings"] + rep["notes"] if odd.name in n]
    assert f"1 slice(s) ({odd.name})" in note
    assert shown in note
    assert "one regular stack" in note


def test_three_odd_slices_of_ten_are_still_another_reconstruction(tmp_path):
    """More than two slices (and more than a tenth) with another kernel inside the stack: two reconstructions."""
    import pydicom

    from netlm_imaging.io._dicom_common import scan_dicom_folder
    from netlm_imaging.io.dicom_series_groups import group_image_series

    files = write_image_series(
        tmp_path / "ct", np.zeros(RECON_SHAPE), RECON_AFF, seed=25, extra_tags={"ConvolutionKernel": "B30f"}
    )
    for f in files[3:6]:
        ds = pydicom.dcmread(f)
        ds.ConvolutionKernel = "B70f"
        ds.save_as(f)
    assert len(group_image_series(scan_dicom_folder(tmp_path / "ct"))) == 2
    ds = pydicom.dcmread(files[3])  # two odd slices: one stack again
    ds.ConvolutionKernel = "B30f"
    ds.save_as(files[3])
    (group,) = group_image_series(scan_dicom_folder(tmp_path / "ct"))
    assert group.n_slices == RECON_SHAPE[2]


def test_acquisitions_that_follow_each_other_stay_one_stack(tmp_path):
    """Two AcquisitionNumbers covering consecutive slabs are one series, not two reconstructions."""
    from netlm_imaging.io._dicom_common import scan_dicom_folder
    from netlm_imaging.io.dicom_series_groups import group_image_series

    files = write_image_series(tmp_path / "ct", np.zeros(RECON_SHAPE), RECON_AFF, seed=23)
    import pydicom

    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.AcquisitionNumber = 1 if k < 5 else 2
        ds.save_as(f)
    (group,) = group_image_series(scan_dicom_folder(tmp_path / "ct"))
    assert group.n_slices == RECON_SHAPE[2]

"""`netlm analyze --sr` on an Enhanced (multi-frame) CT: the derived SEG and the SR are written on it.

Modern scanners export one Enhanced CT / MR file per series. Before, `--sr` on such a study ended in an
internal error and lost the report. Phantom: tests/test_sr.py's liver box and two lesion spheres on its
oblique, anisotropic grid, written as one Enhanced CT file (tests.dicom_factory, frames stored in a
shuffled order, DS values formatted to 16 characters as a scanner writes them) with a highdicom SEG.
Truth from voxel counts, computed here. The SEG and SR pass dciodvfy; highdicom decodes each segment per
source frame and dcmqi places it by physical position, both to the phantom's voxels; the SR's numbers are
the truth and its groups reference the derived segments.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.valuerep import DSfloat

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from tests.dicom_factory import write_enhanced_series
from tests.dicom_tools import assert_dciodvfy_clean
from tests.seg_factory import SegmentSpec, write_seg
from tests.test_dicom_outputs_dcmqi import _indices, _phantom_indices
from tests.test_sr import AFFINE, SHAPE, VOXEL_ML, phantom_hu_and_segments, phantom_masks

FRAME_ORDER = [7, 2, 19, 0, 11, 5, 14, 1, 18, 9, 3, 16, 12, 6, 10, 17, 4, 13, 8, 15]


def _format_ds(ds: pydicom.Dataset) -> None:
    """Every DS value written as a scanner writes it (at most 16 characters), in place."""
    for elem in ds.iterall():
        if elem.VR == "DS" and elem.value not in (None, ""):
            values = elem.value if elem.VM > 1 else [elem.value]
            formatted = [DSfloat(float(v), auto_format=True) for v in values]
            elem.value = formatted if elem.VM > 1 else formatted[0]


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("enhanced_outputs")
    liver, spheres = phantom_masks()
    hu, segments = phantom_hu_and_segments()
    path = write_enhanced_series(base / "study" / "ct.dcm", hu, AFFINE, seed=51, frame_order=FRAME_ORDER)
    ds = pydicom.dcmread(path)
    _format_ds(ds)
    ds.save_as(path)
    # highdicom pairs mask plane n with source frame n: give it the planes in frame order
    in_frame_order = [
        SegmentSpec(x.label, x.mask[:, :, FRAME_ORDER], x.property_type, x.property_category) for x in segments
    ]
    write_seg(base / "study" / "seg.dcm", [path], in_frame_order, seed=51)
    out = base / "out"
    assert main(["analyze", str(base / "study"), "--sr", "--out", str(out), "--quiet"]) == 0
    return {"base": base, "ct": path, "out": out, "total": liver | np.any(spheres, axis=0), "spheres": spheres}


def test_the_seg_and_sr_on_an_enhanced_ct_pass_dciodvfy_and_the_report_is_kept(enhanced: dict) -> None:
    out = enhanced["out"]
    for name in ("derived_seg.dcm", "report_sr.dcm"):
        assert_dciodvfy_clean(out / name)
    report = json.loads((out / "report.json").read_text())
    assert report["liver"]["voxel_count"] == int(enhanced["total"].sum())


def test_highdicom_decodes_each_derived_segment_per_source_frame_as_the_phantom(enhanced: dict) -> None:
    src = pydicom.dcmread(enhanced["ct"], stop_before_pixels=True)
    seg = hd.seg.segread(enhanced["out"] / "derived_seg.dcm")
    frames = list(range(1, int(src.NumberOfFrames) + 1))
    arr = seg.get_pixels_by_source_frame(
        src.SOPInstanceUID, frames, ignore_spatial_locations=True, assert_missing_frames_are_empty=True
    )  # (frame, rows, columns, segment); frame f holds slice FRAME_ORDER[f]
    masks = np.zeros((*SHAPE, arr.shape[-1]), bool)
    for f, k in enumerate(FRAME_ORDER):
        masks[:, :, k, :] = arr[f].transpose(1, 0, 2).astype(bool)
    labels = [str(s.SegmentLabel) for s in seg.SegmentSequence]
    assert labels == ["Liver", "Lesion 1 (intrahepatic)", "Lesion 2 (intrahepatic)"]
    assert np.array_equal(masks[..., 0], enhanced["total"])
    assert {masks[..., 1].tobytes(), masks[..., 2].tobytes()} == {s.tobytes() for s in enhanced["spheres"]}


def test_dcmqi_places_the_derived_segments_on_the_phantom(enhanced: dict) -> None:
    exe = shutil.which("segimage2itkimage")
    if exe is None:
        pytest.skip("dcmqi's segimage2itkimage not installed (pip install dcmqi)")
    work = enhanced["base"] / "dcmqi"
    work.mkdir()
    cmd = [exe, "--inputDICOM", str(enhanced["out"] / "derived_seg.dcm"), "--outputDirectory", str(work)]
    r = subprocess.run([*cmd, "--outputType", "nifti"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {frozenset(_phantom_indices(p)) for p in work.glob("*.nii.gz")}
    assert got == {frozenset(_indices(m)) for m in [enhanced["total"], *enhanced["spheres"]]}


def test_the_sr_on_an_enhanced_ct_gives_the_truth_and_references_the_derived_segments(enhanced: dict) -> None:
    got = read_sr_measurements(enhanced["out"] / "report_sr.dcm")
    seg_uid = str(pydicom.dcmread(enhanced["out"] / "derived_seg.dcm", stop_before_pixels=True).SOPInstanceUID)
    assert got["liver_volume_ml"] == pytest.approx(int(enhanced["total"].sum()) * VOXEL_ML, abs=1e-3)
    assert got["liver_referenced_segment"]["sop_instance_uid"] == seg_uid
    assert sorted(les["volume_ml"] for les in got["lesions"]) == pytest.approx(
        sorted(int(s.sum()) * VOXEL_ML for s in enhanced["spheres"]), abs=1e-3
    )
    assert {les["referenced_segment"]["segment_number"] for les in got["lesions"]} == {2, 3}
    sr = pydicom.dcmread(enhanced["out"] / "report_sr.dcm")
    evidence = {
        str(ref.ReferencedSOPInstanceUID)
        for ev in sr.CurrentRequestedProcedureEvidenceSequence
        for s in ev.ReferencedSeriesSequence
        for ref in s.ReferencedSOPSequence
    }
    assert evidence == {str(pydicom.dcmread(enhanced["ct"], stop_before_pixels=True).SOPInstanceUID), seg_uid}


def test_on_one_phase_of_a_two_phase_enhanced_mr_the_seg_names_only_that_phases_frames(tmp_path) -> None:
    """A Philips-style Enhanced MR with two dynamic phases at the same positions (TemporalPositionIndex 1, 2;
    frames 1-20 and 21-40), a label map drawn on it (NIfTI), `--image-series UID#2 --sr`: the derived SEG
    names phase 2's frames only as its sources, each segment is in place (highdicom per source frame), and
    the SR gives the truth. (highdicom alone names the first frame at each position: phase 1's.)"""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from tests.phantoms import write_nifti

    liver, spheres = phantom_masks()
    total = liver | np.any(spheres, axis=0)
    nk = SHAPE[2]
    signal = np.where(total, 300.0, 80.0)
    path = write_enhanced_series(tmp_path / "mr.dcm", np.concatenate([signal, signal], axis=2), AFFINE, modality="MR")
    ds = pydicom.dcmread(path)
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.PlanePositionSequence[0].ImagePositionPatient = [float(x) for x in (AFFINE @ [0.0, 0.0, n % nk, 1.0])[:3]]
        content = Dataset()
        content.TemporalPositionIndex = n // nk + 1
        item.FrameContentSequence = DicomSequence([content])
    _format_ds(ds)
    ds.save_as(path)
    labels = np.where(spheres[0], 2, np.where(liver, 1, 0)).astype(np.uint8)
    seg_path = write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE)
    out = tmp_path / "out"
    args = ["analyze", "--image", str(path), "--seg", str(seg_path), "--labels", "liver=1,lesion=2"]
    args += ["--image-series", f"{ds.SeriesInstanceUID}#2", "--sr", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert_dciodvfy_clean(out / "derived_seg.dcm")
    derived = pydicom.dcmread(out / "derived_seg.dcm", stop_before_pixels=True)
    referenced = [
        int(src.ReferencedFrameNumber)
        for item in derived.PerFrameFunctionalGroupsSequence
        for der in item.DerivationImageSequence
        for src in der.SourceImageSequence
    ]
    assert referenced
    assert set(referenced) <= set(range(nk + 1, 2 * nk + 1))  # phase 2's frames only
    seg = hd.seg.segread(out / "derived_seg.dcm")
    arr = seg.get_pixels_by_source_frame(
        ds.SOPInstanceUID,
        list(range(nk + 1, 2 * nk + 1)),
        ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )
    decoded = arr.transpose(2, 1, 0, 3).astype(bool)  # (i, j, k, segment)
    assert np.array_equal(decoded[..., 0], liver | spheres[0])
    assert np.array_equal(decoded[..., 1], spheres[0])
    got = read_sr_measurements(out / "report_sr.dcm")
    assert got["liver_volume_ml"] == pytest.approx(int((liver | spheres[0]).sum()) * VOXEL_ML, abs=1e-3)
    (lesion,) = got["lesions"]
    assert lesion["volume_ml"] == pytest.approx(int(spheres[0].sum()) * VOXEL_ML, abs=1e-3)

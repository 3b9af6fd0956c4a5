"""PEERS.md, dcmqi: segmentations written and converted by dcmqi's own command-line tools.

dcmqi #462 / #513: ``segimage2itkimage`` writes only the slices the SEG holds and ``itkimage2segimage``
leaves out empty frames, so the SEG's and the converted image's grids are not the CT's ("Dimensions of
volume and segmentations are not matching"). Both directions must give the numbers of the mask they
came from: the real dcmqi liver converted to NRRD by dcmqi (107,098 voxels = 70.362 mL, MANIFEST.md),
and a SEG that dcmqi writes from a SimpleITK label map on an oblique anisotropic CT (truth: numpy
counts times the voxel volume from the affine's determinant).
"""

from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tests.conftest import analyze_json, oblique_affine, shared_path
from tests.dicom_factory import write_image_series
from tests.dicom_tools import require_tool
from tests.phantoms import sitk_image

SHAPE = (36, 34, 12)
AFFINE = oblique_affine(spacing=(0.8, 0.75, 2.0), angles_deg=(8.0, -5.0, 17.0), origin=(-80.0, 40.0, 380.0))


def _code(value: str, meaning: str) -> dict[str, str]:
    return {"CodeValue": value, "CodingSchemeDesignator": "SCT", "CodeMeaning": meaning}


def _segment(label_id: int, name: str, category: dict, prop: dict) -> dict:
    return {
        "labelID": label_id,
        "SegmentDescription": name,
        "SegmentAlgorithmType": "MANUAL",
        "SegmentedPropertyCategoryCodeSequence": category,
        "SegmentedPropertyTypeCodeSequence": prop,
    }


NEOPLASM = _code("108369006", "Neoplasm")
META = {  # dcmqi's metadata JSON (as its qiicr.org/dcmqi web generator writes it)
    "ContentCreatorName": "Reader1",
    "ClinicalTrialSeriesID": "Session1",
    "ClinicalTrialTimePointID": "1",
    "ClinicalTrialCoordinatingCenterName": "dcmqi",
    "SeriesDescription": "Liver and tumour",
    "SeriesNumber": "300",
    "InstanceNumber": "1",
    "BodyPartExamined": "LIVER",
    "ContentLabel": "SEGMENTATION",
    "ContentDescription": "netlm test",
    "segmentAttributes": [
        [
            _segment(1, "Liver", _code("123037004", "Anatomical Structure"), _code("10200004", "Liver")),
            _segment(2, "Tumor", _code("49755003", "Morphologically Altered Structure"), NEOPLASM),
        ]
    ],
}


def _labels() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[4:32, 5:30, 1:11] = 1  # slices 1..10 of 0..11
    labels[10:20, 12:24, 3:8] = 2
    return labels


@pytest.fixture(scope="module")
def dcmqi_seg(tmp_path_factory):
    """The CT folder and the SEG dcmqi's itkimage2segimage writes from a SimpleITK NRRD label map."""
    tool = require_tool("itkimage2segimage", "PyPI dcmqi")
    root = tmp_path_factory.mktemp("dcmqi")
    paths = write_image_series(root / "ct", np.full(SHAPE, 60.0), AFFINE, seed=17)
    sitk.WriteImage(sitk_image(_labels(), AFFINE), str(root / "labels.nrrd"))
    (root / "meta.json").write_text(json.dumps(META))
    seg = root / "seg.dcm"
    args = ["--inputImageList", str(root / "labels.nrrd"), "--inputDICOMDirectory", str(paths[0].parent)]
    run = subprocess.run(
        [tool, *args, "--outputDICOM", str(seg), "--inputMetadata", str(root / "meta.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return paths[0].parent, seg


def _assert_numbers(rep: dict, labels: np.ndarray) -> None:
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert rep["liver"]["voxel_count"] == int(np.count_nonzero(labels))
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx((labels == 2).sum() * voxel_ml, abs=1e-4)
    assert rep["tumor"]["lesion_count"] == 1
    assert rep["study"]["grid"]["resampled"] is False


def test_seg_written_by_itkimage2segimage_on_an_oblique_ct(dcmqi_seg):
    ct, seg = dcmqi_seg
    # dcmqi leaves the empty frames out: 10 liver + 5 tumour frames of 2 x 12 slices
    assert int(pydicom.dcmread(seg).NumberOfFrames) == 15
    _assert_numbers(analyze_json("--image", str(ct), "--seg", str(seg)), _labels())


def test_its_conversion_back_covers_only_the_segs_slices_and_is_placed_on_the_ct(dcmqi_seg, tmp_path):
    """dcmqi #513: segimage2itkimage's NRRD spans the SEG's 10 slices, not the CT's 12."""
    ct, seg = dcmqi_seg
    tool = require_tool("segimage2itkimage", "PyPI dcmqi")
    args = ["--inputDICOM", str(seg), "--outputDirectory", str(tmp_path), "-t", "nrrd", "--mergeSegments"]
    run = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert sitk.ReadImage(str(tmp_path / "1.nrrd")).GetSize() == (SHAPE[0], SHAPE[1], 10)
    rep = analyze_json("--image", str(ct), "--seg", str(tmp_path / "1.nrrd"))
    _assert_numbers(rep, _labels())
    assert [n for n in rep["notes"] if "crop of the image grid (index offset [0, 0, 1])" in n] != []


def test_real_liver_converted_by_segimage2itkimage_gives_70_362_ml(tmp_path):
    tool = require_tool("segimage2itkimage", "PyPI dcmqi")
    data = shared_path("dcmqi_ct3slice_seg", "data", "segmentations")
    out = tmp_path / "nrrd"
    out.mkdir()
    run = subprocess.run(
        [tool, "--inputDICOM", str(data / "liver.dcm"), "--outputDirectory", str(out), "-t", "nrrd"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    rep = analyze_json("--image", str(data / "ct-3slice"), "--seg", str(out / "1.nrrd"), "--labels", "liver=1")
    assert rep["liver"]["voxel_count"] == 107_098
    assert rep["liver"]["volume_ml"] == pytest.approx(70.362, abs=1e-3)
    assert rep["liver"]["mean_intensity"] == pytest.approx(37.3, abs=0.05)


def test_merged_segments_files_of_overlapping_segments_give_the_numbers_of_the_seg(tmp_path):
    """``--mergeSegments`` on overlapping segments writes several label files, each free of overlaps."""
    tool = require_tool("segimage2itkimage", "PyPI dcmqi")
    data = shared_path("dcmqi_ct3slice_seg", "data", "segmentations")
    out = tmp_path / "merged"
    out.mkdir()
    args = ["--inputDICOM", str(data / "partial_overlaps.dcm"), "--outputDirectory", str(out), "-t", "nifti"]
    run = subprocess.run([tool, *args, "--mergeSegments"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    meta = json.loads((out / "meta.json").read_text())
    where = {
        s["SegmentLabel"]: (n, s["labelID"]) for n, group in enumerate(meta["segmentAttributes"], 1) for s in group
    }
    (f_liver, v_liver), (f_lesion, v_lesion) = where["GREEN"], where["PURPLE"]
    assert f_liver != f_lesion  # the two overlap, so dcmqi put them in different files
    liver = np.asarray(nib.load(out / f"{f_liver}.nii.gz").dataobj) == v_liver
    lesion = np.asarray(nib.load(out / f"{f_lesion}.nii.gz").dataobj) == v_lesion
    assert np.count_nonzero(liver & lesion) > 0
    ct = str(data / "ct-3slice")
    files = ["--seg", str(out / f"{f_liver}.nii.gz"), "--seg", str(out / f"{f_lesion}.nii.gz")]
    merged = analyze_json("--image", ct, *files, "--labels", f"liver={v_liver},lesion={v_lesion}")
    seg = analyze_json(
        "--image", ct, "--seg", str(data / "partial_overlaps.dcm"), "--labels", "liver=GREEN,lesion=PURPLE"
    )
    voxel_ml = 0.810547**2 * 1.0 / 1000.0
    for rep in (merged, seg):
        assert rep["liver"]["voxel_count"] == int(np.count_nonzero(liver | lesion))
        assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * voxel_ml, abs=1e-3)
        assert rep["tumor"]["lesion_count"] == 1

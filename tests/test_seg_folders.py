"""Segmentations handed over as a folder: TotalSegmentator's output folder, a PACS export's SEG series folder.

``TotalSegmentator -i ct.nii.gz -o segmentations`` writes one mask per structure into
``segmentations/`` beside the CT. That study folder was refused ("no segmentation file"), and so
was ``--seg segmentations/`` ("is a folder"), although the masks' names say what each is, as they
do for the same files directly in the folder. A PACS export puts each series in its own folder,
the SEG alone in one: ``--seg SEG_FOLDER/`` with one segmentation object is that object. Folders
that do not say which file to use stay exit 3 with one line.

Truths: voxel counts of the boxes placed here x |det(affine)|.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import analyze_json, oblique_affine
from dicom_factory import write_image_series
from phantoms import write_nifti
from seg_factory import SegmentSpec, write_seg
from test_faults_messages import netlm, one_line

AFF = oblique_affine(spacing=(1.5, 1.5, 3.0))
SHAPE = (40, 36, 20)
VOXEL_ML = 1.5 * 1.5 * 3.0 / 1000
BOXES = {
    "liver": (slice(5, 35), slice(5, 30), slice(3, 15)),  # 30 x 25 x 12 = 9000 voxels
    "liver_tumor": (slice(10, 16), slice(10, 16), slice(5, 9)),  # 6 x 6 x 4 = 144
    "spleen": (slice(36, 39), slice(5, 10), slice(3, 6)),  # 3 x 5 x 3 = 45
    "heart": (slice(1, 4), slice(1, 4), slice(16, 19)),
}


def _mask(name) -> np.ndarray:
    a = np.zeros(SHAPE, np.uint8)
    a[BOXES[name]] = 1
    return a


def _totalsegmentator(study, out="segmentations"):
    study.mkdir(parents=True, exist_ok=True)
    write_nifti(study / "ct.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    (study / out).mkdir()
    for name in BOXES:
        write_nifti(study / out / f"{name}.nii.gz", _mask(name), AFF)
    write_nifti(study / out / "aorta.nii.gz", np.zeros(SHAPE, np.uint8), AFF)  # an empty structure
    return study


def _check(rep):
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, abs=1e-5)  # the tumour lies inside
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, abs=1e-5)
    assert rep["tumor"]["lesion_count"] == 1
    unused = [n for n in rep["notes"] if n.startswith("not used in segmentations")]
    assert len(unused) == 1
    assert "aorta.nii.gz, heart.nii.gz" in unused[0]


def test_a_study_folder_with_totalsegmentators_output_folder(tmp_path):
    study = _totalsegmentator(tmp_path / "study")
    rep = analyze_json(str(study))
    _check(rep)
    assert sorted(rep["study"]["segmentation_sources"]) == [
        "segmentations/liver.nii.gz",
        "segmentations/liver_tumor.nii.gz",
        "segmentations/spleen.nii.gz",
    ]


def test_seg_naming_totalsegmentators_output_folder(tmp_path):
    study = _totalsegmentator(tmp_path / "study")
    _check(analyze_json("--image", str(study / "ct.nii.gz"), "--seg", str(study / "segmentations")))


def test_two_mask_subfolders_are_named_not_guessed(tmp_path):
    study = _totalsegmentator(tmp_path / "study")
    (study / "rater2").mkdir()
    write_nifti(study / "rater2" / "liver.nii.gz", _mask("liver"), AFF)
    line = one_line(netlm("analyze", study, "--json", "-"))
    assert "masks named after their structure in 2 subfolders (rater2, segmentations)" in line
    assert "--seg FOLDER" in line


@pytest.fixture(scope="module")
def dicom_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("pacs")
    files = write_image_series(root / "series_001", np.full(SHAPE, 40.0), AFF, seed=71)
    segs = [SegmentSpec("Liver", _mask("liver").astype(bool))]
    (root / "series_002").mkdir()
    write_seg(root / "series_002" / "IM0001", files, segs, seed=1)
    (root / "two").mkdir()
    for n in (1, 2):
        write_seg(root / "two" / f"IM000{n}", files, segs, seed=n)
    (root / "empty").mkdir()
    return root


def test_seg_naming_a_pacs_series_folder_with_one_seg(dicom_study):
    rep = analyze_json("--image", str(dicom_study / "series_001"), "--seg", str(dicom_study / "series_002"))
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, abs=1e-5)
    assert any("its one segmentation object IM0001 (SEG)" in n for n in rep["notes"])


@pytest.mark.parametrize(
    ("folder", "says"),
    [
        ("two", "--seg names a folder holding 2 segmentation objects (IM0001, IM0002); pass one file"),
        ("empty", "--seg names a folder holding 0 volumes, none named after its structure"),
    ],
)
def test_seg_folders_that_do_not_say_which_file(dicom_study, folder, says):
    line = one_line(netlm("analyze", "--image", dicom_study / "series_001", "--seg", dicom_study / folder))
    assert f"{dicom_study / folder}: {says}" in line


def test_seg_folder_picks_the_reconstruction_its_seg_references(tmp_path):
    from test_real_world_inputs import RECON_AFF, _two_reconstructions

    a, _, liver = _two_reconstructions(tmp_path)
    (tmp_path / "seg_series").mkdir()
    write_seg(tmp_path / "seg_series" / "IM0001", a, [SegmentSpec("Liver", liver)])
    rep = analyze_json("--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg_series"))
    assert rep["liver"]["voxel_count"] == int(liver.sum())  # reconstruction A's grid, not both merged
    assert rep["liver"]["volume_ml"] == pytest.approx(int(liver.sum()) * abs(np.linalg.det(RECON_AFF[:3, :3])) / 1000)
    assert rep["liver"]["mean_intensity"] == pytest.approx(60.0, abs=0.01)


def test_seg_naming_a_folder_with_one_label_map(tmp_path):
    study = _totalsegmentator(tmp_path / "study")
    (tmp_path / "slicer").mkdir()
    lab = _mask("liver") + _mask("liver_tumor")  # 1 liver, 2 tumour (LiTS)
    write_nifti(tmp_path / "slicer" / "Segmentation-label.nii.gz", lab, AFF)
    rep = analyze_json("--image", str(study / "ct.nii.gz"), "--seg", str(tmp_path / "slicer"))
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, abs=1e-5)
    assert any("its one segmentation file Segmentation-label.nii.gz" in n for n in rep["notes"])
    write_nifti(tmp_path / "slicer" / "other.nii.gz", lab, AFF)
    line = one_line(netlm("analyze", "--image", study / "ct.nii.gz", "--seg", tmp_path / "slicer"))
    assert "--seg names a folder holding 2 volumes, none named after its structure" in line


def test_masks_of_mixed_formats_are_read_but_one_structure_in_two_formats_is_named_not_unioned(tmp_path):
    """``liver.nii`` beside ``liver.nii.gz`` (one gunzipped, one edited since): their union was measured with a
    'two versions of the liver' warning; a folder or --seg FOLDER holding them is now exit 3 naming both."""
    study = tmp_path / "study"
    study.mkdir()
    write_nifti(study / "ct.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    write_nifti(study / "liver.nii", _mask("liver"), AFF)  # the formats may differ: .nii beside .nii.gz
    write_nifti(study / "liver_tumor.nii.gz", _mask("liver_tumor"), AFF)
    rep = analyze_json(str(study))
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, abs=1e-5)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, abs=1e-5)
    edited = _mask("liver")
    edited[:, :, :8] = 0  # an edited version: the union would be the first file again
    write_nifti(study / "liver.nii.gz", edited, AFF)
    line = one_line(netlm("analyze", study, "--json", "-"))
    assert "one structure in two files (liver.nii and liver.nii.gz" in line
    segs = _totalsegmentator(tmp_path / "ts")
    write_nifti(segs / "segmentations" / "spleen.nii", _mask("spleen"), AFF)
    for args in ([segs], ["--image", segs / "ct.nii.gz", "--seg", segs / "segmentations"]):
        line = one_line(netlm("analyze", *args, "--json", "-"))
        assert "segmentations: one structure in two files (spleen.nii and spleen.nii.gz" in line

"""Segmentations as MONAI bundles save them: ``*_seg.nii.gz`` float32 label maps, and one-hot outputs.

MONAI's ``SaveImage`` writes a channel-first one-hot output (``AsDiscrete(to_onehot=3)``: channel 0
background, 1 liver, 2 tumour) with its channels last, ``(x, y, z, 3)`` (ITK's vector layout:
``(x, y, z, 1, 3)``). Such a file was refused as a 4-D series ("split 4-D series first"); it is the
label map of its channel numbers. Probabilities and channel-first arrays are refused in one line.
A study folder holding ``ct.nii.gz`` and SaveImage's output folder ``ct/ct_seg.nii.gz`` (``<stem>/<stem>_<postfix>``)
is discovered. Truths: voxel counts of the ellipsoids drawn here x |det(affine)|, on an oblique grid.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import analyze_json, oblique_affine
from phantoms import write_nifti
from test_faults_messages import netlm, one_line

from netlm_imaging.api import analyze
from netlm_imaging.errors import InputError
from netlm_imaging.io.discover import discover_study

AFF = oblique_affine(spacing=(1.25, 1.1, 2.5), angles_deg=(6.0, -4.0, 25.0))
SHAPE = (34, 30, 16)
VOXEL_ML = 1.25 * 1.1 * 2.5 / 1000


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    liver = ((i - 16) / 11.0) ** 2 + ((j - 15) / 9.0) ** 2 + ((k - 8) / 5.0) ** 2 <= 1
    tumour = ((i - 19) / 3.0) ** 2 + ((j - 13) / 3.0) ** 2 + ((k - 8) / 2.0) ** 2 <= 1
    return liver, tumour


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("monai")
    write_nifti(d / "ct.nii.gz", np.full(SHAPE, 45, np.int16), AFF)
    liver, tumour = _phantom()
    labels = np.zeros(SHAPE, np.float32)  # SaveImage's default output_dtype
    labels[liver] = 1.0
    labels[tumour] = 2.0
    write_nifti(d / "ct_seg.nii.gz", labels, AFF)
    onehot = np.stack([labels == c for c in range(3)], axis=-1).astype(np.float32)
    (d / "onehot").mkdir()
    write_nifti(d / "onehot" / "ct_seg.nii.gz", onehot, AFF)
    write_nifti(d / "onehot" / "ct_vector_seg.nii.gz", onehot[:, :, :, None, :], AFF)
    soft = onehot * np.float32(0.9) + np.float32(0.1 / 3)  # a softmax: every channel nonzero
    write_nifti(d / "onehot" / "ct_prob.nii.gz", soft, AFF)
    write_nifti(d / "onehot" / "ct_channel_first.nii.gz", np.moveaxis(onehot, -1, 0), AFF)
    return d


def _expected() -> tuple[float, float]:
    liver, tumour = _phantom()
    return np.count_nonzero(liver | tumour) * VOXEL_ML, np.count_nonzero(tumour) * VOXEL_ML


def test_a_float32_label_map_beside_its_image_in_a_study_folder(study, tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    for name in ("ct.nii.gz", "ct_seg.nii.gz"):
        (d / name).write_bytes((study / name).read_bytes())
    rep = analyze_json(str(d))
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)


@pytest.mark.parametrize("name", ["ct_seg.nii.gz", "ct_vector_seg.nii.gz"])
def test_a_one_hot_output_is_the_label_map_of_its_channels(study, name):
    rep = analyze_json("--image", str(study / "ct.nii.gz"), "--seg", str(study / "onehot" / name))
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    assert rep["tumor"]["lesion_count"] == 1
    assert any("one-hot segmentation of 3 channels" in w for w in rep["warnings"])


def test_a_one_hot_output_with_labels(study):
    # --labels reads the channel numbers: the tumour channel alone as the lesion
    rep = analyze_json(
        "--image", str(study / "ct.nii.gz"), "--seg", str(study / "onehot" / "ct_seg.nii.gz"), "--labels", "lesion=2"
    )
    assert rep["liver"]["volume_ml"] is None
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_expected()[1], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ct_prob.nii.gz", "not one-hot (values 0.0333333..0.933333, not only 0 and 1: a probability map?)"),
        ("ct_channel_first.nii.gz", "its first axis of 3 looks like the channels of a channel-first array"),
    ],
)
def test_outputs_that_are_not_one_hot_are_refused_in_one_line(study, name, says):
    path = study / "onehot" / name
    line = one_line(netlm("analyze", "--image", study / "ct.nii.gz", "--seg", path, "--json", "-"))
    assert line.startswith(f"netlm: error: {path}: a segmentation of ")
    assert says in line
    assert "save one label map (the argmax over the channels" in line


def test_an_image_with_a_fourth_dimension_is_still_refused(study, tmp_path):
    four = tmp_path / "ct4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 3), np.int16), np.eye(4)), four)
    line = one_line(netlm("analyze", "--image", four, "--seg", study / "ct_seg.nii.gz", "--json", "-"))
    assert "expected a 3-D image" in line


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_a_one_hot_output_written_by_itk_as_vector_components(study, tmp_path, suffix):
    # MONAI's ITKWriter keeps the channels as vector components: component 0 (the background) alone was read
    # as the label map, and its 1s as the liver (39 mL of background for an 8 mL liver)
    import SimpleITK as sitk

    onehot = np.asarray(nib.load(study / "onehot" / "ct_seg.nii.gz").dataobj)
    img = sitk.GetImageFromArray(np.transpose(onehot, (2, 1, 0, 3)), isVector=True)
    img.CopyInformation(sitk.ReadImage(str(study / "ct.nii.gz")))
    sitk.WriteImage(img, str(tmp_path / f"ct_seg{suffix}"))
    rep = analyze_json("--image", str(study / "ct.nii.gz"), "--seg", str(tmp_path / f"ct_seg{suffix}"))
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    assert any("one-hot segmentation of 3 channels" in w for w in rep["warnings"])
    soft = sitk.GetImageFromArray(np.transpose(onehot * 0.9 + 0.1 / 3, (2, 1, 0, 3)).astype(np.float32), isVector=True)
    soft.CopyInformation(img)
    sitk.WriteImage(soft, str(tmp_path / f"ct_prob{suffix}"))
    line = one_line(
        netlm("analyze", "--image", study / "ct.nii.gz", "--seg", tmp_path / f"ct_prob{suffix}", "--json", "-")
    )
    assert "not one-hot" in line


def _saveimage_study(study, root, postfixes=("seg",)):
    """A study folder as MONAI's SaveImage(output_dir=<study>, output_postfix=P) leaves it beside its input ct.nii.gz:
    the prediction in <study>/ct/ct_P.nii.gz (separate_folder=True, its default)."""
    root.mkdir()
    (root / "ct.nii.gz").write_bytes((study / "ct.nii.gz").read_bytes())
    (root / "ct").mkdir()
    for postfix in postfixes:
        (root / "ct" / f"ct_{postfix}.nii.gz").write_bytes((study / "ct_seg.nii.gz").read_bytes())
    return root


@pytest.mark.parametrize("postfix", ["seg", "trans", "liver_pred"])
def test_saveimage_output_folder_beside_the_image(study, tmp_path, postfix):
    """ct.nii.gz beside MONAI's ct/ct_seg.nii.gz was refused: 'no segmentation file' (exit 3)."""
    root = _saveimage_study(study, tmp_path / "s", (postfix,))
    found = discover_study(root)
    seg = root / "ct" / f"ct_{postfix}.nii.gz"
    assert found.image_path == root / "ct.nii.gz"
    assert found.segmentation_args == [str(seg)]
    assert any(n.startswith(f"ct/ct_{postfix}.nii.gz: MONAI's output of ct.nii.gz") for n in found.notes)
    liver_ml, tumour_ml = _expected()
    rep = analyze(root)
    assert rep.liver["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    cli = analyze_json(str(root))
    assert cli["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert cli["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    assert cli["tumor"]["lesion_count"] == 1


def test_two_candidate_segmentations_name_both_files(study, tmp_path):
    # the folder's own ct_seg.nii.gz and MONAI's ct/ct_seg.nii.gz: which one is meant is not guessed
    root = _saveimage_study(study, tmp_path / "s")
    (root / "ct_seg.nii.gz").write_bytes((study / "ct_seg.nii.gz").read_bytes())
    line = one_line(netlm("analyze", root, "--json", "-"))
    assert "2 candidate segmentations: 1) ct_seg.nii.gz (NIFTI); 2) ct/ct_seg.nii.gz (NIFTI)" in line
    assert "choose with --seg-choice N|UID" in line
    liver_ml, _ = _expected()
    for choice in ("2", "ct/ct_seg.nii.gz"):
        rep = analyze_json(str(root), "--seg-choice", choice)
        assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
        assert rep["study"]["segmentation_sources"] == ["ct/ct_seg.nii.gz"]
    # two outputs of one image in its folder (a run with output_postfix "seg", another with the default "trans")
    both = _saveimage_study(study, tmp_path / "t", ("seg", "trans"))
    line = one_line(netlm("analyze", both, "--json", "-"))
    assert "2 candidate segmentations: 1) ct/ct_seg.nii.gz (NIFTI); 2) ct/ct_trans.nii.gz (NIFTI)" in line


def test_a_monai_output_beside_a_totalsegmentator_folder_is_refused(study, tmp_path):
    root = _saveimage_study(study, tmp_path / "s")
    (root / "segmentations").mkdir()
    liver, _ = _phantom()
    write_nifti(root / "segmentations" / "liver.nii.gz", liver.astype(np.uint8), AFF)
    line = one_line(netlm("analyze", root, "--json", "-"))
    assert "two segmentations: the MONAI output ct/ct_seg.nii.gz and the masks named after their structure in " in line
    assert "segmentations/; pass the one to measure with --seg PATH" in line


def test_a_subfolder_not_named_after_the_image_is_no_monai_output(study, tmp_path):
    root = _saveimage_study(study, tmp_path / "s")
    (root / "ct").rename(root / "other")
    line = one_line(netlm("analyze", root, "--json", "-"))
    assert "no segmentation file" in line
    (root / "other").rename(root / "ct")
    (root / "ct" / "ct_seg.nii.gz").rename(root / "ct" / "prediction.nii.gz")  # not <stem>_<postfix>
    line = one_line(netlm("analyze", root, "--json", "-"))
    assert "no segmentation file" in line


def _second_model(folder):
    """An nnU-Net prediction of the same CT (with its dataset.json) whose tumour is larger than MONAI's."""
    import json

    liver, tumour = _phantom()
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    bigger = ((i - 19) / 4.0) ** 2 + ((j - 13) / 4.0) ** 2 + ((k - 8) / 2.5) ** 2 <= 1
    assert np.count_nonzero(bigger & ~tumour) > 0
    lab = np.zeros(SHAPE, np.uint8)
    lab[liver] = 1
    lab[bigger & liver] = 2
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumour": 2}}))
    return write_nifti(folder / "ct.nii.gz", lab, AFF)


def test_two_label_maps_each_with_liver_and_lesions_are_refused(study, tmp_path):
    """MONAI's ct_seg and an nnU-Net prediction passed together were measured as their union (exit 0, a lesion
    overlap warning): two segmentations of the study, not parts of one. Refused naming both files and the fix."""
    ct, monai = study / "ct.nii.gz", study / "ct_seg.nii.gz"
    nnunet = _second_model(tmp_path / "nnunet")
    line = one_line(netlm("analyze", "--image", ct, "--seg", monai, "--seg", nnunet, "--json", "-"))
    assert line.startswith(f"netlm: error: {monai} and {nnunet}: 2 label maps that each hold a liver and lesions ")
    assert (
        "pass one of them with --seg and analyze the other in its own run, or compare them with netlm compare-seg"
        in line
    )
    assert f"--seg-a {monai} --seg-b {nnunet}." in line
    with pytest.raises(InputError, match="label maps that each hold a liver and lesions"):
        analyze(image=ct, segs=[monai, nnunet])
    # one at a time each is measured (the nnU-Net one with its dataset.json)
    liver, _ = _phantom()
    rep = analyze_json("--image", str(ct), "--seg", str(nnunet))
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver) * VOXEL_ML, abs=1e-6)
    # chosen together from a study folder (--seg-choice 1,2): refused the same way
    root = _saveimage_study(study, tmp_path / "s")
    (root / "ct_seg.nii.gz").write_bytes(nnunet.read_bytes())
    line = one_line(netlm("analyze", root, "--seg-choice", "1,2", "--json", "-"))
    assert f"{root / 'ct_seg.nii.gz'} and {root / 'ct' / 'ct_seg.nii.gz'}: 2 label maps that each hold" in line


def test_parts_of_one_segmentation_in_two_label_maps_are_measured_together(study, tmp_path):
    # a liver-only map (1) and a lesion-only map (2): parts, not versions; and two identical copies change nothing
    liver, tumour = _phantom()
    write_nifti(tmp_path / "liver_seg.nii.gz", liver.astype(np.uint8), AFF)
    write_nifti(tmp_path / "tumour_seg.nii.gz", (tumour * 2).astype(np.uint8), AFF)
    ct = study / "ct.nii.gz"
    rep = analyze_json(
        "--image", str(ct), "--seg", str(tmp_path / "liver_seg.nii.gz"), "--seg", str(tmp_path / "tumour_seg.nii.gz")
    )
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    (tmp_path / "copy_seg.nii.gz").write_bytes((study / "ct_seg.nii.gz").read_bytes())
    rep = analyze_json(
        "--image", str(ct), "--seg", str(study / "ct_seg.nii.gz"), "--seg", str(tmp_path / "copy_seg.nii.gz")
    )
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)


def test_monai_outputs_are_only_stem_underscore_postfix_volumes_in_the_stems_folder(tmp_path):
    """SaveImage's <stem>/<stem>_<postfix>: a volume named so in another folder, a subfolder of <stem>/, an empty
    postfix and a file named <stem> beside the folder are not MONAI outputs (file names written here)."""
    from netlm_imaging.io.monai_layout import monai_outputs

    (tmp_path / "ct").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "ct" / "ct_old.nii.gz").mkdir()  # a folder, not a volume
    for name in (
        "ct/ct_seg.nii.gz",
        "ct/ct_.nii.gz",
        "ct/ct_a.nii.gz",
        "ct/ct_trans.nrrd",
        "other/ct_seg.nii.gz",
        "ct.nii.gz",
    ):
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in monai_outputs(tmp_path, tmp_path / "ct.nii.gz")] == [
        "ct/ct_a.nii.gz",
        "ct/ct_seg.nii.gz",
        "ct/ct_trans.nrrd",
    ]

"""Probability (soft) maps passed as role masks, as nnU-Net, MONAI and TotalSegmentator users save them.

A sigmoid or softmax channel saved as NIfTI (``--seg lesion=tumour_prob.nii.gz``) is nonzero almost
everywhere: read as ``value != 0`` the whole image was one lesion (194.40 mL and 100 % involvement
for a 0.972 mL tumour), silently. A float mask of 0.0 / 1.0 and an integer lesion map numbering each
lesion stay masks. Truths: voxel counts of the boxes placed here x |det(affine)|.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import analyze_json, oblique_affine
from phantoms import write_nifti
from test_faults_messages import netlm, one_line

AFF = oblique_affine(spacing=(1.5, 1.5, 3.0))
SHAPE = (40, 36, 20)
VOXEL_ML = 1.5 * 1.5 * 3.0 / 1000
LIVER = (slice(5, 35), slice(5, 30), slice(3, 15))  # 30 x 25 x 12 = 9000 voxels
TUMOUR = (slice(10, 16), slice(10, 16), slice(5, 9))  # 6 x 6 x 4 = 144 voxels
OTHER = (slice(24, 28), slice(18, 22), slice(9, 12))  # 4 x 4 x 3 = 48 voxels


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("soft")
    write_nifti(d / "ct.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    liver = np.zeros(SHAPE, np.uint8)
    liver[LIVER] = 1
    write_nifti(d / "liver.nii.gz", liver, AFF)
    return d


def _soft(d, name, background: tuple[float, float], inside: float):
    rng = np.random.default_rng(12)
    p = rng.uniform(*background, SHAPE).astype(np.float32)
    p[TUMOUR] = inside
    return write_nifti(d / name, p, AFF)


@pytest.mark.parametrize("role", ["lesion", "liver"])
def test_a_probability_map_as_a_role_mask_is_refused_naming_the_threshold(study, role):
    prob = _soft(study, f"{role}_prob.nii.gz", (1e-6, 1e-3), 0.95)
    segs = ["--seg", f"liver={study / 'liver.nii.gz'}"] if role == "lesion" else []
    line = one_line(netlm("analyze", "--image", study / "ct.nii.gz", *segs, "--seg", f"{role}={prob}", "--json", "-"))
    assert f"{prob}: a {role} mask holds" in line
    n_soft = np.unique(np.asarray(nib.load(prob).dataobj)).size  # every value of the map is soft (none is 0 or 1)
    assert f"{n_soft} non-integer value(s) from 1e-06 to 0.95" in line
    assert "probability >= 0.5" in line
    assert "--labels" not in line  # the label-map reading would refuse the map too


def test_a_soft_mask_of_three_values_is_refused_and_counts_its_one_soft_value(study):
    """A partial-volume lesion mask of 0, 0.5 and 1 (an edge of half voxels): three values, one of them soft.

    Read as value != 0 the half voxels would be counted whole; the refusal counts the soft values, not all.
    """
    soft = np.zeros(SHAPE, np.float32)
    soft[TUMOUR] = 1.0
    soft[OTHER] = 0.5
    path = write_nifti(study / "lesion_pv.nii.gz", soft, AFF)
    liver = f"liver={study / 'liver.nii.gz'}"
    line = one_line(netlm("analyze", "--image", study / "ct.nii.gz", "--seg", liver, "--seg", f"lesion={path}"))
    assert f"{path}: a lesion mask holds 1 non-integer value(s) from 0.5 to 0.5" in line
    assert "probability >= 0.5" in line


def test_float_zero_one_masks_and_an_integer_lesion_map_stay_masks(study):
    tumour = np.zeros(SHAPE, np.float32)
    tumour[TUMOUR] = 1.0
    write_nifti(study / "tumour_float.nii.gz", tumour, AFF)
    numbered = np.zeros(SHAPE, np.uint8)
    numbered[TUMOUR] = 1
    numbered[OTHER] = 2  # one value per lesion, as lesion-instance maps are written
    write_nifti(study / "lesions_numbered.nii.gz", numbered, AFF)
    liver = f"liver={study / 'liver.nii.gz'}"
    rep = analyze_json(
        "--image", str(study / "ct.nii.gz"), "--seg", liver, "--seg", f"lesion={study / 'tumour_float.nii.gz'}"
    )
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, abs=1e-5)
    rep = analyze_json(
        "--image", str(study / "ct.nii.gz"), "--seg", liver, "--seg", f"lesion={study / 'lesions_numbered.nii.gz'}"
    )
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx((144 + 48) * VOXEL_ML, abs=1e-5)
    assert rep["tumor"]["lesion_count"] == 2
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, abs=1e-5)


def _nnunet_output_with_probabilities(folder):
    """nnUNetv2_predict --save_probabilities: case.nii.gz, case.npz, case.pkl, dataset.json, plans.json."""
    import json
    import pickle

    folder.mkdir(parents=True, exist_ok=True)
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 2
    lab[TUMOUR] = 1
    write_nifti(folder / "case_001.nii.gz", lab, AFF)
    labels = {"background": 0, "tumour": 1, "liver": 2}
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels}))
    (folder / "plans.json").write_text(json.dumps({"dataset_name": "Dataset003_Liver"}))
    np.savez_compressed(folder / "case_001.npz", probabilities=np.zeros((3, *SHAPE[::-1]), np.float16))
    (folder / "case_001.pkl").write_bytes(pickle.dumps({"spacing": [3.0, 1.5, 1.5]}))
    write_nifti(folder / "case_001_0000.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    return folder


def test_an_nnunet_output_saved_with_its_probabilities(tmp_path):
    study = _nnunet_output_with_probabilities(tmp_path / "pred")
    rep = analyze_json(str(study))  # the .npz / .pkl / plans.json beside the prediction change nothing
    assert rep["liver"]["volume_ml"] == pytest.approx(9000 * VOXEL_ML, abs=1e-5)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML, abs=1e-5)
    for name in ("case_001.npz", "case_001.pkl"):
        line = one_line(netlm("analyze", "--image", study / "case_001_0000.nii.gz", "--seg", study / name))
        assert f"{study / name}: a .{name.split('.')[1]} file (nnU-Net's softmax probabilities" in line
        assert "pass the prediction it was saved with (case_001.nii.gz)" in line

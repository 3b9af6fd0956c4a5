"""nnU-Net predictions: the label numbering comes from the dataset.json beside the label map.

nnUNetv2_predict copies the dataset's dataset.json into its output folder; without it a model
trained with {"tumour": 1, "liver": 2} would be read with the LiTS numbering (1 liver, 2 lesion)
and its liver taken as tumour. Truths: voxel counts of boxes placed here x |det(affine)|.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import analyze_json, oblique_affine
from phantoms import write_nifti

from netlm_imaging.api import analyze
from netlm_imaging.errors import LabelError
from netlm_imaging.io.discover import discover_study
from netlm_imaging.io.nnunet import labels_from_dataset_json

AFF = oblique_affine(spacing=(1.5, 1.5, 3.0))
SHAPE = (40, 36, 20)
VOXEL_ML = 1.5 * 1.5 * 3.0 / 1000
LIVER_BOX = (slice(5, 35), slice(5, 30), slice(3, 15))  # 30 x 25 x 12 = 9000 voxels
TUMOUR_BOX = (slice(10, 16), slice(10, 16), slice(5, 9))  # 6 x 6 x 4 = 144 voxels


def _prediction(folder, liver_value: int, tumour_value: int, labels: object | None, name="case_001"):
    folder.mkdir(parents=True, exist_ok=True)
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER_BOX] = liver_value
    lab[TUMOUR_BOX] = tumour_value
    write_nifti(folder / f"{name}.nii.gz", lab, AFF)
    if labels is not None:
        (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels}))
    return folder / f"{name}.nii.gz"


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "imagesTs" / "case_001_0000.nii.gz"
    path.parent.mkdir()
    write_nifti(path, np.full(SHAPE, 50, np.int16), AFF)
    return path


def test_swapped_numbering_is_read_from_dataset_json(tmp_path, image):
    pred = _prediction(tmp_path / "pred", 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    rep = analyze(image=image, segs=[pred])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML)
    assert any("nnU-Net dataset.json" in n and "lesion=1,liver=2" in n for n in rep.extra["notes"])
    # without the file, the LiTS default reads the same map the other way round
    (tmp_path / "pred" / "dataset.json").unlink()
    lits = analyze(image=image, segs=[pred])
    assert lits.tumor["intrahepatic_volume_ml"] == pytest.approx((9000 - 144) * VOXEL_ML)


def test_the_users_labels_win(tmp_path, image):
    pred = _prediction(tmp_path / "pred", 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    rep = analyze(image=image, segs=[pred], labels="liver=1,lesion=2")
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx((9000 - 144) * VOXEL_ML)
    assert not any("dataset.json" in n for n in rep.extra.get("notes", []))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"0": "background", "1": "liver", "2": "cancer"}, "liver=1,lesion=2"),  # v1 / MSD Task03_Liver
        ({"background": 0, "liver": 1, "tumor": 2, "hepatic_vessel": 3}, "liver=1,lesion=2,vessel=3"),
        ({"background": 0, "Liver": 1, "Metastases": 2, "Spleen": 3}, "liver=1,lesion=2,spleen=3"),
        ({"background": 0, "liver": 1, "tumor": 2, "cyst": 3, "metastasis": 4}, "liver=1,lesion=2+4,ignore=3"),
        # a model trained on TotalSegmentator's names: the same rules as its --ml label table
        ({"background": 0, "liver": 1, "liver_tumor": 2, "kidney_left": 3}, "liver=1,lesion=2,kidney=3"),
        # v2 with its values as text, as hand-written conversions store them (nnU-Net reads them with int())
        ({"background": "0", "tumour": "1", "liver": "2"}, "lesion=1,liver=2"),
    ],
)
def test_layouts_and_names(tmp_path, labels, expected):
    pred = _prediction(tmp_path, 1, 2, labels)
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    assert found.labels == expected
    if "hepatic_vessel" in labels:
        assert found.note.endswith("vessel=3")  # the hepatic vessels: measured against the lesions


@pytest.mark.parametrize(
    "content",
    [
        {"labels": {"background": 0, "liver": 1, "tumor": 1}},  # one value twice
        {"labels": {"background": 0, "1": "2"}},  # a value as text under a value: neither layout
        {"labels": {"background": 0}},  # no foreground label
        {"name": "no labels key"},
        "not json {",
        "[1, 2]",  # JSON, but not an object
    ],
)
def test_numberings_that_are_not_guessed(tmp_path, image, content):
    pred = _prediction(tmp_path / "pred", 1, 2, None)
    text = content if isinstance(content, str) else json.dumps(content)
    (tmp_path / "pred" / "dataset.json").write_text(text)
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    assert found.labels is None
    assert "LiTS numbering applies unless --labels" in found.note
    rep = analyze(image=image, segs=[pred])  # LiTS: 1 liver, 2 lesion, as the map is written
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)


def test_role_masks_and_dicom_are_not_label_maps(tmp_path):
    pred = _prediction(tmp_path, 1, 2, {"background": 0, "tumour": 1, "liver": 2})
    assert labels_from_dataset_json([f"liver={pred}"]) is None
    assert labels_from_dataset_json([str(tmp_path / "seg.dcm")]) is None
    both = labels_from_dataset_json([f"liver={pred}", str(tmp_path / "seg.dcm"), str(pred)])  # the label map last
    assert both is not None
    assert both.labels == "lesion=1,liver=2"


def test_nnunet_study_folder_pairs_image_and_prediction(tmp_path):
    study = tmp_path / "study"
    _prediction(study, 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    write_nifti(study / "case_001_0000.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    found = discover_study(study)
    assert found.image_path == study / "case_001_0000.nii.gz"
    assert found.segmentation_args == [str(study / "case_001.nii.gz")]
    rep = analyze(study)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)


def test_a_second_input_channel_is_named_as_a_channel_not_as_a_mask(tmp_path):
    # AutoPET-style: case_001_0000 the CT, case_001_0001 the PET; the note offered --seg ROLE=PATH for the PET
    study = tmp_path / "study"
    _prediction(study, 1, 2, {"background": 0, "liver": 1, "tumour": 2})
    write_nifti(study / "case_001_0000.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    write_nifti(study / "case_001_0001.nii.gz", np.full(SHAPE, 2.0, np.float32), AFF)
    found = discover_study(study)
    assert found.image_path == study / "case_001_0000.nii.gz"
    assert found.segmentation_args == [str(study / "case_001.nii.gz")]
    assert not any("--seg ROLE=PATH" in n for n in found.notes)
    assert any(n.startswith("nnU-Net input channel(s) case_001_0001.nii.gz of case_001 not used") for n in found.notes)
    rep = analyze(study)
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)


def test_two_folders_two_dataset_json_files(tmp_path, image):
    # two numberings for one study: the LiTS numbering read a as 1 liver, 2 lesion (swapped) with only a note
    a = _prediction(tmp_path / "a", 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    b = _prediction(tmp_path / "b", 1, 2, {"background": 0, "liver": 1, "tumour": 2}, name="case_002")
    with pytest.raises(LabelError, match=r"give different numberings \(.*a/dataset\.json: lesion=1,liver=2; "):
        labels_from_dataset_json([str(a), str(b)])
    # two copies of one numbering are that numbering
    (tmp_path / "b" / "dataset.json").write_text((tmp_path / "a" / "dataset.json").read_text())
    found = labels_from_dataset_json([str(a), str(b)])
    assert found is not None
    assert found.labels == "lesion=1,liver=2"
    rep = analyze(image=image, segs=[a])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    # two files that cannot be read: nothing is used, as for one
    for f in ("a", "b"):
        (tmp_path / f / "dataset.json").write_text("{")
    found = labels_from_dataset_json([str(a), str(b)])
    assert found is not None
    assert found.labels is None
    assert "several nnU-Net dataset.json files" in found.note


def test_a_slicer_seg_nrrd_carries_its_own_names(tmp_path):
    _prediction(tmp_path, 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    assert labels_from_dataset_json([str(tmp_path / "Segmentation.SEG.NRRD")]) is None
    assert labels_from_dataset_json([str(tmp_path / "case.nrrd")]).labels == "lesion=1,liver=2"


def test_a_decathlon_task_keeps_its_dataset_json_above_labels_tr(tmp_path):
    # Medical Segmentation Decathlon Task08_HepaticVessel (and raw nnU-Net datasets): dataset.json sits beside
    # imagesTr/ and labelsTr/, and its 1 is the vessels, not the liver the LiTS numbering would take it for
    task = tmp_path / "Task08_HepaticVessel"
    (task / "imagesTr").mkdir(parents=True)
    write_nifti(task / "imagesTr" / "hepaticvessel_001.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    pred = _prediction(task / "labelsTr", 1, 2, None, name="hepaticvessel_001")
    labels = {"0": "background", "1": "Vessel", "2": "Tumour"}
    (task / "dataset.json").write_text(json.dumps({"name": "HepaticVessel", "labels": labels}))
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    assert found.labels == "vessel=1,lesion=2"  # measured against the lesion (vascular contact), never liver
    rep = analyze(image=task / "imagesTr" / "hepaticvessel_001.nii.gz", segs=[pred])
    assert rep.liver["volume_ml"] is None  # no liver in this task: the vessels are not taken for it
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)  # lesion-only input
    # a dataset.json two folders up is not looked for
    deeper = _prediction(task / "predictions" / "fold_0", 1, 2, None, name="hepaticvessel_001")
    assert labels_from_dataset_json([str(deeper)]) is None


def test_a_dataset_json_saved_with_a_byte_order_mark(tmp_path, image):
    # a dataset.json edited in a Windows editor starts with a UTF-8 BOM, which json.loads refuses
    pred = _prediction(tmp_path / "pred", 2, 1, None)
    text = json.dumps({"labels": {"background": 0, "tumour": 1, "liver": 2}})
    (tmp_path / "pred" / "dataset.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    rep = analyze(image=image, segs=[pred])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML)


def test_compare_seg_reads_each_prediction_with_its_dataset_json(tmp_path, image):
    """A model trained with {"tumour": 1, "liver": 2} against a LiTS-numbered ground truth: compare-seg reads the
    prediction with the dataset.json beside it, as analyze does, so identical masks give Dice 1 and equal burdens
    (read with the LiTS numbering, the prediction's liver was its tumour: Dice near 0)."""
    from netlm_imaging.verify.segcompare import compare_segmentation_files

    truth = _prediction(tmp_path / "labelsTs", 1, 2, None)
    pred = _prediction(tmp_path / "pred", 2, 1, {"background": 0, "tumour": 1, "liver": 2})
    res = compare_segmentation_files(image, truth, pred)
    assert res.structure("liver").dice == pytest.approx(1.0)
    assert res.structure("lesion").dice == pytest.approx(1.0)
    assert res.burden_a_percent == pytest.approx(100.0 * 144 / 9000)
    assert res.burden_b_percent == pytest.approx(res.burden_a_percent)
    assert any(w.startswith("B: ") and "dataset.json" in w for w in res.warnings)
    # --labels for both sides wins over the file (then B is read the LiTS way, and disagrees)
    forced = compare_segmentation_files(image, truth, pred, labels="liver=1,lesion=2")
    assert forced.structure("lesion").dice < 0.1


def test_a_dataset_json_in_the_folder_above_the_prediction(tmp_path):
    """Predictions saved to <dataset>/imagesTs_pred/ with the dataset.json in <dataset>/: the file was not read and a
    model trained with {"tumour": 1, "liver": 2} was read with the LiTS numbering without a word (tumour 59.78 mL,
    the liver minus the tumour, for 0.972 mL); it is read from the folder above, and the note names it."""
    dataset = tmp_path / "Dataset003_Liver"
    pred = _prediction(dataset / "imagesTs_pred", 2, 1, None)
    write_nifti(dataset / "imagesTs_pred" / "case_001_0000.nii.gz", np.full(SHAPE, 50, np.int16), AFF)
    (dataset / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "tumour": 1, "liver": 2}}))
    rep = analyze(dataset / "imagesTs_pred")  # the study folder: image and prediction found by name
    assert rep.liver["volume_ml"] == pytest.approx(9000 * VOXEL_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    source = dataset / "dataset.json"
    assert any(f"folder above the label map's ({source}): lesion=1,liver=2" in n for n in rep.extra["notes"])
    assert not any("LiTS numbering" in w for w in rep.warnings)
    cli = analyze_json(str(dataset / "imagesTs_pred"))  # as a user runs it
    assert cli["tumor"]["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    assert any(str(source) in n for n in cli["notes"])
    # the file beside the prediction comes first (here the LiTS way round, as the map is not written)
    (dataset / "imagesTs_pred" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1}}))
    assert labels_from_dataset_json([str(pred)]).note.startswith(
        "label numbering from the nnU-Net dataset.json of the label map's folder"
    )


def test_the_lits_numbering_assumed_is_a_warning(tmp_path, image):
    """No dataset.json, no --labels, no label table: the map is read with the LiTS numbering, and the report says so
    (it said nothing: a swapped model reads 59.78 mL of tumour for 0.972 mL with no warning)."""
    pred = _prediction(tmp_path / "pred", 1, 2, None)
    rep = analyze(image=image, segs=[pred])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)
    lits = [w for w in rep.warnings if "read with the LiTS numbering 1 liver, 2 lesion" in w]
    assert len(lits) == 1
    assert lits[0].startswith("pred/case_001.nii.gz: ")  # the file, relative to the study root
    assert "--labels liver=N,lesion=M" in lits[0]
    # with the numbering given (--labels, or a dataset.json) there is nothing assumed
    given = analyze(image=image, segs=[pred], labels="liver=1,lesion=2")
    assert not any("LiTS numbering" in w for w in given.warnings)
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumour": 2}}))
    found = analyze(image=image, segs=[pred])
    assert not any("LiTS numbering" in w for w in found.warnings)
    assert found.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * VOXEL_ML)

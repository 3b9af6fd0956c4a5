"""nnU-Net v2 region-based predictions: what the label map's values mean.

nnUNetv2_predict writes a region-based model's output by placing the i-th value of
``regions_class_order`` wherever the i-th region (the i-th non-background entry of
``labels``) is on, later entries overwriting earlier ones (nnU-Net's
documentation/region_based_training.md). The tests write their maps that way from analytic
regions (an ellipsoid liver, spherical tumours and a vessel tube inside it, on an oblique
grid), so the truth of each volume is the voxel count of the analytic shape x |det(affine)|,
computed here without the code under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, oblique_affine
from phantoms import write_nifti

from netlm_imaging.api import analyze
from netlm_imaging.errors import LabelError
from netlm_imaging.io.nnunet import labels_from_dataset_json

AFF = oblique_affine(spacing=(1.25, 1.5, 2.5), angles_deg=(8.0, -12.0, 25.0))
SHAPE = (48, 44, 26)
VOXEL_ML = abs(float(np.linalg.det(AFF[:3, :3]))) / 1000.0


def _shapes() -> dict[str, np.ndarray]:
    """The analytic structures, in voxel indices: liver ellipsoid, two tumours and a vessel inside it."""
    i, j, k = np.indices(SHAPE, dtype=float)
    liver = ((i - 24) / 19) ** 2 + ((j - 22) / 17) ** 2 + ((k - 13) / 10) ** 2 <= 1.0
    tumour = ((i - 18) ** 2 + (j - 18) ** 2 + ((k - 12) * 1.4) ** 2 <= 4.5**2) | (
        (i - 31) ** 2 + (j - 26) ** 2 + ((k - 15) * 1.4) ** 2 <= 3.2**2
    )
    vessel = ((i - 24) ** 2 + (j - 30) ** 2 <= 1.6**2) & (np.abs(k - 13) <= 7)
    assert not (tumour & ~liver).any()
    assert not (vessel & ~liver).any()
    return {"liver": liver, "tumour": tumour & ~vessel, "vessel": vessel}


SHAPES = _shapes()
LIVER_ML = int(SHAPES["liver"].sum()) * VOXEL_ML
TUMOUR_ML = int(SHAPES["tumour"].sum()) * VOXEL_ML


def _nnunet_write(regions_on: list[np.ndarray], order: list[int]) -> np.ndarray:
    """The label map as nnU-Net's LabelManager writes it from region predictions."""
    seg = np.zeros(SHAPE, np.uint8)
    for on, value in zip(regions_on, order, strict=True):
        seg[on] = value
    return seg


def _prediction(folder, labels: dict, order: list[int] | None, seg: np.ndarray, *, write_order=True):
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(folder / "liver_007.nii.gz", seg, AFF)
    content: dict = {"channel_names": {"0": "CT"}, "labels": labels, "file_ending": ".nii.gz"}
    if order is not None and write_order:
        content["regions_class_order"] = order
    (folder / "dataset.json").write_text(json.dumps(content))  # key order kept, as nnU-Net requires
    return folder / "liver_007.nii.gz"


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "imagesTs" / "liver_007_0000.nii.gz"
    path.parent.mkdir()
    write_nifti(path, np.full(SHAPE, 60, np.int16), AFF)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def _liver_vessel_tumour(tmp_path):
    """Regions liver [1, 2, 3] (all of it), vessel 3 and tumour 2, written in the order [1, 3, 2]."""
    s = SHAPES
    seg = _nnunet_write([s["liver"], s["vessel"], s["tumour"]], [1, 3, 2])
    labels = {"background": 0, "liver": [1, 2, 3], "hepatic_vessel": 3, "tumour": 2}
    return _prediction(tmp_path / "pred", labels, [1, 3, 2], seg)


def test_region_based_liver_holds_its_vessels_and_tumours_on_the_command_line(tmp_path, image):
    # the LiTS numbering refused this map (value 3 has no role); the liver region is all of 1, 2, 3
    pred = _liver_vessel_tumour(tmp_path)
    proc = _cli("--image", str(image), "--seg", str(pred), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, rel=1e-6)
    assert rep["involvement_percent"] == pytest.approx(100 * TUMOUR_ML / LIVER_ML, abs=0.01)
    assert rep["tumor"]["lesion_count"] == 2
    notes = " ".join(rep["notes"])
    assert "region-based nnU-Net dataset.json" in notes
    # the vessel region is the vessel (its voxels stay the liver's, as the liver region names them) and
    # each lesion's gap to it is measured
    assert "liver=1+2+3,vessel=3,lesion=2" in notes
    assert rep["vascular_contact"]["assessed"] is True
    assert sum("vessel_distances_mm" in les for les in rep["lesions"]) == 2


def test_region_based_numbering_that_lits_would_read_swapped(tmp_path, image):
    # tumour 1 and liver [1, 2]: the liver is written first (2), the tumour over it (1)
    s = SHAPES
    seg = _nnunet_write([s["liver"], s["tumour"]], [2, 1])
    pred = _prediction(tmp_path / "pred", {"background": 0, "liver": [1, 2], "tumour": 1}, [2, 1], seg)
    rep = analyze(image=image, segs=[pred])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, rel=1e-6)
    assert rep.tumor["lesion_count"] == 2


def test_regions_class_order_derived_when_each_region_has_a_value_of_its_own(tmp_path, image):
    s = SHAPES
    seg = _nnunet_write([s["liver"], s["tumour"]], [1, 2])
    labels = {"background": 0, "liver": [1, 2], "tumour": 2}
    pred = _prediction(tmp_path / "pred", labels, [1, 2], seg, write_order=False)
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    assert found.labels == "liver=1+2,lesion=2"
    assert "derived" in found.note
    rep = analyze(image=image, segs=[pred])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, rel=1e-6)


def test_one_element_lists_are_plain_values(tmp_path, image):
    # nnU-Net reads "tumour": [1] as 1 (no regions); LiTS would take the tumour for the liver
    seg = np.where(SHAPES["tumour"], 1, np.where(SHAPES["liver"], 2, 0)).astype(np.uint8)
    pred = _prediction(tmp_path / "pred", {"background": 0, "tumour": [1], "liver": [2]}, None, seg)
    rep = analyze(image=image, segs=[pred])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, rel=1e-6)


@pytest.mark.parametrize(
    ("labels", "order", "why"),
    [
        # the tumour is written first, then the liver over it: the map holds no tumour voxel inside the liver
        ({"background": 0, "tumour": 2, "liver": [1, 2]}, [2, 1], "cannot show them"),
        ({"background": 0, "liver": [1, 2], "tumour": [2, 3]}, [1, 2], "overlap without one holding the other"),
        ({"background": 0, "liver": [1, 2], "tumour": [1, 2]}, [1, 2], "name the same values"),
        ({"background": 0, "liver": [1, 2], "tumour": 2}, [1], "not one integer per region"),
        ({"background": 0, "liver": [1, 2], "tumour": 2}, [1, 3], "whose values are 2"),
        # the liver written as 2 would make every liver voxel a tumour voxel
        ({"background": 0, "liver": [1, 2], "tumour": 2}, [2, 2], "whose own value is 1"),
        ({"background": 0, "liver": [1, 2, 3], "tumour": [2, 3]}, None, "several values of its own"),
        ({"background": 0, "spleen": [1, 2], "tumour": 2}, [1, 2], "only a liver region holding"),
    ],
)
def test_undecidable_regions_are_exit_3_and_labels_win(tmp_path, image, labels, order, why):
    s = SHAPES
    seg = _nnunet_write([s["liver"], s["tumour"]], [1, 2])  # the map's values: 1 liver, 2 tumour
    pred = _prediction(tmp_path / "pred", labels, order, seg)
    with pytest.raises(LabelError, match=why):
        labels_from_dataset_json([str(pred)])
    proc = _cli("--image", str(image), "--seg", str(pred), "--out", str(tmp_path / "out"))
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in proc.stderr
    assert "dataset.json" in lines[0]
    assert why in lines[0]
    assert "--labels" in lines[0]
    assert not (tmp_path / "out" / "report.json").exists()
    # --labels always wins: the dataset.json is not read
    rep = analyze(image=image, segs=[pred], labels="liver=1+2,lesion=2")
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, rel=1e-6)


def test_brats_style_nested_tumour_regions_are_one_lesion_role(tmp_path):
    labels = {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3], "enhancing_tumor": 3}
    pred = _prediction(tmp_path / "pred", labels, [1, 2, 3], np.zeros(SHAPE, np.uint8))
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    assert found.labels == "lesion=1+2+3"


def test_couinaud_segment_regions_written_over_their_liver_keep_the_liver(tmp_path, image):
    # liver [1..9] = eight segment regions (one value each) and a tumour region 9; the segments and the
    # tumour are written over the liver, whose role their values keep
    s = SHAPES
    i = np.indices(SHAPE)[0]
    segments = [s["liver"] & (i >= 5 + 5 * n) & (i < 10 + 5 * n) for n in range(8)]
    segments[0] |= s["liver"] & (i < 5)
    segments[7] |= s["liver"] & (i >= 45)
    tumour = s["tumour"] | s["vessel"]  # one tumour region here: the vessel tube is tumour too
    labels = {"background": 0, "liver": list(range(1, 10))}
    labels.update({f"liver_segment_{n}": n for n in range(1, 9)})
    labels["tumour"] = 9
    order = [1, *range(1, 9), 9]
    seg = _nnunet_write([s["liver"], *segments, tumour], order)
    pred = _prediction(tmp_path / "pred", labels, order, seg)
    found = labels_from_dataset_json([str(pred)])
    assert found is not None
    expected = "liver=1+2+3+4+5+6+7+8+9," + ",".join(f"segment{n}={n}" for n in range(1, 9)) + ",lesion=9"
    assert found.labels == expected
    rep = analyze(image=image, segs=[pred])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(int(tumour.sum()) * VOXEL_ML, rel=1e-6)
    assert sorted(x["segment"] for x in rep.segments) == list(range(1, 9))

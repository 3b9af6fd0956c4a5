"""``netlm analyze`` end to end with a user rules file and a clinical sidecar given to ``netlm analyze``.

tests/test_planner.py shows at the ``assess`` level that lowering the 70%
debulking threshold changes the Mahuron type. Here the same constructed
layout is written as NIfTI files (LiTS label map + Couinaud map on an oblique,
anisotropic grid) and goes through the CLI, so the rules file and the sidecar
are shown to reach the report. Truth: lesion A (2x4x17 voxels) in segment 7 and
lesion B (2x4x8) in segment 2; with an 80% FLR rule on the non-tumorous liver
only one of the two segments can go, so the best plan treats A alone:
136 / (136 + 64) = 68% of the tumour volume, 1 of 2 = 50% of the lesions.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from phantoms import write_nifti
from surgical_phantoms import SlabLiver

from netlm_imaging.cli import main

SLICES = {1: 2, 2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5}
NY = NZ = 20
A_SHAPE, B_SHAPE = (2, 4, 17), (2, 4, 8)
BASE_RULES = (
    "[planner]\nallow_enucleation = false\nallow_ablation = false\n"
    '[flr]\ndenominator = "non_tumorous"\n[flr.non_tumorous_threshold_percent]\nnormal = 80.0\n'
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("surgical_cli")
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(7, *A_SHAPE)
    p.add_in_segment(2, *B_SHAPE, y0=10)
    labels = np.where(p.labels > 0, 2, np.where(p.liver, 1, 0)).astype(np.uint8)
    write_nifti(d / "ct.nii.gz", np.where(p.liver, 60, -100).astype(np.int16), p.affine)
    write_nifti(d / "seg.nii.gz", labels, p.affine)
    write_nifti(d / "couinaud.nii.gz", p.seg, p.affine)
    (d / "clin.json").write_text(json.dumps({"symptoms": "hormonal", "liver_condition": "normal"}))
    (d / "base.toml").write_text(BASE_RULES)
    (d / "lowered.toml").write_text(BASE_RULES + "[debulking]\nthreshold_percent = 65.0\n")
    (d / "by_count.toml").write_text(BASE_RULES + '[debulking]\nprimary_measure = "count"\n')
    return d


def _report(study, rules: str, tmp_path) -> dict:
    out = tmp_path / rules
    argv = [
        "analyze", "--image", str(study / "ct.nii.gz"), "--seg", str(study / "seg.nii.gz"),
        "--seg", f"segments={study / 'couinaud.nii.gz'}", "--clinical", str(study / "clin.json"),
        "--rules", str(study / f"{rules}.toml"), "--out", str(out), "--quiet", "--modality", "CT",
    ]  # fmt: skip
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text())


def test_rules_file_threshold_changes_the_reported_mahuron_type(study, tmp_path):
    a, b = math.prod(A_SHAPE), math.prod(B_SHAPE)
    expected = 100.0 * a / (a + b)
    assert expected == pytest.approx(68.0)
    base = _report(study, "base", tmp_path)
    lowered = _report(study, "lowered", tmp_path)
    for rep in (base, lowered):
        c = rep["classification"]
        assert rep["tumor"]["lesion_count"] == 2
        assert c["achievable_debulking_percent"] == pytest.approx(expected)
        assert c["achievable_debulking_count_percent"] == pytest.approx(50.0)  # 1 of the 2 lesions
        assert rep["remnant"]["resection_plan"]["resected_segments"] == [7]
        assert "symptoms" not in c["missing_inputs"]  # the sidecar's symptoms reached the classification
    assert base["classification"]["mahuron_type"] == "3"  # 68% < 70%, hormonal symptoms
    assert lowered["classification"]["mahuron_type"] == "2"  # 68% >= 65%
    assert base["classification"]["rules_version"].endswith("+user:base.toml")
    assert lowered["classification"]["rules_version"].endswith("+user:lowered.toml")


def test_rules_file_can_make_the_count_the_primary_measure(study, tmp_path):
    rep = _report(study, "by_count", tmp_path)
    c = rep["classification"]
    assert c["debulking_measure"] == "count"
    assert c["achievable_debulking_percent"] == pytest.approx(50.0)  # 1 of 2 lesions, below 70%
    assert c["mahuron_type"] == "3"

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


def test_cli_reports_staged_strategies_and_every_no_with_its_reason(tmp_path, capsys):
    """An extended right hepatectomy at sFLR 20.7% in a chemotherapy liver (30%): the console names the
    staged options; the report carries their numbers and stays valid against the shared schema."""
    import jsonschema
    from conftest import shared_schema
    from surgical_phantoms import VOXEL_ML, parenchyma_ml_by_segment, weight_for_telv, zone_mask

    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(10, 16, 2, 16, 2, 16)  # x 10..25: segments 4-8, 409.6 mL, ~14 cm along its diagonal
    small = p.add_in_segment(2, 1, 2, 2, y0=10, z0=10)  # one voxel-thick 2 x 2 lesion in the future remnant
    lesion_vox = p.labels > 0
    nt = {s: float(np.count_nonzero((p.seg == s) & ~lesion_vox)) * VOXEL_ML for s in (1, 2, 3)}
    abl = parenchyma_ml_by_segment(p, zone_mask(p, small.id, 5.0))
    flr_now = sum(nt[s] - abl[s] for s in (1, 2, 3))
    weight = weight_for_telv(flr_now / 0.207, 175.0)
    labels = np.where(p.labels > 0, 2, np.where(p.liver, 1, 0)).astype(np.uint8)
    write_nifti(tmp_path / "ct.nii.gz", np.where(p.liver, 60, -100).astype(np.int16), p.affine)
    write_nifti(tmp_path / "seg.nii.gz", labels, p.affine)
    write_nifti(tmp_path / "couinaud.nii.gz", p.seg, p.affine)
    clin = {
        "grade": 2,
        "ki67_percent": 25.0,
        "height_cm": 175.0,
        "weight_kg": weight,
        "liver_condition": "chemotherapy",
    }
    (tmp_path / "clin.json").write_text(json.dumps(clin))
    out = tmp_path / "out"
    argv = [
        "analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz"),
        "--seg", f"segments={tmp_path / 'couinaud.nii.gz'}", "--clinical", str(tmp_path / "clin.json"),
        "--out", str(out), "--modality", "CT",
    ]  # fmt: skip
    assert main(argv) == 0
    console = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    jsonschema.validate(rep, shared_schema())
    st = rep["classification"]["staged_strategies"]
    assert st["clearing_resection"] == "Extended right hemihepatectomy (right trisectionectomy)"
    # NIfTI stores the affine in float32; voxels exactly 5.0 mm from the lesion stay in its zone (relative tolerance)
    assert st["flr_now_ml"] == pytest.approx(flr_now, abs=1e-6)
    assert st["flr_now_percent"] == pytest.approx(20.7, abs=1e-4)
    assert st["strategies"]["alpps"]["reaches_threshold"] is True
    assert st["strategies"]["portal_vein_embolisation"]["reaches_threshold"] is False
    assert "Staged strategies: clearing needs Extended right hemihepatectomy" in console
    assert "expected to reach it: alpps" in console
    # Ki-67 25% against a reported grade 2: conflict, G3, and the console says why Cloyd is "no"
    assert "Grade conflict" in console
    assert "Cloyd resectable: no (grade=3 not met" in console
    used = rep["classification"]["clinical_inputs_used"]
    assert used["ki67_percent"] == {"value": 25.0, "source": "clinical file clin.json"}

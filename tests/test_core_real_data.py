"""Core measurements on real public files; expected numbers are the measured facts in shared/data/MANIFEST.md."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import shared_schema

from netlm_imaging.api import AnalyzeOptions, analyze
from netlm_imaging.cli import main

TS = ("totalseg_example", "tests", "reference_files")


def test_totalsegmentator_ct_liver_label_5(shared):
    # MANIFEST: liver on example_ct_sm via example_seg.nii.gz: 38,634 voxels = 1043.12 mL, mean 45.3 HU
    rep = analyze(
        image=shared(*TS, "example_ct_sm.nii.gz"),
        segs=[shared(*TS, "example_seg.nii.gz")],
        labels="liver=5",
        options=AnalyzeOptions(modality="CT"),
    )
    assert rep.liver["voxel_count"] == 38634
    assert rep.liver["volume_ml"] == pytest.approx(1043.12, abs=0.005)
    assert rep.liver["mean_intensity"] == pytest.approx(45.3, abs=0.05)
    assert rep.tumor["lesion_count"] == 0
    assert any("not in --labels and were ignored" in w for w in rep.warnings)


def test_totalsegmentator_full_ct_and_mr(shared):
    # MANIFEST: example_seg_fast_force_split on example_ct: 1125.68 mL; MR example_seg_mr: 498.96 mL
    ct = analyze(
        image=shared(*TS, "example_ct.nii.gz"),
        segs=[shared(*TS, "example_seg_fast_force_split.nii.gz")],
        labels="liver=5",
    )
    assert ct.liver["volume_ml"] == pytest.approx(1125.68, abs=0.005)
    mr = analyze(
        image=shared(*TS, "example_mr_sm.nii.gz"), segs=[shared(*TS, "example_seg_mr.nii.gz")], labels="liver=5"
    )
    assert mr.liver["volume_ml"] == pytest.approx(498.96, abs=0.005)


def test_dcmqi_liver_nrrd_on_its_dicom_ct_uses_the_real_slice_step(shared):
    # MANIFEST: 107,098 voxels = 70.362 mL with the 1.0 mm step; SliceThickness 1.25 would give 87.95 mL
    base = ("dcmqi_ct3slice_seg", "data", "segmentations")
    rep = analyze(image=shared(*base, "ct-3slice"), segs=[shared(*base, "liver_seg.nrrd")])
    assert rep.liver["voxel_count"] == 107098
    assert rep.liver["volume_ml"] == pytest.approx(70.362, abs=0.001)
    assert rep.liver["mean_intensity"] == pytest.approx(37.3, abs=0.05)
    assert rep.study["modality"] == "CT"
    assert rep.study["grid"]["spacing_mm"][2] == pytest.approx(1.0)


def test_report_validates_against_the_shared_contract(shared, tmp_path):
    rc = main(
        [
            "analyze",
            "--image",
            str(shared(*TS, "example_ct_sm.nii.gz")),
            "--seg",
            str(shared(*TS, "example_seg.nii.gz")),
            "--labels",
            "liver=5",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "report.json").read_text())
    schema = shared_schema()
    jsonschema.validate(data, schema)
    assert data["method"]["volume"] == "voxel_count"

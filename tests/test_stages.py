"""The staged pipeline (netlm_imaging.stages): one direction, and a report built once.

Expected values come from the demo study's files read with nibabel and scipy (connected
components and their majority Couinaud segment), not from the package.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from netlm_imaging.api import analyze, analyze_with_context

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_data" / "netlm_demo"


def _majority_segment_by_voxel_count() -> dict[int, int]:
    """Lesion voxel count -> the Couinaud segment holding most of it (26-connected lesion components)."""
    lesion = np.asarray(nib.load(DEMO / "seg.nii.gz").dataobj) == 2
    segments = np.asarray(nib.load(DEMO / "couinaud.nii.gz").dataobj)
    labels, n = ndimage.label(lesion, structure=np.ones((3, 3, 3)))
    out = {}
    for lab in range(1, n + 1):
        inside = segments[labels == lab]
        counts = np.bincount(inside[inside > 0], minlength=9)
        if counts.any():
            out[int(inside.size)] = int(np.argmax(counts))
    return out


def test_report_is_immutable() -> None:
    report = analyze(DEMO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.warnings = []  # type: ignore[misc]


def test_classification_is_in_the_report_not_in_the_measurements() -> None:
    """The classify stage's Couinaud segments reach the report's lesions; the measured lesions stay as measured."""
    report, ctx = analyze_with_context(DEMO)
    expected = _majority_segment_by_voxel_count()
    seen = {les["voxel_count"]: les["couinaud_segment"] for les in report.lesions if les["location"] == "intrahepatic"}
    assert seen == expected
    assert len(expected) == 5  # the demo's five intrahepatic lesions (truth.json)
    assert all(les.couinaud_segment is None for les in ctx.lesions)


def test_pacs_source_names_the_study_without_changing_the_analysis(tmp_path: Path) -> None:
    """analyze_retrieved writes the PACS source as image_source into a new report; the numbers are the analysis'."""
    from netlm_imaging.pacs.common import analyze_retrieved

    study = tmp_path / "retrieved"
    shutil.copytree(DEMO, study)
    source = "dicomweb://pacs.example/studies/1.2.3"
    result = analyze_retrieved(study, source, out_dir=tmp_path / "out", push_dir=None, dicom_outputs=False)
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    plain = analyze(study).to_dict()
    assert result.report.study["image_source"] == written["study"]["image_source"] == source
    assert plain["study"]["image_source"] == "ct.nii.gz"
    assert written["study"]["segmentation_sources"] == ["seg.nii.gz", "couinaud.nii.gz"]
    assert {k: v for k, v in written.items() if k != "study"} == {k: v for k, v in plain.items() if k != "study"}


def test_batch_adds_its_sr_note_to_a_new_report(tmp_path: Path) -> None:
    """--sr on a NIfTI study: the study's report stands, with a note saying why no SR was written."""
    from netlm_imaging.batch import BatchOptions, discover_cohort, run_cohort

    cohort = tmp_path / "cohort"
    shutil.copytree(DEMO, cohort / "demo")
    run_cohort(discover_cohort(cohort), tmp_path / "out", options=BatchOptions(sr=True))
    written = json.loads((tmp_path / "out" / "reports" / "demo.json").read_text())
    plain = analyze(cohort / "demo").to_dict()
    assert written["notes"] == [*plain["notes"], written["notes"][-1]]
    assert written["notes"][-1].startswith("no DICOM SR written: the image is not a DICOM series")
    assert not list((tmp_path / "out" / "reports").glob("*.dcm"))
    assert written["lesions"] == plain["lesions"]
    assert written["classification"] == plain["classification"]

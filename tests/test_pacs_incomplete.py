"""A received study whose segmentation names images that did not arrive: the error says the study is incomplete.

The same analysis serves `netlm pacs` (a retrieval that ended early) and `netlm listen` (a sender that
stopped half-way; tests/test_listen_hospital.py runs that through a real Orthanc). Studies: a CT phantom
(tests.dicom_factory) with a liver box spanning slices 2..16 of 20, as a SEG (highdicom) or an RTSTRUCT
(box outlines through the voxel edges); the first 12 slices arrived. The counts in the messages are the
test's own (20 slices written and named by the SEG / RTSTRUCT, 12 kept, 8 absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from netlm_imaging.errors import NetlmError
from netlm_imaging.pacs.common import analyze_retrieved
from netlm_imaging.pacs.completeness import missing_images
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import RoiSpec, SegmentSpec, box_outline, write_rtstruct, write_seg

SHAPE = (24, 22, 20)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -3.0, 9.0), origin=(-40.0, 30.0, 150.0))
BOX = ((3, 20), (4, 18), (2, 17))
KEPT = 12


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("incomplete")
    liver = np.zeros(SHAPE, bool)
    liver[BOX[0][0] : BOX[0][1], BOX[1][0] : BOX[1][1], BOX[2][0] : BOX[2][1]] = True
    hu = np.where(liver, 60.0, -30.0)
    files = write_image_series(base / "ct", hu, AFFINE, seed=77)
    seg = write_seg(base / "liver_seg.dcm", files, [SegmentSpec("Liver", liver)], seed=77)
    rois = [RoiSpec("Liver", [box_outline(AFFINE, BOX, k) for k in range(*BOX[2])])]
    rt = write_rtstruct(base / "liver_rt.dcm", files, rois, seed=77)
    return {"files": files, "seg": seg, "rt": rt, "voxels": int(liver.sum())}


def _study(folder: Path, images: list[Path], segmentation: Path) -> Path:
    folder.mkdir()
    for f in [*images, segmentation]:
        shutil.copy(f, folder / f.name)
    return folder


def test_seg_naming_absent_slices_says_the_study_is_incomplete(written: dict, tmp_path: Path) -> None:
    study = _study(tmp_path / "study", written["files"][:KEPT], written["seg"])
    assert missing_images(study)[0].missing == 20 - KEPT
    with pytest.raises(NetlmError) as err:
        analyze_retrieved(study, "dicom://PACS/studies/1.2.3", out_dir=tmp_path / "out", push_dir=None)
    text = str(err.value)
    assert text.startswith(
        f"the study is incomplete: the SEG liver_seg.dcm names 20 image instance(s), 8 of them not received ({KEPT} "
        "here); retrieve the study again once the PACS holds all of it (the reader said: "
    ), text
    assert "outside the reference image grid" in text  # what the reader saw is kept
    assert not (tmp_path / "out" / "report.json").exists()


def test_rtstruct_naming_absent_slices_says_the_study_is_incomplete(written: dict, tmp_path: Path) -> None:
    study = _study(tmp_path / "study", written["files"][:KEPT], written["rt"])
    with pytest.raises(NetlmError) as err:
        analyze_retrieved(
            study, "dicom://PACS/studies/1.2.3", out_dir=None, push_dir=None, when_incomplete="send the rest"
        )
    assert str(err.value).startswith(  # its referenced series lists all 20 slices (tests.seg_factory)
        f"the study is incomplete: the RTSTRUCT liver_rt.dcm names 20 image instance(s), 8 of them not received "
        f"({KEPT} here); send the rest (the reader said: "
    ), str(err.value)


def test_a_complete_study_is_not_called_incomplete_and_is_measured(written: dict, tmp_path: Path) -> None:
    study = _study(tmp_path / "study", written["files"], written["seg"])
    assert missing_images(study) == []
    result = analyze_retrieved(study, "dicom://PACS/studies/1.2.3", out_dir=None, push_dir=None)
    assert result.report.liver["voxel_count"] == written["voxels"]


def test_slices_absent_where_nothing_is_segmented_still_measure_the_truth(written: dict, tmp_path: Path) -> None:
    """The SEG names 20 images and 2 are absent, beyond the liver: nothing is refused, the liver is whole."""
    study = _study(tmp_path / "study", written["files"][:18], written["seg"])
    assert missing_images(study)[0].missing == 2
    result = analyze_retrieved(study, "dicom://PACS/studies/1.2.3", out_dir=None, push_dir=None)
    assert result.report.liver["voxel_count"] == written["voxels"]


def test_our_own_derived_seg_in_the_study_is_not_named(written: dict, tmp_path: Path) -> None:
    """A PACS holding our derived SEG of the study sends it back with the rest: the error names the reader's
    SEG only (ours is not read as the study's segmentation)."""
    import pydicom
    from pydicom.uid import generate_uid

    from netlm_imaging.creator import CREATOR

    study = _study(tmp_path / "study", written["files"][:KEPT], written["seg"])
    ours = pydicom.dcmread(written["seg"])
    ours.Manufacturer, ours.SOPInstanceUID = CREATOR, generate_uid()
    ours.file_meta.MediaStorageSOPInstanceUID = ours.SOPInstanceUID
    ours.save_as(study / "derived_seg.dcm")
    assert [(m.segmentation, m.missing) for m in missing_images(study)] == [("the SEG liver_seg.dcm", 20 - KEPT)]

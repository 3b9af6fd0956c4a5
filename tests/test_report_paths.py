"""The study folder's name in report texts: replaced where it is a path, never inside numbers or words.

A cohort whose study folders are numbered (``2``, ``17``) analysed from the cohort folder
(``netlm analyze 2``) had every token "2" of the report replaced by "study folder": the console
read "ablate study folder lesion(s)", "BSA 1.97study folder m²", "grade=study folder", and a
folder named ``C`` turned every "[C]" source tag into "[study folder]".
"""

from __future__ import annotations

import json
from pathlib import Path

from netlm_imaging.cli import main
from netlm_imaging.report.paths import relative_paths
from tests.test_batch import write_study


def test_numbered_study_folder_leaves_the_numbers_of_the_report_alone(tmp_path, monkeypatch, capsys):
    truth = write_study(tmp_path / "2", 0)  # n = 0: two lesions
    assert truth["lesion_count"] == 2
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "2", "--out", "out"]) == 0
    console = capsys.readouterr().out
    rep = json.loads(Path("out/report.json").read_text())
    text = json.dumps(rep)
    assert "study folder" not in text
    assert "study folder" not in console
    assert "in 2 lesion(s)" in console  # the console's tumour line, 2 = the lesions written
    assert rep["study"]["image_source"] == "image.nii.gz"
    assert rep["study"]["segmentation_sources"] == ["seg.nii.gz"]


def test_bare_names_are_replaced_as_paths_only():
    root = Path("2")
    out = relative_paths(
        {"warnings": ["2/seg.nii.gz: resampled", "ablate 2 lesion(s); 132 sets; BSA 1.92 m2", "3/3 = 100%"]}, root
    )
    assert out["warnings"] == ["seg.nii.gz: resampled", "ablate 2 lesion(s); 132 sets; BSA 1.92 m2", "3/3 = 100%"]
    tag = relative_paths({"notes": ["cut-off [C]", "C/ct.nii.gz: x"]}, Path("C"))
    assert tag["notes"] == ["cut-off [C]", "ct.nii.gz: x"]


def test_identifier_folder_names_are_still_replaced():
    out = relative_paths(
        {"warnings": ["DOE_JOHN_MRN12345678: two series", "DOE_JOHN_MRN12345678/ct: gap"]}, Path("DOE_JOHN_MRN12345678")
    )
    assert out["warnings"] == ["study folder: two series", "ct: gap"]
    absolute = relative_paths({"warnings": ["/data/p2/ct: gap; /mnt/data/p2x kept"]}, Path("/data/p2"))
    assert absolute["warnings"] == ["ct: gap; /mnt/data/p2x kept"]

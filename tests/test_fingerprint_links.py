"""The --resume fingerprint follows folders linked into a study (a series assembled with ``ln -s``),
so editing a file behind the link re-analyses the study; a link cycle is walked once."""

from __future__ import annotations

import os

from netlm_imaging.batch.fingerprint import study_files, study_fingerprint


def test_a_file_edited_behind_a_linked_folder_changes_the_fingerprint(tmp_path):
    real = tmp_path / "pacs_export" / "seg"
    real.mkdir(parents=True)
    (real / "seg.dcm").write_bytes(b"first version")
    study = tmp_path / "study"
    study.mkdir()
    (study / "ct.nii.gz").write_bytes(b"image")
    os.symlink(real, study / "seg", target_is_directory=True)
    os.symlink(study, study / "loop", target_is_directory=True)  # a cycle back to the study itself
    assert [p.relative_to(study).as_posix() for p in study_files(study)] == ["ct.nii.gz", "seg/seg.dcm"]
    before = study_fingerprint(study, {}, tool_version="t")
    (real / "seg.dcm").write_bytes(b"edited version")
    assert study_fingerprint(study, {}, tool_version="t") != before

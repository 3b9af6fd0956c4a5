"""Identifiers through names (issue 16 item 9): report paths relative to the study folder, --pseudonymize.

The study folders are named after a made-up patient ("DOE_JOHN_MRN12345678"), as PACS exports often are.
Every byte written to the output folder is searched for the name and the MRN.
"""

from __future__ import annotations

import json
import shutil
import stat

import numpy as np
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.batch.pseudonym import pseudonym
from netlm_imaging.cli import main
from tests.test_batch import read_rows, without_run_columns, write_study

SHAPE = (16, 14, 6)
AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
NAMES = ("DOE_JOHN_MRN12345678", "ROE_JANE_MRN87654321")
SECRETS = ("DOE", "JOHN", "12345678", "ROE", "JANE", "87654321")


def _leaks(folder) -> list[str]:
    hits = []
    for p in folder.rglob("*"):
        text = p.name + (p.read_bytes().decode("latin-1") if p.is_file() else "")
        hits += [f"{p.name}: {s}" for s in SECRETS if s in text]
    return hits


def test_report_paths_are_relative_to_the_study_folder(tmp_path):
    liver = np.zeros(SHAPE, bool)
    liver[3:13, 3:11, 1:5] = True
    study = tmp_path / NAMES[0]
    ct = write_image_series(study / "ct", np.where(liver, 60.0, -50.0), AFF, seed=5)
    write_seg(study / "seg.dcm", ct, [SegmentSpec("Liver", liver)])
    sorted((study / "ct").iterdir())[3].unlink()  # a gap: the resampling warning names the series folder
    out = tmp_path / "out"
    assert main(["analyze", str(study), "--out", str(out), "--allow-resample", "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["study"]["image_source"] in (".", "ct")
    assert rep["study"]["segmentation_sources"] == ["seg.dcm"]
    assert any("missing slice" in w for w in rep["warnings"])
    assert _leaks(out) == []


@pytest.fixture
def named_cohort(tmp_path):
    root = tmp_path / "cohort"
    for n, name in enumerate(NAMES):
        write_study(root / name, n)
    (root / NAMES[1] / "seg.nii.gz").write_bytes(b"not a gzip file")  # its error message names a file
    return root


def test_without_pseudonymize_folder_names_are_echoed(named_cohort, tmp_path):
    out = tmp_path / "out"
    assert main(["batch", str(named_cohort), "--out", str(out), "--quiet"]) == 4
    assert [r["study_id"] for r in read_rows(out / "cohort.csv")] == sorted(NAMES)  # as the README says


def test_pseudonymize_leaks_no_folder_name_and_keeps_the_key_apart(named_cohort, tmp_path):
    out = tmp_path / "out"
    assert main(["batch", str(named_cohort), "--out", str(out), "--pseudonymize", "--html", "--quiet"]) == 4
    assert _leaks(out) == []
    key_path = tmp_path / "out.pseudonym-key.json"
    key = json.loads(key_path.read_text())
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert sorted(key["studies"].values()) == sorted(NAMES)
    rows = read_rows(out / "cohort.csv")
    for r in rows:  # the pseudonym is HMAC-SHA256(secret, folder name), recomputed here
        assert r["study_id"] == pseudonym(key["secret"], key["studies"][r["study_id"]])
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["error"].startswith(f"{failed['study_id']}/seg.nii.gz: ")
    # stable: a resumed run with the same key gives the same ids and does no work
    first = (out / "cohort.csv").read_text()
    assert main(["batch", str(named_cohort), "--out", str(out), "--pseudonymize", "--html", "--resume", "--quiet"]) == 4
    assert without_run_columns(out / "cohort.csv") == "\n".join(
        ",".join(line.split(",")[:-2]) for line in first.splitlines()
    )
    assert [r["resumed"] for r in read_rows(out / "cohort.csv") if r["status"] == "ok"] == ["true"]
    # another key file, other pseudonyms
    other = tmp_path / "elsewhere" / "key.json"
    out2 = tmp_path / "out2"
    assert main(["batch", str(named_cohort), "--out", str(out2), "--pseudonymize", "--pseudonym-key", str(other)]) == 4
    assert {r["study_id"] for r in read_rows(out2 / "cohort.csv")}.isdisjoint({r["study_id"] for r in rows})


def test_pseudonym_key_inside_out_is_refused(named_cohort, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["batch", str(named_cohort), "--out", str(out), "--pseudonymize", "--pseudonym-key", str(out / "k")])
    assert code == 2
    assert "keep the key outside --out" in capsys.readouterr().err
    shutil.rmtree(out, ignore_errors=True)


def test_a_study_folder_named_like_a_word_leaves_the_words_of_the_messages(tmp_path, monkeypatch):
    # `netlm analyze c` (a folder of TotalSegmentator's liver_vessels output): the folder's relative spelling "c"
    # was replaced wherever it ended a word, "lesions are assumed to be hepatic" read "... hepatistudy folder"
    import nibabel as nib

    shape = (20, 18, 12)
    aff_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ oblique_affine(spacing=(0.8, 0.9, 2.0))
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    tumour = ((i - 10) ** 2 + (j - 9) ** 2 + (k - 6) ** 2) <= 9
    study = tmp_path / "c"
    study.mkdir()
    nib.save(nib.Nifti1Image(np.full(shape, 40, np.int16), aff_ras), study / "ct.nii.gz")
    nib.save(nib.Nifti1Image(tumour.astype(np.uint8), aff_ras), study / "liver_tumor.nii.gz")
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "c", "--out", "out", "--quiet"]) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(int(tumour.sum()) * 0.8 * 0.9 * 2.0 / 1000)
    (no_liver,) = [w for w in rep["warnings"] if w.startswith("no liver mask")]
    assert no_liver.endswith("lesions are assumed to be hepatic")
    assert not any("study folder" in t for t in rep["warnings"] + rep["notes"])

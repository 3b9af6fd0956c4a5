"""``netlm batch`` over folders and files whose names are not UTF-8 (a zip made on Windows, unpacked on Linux).

Python keeps such bytes as lone surrogates; they once stopped the whole batch with an internal
error (the study id's length check, the fingerprint's file line, cohort.csv's error column).
The truth of the measured study comes from its label map's voxel counts (tests/test_batch.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from netlm_imaging.cli import main
from tests.test_batch import write_study

LATIN1 = b"pat\xe9"  # "paté" as Windows-1252 wrote it: not UTF-8
REPLACED = "pat\ufffd"


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "cohort"
    root.mkdir()
    truth = write_study(root / _name(LATIN1 + b"_ok"), 2)
    write_study(root / _name(LATIN1 + b"_noseg"), 3)
    (root / _name(LATIN1 + b"_noseg") / "seg.nii.gz").unlink()
    # a study holding a stray file whose name is not UTF-8, and a label map named so
    other = write_study(root / "s01", 1)
    (root / "s01" / _name(b"notes \xe9t\xe9.txt")).write_bytes(b"x")
    os.rename(root / "s01" / "seg.nii.gz", root / "s01" / _name(b"seg\xe9.nii.gz"))
    manifest = {"image": "image.nii.gz", "segmentations": [_name(b"seg\xe9.nii.gz")]}
    (root / "s01" / "netlm.json").write_text(json.dumps(manifest))
    return root, {f"{REPLACED}_ok": truth, "s01": other}


def _rows(out: Path) -> dict[str, dict[str, str]]:
    text = (out / "cohort.csv").read_bytes().decode("utf-8")  # strict: the table is UTF-8
    return {r["study_id"]: r for r in csv.DictReader(io.StringIO(text))}


def test_names_that_are_not_utf8_are_studies_with_readable_ids(cohort: tuple[Path, dict], tmp_path: Path) -> None:
    root, truths = cohort
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 4
    rows = _rows(out)
    assert set(rows) == {f"{REPLACED}_ok", f"{REPLACED}_noseg", "s01"}
    for sid, truth in truths.items():
        assert rows[sid]["status"] == "ok", rows[sid]["error"]
        assert float(rows[sid]["liver_volume_ml"]) == pytest.approx(truth["liver_volume_ml"], rel=1e-4)
        assert float(rows[sid]["intrahepatic_tumor_ml"]) == pytest.approx(truth["intrahepatic_tumor_ml"], rel=1e-4)
        # the report is strict UTF-8 JSON: no lone surrogate escaped into it
        text = (out / "reports" / f"{sid}.json").read_bytes().decode("utf-8")
        assert "\\udc" not in text
    noseg = rows[f"{REPLACED}_noseg"]
    assert noseg["status"] == "failed"
    assert f"{REPLACED}_noseg" in noseg["error"]
    assert "internal error" not in noseg["error"]
    assert json.loads((out / "reports" / "s01.json").read_text("utf-8"))["study"]["segmentation_sources"] == [
        "seg\ufffd.nii.gz"
    ]
    # the same names give the same ids and fingerprints: --resume analyses nothing again
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--resume"]) == 4
    again = _rows(out)
    assert {r["resumed"] for r in again.values()} == {"true"}
    assert {k: r["fingerprint"] for k, r in again.items()} == {k: r["fingerprint"] for k, r in rows.items()}

"""Cohort tables: lesions.csv (one row per lesion), PET / classification columns, DataFrames; batch --sr.

Truth: the NIfTI phantoms of tests/test_batch.py (lesion spheres, volumes from
voxel counts) and the DICOM CT + SEG phantom of tests/test_sr.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from netlm_imaging.api import analyze
from netlm_imaging.cli import main
from netlm_imaging.report.tables import LESION_COLUMNS
from tests.dicom_tools import assert_dciodvfy_clean
from tests.test_batch import write_study
from tests.test_sr import VOXEL_ML, phantom_masks, write_phantom_study


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("tables")
    cohort = root / "cohort"
    truths = {f"n{n}": write_study(cohort / f"n{n}", n) for n in (0, 1)}  # NIfTI: 2 and 1 lesions
    d = write_phantom_study(root / "dicom_src", seed=3)
    (cohort / "d0").mkdir()
    shutil.copytree(d["ct"], cohort / "d0" / "ct")
    shutil.copy(d["seg"], cohort / "d0" / "seg.dcm")
    out = root / "out"
    code = main(["batch", str(cohort), "--out", str(out), "--sr", "--quiet"])
    return {"root": root, "cohort": cohort, "out": out, "code": code, "truths": truths, "dicom": d}


def test_batch_sr_skips_nifti_studies_with_a_note_and_keeps_their_reports(cohort: dict) -> None:
    assert cohort["code"] == 0  # no study failed
    out = cohort["out"]
    rows = {r["study_id"]: r for r in _rows(out / "cohort.csv")}
    assert {k: v["status"] for k, v in rows.items()} == {"n0": "ok", "n1": "ok", "d0": "ok"}
    for sid in ("n0", "n1"):
        report = json.loads((out / "reports" / f"{sid}.json").read_text())
        assert any("no DICOM SR" in n for n in report["notes"])
        assert not (out / "reports" / f"{sid}.sr.dcm").exists()
        assert float(rows[sid]["liver_volume_ml"]) == pytest.approx(cohort["truths"][sid]["liver_volume_ml"])
    # the DICOM study has its SR and the derived SEG it references, both valid
    for suffix in (".sr.dcm", ".seg.dcm"):
        assert_dciodvfy_clean(out / "reports" / f"d0{suffix}")


def test_lesions_csv_has_one_row_per_lesion_with_phantom_volumes(cohort: dict) -> None:
    out = cohort["out"]
    text = (out / "lesions.csv").read_text()
    assert text.splitlines()[0].split(",") == list(LESION_COLUMNS)
    rows = _rows(out / "lesions.csv")
    by_study: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_study.setdefault(r["study_id"], []).append(r)
    assert {k: len(v) for k, v in by_study.items()} == {"n0": 2, "n1": 1, "d0": 2}
    _, spheres = phantom_masks()
    truth = sorted(int(s.sum()) * VOXEL_ML for s in spheres)
    assert sorted(float(r["volume_ml"]) for r in by_study["d0"]) == pytest.approx(truth, rel=1e-6)
    import pydicom

    uid = str(pydicom.dcmread(cohort["dicom"]["files"][0], stop_before_pixels=True).StudyInstanceUID)
    assert {r["study_instance_uid"] for r in by_study["d0"]} == {uid}
    for r in rows:
        assert r["location"] in ("intrahepatic", "extrahepatic")
        assert float(r["max_3d_diameter_mm"]) >= float(r["longest_axial_diameter_mm"]) - 1e-9
        assert r["suv_max"] == ""  # no PET in this cohort: empty, not zero
    # the intrahepatic lesion volumes of a study add up to its tumour volume in cohort.csv
    cohort_rows = {r["study_id"]: r for r in _rows(out / "cohort.csv")}
    for sid, les in by_study.items():
        total = sum(float(r["volume_ml"]) for r in les if r["location"] == "intrahepatic")
        assert total == pytest.approx(float(cohort_rows[sid]["intrahepatic_tumor_ml"]), rel=1e-6)


def test_cohort_csv_has_pet_and_classification_columns(cohort: dict) -> None:
    header = (cohort["out"] / "cohort.csv").read_text().splitlines()[0].split(",")
    for col in ("pet_suv_max", "pet_sretv_ml", "pet_tlsre", "pet_liver_suv_mean", "mahuron_type", "rules_version"):
        assert col in header
    rows = {r["study_id"]: r for r in _rows(cohort["out"] / "cohort.csv")}
    assert rows["n0"]["pet_sretv_ml"] == ""  # no PET: empty


def test_report_frames(cohort: dict) -> None:
    pd = pytest.importorskip("pandas")
    report = analyze(cohort["cohort"] / "n0")
    frame = report.lesions_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(LESION_COLUMNS)
    assert len(frame) == 2
    assert frame["volume_ml"].sum() == pytest.approx(cohort["truths"]["n0"]["intrahepatic_tumor_ml"])
    one = report.to_frame()
    assert len(one) == 1
    assert one["liver_volume_ml"].iloc[0] == pytest.approx(cohort["truths"]["n0"]["liver_volume_ml"])
    assert pd.isna(one["pet_sretv_ml"].iloc[0])


def test_pet_columns_come_from_the_report_pet_fields() -> None:
    from netlm_imaging.report.tables import lesion_rows, study_numbers

    report = {
        "study": {"study_instance_uid": "1.2.3", "modality": "CT"},
        "lesions": [{"id": 1, "location": "intrahepatic", "volume_ml": 2.0, "suv_max": 9.5, "suv_peak": 7.0}],
        "pet": {"suv_type": "SUVbw", "sretv_ml": 12.5, "tlsre": 80.0, "liver_suv_mean": 5.5},
        "classification": {"missing_inputs": ["ki67_percent", "symptoms"]},
    }
    nums = study_numbers(report)
    assert (nums["pet_sretv_ml"], nums["pet_tlsre"], nums["pet_liver_suv_mean"]) == (12.5, 80.0, 5.5)
    assert nums["classification_missing_inputs"] == "ki67_percent;symptoms"
    (row,) = lesion_rows(report, "s1")
    assert (row["suv_max"], row["suv_peak"], row["suv_mean"]) == (9.5, 7.0, None)


def test_batch_errors_suggest_only_batch_options(tmp_path: Path) -> None:
    """A study's error names options of `netlm batch` (or says `netlm analyze --x`), never a bare foreign flag."""
    import re

    from netlm_imaging.cli import _get_parser

    cohort = tmp_path / "cohort"
    d = write_phantom_study(cohort / "two", seed=41)  # two candidate SEG objects: --seg-choice (batch has it)
    other = write_phantom_study(tmp_path / "scratch", seed=41)
    shutil.copy(other["seg"], cohort / "two" / "seg" / "seg2.dcm")
    write_phantom_study(cohort / "noseg", seed=42)
    shutil.rmtree(cohort / "noseg" / "seg")  # no segmentation: the message offers analyze's --image/--seg
    out = tmp_path / "out"
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 4
    rows = {r["study_id"]: r for r in _rows(out / "cohort.csv")}
    sub = next(a for a in _get_parser()._actions if a.dest == "command")
    accepted = set(sub.choices["batch"]._option_string_actions)
    for sid in ("two", "noseg"):
        error = rows[sid]["error"]
        assert rows[sid]["status"] == "failed"
        bare = set(re.findall(r"(?<![\w`-])--[a-z][a-z0-9-]*", error.replace("`netlm analyze --", "`")))
        assert bare <= accepted, (sid, error)
    assert "--seg-choice" in rows["two"]["error"]
    assert "`netlm analyze --image`" in rows["noseg"]["error"]
    # and the option it suggests works in batch
    out2 = tmp_path / "out2"
    shutil.rmtree(cohort / "noseg")
    assert main(["batch", str(cohort), "--out", str(out2), "--quiet", "--seg-choice", "1"]) == 0
    row = _rows(out2 / "cohort.csv")[0]
    assert float(row["liver_volume_ml"]) == pytest.approx(d["truth"]["liver_volume_ml"], rel=1e-4)

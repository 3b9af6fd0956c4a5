"""``netlm batch`` with a per-study PET half-life: the clinical ``pet_half_life_s`` of a cohort row or sidecar.

Two 68Ga-DOTATATE PET studies (pydicom series via ``tests/pet_factory.py`` on an oblique, anisotropic grid,
a DICOM SEG of liver and lesion on them): ``good`` carries the Ga-68 half-life, ``f18hl`` F-18's 6586.2 s
though its header names Ga-68 (an export fault the SUV refuses since 4bd1bc6). Its cohort row states the
half-life (``67.83 min``, clinical_rules.md 7.2). The expected SUVmax is the QIBA formula written out in
tests/test_suv_half_life.py (``suv``), from the activity written, weight, dose and the 3600 s uptake.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import oblique_affine
from pet_factory import write_pet_series
from phantoms import sphere_mask
from seg_factory import SegmentSpec, write_seg
from test_suv_half_life import F18_T, GA68_T, suv

from netlm_imaging.cli import main

AFFINE = oblique_affine(spacing=(4.0, 3.5, 4.5), angles_deg=(6.0, -4.0, 12.0), origin=(-45.0, -40.0, -35.0))
SHAPE = (24, 26, 18)
# Bq/mL written exactly (slope 1): background, liver, lesion; each study its own lesion uptake
BACKGROUND, LIVER = 1000.0, 6000.0
LESION = {"good": 24000.0, "f18hl": 18000.0}


def _centre() -> np.ndarray:
    return (AFFINE @ np.array([(SHAPE[0] - 1) / 2, (SHAPE[1] - 1) / 2, (SHAPE[2] - 1) / 2, 1.0]))[:3]


def _pet_study(folder, lesion_bqml: float, header_half_life_s: float) -> None:
    """A PET-only study: the PET series and a SEG (liver, lesion) on it."""
    c = _centre()
    liver = sphere_mask(SHAPE, AFFINE, tuple(c), 30.0)
    lesion = sphere_mask(SHAPE, AFFINE, tuple(c + np.array([5.0, 4.0, 3.0])), 10.0)
    act = np.full(SHAPE, BACKGROUND)
    act[liver] = LIVER
    act[lesion] = lesion_bqml
    files = write_pet_series(folder / "pet", act, AFFINE, slopes=[1.0] * SHAPE[2], half_life_s=header_half_life_s)
    write_seg(folder / "seg.dcm", files, [SegmentSpec("Liver", liver), SegmentSpec("Lesion", lesion & liver)])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("pet_half_life_cohort")
    _pet_study(root / "good", LESION["good"], GA68_T)
    _pet_study(root / "f18hl", LESION["f18hl"], F18_T)
    return root


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "study_id", "pet_half_life_s"])
        w.writerows(rows)
    return path


def _report(out, study):
    return json.loads((out / "reports" / f"{study}.json").read_text())


def _cohort_rows(out):
    with open(out / "cohort.csv", newline="") as f:
        return {r["study_id"]: r for r in csv.DictReader(f)}


def _suv_facts(rep):
    """The SUV inputs of a report (``pet.suv_inputs``)."""
    return rep["pet"]["suv_inputs"]


def test_the_cohort_row_states_the_half_life_of_one_study(cohort, tmp_path):
    # before: no per-study key; the F-18 half-life on the Ga-68 study failed it (exit 4) with no remedy
    rows = [[cohort / "good", "good", ""], [cohort / "f18hl", "f18hl", "67.83 min"]]
    table = _write_csv(tmp_path / "cohort.csv", rows)
    out = tmp_path / "out"
    assert main(["batch", str(table), "--out", str(out), "--quiet"]) == 0
    rows = _cohort_rows(out)
    assert {s: rows[s]["status"] for s in rows} == {"good": "ok", "f18hl": "ok"}, rows
    for study in ("good", "f18hl"):
        rep = _report(out, study)
        (lesion,) = rep["lesions"]
        assert lesion["suv_max"] == pytest.approx(float(suv(LESION[study], GA68_T)), rel=1e-4), study
    good, fixed = _suv_facts(_report(out, "good")), _suv_facts(_report(out, "f18hl"))
    assert good["half_life_s"] == pytest.approx(GA68_T)
    assert good["half_life_source"] == "header (0018,1075)"
    assert fixed["half_life_s"] == pytest.approx(67.83 * 60.0)
    assert fixed["half_life_source"] == "user (pet_half_life_s of the cohort row of study f18hl)"
    # the header's value would have given 0.79 x the SUV: the remedy is what made the difference
    assert float(suv(1.0, F18_T) / suv(1.0, GA68_T)) == pytest.approx(0.7912, abs=1e-4)


def test_a_batch_wide_half_life_contradicting_a_studys_own_is_refused_for_that_study(cohort, tmp_path):
    table = _write_csv(tmp_path / "cohort.csv", [[cohort / "good", "good", ""], [cohort / "f18hl", "f18hl", "4069.8"]])
    out = tmp_path / "out"
    assert main(["batch", str(table), "--out", str(out), "--quiet", "--pet-half-life", str(F18_T)]) == 4
    rows = _cohort_rows(out)
    assert rows["f18hl"]["status"] == "failed"
    for needle in ("'pet_half_life_s' 4069.8 s contradicts --pet-half-life 6586.2 s", "cohort row of study f18hl"):
        assert needle in rows["f18hl"]["error"], rows["f18hl"]["error"]
    # the option holds for every study without its own value (the user says F-18: believed, with a warning)
    (lesion,) = _report(out, "good")["lesions"]
    assert lesion["suv_max"] == pytest.approx(float(suv(LESION["good"], F18_T)), rel=1e-4)


def test_without_a_stated_half_life_the_failed_row_says_how_batch_states_it(cohort, tmp_path):
    table = _write_csv(tmp_path / "cohort.csv", [[cohort / "good", "good", ""], [cohort / "f18hl", "f18hl", ""]])
    out = tmp_path / "out"
    assert main(["batch", str(table), "--out", str(out), "--quiet"]) == 4
    error = _cohort_rows(out)["f18hl"]["error"]
    assert "contradicts the radionuclide Ga-68" in error, error
    assert error.endswith(
        "or pass --pet-half-life 4069.8 if the tracer is Ga-68 (--pet-half-life 6586.2 if it is F-18) (for every "
        "study; for this one study: the clinical pet_half_life_s of its cohort row or sidecar)"
    ), error


@pytest.mark.parametrize("cell", ["-5", "0", "inf", "an hour", "4069.8 fortnights"])
def test_a_half_life_cell_that_is_no_duration_stops_the_batch_naming_the_file_and_field(cohort, tmp_path, capsys, cell):
    table = _write_csv(tmp_path / "cohort.csv", [[cohort / "good", "good", ""], [cohort / "f18hl", "f18hl", cell]])
    out = tmp_path / "out"
    assert main(["batch", str(table), "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(table) in err, err
    assert "'pet_half_life_s'" in err, err
    assert not (out / "reports").exists() or not any((out / "reports").iterdir())


def test_a_sidecar_half_life_is_read_and_a_bad_one_is_exit_3(cohort, tmp_path, capsys):
    import shutil

    study = tmp_path / "f18hl"
    shutil.copytree(cohort / "f18hl", study)
    (study / "clinical.json").write_text('{"pet_half_life_s": 0}')
    assert main(["analyze", str(study), "--out", str(tmp_path / "bad"), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "clinical.json" in err, err
    assert "'pet_half_life_s'" in err, err
    (study / "clinical.json").write_text('{"pet_half_life_s": 4069.8}')
    assert main(["analyze", str(study), "--out", str(tmp_path / "ok"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert rep["lesions"][0]["suv_max"] == pytest.approx(float(suv(LESION["f18hl"], GA68_T)), rel=1e-4)
    assert _suv_facts(rep)["half_life_source"] == "user (pet_half_life_s of the clinical file clinical.json)"

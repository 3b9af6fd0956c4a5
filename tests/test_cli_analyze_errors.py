"""The bad-input contract of ``netlm analyze`` end to end, in a subprocess.

Issues 3, 4 and 5 list inputs that must end with exit code 3, exactly one line
on stderr naming the file and the fix, no traceback and no report. The reader
modules test each rejection with ``pytest.raises``; here the same inputs go
through ``python -m netlm_imaging.cli analyze`` on a synthetic CT + SEG study
(oblique, anisotropic, shuffled file names) written with the test factories.
The runs are started together (a few at a time) and checked one by one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import ROOT, oblique_affine
from dicom_factory import deterministic_uid, write_image_series
from pet_factory import write_pet_series
from seg_factory import SegmentSpec, write_seg

SEED = 5
SHAPE = (16, 14, 6)
CT_AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
PET_AFF = oblique_affine(spacing=(3.0, 3.0, 6.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
PARALLEL = 3


def _liver() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[3:13, 3:11, 1:5] = True
    return m


def _ct_files(study: Path) -> list[Path]:
    """CT files of a study copy in slice order (by position along the normal)."""
    files = list((study / "ct").iterdir())
    normal = np.cross(CT_AFF[:3, 0], CT_AFF[:3, 1])
    return sorted(
        files, key=lambda f: float(np.dot(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient, normal))
    )


def _copy(base: Path, root: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(base, d)
    return d


def _pet(d: Path, **kw) -> Path:
    for_uid = deterministic_uid("for", SEED)  # the CT's frame of reference (dicom_factory default)
    values = np.full((8, 7, 3), 5000.0)
    write_pet_series(d / "pet", values, PET_AFF, frame_of_reference_uid=for_uid, seed=SEED + 1, **kw)
    return d / "pet"


# Each case builds its study under root from the base study and returns (argv, strings the error line must hold).
def _truncated_pixels(base, root):
    d = _copy(base, root, "truncated_pixels")
    f = _ct_files(d)[2]
    f.write_bytes(f.read_bytes()[:-100])
    return [d], [str(f), "pixel data is truncated", "re-export the series"]


def _truncated_header(base, root):
    d = _copy(base, root, "truncated_header")
    f = _ct_files(d)[3]
    f.write_bytes(f.read_bytes()[:300])
    return [d], [str(f), "truncated or corrupt", "re-export the series"]


def _zero_byte(base, root):
    d = _copy(base, root, "zero_byte")
    (d / "ct" / "IM0007").write_bytes(b"")
    return [d], [str(d / "ct" / "IM0007"), "zero-byte file", "re-export the series or delete the file"]


def _seg_of_absent_series(base, root):
    other = write_image_series(root / "elsewhere", np.zeros(SHAPE), CT_AFF, seed=99)
    d = root / "seg_absent"
    shutil.copytree(base / "ct", d / "ct")
    write_seg(d / "seg.dcm", other, [SegmentSpec("Liver", _liver())])
    missing = deterministic_uid("series", 99, "CT")
    return [d], [str(d / "seg.dcm"), f"references image series {missing}", "not in", "--image"]


def _missing_slice(base, root):
    d = _copy(base, root, "missing_slice")
    files = _ct_files(d)
    files[3].unlink()
    return [d], [str(d), "missing slice", files[2].name, files[4].name, "--allow-resample"]


def _two_candidates(base, root):
    d = _copy(base, root, "two_candidates")
    write_seg(d / "seg2.dcm", _ct_files(d), [SegmentSpec("Liver", _liver())], seed=4)
    return [d], [str(d), "2 candidate segmentations", "seg.dcm", "seg2.dcm", "--seg-choice"]


def _pet_without_weight(base, root):
    d = _copy(base, root, "pet_weight")
    pet = _pet(d, weight_kg=None)
    return [d], [str(pet), "Patient's Weight (0010,1030) is missing", "--weight"]


def _pet_without_dose(base, root):
    d = _copy(base, root, "pet_dose")
    pet = _pet(d, dose_bq=None)
    return [d], [str(pet), "Radionuclide Total Dose (0018,1074) is missing", "fix the header"]


def _pet_units(base, root):
    d = _copy(base, root, "pet_units")
    pet = _pet(d, units="CM2ML")
    return [d], [str(pet), "Units (0054,1001) is 'CM2ML'", "Export the series in Bq/mL"]


def _pet_decay_none(base, root):
    d = _copy(base, root, "pet_decay")
    pet = _pet(d, decay_correction="NONE")
    return [d], [str(pet), "NONE and Decay Factor (0054,1321) is missing", "Export a decay-corrected"]


def _pet_option_without_weight(base, root):
    # the PET given with --pet (a folder) instead of found in the study folder
    d = root / "pet_option"
    d.mkdir()
    pet = _pet(d, weight_kg=None)
    return [base, "--pet", pet], [str(pet), "(0010,1030)", "--weight"]


def _pet_ga68_with_f18_half_life(base, root):
    # a 68Ga-DOTATATE export carrying F-18's half-life: every SUV 21 % low if believed
    d = _copy(base, root, "pet_half_life")
    pet = _pet(d, half_life_s=6586.2)
    return [d], [str(pet), "6586.2 s (the half-life of F-18)", "Ga-68", "4069.8 s", "--pet-half-life 4069.8"]


def _clinical_values(base, root):
    clin = root / "clinical_bad.json"
    clin.write_text('{"grade": 4, "symptoms": "hormonal"}')
    return [base, "--clinical", clin], [str(clin), "'grade' has invalid value 4", "allowed: a whole number 1-3"]


def _clinical_sidecar_in_folder(base, root):
    d = _copy(base, root, "clinical_sidecar")
    (d / "clinical.json").write_text('{"height_cm": 20}')
    return [d], [str(d / "clinical.json"), "'height_cm' has invalid value 20.0", "allowed: 100-250 cm"]


def _rules_unknown_key(base, root):
    rules = root / "rules_bad.toml"
    rules.write_text("[debulking]\nthreshhold_percent = 60\n")
    return [base, "--rules", rules], [
        str(rules),
        "unknown rules key 'debulking.threshhold_percent'",
        "known keys",
        "threshold_percent",
    ]


CASES = {
    "truncated_pixel_data": _truncated_pixels,
    "truncated_header": _truncated_header,
    "zero_byte_file": _zero_byte,
    "seg_references_absent_series": _seg_of_absent_series,
    "missing_slice": _missing_slice,
    "two_candidate_segmentations": _two_candidates,
    "pet_units_not_convertible": _pet_units,
    "pet_decay_none_without_factor": _pet_decay_none,
    "pet_half_life_of_another_nuclide": _pet_ga68_with_f18_half_life,
    "clinical_invalid_value": _clinical_values,
    "clinical_sidecar_in_folder": _clinical_sidecar_in_folder,
    "rules_unknown_key": _rules_unknown_key,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    base = root / "base"
    ct = write_image_series(base / "ct", np.where(_liver(), 60.0, -50.0), CT_AFF, seed=SEED, shuffle_names=True)
    write_seg(base / "seg.dcm", ct, [SegmentSpec("Liver", _liver())])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    pending = []
    for name, build in CASES.items():
        args, needles = build(base, root)
        out = root / f"out_{name}"
        argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", *map(str, args), "--out", str(out)]
        pending.append((name, argv, needles, out))
    results, running = {}, []
    while pending or running:
        while pending and len(running) < PARALLEL:
            name, argv, needles, out = pending.pop(0)
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
            running.append((name, proc, needles, out))
        name, proc, needles, out = running.pop(0)
        stdout, stderr = proc.communicate(timeout=180)
        results[name] = (proc.returncode, stdout, stderr, needles, out)
    # the untouched base study is accepted (the failures come from the planted defects)
    ok = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", str(base), "--out", str(root / "ok"), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    return results, ok, root


def test_the_untouched_study_is_accepted(runs):
    _, ok, root = runs
    assert ok.returncode == 0, ok.stderr
    assert (root / "ok" / "report.json").is_file()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_3_with_one_line_naming_file_and_fix(runs, case):
    results, _, _ = runs
    code, stdout, stderr, needles, out = results[case]
    assert code == 3, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    line = lines[0]
    assert line.startswith("netlm: error: ")
    for needle in needles:
        assert needle in line, (needle, line)
    assert not (out / "report.json").exists()
    assert stdout == ""
    for secret in ("Doe", "SECRET-ID-123", "19700101"):  # dicom_factory's identifiers never reach the message
        assert secret not in line


@pytest.mark.parametrize(
    "build", [_pet_without_weight, _pet_option_without_weight, _pet_without_dose], ids=["folder", "option", "dose"]
)
def test_pet_without_weight_is_measured_with_null_suvs_and_the_fix_named(tmp_path, build):
    # no body weight anywhere is not a reason to lose the study: exit 0, every SUV null with the
    # reason, and the warning names the PET series and the fix (--weight)
    import json

    base = tmp_path / "base"
    ct = write_image_series(base / "ct", np.where(_liver(), 60.0, -50.0), CT_AFF, seed=SEED, shuffle_names=True)
    write_seg(base / "seg.dcm", ct, [SegmentSpec("Liver", _liver())])
    args, needles = build(base, tmp_path)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", *map(str, args), "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "no SUV" in ln)
    for needle in needles:
        assert needle in line, (needle, line)
    rep = json.loads((out / "report.json").read_text())
    assert rep["pet"]["suv_max"] is None
    assert rep["pet"]["liver_suv_mean"] is None
    assert rep["liver"]["volume_ml"] > 0
    what = "injected dose" if build is _pet_without_dose else "body weight"
    assert f"{what} (for SUV)" in rep["classification"]["missing_inputs"]

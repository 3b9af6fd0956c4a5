"""PET header plausibility through the CLI: impossible values exit 3 with the fix, unusual ones warn (issue 14).

Each case writes a real PET DICOM series (pydicom) whose one planted defect is
named in the case; the expected exit code and the words of the message come
from the issue's list (weight 2-350 kg, dose range per nuclide, uptake 5-300
min, SUVmax <= 200) and the rules file, not from the code's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pet_factory import write_pet_series
from phantoms import grid_affine, sphere_mask, write_nifti

from netlm_imaging.errors import InputError
from netlm_imaging.io.pet_plausibility import plausibility_limits

ROOT = Path(__file__).resolve().parents[1]
AFF = grid_affine((4.0, 4.0, 4.0), (-40.0, -40.0, -30.0))
SHAPE = (20, 20, 16)
LIVER = sphere_mask(SHAPE, AFF, (0.0, 0.0, 0.0), 30.0)
LESION = sphere_mask(SHAPE, AFF, (6.0, 4.0, 2.0), 8.0)
DOSE_BQ, WEIGHT_KG, HALF_LIFE_S, DELAY_S = 150e6, 70.0, 4069.8, 3600.0


def bqml(suv: float) -> float:
    """Activity concentration of an SUVbw value for the default headers (QIBA formula solved for A)."""
    return suv * DOSE_BQ * 2 ** (-DELAY_S / HALF_LIFE_S) / (WEIGHT_KG * 1000.0)


def activity(lesion_suv: float = 20.0) -> np.ndarray:
    act = np.full(SHAPE, bqml(1.0))
    act[LIVER] = bqml(5.0)
    act[LESION] = bqml(lesion_suv)
    return act


# name: (write_pet_series keyword changes, lesion SUV, extra CLI args, exit code, words of the message)
CASES = {
    "weight_in_grams": ({"weight_kg": 7200.0}, 20.0, [], 3, ["(0010,1030)", "7200 kg", "--weight"]),
    "weight_fixed_by_option": ({"weight_kg": 7200.0}, 20.0, ["--weight", "70"], 0, []),
    "weight_option_impossible": ({}, 20.0, ["--weight", "500"], 3, ["--weight 500 kg", "fix --weight"]),
    "dose_in_mbq": ({"dose_bq": 150.0}, 20.0, [], 3, ["(0018,1074)", "150 Bq", "Ga-68", "Correct the header"]),
    "uptake_400_min": ({"series_time": "164000"}, 20.0, [], 3, ["uptake time 400.0 min", "(0018,1078)"]),
    "suv_max_300": ({}, 300.0, [], 3, ["SUVmax 300", "above 200", "--weight"]),
    "half_life_in_minutes": ({"half_life_s": 67.83}, 20.0, [], 3, ["(0018,1075)", "67.83", "Ga-68 in minutes"]),
    "unusual_weight_warns": ({"weight_kg": 25.0}, 20.0, [], 0, []),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pet_plausibility")
    seg = write_nifti(root / "labels.nii.gz", np.where(LESION, 2, np.where(LIVER, 1, 0)).astype(np.uint8), AFF)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = {}
    for name, (kw, lesion_suv, extra, _, _) in CASES.items():
        pet = root / name
        write_pet_series(pet, activity(lesion_suv), AFF, slopes=[8.0] * SHAPE[2], **kw)
        argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", "--image", str(pet), "--seg", str(seg)]
        argv += [*extra, "--out", str(root / f"out_{name}"), "--quiet"]
        procs[name] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
    results = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, err, root / f"out_{name}")
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_plausibility_through_the_cli(runs, name):
    code, err, out = runs[name]
    _, _, _, want_code, words = CASES[name]
    assert code == want_code, err
    if want_code == 3:
        assert "Traceback" not in err
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, err
        for w in words:
            assert w in lines[0], (w, lines[0])
        assert str(name) in lines[0]  # names the PET folder
        assert not (out / "report.json").exists()
    else:
        rep = json.loads((out / "report.json").read_text())
        weight = float(CASES[name][0].get("weight_kg", WEIGHT_KG)) if "--weight" not in CASES[name][2] else 70.0
        assert rep["lesions"][0]["suv_max"] == pytest.approx(20.0 * weight / WEIGHT_KG, rel=2e-3)


def test_unusual_weight_is_a_warning(runs):
    _, _, out = runs["unusual_weight_warns"]
    rep = json.loads((out / "report.json").read_text())
    assert any("25 kg is unusual" in w for w in rep["warnings"])


def test_rules_ranges_are_validated():
    assert plausibility_limits({"nuclides": {"Ga-68": {"dose_mbq_range": [1.0, 2.0]}}})["nuclides"]["Ga-68"][
        "dose_mbq_range"
    ] == [1.0, 2.0]
    with pytest.raises(InputError, match=r"weight_kg_range = \[5, 1\] must be \[low, high\]"):
        plausibility_limits({"weight_kg_range": [5, 1]})


def test_pet_image_without_weight_is_measured_with_null_suvs(tmp_path):
    # the PET itself is the image and lost PatientWeight: volumes are measured, SUVs null with the reason
    pet = tmp_path / "pet_no_weight"
    write_pet_series(pet, activity(), AFF, slopes=[8.0] * SHAPE[2], weight_kg=None)
    seg = write_nifti(tmp_path / "labels.nii.gz", np.where(LESION, 2, np.where(LIVER, 1, 0)).astype(np.uint8), AFF)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", "--image", str(pet), "--seg", str(seg)]
    proc = subprocess.run([*argv, "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(LIVER) * 64.0 / 1000.0, rel=1e-6)
    assert rep["lesions"][0]["suv_max"] is None
    assert rep["pet"]["suv_max"] is None
    assert "Patient's Weight (0010,1030) is missing" in rep["pet"]["suv_missing_inputs"][0]
    assert "no SUV: body weight unknown" in proc.stderr

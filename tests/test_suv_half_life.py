"""A PET header whose Radionuclide Half Life contradicts the radionuclide it names (the F-18 half-life on a
68Ga-DOTATATE series, a known export fault).

Series are written with pydicom (``tests/pet_factory.py``) on an oblique, anisotropic grid with known Bq/mL
values, dose, weight and times (injection 10:00:00, series 11:00:00: 3600 s); the expected SUVs are the QIBA
formula written out here with the half-lives of clinical_rules.md 7.2 (Ga-68 67.83 min) and F-18 109.77 min.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from pet_factory import write_pet_series
from rules_coverage import covers, user_rules

from netlm_imaging.errors import DicomError, InputError
from netlm_imaging.io.pet import load_suv_volume
from netlm_imaging.io.pet_plausibility import plausibility_limits

AFFINE = oblique_affine(spacing=(3.0, 3.5, 4.0), angles_deg=(8.0, -5.0, 15.0), origin=(-40.0, 25.0, 300.0))
SLOPES = [0.5, 2.0, 0.25, 1.0]
WEIGHT_KG, DOSE_BQ, UPTAKE_S = 70.0, 150e6, 3600.0
GA68_T = 67.83 * 60.0  # clinical_rules.md 7.2 (Kuzmenko 2019)
F18_T = 109.77 * 60.0


def suv(values, half_life_s, weight_kg=WEIGHT_KG, dose_bq=DOSE_BQ, uptake_s=UPTAKE_S):
    """QIBA SUVbw: value x weight (g) / (dose x 2^(-uptake / half-life))."""
    return np.asarray(values, dtype=np.float64) * weight_kg * 1000.0 / (dose_bq * 2.0 ** (-uptake_s / half_life_s))


def activity(seed=7):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 20000, size=(6, 5, 4)).astype(np.float64) * np.asarray(SLOPES)[None, None, :]


# the three ways a header says Ga-68: the CID 4020 code, a radiopharmaceutical naming the nuclide, the ligand alone
GA68_HEADERS = {
    "code": {"nuclide": "Ga-68", "radiopharmaceutical": "PET tracer"},
    "named": {"nuclide": None, "radiopharmaceutical": "Ga68-DOTATATE"},
    "ligand": {"nuclide": None, "radiopharmaceutical": "DOTATATE"},
}


@pytest.mark.parametrize("how", list(GA68_HEADERS))
def test_a_ga68_series_with_the_f18_half_life_is_refused_naming_both_values_and_the_fix(tmp_path, how):
    # before: used with a warning, every SUV 0.79 x the right one (21 % low at 60 min)
    folder = tmp_path / how
    write_pet_series(folder, activity(), AFFINE, slopes=SLOPES, half_life_s=F18_T, **GA68_HEADERS[how])
    with pytest.raises(DicomError) as err:
        load_suv_volume(folder)
    message = str(err.value)
    for needle in (str(folder), "6586.2 s", "the half-life of F-18", "Ga-68", "4069.8 s", "--pet-half-life 4069.8"):
        assert needle in message, (needle, message)


def test_the_stated_half_life_gives_the_ga68_suv_and_says_so(tmp_path):
    a = activity()
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, half_life_s=F18_T)
    vol = load_suv_volume(tmp_path / "p", half_life_s=GA68_T)
    np.testing.assert_allclose(vol.array, suv(a, GA68_T), rtol=2e-6)
    # the size of the export fault, from the formula alone: F-18's half-life gives 0.79 x the SUV
    assert suv(1.0, F18_T) / suv(1.0, GA68_T) == pytest.approx(0.7912, abs=1e-4)
    facts = vol.meta["suv"]
    assert facts["half_life_s"] == pytest.approx(GA68_T)
    assert facts["half_life_source"] == "user (--pet-half-life)"
    assert any("--pet-half-life, not Radionuclide Half Life (0018,1075) 6586.2 s" in w for w in vol.meta["warnings"])


def test_a_stated_half_life_that_contradicts_the_nuclide_is_used_with_a_warning(tmp_path):
    # the user says F-18 (the code was the wrong half): believed, and the contradiction named
    a = activity()
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, half_life_s=F18_T)
    vol = load_suv_volume(tmp_path / "p", half_life_s=F18_T)
    np.testing.assert_allclose(vol.array, suv(a, F18_T), rtol=2e-6)
    assert any("is not the half-life of Ga-68" in w for w in vol.meta["warnings"])


def test_with_decay_correction_admin_the_contradiction_is_a_warning(tmp_path):
    # values corrected to the injection: SUV = value x weight / dose, whatever the half-life
    a = activity()
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, half_life_s=F18_T, decay_correction="ADMIN")
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, a * WEIGHT_KG * 1000.0 / DOSE_BQ, rtol=2e-6)
    assert any("contradicts the radionuclide Ga-68" in w and "ADMIN" in w for w in vol.meta["warnings"])


def test_a_half_life_one_percent_off_is_used_with_a_warning(tmp_path):
    a = activity()
    written = GA68_T * 1.01
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, half_life_s=written)
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, suv(a, written), rtol=2e-6)
    assert vol.meta["suv"]["half_life_source"] == "header (0018,1075)"
    assert any("disagrees with Ga-68 (4069.8 s) by 1.0 %" in w for w in vol.meta["warnings"])


@covers("pet_plausibility.half_life_refuse_fraction")
def test_the_refusal_level_is_the_rules_files(tmp_path):
    a = activity()
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, half_life_s=F18_T)
    with pytest.raises(DicomError, match="contradicts the radionuclide Ga-68"):
        load_suv_volume(tmp_path / "p", plausibility=user_rules(tmp_path)["pet_plausibility"])
    lenient = user_rules(tmp_path, {"pet_plausibility.half_life_refuse_fraction": 0.7})  # F-18 is 62 % off
    vol = load_suv_volume(tmp_path / "p", plausibility=lenient["pet_plausibility"])
    np.testing.assert_allclose(vol.array, suv(a, F18_T), rtol=2e-6)
    assert any("disagrees with Ga-68 (4069.8 s) by 61.8 %" in w for w in vol.meta["warnings"])
    with pytest.raises(InputError, match="must be below half_life_refuse_fraction"):
        plausibility_limits({"half_life_refuse_fraction": 0.004})


@covers("pet_plausibility.half_life_warn_fraction")
def test_the_warning_level_is_the_rules_files(tmp_path):
    write_pet_series(tmp_path / "p", activity(), AFFINE, slopes=SLOPES, half_life_s=GA68_T * 1.01)

    def warned(rules):
        vol = load_suv_volume(tmp_path / "p", plausibility=rules["pet_plausibility"])
        return any("disagrees with Ga-68" in w for w in vol.meta["warnings"])

    assert warned(user_rules(tmp_path))
    assert not warned(user_rules(tmp_path, {"pet_plausibility.half_life_warn_fraction": 0.015}))
    with pytest.raises(InputError, match=r"half_life_warn_fraction = -0\.1 must be positive"):
        plausibility_limits({"half_life_warn_fraction": -0.1})


def test_analyze_with_the_stated_half_life_reports_the_suv_inputs_it_used(tmp_path):
    # a CT + liver SEG study with a uniform 5000 Bq/mL Ga-68 PET exported with F-18's half-life, through the
    # CLI with --pet-half-life and --weight: the liver SUVmean is the Ga-68 value and pet.suv_inputs says
    # which half-life, dose, uptake time and weight it used, and whose they were
    import json
    import subprocess
    import sys

    import jsonschema
    from conftest import ROOT, analyze_json
    from dicom_factory import deterministic_uid, write_image_series
    from seg_factory import SegmentSpec, write_seg

    ct_aff = oblique_affine(spacing=(2.0, 2.0, 4.0), angles_deg=(10.0, 0.0, 6.0), origin=(-40.0, -36.0, 100.0))
    liver = np.zeros((40, 36, 16), bool)
    liver[5:35, 4:32, 2:14] = True
    ct = write_image_series(tmp_path / "study" / "ct", np.where(liver, 60.0, -50.0), ct_aff, seed=5)
    write_seg(tmp_path / "study" / "seg.dcm", ct, [SegmentSpec("Liver", liver)])
    pet_aff = oblique_affine(spacing=(4.0, 4.0, 6.0), angles_deg=(10.0, 0.0, 6.0), origin=(-44.0, -40.0, 94.0))
    write_pet_series(
        tmp_path / "pet",
        np.full((24, 22, 14), 5000.0),
        pet_aff,
        half_life_s=F18_T,
        frame_of_reference_uid=deterministic_uid("for", 5),
        seed=6,
    )
    args = [str(tmp_path / "study"), "--pet", str(tmp_path / "pet"), "--weight", "72"]
    refused = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--json", "-"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert refused.returncode == 3, refused.stderr
    assert "--pet-half-life 4069.8" in refused.stderr
    # analyze's own ways to state it: the option, or the clinical file (not a batch's cohort row)
    assert refused.stderr.strip().endswith("(or give it as pet_half_life_s in the clinical file)"), refused.stderr
    rep = analyze_json(*args, "--pet-half-life", "4069.8")
    pet = rep["pet"]
    expected = float(suv(5000.0, GA68_T, weight_kg=72.0))  # 4.4309; F-18's half-life gives 3.5055
    assert pet["liver_suv_mean"] == pytest.approx(expected, abs=6e-4)  # the report's rounding
    inputs = pet["suv_inputs"]
    assert inputs["half_life_s"] == pytest.approx(GA68_T)
    assert inputs["half_life_source"] == "user (--pet-half-life)"
    assert inputs["injected_dose_bq"] == pytest.approx(DOSE_BQ)
    assert inputs["injected_dose_source"] == "header (0018,1074)"
    assert inputs["decay_time_s"] == pytest.approx(UPTAKE_S)
    assert inputs["decay_time_source"].startswith("header")
    assert inputs["decayed_dose_bq"] == pytest.approx(DOSE_BQ * 2.0 ** (-UPTAKE_S / GA68_T), rel=1e-9)
    assert inputs["weight_kg"] == 72.0
    assert inputs["weight_source"] == "user (--weight)"
    schema = json.loads((ROOT / "netlm_imaging" / "report" / "report.schema.json").read_text())
    jsonschema.validate(rep, schema)
    # the header's half-life and weight, when nobody overrides them, are named as the header's
    write_pet_series(
        tmp_path / "pet2",
        np.full((24, 22, 14), 5000.0),
        pet_aff,
        frame_of_reference_uid=deterministic_uid("for", 5),
        seed=7,
    )
    plain = analyze_json(str(tmp_path / "study"), "--pet", str(tmp_path / "pet2"))["pet"]["suv_inputs"]
    assert plain["half_life_source"] == "header (0018,1075)"
    assert plain["weight_source"] == "header (0010,1030)"
    assert plain["weight_kg"] == 70.0
    assert plain["half_life_s"] == pytest.approx(GA68_T)


@pytest.mark.parametrize("bad", [-5.0, 0.0, float("nan")])
def test_a_half_life_option_that_is_no_duration_is_a_usage_error(bad):
    from netlm_imaging.errors import UsageError
    from netlm_imaging.stages.options import AnalyzeOptions

    with pytest.raises(UsageError, match="--pet-half-life"):
        AnalyzeOptions.of({"pet_half_life_s": bad})

"""The SUV inputs (weight, half-life, where each came from) carried as one SuvInputs through the PET readers.

The refusal texts are the ones ``load_suv_volume(..., weight_kg=-5)`` and ``suv_conversion`` gave before
the inputs were one object (a weight was checked only deep in the conversion); the SUVs are the QIBA
formula written out here with the values written into the files.
"""

from __future__ import annotations

import glob

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from pet_factory import write_pet_series

from netlm_imaging.errors import InputError
from netlm_imaging.io.pet import load_suv_volume, suv_from_modality_volume
from netlm_imaging.io.suv import suv_conversion
from netlm_imaging.io.suv_inputs import SuvInputs

SHAPE = (5, 4, 3)
AFFINE = oblique_affine(spacing=(3.0, 3.5, 4.0), angles_deg=(8.0, -5.0, 15.0), origin=(-40.0, 25.0, 300.0))
WEIGHT_KG = 70.0  # pet_factory's PatientWeight
DOSE_BQ = 150e6  # pet_factory's Radionuclide Total Dose
DELAY_S = 3600.0  # pet_factory's injection 10:00:00, series 11:00:00
GA68_T = 4069.8
#: What the API said for a weight of -5 kg before SuvInputs, after the series it names.
WEIGHT_REFUSAL = "--weight -5 kg is not a positive body weight; fix --weight."


@pytest.fixture
def pet(tmp_path):
    rng = np.random.default_rng(11)
    values = rng.integers(100, 20000, size=SHAPE).astype(np.float64)
    write_pet_series(tmp_path / "pet", values, AFFINE, weight_kg=WEIGHT_KG, dose_bq=DOSE_BQ, half_life_s=GA68_T)
    return tmp_path / "pet", values


def _headers(folder):
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(glob.glob(str(folder / "*.dcm")))]


def test_a_negative_weight_gives_the_refusal_the_api_gave(pet):
    folder, _ = pet
    with pytest.raises(InputError) as direct:
        SuvInputs(weight_kg=-5)
    assert str(direct.value) == WEIGHT_REFUSAL
    with pytest.raises(InputError) as api:
        load_suv_volume(folder, weight_kg=-5)
    assert str(api.value) == f"{folder}: {WEIGHT_REFUSAL}"
    with pytest.raises(InputError) as conv:
        suv_conversion(_headers(folder), source="p", weight_kg=-5)
    assert str(conv.value) == f"p: {WEIGHT_REFUSAL}"  # suv_conversion's text, unchanged
    for exc in (direct, api, conv):
        assert "\n" not in str(exc.value)


def test_the_refusal_names_where_the_weight_came_from():
    with pytest.raises(InputError) as info:
        SuvInputs(weight_kg=0.0, weight_source="the clinical file's weight_kg")
    assert str(info.value) == (
        "the clinical file's weight_kg 0.0 kg is not a positive body weight; fix the clinical file's weight_kg."
    )
    with pytest.raises(InputError, match=r"--weight nan kg"):
        SuvInputs(weight_kg=float("nan"))


@pytest.mark.parametrize("half_life_s", [0.0, -1.0, float("nan")])
def test_a_half_life_not_above_0_is_refused(pet, half_life_s):
    """Before SuvInputs these reached the decay correction: ZeroDivisionError (0) or OverflowError (-1)."""
    folder, _ = pet
    with pytest.raises(InputError, match=r"--pet-half-life .* s is not a positive radionuclide half-life") as info:
        load_suv_volume(folder, half_life_s=half_life_s)
    assert str(info.value).startswith(f"{folder}: --pet-half-life {half_life_s!r} s")
    assert "\n" not in str(info.value)


def test_suv_inputs_give_the_suv_the_keywords_give(pet):
    folder, values = pet
    given = SuvInputs(weight_kg=80.0, half_life_s=GA68_T, weight_source="the clinical file's weight_kg")
    by_object = load_suv_volume(folder, suv_inputs=given)
    by_keywords = load_suv_volume(folder, weight_kg=80.0, half_life_s=GA68_T, weight_source=given.weight_source)
    expected = values * 80.0 * 1000.0 / (DOSE_BQ * 2.0 ** (-DELAY_S / GA68_T))
    np.testing.assert_allclose(by_object.array, expected, rtol=2e-6)
    np.testing.assert_array_equal(by_object.array, by_keywords.array)
    assert by_object.meta["suv"] == by_keywords.meta["suv"]
    assert by_object.meta["suv"]["weight_source"] == "user (the clinical file's weight_kg)"
    assert by_object.meta["suv"]["half_life_source"] == "user (--pet-half-life)"


def test_require_weight_travels_in_the_inputs(tmp_path):
    write_pet_series(tmp_path / "p", np.full(SHAPE, 500.0), AFFINE, weight_kg=None)
    with pytest.raises(InputError, match=r"Patient's Weight \(0010,1030\) is missing"):
        load_suv_volume(tmp_path / "p", suv_inputs=SuvInputs())
    vol = load_suv_volume(tmp_path / "p", suv_inputs=SuvInputs(require_weight=False))
    assert vol.meta["units"] == "BQML"
    np.testing.assert_allclose(vol.array, 500.0)  # BQML START without a weight: the Bq/mL as written


def test_inputs_and_keywords_together_are_refused(pet):
    folder, _ = pet
    from netlm_imaging.io.dicom_series import read_dicom_series

    vol = read_dicom_series(folder)
    with pytest.raises(TypeError, match=r"not both \(weight_kg\)"):
        suv_from_modality_volume(vol, suv_inputs=SuvInputs(weight_kg=80.0), weight_kg=80.0)
    same = suv_from_modality_volume(vol, suv_inputs=SuvInputs(weight_kg=80.0), weight_source="--weight")
    assert same.meta["suv"]["weight_kg"] == 80.0  # a keyword left at its default is no conflict

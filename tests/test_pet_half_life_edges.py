"""The branches of io/pet_half_life.resolve_half_life that the CLI tests do not reach.

The reference half-lives are the evaluated values cited in clinical_rules.md 7.2 (Ga-68 67.83 min =
4069.8 s, F-18 109.77 min = 6586.2 s), written here, not read from the module; the warn / refuse
fractions are the shipped rules' ``pet_plausibility`` values (0.5 % and 2 %).
"""

from __future__ import annotations

import pydicom
import pytest

from netlm_imaging.errors import DicomError
from netlm_imaging.io.pet_half_life import resolve_half_life
from netlm_imaging.rules_data import default_section

GA68_S = 67.83 * 60.0
F18_S = 109.77 * 60.0
LIMITS = default_section("pet_plausibility")


def _info(half_life: str | None) -> pydicom.Dataset:
    info = pydicom.Dataset()
    if half_life is not None:
        info.RadionuclideHalfLife = half_life
    return info


def _resolve(half_life, nuclide="Ga-68", **kw):
    warnings: list[str] = []
    out = resolve_half_life(_info(half_life), nuclide, limits=LIMITS, source="pet", warnings=warnings, **kw)
    return out, warnings


def test_the_shipped_fractions():
    assert (LIMITS["half_life_warn_fraction"], LIMITS["half_life_refuse_fraction"]) == (0.005, 0.02)


@pytest.mark.parametrize(("written", "unit"), [("67.71", "minutes"), (f"{67.71 / 60:.4f}", "hours")])
def test_the_half_life_in_minutes_or_hours_is_refused_with_the_value_in_seconds(written, unit):
    # the older 67.71 min (0.18 % from 67.83 min, inside the 2 %) written in minutes or hours
    with pytest.raises(DicomError, match=f"is {written}, the half-life of Ga-68 in {unit} \\(4069.8 s\\)"):
        _resolve(written)


def test_a_missing_or_zero_half_life_takes_the_nuclides():
    for given in (None, "0"):
        (value, source), warnings = _resolve(given)
        assert (value, source) == (pytest.approx(GA68_S), "reference value for Ga-68")
        assert warnings == ["Radionuclide Half Life (0018,1075) missing; used 4069.8 s for Ga-68"]
    with pytest.raises(DicomError, match="missing and the radionuclide is unknown"):
        _resolve(None, nuclide=None)


def test_without_a_nuclide_the_header_is_used_unchecked():
    (value, source), warnings = _resolve("4000", nuclide=None)
    assert (value, source) == (4000.0, "header (0018,1075)")
    assert len(warnings) == 1
    assert "used unchecked" in warnings[0]


def test_a_contradiction_names_the_other_nuclide_only_when_it_is_one():
    with pytest.raises(DicomError) as f18:
        _resolve(f"{F18_S:g}")
    apart = round(100 * (F18_S - GA68_S) / GA68_S)  # 62 %
    assert "6586.2 s (the half-life of F-18) contradicts the radionuclide Ga-68" in str(f18.value)
    assert f"({GA68_S:g} s, {apart} % apart)" in str(f18.value)
    assert f"(--pet-half-life {F18_S:g} if it is F-18)" in str(f18.value)
    with pytest.raises(DicomError) as other:
        _resolve("5000")  # 23 % off Ga-68, no nuclide's half-life
    assert "the half-life of" not in str(other.value)
    assert "if it is" not in str(other.value)
    assert "pass --pet-half-life 4069.8 if the tracer is Ga-68" in str(other.value)


def test_admin_decay_correction_only_warns():
    (value, source), warnings = _resolve(f"{F18_S:g}", decay="ADMIN")
    assert (value, source) == (pytest.approx(F18_S), "header (0018,1075)")
    assert len(warnings) == 1
    assert "not used (Decay Correction ADMIN)" in warnings[0]


def test_a_stated_half_life_is_used_and_names_what_it_contradicts():
    (value, source), warnings = _resolve(f"{F18_S:g}", user_half_life_s=GA68_S)
    assert (value, source) == (pytest.approx(GA68_S), "user (--pet-half-life)")
    assert len(warnings) == 1
    assert "not Radionuclide Half Life (0018,1075) 6586.2 s" in warnings[0]
    # 0.1 % from the header and from Ga-68: nothing to say
    assert _resolve(f"{GA68_S:g}", user_half_life_s=GA68_S * 1.001)[1] == []
    # 1 % from the header (above the 0.5 % warning), 1 % from Ga-68 (below the 2 % refusal)
    (_, _), warnings = _resolve(f"{GA68_S:g}", user_half_life_s=GA68_S * 1.01)
    assert len(warnings) == 1
    assert "not Radionuclide Half Life" in warnings[0]
    # F-18's half-life stated for a Ga-68 header without a half-life: the nuclide is contradicted
    (_, source), warnings = _resolve(None, user_half_life_s=F18_S, user_half_life_option="pet_half_life_s")
    assert source == "user (pet_half_life_s)"
    assert warnings == [
        f"pet_half_life_s {F18_S:g} s is not the half-life of Ga-68 (4069.8 s), the radionuclide "
        "the header names: check the radionuclide"
    ]

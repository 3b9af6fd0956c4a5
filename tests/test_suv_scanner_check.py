"""The SUVbw factor against the Philips scanner's own, SUV Scale Factor (7053,1000).

Real headers: calculate-suv's Philips samples (``tests/test_suv_vendor_headers.py``) carry (7053,1000) and
(7053,1009) beside the dose, weight and times; there the scanner's factor and the QIBA one agree to 0.06 %.
Synthetic series are written with pydicom (``tests/pet_factory.py``) on an oblique grid; the scanner
factors planted in them and the expected SUVs are computed here from the QIBA formula (injection 10:00:00,
series 11:00:00, Ga-68 67.83 min, 150 MBq, 70 kg).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from pet_factory import write_pet_series
from rules_coverage import covers, user_rules
from test_suv_vendor_headers import FRAME_TIMES, VENDOR_HEADERS, _header

from netlm_imaging.errors import InputError
from netlm_imaging.io.pet import load_suv_volume
from netlm_imaging.io.pet_plausibility import plausibility_limits
from netlm_imaging.io.suv import suv_conversion

AFFINE = oblique_affine(spacing=(3.0, 3.5, 4.0), angles_deg=(8.0, -5.0, 15.0), origin=(-40.0, 25.0, 300.0))
NK = 4
WEIGHT_KG, DOSE_BQ, UPTAKE_S, GA68_T = 70.0, 150e6, 3600.0, 67.83 * 60.0
#: SUV per Bq/mL by QIBA: weight (g) / (dose decayed over the uptake)
PER_BQML = WEIGHT_KG * 1000.0 / (DOSE_BQ * 2.0 ** (-UPTAKE_S / GA68_T))
CONC = 4.5  # (7053,1009): Bq/mL per count


def activity(seed=5):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 20000, size=(6, 5, NK)).astype(np.float64)


def named(vol_or_conv) -> list[str]:
    warnings = vol_or_conv.meta["warnings"] if hasattr(vol_or_conv, "meta") else vol_or_conv.warnings
    return [w for w in warnings if "Philips SUV Scale Factor (7053,1000)" in w and "disagrees" in w]


@pytest.mark.parametrize("name", ["PHILIPS_BQML", "PHILIPS_CNTS_AND_BQML_SUV"])
def test_real_philips_headers_agree_with_the_computed_factor(name):
    *facts, _ = VENDOR_HEADERS[name]
    header = _header(*facts, FRAME_TIMES[name])
    conv = suv_conversion([header, header], source=name)
    check = conv.scanner_check
    assert check is not None
    assert check["disagreement_fraction"] < 1e-3
    assert not named(conv)


def test_a_bqml_series_whose_scanner_factor_is_decayed_elsewhere_warns_naming_both(tmp_path):
    # the scanner's factor decays the dose over 70 min instead of the header's 60: 10.8 % apart
    a = activity()
    scanner_per_bqml = WEIGHT_KG * 1000.0 / (DOSE_BQ * 2.0 ** (-4200.0 / GA68_T))
    write_pet_series(
        tmp_path / "p", a, AFFINE, philips_suv_scale=[scanner_per_bqml * CONC] * NK, philips_conc_scale=[CONC] * NK
    )
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, a * PER_BQML, rtol=2e-6)  # the computed factor is used
    (warning,) = named(vol)
    assert f"{scanner_per_bqml:.6g}" in warning
    assert f"{PER_BQML:.6g}" in warning
    assert "by 10.8 %" in warning
    check = vol.meta["suv"]["scanner_suv_check"]
    assert check["disagreement_fraction"] == pytest.approx(scanner_per_bqml / PER_BQML - 1.0, rel=1e-6)
    # the same series with the scanner's factor as QIBA gives it: no warning
    write_pet_series(
        tmp_path / "q", a, AFFINE, philips_suv_scale=[PER_BQML * CONC] * NK, philips_conc_scale=[CONC] * NK
    )
    agreeing = load_suv_volume(tmp_path / "q")
    assert not named(agreeing)
    assert agreeing.meta["suv"]["scanner_suv_check"]["disagreement_fraction"] < 1e-6


def test_a_cnts_series_whose_scanner_factor_holds_another_dose_warns_and_keeps_the_scanners(tmp_path):
    # CNTS: the SUV is the scanner's (7053,1000); the header's dose is 20 % above the one inside that factor
    counts = activity(seed=9)
    scanner = CONC * PER_BQML * 1.2
    write_pet_series(
        tmp_path / "p",
        counts,
        AFFINE,
        units="CNTS",
        philips_suv_scale=[scanner] * NK,
        philips_conc_scale=[CONC] * NK,
    )
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, counts * scanner, rtol=2e-6)
    (warning,) = named(vol)
    assert f"{scanner:.6g}" in warning
    assert f"{CONC * PER_BQML:.6g}" in warning
    assert "the SUV uses the Philips factor" in warning


@covers("pet_plausibility.scanner_suv_disagreement_warn")
def test_the_disagreement_level_is_the_rules_files(tmp_path):
    a = activity()
    write_pet_series(
        tmp_path / "p", a, AFFINE, philips_suv_scale=[PER_BQML * CONC * 1.08] * NK, philips_conc_scale=[CONC] * NK
    )

    def warns(rules):
        return bool(named(load_suv_volume(tmp_path / "p", plausibility=rules["pet_plausibility"])))

    assert warns(user_rules(tmp_path))  # 8 % > 5 %
    assert not warns(user_rules(tmp_path, {"pet_plausibility.scanner_suv_disagreement_warn": 0.10}))
    with pytest.raises(InputError, match=r"scanner_suv_disagreement_warn = 0\.0 must be positive"):
        plausibility_limits({"scanner_suv_disagreement_warn": 0.0})


def test_compare_with_scanner_reports_the_slice_that_differs_most():
    """Per-slice factors written here: slice 0 agrees to 1 %, slice 2 differs by 25 %, slice 1 carries no scanner
    factor, slice 3 has no computed factor (0): 2 slices compared, the warning at the 5 % of the rules."""
    from netlm_imaging.io.pet_scanner_check import compare_with_scanner
    from netlm_imaging.rules_data import default_section

    limit = default_section("pet_plausibility")["scanner_suv_disagreement_warn"]
    assert limit == 0.05
    warnings: list[str] = []
    scanner = np.array([1.01e-3, np.nan, 1.25e-3, 1.0e-3])
    computed = np.array([1.0e-3, 1.0e-3, 1.0e-3, 0.0])
    out = compare_with_scanner(scanner, computed, limit=limit, used="the computed factor", facts="f", warnings=warnings)
    assert out == {
        "scanner_suv_factor": pytest.approx(1.25e-3),
        "computed_suv_factor": pytest.approx(1.0e-3),
        "disagreement_fraction": pytest.approx(0.25),
        "slices_compared": 2,
    }
    [text] = warnings
    assert "(7053,1000) 0.00125 disagrees with the SUVbw factor 0.001 computed from the header (f) by 25.0 %" in text
    assert "scanner_suv_disagreement_warn 5 %); the SUV uses the computed factor" in text
    # a factor of exactly 1 is a factor (only 0 and NaN mean "not stored"); 1 % apart: no warning
    warnings.clear()
    out = compare_with_scanner(np.array([1.0]), np.array([1.01]), limit=limit, used="u", facts="f", warnings=warnings)
    assert out is not None
    assert out["slices_compared"] == 1
    assert warnings == []
    assert compare_with_scanner(np.array([0.0]), np.array([1.0]), limit=limit, used="u", facts="f", warnings=[]) is None

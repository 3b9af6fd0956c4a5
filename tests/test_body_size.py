"""classify/body_size.py: BSA, TELV, the standardized FLR and the FLR threshold with its denominator.

Expected values are the closed-form formulas and the thresholds of clinical_rules.md section 6
(the shipped rules file's ``[flr]`` tables: TELV 20 / 30 / 40 % for normal / chemotherapy /
cirrhosis, non-tumorous 25 / - / 40 %), or the values a test writes into a rules file.
"""

from __future__ import annotations

import math

import pytest
from rules_coverage import user_rules

from netlm_imaging.classify.body_size import bsa_m2, flr_basis, standardized, telv_ml
from netlm_imaging.clinical.inputs import ClinicalInputs
from netlm_imaging.errors import InputError


def test_bsa_needs_positive_height_and_weight():
    assert bsa_m2(0.5, 70.0) == pytest.approx(math.sqrt(0.5 * 70.0 / 3600))  # positive is all the formula needs
    assert bsa_m2(175.0, 0.5) == pytest.approx(math.sqrt(175.0 * 0.5 / 3600))
    for height, weight in ((0.0, 70.0), (175.0, 0.0), (-1.0, 70.0)):
        with pytest.raises(InputError, match="BSA needs positive height and weight"):
            bsa_m2(height, weight)


def test_telv_must_be_positive():
    assert telv_ml(2.0, intercept_ml=-1.0, slope_ml_per_m2=1.0) == pytest.approx(1.0)
    with pytest.raises(InputError, match=r"TELV 0\.0 mL from BSA 2\.000"):
        telv_ml(2.0, intercept_ml=-2.0, slope_ml_per_m2=1.0)


def test_standardized_flr():
    row = standardized({"flr_ml": 435.0, "remnant_segments": [1, 2]}, 1740.0)
    assert row == {"flr_ml": 435.0, "remnant_segments": [1, 2], "standardized_flr_percent": 25.0, "telv_ml": 1740.0}
    assert standardized({"flr_ml": 435.0}, None)["standardized_flr_percent"] is None


def _basis(tmp_path, clinical, non_tumorous_ml, changes=None):
    return flr_basis(clinical, {}, user_rules(tmp_path, changes or {}), non_tumorous_ml)


def test_telv_denominator_with_body_size(tmp_path):
    b = _basis(tmp_path, ClinicalInputs(height_cm=175, weight_kg=70, liver_condition="chemotherapy"), 1200.0)
    bsa = math.sqrt(175 * 70 / 3600)
    assert (b.height_cm, b.weight_kg, b.bsa_m2) == (175, 70, pytest.approx(bsa))
    assert b.telv_ml == pytest.approx(-794.41 + 1267.28 * bsa)
    assert (b.liver_condition, b.threshold_percent, b.basis) == ("chemotherapy", 30.0, "telv")
    assert b.denominator_ml == pytest.approx(b.telv_ml)
    assert b.missing_inputs == []
    assert not any("fallback" in r for r in b.rationale)


def test_fallback_to_the_non_tumorous_denominator_uses_its_own_threshold(tmp_path):
    """No height/weight: the non-tumorous denominator with ITS published threshold (here 45 % set by the test)."""
    changes = {"flr.non_tumorous_threshold_percent.cirrhosis": 45.0}
    b = _basis(tmp_path, ClinicalInputs(liver_condition="cirrhosis"), 1000.0, changes)
    assert (b.threshold_percent, b.basis, b.denominator_ml) == (45.0, "non_tumorous", 1000.0)
    assert (b.telv_ml, b.bsa_m2, b.liver_condition) == (None, None, "cirrhosis")
    assert b.missing_inputs == ["height/weight"]
    assert "height/weight unknown: no BSA, TELV or standardized FLR" in b.rationale
    assert any(
        "fallback denominator 'non_tumorous' because 'telv' is missing" in r
        and "(45%, flr.non_tumorous_threshold_percent)" in r
        for r in b.rationale
    )


def test_no_fallback_without_a_sourced_threshold_or_a_volume(tmp_path):
    # chemotherapy has no threshold on the non-tumorous denominator: adequacy stays on TELV, undecidable
    chemo = _basis(tmp_path, ClinicalInputs(liver_condition="chemotherapy"), 1000.0)
    assert (chemo.threshold_percent, chemo.basis, chemo.denominator_ml) == (30.0, "telv", None)
    assert any("no fallback: no sourced FLR threshold for liver condition 'chemotherapy'" in r for r in chemo.rationale)
    # no liver volume either: no fallback and nothing to say about one
    empty = _basis(tmp_path, ClinicalInputs(liver_condition="normal"), None)
    assert (empty.threshold_percent, empty.basis, empty.denominator_ml) == (20.0, "telv", None)
    assert not any("fallback" in r for r in empty.rationale)
    # fallback switched off
    off = _basis(tmp_path, ClinicalInputs(liver_condition="normal"), 1000.0, {"flr.fallback_denominator": "none"})
    assert (off.basis, off.denominator_ml) == ("telv", None)


def test_fallback_to_telv_when_the_non_tumorous_volume_is_missing(tmp_path):
    changes = {"flr.denominator": "non_tumorous", "flr.fallback_denominator": "telv"}
    b = _basis(tmp_path, ClinicalInputs(height_cm=175, weight_kg=70), None, changes)
    assert (b.threshold_percent, b.basis, b.liver_condition) == (20.0, "telv", None)
    assert b.denominator_ml == pytest.approx(-794.41 + 1267.28 * math.sqrt(175 * 70 / 3600))
    assert b.missing_inputs == ["liver_condition"]
    given = "liver condition not given: decided with the normal-liver FLR threshold"
    assert any(r.startswith(given) for r in b.rationale)
    assert any("(20%, flr.threshold_percent)" in r for r in b.rationale)
    # with the non-tumorous volume the rules' own denominator decides (normal: 25 %)
    own = _basis(tmp_path, ClinicalInputs(height_cm=175, weight_kg=70), 900.0, changes)
    assert (own.threshold_percent, own.basis, own.denominator_ml) == (25.0, "non_tumorous", 900.0)

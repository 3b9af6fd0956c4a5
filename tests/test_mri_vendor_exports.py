"""Gadoxetic MRI as vendors export it: agent names, user phase statements the headers contradict,
injections and acquisitions on both sides of midnight, multi-phase and Dixon series, scaling.

Truths: the phantoms of ``mri_factory`` (constant signal per box, box arithmetic in the test),
clock arithmetic done here, and the rules file's own window values.
"""

from __future__ import annotations

import pytest
from mri_factory import mr_headers, signal_image, write_nifti_study
from rules_coverage import covers

from netlm_imaging import analyze
from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.classify.mr_phase import classify_mr_phase, is_hepatocyte_specific
from netlm_imaging.classify.rules import load_rules

RULES = load_rules()
LABELS = "liver=1,lesion=2,spleen=3"


def _analyze(paths, **opts) -> dict:
    rep = analyze(
        image=paths["image"],
        segs=[paths["seg"], f"segments={paths['segments']}"],
        labels=LABELS,
        options=AnalyzeOptions(modality="MR", **opts),
    )
    return rep.to_dict()


# ---------------------------------------------------------------- agent names
@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Primovist", True),
        ("EOVIST", True),
        ("gadoxetate disodium", True),
        ("Gd-EOB-DTPA", True),
        ("Gadovist 1.0", False),
        ("gadobutrol", False),
        ("Dotarem", False),
        ("Magnevist (Gd-DTPA)", False),
        ("GADOLINIUM", None),  # names an element, not an agent
        ("contrast", None),
        ("MultiHance", None),  # partly biliary: in neither list
    ],
)
def test_agent_names_are_hepatocyte_specific_extracellular_or_unidentified(agent, expected):
    assert is_hepatocyte_specific({"contrast_agent": agent}, RULES) is expected


def test_a_delayed_phase_of_an_unidentified_agent_says_so_not_extracellular():
    out = classify_mr_phase({"contrast_agent": "GADOLINIUM", "delay_s": 1200.0}, RULES)
    assert out["phase"] == "unknown"
    assert out["hepatocyte_specific_agent"] is None
    assert "not identified as hepatocyte-specific" in out["notes"][0]
    assert "'GADOLINIUM'" in out["notes"][0]


@covers("mri.extracellular_agent_patterns")
def test_rules_key_extracellular_agent_patterns(tmp_path):
    facts = {"contrast_agent": "Xenon-Gd", "delay_s": 1200.0}
    assert is_hepatocyte_specific(facts, RULES) is None
    path = tmp_path / "r.toml"
    path.write_text('[mri]\nextracellular_agent_patterns = ["xenon-gd"]\n')
    rules = load_rules(path)
    assert is_hepatocyte_specific(facts, rules) is False
    # a user's hepatobiliary statement now contradicts the headers
    assert classify_mr_phase(facts, RULES, user_phase="hbp")["phase"] == "hepatobiliary"
    assert classify_mr_phase(facts, rules, user_phase="hbp")["phase"] == "unknown"


# ---------------------------------------------------------------- the user's statement against the headers
def test_mr_phase_hbp_for_a_gadobutrol_series_gives_no_hepatocyte_index(tmp_path):
    side = mr_headers("101500", "103500", ContrastBolusAgent="Gadovist")  # 20 min, extracellular agent
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side)
    rep = _analyze(paths, mr_phase="hbp")
    mri = rep["mri"]
    assert mri["phase"]["phase"] == "unknown"
    assert mri["phase"]["basis"] == "conflict"
    assert "Gadovist" in mri["phase"]["notes"][0]
    assert mri["hepatic_uptake_index_ml"] is None
    assert mri["liver_to_spleen_contrast_ratio"] is None
    assert mri["functional_flr"] is None
    assert any("hepatobiliary" in m for m in mri["missing_inputs"])


def test_mr_phase_hbp_for_a_portal_venous_series_is_a_conflict():
    facts = {"contrast_agent": "Primovist", "delay_s": 70.0}
    out = classify_mr_phase(facts, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("unknown", "conflict")
    assert "portal_venous" in out["notes"][0]
    pre = classify_mr_phase({"contrast_agent": "NONE"}, RULES, user_phase="hbp")
    assert (pre["phase"], pre["basis"]) == ("unknown", "conflict")


def test_mr_phase_agrees_with_or_fills_in_for_the_headers():
    facts = {"contrast_agent": "Primovist", "delay_s": 1200.0}
    assert classify_mr_phase(facts, RULES, user_phase="hbp")["basis"] == "user"
    # contrast stated, no time: the headers cannot say, the user can
    out = classify_mr_phase({"contrast_agent": "Primovist"}, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("hepatobiliary", "user")
    # a delayed phase of an unidentified agent: the user says it is gadoxetic
    out = classify_mr_phase({"contrast_agent": "GADOLINIUM", "delay_s": 1200.0}, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("hepatobiliary", "user")


# ---------------------------------------------------------------- midnight
def _hms(seconds: int) -> str:
    seconds %= 86400
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


@pytest.mark.parametrize("minutes", [10, 15, 20])
def test_hepatobiliary_delays_across_midnight(tmp_path, minutes):
    start = 23 * 3600 + 58 * 60  # 23:58
    side = mr_headers(_hms(start), _hms(start + minutes * 60), ContrastBolusAgent="Eovist")
    rep = _analyze(write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side))
    phase = rep["mri"]["phase"]
    assert phase["delay_s"] == pytest.approx(minutes * 60.0)
    assert phase["phase"] == "hepatobiliary"
    adequate = minutes * 60.0 >= RULES["mri"]["hepatobiliary_adequate_from_s"]
    assert any("may not yet be complete" in n for n in phase["notes"]) is not adequate


def test_pre_contrast_acquired_before_midnight_with_the_injection_after_it(tmp_path):
    side = mr_headers("000500", "235000")  # injected 00:05, acquired 23:50 the evening before
    rep = _analyze(write_nifti_study(tmp_path, signal_image(250.0, 180.0, 100.0), sidecar=side))
    phase = rep["mri"]["phase"]
    assert phase["delay_s"] == pytest.approx(-15 * 60.0)
    assert phase["phase"] == "pre-contrast"
    assert any("after midnight of the acquisition day" in n for n in rep["mri"]["notes"])

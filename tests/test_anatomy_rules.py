"""The anatomy table and the new rules keys: every rejecting branch, and a user's own vessel taking effect."""

from __future__ import annotations

import pytest

from netlm_imaging.classify.anatomy import remnant_check, resection_name
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.errors import InputError


def _load(tmp_path, text):
    f = tmp_path / "r.toml"
    f.write_text(text)
    return load_rules(f)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "[anatomy.couinaud.segments]\n3 = { adjacent = [2] }\n",
            r"segment 4 lists 3 as adjacent",
        ),
        ("[anatomy.couinaud.segments]\n3 = { adjacent = [2, 4, 9] }\n", r"segments.3.adjacent' has invalid segment 9"),
        ('[anatomy.couinaud.segments]\n6 = { outflow = ["inferior_rhv"] }\n', r"unknown structure 'inferior_rhv'"),
        ('[anatomy.couinaud.segments]\n6 = { outflow = ["right_posterior_pedicle"] }\n', r"has role 'inflow'"),
        ("[anatomy.couinaud.segments]\n6 = { biliary = [] }\n", r"segments.6.biliary' must name at least one"),
        ("[anatomy.couinaud]\nmin_remnant_segments = 0\n", r"min_remnant_segments' must be >= 1"),
        ('[anatomy.vessels]\nx = { role = "drainage", lost_when_resected = [6] }\n', r"anatomy.vessels.x' needs role"),
        ("[grade]\nki67_g2_min_percent = 25.0\n", r"0 < g2_min <= g3_above <= 100"),
        ('[recist]\ndiameter_method = "feret"\n', r"'recist.diameter_method' = 'feret' is not allowed"),
    ],
)
def test_bad_anatomy_and_grade_keys_are_refused(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        _load(tmp_path, text)


def test_a_user_vessel_changes_what_is_possible(tmp_path):
    # without an inferior right hepatic vein, keeping 4-5-6 after taking 7 and 8 leaves segment 6 undrained
    anat = load_rules()["anatomy"]
    ok, why = remnant_check({4, 5, 6}, anat)
    assert ok is False
    assert "segment 6 loses its outflow" in why
    rules = _load(
        tmp_path,
        '[anatomy.vessels]\ninferior_right_hepatic_vein = { role = "outflow", lost_when_resected = [6] }\n'
        '[anatomy.couinaud.segments]\n6 = { outflow = ["right_hepatic_vein", "inferior_right_hepatic_vein"] }\n',
    )
    assert remnant_check({4, 5, 6}, rules["anatomy"])[0] is True


def test_remnant_rules_and_names():
    r = load_rules()
    anat = r["anatomy"]
    assert remnant_check({3}, anat) == (False, "remnant 3 keeps fewer than 2 segments")
    assert remnant_check({3, 7}, anat)[0] is False
    assert remnant_check({2, 3}, anat)[0] is True  # the extended right hepatectomy remnant
    assert remnant_check({6, 7}, anat)[0] is True  # the left trisectionectomy remnant
    # a segment absent from the map is ignored
    assert remnant_check({2, 3, 4}, anat, present=[2, 3, 4, 5])[0] is True
    assert (
        resection_name({2, 3, 4, 5, 8}, anat, r["resections"])
        == "Extended left hemihepatectomy (left trisectionectomy)"
    )
    assert resection_name({1, 5, 6, 7, 8}, anat, r["resections"]) == "Right hemihepatectomy with segment 1"
    assert resection_name({6}, anat, r["resections"]) == "segmentectomy 6"

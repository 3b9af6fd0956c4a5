"""Thresholds live in the rules file and the code reads them: change a key, see the outcome change.

The expected grades and types are the published rules (clinical_rules.md: WHO 2019 Ki-67 grading
G1 < 3 %, G2 3-20 %, G3 > 20 %; Mahuron 2023 types; the 70 % debulking threshold; CLARINET's 25 %
split), evaluated at their boundaries, then with the key changed in a copy of the default rules.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from netlm_imaging.classify.classifications import burden_category, mahuron_type, who_grade
from netlm_imaging.classify.clinical import ClinicalInputs
from netlm_imaging.classify.rules import load_rules, meets

ROOT = Path(__file__).resolve().parents[1]
RULES_FILE = ROOT / "netlm_imaging" / "default_rules.toml"


@pytest.fixture
def rules() -> dict:
    return copy.deepcopy(load_rules(None).to_dict())


def _leaves(tree: dict, path: tuple[str, ...] = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def test_every_numeric_rules_key_is_read_by_the_code():
    """No threshold sits unused in the rules file (its key is looked up somewhere in the package)."""
    tree = tomllib.loads(RULES_FILE.read_text())
    source = "\n".join(p.read_text() for p in (ROOT / "netlm_imaging").rglob("*.py"))
    unread = [
        ".".join(path)
        for path, value in _leaves(tree)
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and not re.search(rf"[\"']{re.escape(path[-1])}[\"']", source)
    ]
    assert unread == []


def _grade(ki67: float, grade_rules: dict) -> int:
    return who_grade(ClinicalInputs(ki67_percent=ki67), grade_rules)["grade"]


@pytest.mark.parametrize(("ki67", "grade"), [(2.9, 1), (3.0, 2), (20.0, 2), (20.1, 3)])
def test_ki67_grade_boundaries(rules, ki67, grade):
    assert _grade(ki67, rules["grade"]) == grade


def test_grade_ki67_g2_min_percent_changes_the_grade(rules):
    assert _grade(4.0, rules["grade"]) == 2
    rules["grade"]["ki67_g2_min_percent"] = 5.0
    assert _grade(4.0, rules["grade"]) == 1


def test_grade_ki67_g3_above_percent_changes_the_grade(rules):
    assert _grade(25.0, rules["grade"]) == 3
    rules["grade"]["ki67_g3_above_percent"] = 30.0
    assert _grade(25.0, rules["grade"]) == 2


def _mahuron(rules: dict, achievable: float, n_lesions: int = 3) -> str | None:
    out = mahuron_type(
        n_lesions=n_lesions,
        achievable_percent=achievable,
        achievable_missing=[],
        symptoms="none",
        distribution="bilobar",
        debulking=rules["debulking"],
        mahuron=rules["mahuron"],
    )
    return out["type"]


def test_debulking_threshold_percent_changes_the_type(rules):
    assert _mahuron(rules, 75.0) == "2"  # >= 70 % achievable, not complete: type 2
    assert _mahuron(rules, 70.0) == "2"  # the boundary meets ">= 70"
    rules["debulking"]["threshold_percent"] = 80.0
    assert _mahuron(rules, 75.0) != "2"


def test_mahuron_limited_max_lesions_changes_the_type(rules):
    assert _mahuron(rules, 100.0, n_lesions=5) == "1"  # complete clearance, <= 5 lesions
    assert _mahuron(rules, 100.0, n_lesions=6) == "2"
    rules["mahuron"]["limited_max_lesions"] = 6
    assert _mahuron(rules, 100.0, n_lesions=6) == "1"


def test_mahuron_complete_clearance_percent_changes_the_type(rules):
    assert _mahuron(rules, 95.0) == "2"
    rules["mahuron"]["complete_clearance_percent"] = 95.0
    assert _mahuron(rules, 95.0) == "1"


def test_burden_clarinet_split_percent_changes_the_split(rules):
    assert burden_category(25.0, rules["burden"])["clarinet_split"] == "<=25"
    assert burden_category(25.1, rules["burden"])["clarinet_split"] == ">25"
    rules["burden"]["clarinet_split_percent"] = 30.0
    assert burden_category(25.1, rules["burden"])["clarinet_split"] == "<=30"


def test_burden_bin_edges_change_the_category(rules):
    edges = rules["burden"]["bin_upper_edges_percent"]
    first = rules["burden"]["bin_labels"][0]
    assert burden_category(edges[0], rules["burden"])["category"] == first
    rules["burden"]["bin_upper_edges_percent"] = [edges[0] - 1.0, *edges[1:]]
    assert burden_category(edges[0], rules["burden"])["category"] != first


def test_meets_comparators_at_the_boundary():
    assert meets(70.0, 70.0, ">=")
    assert not meets(70.0, 70.0, ">")
    assert meets(0.7 * 100, 70.0, ">=")  # floating-point noise is absorbed
    assert not meets(69.999, 70.0, ">=")
    assert meets(70.001, 70.0, ">")
    # the tolerance is relative (1e-9 x |threshold|, at least 1e-9): large thresholds keep their noise margin
    assert meets(1000.0 - 5e-7, 1000.0, ">=")
    assert not meets(0.5 - 1.5e-9, 0.5, ">=")
    with pytest.raises(ValueError, match="unknown comparator '=='"):
        meets(1.0, 1.0, "==")


def test_flr_threshold_follows_the_denominator_and_the_liver_condition():
    """clinical_rules.md section 6: sFLR >= 20 % (normal), 30 % (chemotherapy), 40 % (cirrhosis);
    measured FLR% of the non-tumorous liver >= 25 % (normal, Shoup)."""
    r = load_rules(None)
    assert r.flr_threshold_percent("normal") == 20.0
    assert r.flr_threshold_percent(None) == 20.0
    assert r.flr_threshold_percent("chemotherapy", "telv") == 30.0
    assert r.flr_threshold_percent("cirrhosis") == 40.0
    assert r.flr_threshold_percent("normal", "non_tumorous") == 25.0


def test_burden_without_a_liver_names_the_missing_mask(rules):
    out = burden_category(None, rules["burden"])
    assert out["category"] is None
    assert out["missing_inputs"] == ["liver mask"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("volume_pr_decrease_percent", 50.0), ("volume_pd_increase_percent", 90.0), ("match_distance_mm", 7.5)],
)
def test_response_keys_are_read_by_compare(tmp_path, key, value):
    """rules [response] feeds verify/longitudinal's thresholds; a user rules file changes them."""
    from netlm_imaging.verify.longitudinal import ResponseThresholds, volumetric_response

    assert getattr(ResponseThresholds(), key) == load_rules(None)["response"][key]
    user = tmp_path / "rules.toml"
    user.write_text(f"[response]\n{key} = {value}\n")
    assert getattr(ResponseThresholds.from_rules(user), key) == value
    if key == "volume_pr_decrease_percent":  # a 60 % decrease: SD by the default 65 %, PR by a 50 % rule
        default = volumetric_response(100.0, 40.0, thresholds=ResponseThresholds())
        changed = volumetric_response(100.0, 40.0, thresholds=ResponseThresholds.from_rules(user))
        assert default[0] != changed[0]

"""The liver condition when the clinical inputs disagree on it, and the chemotherapy cycle count.

clinical_rules.md section 6: the most demanding condition decides (normal < chemotherapy < steatosis <
fibrosis < cirrhosis); a liver_condition that a true, more demanding flag outranks, or whose own flag
is false, is a disagreement the report names. The FLR thresholds in the expected texts are the shipped
rules file's (flr.threshold_percent: normal 20, chemotherapy 30).
"""

from __future__ import annotations

import pytest

from netlm_imaging.classify.body_size import condition_conflict_warnings
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs, as_clinical_inputs
from netlm_imaging.errors import InputError


@pytest.mark.parametrize(
    ("fields", "conflict"),
    [
        ({"liver_condition": "normal", "chemotherapy": "yes"}, "liver_condition 'normal' but chemotherapy 'yes'"),
        ({"liver_condition": "cirrhosis", "chemotherapy": "yes"}, None),  # the given one is the more demanding
        ({"liver_condition": "chemotherapy", "chemotherapy": "yes"}, None),  # the same condition twice
        (
            {"liver_condition": "chemotherapy", "chemotherapy": "no"},
            "liver_condition 'chemotherapy' but chemotherapy 'no'",
        ),
        ({"liver_condition": "steatosis", "chemotherapy": "no"}, None),  # another condition's flag false
        (
            {"liver_condition": "normal", "chemotherapy": "yes", "chemotherapy_cycles": 6},
            "liver_condition 'normal' but chemotherapy 'yes' (6 cycles)",
        ),
        ({"liver_condition": "normal", "chemotherapy_cycles": 2}, "liver_condition 'normal' but chemotherapy_cycles 2"),
        ({"chemotherapy": "yes"}, None),  # no liver_condition given: nothing to disagree with
    ],
)
def test_which_inputs_disagree_on_the_liver_condition(fields, conflict):
    assert as_clinical_inputs(fields).condition_conflict == conflict


@pytest.mark.parametrize(("cycles", "condition"), [(0, None), (1, "chemotherapy"), (12, "chemotherapy")])
def test_one_cycle_is_chemotherapy_none_is_not(cycles, condition):
    assert as_clinical_inputs({"chemotherapy_cycles": cycles}).liver_condition == condition


def test_a_count_contradicting_the_flag_is_refused_both_ways():
    with pytest.raises(InputError, match="chemotherapy 'no' and chemotherapy_cycles 6 disagree"):
        as_clinical_inputs({"chemotherapy": "no", "chemotherapy_cycles": 6})
    with pytest.raises(InputError, match="chemotherapy 'yes' and chemotherapy_cycles 0 disagree"):
        as_clinical_inputs({"chemotherapy": "yes", "chemotherapy_cycles": 0})


def test_the_warning_names_the_threshold_used_and_the_normal_one():
    rules = load_rules()
    clinical = as_clinical_inputs({"liver_condition": "normal", "chemotherapy": "yes"})
    [text] = condition_conflict_warnings(clinical, rules, 30.0, "telv")
    assert text.startswith("clinical (the mapping given to analyze): liver_condition 'normal' but chemotherapy 'yes': ")
    assert (
        "the FLR threshold used is the 'chemotherapy' one, 30% of telv (flr.threshold_percent.chemotherapy), "
        "not the normal liver's 20%; the most demanding condition given decides" in text
    )
    [none] = condition_conflict_warnings(clinical, rules, None, "telv")
    assert "the 'chemotherapy' liver has no FLR threshold on telv (flr.threshold_percent.chemotherapy)" in none
    # the normal liver's threshold used: no comparison with itself
    [normal] = condition_conflict_warnings(ClinicalInputs(condition_conflict="x"), rules, 20.0, "telv")
    assert "the 'normal' one, 20% of telv (flr.threshold_percent.normal);" in normal
    assert condition_conflict_warnings(ClinicalInputs(liver_condition="normal"), rules, 20.0, "telv") == []

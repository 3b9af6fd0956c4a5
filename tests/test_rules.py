"""The rules data file: defaults with sources, user overrides, rejection of bad files."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from surgical_phantoms import BRISBANE_RESECTIONS

from netlm_imaging.classify.rules import DIAMETER_REL_TOL, default_rules_text, load_rules, meets
from netlm_imaging.errors import InputError


def test_default_rules_values_match_clinical_rules_md():
    # numbers as written in ../shared/clinical_rules.md sections 4, 5, 6, 8, 9
    r = load_rules()
    assert r.version == "netlm-rules-2026.1"
    assert r["debulking"]["threshold_percent"] == 70.0
    assert r["debulking"]["comparator"] == ">="
    assert r["cloyd"]["resection_percent"] == 90.0
    assert r["burden"]["bin_upper_edges_percent"] == [10.0, 25.0, 50.0]
    assert r["burden"]["clarinet_split_percent"] == 25.0
    # section 6: 20 % normal, 30 % "compromised function (extensive systemic chemotherapy or steatosis)",
    # 40 % cirrhosis (and Azoulay's "fibrosis/cirrhosis" group)
    assert dict(r["flr"]["threshold_percent"]) == {
        "normal": 20.0,
        "chemotherapy": 30.0,
        "steatosis": 30.0,
        "fibrosis": 40.0,
        "cirrhosis": 40.0,
    }
    assert dict(r["flr"]["non_tumorous_threshold_percent"]) == {"normal": 25.0, "fibrosis": 40.0, "cirrhosis": 40.0}
    assert r["body"]["telv_intercept_ml"] == -794.41
    assert r["body"]["telv_slope_ml_per_m2"] == 1267.28
    assert r["body"]["bsa_formula"] == "mosteller"
    res = {k: sorted(v["segments"]) for k, v in r["resections"].items()}
    assert res == BRISBANE_RESECTIONS
    assert r["anatomy"]["caudate_side"] == "separate"
    assert r["planner"]["ablation_max_diameter_mm"] == 30.0
    assert (
        r["recist"]["measurable_min_diameter_mm"],
        r["recist"]["max_targets"],
        r["recist"]["max_targets_per_organ"],
    ) == (10.0, 5, 2)
    # the PET module's keys
    assert r["krenning"]["liver_band_fraction"] == 0.10
    assert r["pet"]["default_delineation"] == "rel:0.45"


def test_every_threshold_line_carries_a_confidence_tag():
    # each numeric setting line in the default file has a [C]/[S]/[U]/[D] tag on it or in its comment block above,
    # or its table has a `source` field with a tag
    text = default_rules_text()
    tables = tomllib.loads(text)
    lines = text.splitlines()
    table = None
    untagged = []
    for i, line in enumerate(lines):
        m = re.match(r"^\[([\w.]+)\]", line)
        if m:
            table = m.group(1)
            continue
        if re.match(r"^\w+\s*=\s*[-\d\[]", line):
            above = []
            j = i - 1
            while j >= 0 and lines[j].startswith("#"):
                above.append(lines[j])
                j -= 1
            node = tables
            for part in (table or "").split("."):
                node = node.get(part, {}) if part else node
            src = node.get("source", "") if isinstance(node, dict) else ""
            if not re.search(r"\[[CSUD]\]", line + " ".join(above) + src):
                untagged.append(line)
    assert untagged == []


def test_default_text_is_what_load_rules_reads():
    assert tomllib.loads(default_rules_text())["rules_version"] == load_rules().version


def test_user_toml_deep_merges_and_versions(tmp_path):
    p = tmp_path / "strict.toml"
    p.write_text("[debulking]\nthreshold_percent = 90\n[flr.threshold_percent]\nnormal = 25\n")
    r = load_rules(p)
    assert r["debulking"]["threshold_percent"] == 90.0
    assert isinstance(r["debulking"]["threshold_percent"], float)
    assert r["debulking"]["comparator"] == ">="  # untouched default kept
    assert r.flr_threshold_percent("normal") == 25.0
    assert r.flr_threshold_percent("cirrhosis") == 40.0
    assert r.version == "netlm-rules-2026.1+user:strict.toml"


def test_user_json_with_own_version_and_new_resection(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(
        json.dumps(
            {
                "rules_version": "clinic-3",
                "resections": {"segment_4_only": {"label": "Segmentectomy 4", "segments": [4], "source": "local"}},
            }
        )
    )
    r = load_rules(p)
    assert r.version == "netlm-rules-2026.1+user:mine.json@clinic-3"
    assert r["resections"]["segment_4_only"]["segments"] == [4]
    assert "right_hepatectomy" in r["resections"]


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("[debulking]\nthreshhold_percent = 60\n", r"unknown rules key 'debulking.threshhold_percent'"),
        ("[debulkng]\nthreshold_percent = 60\n", r"unknown rules key 'debulkng'.*known keys"),
        ('[debulking]\nthreshold_percent = "70"\n', r"'debulking.threshold_percent' must be a number"),
        ("[debulking]\nthreshold_percent = true\n", r"must be a number, got boolean"),
        ("debulking = 5\n", r"'debulking' must be a table"),
        ('[debulking]\ncomparator = "=>"\n', r"'debulking.comparator' = '=>' is not allowed"),
        ("[debulking]\nthreshold_percent = -5\n", r"must be >= 0"),
        ("[cloyd]\nmax_ecog = 1.5\n", r"whole number"),
        ('[anatomy]\ncaudate_side = "right"\n', r"caudate_side"),
        ('[body]\nbsa_formula = "haycock"\n', r"bsa_formula"),
        ("[resections.right_hepatectomy]\nsegments = [5, 6, 9]\n", r"Couinaud segments 1-8"),
        ("[resections.mine]\nsegments = [4]\n", r"'resections.mine' lacks label, source"),
        ('[burden]\nbin_labels = ["a", "b"]\n', r"one more entry"),
        ("[planner]\ncost_resolution_ml = 0\n", r"cost_resolution_ml"),
        ('[anatomy]\nright_hemiliver = [5, "6"]\n', r"right_hemiliver\[1\]' must be a number"),
        ("rules_version = 3\n", r"'rules_version' must be a string"),
        ("[debulking\n", r"not valid TOML"),
    ],
)
def test_bad_user_rules_are_refused_naming_the_key(tmp_path, content, pattern):
    p = tmp_path / "bad.toml"
    p.write_text(content)
    with pytest.raises(InputError, match=pattern):
        load_rules(p)


def test_bad_rules_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_rules(tmp_path / "nope.toml")
    y = tmp_path / "r.yaml"
    y.write_text("a: 1")
    with pytest.raises(InputError, match=r"must end in .toml or .json"):
        load_rules(y)
    j = tmp_path / "r.json"
    j.write_text("[1, 2]")
    with pytest.raises(InputError, match="top level"):
        load_rules(j)
    j.write_text("{bad json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_rules(j)


def test_unknown_liver_condition_threshold():
    with pytest.raises(InputError, match=r"no FLR threshold for liver condition 'steatosis' in 'flr\.non_tumorous"):
        load_rules().flr_threshold_percent("steatosis", "non_tumorous")


def test_comparator():
    assert meets(70.0, 70.0, ">=")
    assert not meets(70.0, 70.0, ">")
    assert meets(0.7 * 100, 70.0, ">=")  # 70.00000000000001 style noise
    assert not meets(69.99, 70.0, ">=")
    assert meets(70.01, 70.0, ">")


def test_a_size_limit_absorbs_float32_geometry_noise_but_not_a_hundredth_of_a_millimetre():
    """DIAMETER_REL_TOL: 10.0 mm read as 9.9999997 mm on a float32 oblique grid meets a 10 mm limit (and is not
    above a 30 mm ablation limit read as 30.0000009); 9.99 mm stays under 10 mm and 30.01 mm over 30 mm."""
    assert meets(9.9999997, 10.0, ">=", DIAMETER_REL_TOL)
    assert not meets(30.0000009, 30.0, ">", DIAMETER_REL_TOL)
    assert not meets(9.99, 10.0, ">=", DIAMETER_REL_TOL)
    assert meets(30.01, 30.0, ">", DIAMETER_REL_TOL)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[krenning]\nlesion_statistic = "mean"\n', "lesion_statistic = 'mean': use one of suv_mean_core"),
        ('[pet]\ndefault_delineation = "rel:45"\n', "rel:P needs 0 < P <= 1"),
        ("[krenning]\nliver_band_fraction = 0.9\n", "no_uptake_suv_fraction < 1 - liver_band_fraction"),
    ],
)
def test_bad_pet_settings_are_refused_when_the_rules_load(tmp_path, text, message):
    """A CT-only analysis with a bad PET setting is refused too: the file is wrong whatever the study."""
    p = tmp_path / "pet.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        load_rules(p)
    assert str(err.value).startswith(str(p))

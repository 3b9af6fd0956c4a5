"""The Python API takes its arguments in the forms a PACS script writes them.

One segmentation path alone (not a list), labels and clinical fields as dicts, options as a dict
of AnalyzeOptions' fields: each is unambiguous, so each must give the numbers of the documented
form; what cannot be read is one UsageError naming the argument and the fix. The truths are the
demo study's own (``sample_data/netlm_demo/truth.json``, computed when the phantom was drawn) and
the Mosteller BSA computed here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from netlm_imaging import analyze
from netlm_imaging.errors import InputError, UsageError

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
TRUTH = json.loads((DEMO / "truth.json").read_text())
IMAGE, SEG = DEMO / "ct.nii.gz", DEMO / "seg.nii.gz"
LABELS = "liver=1,lesion=2,spleen=3"


def _burden(**kw) -> tuple[float, float, int]:
    rep = analyze(image=IMAGE, **kw).to_dict()
    return rep["liver"]["volume_ml"], rep["tumor"]["intrahepatic_volume_ml"], rep["tumor"]["lesion_count"]


def _truth() -> tuple[float, float, int]:
    return TRUTH["liver_volume_ml"], TRUTH["intrahepatic_tumor_ml"], TRUTH["intrahepatic_lesion_count"]


@pytest.mark.parametrize("seg", [str(SEG), SEG], ids=["str", "Path"])
def test_one_segmentation_path_alone_is_one_segmentation(seg):
    # a str is a sequence of characters: it was read as the segmentations "/", "w", "o", ...
    liver, tumor, n = _burden(segs=seg, labels=LABELS)
    assert (liver, tumor, n) == pytest.approx(_truth(), rel=1e-6)


@pytest.mark.parametrize(
    "labels",
    [
        {"liver": 1, "lesion": 2, "spleen": 3},
        {"liver": [1], "lesion": (2,), "spleen": 3},
        {1: "liver", 2: "lesion", 3: "spleen"},  # a class map, as TotalSegmentator and nnU-Net print them
        {"liver": 1.0, "lesion": np.int64(2), "spleen": 3},  # from a JSON file or a DataFrame
    ],
    ids=["role->value", "role->values", "value->role", "float-and-numpy"],
)
def test_labels_as_a_mapping(labels):
    assert _burden(segs=[SEG], labels=labels) == pytest.approx(_truth(), rel=1e-6)


def test_a_mapping_joins_labels_to_one_role():
    # lesion = 2 + 1: the liver label joins the lesions, so the liver is not segmented and the "lesion" is both
    rep = analyze(image=IMAGE, segs=[SEG], labels={"lesion": [1, 2], "spleen": 3}).to_dict()
    voxel_ml = TRUTH["voxel_volume_ml"]
    both = TRUTH["liver_voxel_count"] * voxel_ml  # the liver truth already holds its lesions
    total = sum(les["volume_ml"] for les in rep["lesions"])
    assert total == pytest.approx(both + TRUTH["extrahepatic_tumor_ml"], rel=1e-6)


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        ({"tumour": 2}, r"^labels: unknown role 'tumour'; use one of liver, lesion"),
        ({"liver": 1.5}, r"^labels: role 'liver' maps to 1\.5; give a label value \(int\) or a segment name"),
        ({"liver": True}, r"^labels: role 'liver' maps to True"),
        ({"liver": []}, r"^labels: role 'liver' has no value"),
        ({"liver": " "}, r"^labels: role 'liver' has an empty value"),
        ({5: 7}, r"^labels: key 5 is no role; give role -> value\(s\)"),
    ],
)
def test_a_mapping_that_cannot_be_read_names_the_argument(labels, pattern):
    with pytest.raises(UsageError, match=pattern):
        analyze(image=IMAGE, segs=[SEG], labels=labels)


def test_clinical_fields_as_a_mapping_feed_the_remnant():
    height_cm, weight_kg = 170.0, 70.0
    bsa = math.sqrt(height_cm * weight_kg / 3600.0)  # Mosteller (clinical_rules.md section 6)
    for clinical in ({"height_cm": height_cm, "weight_kg": weight_kg}, {"Height": "1.70 m", "Weight (kg)": "70"}):
        rep = analyze(image=IMAGE, segs=[SEG], labels=LABELS, clinical=clinical).to_dict()
        assert rep["remnant"]["bsa_m2"] == pytest.approx(bsa, abs=1e-6)
    without = analyze(image=IMAGE, segs=[SEG], labels=LABELS).to_dict()
    assert without["remnant"]["bsa_m2"] is None


def test_clinical_mapping_is_checked_like_a_file():
    with pytest.raises(InputError, match=r"^clinical \(the mapping given to analyze\): clinical field 'weight_kg'"):
        analyze(image=IMAGE, segs=[SEG], labels=LABELS, clinical={"weight_kg": 7000})
    with pytest.raises(UsageError, match=r"^clinical: a file path, a mapping of clinical fields or ClinicalInputs"):
        analyze(image=IMAGE, segs=[SEG], labels=LABELS, clinical=42)


def test_options_as_a_mapping():
    # both options reach the measurement: the report states the instances and the margin they set
    by_dict = analyze(image=IMAGE, segs=[SEG], labels=LABELS, options={"connectivity": 6, "margin_mm": 0.0}).to_dict()
    assert by_dict["method"]["lesion_instances"] == "connected_components_6"
    assert by_dict["method"]["intrahepatic_margin_mm"] == 0.0
    assert by_dict["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TRUTH["intrahepatic_tumor_ml"], abs=1e-5)


@pytest.mark.parametrize(
    ("options", "exc", "pattern"),
    [
        ({"margin": 2.0}, UsageError, r"^options: unknown option 'margin' \(AnalyzeOptions has .*margin_mm"),
        ({"margin_mm": -2.0}, UsageError, r"^margin_mm -2\.0: the intrahepatic margin is a distance"),
        (5, UsageError, r"^options: an AnalyzeOptions or a mapping of its fields was expected, not int"),
    ],
)
def test_options_that_cannot_be_read(options, exc, pattern):
    with pytest.raises(exc, match=pattern):
        analyze(image=IMAGE, segs=[SEG], labels=LABELS, options=options)


def _left_hepatectomy(rep: dict) -> dict:
    return next(r for r in rep["remnant"]["standard_resections"] if r["name"] == "left_hepatectomy")


def test_rules_as_a_mapping_change_the_decision_as_a_file_would(tmp_path):
    # the demo folder's manifest gives the Couinaud map and a clinical file with height, weight and a normal
    # liver: the sFLR of each standard resection is judged on the TELV
    # sFLR of the left hemihepatectomy (remnant 1, 5-8), computed here: the demo's non-tumorous voxels over the
    # Vauthey TELV of a Mosteller BSA (clinical.json: 172 cm, 74 kg; clinical_rules.md section 6)
    seg = TRUTH["segments"]
    flr_ml = sum(seg[str(k)]["liver_voxels_excluding_lesions"] for k in (1, 5, 6, 7, 8)) * TRUTH["voxel_volume_ml"]
    sflr = 100.0 * flr_ml / (-794.41 + 1267.28 * math.sqrt(172.0 * 74.0 / 3600.0))  # 41.98 %
    left = _left_hepatectomy(analyze(DEMO).to_dict())
    assert left["standardized_flr_percent"] == pytest.approx(sflr, rel=1e-6)
    assert left["threshold_percent"] == 20.0  # the shipped normal-liver threshold
    assert left["adequate"] is True
    stricter = {"flr": {"threshold_percent": {"normal": round(sflr) + 1.0}}}  # 43 %
    by_dict = analyze(DEMO, rules=stricter).to_dict()
    (tmp_path / "rules.json").write_text(json.dumps(stricter))
    by_file = analyze(DEMO, rules=tmp_path / "rules.json")
    for rep in (by_dict, by_file.to_dict()):
        assert _left_hepatectomy(rep)["threshold_percent"] == round(sflr) + 1.0
        assert _left_hepatectomy(rep)["adequate"] is False
    assert by_dict["classification"]["rules_version"].endswith("+user:mapping")
    assert stricter["flr"] == {"threshold_percent": {"normal": round(sflr) + 1.0}}  # not consumed


def test_rules_mapping_with_an_unknown_key_is_refused_naming_it():
    with pytest.raises(InputError, match=r"^rules \(the mapping given to analyze\): .*'flr\.treshold_percent'"):
        analyze(image=IMAGE, segs=[SEG], labels=LABELS, rules={"flr": {"treshold_percent": {"normal": 25.0}}})


@pytest.mark.parametrize("rules", [42, ["flr"], b"rules.toml"])
def test_rules_that_are_neither_a_path_nor_a_mapping_name_the_argument(rules):
    """As clinical= does: one UsageError naming the argument and the forms it takes (it was a TypeError)."""
    with pytest.raises(UsageError, match=r"^rules: a rules file path or a mapping of the keys it changes"):
        analyze(image=IMAGE, segs=[SEG], labels=LABELS, rules=rules)

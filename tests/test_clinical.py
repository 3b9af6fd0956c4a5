"""Clinical inputs: JSON/TOML/CSV parsing, strict validation, DICOM height/weight fallback."""

from __future__ import annotations

import json

import pytest

from netlm_imaging.clinical.inputs import ClinicalInputs, clinical_from_row, load_clinical, resolve_body_size
from netlm_imaging.errors import InputError


def test_json_sidecar_all_fields(tmp_path):
    p = tmp_path / "clinical.json"
    p.write_text(
        json.dumps(
            {
                "symptoms": "Hormonal",
                "grade": 2,
                "ki67_percent": 4.5,
                "extrahepatic_disease": False,
                "primary_resected": True,
                "height_cm": 172,
                "weight_kg": 68.5,
                "liver_condition": "chemotherapy",
                "performance_status": 1,
            }
        )
    )
    c = load_clinical(p)
    assert c == ClinicalInputs("hormonal", 2, 4.5, False, True, 172.0, 68.5, "chemotherapy", 1, source=str(p))


def test_toml_sidecar_partial(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('symptoms = "none"\ngrade = 1\n')
    c = load_clinical(p)
    assert (c.symptoms, c.grade, c.height_cm, c.liver_condition) == ("none", 1, None, None)


def test_csv_row_text_values_and_empty_cells():
    row = {
        "symptoms": "bulk",
        "grade": "3",
        "ki67_percent": "",
        "extrahepatic_disease": "yes",
        "primary_resected": "0",
        "height_cm": "180",
        "weight_kg": "81",
        "liver_condition": "",
        "performance_status": "2",
    }
    c = clinical_from_row(row, "cohort.csv row 4")
    assert (c.symptoms, c.grade, c.ki67_percent, c.extrahepatic_disease, c.primary_resected) == (
        "bulk",
        3,
        None,
        True,
        False,
    )
    assert (c.height_cm, c.weight_kg, c.liver_condition, c.performance_status) == (180.0, 81.0, None, 2)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"symtoms": "none"}, r"unknown clinical field\(s\) 'symtoms'; known fields: symptoms, grade"),
        ({"symptoms": 2}, r"'symptoms' has invalid value 2; allowed: none \| hormonal \| bulk"),  # 1: symptomatic
        ({"symptoms": "severe"}, r"'symptoms' has invalid value 'severe'"),
        ({"grade": 4}, r"'grade' has invalid value 4; allowed: a whole number 1-3"),
        ({"grade": 2.5}, r"'grade' has invalid value 2.5"),
        ({"grade": "G2/G3"}, r"'grade' has invalid value 'G2/G3'; allowed: a number"),
        ({"grade": True}, r"'grade' has invalid value True"),
        ({"performance_status": 5}, r"'performance_status' has invalid value 5; allowed: a whole number 0-4"),
        ({"ki67_percent": 150}, r"'ki67_percent' has invalid value 150.0; allowed: 0-100 %"),
        ({"ki67_percent": -1}, r"'ki67_percent'"),
        (
            {"height_cm": 20},
            r"'height_cm' has invalid value 20.0; allowed: 100-250 cm "
            r"\(impossible value, rules key body.height_cm_range\)",
        ),
        ({"weight_kg": 700}, r"'weight_kg' has invalid value 700.0; allowed: 25-350 kg"),
        (
            {"extrahepatic_disease": "maybe"},
            r"'extrahepatic_disease' has invalid value 'maybe'; allowed: true or false",
        ),
        ({"primary_resected": 2}, r"'primary_resected' has invalid value 2"),
        ({"liver_condition": "hepatitis"}, r"allowed: normal \| chemotherapy \| steatosis \| fibrosis \| cirrhosis"),
        ({"weight_kg": "72 st"}, r"'weight_kg' has invalid value '72 st'; allowed: a number \(units: kg, .*lb"),
        ({"ki67_percent": "25 kg"}, r"'ki67_percent' has invalid value '25 kg'"),
        ({"weight": 70, "weight_kg": 71}, r"clinical columns 'weight' and 'weight_kg' both give 'weight_kg'"),
        ({"weight_kg": [70]}, r"'weight_kg' has invalid value \[70\]"),
    ],
)
def test_json_rejections_name_file_field_value(tmp_path, data, pattern):
    p = tmp_path / "clin.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputError, match=pattern) as exc:
        load_clinical(p)
    assert str(p) in str(exc.value)


def test_nan_is_rejected(tmp_path):
    p = tmp_path / "clin.json"
    p.write_text('{"weight_kg": NaN}')
    with pytest.raises(InputError, match="finite"):
        load_clinical(p)


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ({"grade": "two"}, r"'grade' has invalid value 'two'; allowed: a number"),
        ({"extrahepatic_disease": "maybe"}, r"true or false"),
        ({"height_cm": "1.75"}, r"impossible value"),
        ({"study": "x"}, r"unknown clinical field"),
        ({"ki67_percent": "<150%"}, r"'ki67_percent' has invalid value '<150%'; allowed: bounds within 0-100"),
        ({"ki67_percent": "5-2%"}, r"low <= high"),
        ({"ki67_range": "12"}, r"'ki67_range' has invalid value '12'; allowed: bounds such as"),
        (
            {"grade": "NEC", "differentiation": "well"},
            r"row 7: clinical grade 'NEC' is a neuroendocrine carcinoma \(poorly differentiated\) but differentiation "
            r"is 'well'; correct one of the two$",
        ),
        # the grade under another column name (the value was lost: "invalid value None")
        ({"WHO grade": "NEC", "Differentiation": "well differentiated"}, r"clinical grade 'NEC' is a neuroendocrine"),
    ],
)
def test_csv_rejections(row, pattern):
    with pytest.raises(InputError, match=pattern) as exc:
        clinical_from_row(row, "cohort.csv row 7")
    assert "cohort.csv row 7" in str(exc.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(InputError, match="clinical file not found"):
        load_clinical(tmp_path / "none.json")
    txt = tmp_path / "c.txt"
    txt.write_text("grade=1")
    with pytest.raises(InputError, match=r"must end in .json or .toml"):
        load_clinical(txt)
    bad = tmp_path / "c.toml"
    bad.write_text("grade = = 1")
    with pytest.raises(InputError, match="not valid TOML"):
        load_clinical(bad)
    lst = tmp_path / "c.json"
    lst.write_text("[1]")
    with pytest.raises(InputError, match="object/table of fields"):
        load_clinical(lst)


def test_body_size_from_file_then_dicom_header():
    header = {"patient_size_m": 1.64, "patient_weight_kg": 59.0}
    h, w, notes = resolve_body_size(ClinicalInputs(height_cm=170.0), header)
    assert h == 170.0
    assert w == 59.0
    assert any("clinical file" in n for n in notes)
    assert any("PatientWeight (0010,1030)" in n for n in notes)
    h, w, notes = resolve_body_size(None, header)
    assert h == pytest.approx(164.0)
    assert w == 59.0
    assert any("PatientSize (0010,1020)" in n for n in notes)
    # implausible header values are not used, and the note says so
    h, w, notes = resolve_body_size(None, {"patient_size_m": 170.0, "patient_weight_kg": 0.07})
    assert (h, w) == (None, None)
    assert any("ignored" in n for n in notes)
    assert resolve_body_size(None, {})[:2] == (None, None)


# The international pound is 0.45359237 kg exactly (1959 agreement); an inch is 2.54 cm.
_LB_KG = 0.45359237


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # units in the values, converted to the field's unit
        ({"weight_kg": "72 kg", "height_cm": "175 cm"}, {"weight_kg": 72.0, "height_cm": 175.0}),
        ({"weight_kg": "160 lb", "height_cm": "1.75 m"}, {"weight_kg": 160 * _LB_KG, "height_cm": 175.0}),
        ({"weight_kg": "72kg", "height_cm": "69 in"}, {"weight_kg": 72.0, "height_cm": 69 * 2.54}),
        ({"height_cm": "5.5 ft"}, {"height_cm": 5.5 * 12 * 2.54}),  # a foot is 12 inches
        ({"ki67_percent": "25%"}, {"ki67_percent": 25.0}),
        ({"ki67_percent": "2.5 %"}, {"ki67_percent": 2.5}),
        # column names as spreadsheets spell them
        (
            {"Weight (kg)": "80", "Height (m)": "1.8", "Ki-67 (%)": "4"},
            {"weight_kg": 80.0, "height_cm": 180.0, "ki67_percent": 4.0},
        ),
        ({"ECOG": "ECOG 1", "WHO grade": "G2"}, {"performance_status": 1, "grade": 2}),
        ({"Grade": "NET G3", "PS": "0"}, {"grade": 3, "performance_status": 0}),
        # booleans in every common spelling, "not known" words as empty cells
        (
            {"extrahepatic_disease": "Y", "primary_resected": "N"},
            {"extrahepatic_disease": True, "primary_resected": False},
        ),
        (
            {"extrahepatic_disease": "TRUE", "primary_resected": "no"},
            {"extrahepatic_disease": True, "primary_resected": False},
        ),
        ({"extrahepatic_disease": "NA", "primary_resected": "unknown", "grade": "n/a"}, {}),
        # symptoms: yes/no mean symptomatic (kind not stated) / none
        ({"symptoms": "No"}, {"symptoms": "none"}),
        ({"symptoms": "yes"}, {"symptoms": "symptomatic"}),
        ({"symptoms": "Carcinoid syndrome"}, {"symptoms": "hormonal"}),
        # liver condition words and flag columns (the most demanding true flag)
        ({"liver_condition": "chemo"}, {"liver_condition": "chemotherapy"}),
        ({"liver_condition": "Fatty liver"}, {"liver_condition": "steatosis"}),
        ({"cirrhosis": "yes", "chemotherapy": "yes"}, {"liver_condition": "cirrhosis"}),
        ({"chemo": "Y", "cirrhosis": "N"}, {"liver_condition": "chemotherapy"}),
        ({"cirrhosis": "N"}, {}),  # other injuries not stated: the condition stays unknown
        (
            {"chemotherapy": "0", "steatosis": "0", "fibrosis": "0", "cirrhosis": "0"},
            {"liver_condition": "normal"},
        ),
        ({"differentiation": "Well-differentiated", "sex": "F"}, {"differentiation": "well", "sex": "female"}),
        # several conditions in one cell: the most demanding threshold's (CR section 6: cirrhosis 40 %)
        ({"liver_condition": "chemotherapy, cirrhosis"}, {"liver_condition": "cirrhosis"}),
        ({"liver_condition": "steatosis and chemo"}, {"liver_condition": "steatosis"}),
        # words that state a yes or no
        (
            {"extrahepatic_disease": "none", "primary_resected": "in situ"},
            {"extrahepatic_disease": False, "primary_resected": False},
        ),
        (
            {"extrahepatic_disease": "present", "primary_resected": "resected"},
            {"extrahepatic_disease": True, "primary_resected": True},
        ),
        ({"symptoms": "both"}, {"symptoms": "symptomatic"}),
        # "NEC" in the grade column: neuroendocrine carcinoma = poorly differentiated, high grade (WHO 2019)
        ({"grade": "NEC"}, {"grade": 3, "differentiation": "poor"}),
        ({"grade": "Neuroendocrine carcinoma"}, {"grade": 3, "differentiation": "poor"}),
        ({"grade": "G3 NEC"}, {"grade": 3, "differentiation": "poor"}),
        # ECOG / WHO performance status as clinic letters write it
        ({"ECOG": "ECOG PS 1"}, {"performance_status": 1}),
        ({"performance_status": "WHO PS 2"}, {"performance_status": 2}),
    ],
)
def test_csv_real_world_spellings(row, expected):
    c = clinical_from_row(row, "cohort.csv row 3")
    got = {k: v for k, v in c.to_dict().items() if v is not None}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v) if isinstance(v, float) else got[k] == v


def test_json_sidecar_text_values_as_written(tmp_path):
    """A sidecar written by hand: "72 kg", "G2", "yes" are unambiguous and read like the CSV cells."""
    p = tmp_path / "clinical.json"
    p.write_text(json.dumps({"weight": "72 kg", "height_cm": "1.68 m", "grade": "G2", "primary_resected": "yes"}))
    c = load_clinical(p)
    assert (c.weight_kg, c.height_cm, c.grade, c.primary_resected) == (72.0, pytest.approx(168.0), 2, True)


def test_primary_site_is_accepted_and_echoed_only_when_given():
    """A cohort column "Primary site" is a clinical fact no rule reads: accepted (not an unknown field) and echoed."""
    from netlm_imaging.clinical.inputs import clinical_inputs_used

    c = clinical_from_row({"Primary site": "  small   bowel ", "grade": "1"}, "cohort.csv line 2")
    assert c.primary_site == "small bowel"
    assert clinical_inputs_used(c, {}, None, None)["primary_site"] == {
        "value": "small bowel",
        "source": "cohort.csv line 2",
    }
    assert "primary_site" not in clinical_inputs_used(clinical_from_row({"grade": "1"}, "row 3"), {}, None, None)


def test_json_sidecar_numbers_in_a_unit_column_and_flags_as_0_1(tmp_path):
    """A JSON sidecar's bare numbers under 'Weight (lb)' / 'Height (m)' are in that unit (160 lb = 160 x 0.45359237 kg,
    the international avoirdupois pound; 1.75 m = 175 cm), not kg / cm; 1 / 0 are true / false, 2 is refused."""
    p = tmp_path / "clinical.json"
    p.write_text(json.dumps({"Weight (lb)": 160, "Height (m)": 1.75, "extrahepatic_disease": 0, "primary_resected": 1}))
    c = load_clinical(p)
    assert c.weight_kg == pytest.approx(160 * 0.45359237)
    assert c.height_cm == pytest.approx(175.0)
    assert (c.extrahepatic_disease, c.primary_resected) == (False, True)
    p.write_text(json.dumps({"extrahepatic_disease": 2}))
    with pytest.raises(InputError, match=r"clinical\.json: clinical field 'extrahepatic_disease' has invalid value 2"):
        load_clinical(p)

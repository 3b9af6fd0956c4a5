"""Clinical inputs as surgeons' records write them: US height / weight units, symptoms as flags or words.

Truth: 1 in = 2.54 cm and 1 lb = 0.45359237 kg exactly (international yard and pound, 1959);
BSA (Mosteller) and TELV (Vauthey) from clinical_rules.md section 6, computed here by hand. The
symptom words are those of Mahuron 2023's "symptoms" input (clinical_rules.md section 1): flushing
and diarrhoea are the carcinoid (hormonal) syndrome; "yes" / true is symptomatic of unstated kind.
"""

from __future__ import annotations

import json
import math

import pytest
from surgical_phantoms import NY, NZ, SLICES, SlabLiver, assess

from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import clinical_from_row, load_clinical
from netlm_imaging.errors import InputError

INCH_CM = 2.54
POUND_KG = 0.45359237


def _sidecar(tmp_path, data):
    f = tmp_path / "clinical.json"
    f.write_text(json.dumps(data))
    return load_clinical(f)


@pytest.mark.parametrize(
    ("cell", "inches"),
    [("5'8\"", 68), ("5' 8", 68), ("5 ft 8 in", 68), ("5ft8in", 68), ('68"', 68), ("6 feet 1 inch", 73), ("5'", 60)],
)
def test_a_height_in_feet_and_inches_is_read(tmp_path, cell, inches):
    assert _sidecar(tmp_path, {"height": cell}).height_cm == pytest.approx(inches * INCH_CM)


def test_inches_of_a_foot_or_more_after_feet_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"clinical.json: clinical field 'height_cm'.*13 inches after 5 feet"):
        _sidecar(tmp_path, {"height": "5'13\""})


@pytest.mark.parametrize(
    ("column", "value", "field", "expected"),
    [
        ("Height (in)", 68, "height_cm", 68 * INCH_CM),
        ("height_in", "68", "height_cm", 68 * INCH_CM),
        ("height_inches", 70, "height_cm", 70 * INCH_CM),
        ("Height (ft)", 5.5, "height_cm", 66 * INCH_CM),
        ("Weight (lbs)", 160, "weight_kg", 160 * POUND_KG),
        ("weight_lbs", "160", "weight_kg", 160 * POUND_KG),
        ("Weight (pounds)", 200, "weight_kg", 200 * POUND_KG),
        ("Height (m)", 1.72, "height_cm", 172.0),
    ],
)
def test_a_column_naming_its_unit_converts_bare_numbers(tmp_path, column, value, field, expected):
    assert getattr(_sidecar(tmp_path, {column: value}), field) == pytest.approx(expected)
    row = clinical_from_row({column: str(value)}, "cohort.csv row 2")
    assert getattr(row, field) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({"height": 68}, "if it is in inches, write '68 in'"),
        ({"height_cm": 1.72}, "if it is in metres, write '1.72 m'"),
        ({"weight": 400}, "if it is in pounds, write '400 lb'"),
    ],
)
def test_an_impossible_bare_height_or_weight_names_the_unit_it_would_fit(tmp_path, data, hint):
    with pytest.raises(InputError, match="impossible value") as err:
        _sidecar(tmp_path, data)
    assert hint in str(err.value)
    with pytest.raises(InputError) as err2:
        _sidecar(tmp_path, {"height": 20})  # no unit makes 20 a height
    assert "if it is in" not in str(err2.value)


def test_inches_and_pounds_give_the_telv_of_the_converted_body_size(tmp_path):
    clin = _sidecar(tmp_path, {"Height (in)": 69, "Weight (lbs)": 176, "liver_condition": "normal"})
    h, w = 69 * INCH_CM, 176 * POUND_KG
    bsa = math.sqrt(h * w / 3600.0)  # Mosteller [C]
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(6, 1, 2, 2)
    rem = assess(p.ctx(), clin, load_rules()).remnant
    assert rem["height_cm"] == pytest.approx(175.26)
    assert rem["weight_kg"] == pytest.approx(79.83225712)
    assert rem["bsa_m2"] == pytest.approx(bsa)
    assert rem["telv_ml"] == pytest.approx(-794.41 + 1267.28 * bsa)  # Vauthey [S]/[C]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "symptomatic"),
        (False, "none"),
        (1, "symptomatic"),
        (0, "none"),
        ("Carcinoid", "hormonal"),
        ("flushing", "hormonal"),
        ("Diarrhoea", "hormonal"),
        ("flushing, diarrhea", "hormonal"),
        ("flushing and diarrhoea", "hormonal"),
        ("hormonal + bulk", "symptomatic"),
        ("carcinoid syndrome; abdominal pain", "symptomatic"),
        ("mass-effect", "bulk"),
        ("yes, flushing", "hormonal"),
        ("No symptoms", "none"),
        ("symptom-free", "none"),
    ],
)
def test_symptoms_as_flags_and_words(tmp_path, value, expected):
    assert _sidecar(tmp_path, {"symptoms": value}).symptoms == expected


@pytest.mark.parametrize("value", ["none, flushing", 2, "sometimes"])
def test_contradictory_or_unknown_symptoms_are_refused(tmp_path, value):
    with pytest.raises(InputError, match=r"clinical.json: clinical field 'symptoms' has invalid value"):
        _sidecar(tmp_path, {"symptoms": value})


def test_a_symptom_flag_decides_mahuron_3_against_4(tmp_path):
    """Below the 70 % debulking threshold the symptoms split type 3 (symptomatic) from 4 (CR section 1 [D])."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for seg in (1, 2, 4, 5, 6, 8):  # six 40 mm lesions, no sparing option: no plan treats 70 %
        p.add_in_segment(seg, 1, 4, 4, max_3d_diameter_mm=40.0)
    (tmp_path / "r.toml").write_text("[planner]\nallow_enucleation = false\nallow_segment_resection = false\n")
    rules = load_rules(tmp_path / "r.toml")
    base = {"height_cm": 175, "weight_kg": 70, "liver_condition": "normal"}
    for flag, mahuron in ((True, "3"), (False, "4")):
        clin = _sidecar(tmp_path, {**base, "symptoms": flag})
        c = assess(p.ctx(), clin, rules).classification
        assert c["achievable_debulking_percent"] == 0.0
        assert c["mahuron_type"] == mahuron


def test_liver_condition_with_a_space_for_the_hyphen(tmp_path):
    assert _sidecar(tmp_path, {"liver_condition": "post chemotherapy"}).liver_condition == "chemotherapy"
    assert _sidecar(tmp_path, {"differentiation": "well_differentiated"}).differentiation == "well"
    assert _sidecar(tmp_path, {"liver_condition": "NASH"}).liver_condition == "steatosis"
    assert _sidecar(tmp_path, {"liver_condition": "CALI"}).liver_condition == "chemotherapy"


@pytest.mark.parametrize(
    ("cell", "grade"), [("WHO grade 2", 2), ("NET grade 3", 3), ("Grade II", 2), ("GIII", 3), ("G I", 1), ("NET G2", 2)]
)
def test_grades_as_pathology_reports_write_them(tmp_path, cell, grade):
    assert _sidecar(tmp_path, {"grade": cell}).grade == grade


@pytest.mark.parametrize("cell", ["G1-2", "G4", "low grade"])
def test_a_grade_that_is_not_one_whole_grade_is_refused(tmp_path, cell):
    with pytest.raises(InputError, match=r"clinical field 'grade' has invalid value"):
        _sidecar(tmp_path, {"grade": cell})


@pytest.mark.parametrize("cell", ["ECOG: 1", "ECOG performance status 1", "performance status 1", "WHO PS 1", "PS1"])
def test_performance_status_as_written(tmp_path, cell):
    assert _sidecar(tmp_path, {"performance_status": cell}).performance_status == 1
    assert _sidecar(tmp_path, {"grade": "Grade: 2"}).grade == 2

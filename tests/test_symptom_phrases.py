"""Symptoms as clinic letters write them: a kind named after a joining word, and non-functioning tumours.

Mahuron 2023's "symptoms" input (clinical_rules.md section 1) is hormonal (carcinoid syndrome:
flushing, diarrhoea) or bulk symptoms. A "non-functioning" tumour has, by definition, no hormonal
syndrome, but says nothing of bulk symptoms: alone it is refused with what to write; beside a
statement of bulk symptoms (or of none) that statement decides.
"""

from __future__ import annotations

import json

import pytest

from netlm_imaging.clinical.inputs import clinical_from_row, load_clinical
from netlm_imaging.errors import InputError


def _symptoms(tmp_path, value):
    f = tmp_path / "clinical.json"
    f.write_text(json.dumps({"symptoms": value}))
    return load_clinical(f).symptoms


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("carcinoid syndrome with flushing", "hormonal"),
        ("hormonal (flushing)", "hormonal"),
        ("Yes - flushing", "hormonal"),
        ("yes: diarrhoea", "hormonal"),
        ("mass effect with pain", "bulk"),
        ("non-functioning, asymptomatic", "none"),
        ("Non-functional; abdominal pain", "bulk"),
    ],
)
def test_a_phrase_gives_the_kind_it_names(tmp_path, cell, kind):
    assert _symptoms(tmp_path, cell) == kind
    assert clinical_from_row({"symptoms": cell}, "cohort.csv row 2").symptoms == kind


@pytest.mark.parametrize("cell", ["non-functional", "Non-functioning", "nonfunctioning NET"])
def test_non_functioning_alone_is_refused_naming_what_is_unknown(tmp_path, cell):
    with pytest.raises(InputError, match=r"'symptoms' has invalid value .*say whether there are bulk symptoms"):
        _symptoms(tmp_path, cell)


@pytest.mark.parametrize("cell", ["no flushing - pain", "none (flushing)"])
def test_none_beside_a_symptom_stays_a_contradiction(tmp_path, cell):
    with pytest.raises(InputError, match="invalid value"):
        _symptoms(tmp_path, cell)

"""Thresholds live in the rules file and the code reads them; every key has an outcome test.

The outcome tests (``test_rules_outcomes_*.py``, the [mri] ones in ``test_mri.py``) change one key
in a user rules file and check the outcome the published rule gives; they register the key with
``rules_coverage.covers``. :func:`test_every_shipped_rules_key_has_an_outcome_test` enumerates the
shipped ``netlm_imaging/default_rules.toml`` and fails for a key without one. The boundary tests
here evaluate the published rules (clinical_rules.md: WHO 2019 Ki-67 grading G1 < 3 %, G2 3-20 %,
G3 > 20 %; CLARINET's 25 % split; FLR thresholds) at their edges.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import tomllib
from pathlib import Path

import pytest
from rules_coverage import COVERED, generic_key

from netlm_imaging.classify.classifications import burden_category, who_grade
from netlm_imaging.classify.rules import load_rules, meets
from netlm_imaging.clinical.inputs import ClinicalInputs

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


#: Shipped keys that are provenance text for the reader of the rules file, read by no code (so no
#: outcome can change): the citation beside a table's thresholds. Only ``source``-type texts may be here.
DOCUMENTATION_ONLY = {
    "debulking.threshold_source": "citation of debulking.threshold_percent",
    "mahuron.source": "citation of the [mahuron] table",
    "burden.source": "citation of the [burden] bins",
    "cloyd.source": "citation of the [cloyd] criteria",
    "frilling.source": "citation of the [frilling] reading",
    "flr.source": "citation of the FLR thresholds",
    "anatomy.couinaud.source": "citation of the Couinaud table",
    "recist.source": "citation of the [recist] limits",
    "krenning.source": "citation of the [krenning] scale",
}


def _outcome_registry() -> dict[str, list[str]]:
    """Import every test module that registers outcome tests and return the registry."""
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if "@covers(" in path.read_text(encoding="utf-8"):
            importlib.import_module(path.stem)
    return COVERED


def test_every_shipped_rules_key_has_an_outcome_test():
    """Each key of the shipped rules file has a test that changes it and checks the outcome change."""
    shipped = sorted({generic_key(".".join(path)) for path, _ in _leaves(tomllib.loads(RULES_FILE.read_text()))})
    covered = _outcome_registry()
    assert [k for k in shipped if k not in covered and k not in DOCUMENTATION_ONLY] == []
    assert sorted(set(covered) - set(shipped)) == []  # no test registered for a key the file no longer has
    assert sorted(set(covered) & set(DOCUMENTATION_ONLY)) == []
    assert all(k.rsplit(".", 1)[-1].endswith("source") for k in DOCUMENTATION_ONLY)
    assert sorted(set(DOCUMENTATION_ONLY) - set(shipped)) == []


def test_documentation_only_keys_change_no_outcome(tmp_path):
    """Rewriting every documentation-only text leaves a full surgical assessment and a PET measurement unchanged."""
    from rules_coverage import user_rules
    from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, SlabLiver, assess
    from test_rules_outcomes_pet import Scene

    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    p.add_in_segment(7, 1, 2, 2, max_3d_diameter_mm=12.0)
    shipped, texts = (
        user_rules(tmp_path),
        user_rules(tmp_path, dict.fromkeys(DOCUMENTATION_ONLY, "rewritten"), "t.json"),
    )
    a, b = assess(p.ctx(), FULL_CLINICAL, shipped), assess(p.ctx(), FULL_CLINICAL, texts)
    assert {k: v for k, v in a.classification.items() if k != "rules_version"} == {
        k: v for k, v in b.classification.items() if k != "rules_version"
    }
    assert (a.remnant, a.summary_lines) == (b.remnant, b.summary_lines)
    scene = Scene()
    scene.add((0.0, 0.0, 0.0), 14.0, 10.0)
    pa, pb = scene.run(shipped), scene.run(texts)
    assert (pa.block, pa.lesion_updates) == (pb.block, pb.lesion_updates)
    assert "rewritten" not in json.dumps([b.classification, b.remnant, pb.block])


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

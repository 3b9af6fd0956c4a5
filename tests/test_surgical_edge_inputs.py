"""Decisions on edge inputs name only what is truly missing (the charter: a decision whose inputs are
missing is null with the missing inputs named, never a guess; an input that was given is never named).

- A lesion segmentation holding no liver lesion: nothing to resect, so Cloyd's resection criterion
  (clinical_rules.md section 3, "resection of >90% of metastases feasible") and Mahuron (section 1)
  are not applicable: null with no missing input, not "intrahepatic lesions" missing.
- Lesions and a Couinaud segment map without a liver mask: the segment table (liver voxels per
  segment) cannot be measured; the liver mask is what is missing, not the segment map that was given.
"""

from __future__ import annotations

import pytest
from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, VOXEL_ML, SlabLiver, assess, weight_for_telv

from netlm_imaging.classify.clinical import ClinicalInputs
from netlm_imaging.classify.rules import load_rules


def test_a_segmentation_without_liver_lesions_leaves_cloyd_open_with_nothing_missing():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    out = assess(p.ctx(), FULL_CLINICAL, load_rules())
    c = out.classification
    assert c["mahuron_type"] is None
    assert c["resectable_cloyd"] is None
    assert "Cloyd resectable: n/a (no intrahepatic lesions)" in out.summary_lines
    crit = c["cloyd_criteria"]["resection_feasible"]
    assert (crit["met"], crit["missing_inputs"]) == (None, [])
    assert "not applicable: no intrahepatic lesions" in crit["rule"]
    assert c["missing_inputs"] == []  # every clinical input is given; no lesion is not a missing input
    assert any("Cloyd resection criteria not applicable" in r for r in c["rationale"])


def test_only_extrahepatic_lesions_still_fail_cloyd_on_extrahepatic_disease():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(3, 2, NY + 1, 2, 0, 2)  # rows >= NY lie outside the liver
    c = assess(p.ctx(), FULL_CLINICAL, load_rules()).classification
    assert c["resectable_cloyd"] is False
    assert c["cloyd_criteria"]["no_extrahepatic_disease"]["met"] is False
    assert c["missing_inputs"] == []


def test_a_segment_map_without_a_liver_mask_names_the_liver_mask_not_the_map():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(3, 2, 4, 4)
    p.add_in_segment(6, 2, 4, 4)
    out = assess(p.ctx(with_liver=False), FULL_CLINICAL, load_rules())
    c = out.classification
    assert c["distribution"] == "unknown"
    assert c["mahuron_type"] is None
    assert c["missing_inputs"] == ["liver mask"]
    assert not any(r.startswith("no Couinaud segment map") for r in c["rationale"])
    assert any("segment map given without a liver mask" in r for r in c["rationale"])
    # without the map it is the map that is missing too
    c2 = assess(p.ctx(with_liver=False, with_segments=False), FULL_CLINICAL, load_rules()).classification
    assert c2["missing_inputs"] == ["liver mask", "segment map"]


def _right_mass_needing_pve(condition):
    """A 140 mm mass filling the right liver (x 13..28: segments 5-8): only a right hemihepatectomy
    clears it, leaving segments 1-4 (slices 2+3+3+4, tumour-free) = 18 % of the TELV."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * VOXEL_ML  # 480 mL
    telv = flr_ml / 0.18
    clin = ClinicalInputs(
        **{**FULL_CLINICAL.__dict__, "weight_kg": weight_for_telv(telv, 175.0), "liver_condition": condition}
    )
    return assess(p.ctx(), clin, load_rules()).classification["staged_strategies"]


@pytest.mark.parametrize(
    ("condition", "pve", "alpps", "possible"),
    [
        ("normal", True, True, True),  # 18 x 1.379 = 24.8 % and 18 x 1.843 = 33.2 % > 20 %
        ("chemotherapy", False, True, True),  # > 30 % only after ALPPS
        ("cirrhosis", False, False, False),  # neither reaches 40 %
        (None, None, None, None),  # 20 % says yes, 40 % says no: undetermined
    ],
)
def test_staged_strategies_without_a_liver_condition_decide_only_what_every_condition_decides(
    condition, pve, alpps, possible
):
    st = _right_mass_needing_pve(condition)
    assert st["needed"] is True
    assert st["clearing_resected_segments"] == [5, 6, 7, 8]
    assert st["flr_now_percent"] == pytest.approx(18.0)
    s = st["strategies"]
    assert s["portal_vein_embolisation"]["expected_flr_percent"] == pytest.approx(18.0 * 1.379)
    assert s["alpps"]["expected_flr_percent"] == pytest.approx(18.0 * 1.843)
    assert s["portal_vein_embolisation"]["reaches_threshold"] is pve
    assert s["alpps"]["reaches_threshold"] is alpps
    assert st["possible"] is possible
    if condition is None:
        assert s["alpps"]["missing_inputs"] == ["liver_condition"]
        assert st["missing_inputs"] == ["liver_condition"]
        assert "undetermined without liver_condition" in st["reason"]

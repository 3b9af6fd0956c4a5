"""Decisions on edge inputs name only what is truly missing (the charter: a decision whose inputs are
missing is null with the missing inputs named, never a guess; an input that was given is never named).

- A lesion segmentation holding no liver lesion: nothing to resect, so Cloyd's resection criterion
  (clinical_rules.md section 3, "resection of >90% of metastases feasible") and Mahuron (section 1)
  are not applicable: null with no missing input, not "intrahepatic lesions" missing.
- Lesions and a Couinaud segment map without a liver mask: the segment table (liver voxels per
  segment) cannot be measured; the liver mask is what is missing, not the segment map that was given.
"""

from __future__ import annotations

from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, SlabLiver, assess

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

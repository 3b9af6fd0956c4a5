"""Every key of [recist] and [response], and rules_version: change it in a rules file, see the outcome change.

Expected categories are RECIST 1.1 as clinical_rules.md section 8 states it (measurable
>= 10 mm on slices <= 5 mm, else >= 2 x the slice thickness; nodes on the short axis,
>= 15 mm target, 10 to < 15 mm non-target, < 10 mm normal; at most 5 targets, 2 per
organ; PR >= 30 % decrease, PD >= 20 % and >= 5 mm increase) and the volumetric [D]
thresholds of the rules file, applied to lesions whose diameters the test sets.
"""

from __future__ import annotations

from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context
from rules_coverage import covers, user_rules

from netlm_imaging.classify.recist import recist_assessment
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.measure.context import Lesion
from netlm_imaging.verify.longitudinal import (
    ResponseThresholds,
    compare_studies,
    recist_response,
    volumetric_response,
)


def les(lid, long_mm, *, short_mm=None, location="intrahepatic", label=None, organ=None, centre_mm=None):
    """A lesion with the given longest axial / short axis diameters (centre-to-centre and edge the same)."""
    out = Lesion(lid, location, 1.0, 10, [0.0, 0.0, 0.0], long_mm, short_mm, long_mm, None, False, None, label=label)
    out.longest_axial_diameter_edge_mm = long_mm
    out.short_axis_diameter_edge_mm = short_mm
    if centre_mm is not None:
        out.longest_axial_diameter_mm = centre_mm
    if organ:
        out.extra["organ"] = organ
    return out


def categories(rules, lesions, slice_mm=2.5):
    rec = recist_assessment(lesions, rules["recist"], slice_mm)
    return {lid: r["category"] for lid, r in rec["lesions"].items()}, [r["lesion_id"] for r in rec["targets"]]


@covers("recist.measurable_min_diameter_mm")
def test_measurable_minimum(tmp_path):
    assert categories(user_rules(tmp_path), [les(1, 12.0)])[0] == {1: "target"}
    changed = user_rules(tmp_path, {"recist.measurable_min_diameter_mm": 15.0})
    assert categories(changed, [les(1, 12.0)])[0] == {1: "non_target"}


@covers("recist.thin_slice_limit_mm")
def test_thin_slice_limit(tmp_path):
    """11 mm on 6 mm slices: thick (> 5 mm) slices need 2 x 6 = 12 mm."""
    assert categories(user_rules(tmp_path), [les(1, 11.0)], slice_mm=6.0)[0] == {1: "non_target"}
    changed = user_rules(tmp_path, {"recist.thin_slice_limit_mm": 7.0})
    assert categories(changed, [les(1, 11.0)], slice_mm=6.0)[0] == {1: "target"}


@covers("recist.thick_slice_min_multiple")
def test_thick_slice_multiple(tmp_path):
    assert categories(user_rules(tmp_path), [les(1, 11.0)], slice_mm=6.0)[0] == {1: "non_target"}
    changed = user_rules(tmp_path, {"recist.thick_slice_min_multiple": 1.5})  # 9 mm, so the 10 mm floor rules
    assert categories(changed, [les(1, 11.0)], slice_mm=6.0)[0] == {1: "target"}


def _organs():
    return [les(i, 20.0 + i, location="extrahepatic", organ=f"organ{i}") for i in range(1, 7)]


@covers("recist.max_targets")
def test_max_targets(tmp_path):
    assert categories(user_rules(tmp_path), _organs())[1] == [6, 5, 4, 3, 2]  # the 5 largest
    assert categories(user_rules(tmp_path, {"recist.max_targets": 3}), _organs())[1] == [6, 5, 4]


@covers("recist.max_targets_per_organ")
def test_max_targets_per_organ(tmp_path):
    liver = [les(i, 20.0 + i) for i in range(1, 4)]
    assert categories(user_rules(tmp_path), liver)[1] == [3, 2]
    assert categories(user_rules(tmp_path, {"recist.max_targets_per_organ": 3}), liver)[1] == [3, 2, 1]


def _node(short_mm):
    return les(1, short_mm + 5.0, short_mm=short_mm, location="extrahepatic", label="lymph node 1")


@covers("recist.node_target_short_axis_mm")
def test_node_target_short_axis(tmp_path):
    assert categories(user_rules(tmp_path), [_node(13.0)])[0] == {1: "non_target"}
    assert categories(user_rules(tmp_path, {"recist.node_target_short_axis_mm": 12.0}), [_node(13.0)])[0] == {
        1: "target"
    }


@covers("recist.node_pathological_short_axis_mm")
def test_node_pathological_short_axis(tmp_path):
    assert categories(user_rules(tmp_path), [_node(8.0)])[0] == {1: "normal_node"}
    changed = user_rules(tmp_path, {"recist.node_pathological_short_axis_mm": 7.0})
    assert categories(changed, [_node(8.0)])[0] == {1: "non_target"}


@covers("recist.diameter_method")
def test_diameter_method(tmp_path):
    """Edge to edge 10.5 mm, centre to centre 9.5 mm: measurable only by the edge method."""
    lesion = les(1, 10.5, centre_mm=9.5)
    assert categories(user_rules(tmp_path), [lesion])[0] == {1: "target"}
    assert categories(user_rules(tmp_path, {"recist.diameter_method": "centre"}), [lesion])[0] == {1: "non_target"}


def test_method_without_lesions_is_the_rules_method(tmp_path):
    """No lesion: the method named is still the configured one, never an empty list."""
    for setting, words in (({}, "edge to edge"), ({"recist.diameter_method": "centre"}, "diameters: centre")):
        method = recist_assessment([], user_rules(tmp_path, setting)["recist"])["method"]
        assert words in method
        assert "diameters:  (" not in method
    with_lesion = recist_assessment([les(1, 10.5, centre_mm=9.5)], user_rules(tmp_path)["recist"])["method"]
    assert recist_assessment([], user_rules(tmp_path)["recist"])["method"] == with_lesion


@covers("recist.organ_words")
def test_organ_words(tmp_path):
    """Three 'lung met' lesions are one organ (2 targets) only while 'lung' is an organ word."""
    lungs = [les(i, 20.0 + i, location="extrahepatic", label=f"lung met {i}") for i in range(1, 4)]
    assert categories(user_rules(tmp_path), lungs)[1] == [3, 2]
    assert categories(user_rules(tmp_path, {"recist.organ_words": ["bone"]}), lungs)[1] == [3, 2, 1]


def test_organ_synonyms_make_one_organ():
    """'lung met 1', 'Pulmonary nodule', 'pulmonary met 3' are one organ: 2 targets (RECIST 1.1, 2 per organ),
    not three organs of one lesion each; 'peritoneal' and 'omental' deposits are the peritoneum; an adrenal
    lesion stays adrenal although 'renal' (kidney) is in the word."""
    labels = ["lung met 1", "Pulmonary nodule", "pulmonary met 3", "peritoneal 1", "omental cake", "adrenal L"]
    lesions = [les(i, 40.0 - i, location="extrahepatic", label=t) for i, t in enumerate(labels, start=1)]
    rec = recist_assessment(lesions, load_rules()["recist"], 2.5)
    organs = {lid: r["organ"] for lid, r in rec["lesions"].items()}
    assert organs == {1: "lung", 2: "lung", 3: "lung", 4: "peritoneum", 5: "peritoneum", 6: "adrenal"}
    assert [r["lesion_id"] for r in rec["targets"]] == [1, 2, 4, 5, 6]  # each organ's 2 largest, 5 in all
    assert not any("counted as its own organ" in r for r in rec["rationale"])


def _recist(rules, base, fu):
    return recist_response(base, fu, thresholds=ResponseThresholds.from_rules(rules))[0]


@covers("recist.pr_decrease_percent")
def test_recist_pr_decrease(tmp_path):
    assert _recist(user_rules(tmp_path), 50.0, 35.0) == "PR"  # -30 %
    assert _recist(user_rules(tmp_path, {"recist.pr_decrease_percent": 40.0}), 50.0, 35.0) == "SD"


@covers("recist.pd_increase_percent")
def test_recist_pd_increase(tmp_path):
    assert _recist(user_rules(tmp_path), 50.0, 58.0) == "SD"  # +16 %, +8 mm
    assert _recist(user_rules(tmp_path, {"recist.pd_increase_percent": 15.0}), 50.0, 58.0) == "PD"


@covers("recist.pd_min_increase_mm")
def test_recist_pd_min_increase(tmp_path):
    assert _recist(user_rules(tmp_path), 20.0, 24.0) == "SD"  # +20 % but only +4 mm
    assert _recist(user_rules(tmp_path, {"recist.pd_min_increase_mm": 4.0}), 20.0, 24.0) == "PD"


def _volumetric(rules, base, fu):
    return volumetric_response(base, fu, thresholds=ResponseThresholds.from_rules(rules))[0]


@covers("response.volume_pr_decrease_percent")
def test_volume_pr_decrease(tmp_path):
    assert _volumetric(user_rules(tmp_path), 100.0, 40.0) == "SD"  # -60 % < 65 %
    assert _volumetric(user_rules(tmp_path, {"response.volume_pr_decrease_percent": 50.0}), 100.0, 40.0) == "PR"


@covers("response.volume_pd_increase_percent")
def test_volume_pd_increase(tmp_path):
    assert _volumetric(user_rules(tmp_path), 100.0, 160.0) == "SD"  # +60 % < 73 %
    assert _volumetric(user_rules(tmp_path, {"response.volume_pd_increase_percent": 50.0}), 100.0, 160.0) == "PD"


@covers("response.match_distance_mm")
def test_match_distance(tmp_path):
    """A 5 mm lesion whose follow-up lies 12 mm away (no overlap) is matched within 15 mm, not within 8 mm."""
    shape, spacing = (60, 50, 40), (2.0, 2.0, 2.5)
    aff = grid_affine(shape, spacing, (4.0, -3.0, 6.0), (5.0, 0.0, 8.0))
    base = make_context(LiverPhantom([Sphere((-20.0, 0.0, 0.0), 5.0)]), shape, aff, frame_of_reference_uid="1.2.3")
    fu = make_context(LiverPhantom([Sphere((-8.0, 0.0, 0.0), 5.0)]), shape, aff, frame_of_reference_uid="1.2.3")
    shipped = compare_studies(base, fu, thresholds=ResponseThresholds.from_rules(user_rules(tmp_path)))
    assert [(c.status, c.matched_by) for c in shipped.lesions] == [("matched", "centroid_distance")]
    near = ResponseThresholds.from_rules(user_rules(tmp_path, {"response.match_distance_mm": 8.0}))
    changed = compare_studies(base, fu, thresholds=near)
    assert sorted(c.status for c in changed.lesions) == ["disappeared", "new"]


@covers("rules_version")
def test_rules_version_is_reported(tmp_path):
    assert user_rules(tmp_path).version == "netlm-rules-2026.1+user:user_rules.json"
    changed = user_rules(tmp_path, {"rules_version": "clinic-2026-03"})
    assert changed.version == "netlm-rules-2026.1+user:user_rules.json@clinic-2026-03"


@covers("recist.node_words")
def test_node_words(tmp_path):
    """'LN station 7' (18 x 8 mm) is a lymph node, normal by RECIST 1.1 (short axis 8 mm < 10 mm); without 'ln'
    among the node words it would be a lesion of its own organ judged on its 18 mm long axis (a target)."""
    station = les(1, 18.0, short_mm=8.0, location="extrahepatic", label="LN station 7")
    assert categories(user_rules(tmp_path), [station])[0] == {1: "normal_node"}
    changed = user_rules(tmp_path, {"recist.node_words": ["lymph", "node"]})
    assert categories(changed, [station])[0] == {1: "target"}


def test_node_labels_as_written():
    """Node labels as ROI names spell them: 'LN 4R', 'ln_hilar', 'LNs', 'nodal met', 'Lymphadenopathy', 'nodes'
    are nodes (judged on the short axis: 12 mm is in [10, 15) mm, non-target); a word merely containing 'ln'
    ('kiln') is not, while the longer node words may be part of a word."""
    rules = load_rules()
    labels = ("LN 4R", "ln_hilar", "LNs portal", "nodal met 2", "Lymphadenopathy 3", "nodes_mesenteric")
    for i, label in enumerate(labels, start=1):
        rec = recist_assessment(
            [les(i, 25.0, short_mm=12.0, location="extrahepatic", label=label)], rules["recist"], 2.5
        )
        assert (rec["lesions"][i]["lymph_node"], rec["lesions"][i]["category"]) == (True, "non_target"), label
    other = recist_assessment([les(9, 25.0, short_mm=12.0, location="extrahepatic", label="kiln 1")], rules["recist"])
    assert (other["lesions"][9]["lymph_node"], other["lesions"][9]["category"]) == (False, "target")


def test_targets_represent_every_involved_organ_before_second_lesions(tmp_path):
    """RECIST 1.1: up to 5 targets, 2 per organ, "representative of all involved organs" and chosen by size.

    Liver 50/45/40 mm, lung 30/28 mm, a node with a 20 mm short axis, bone 15 mm: the five places go to
    the largest lesion of each of the four organs (50, 30, 20, 15) and then the largest second lesion
    (liver 45); the 5 largest by size alone (50, 45, 30, 28, 20) would leave the bone out.
    """
    lesions = [
        les(1, 50.0),
        les(2, 45.0),
        les(3, 40.0),
        les(4, 30.0, location="extrahepatic", organ="lung"),
        les(5, 28.0, location="extrahepatic", organ="lung"),
        les(6, 25.0, short_mm=20.0, location="extrahepatic", label="lymph node 1"),
        les(7, 15.0, location="extrahepatic", organ="bone"),
    ]
    cats, targets = categories(user_rules(tmp_path), lesions)
    assert targets == [1, 2, 4, 6, 7]
    assert cats == {1: "target", 2: "target", 3: "measurable", 4: "target", 5: "measurable", 6: "target", 7: "target"}
    rec = recist_assessment(lesions, user_rules(tmp_path)["recist"], 2.5)
    assert rec["sum_of_diameters_mm"] == 50.0 + 45.0 + 30.0 + 20.0 + 15.0  # node: its short axis

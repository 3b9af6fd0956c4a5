"""``--resection`` given as surgeons name the operation: Brisbane 2000 names, older synonyms, combinations.

Truth: the segment sets of clinical_rules.md section 9 (Brisbane 2000 table: right hemihepatectomy 5-8,
left 2-4, right trisectionectomy 4-8, left trisectionectomy 2,3,4,5,8, left lateral sectionectomy 2-3;
the sections: right anterior 5+8, right posterior 6+7, left medial 4 = 4a+4b; caudate = 1), written
here by hand; FLRs from the demo's own voxel counts (sample_data/netlm_demo/truth.json) and from slab
phantoms whose segment volumes are slices x rows x columns x voxel volume.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from surgical_phantoms import FULL_CLINICAL, NY, NZ, VOXEL_ML, SlabLiver, assess

from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.classify.anatomy import resection_name
from netlm_imaging.classify.resection_names import parse_resection
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.cli import main
from netlm_imaging.errors import UsageError

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
TRUTH = json.loads((DEMO / "truth.json").read_text())


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("right hepatectomy", {5, 6, 7, 8}),
        ("Right hemihepatectomy", {5, 6, 7, 8}),
        ("right hemi-hepatectomy", {5, 6, 7, 8}),
        ("right hepatectomy + 1", {1, 5, 6, 7, 8}),
        ("Right hepatectomy with segment 1", {1, 5, 6, 7, 8}),
        ("right hepatectomy + caudate", {1, 5, 6, 7, 8}),
        ("left hepatectomy", {2, 3, 4}),
        ("left hemihepatectomy", {2, 3, 4}),
        ("right trisectionectomy", {4, 5, 6, 7, 8}),
        ("extended right hepatectomy", {4, 5, 6, 7, 8}),
        ("Extended right hemihepatectomy (right trisectionectomy)", {4, 5, 6, 7, 8}),
        ("right trisegmentectomy", {4, 5, 6, 7, 8}),
        ("left trisectionectomy", {2, 3, 4, 5, 8}),
        ("extended left hepatectomy", {2, 3, 4, 5, 8}),
        ("left hepatectomy extended to segments 5 and 8", {2, 3, 4, 5, 8}),
        ("left lateral sectionectomy", {2, 3}),
        ("Left-lateral sectionectomy", {2, 3}),
        ("left lateral segmentectomy", {2, 3}),
        ("right anterior sectionectomy", {5, 8}),
        ("right posterior sectionectomy", {6, 7}),
        ("left medial sectionectomy", {4}),
        ("central hepatectomy", {4, 5, 8}),
        ("mesohepatectomy", {4, 5, 8}),
        ("caudate lobectomy", {1}),
        ("segmentectomy 6", {6}),
        ("segmentectomy VII", {7}),
        ("bisegmentectomy 6-7", {6, 7}),
        ("resection of segment 4", {4}),
        ("anatomical resection of segment 8", {8}),
        ("S8 segmentectomy", {8}),
        # the approach is not the extent
        ("laparoscopic right hepatectomy", {5, 6, 7, 8}),
        ("Robotic left lateral sectionectomy", {2, 3}),
        ("Open right hepatectomy + caudate", {1, 5, 6, 7, 8}),
        # the tool's own plan names read back (classify.anatomy.resection_name / assessment_text)
        ("Left lateral sectionectomy + segmentectomy 6", {2, 3, 6}),
        ("segmentectomies 2+3", {2, 3}),
        ("right hemihepatectomy (segment(s) 5,6,7,8)", {5, 6, 7, 8}),
        ("right_hepatectomy", {5, 6, 7, 8}),
        # segment lists still read as before
        ("5-8", {5, 6, 7, 8}),
        ("Segments VI and VII", {6, 7}),
    ],
)
def test_a_resection_name_removes_its_brisbane_segments(text, segments):
    assert parse_resection(text) == tuple(sorted(segments))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("right lobectomy", "names different segments in different nomenclatures"),
        ("left lobectomy", "names different segments in different nomenclatures"),
        ("left lateral sectorectomy", "Couinaud's sectors"),
        ("wedge resection of segment 6", "no set of Couinaud segments"),
        ("non-anatomical resection of segment 6", "no set of Couinaud segments"),
        ("laparoscopic wedge", "no set of Couinaud segments"),
        ("right hepatectomy + ablation", "no set of Couinaud segments"),
        ("right hepatectomy + foo", "'foo' is neither a Couinaud segment nor a resection name"),
        ("right hepatectomy (segments 5-7)", "removes segments 5,6,7,8, not 5,6,7"),
        ("segmentectomy 4b", "segment 4b alone cannot be evaluated"),
        ("5,x", "'x' is not a Couinaud segment"),
    ],
)
def test_an_ambiguous_or_unknown_name_is_refused_with_what_to_write(text, why):
    with pytest.raises(ValueError, match=why):
        parse_resection(text)


def _demo_flr_ml(removed: set[int]) -> float:
    kept = [s for s in range(1, 9) if s not in removed]
    return sum(TRUTH["segments"][str(s)]["liver_voxels_excluding_lesions"] for s in kept) * TRUTH["voxel_volume_ml"]


def test_the_cli_evaluates_named_resections_on_the_demo(tmp_path):
    out = tmp_path / "out"
    argv = ["analyze", str(DEMO), "--out", str(out), "--quiet"]
    argv += ["--resection", "right hepatectomy + 1", "--resection", "central hepatectomy"]
    assert main(argv) == 0
    rows = {r["name"]: r for r in json.loads((out / "report.json").read_text())["remnant"]["standard_resections"]}
    assert rows["custom:1+5+6+7+8"]["flr_ml"] == pytest.approx(_demo_flr_ml({1, 5, 6, 7, 8}), rel=1e-6)
    assert rows["custom:4+5+8"]["removed_segments"] == [4, 5, 8]
    assert rows["custom:4+5+8"]["flr_ml"] == pytest.approx(_demo_flr_ml({4, 5, 8}), rel=1e-6)


def test_the_cli_refuses_an_ambiguous_name_with_exit_2(tmp_path, capsys):
    assert main(["analyze", str(DEMO), "--out", str(tmp_path / "o"), "--quiet", "--resection", "right lobectomy"]) == 2
    err = capsys.readouterr().err
    assert "--resection right lobectomy:" in err
    assert "anatomical right lobe includes segment 4" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "report.json").exists()


def test_the_python_api_reads_names_as_the_cli_does():
    opts = AnalyzeOptions(resections=("right trisectionectomy", "left lateral sectionectomy + 6"))
    assert opts.resections == ((4, 5, 6, 7, 8), (2, 3, 6))
    with pytest.raises(UsageError, match="--resection right lobectomy: a 'lobectomy'"):
        AnalyzeOptions(resections=("right lobectomy",))


def test_a_resection_of_a_segment_the_map_lacks_is_warned_of():
    """A map that labels no segment 1 (its liver is unlabelled): a caudate resection removes nothing there."""
    slices = {2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5}
    p = SlabLiver(slices, ny=NY, nz=NZ, unlabeled_slices=2)
    p.add_in_segment(6, 2, 3, 3)  # 18 voxels
    a = assess(p.ctx(), FULL_CLINICAL, load_rules(), resections=[(1,), (1, 5, 6, 7, 8)])
    rows = {r["name"]: r for r in a.remnant["standard_resections"]}
    labelled_nt_ml = (sum(slices.values()) * NY * NZ - 18) * VOXEL_ML
    assert rows["custom:1"]["flr_ml"] == pytest.approx(labelled_nt_ml)
    left_ml = (3 + 3 + 4) * NY * NZ * VOXEL_ML  # segments 2-4 kept, no lesion there
    assert rows["custom:1+5+6+7+8"]["flr_ml"] == pytest.approx(left_ml)
    warned = [w for w in a.warnings if w.startswith("--resection")]
    assert warned == [
        "--resection 1: segment(s) 1 absent from the Couinaud segment map (no liver voxel labelled): it removes "
        "no liver; its FLR counts only the labelled segments it keeps",
        "--resection 1,5,6,7,8: segment(s) 1 absent from the Couinaud segment map (no liver voxel labelled): only "
        "segment(s) 5,6,7,8 are removed; its FLR counts only the labelled segments it keeps",
    ]
    # a map with every segment: no such warning
    q = SlabLiver({1: 2, **slices}, ny=NY, nz=NZ)
    full = assess(q.ctx(), FULL_CLINICAL, load_rules(), resections=[(1,)])
    assert not [w for w in full.warnings if "--resection" in w]


def test_the_console_states_each_named_resection(tmp_path, capsys):
    """The demo's clinical file: 172 cm, 74 kg, normal liver (threshold 20 % of TELV, Vauthey / Mosteller)."""
    import math

    argv = ["analyze", str(DEMO), "--out", str(tmp_path / "o"), "--resection", "right hepatectomy"]
    assert main(argv) == 0
    telv = -794.41 + 1267.28 * math.sqrt(172.0 * 74.0 / 3600.0)
    flr = _demo_flr_ml({5, 6, 7, 8})
    verdict = "adequate" if 100 * flr / telv > 20.0 else "inadequate"
    expected = (
        f"Resection 5+6+7+8 (Right hemihepatectomy): FLR {flr:.0f} mL = {100 * flr / telv:.1f}% of TELV, "
        f"{verdict} (threshold 20%); anatomically possible"
    )
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("right hepatectomy", ((5, 6, 7, 8),)),  # one text, not its characters
        ((5, 6, 7, 8), ((5, 6, 7, 8),)),  # one resection's segments
        ([[2, 3], "central hepatectomy"], ((2, 3), (4, 5, 8))),
    ],
)
def test_the_python_api_takes_one_resection_or_several(given, expected):
    assert AnalyzeOptions(resections=given).resections == expected


def test_a_resection_mixing_numbers_and_texts_is_refused_with_the_form():
    with pytest.raises(UsageError, match=r"give each resection as a text .* or a sequence of segment numbers"):
        AnalyzeOptions(resections=(5, "x"))


def test_an_anatomy_verdict_that_turns_on_a_segment_the_map_lacks_is_undetermined():
    """Right anterior sectionectomy (5, 8) leaves 4 joined to 6-7 only through the caudate (segment 1: adjacent
    to 4 and 7 in the Couinaud table, clinical_rules.md section 9). A map labelling no segment 1 cannot say the
    remnant is split; with segment 1 labelled it is possible; right posterior sectionectomy does not depend on it."""
    slices = {2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5}
    p = SlabLiver(slices, ny=NY, nz=NZ, unlabeled_slices=2)
    p.add_in_segment(6, 2, 3, 3)
    rows = {r["name"]: r for r in assess(p.ctx(), FULL_CLINICAL, load_rules()).remnant["standard_resections"]}
    assert rows["right_anterior_sectionectomy"]["anatomically_feasible"] is None
    assert (
        "with segment(s) 1, absent from the map, the remnant would be possible"
        in (rows["right_anterior_sectionectomy"]["anatomy_check"])
    )
    assert rows["right_posterior_sectionectomy"]["anatomically_feasible"] is True
    q = SlabLiver({1: 2, **slices}, ny=NY, nz=NZ)
    q.add_in_segment(6, 2, 3, 3)
    full = {r["name"]: r for r in assess(q.ctx(), FULL_CLINICAL, load_rules()).remnant["standard_resections"]}
    assert full["right_anterior_sectionectomy"]["anatomically_feasible"] is True


@pytest.mark.parametrize(
    ("segments", "name"),
    [
        # Brisbane sections inside a connected resected set (clinical_rules.md section 9): right posterior
        # section = 6 + 7, left lateral = 2 + 3, right trisectionectomy = 4-8
        ({6, 7, 8}, "Right posterior sectionectomy + segmentectomy 8"),
        ({4, 6, 7, 8}, "Right posterior sectionectomy + bisegmentectomy 4+8"),  # 4 and 8 touch
        ({2, 3, 4, 5, 6, 7, 8}, "Extended right hemihepatectomy (right trisectionectomy) + Left lateral sectionectomy"),
        ({5, 6}, "bisegmentectomy 5+6"),  # no section inside: two adjacent segments (Brisbane third order)
        ({1, 5, 6, 8}, "Right anterior sectionectomy + segmentectomies 1+6"),  # two that do not touch
        ({2, 3, 6}, "Left lateral sectionectomy + segmentectomy 6"),  # two parts, as before
        ({1, 5, 6, 7, 8}, "Right hemihepatectomy with segment 1"),
    ],
)
def test_a_planned_set_is_named_by_the_sections_it_holds_and_reads_back(segments, name):
    """The planner's {6, 7, 8} read "segmentectomies 6+7+8" while {2, 3, 6} read "Left lateral sectionectomy +
    segmentectomy 6"."""
    rules = load_rules()
    assert resection_name(frozenset(segments), rules["anatomy"], rules["resections"]) == name
    assert parse_resection(name) == tuple(sorted(segments))

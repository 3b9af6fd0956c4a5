"""The vessel warnings and notes of each plan, from report blocks written here (the mutation survivors of
classify/vascular.py, seventh round of docs/mutation.md).

The gaps are hand-written numbers, not measurements (tests/test_vascular_contact.py and
tests/test_vascular_plans.py measure them on analytic phantoms). The expected messages follow the rules
file's words: a lesion "within" ``ablation_vessel_contact_mm`` of a vessel is warned of, so a gap equal to the
key is within it; ``resection_vessel_contact_mm = 0`` notes "touching masks only", a gap of exactly 0 mm.
"""

from __future__ import annotations

import copy

from netlm_imaging.classify.vascular import every_plan_messages, vascular_plan_messages

PLANNER = {"ablation_vessel_contact_mm": 5.0, "resection_vessel_contact_mm": 0.0}
STAGED = "PVE / two-stage hepatectomy / ALPPS"


def _ablate(*lids: int) -> list[dict]:
    return [{"lesion_id": k, "treatment": "ablation"} for k in lids]


def _resect(*lids: int) -> list[dict]:
    return [{"lesion_id": k, "treatment": "resection"} for k in lids]


def _user_row(segments: tuple[int, ...], treatments: list[dict], **block) -> dict:
    name = "custom:" + "+".join(map(str, segments))
    plan = {"resection_name": f"plan {name}", "notes": [], "lesion_treatments": treatments, **block}
    return {"name": name, "removed_segments": list(segments), "plan_with_sparing": plan}


def _prefix(texts: list[str]) -> list[str]:
    """Each message up to its key's name: what it says of which lesion and vessel."""
    return [t.split(" (within ")[0].split(" (planner.")[0] for t in texts]


def test_a_gap_equal_to_the_ablation_key_is_within_it_and_one_just_over_is_not():
    w, n = vascular_plan_messages(_ablate(1, 2), {1: {"portal vein": 5.0}, 2: {"portal vein": 5.05}}, PLANNER)
    assert _prefix(w) == ["lesion 1 is planned for ablation 5.0 mm from the portal vein"]
    assert n == []


def test_a_touching_resected_lesion_is_noted_at_a_zero_key_and_a_gap_at_a_larger_key_in_mm():
    w, n = vascular_plan_messages(_resect(1, 2), {1: {"hepatic vein": 0.0}, 2: {"hepatic vein": 0.8}}, PLANNER)
    assert w == []
    assert _prefix(n) == ["lesion 1 (resection) is in contact with the hepatic vein"]
    # a 1 mm key: the 1.0 mm gap is at the key (noted, in mm: only a zero gap is "in contact with")
    planner = {**PLANNER, "resection_vessel_contact_mm": 1.0}
    d = {1: {"portal vein": 1.0}, 2: {"portal vein": 0.0}, 3: {"portal vein": 1.2}}
    _, n = vascular_plan_messages(_resect(1, 2, 3), d, planner)
    assert _prefix(n) == [
        "lesion 1 (resection) is 1.0 mm from the portal vein",
        "lesion 2 (resection) is in contact with the portal vein",
    ]


def test_the_vessels_of_one_lesion_are_named_nearest_first_and_a_lesion_without_gaps_says_nothing():
    # the names in alphabetical order (hepatic vein, portal vein) are not the gaps' order (2.0, 4.0 reversed)
    d = {3: {"hepatic vein": 4.0, "portal vein": 2.0}}
    w, _ = vascular_plan_messages(_ablate(3, 4), d, PLANNER)  # lesion 4: no gap measured (no vessel near it)
    assert _prefix(w) == [
        "lesion 3 is planned for ablation 2.0 mm from the portal vein",
        "lesion 3 is planned for ablation 4.0 mm from the hepatic vein",
    ]


def test_a_warning_of_the_tool_and_three_user_plans_names_the_three_and_earlier_notes_are_kept():
    rows = [_user_row((2, 3), _ablate(1)), _user_row((5, 6), _ablate(1)), _user_row((7,), _ablate(1))]
    remnant = {
        "resection_plan": {"lesion_treatments": _ablate(1), "notes": ["the tool's earlier note"]},
        "standard_resections": [{"name": "Right hemihepatectomy", "removed_segments": [5, 6, 7, 8]}, *rows],
    }
    out = every_plan_messages(remnant, None, {1: {"portal vein": 3.0}}, PLANNER)
    (w,) = out.warnings
    assert w.startswith("lesion 1 is planned for ablation 3.0 mm from the portal vein")
    assert w.endswith(
        "; the same in user plan 'plan custom:2+3' (segments 2+3), user plan 'plan custom:5+6' (segments 5+6) "
        "and user plan 'plan custom:7' (segments 7)"
    )
    assert out.remnant["resection_plan"]["notes"] == ["the tool's earlier note"]  # a warning is no plan note
    assert out.remnant["standard_resections"][0] == remnant["standard_resections"][0]
    assert out.staged is None


def test_without_a_tool_plan_the_user_plans_notes_are_named_and_added_after_their_own():
    rows = [
        _user_row((2, 3), _resect(1), notes=["user note"]),
        _user_row((5, 6), _resect(1)),
        _user_row((7,), _resect(1)),
    ]
    del rows[2]["plan_with_sparing"]["resection_name"]  # named by its row
    out = every_plan_messages({"standard_resections": rows}, None, {1: {"inferior vena cava": 0.0}}, PLANNER)
    assert out.warnings == []
    (note,) = out.plan_notes
    own = "lesion 1 (resection) is in contact with the inferior vena cava"
    assert note.startswith(
        f"user plan 'plan custom:2+3' (segments 2+3), user plan 'plan custom:5+6' (segments 5+6) and "
        f"user plan 'custom:7' (segments 7): {own}"
    )
    notes = [r["plan_with_sparing"]["notes"] for r in out.remnant["standard_resections"]]
    assert notes[0][0] == "user note"
    assert [_prefix(n[-1:]) for n in notes] == [[own]] * 3
    assert "resection_plan" not in out.remnant


def test_a_user_row_without_its_plan_and_a_standard_row_with_one_are_left_as_they_are():
    standard = {"name": "Left lateral sectionectomy", "plan_with_sparing": {"lesion_treatments": _ablate(1)}}
    rows = [{"name": "custom:2+3", "removed_segments": [2, 3], "plan_with_sparing": None}, standard]
    out = every_plan_messages({"standard_resections": copy.deepcopy(rows)}, None, {1: {"portal vein": 1.0}}, PLANNER)
    assert out.warnings == []
    assert out.plan_notes == []
    assert out.remnant["standard_resections"] == rows


def test_the_staged_clearing_plans_of_the_tool_and_of_a_user_plan_are_named_and_noted_in_their_blocks():
    d = {1: {"portal vein": 0.0}, 2: {"hepatic vein": 2.5}}
    tool_staged = {
        "needed": True,
        "clearing_resection": "Right hemihepatectomy",
        "clearing_lesion_treatments": _resect(1) + _ablate(2),
        "notes": ["staged note"],
    }
    user_staged = {"needed": True, "clearing_resection": "Extended right", "clearing_lesion_treatments": _resect(1)}
    rows = [_user_row((2, 3), [], staged_strategies=user_staged), _user_row((5, 6), [], staged_strategies=None)]
    no_clearing = {"needed": False, "possible": None, "reason": "the one-stage plan clears every lesion"}
    rows.append(_user_row((7,), [], staged_strategies=no_clearing))
    out = every_plan_messages({"standard_resections": rows}, tool_staged, d, PLANNER)
    tool = f"the staged strategies ({STAGED}, then Right hemihepatectomy)"
    user = f"user plan 'plan custom:2+3' (segments 2+3) staged ({STAGED})"
    assert _prefix(out.warnings) == [f"{tool}: lesion 2 is planned for ablation 2.5 mm from the hepatic vein"]
    resected = "lesion 1 (resection) is in contact with the portal vein"
    # the same note of both clearing plans (no tool plan here): once, naming both, the user's first
    assert _prefix(out.plan_notes) == [f"{user} and {tool}: {resected}"]
    assert out.staged is not None
    assert out.staged["notes"][0] == "staged note"
    assert _prefix(out.staged["notes"][1:]) == [resected]
    assert out.staged["clearing_lesion_treatments"] == tool_staged["clearing_lesion_treatments"]
    blocks = [r["plan_with_sparing"]["staged_strategies"] for r in out.remnant["standard_resections"]]
    assert _prefix(blocks[0]["notes"]) == [resected]
    assert blocks[1] is None
    assert blocks[2] == no_clearing
    assert "notes" not in blocks[2]

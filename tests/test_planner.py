"""Debulking planner: independent brute force with the same feasibility rules, the DP bound, clinical boundaries.

The brute force here is written separately from the planner: it enumerates all 256 segment subsets, keeps
those whose remnant passes the consensus rule (its own graph walk over the rules' adjacency and vessel data,
tests/surgical_phantoms.py ``remnant_possible``), and every per-lesion choice (none / wedge / ablation, at most
K ablations), with its own zones (k-d tree distances between voxel centres in patient space) and its own FLR
bookkeeping from the phantom's voxel counts.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from surgical_phantoms import (
    NY,
    NZ,
    SLICES,
    VOXEL_ML,
    SlabLiver,
    assess,
    parenchyma_ml_by_segment,
    remnant_possible,
    weight_for_telv,
    zone_mask,
)

from netlm_imaging.classify.planner import LesionOption, optimise_plan, remnant_after_zones_ml
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs

ANATOMY = load_rules()["anatomy"]


def _brute_force(p, truth, seg_nt, required_ml, *, margin_mm, abl_margin_mm, abl_max_mm, enuc_max_mm, k_max):
    """Max treated volume over anatomically possible subsets x per-lesion choices; None if nothing is feasible.

    truth: list of (lesion id, volume_ml, diameter_mm, set of segments touched)
    """
    zones = {
        lid: (
            parenchyma_ml_by_segment(p, zone_mask(p, lid, margin_mm)),
            parenchyma_ml_by_segment(p, zone_mask(p, lid, abl_margin_mm)),
        )
        for lid, *_ in truth
    }
    best = None
    for r in range(9):
        for removed in itertools.combinations(range(1, 9), r):
            removed = set(removed)
            kept = set(range(1, 9)) - removed
            if not remnant_possible(kept, ANATOMY):
                continue
            flr = sum(v for s, v in seg_nt.items() if s in kept)
            choices = []
            for lid, vol, diam, segs in truth:
                if segs and segs <= removed:
                    choices.append([(vol, 0.0, 0)])
                    continue
                opts = [(0.0, 0.0, 0)]
                if diam <= enuc_max_mm:
                    opts.append((vol, sum(zones[lid][0][s] for s in kept), 0))
                if diam <= abl_max_mm:
                    opts.append((vol, sum(zones[lid][1][s] for s in kept), 1))
                choices.append(opts)
            for combo in itertools.product(*choices):
                if sum(a for *_, a in combo) > k_max:
                    continue
                cost = sum(c for _, c, _ in combo)
                if flr - cost > required_ml + 1e-9:  # the default comparator ">"
                    val = sum(v for v, _, _ in combo)
                    if best is None or val > best + 1e-12:
                        best = val
    return best


def _random_layout(rng):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    truth = []  # (id, volume, diameter, segments touched)
    n = int(rng.integers(3, 6))
    y = 0
    for _ in range(n):
        seg = int(rng.integers(1, 9))
        a, b = p.ranges[seg]
        nx = int(rng.integers(1, 4))
        x0 = int(rng.integers(a, b))  # may run into the next slab
        x0 = min(x0, p.nx - nx)
        ny, nz = int(rng.integers(2, 7)), int(rng.integers(3, 12))
        if y + ny > NY:
            break
        diam = float(rng.choice([18.0, 29.0, 30.0, 31.0, 45.0, 60.0]))
        les = p.add_box(x0, nx, y, ny, 0, nz, max_3d_diameter_mm=diam)
        segs = {next(k for k, (lo, hi) in p.ranges.items() if lo <= x < hi) for x in range(x0, x0 + nx)}
        truth.append((les.id, les.volume_ml, diam, segs))
        y += ny
    lesion_vox = p.labels > 0
    seg_nt = {s: float(np.count_nonzero((p.seg == s) & ~lesion_vox)) * VOXEL_ML for s in range(1, 9)}
    return p, truth, seg_nt


@pytest.mark.parametrize(
    ("margin_mm", "ablation", "k_max"),
    [(10.0, True, 6), (25.0, False, 6), (5.0, True, 1)],  # wide margins make resection compete; K=1 binds
)
@pytest.mark.parametrize("loose", [False, True])  # loose: big resections fit, so the anatomy rule binds
@pytest.mark.parametrize("seed", range(8))
def test_planner_matches_independent_brute_force(tmp_path, seed, margin_mm, ablation, k_max, loose):
    rng = np.random.default_rng(1000 + seed)
    p, truth, seg_nt = _random_layout(rng)
    total_nt = sum(seg_nt.values())
    if loose:
        required = float(rng.uniform(60.0, 200.0))
    else:
        required = total_nt - float(rng.uniform(5.0, 260.0))  # slack 5-260 mL: binds sparing and resection
    telv = required / 0.40  # cirrhosis threshold 40% of TELV
    height = 175.0
    clinical = ClinicalInputs(height_cm=height, weight_kg=weight_for_telv(telv, height), liver_condition="cirrhosis")
    rules_file = tmp_path / "planner.toml"
    rules_file.write_text(
        f"[planner]\nmargin_mm = {margin_mm}\nallow_ablation = {str(ablation).lower()}\n"
        f"max_ablations_per_operation = {k_max}\n"
    )
    a = assess(p.ctx(), clinical, load_rules(rules_file))
    plan = a.remnant["resection_plan"]
    expected = _brute_force(
        p,
        truth,
        seg_nt,
        required,
        margin_mm=margin_mm,
        abl_margin_mm=5.0,
        abl_max_mm=30.0 if ablation else -1.0,
        enuc_max_mm=50.0,
        k_max=k_max,
    )
    total = sum(t[1] for t in truth)
    assert expected is not None
    assert plan["treated_tumor_ml"] == pytest.approx(expected, abs=1e-9)
    if plan["treated_lesion_count"] < len(truth):  # not everything cleared: the percentage is only a bound
        assert a.classification["achievable_debulking_percent"] == pytest.approx(100 * expected / total)
    # the plan's own remnant, recomputed here on the union of its zones, is possible and adequate
    removed = set(plan["resected_segments"])
    kept = set(range(1, 9)) - removed
    assert remnant_possible(kept, ANATOMY)
    union = np.zeros(p.shape, dtype=bool)
    n_abl = 0
    for t, (lid, _vol, diam, segs) in zip(plan["lesion_treatments"], truth):
        assert t["lesion_id"] == lid
        if t["treatment"] == "enucleation":
            assert diam <= 50.0
            union |= zone_mask(p, lid, margin_mm)
        elif t["treatment"] == "ablation":
            assert ablation
            assert diam <= 30.0
            n_abl += 1
            union |= zone_mask(p, lid, 5.0)
        elif t["treatment"] == "resection":
            assert segs <= removed
        else:
            assert t["untreated_reason"]
    assert n_abl <= k_max
    lost = parenchyma_ml_by_segment(p, union)
    flr = sum(seg_nt[s] - lost[s] for s in kept)
    assert plan["remnant_ml"] == pytest.approx(flr)
    assert flr > required - 1e-6


def _opt(i, vol, seg, wedge, abl):
    z = np.zeros(9)
    return LesionOption(
        i,
        vol,
        frozenset({seg}),
        None if wedge is None else np.concatenate([[wedge], z[1:]]),
        None if abl is None else np.concatenate([[abl], z[1:]]),
    )


def _bf_options(options, flr_by, required, k_max):
    best = None
    for s, flr in flr_by.items():
        per = []
        for o in options:
            if o.segments <= s:
                per.append([(o.volume_ml, 0.0, 0)])
                continue
            c = [(0.0, 0.0, 0)]
            if o.enucleation_ml_by_label is not None:
                c.append((o.volume_ml, float(o.enucleation_ml_by_label[0]), 0))
            if o.ablation_ml_by_label is not None:
                c.append((o.volume_ml, float(o.ablation_ml_by_label[0]), 1))
            per.append(c)
        for combo in itertools.product(*per):
            if sum(x[2] for x in combo) <= k_max and flr - sum(x[1] for x in combo) > required:
                v = sum(x[0] for x in combo)
                best = v if best is None else max(best, v)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_discretised_dp_is_feasible_and_within_its_bound(seed):
    rng = np.random.default_rng(seed)
    n = 7
    options = [
        _opt(
            i + 1,
            float(rng.uniform(1, 30)),
            int(rng.integers(1, 9)),
            float(rng.uniform(5, 60)) if rng.random() < 0.8 else None,
            float(rng.uniform(3, 40)) if rng.random() < 0.6 else None,
        )
        for i in range(n)
    ]
    flr_by = {frozenset(): 300.0, frozenset({2}): 260.0, frozenset({5, 6}): 210.0, frozenset({7}): 240.0}
    for s in list(flr_by):
        flr_by[s] += float(rng.uniform(-3, 3))
    required = 150.0
    res = 0.5
    k = 2
    dp = optimise_plan(options, flr_by, required, exact_max_lesions=0, cost_resolution_ml=res, max_ablations=k)
    assert "dynamic programme" in dp.optimiser
    upper = _bf_options(options, flr_by, required, k)
    lower = _bf_options(options, flr_by, required + n * res, k)
    assert lower - 1e-9 <= dp.treated_ml <= upper + 1e-9
    # feasible in the true costs, within the ablation count
    spent = sum(c for kind, c in dp.treatments.values() if kind in ("enucleation", "ablation"))
    assert flr_by[frozenset(dp.resected_segments)] - spent > required
    assert sum(1 for kind, _ in dp.treatments.values() if kind == "ablation") <= k
    exact = optimise_plan(options, flr_by, required, exact_max_lesions=20, max_ablations=k)
    assert exact.treated_ml == pytest.approx(upper)
    for plan in (dp, exact):  # the remnant is the resection's FLR less the parenchyma the treatments cost
        used = sum(c for kind, c in plan.treatments.values() if kind in ("enucleation", "ablation"))
        assert plan.remnant_ml == pytest.approx(flr_by[frozenset(plan.resected_segments)] - used)


@pytest.mark.parametrize(("comparator", "treated"), [(">=", True), (">", False)])
def test_a_plan_leaving_exactly_the_required_flr_follows_the_comparator(comparator, treated):
    """FLR 200 mL, 150 mL required, an enucleation costing 50 mL: the remnant is exactly the threshold, adequate
    under the rules' ">=" (clinical_rules.md section 6) and not under ">"."""
    options = [_opt(1, 12.0, 3, 50.0, None)]
    plan = optimise_plan(options, {frozenset(): 200.0}, 150.0, comparator=comparator, exact_max_lesions=20)
    assert (plan.treatments[1][0] == "enucleation") is treated
    assert plan.treated_ml == (12.0 if treated else 0.0)
    dp = optimise_plan(options, {frozenset(): 200.0}, 150.0, comparator=comparator, exact_max_lesions=0)
    assert dp.treated_ml == plan.treated_ml


def test_of_equal_plans_the_one_resecting_fewer_segments_wins():
    """Two resections take the lesion and leave the same FLR (segment 3 holds no liver left to keep): the plan
    resects the fewer segments."""
    options = [_opt(1, 20.0, 2, None, None)]
    flr_by = {frozenset({2, 3}): 400.0, frozenset({2}): 400.0, frozenset(): 450.0}
    plan = optimise_plan(options, flr_by, 300.0, exact_max_lesions=20)
    assert plan.resected_segments == [2]
    assert plan.treatments[1] == ("resection", 0.0)


def _boundary_rules(tmp_path, extra=""):
    f = tmp_path / "boundary.toml"
    f.write_text(
        "[planner]\nallow_enucleation = false\nallow_ablation = false\n"
        '[flr]\ndenominator = "non_tumorous"\n[flr.non_tumorous_threshold_percent]\nnormal = 80.0\n' + extra
    )
    return load_rules(f)


def _two_lesion_liver(a_shape, b_shape):
    """Lesion A in segment 7, lesion B in segment 2; only one of the two segments can go (80% rule)."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(7, *a_shape)
    p.add_in_segment(2, *b_shape)
    return p


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "expected_percent", "meets"),
    [((4, 6, 6), (2, 4, 7), 72.0, True), ((2, 4, 17), (2, 4, 8), 68.0, False), ((4, 5, 7), (3, 4, 5), 70.0, True)],
)
def test_debulking_just_above_and_below_70(tmp_path, a_shape, b_shape, expected_percent, meets):
    a_vox, b_vox = math.prod(a_shape), math.prod(b_shape)
    assert 100 * a_vox / (a_vox + b_vox) == pytest.approx(expected_percent)
    # independent check of the FLR arithmetic that makes "both segments" infeasible
    total_nt = 30 * NY * NZ - a_vox - b_vox
    assert (30 - 5 - 3) * NY * NZ / total_nt < 0.80 <= (30 - 5) * NY * NZ / total_nt
    p = _two_lesion_liver(a_shape, b_shape)
    out = assess(p.ctx(), ClinicalInputs(symptoms="bulk", liver_condition="normal"), _boundary_rules(tmp_path))
    plan = out.remnant["resection_plan"]
    assert plan["resected_segments"] == [7]
    assert out.classification["achievable_debulking_percent"] == pytest.approx(expected_percent)
    assert plan["meets_debulking_threshold"] is meets
    assert out.classification["mahuron_type"] == ("2" if meets else "3")


def test_exactly_70_fails_with_strict_comparator(tmp_path):
    p = _two_lesion_liver((4, 5, 7), (3, 4, 5))
    rules = _boundary_rules(tmp_path, '[debulking]\ncomparator = ">"\n')
    out = assess(p.ctx(), ClinicalInputs(symptoms="none", liver_condition="normal"), rules)
    assert out.classification["achievable_debulking_percent"] == pytest.approx(70.0)
    assert out.classification["mahuron_type"] == "4"


def test_user_rules_threshold_changes_the_outcome(tmp_path):
    p = _two_lesion_liver((2, 4, 17), (2, 4, 8))  # 68% achievable
    clin = ClinicalInputs(symptoms="hormonal", liver_condition="normal")
    assert assess(p.ctx(), clin, _boundary_rules(tmp_path)).classification["mahuron_type"] == "3"
    lowered = _boundary_rules(tmp_path, "[debulking]\nthreshold_percent = 65\n")
    out = assess(p.ctx(), clin, lowered)
    assert out.classification["mahuron_type"] == "2"
    assert out.classification["rules_version"] == "netlm-rules-2026.1+user:boundary.toml"


def _lesion_only_liver(diameters):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for i, d in enumerate(diameters):
        p.add_box(2 + 3 * i, 2, 2, 2, 2, 2, max_3d_diameter_mm=d)
    return p


def test_all_lesions_ablatable_without_segment_map(tmp_path):
    f = tmp_path / "abl.toml"
    f.write_text("[planner]\nallow_enucleation = false\n")
    p = _lesion_only_liver([12.0, 25.0, 30.0])  # 30.0 is at the limit (<=)
    out = assess(p.ctx(with_segments=False), ClinicalInputs(height_cm=175, weight_kg=70), load_rules(f))
    plan = out.remnant["resection_plan"]
    assert [t["treatment"] for t in plan["lesion_treatments"]] == ["ablation"] * 3
    assert plan["resected_segments"] == []
    assert plan["segment_map_used"] is False
    assert any("lesion-level treatments only" in n for n in plan["notes"])
    assert out.classification["achievable_debulking_percent"] == pytest.approx(100.0)
    # ablation zones = each lesion dilated by 5 mm on the liver mask (k-d tree here), counted once
    union = np.zeros(p.shape, dtype=bool)
    for lid in (1, 2, 3):
        union |= zone_mask(p, lid, 5.0)
    lost = sum(parenchyma_ml_by_segment(p, union).values())  # no segment map given to the planner: all counts
    assert plan["remnant_ml"] == pytest.approx(30 * NY * NZ * VOXEL_ML - 24 * VOXEL_ML - lost)
    assert lost > 0
    assert out.segments is None
    assert out.classification["distribution"] == "unknown"


def test_no_lesion_ablatable(tmp_path):
    f = tmp_path / "abl.toml"
    f.write_text("[planner]\nallow_enucleation = false\n")
    p = _lesion_only_liver([30.5, 31.0, 45.0])
    out = assess(
        p.ctx(with_segments=False), ClinicalInputs(height_cm=175, weight_kg=70, symptoms="none"), load_rules(f)
    )
    plan = out.remnant["resection_plan"]
    assert [t["treatment"] for t in plan["lesion_treatments"]] == [None] * 3
    assert all("mm > 30 mm" in t["untreated_reason"] for t in plan["lesion_treatments"])
    # without a segment map nothing decides how much a resection would add: no figure, no type, a range
    c = out.classification
    assert c["achievable_debulking_percent"] is None
    assert c["achievable_debulking_count_percent"] is None  # a count beside a lower bound would read as decided
    assert c["achievable_debulking_lower_bound_percent"] == 0.0
    assert c["mahuron_type"] is None
    assert c["mahuron_type_range"] == ["1", "2", "4"]  # 0% -> 4 (no symptoms); >= 70% -> 2; 100% of 3 -> 1
    assert "segment map" in c["missing_inputs"]
    assert any("depending on the segment map" in r for r in c["rationale"])


def test_liver_too_involved_for_any_adequate_plan():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for s in range(2, 9):  # every segment but the caudate is tumour
        p.add_in_segment(s, SLICES[s], NY, NZ)
    telv = -794.41 + 1267.28 * math.sqrt(175 * 70 / 3600)
    nontumour = SLICES[1] * NY * NZ * VOXEL_ML  # 80 mL
    assert 100 * nontumour / telv < 20.0
    out = assess(
        p.ctx(),
        ClinicalInputs(
            height_cm=175, weight_kg=70, symptoms="hormonal", grade=1, performance_status=0, extrahepatic_disease=False
        ),
        load_rules(),
    )
    plan = out.remnant["resection_plan"]
    assert plan["feasible"] is False
    assert plan["treated_tumor_ml"] == 0.0
    assert out.classification["achievable_debulking_percent"] == 0.0
    assert out.classification["mahuron_type"] == "3"
    assert out.classification["cloyd_criteria"]["adequate_flr"]["met"] is False
    assert out.classification["resectable_cloyd"] is False
    assert any("no plan keeps an adequate FLR" in r for r in out.classification["rationale"])
    assert out.classification["burden_category"] == ">50"


def test_an_empty_remnant_is_zero_not_a_float_residue():
    # The kept segments' volume is a sum of per-segment volumes, the zones' a count x voxel
    # volume: for 1 + 1 + 5 voxels of 0.1 mL the plain subtraction leaves -1.1e-16 mL, and for
    # other counts +1e-16, from which a staged strategy would need a growth of 1e17 %.
    residues = []
    for counts in ((1, 1, 5), (3, 3, 1), (2, 7, 4), (1, 2, 3, 4, 5, 6, 7, 8)):
        flr = sum(n * 0.1 for n in counts)
        residues.append(flr - sum(counts) * 0.1)
        assert remnant_after_zones_ml(flr, sum(counts), 0.1) == 0.0
    assert any(r != 0.0 for r in residues)  # the case is real, not vacuous
    # half a voxel or more is a remnant, kept as computed
    assert remnant_after_zones_ml(0.7, 5, 0.1) == pytest.approx(0.2)
    assert remnant_after_zones_ml(0.55, 5, 0.1) == pytest.approx(0.05)
    assert remnant_after_zones_ml(0.54, 5, 0.1) == 0.0


def test_zones_are_measured_only_for_the_treatments_the_rules_allow(tmp_path):
    """sparing.zone_lesion_ids: a lesion over a treatment's diameter limit (or a disabled treatment) gets no such zone,
    and lesion_options refuses zones that lack one the rules allow."""
    from netlm_imaging.classify.planner import lesion_options
    from netlm_imaging.classify.sparing import zone_lesion_ids
    from netlm_imaging.classify.zones import compute_zones

    diameters = [12.0, 30.0, 30.5, 50.0, 51.0]
    p = _lesion_only_liver(diameters)
    ctx = p.ctx(with_segments=False)
    planner = load_rules()["planner"]
    enuc_max, abl_max = float(planner["enucleation_max_diameter_mm"]), float(planner["ablation_max_diameter_mm"])
    ids = [les.id for les in ctx.intrahepatic_lesions]
    assert zone_lesion_ids(ctx.intrahepatic_lesions, planner) == {
        "enucleation_ids": [i for i, d in zip(ids, diameters) if d <= enuc_max],
        "ablation_ids": [i for i, d in zip(ids, diameters) if d <= abl_max],
    }
    f = tmp_path / "no_ablation.toml"
    f.write_text("[planner]\nallow_ablation = false\n")
    assert zone_lesion_ids(ctx.intrahepatic_lesions, load_rules(f)["planner"])["ablation_ids"] == []
    margins = float(planner["margin_mm"]), float(planner["ablation_margin_mm"])
    needed = compute_zones(ctx, ids, *margins, **zone_lesion_ids(ctx.intrahepatic_lesions, planner))
    every = compute_zones(ctx, ids, *margins)
    same = [
        (o.lesion_id, o.unavailable, None if o.ablation_ml_by_label is None else o.ablation_ml_by_label.tolist())
        for o in lesion_options(ctx, None, planner, needed)
    ]
    assert same == [
        (o.lesion_id, o.unavailable, None if o.ablation_ml_by_label is None else o.ablation_ml_by_label.tolist())
        for o in lesion_options(ctx, None, planner, every)
    ]
    too_few = compute_zones(ctx, ids, *margins, ablation_ids=[])
    with pytest.raises(ValueError, match="ablation zone was not computed"):
        lesion_options(ctx, None, planner, too_few)


def test_a_map_missing_segments_says_the_plan_is_a_lower_bound():
    """A segment map without segment 4 (its slab left unlabelled in the liver mask): the planner cannot count that
    liver as FLR nor route the remnant through segment 4, and says so with the unlabelled volume (4 slices here)."""
    from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, VOXEL_ML, SlabLiver, assess

    from netlm_imaging.classify.rules import load_rules

    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(6, 1, 2, 2)
    p.seg[p.seg == 4] = 0
    c = assess(p.ctx(), FULL_CLINICAL, load_rules()).classification
    expected = SLICES[4] * NY * NZ * VOXEL_ML  # 160 mL, no tumour there
    note = f"segment(s) 4 absent from the map while {expected:.1f} mL of non-tumorous liver has no segment label"
    assert any(r.startswith(note) for r in c["rationale"])
    full = SlabLiver(SLICES, ny=NY, nz=NZ)
    full.add_in_segment(6, 1, 2, 2)
    assert not any(
        "absent from the map" in r for r in assess(full.ctx(), FULL_CLINICAL, load_rules()).classification["rationale"]
    )

"""Gadoxetic-acid MRI: provenance, phase, a.u. intensities, LSC / RE / HUI and functional FLR.

Truths are box arithmetic on the phantoms of ``mri_factory`` (constant signal per region on an
oblique grid), the rules file's own window values, and the real TotalSegmentator MR example
(../shared/data/MANIFEST.md: liver 498.96 mL, no contrast attributes).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from dicom_factory import deterministic_uid, write_image_series
from mri_factory import (
    AFFINE,
    LESION_BOXES,
    SPLEEN_BOX,
    box,
    box_voxels,
    couinaud_map,
    label_map,
    lesion_segment,
    linear_bias,
    mr_headers,
    segment_boxes,
    signal_image,
    write_nifti_study,
)
from rules_coverage import covers, user_rules
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import analyze
from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.errors import InputError, UsageError
from netlm_imaging.io.mr_phase import classify_mr_phase
from netlm_imaging.report.model import validate_report

ROOT = Path(__file__).resolve().parents[1]
LABELS = "liver=1,lesion=2,spleen=3"
VOXEL_ML = abs(float(np.linalg.det(AFFINE[:3, :3]))) / 1000.0
HBP = mr_headers("101500", "103500")  # 20 min after injection


def _analyze(paths: dict[str, Path], **opts) -> dict:
    segs = [paths["seg"], f"segments={paths['segments']}"]
    rep = analyze(
        image=paths["image"],
        segs=segs,
        labels=LABELS,
        options=AnalyzeOptions(modality="MR", **opts),
    )
    return rep.to_dict()


def _lesion_voxels_in(seg: int) -> int:
    return sum(box_voxels(lb) for n, lb in enumerate(LESION_BOXES) if lesion_segment(n) == seg)


def _plan_functional_flr(rep: dict, labels: np.ndarray, seg: np.ndarray, hui: dict[int, float], *, once: bool = True):
    """(functional FLR % of the plan, {segment: union mL}) computed here from the masks.

    ``once=False``: each zone charged on its own (what a double count of overlaps would give).

    The zones of the plan's sparing treatments are the liver voxels within the rules' margin of a lesion
    voxel centre (k-d tree in patient space); their union's non-tumorous mL in each kept segment is charged
    at that segment's HUI per mL.
    """
    import cc3d
    from scipy.spatial import cKDTree

    planner = load_rules()["planner"]
    plan = rep["remnant"]["resection_plan"]
    liver = (labels == 1) | (labels == 2)
    lesion = labels == 2
    comps = {}  # voxel count -> lesion voxels (the phantoms' lesions differ in size)
    cc = cc3d.connected_components(lesion.astype(np.uint8), connectivity=26)
    for n in range(1, int(cc.max()) + 1):
        comps[int((cc == n).sum())] = np.argwhere(cc == n)
    count_of = {les["id"]: les["voxel_count"] for les in rep["lesions"]}
    pts_idx = np.argwhere(liver & ~lesion)
    pts = pts_idx @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    union = np.zeros(labels.shape, dtype=bool)
    separate = dict.fromkeys(range(1, 9), 0.0)
    for t in plan["lesion_treatments"]:
        if t["treatment"] not in ("enucleation", "ablation"):
            continue
        margin = planner["margin_mm"] if t["treatment"] == "enucleation" else planner["ablation_margin_mm"]
        vox = comps[count_of[t["lesion_id"]]]
        d, _ = cKDTree(vox @ AFFINE[:3, :3].T + AFFINE[:3, 3]).query(pts, k=1)
        zone = np.zeros(labels.shape, dtype=bool)
        zone[tuple(pts_idx[d <= margin * (1 + 1e-6)].T)] = True
        union |= zone
        for s in separate:
            separate[s] += np.count_nonzero(zone & (seg == s)) * VOXEL_ML
    kept = [s for s in range(1, 9) if s not in plan["resected_segments"]]
    nontumorous = {s: np.count_nonzero(liver & ~lesion & (seg == s)) * VOXEL_ML for s in range(1, 9)}
    union_by_seg = {s: np.count_nonzero(union & (seg == s)) * VOXEL_ML if once else separate[s] for s in kept}
    remnant = sum(hui[s] for s in kept) - sum(hui[s] * min(1.0, union_by_seg[s] / nontumorous[s]) for s in kept)
    return 100.0 * remnant / sum(hui.values()), union_by_seg


# ---------------------------------------------------------------- ratios
def test_liver_spleen_and_lesion_ratios_on_a_hepatobiliary_phantom(tmp_path):
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=HBP)
    rep = _analyze(paths)
    mri = rep["mri"]
    assert mri["phase"]["phase"] == "hepatobiliary"
    assert mri["phase"]["delay_s"] == pytest.approx(1200.0)
    assert mri["provenance"]["source"] == "sidecar"
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(400.0)
    assert mri["liver_reference"]["sd_signal_au"] == pytest.approx(0.0, abs=1e-6)
    assert mri["spleen_reference"]["mean_signal_au"] == pytest.approx(200.0)
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(2.0)
    for les in rep["lesions"]:
        assert les["mean_signal_au"] == pytest.approx(120.0)
        assert les["lesion_to_liver_signal_ratio"] == pytest.approx(0.3)
        assert les["lesion_to_liver_contrast"] == pytest.approx(0.7)
        assert "relative_enhancement" not in les  # no pre-contrast series
    assert "mean_signal_au" in rep["liver"]
    assert not re.search(r"\bHU\b", json.dumps(mri))
    validate_report(rep)


def test_references_are_eroded_so_edge_voxels_do_not_count(tmp_path):
    # a 1-voxel rim of the spleen box at 50 (partial volume): the eroded reference keeps 200
    img = signal_image(400.0, 200.0, 120.0)
    rim = np.zeros(img.shape, dtype=bool)
    rim[box(SPLEEN_BOX)] = True
    inner = np.zeros_like(rim)
    (i0, i1), (j0, j1), (k0, k1) = SPLEEN_BOX
    inner[i0 + 1 : i1 - 1, j0 + 1 : j1 - 1, k0 + 1 : k1 - 1] = True
    img[rim & ~inner] = 50.0
    rep = _analyze(write_nifti_study(tmp_path, img, sidecar=HBP))
    assert rep["mri"]["spleen_reference"]["mean_signal_au"] == pytest.approx(200.0)
    assert rep["mri"]["spleen_reference"]["eroded"] is True
    whole = (50.0 * (box_voxels(SPLEEN_BOX) - int(inner.sum())) + 200.0 * int(inner.sum())) / box_voxels(SPLEEN_BOX)
    assert whole < 190.0  # the un-eroded mean would be biased


# ---------------------------------------------------------------- HUI
def test_hui_per_segment_sums_to_total_and_functional_flr_of_right_hepatectomy(tmp_path):
    signal = {seg: 300.0 + 25.0 * seg for seg in range(1, 9)}
    spleen = 200.0
    rep = _analyze(write_nifti_study(tmp_path, signal_image(signal, spleen, 120.0), sidecar=HBP))
    mri = rep["mri"]
    truth = {}
    for seg, sb in segment_boxes().items():
        n = box_voxels(sb) - _lesion_voxels_in(seg)
        truth[seg] = n * VOXEL_ML * (signal[seg] / spleen - 1.0)
    total = sum(truth.values())
    got = {row["segment"]: row["hui_ml"] for row in mri["hui_by_segment"]}
    for seg in range(1, 9):
        assert got[seg] == pytest.approx(truth[seg], rel=1e-4)
    assert mri["hepatic_uptake_index_ml"] == pytest.approx(total, rel=1e-5)
    assert sum(got.values()) + mri["hui_unassigned_ml"] == pytest.approx(mri["hepatic_uptake_index_ml"], rel=1e-5)
    assert mri["hui_unassigned_ml"] == pytest.approx(0.0, abs=1e-6)
    # right hepatectomy removes 5-8: the functional remnant is segments 1-4
    expected = 100.0 * sum(truth[s] for s in (1, 2, 3, 4)) / total
    rows = {r["name"]: r for r in mri["functional_flr"]}
    assert rows["right_hepatectomy"]["functional_flr_percent"] == pytest.approx(expected, rel=1e-4)
    std = {r["name"]: r for r in rep["remnant"]["standard_resections"]}
    assert std["right_hepatectomy"]["functional_flr_percent"] == pytest.approx(expected, rel=1e-4)
    # the volumetric FLR stands beside it and differs (segments 1-4 are the less avid half here)
    assert rows["right_hepatectomy"]["volumetric_flr_percent_of_non_tumorous"] > expected
    # the debulking plan: kept segments' HUI minus the union of the sparing zones, charged where it lies
    plan = rep["remnant"]["resection_plan"]
    assert plan["lesion_treatments"]  # the phantom's lesions are treated by sparing options
    plan_expected, union_by_seg = _plan_functional_flr(rep, label_map(), couinaud_map(), truth)
    assert {int(k): v for k, v in plan["zone_union_ml_by_segment"].items() if int(k)} == pytest.approx(
        union_by_seg, rel=1e-9
    )
    assert mri["functional_flr_plan"]["functional_flr_percent"] == pytest.approx(plan_expected, rel=1e-4)
    assert plan["functional_flr_percent"] == pytest.approx(plan_expected, rel=1e-4)
    assert mri["research_measure"] is True
    assert "Yamada" in mri["source"]


def test_functional_flr_of_the_plan_charges_overlapping_zones_once(tmp_path):
    """Two lesions 3 mm apart: their 10 mm zones overlap; the overlap is charged once (not per treatment)."""
    from phantoms import write_nifti

    signal = {seg: 300.0 + 25.0 * seg for seg in range(1, 9)}
    spleen = 200.0
    labels = label_map()
    labels[labels == 2] = 1
    lesion_boxes = (((8, 12), (8, 13), (5, 9)), ((14, 18), (8, 14), (5, 10)))  # gap of 2 voxels along i
    img = signal_image(signal, spleen, 120.0)
    seg = couinaud_map()
    for s_, sb in segment_boxes().items():  # the default lesions become liver
        img[box(sb)] = signal[s_]
    for lb in lesion_boxes:
        labels[box(lb)] = 2
        img[box(lb)] = 120.0
    paths = {
        "image": write_nifti(tmp_path / "mr.nii.gz", img, AFFINE),
        "seg": write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE),
        "segments": write_nifti(tmp_path / "couinaud.nii.gz", seg, AFFINE),
    }
    (tmp_path / "mr.json").write_text(json.dumps(HBP), encoding="utf-8")
    rep = _analyze(paths)
    plan = rep["remnant"]["resection_plan"]
    kinds = [t["treatment"] for t in plan["lesion_treatments"]]
    assert len(kinds) == 2
    assert set(kinds) <= {"enucleation", "ablation"}  # both spared: two zones
    liver = (labels == 1) | (labels == 2)
    hui = {
        s_: np.count_nonzero(liver & (labels != 2) & (seg == s_)) * VOXEL_ML * (signal[s_] / spleen - 1.0)
        for s_ in range(1, 9)
    }
    expected, union_by_seg = _plan_functional_flr(rep, labels, seg, hui)
    twice, separate_by_seg = _plan_functional_flr(rep, labels, seg, hui, once=False)
    assert sum(separate_by_seg.values()) > sum(union_by_seg.values()) + 0.5  # the zones overlap by > 0.5 mL
    assert sum(t["parenchyma_cost_ml"] for t in plan["lesion_treatments"]) == pytest.approx(
        sum(separate_by_seg.values()), rel=1e-6
    )
    got = rep["mri"]["functional_flr_plan"]["functional_flr_percent"]
    assert got == pytest.approx(expected, rel=1e-4)
    assert abs(got - twice) > 0.05  # a double count would show
    assert plan["remnant_ml"] == pytest.approx(
        sum(np.count_nonzero(liver & (labels != 2) & (seg == s_)) * VOXEL_ML for s_ in range(1, 9))
        - sum(union_by_seg.values()),
        rel=1e-6,
    )


def test_no_functional_index_without_a_spleen_or_outside_the_hepatobiliary_phase(tmp_path):
    pv = mr_headers("101500", "101610")  # 70 s: portal venous
    rep = _analyze(write_nifti_study(tmp_path / "pv", signal_image(400.0, 200.0, 120.0), sidecar=pv))
    assert rep["mri"]["phase"]["phase"] == "portal_venous"
    assert rep["mri"]["hepatic_uptake_index_ml"] is None
    assert rep["mri"]["liver_to_spleen_contrast_ratio"] is None
    assert any("hepatobiliary" in m for m in rep["mri"]["missing_inputs"])
    paths = write_nifti_study(tmp_path / "nospleen", signal_image(400.0, 200.0, 120.0), sidecar=HBP)
    nospleen = analyze(
        image=paths["image"],
        segs=[paths["seg"], f"segments={paths['segments']}"],
        labels="liver=1,lesion=2",
        options=AnalyzeOptions(modality="MR"),
    ).to_dict()
    assert nospleen["mri"]["hepatic_uptake_index_ml"] is None
    assert any("spleen" in m for m in nospleen["mri"]["missing_inputs"])


# ---------------------------------------------------------------- relative enhancement
def test_relative_enhancement_against_a_pre_contrast_twin(tmp_path):
    pre = signal_image(250.0, 180.0, 100.0)
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=HBP, pre=pre)
    rep = _analyze(paths, pre_contrast=paths["pre"])
    re_ = rep["mri"]["relative_enhancement"]
    assert re_["liver"] == pytest.approx((400.0 - 250.0) / 250.0)
    assert re_["spleen"] == pytest.approx((200.0 - 180.0) / 180.0)
    for les in rep["lesions"]:
        assert les["relative_enhancement"] == pytest.approx((120.0 - 100.0) / 100.0)


def test_pre_contrast_on_another_grid_is_resampled_by_position(tmp_path):
    # the pre-contrast grid is shifted by exactly one voxel along i in patient space and holds the
    # regions shifted with it: after resampling by position the references line up again
    shifted = AFFINE.copy()
    shifted[:3, 3] = AFFINE[:3, 3] - AFFINE[:3, 0]  # voxel (i + 1) of this grid is voxel i of the image grid
    pre = np.roll(signal_image(250.0, 180.0, 100.0), 1, axis=0)
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=HBP, pre=pre, pre_affine=shifted)
    rep = _analyze(paths, pre_contrast=paths["pre"])
    assert rep["mri"]["relative_enhancement"]["liver"] == pytest.approx(0.6, rel=1e-5)
    assert rep["mri"]["relative_enhancement"]["spleen"] == pytest.approx(20.0 / 180.0, rel=1e-5)


# ---------------------------------------------------------------- bias field
def test_n4_removes_a_bias_field_before_the_ratios(tmp_path):
    biased = signal_image(400.0, 200.0, 120.0, background=40.0) * linear_bias(0.5)
    paths = write_nifti_study(tmp_path, biased, sidecar=HBP)
    raw = _analyze(paths)["mri"]
    fixed = _analyze(paths, n4=True)["mri"]
    assert raw["bias_field_correction"]["applied"] is False
    assert fixed["bias_field_correction"]["applied"] is True
    err_raw = abs(raw["liver_to_spleen_contrast_ratio"] - 2.0) / 2.0
    err_n4 = abs(fixed["liver_to_spleen_contrast_ratio"] - 2.0) / 2.0
    assert err_raw > 0.15  # the field biases LSC (liver on the low side, spleen on the high side)
    assert err_n4 < err_raw / 3


# ---------------------------------------------------------------- phase from headers
RULES = load_rules()
WINDOWS = list(
    zip(
        RULES["mri"]["phase_order"],
        RULES["mri"]["phase_window_start_s"],
        RULES["mri"]["phase_window_end_s"],
        strict=True,
    )
)


@pytest.mark.parametrize(("name", "start", "end"), WINDOWS)
def test_each_phase_window_boundary(name, start, end):
    facts = {"contrast_agent": "gadoxetate disodium", "delay_s": start}
    assert classify_mr_phase(facts, RULES)["phase"] == name
    facts["delay_s"] = end - 1e-3
    assert classify_mr_phase(facts, RULES)["phase"] == name
    facts["delay_s"] = end
    after = classify_mr_phase(facts, RULES)["phase"]
    nxt = [n for n, s, _ in WINDOWS if s == end]
    assert after == (nxt[0] if nxt else "unknown")


def test_phase_from_dicom_times_midnight_and_missing_values():
    assert classify_mr_phase({"contrast_agent": "Primovist", "delay_s": 9.0}, RULES)["phase"] == "unknown"
    assert classify_mr_phase({"contrast_agent": "Primovist", "delay_s": -30.0}, RULES)["phase"] == "pre-contrast"
    assert classify_mr_phase({"contrast_agent": "NONE"}, RULES)["phase"] == "pre-contrast"
    out = classify_mr_phase({"contrast_agent": "Gadovist", "delay_s": 1200.0}, RULES)
    assert out["phase"] == "unknown"
    assert "not hepatocyte-specific" in out["notes"][0]
    out = classify_mr_phase({"delay_s": 1200.0}, RULES)
    assert out["phase"] == "unknown"
    assert "no agent is named" in out["notes"][0]
    out = classify_mr_phase({"contrast_agent": "Primovist"}, RULES)
    assert out["phase"] == "unknown"
    assert "delay" in out["notes"][0]
    out = classify_mr_phase({}, RULES)
    assert out["phase"] == "unknown"
    assert out["basis"] == "none"
    out = classify_mr_phase({"contrast_agent": "Primovist", "delay_s": 700.0}, RULES)
    assert out["phase"] == "hepatobiliary"
    assert "may not yet be complete" in out["notes"][0]
    assert classify_mr_phase({}, RULES, user_phase="hbp")["basis"] == "user"
    with pytest.raises(UsageError, match="--mr-phase"):
        classify_mr_phase({}, RULES, user_phase="delayed-ish")


def test_midnight_crossing_and_sidecar_times(tmp_path):
    side = mr_headers("235500", "001500")  # 20 min, across midnight
    rep = _analyze(write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side))
    assert rep["mri"]["phase"]["delay_s"] == pytest.approx(1200.0)
    assert rep["mri"]["phase"]["phase"] == "hepatobiliary"
    assert any("midnight" in n for n in rep["mri"]["notes"])


def test_a_rules_file_moving_the_hepatobiliary_window_changes_the_phase(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[mri]\nphase_window_start_s = [10.0, 45.0, 120.0, 1500.0]\n"
        "phase_window_end_s = [45.0, 120.0, 1500.0, 14400.0]\n"
    )
    facts = {"contrast_agent": "Primovist", "delay_s": 1200.0}
    assert classify_mr_phase(facts, RULES)["phase"] == "hepatobiliary"
    assert classify_mr_phase(facts, load_rules(rules))["phase"] == "transitional"
    bad = tmp_path / "bad.toml"
    bad.write_text("[mri]\nphase_window_start_s = [10.0, 40.0, 120.0, 600.0]\n")  # overlaps arterial [10, 45)
    with pytest.raises(InputError, match="phase window"):
        load_rules(bad)


def test_a_broken_sidecar_is_a_clear_input_error(tmp_path):
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0))
    (tmp_path / "mr.json").write_text("{not json")
    with pytest.raises(InputError, match=r"mr\.json"):
        _analyze(paths)


# ---------------------------------------------------------------- a DICOM study folder
def _dicom_study(root: Path) -> Path:
    study = deterministic_uid("mr-study")
    for_uid = deterministic_uid("mr-for")
    hbp_tags = mr_headers("101500", "103500", SeriesTime="103400")
    hbp_files = write_image_series(
        root / "hbp",
        signal_image(400.0, 200.0, 120.0),
        AFFINE,
        modality="MR",
        study_uid=study,
        frame_of_reference_uid=for_uid,
        series_uid=deterministic_uid("hbp"),
        series_number=7,
        extra_tags=hbp_tags,
        seed=1,
    )
    write_image_series(
        root / "pre",
        signal_image(250.0, 180.0, 100.0),
        AFFINE,
        modality="MR",
        study_uid=study,
        frame_of_reference_uid=for_uid,
        series_uid=deterministic_uid("pre"),
        series_number=3,
        extra_tags=mr_headers("101500", "100900"),  # acquired before the injection
        seed=2,
    )
    lab, seg = label_map(), couinaud_map()
    specs = [
        SegmentSpec("Liver", lab == 1),
        SegmentSpec("Lesion", lab == 2),
        SegmentSpec("Spleen", lab == 3),
        *[SegmentSpec(f"Segment {n}", seg == n) for n in range(1, 9)],
    ]
    write_seg(root / "seg.dcm", hbp_files, specs, seed=3)
    return root


def test_dicom_study_folder_headers_other_series_and_pre_contrast(tmp_path):
    study = _dicom_study(tmp_path / "study")
    labels = "liver=Liver,lesion=Lesion,spleen=Spleen," + ",".join(f"segment{n}=Segment {n}" for n in range(1, 9))
    rep = analyze(study, labels=labels).to_dict()
    mri = rep["mri"]
    prov = mri["provenance"]
    assert rep["study"]["modality"] == "MR"
    assert prov["source"] == "dicom"
    assert prov["contrast_agent"] == "Gd-EOB-DTPA (Primovist)"
    assert prov["flip_angle_deg"] == pytest.approx(10.0)
    assert prov["field_strength_t"] == pytest.approx(1.5)
    assert prov["fat_suppression"] is True
    assert prov["scanning_sequence"] == "GR"
    assert prov["series_number"] == 7
    assert mri["phase"]["phase"] == "hepatobiliary"
    others = mri["other_series"]
    assert [(o["series_number"], o["phase"], o["same_frame_of_reference"]) for o in others] == [
        (3, "pre-contrast", True)
    ]
    assert mri["pre_contrast"]["series_instance_uid"] == deterministic_uid("pre")
    assert mri["relative_enhancement"]["liver"] == pytest.approx(0.6)
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(2.0)
    text = json.dumps(rep)
    assert "Doe^Jane" not in text
    assert "SECRET-ID-123" not in text


# ---------------------------------------------------------------- real data and CLI
def test_real_totalsegmentator_mr_has_unknown_phase_and_no_functional_index():
    ts = ("totalseg_example", "tests", "reference_files")
    rep = analyze(
        image=shared_path(*ts, "example_mr_sm.nii.gz"),
        segs=[shared_path(*ts, "example_seg_mr.nii.gz")],
        labels="liver=5,spleen=1",
        options=AnalyzeOptions(modality="MR"),
    )
    d = rep.to_dict()
    assert d["liver"]["volume_ml"] == pytest.approx(498.96, abs=0.005)  # MANIFEST
    mri = d["mri"]
    assert mri["phase"]["phase"] == "unknown"
    assert mri["provenance"]["source"] == "none"
    assert mri["hepatic_uptake_index_ml"] is None
    assert mri["liver_to_spleen_contrast_ratio"] is None
    assert mri["liver_reference"]["mean_signal_au"] > 0
    summary = rep.summary()
    assert "a.u." in summary
    assert not re.search(r"\bHU\b", summary)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_cli_mr_phase_statement_and_its_usage_error(tmp_path):
    paths = write_nifti_study(tmp_path / "s", signal_image(400.0, 200.0, 120.0))  # no sidecar: phase unknown
    base = ["analyze", "--image", str(paths["image"]), "--seg", str(paths["seg"])]
    base += ["--seg", f"segments={paths['segments']}", "--labels", LABELS, "--modality", "MR"]
    ok = _cli(*base, "--mr-phase", "hbp", "--out", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["mri"]["phase"] == {**rep["mri"]["phase"], "phase": "hepatobiliary", "basis": "user"}
    assert rep["mri"]["liver_to_spleen_contrast_ratio"] == pytest.approx(2.0)
    assert "HUI" in ok.stdout
    assert "a.u." in ok.stdout
    bad = _cli(*base, "--mr-phase", "late", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2
    assert "--mr-phase" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "bad" / "report.json").exists()


# ---------------------------------------------------------------- outputs
class _Tables(HTMLParser):
    """Cells of the tables with an id, by table id (stdlib parser: no regex on HTML)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_page_shows_the_mri_numbers_of_report_json(tmp_path):
    from netlm_imaging.api import analyze_with_context
    from netlm_imaging.report.html import write_study_html

    signal = {seg: 300.0 + 25.0 * seg for seg in range(1, 9)}
    paths = write_nifti_study(tmp_path, signal_image(signal, 200.0, 120.0), sidecar=HBP)
    report, ctx = analyze_with_context(
        image=paths["image"],
        segs=[paths["seg"], f"segments={paths['segments']}"],
        labels=LABELS,
        options=AnalyzeOptions(modality="MR"),
    )
    rep = report.to_dict()
    page = write_study_html(rep, ctx, tmp_path / "report.html").read_text(encoding="utf-8")
    parser = _Tables()
    parser.feed(page)
    hui_rows = parser.tables["mri-hui"][1:]
    assert [int(r[0]) for r in hui_rows] == list(range(1, 9))
    for row, item in zip(hui_rows, rep["mri"]["hui_by_segment"], strict=True):
        assert float(row[1]) == pytest.approx(item["hui_ml"], abs=0.006)
    flr = {r[0]: float(r[2]) for r in parser.tables["mri-flr"][1:]}
    for item in rep["mri"]["functional_flr"]:
        assert flr[item["label"]] == pytest.approx(item["functional_flr_percent"], abs=0.006)
    assert "Liver-to-spleen contrast ratio" in page


def test_batch_cohort_and_lesion_tables_carry_the_mri_columns(tmp_path):
    import csv

    from netlm_imaging.cli import main

    signal = {seg: 300.0 + 25.0 * seg for seg in range(1, 9)}
    study = tmp_path / "cohort" / "mr1"
    paths = write_nifti_study(study, signal_image(signal, 200.0, 120.0), sidecar=HBP)
    manifest = {
        "image": paths["image"].name,
        "segmentations": [paths["seg"].name, f"segments={paths['segments'].name}"],
        "labels": LABELS,
        "modality": "MR",
    }
    (study / "netlm.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "cohort"), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "reports" / "mr1.json").read_text())
    (row,) = list(csv.DictReader((out / "cohort.csv").open()))
    assert row["mri_phase"] == "hepatobiliary"
    assert row["mri_phase_basis"] == "delay"
    assert row["mri_image_component"] == ""  # a plain magnitude image
    assert float(row["mri_delay_s"]) == pytest.approx(1200.0)
    assert float(row["mri_hepatic_uptake_index_ml"]) == pytest.approx(report["mri"]["hepatic_uptake_index_ml"])
    assert float(row["mri_liver_to_spleen_contrast_ratio"]) == pytest.approx(
        report["mri"]["liver_to_spleen_contrast_ratio"]
    )
    lesions = list(csv.DictReader((out / "lesions.csv").open()))
    assert len(lesions) == len(LESION_BOXES)
    for les in lesions:
        assert float(les["mean_signal_au"]) == pytest.approx(120.0)
        assert float(les["lesion_to_liver_contrast"]) == pytest.approx(
            1.0 - 120.0 / report["mri"]["liver_reference"]["mean_signal_au"], rel=1e-5
        )


def test_sr_carries_the_mr_signal_in_arbitrary_units_and_reads_back(tmp_path):
    from dicom_tools import assert_dciodvfy_clean

    from netlm_imaging.cli import main
    from netlm_imaging.report.dicom_sr import read_sr_measurements

    study = _dicom_study(tmp_path / "study")
    labels = "liver=Liver,lesion=Lesion,spleen=Spleen," + ",".join(f"segment{n}=Segment {n}" for n in range(1, 9))
    out = tmp_path / "out"
    assert main(["analyze", str(study), "--labels", labels, "--sr", "--out", str(out), "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    sr = read_sr_measurements(out / "report_sr.dcm")
    assert sr["mean_signal_au"] == pytest.approx(rep["liver"]["mean_signal_au"])
    assert sr["sd_signal_au"] == pytest.approx(rep["liver"]["sd_signal_au"])
    by_id = {les["id"]: les for les in rep["lesions"]}
    assert len(sr["lesions"]) == len(by_id)
    for les in sr["lesions"]:
        assert les["mean_signal_au"] == pytest.approx(by_id[les["id"]]["mean_signal_au"])
        assert les["mean_signal_au"] == pytest.approx(120.0)
    assert_dciodvfy_clean(out / "report_sr.dcm")


def _pre_of_another_session(folder, start_index):
    """The pre-contrast image in another frame of reference (a second session), its first voxel at image
    index ``start_index`` and its slices from there to the end of the image grid."""
    moved = AFFINE.copy()
    moved[:3, 3] = (AFFINE @ [*start_index, 1.0])[:3]
    write_image_series(
        folder,
        signal_image(250.0, 180.0, 100.0)[:, :, int(start_index[2]) :],
        moved,
        modality="MR",
        frame_of_reference_uid=deterministic_uid("other-session"),
        extra_tags=mr_headers("101500", "100900"),
        seed=12,
    )


def _hbp_with_pre_of_another_session(tmp_path, start_index) -> dict:
    """The report of an HBP series given a pre-contrast series of another session (``--pre-contrast``)."""
    hbp = write_image_series(
        tmp_path / "hbp", signal_image(400.0, 200.0, 120.0), AFFINE, modality="MR", extra_tags=HBP, seed=11
    )
    _pre_of_another_session(tmp_path / "pre", start_index)
    masks = write_nifti_study(tmp_path / "masks", signal_image(400.0, 200.0, 120.0))
    return analyze(
        image=hbp[0].parent,
        segs=[masks["seg"], f"segments={masks['segments']}"],
        labels=LABELS,
        options=AnalyzeOptions(pre_contrast=tmp_path / "pre"),
    ).to_dict()


def test_pre_contrast_in_another_frame_of_reference_is_registered(tmp_path):
    # the pre-contrast series comes from another session: other FrameOfReferenceUID and the patient
    # 4.5 mm (3 voxels) further along the image's first axis; position alone would misplace it
    rep = _hbp_with_pre_of_another_session(tmp_path, (3.0, 0.0, 0.0))
    pre = rep["mri"]["pre_contrast"]
    assert pre["aligned_by"].startswith("rigid registration")
    assert rep["mri"]["relative_enhancement"]["liver"] == pytest.approx(0.6, rel=0.02)
    assert rep["mri"]["relative_enhancement"]["spleen"] == pytest.approx(20.0 / 180.0, abs=0.02)


def test_a_registered_pre_contrast_slab_gives_no_re_where_it_does_not_reach(tmp_path):
    # another session (other frame of reference) holding only slices k 10..23 of the image grid: the liver
    # (k 2..21) and the spleen (k 6..17) reach beyond it. Registered, the uncovered voxels were zero and
    # the RE of liver and spleen silent wrong numbers (1.71 and 0.64 for truths 0.6 and 0.11)
    rep = _hbp_with_pre_of_another_session(tmp_path, (3.0, 0.0, 10.0))
    assert rep["mri"]["pre_contrast"]["aligned_by"].startswith("rigid registration")
    assert rep["mri"]["relative_enhancement"] == {"liver": None, "spleen": None}
    assert rep["mri"]["pre_contrast"]["covers_percent_of_image"] < 100.0


# ---------------------------------------------------------------- every [mri] rules key changes its outcome
def _rules_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text("[mri]\n" + text + "\n")
    return path


@covers("mri.hepatocyte_specific_agent_patterns")
def test_rules_key_hepatocyte_specific_agent_patterns(tmp_path):
    facts = {"contrast_agent": "MultiHance (gadobenate)", "delay_s": 1200.0}
    assert classify_mr_phase(facts, RULES)["phase"] == "unknown"
    rules = load_rules(_rules_file(tmp_path, "agents", 'hepatocyte_specific_agent_patterns = ["gadobenate"]'))
    assert classify_mr_phase(facts, rules)["phase"] == "hepatobiliary"


@covers("mri.no_contrast_patterns")
def test_rules_key_no_contrast_patterns(tmp_path):
    facts = {"contrast_agent": "plain"}
    assert classify_mr_phase(facts, RULES)["phase"] == "unknown"
    rules = load_rules(_rules_file(tmp_path, "none", 'no_contrast_patterns = ["^plain$"]'))
    assert classify_mr_phase(facts, rules)["phase"] == "pre-contrast"


@covers("mri.hepatobiliary_adequate_from_s")
def test_rules_key_hepatobiliary_adequate_from_s(tmp_path):
    facts = {"contrast_agent": "Primovist", "delay_s": 700.0}
    assert any("may not yet be complete" in n for n in classify_mr_phase(facts, RULES)["notes"])
    rules = load_rules(_rules_file(tmp_path, "adequate", "hepatobiliary_adequate_from_s = 600.0"))
    assert classify_mr_phase(facts, rules)["notes"] == []


@covers("mri.reference_erosion_mm")
def test_rules_key_reference_erosion_mm(tmp_path):
    # the spleen's outer voxel layer at 50: eroded by 3 mm the reference is 200, un-eroded it is lower
    img = signal_image(400.0, 200.0, 120.0)
    (i0, i1), (j0, j1), (k0, k1) = SPLEEN_BOX
    shell = np.zeros(img.shape, dtype=bool)
    shell[box(SPLEEN_BOX)] = True
    shell[i0 + 1 : i1 - 1, j0 + 1 : j1 - 1, k0 + 1 : k1 - 1] = False
    img[shell] = 50.0
    paths = write_nifti_study(tmp_path, img, sidecar=HBP)
    inner = box_voxels(SPLEEN_BOX) - int(shell.sum())
    whole = (50.0 * int(shell.sum()) + 200.0 * inner) / box_voxels(SPLEEN_BOX)
    segs = [paths["seg"], f"segments={paths['segments']}"]
    opts = AnalyzeOptions(modality="MR")
    rules = _rules_file(tmp_path, "erosion", "reference_erosion_mm = 0.0")
    default = analyze(image=paths["image"], segs=segs, labels=LABELS, options=opts).to_dict()["mri"]
    flat = analyze(image=paths["image"], segs=segs, labels=LABELS, rules=rules, options=opts).to_dict()["mri"]
    assert default["spleen_reference"]["mean_signal_au"] == pytest.approx(200.0)
    assert flat["spleen_reference"]["mean_signal_au"] == pytest.approx(whole, rel=1e-5)


@covers("mri.hui_unassigned_note_percent")
def test_rules_key_hui_unassigned_note_percent(tmp_path):
    """The HUI share outside every Couinaud segment (computed from the phantom) is noted above the key's percent."""
    from phantoms import write_nifti

    signal = {seg: 300.0 + 25.0 * seg for seg in range(1, 9)}
    spleen = 200.0
    paths = write_nifti_study(tmp_path, signal_image(signal, spleen, 120.0), sidecar=HBP)
    seg = couinaud_map()
    labels = label_map()
    (i0, i1), (j0, j1), (k0, _) = segment_boxes()[8]
    seg[i0:i1, j0:j1, k0 : k0 + 2] = 0  # two slices of segment 8 without a segment label
    write_nifti(paths["segments"], seg, AFFINE)
    parenchyma = labels == 1  # liver without the lesions
    hui_of = lambda where: sum(  # noqa: E731
        np.count_nonzero(parenchyma & where & (couinaud_map() == s)) * VOXEL_ML * (signal[s] / spleen - 1.0)
        for s in range(1, 9)
    )
    share = 100.0 * hui_of(seg == 0) / hui_of(np.ones_like(seg, dtype=bool))
    assert 1.0 < share < 20.0  # above the shipped 1 %
    note = f"{share:.1f}% of the HUI lies in liver outside every Couinaud segment"
    default = _analyze(paths)["mri"]
    assert any(n.startswith(note) for n in default["notes"])
    rules = _rules_file(tmp_path, "note", f"hui_unassigned_note_percent = {share + 1.0}")
    segs = [paths["seg"], f"segments={paths['segments']}"]
    opts = AnalyzeOptions(modality="MR")
    raised = analyze(image=paths["image"], segs=segs, labels=LABELS, rules=rules, options=opts).to_dict()["mri"]
    assert not any("outside every Couinaud segment" in n for n in raised["notes"])
    assert raised["hui_unassigned_ml"] == pytest.approx(default["hui_unassigned_ml"])


@covers("mri.n4_iterations", "mri.n4_fitting_levels", "mri.n4_shrink_factor")
@pytest.mark.parametrize(
    ("text", "key"),
    [("n4_iterations = 1", "iterations"), ("n4_fitting_levels = 1", "levels"), ("n4_shrink_factor = 8", "shrink")],
)
def test_rules_keys_of_n4_change_the_correction(tmp_path, text, key):
    biased = signal_image(400.0, 200.0, 120.0, background=40.0) * linear_bias(0.5)
    paths = write_nifti_study(tmp_path, biased, sidecar=HBP)
    segs = [paths["seg"], f"segments={paths['segments']}"]
    opts = AnalyzeOptions(modality="MR", n4=True)
    default = analyze(image=paths["image"], segs=segs, labels=LABELS, options=opts).to_dict()["mri"]
    changed = analyze(
        image=paths["image"], segs=segs, labels=LABELS, rules=_rules_file(tmp_path, key, text), options=opts
    ).to_dict()["mri"]
    err = {n: abs(m["liver_to_spleen_contrast_ratio"] - 2.0) for n, m in (("default", default), ("changed", changed))}
    if key == "levels":  # a 1-level fit of this smooth linear field is as good: the LSC moves, not worse
        assert abs(err["changed"] - err["default"]) > 0.005
    else:  # 1 iteration, or an 8x shrunk fit, leaves more of the known field in the ratio (truth 2.0)
        assert err["changed"] > 1.5 * err["default"]
    assert changed["bias_field_correction"] != default["bias_field_correction"]


HBP_FACTS = {"contrast_agent": "Primovist", "delay_s": 1200.0}  # 20 min: hepatobiliary by the shipped windows


@covers("mri.phase_window_start_s")
def test_rules_key_phase_window_start_s(tmp_path):
    """The hepatobiliary window starting at 25 min leaves a 20 min delay in the gap after 'transitional'."""
    assert classify_mr_phase(HBP_FACTS, user_rules(tmp_path))["phase"] == "hepatobiliary"
    changed = user_rules(tmp_path, {"mri.phase_window_start_s": [10.0, 45.0, 120.0, 1500.0]})
    assert classify_mr_phase(HBP_FACTS, changed)["phase"] == "unknown"


@covers("mri.phase_window_end_s")
def test_rules_key_phase_window_end_s(tmp_path):
    changed = user_rules(tmp_path, {"mri.phase_window_end_s": [45.0, 120.0, 600.0, 1000.0]})
    assert classify_mr_phase(HBP_FACTS, changed)["phase"] == "unknown"
    assert classify_mr_phase({**HBP_FACTS, "delay_s": 900.0}, changed)["phase"] == "hepatobiliary"


@covers("mri.phase_order")
def test_rules_key_phase_order(tmp_path):
    """The order names the windows: swapping the last two names calls the 20 min window 'transitional'."""
    changed = user_rules(tmp_path, {"mri.phase_order": ["arterial", "portal_venous", "hepatobiliary", "transitional"]})
    assert classify_mr_phase(HBP_FACTS, changed)["phase"] == "transitional"
    assert classify_mr_phase({**HBP_FACTS, "delay_s": 300.0}, changed)["phase"] == "hepatobiliary"


@covers("mri.phase_source")
def test_rules_key_phase_source(tmp_path):
    assert classify_mr_phase(HBP_FACTS, user_rules(tmp_path, {"mri.phase_source": "site protocol"}))["source"] == (
        "site protocol"
    )


@covers("mri.hui_source")
def test_rules_key_hui_source(tmp_path):
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=HBP)
    segs = [paths["seg"], f"segments={paths['segments']}"]
    rules = tmp_path / "hui.json"
    rules.write_text(json.dumps({"mri": {"hui_source": "HUI as in the site protocol"}}))
    opts = AnalyzeOptions(modality="MR")
    rep = analyze(image=paths["image"], segs=segs, labels=LABELS, rules=rules, options=opts).to_dict()
    assert rep["mri"]["source"] == "HUI as in the site protocol"

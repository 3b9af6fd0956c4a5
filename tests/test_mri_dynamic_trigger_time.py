"""A GE multiphase dynamic (gadoxetic acid) filed as one series whose phases only TriggerTime tells apart.

One SeriesInstanceUID, one AcquisitionNumber, one AcquisitionTime for every image (as GE LAVA /
DISCO multiphase exports write them); the phases differ in TriggerTime (0018,1060) alone. The
images are real MR Image Storage files written with pydicom on the oblique grid of
``mri_factory``; truths are the constant signal per region written here, so relative
enhancement is (S_phase - S_pre) / S_pre of those constants.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from dicom_factory import deterministic_uid, write_image_series
from mri_factory import AFFINE, SHAPE, label_map, mr_headers, signal_image
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import analyze
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.cli import main
from netlm_imaging.io.mr_headers import MrProvenance
from netlm_imaging.io.mr_study import MrSeries, with_study_contrast

LABELS = "liver=Liver,lesion=Lesion,spleen=Spleen"
#: (TriggerTime ms, liver, spleen) of four phases; the lesion is 120 in every phase
PHASES = ((0.0, 180.0, 160.0), (18000.0, 420.0, 390.0), (55000.0, 360.0, 310.0), (140000.0, 450.0, 240.0))
#: AcquisitionTime of each phase of the gated variant (the injection is at 10:15:00)
GATED_TIMES = ("101400", "101440", "101520", "101600")


def _ge_dynamic(
    root: Path,
    *,
    refer: int = 3,
    temporal_positions: bool = False,
    per_slice_trigger: bool = False,
    times: tuple[str, ...] | None = None,
    shared_time: str = "101400",
    number_of_temporal_positions: int | None = None,
):
    """The four phases of ``PHASES`` under one SeriesInstanceUID; the SEG is drawn on phase ``refer``.

    ``temporal_positions`` also writes TemporalPositionIdentifier 1..4 and NumberOfTemporalPositions 4;
    ``per_slice_trigger`` gives every image its own TriggerTime (slice k of phase n: n x 1000 + k ms) and
    each phase its own AcquisitionTime, as a gated 2-D acquisition would. Every phase is acquired at
    ``shared_time`` unless ``times`` gives each its own AcquisitionTime;
    ``number_of_temporal_positions`` writes NumberOfTemporalPositions alone.
    """
    study, frame, series = (deterministic_uid(root.name, x) for x in ("study", "for", "series"))
    written = []
    for n, (trigger, liver, spleen) in enumerate(PHASES):
        acq = GATED_TIMES[n] if per_slice_trigger else times[n] if times else shared_time
        more: dict[str, int] = {}
        if temporal_positions:
            more = {"TemporalPositionIdentifier": n + 1, "NumberOfTemporalPositions": 4}
        elif number_of_temporal_positions is not None:
            more = {"NumberOfTemporalPositions": number_of_temporal_positions}
        tags = mr_headers(
            "101500",
            acq,
            Manufacturer="GE MEDICAL SYSTEMS",
            ContrastBolusAgent="Eovist",
            AcquisitionNumber=1,
            TriggerTime=trigger,
            **more,
        )
        files = write_image_series(
            root / f"phase{n}",
            signal_image(liver, spleen, 120.0),
            AFFINE,
            modality="MR",
            study_uid=study,
            frame_of_reference_uid=frame,
            series_uid=series,
            series_number=5,
            extra_tags=tags,
            seed=60 + n,
        )
        if per_slice_trigger:
            for k, f in enumerate(files):
                ds = pydicom.dcmread(f)
                ds.TriggerTime = 1000.0 * n + k
                ds.save_as(f)
        written.append(files)
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", written[refer], specs, seed=3)
    return root, written


def test_phases_told_apart_only_by_trigger_time_are_split_and_get_no_phase_from_their_shared_time(tmp_path):
    root, _ = _ge_dynamic(tmp_path / "lava")
    out = tmp_path / "out"
    assert main(["analyze", str(root), "--labels", LABELS, "--out", str(out), "--quiet"]) == 0
    mri = json.loads((out / "report.json").read_text())["mri"]
    _, liver, spleen = PHASES[3]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(liver)  # the phase the SEG was drawn on
    assert mri["spleen_reference"]["mean_signal_au"] == pytest.approx(spleen)
    others = [(o["stack"], o["files"], o["phase"], o["delay_s"]) for o in mri["other_series"]]
    # one AcquisitionTime (10:14:00, 60 s before the injection) for all four: it is no phase's own time
    assert others == [(f"TriggerTime {t:g} ms", SHAPE[2], "unknown", None) for t, _, _ in PHASES[:3]]
    phase = mri["phase"]
    assert (phase["phase"], phase["basis"], phase["delay_s"]) == ("unknown", "none", None)
    assert "TriggerTime (140000 ms here)" in phase["reason"]
    assert "--mr-phase" in phase["reason"]
    assert "TriggerTime 140000 ms" in phase["decided_from"]
    assert mri["provenance"]["trigger_time_ms"] == 140000.0
    assert mri["provenance"]["delay_s"] is None
    # no phase is known to be pre-contrast: no relative enhancement, and the notes say how to get it
    assert mri["pre_contrast"] is None
    assert mri["relative_enhancement"] is None
    assert any("3 other phase(s)" in n and "--pre-contrast PATH" in n for n in mri["notes"])


def test_a_shared_time_in_the_hepatobiliary_window_gives_no_phase_its_hepatocyte_index(tmp_path):
    # one AcquisitionTime 20 min after the injection: before, every phase was "hepatobiliary" and the
    # hepatocyte index was computed on the phase the SEG references, whatever phase it is
    root, _ = _ge_dynamic(tmp_path / "late", shared_time="103500")
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert mri["phase"]["phase"] == "unknown"
    assert mri["hepatic_uptake_index_ml"] is None
    assert [o["phase"] for o in mri["other_series"]] == ["unknown"] * 3


def test_the_phase_and_pre_contrast_image_stated_by_the_user_give_the_ratios(tmp_path):
    root, _ = _ge_dynamic(tmp_path / "stated")
    pre = root / "phase0"  # the TriggerTime 0 ms stack alone, named by the user
    mri = analyze(root, labels=LABELS, options={"mr_phase": "hbp", "pre_contrast": str(pre)}).to_dict()["mri"]
    _, liver_pre, spleen_pre = PHASES[0]
    _, liver, spleen = PHASES[3]
    assert (mri["phase"]["phase"], mri["phase"]["basis"]) == ("hepatobiliary", "user")
    assert mri["hepatic_uptake_index_ml"] is not None
    assert mri["relative_enhancement"]["liver"] == pytest.approx((liver - liver_pre) / liver_pre, abs=1e-6)
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((spleen - spleen_pre) / spleen_pre, abs=1e-6)
    assert [o["phase"] for o in mri["other_series"]] == ["unknown"] * 3  # the user stated the image's phase only


def _phase_of(delay: float) -> str:
    """The phase the default rules' windows give a delay (pre-contrast before the injection)."""
    if delay < 0:
        return "pre-contrast"
    mri = load_rules()["mri"]
    for name, lo, hi in zip(mri["phase_order"], mri["phase_window_start_s"], mri["phase_window_end_s"], strict=True):
        if lo <= delay < hi:
            return name
    return "unknown"


def _tm_seconds(tm: str) -> int:
    return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + int(tm[4:6])


def test_trigger_time_phases_with_their_own_acquisition_times_keep_their_delays(tmp_path):
    times = ("101400", "101530", "101620", "101900")
    root, _ = _ge_dynamic(tmp_path / "own", times=times)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    delays = [_tm_seconds(t) - _tm_seconds("101500") for t in times]  # the injection is at 10:15:00
    assert [(o["stack"], o["delay_s"], o["phase"]) for o in mri["other_series"]] == [
        (f"TriggerTime {t:g} ms", float(d), _phase_of(d)) for (t, _, _), d in zip(PHASES[:3], delays, strict=False)
    ]
    assert len({_phase_of(d) for d in delays}) == 4  # four phases, four labels
    assert (mri["phase"]["delay_s"], mri["phase"]["phase"]) == (float(delays[3]), _phase_of(delays[3]))
    assert mri["provenance"]["trigger_time_ms"] is None
    _, liver_pre, _ = PHASES[0]
    assert mri["pre_contrast"]["series_instance_uid"].endswith("#1")  # the phase acquired before the injection
    assert mri["relative_enhancement"]["liver"] == pytest.approx((PHASES[3][1] - liver_pre) / liver_pre, abs=1e-6)


@pytest.mark.parametrize(("stated", "warned"), [(4, None), (5, "1 phase(s) may be missing from the export")])
def test_number_of_temporal_positions_is_checked_against_the_trigger_time_stacks(tmp_path, stated, warned):
    root, _ = _ge_dynamic(tmp_path / f"ntp{stated}", number_of_temporal_positions=stated)
    report = analyze(root, labels=LABELS).to_dict()
    said = [w for w in report["warnings"] if "NumberOfTemporalPositions" in w]
    if warned is None:
        assert said == []
    else:
        assert len(said) == 1
        assert f"states {stated} phases but TriggerTime tells {len(PHASES)} stacks apart: {warned}" in said[0]


def test_the_phase_the_seg_references_is_measured(tmp_path):
    root, _ = _ge_dynamic(tmp_path / "lava1", refer=1)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(PHASES[1][1])
    assert [o["stack"] for o in mri["other_series"]] == [
        "TriggerTime 0 ms",
        "TriggerTime 55000 ms",
        "TriggerTime 140000 ms",
    ]


def test_a_phase_missing_a_slice_stays_refused_naming_it(tmp_path, capsys):
    root, written = _ge_dynamic(tmp_path / "gap")
    written[2][7].unlink()  # TriggerTime 55000 ms lacks one of the 24 positions: which image is which is a guess
    code = main(["analyze", str(root), "--labels", LABELS, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3
    assert "share the slice position" in err
    assert f"TriggerTime 55000 ms holds {SHAPE[2] - 1} of the series' {SHAPE[2]} slice positions" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_temporal_position_identifier_splits_first(tmp_path):
    # TemporalPositionIdentifier 1..4 and a per-slice TriggerTime: the phases are the identifier's
    root, _ = _ge_dynamic(tmp_path / "tpi", temporal_positions=True, per_slice_trigger=True)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert [o["stack"] for o in mri["other_series"]] == [f"TemporalPositionIdentifier {n}" for n in (1, 2, 3)]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(PHASES[3][1])


def test_a_trigger_time_per_slice_leaves_the_split_to_acquisition_time(tmp_path):
    # every image its own TriggerTime (no complete stack per value); each phase its own AcquisitionTime
    root, _ = _ge_dynamic(tmp_path / "gated", per_slice_trigger=True)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert [o["stack"] for o in mri["other_series"]] == [f"AcquisitionTime {t}" for t in GATED_TIMES[:3]]
    liver, liver_pre = PHASES[3][1], PHASES[0][1]
    assert mri["relative_enhancement"]["liver"] == pytest.approx((liver - liver_pre) / liver_pre, abs=1e-6)


def test_a_trigger_time_phase_taking_the_study_injection_gets_no_delay_from_its_shared_time():
    injected = MrProvenance(source="dicom", contrast_start_time="101500", contrast_agent="Eovist")
    donor = MrSeries("1.2.3", 9, 24, injected)
    own = MrProvenance(source="dicom", acquisition_time="10:14:00", acquisition_time_source="AcquisitionTime")
    timed = with_study_contrast(own, [donor])
    assert timed.delay_s == float(_tm_seconds("101400") - _tm_seconds("101500"))  # a plain series: its own time
    phase = with_study_contrast(replace(own, trigger_time_ms=18000.0), [donor])
    assert phase.contrast_start_time == "101500"  # the injection is the study's ...
    assert phase.delay_s is None  # ... but the shared time is not this phase's

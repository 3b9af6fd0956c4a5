"""A GE multiphase dynamic (gadoxetic acid) filed as one series whose phases only TriggerTime tells apart.

One SeriesInstanceUID, one AcquisitionNumber, one AcquisitionTime for every image (as GE LAVA /
DISCO multiphase exports write them); the phases differ in TriggerTime (0018,1060) alone. The
images are real MR Image Storage files written with pydicom on the oblique grid of
``mri_factory``; truths are the constant signal per region written here, so relative
enhancement is (S_phase - S_pre) / S_pre of those constants.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from dicom_factory import deterministic_uid, write_image_series
from mri_factory import AFFINE, SHAPE, label_map, mr_headers, signal_image
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import analyze
from netlm_imaging.cli import main

LABELS = "liver=Liver,lesion=Lesion,spleen=Spleen"
#: (TriggerTime ms, liver, spleen) of four phases; the lesion is 120 in every phase
PHASES = ((0.0, 180.0, 160.0), (18000.0, 420.0, 390.0), (55000.0, 360.0, 310.0), (140000.0, 450.0, 240.0))
#: AcquisitionTime of each phase of the gated variant (the injection is at 10:15:00)
GATED_TIMES = ("101400", "101440", "101520", "101600")


def _ge_dynamic(root: Path, *, refer: int = 3, temporal_positions: bool = False, per_slice_trigger: bool = False):
    """The four phases of ``PHASES`` under one SeriesInstanceUID; the SEG is drawn on phase ``refer``.

    ``temporal_positions`` also writes TemporalPositionIdentifier 1..4 and NumberOfTemporalPositions 4;
    ``per_slice_trigger`` gives every image its own TriggerTime (slice k of phase n: n x 1000 + k ms) and
    each phase its own AcquisitionTime, as a gated 2-D acquisition would.
    """
    study, frame, series = (deterministic_uid(root.name, x) for x in ("study", "for", "series"))
    written = []
    for n, (trigger, liver, spleen) in enumerate(PHASES):
        acq = GATED_TIMES[n] if per_slice_trigger else "101400"  # GE: the series' start, before the injection
        more = {"TemporalPositionIdentifier": n + 1, "NumberOfTemporalPositions": 4} if temporal_positions else {}
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


def test_phases_told_apart_only_by_trigger_time_are_split_and_relative_enhancement_is_analytic(tmp_path):
    root, _ = _ge_dynamic(tmp_path / "lava")
    out = tmp_path / "out"
    assert main(["analyze", str(root), "--labels", LABELS, "--out", str(out), "--quiet"]) == 0
    mri = json.loads((out / "report.json").read_text())["mri"]
    _, liver_pre, spleen_pre = PHASES[0]
    _, liver, spleen = PHASES[3]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(liver)  # the phase the SEG was drawn on
    assert mri["spleen_reference"]["mean_signal_au"] == pytest.approx(spleen)
    stacks = [(o["stack"], o["files"]) for o in mri["other_series"]]
    assert stacks == [
        ("TriggerTime 0 ms", SHAPE[2]),
        ("TriggerTime 18000 ms", SHAPE[2]),
        ("TriggerTime 55000 ms", SHAPE[2]),
    ]
    assert mri["pre_contrast"]["series_instance_uid"].endswith("#1")  # the TriggerTime 0 phase
    assert mri["relative_enhancement"]["liver"] == pytest.approx((liver - liver_pre) / liver_pre, abs=1e-6)
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((spleen - spleen_pre) / spleen_pre, abs=1e-6)


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

"""Dynamic phases filed under one SeriesInstanceUID that only AcquisitionTime tells apart
(Siemens VIBE / GE LAVA dynamics exported as one series: no TemporalPositionIdentifier, one
AcquisitionNumber), and study folders holding derived series beside the HBP image.

Truths: the constant signal per box of ``mri_factory`` and clock arithmetic done here
(injection 10:15:00; a phase acquired at 10:35:00 is 1200 s after it).
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from dicom_factory import deterministic_uid, write_image_series
from mri_factory import AFFINE, MR_HEADERS, SHAPE, label_map, mr_headers, signal_image
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import analyze
from netlm_imaging.cli import main

LABELS = "liver=Liver,lesion=Lesion,spleen=Spleen"
#: (AcquisitionTime, liver, spleen) of four phases; the injection is at 10:15:00
PHASES = (("100000", 200.0, 150.0), ("101530", 450.0, 400.0), ("101630", 380.0, 300.0), ("103500", 400.0, 200.0))


def _dynamic_series(root: Path, *, refer: int, slice_step_s: float = 0.0, offsets_s=None) -> Path:
    """One SeriesInstanceUID, one AcquisitionNumber, the phases of ``PHASES`` at the same positions;
    a 2-D acquisition when ``slice_step_s`` gives each slice its own time (slice k at t + k x step)."""
    study, frame, series = (deterministic_uid(root.name, x) for x in ("study", "for", "series"))
    written = []
    for n, (acq, liver, spleen) in enumerate(PHASES):
        tags = mr_headers("101500", acq, Manufacturer="SIEMENS", ContrastBolusAgent="Primovist", AcquisitionNumber=1)
        files = write_image_series(
            root / f"phase{n}",
            signal_image(liver, spleen, 120.0),
            AFFINE,
            modality="MR",
            study_uid=study,
            frame_of_reference_uid=frame,
            series_uid=series,
            series_number=8,
            extra_tags=tags,
            seed=40 + n,
        )
        h, m, s = int(acq[:2]), int(acq[2:4]), int(acq[4:6])
        base = h * 3600 + m * 60 + s + (0.0 if offsets_s is None else offsets_s[n])
        if slice_step_s or offsets_s is not None:
            for k, f in enumerate(files):
                t = base + k * slice_step_s
                ds = pydicom.dcmread(f)
                ds.AcquisitionTime = f"{int(t // 3600):02d}{int(t % 3600 // 60):02d}{t % 60:09.6f}"
                ds.save_as(f)
        written.append(files)
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", written[refer], specs, seed=3)
    return root


def test_phases_told_apart_only_by_acquisition_time_are_split_and_the_referenced_one_measured(tmp_path):
    mri = analyze(_dynamic_series(tmp_path / "vibe", refer=3), labels=LABELS).to_dict()["mri"]
    assert (mri["phase"]["phase"], mri["phase"]["delay_s"]) == ("hepatobiliary", pytest.approx(1200.0))
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(400.0)  # the 10:35 phase, not another
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)
    others = [(o["stack"], o["phase"], o["delay_s"], o["files"]) for o in mri["other_series"]]
    assert others == [
        ("AcquisitionTime 100000", "pre-contrast", -900.0, SHAPE[2]),
        ("AcquisitionTime 101530", "arterial", 30.0, SHAPE[2]),
        ("AcquisitionTime 101630", "portal_venous", 90.0, SHAPE[2]),
    ]
    assert mri["pre_contrast"]["series_instance_uid"].endswith("#1")  # the 10:00 phase of the same series
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 200.0) / 200.0)


def test_a_2d_dynamic_whose_slices_each_have_their_own_time_is_split_by_phase(tmp_path):
    # slice k of each phase 2 s after slice k-1 (46 s per phase): the phases still follow each other
    root = _dynamic_series(tmp_path / "twod", refer=1, slice_step_s=2.0)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(450.0)
    assert (mri["phase"]["phase"], mri["phase"]["delay_s"]) == ("arterial", pytest.approx(30.0))  # first slice
    assert [o["files"] for o in mri["other_series"]] == [SHAPE[2]] * 3


def test_phases_whose_times_interleave_stay_refused(tmp_path, capsys):
    # the 10:15:30 phase's slices run 2 s apart to 10:16:16, past the start of the 10:16:30 phase shifted
    # back 30 s: which image of a position belongs to which phase is a guess
    root = _dynamic_series(tmp_path / "mixed", refer=3, slice_step_s=2.0, offsets_s=(0.0, 0.0, -30.0, 0.0))
    code = main(["analyze", str(root), "--labels", LABELS, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3
    assert "share the slice position" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- maps and diffusion beside the HBP image
def _hbp_with_maps(root: Path, *, with_pre: bool) -> Path:
    """HBP series (SEG drawn on it), a pre-contrast T1 map in ms (no sequence facts, as VFA maps are
    exported), an ADC map and a b-50/b-800 DWI series acquired while waiting for the HBP, and optionally
    a pre-contrast VIBE of the HBP's sequence."""
    study, frame = deterministic_uid(root.name, "study"), deterministic_uid(root.name, "for")

    def series(name, values, tags, number, uid=None, seed=None):
        return write_image_series(
            root / name,
            signal_image(*values),
            AFFINE,
            modality="MR",
            study_uid=study,
            frame_of_reference_uid=frame,
            series_uid=deterministic_uid(root.name, uid or name),
            series_number=number,
            extra_tags=tags,
            seed=seed or number,
        )

    hbp = series("hbp", (400.0, 200.0, 120.0), mr_headers("101500", "103500"), 20)
    if with_pre:
        series("pre", (250.0, 180.0, 100.0), mr_headers("101500", "100900"), 3)
    unstated = dict.fromkeys(("FlipAngle", "RepetitionTime", "EchoTime", "ScanOptions", "SequenceVariant"))
    t1 = mr_headers("101500", "100500", ImageType=["DERIVED", "PRIMARY", "T1 MAP"], ScanningSequence=None, **unstated)
    series("t1map", (800.0, 1200.0, 1400.0), t1, 4)  # T1 in ms: liver 800, spleen 1200
    epi = {"ScanningSequence": "EP", "ContrastBolusStartTime": "101500", "AcquisitionTime": "102500"}
    adc = dict(MR_HEADERS, ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"], **epi)
    series("adc", (1100.0, 800.0, 900.0), adc, 11)
    for b, values in ((50.0, (300.0, 400.0, 200.0)), (800.0, (80.0, 150.0, 200.0))):
        dwi = dict(MR_HEADERS, ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"], DiffusionBValue=b, **epi)
        series(f"dwi{b:g}", values, dwi, 10, uid="dwi", seed=100 + int(b))
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", hbp, specs, seed=3)
    return root


def test_a_t1_map_is_no_pre_contrast_image_for_relative_enhancement(tmp_path):
    # the only pre-contrast series is a T1 map (ms): (400 - 800) / 800 = -0.5 would be a wrong RE
    mri = analyze(_hbp_with_maps(tmp_path / "maps", with_pre=False), labels=LABELS).to_dict()["mri"]
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)  # the HBP's own signal
    assert mri["relative_enhancement"] is None
    assert "image component parametric_map vs magnitude" in mri["pre_contrast"]["relative_enhancement_withheld"]
    listed = {(o["series_number"], o["stack"]): o["image_component"] for o in mri["other_series"]}
    assert listed == {(4, None): "parametric_map", (10, "b-value 50"): "diffusion", (10, "b-value 800"): "diffusion",
                      (11, None): "parametric_map"}  # fmt: skip


def test_beside_a_t1_map_the_pre_contrast_of_the_same_sequence_gives_relative_enhancement(tmp_path):
    mri = analyze(_hbp_with_maps(tmp_path / "maps_pre", with_pre=True), labels=LABELS).to_dict()["mri"]
    assert mri["pre_contrast"]["series_instance_uid"] == deterministic_uid("maps_pre", "pre")
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 250.0) / 250.0)
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((200.0 - 180.0) / 180.0)


# ---------------------------------------------------------------- subtractions and MIPs beside the HBP image
def _hbp_with_derived(root: Path, *, with_pre: bool) -> Path:
    """HBP series (SEG drawn on it), a subtraction (HBP - pre) and a pre-contrast sliding-slab MIP on the
    same grid (its values, the maxima along rays, are brighter than any voxel's signal), and optionally the
    pre-contrast series itself."""
    study, frame = deterministic_uid(root.name, "study"), deterministic_uid(root.name, "for")

    def series(name, values, tags, number):
        return write_image_series(
            root / name,
            signal_image(*values),
            AFFINE,
            modality="MR",
            study_uid=study,
            frame_of_reference_uid=frame,
            series_uid=deterministic_uid(root.name, name),
            series_number=number,
            extra_tags=tags,
            seed=number,
        )

    hbp = series("hbp", (400.0, 200.0, 120.0), mr_headers("101500", "103500"), 20)
    sub = mr_headers("101500", "103500", ImageType=["DERIVED", "PRIMARY", "SUBTRACTION"])
    series("sub", (150.0, 20.0, 20.0), sub, 120)
    mip = mr_headers("101500", "100900", ImageType=["DERIVED", "SECONDARY", "PROJECTION IMAGE"])
    series("mip", (330.0, 300.0, 330.0), mip, 103)
    if with_pre:
        series("pre", (250.0, 180.0, 100.0), mr_headers("101500", "100900"), 3)
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", hbp, specs, seed=3)
    return root


def test_a_pre_contrast_mip_is_no_pre_contrast_image_for_relative_enhancement(tmp_path):
    # against the MIP the liver RE would read (400 - 330) / 330 = 0.21 instead of (400 - 250) / 250 = 0.6
    mri = analyze(_hbp_with_derived(tmp_path / "mip", with_pre=False), labels=LABELS).to_dict()["mri"]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(400.0)  # the HBP the SEG references
    assert mri["relative_enhancement"] is None
    assert "image component projection vs magnitude" in mri["pre_contrast"]["relative_enhancement_withheld"]
    listed = {o["series_number"]: (o["image_component"], o["phase"]) for o in mri["other_series"]}
    assert listed == {103: ("projection", "pre-contrast"), 120: ("subtraction", "hepatobiliary")}


def test_beside_a_mip_and_a_subtraction_the_pre_contrast_series_gives_relative_enhancement(tmp_path):
    mri = analyze(_hbp_with_derived(tmp_path / "mip_pre", with_pre=True), labels=LABELS).to_dict()["mri"]
    assert mri["pre_contrast"]["series_instance_uid"] == deterministic_uid("mip_pre", "pre")
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 250.0) / 250.0)


def test_a_mip_measured_as_the_image_gives_no_ratio(tmp_path):
    from netlm_imaging.io.mr_image_type import image_component

    assert image_component("DERIVED\\SECONDARY\\MIP_TRA", None) == "projection"  # Siemens
    assert image_component("DERIVED\\SECONDARY\\PROJECTION IMAGE", None) == "projection"  # GE
    assert image_component("DERIVED\\PRIMARY\\MPR", None) is None  # a reformat is still a voxel's signal
    root = tmp_path / "mip_image"
    files = write_image_series(
        root / "mip",
        signal_image(400.0, 200.0, 120.0),
        AFFINE,
        modality="MR",
        extra_tags=mr_headers("101500", "103500", ImageType=["DERIVED", "SECONDARY", "MIP_TRA"]),
        seed=7,
    )
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", files, specs, seed=3)
    mri = analyze(root, labels=LABELS).to_dict()["mri"]
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(400.0)  # means are still reported
    assert mri["liver_to_spleen_contrast_ratio"] is None  # 400 / 200 of maxima along rays is no LSC
    assert mri["hepatic_uptake_index_ml"] is None
    assert any("projection image" in n for n in mri["notes"])

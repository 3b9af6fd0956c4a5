"""Gadoxetic MRI as vendors export it: agent names, user phase statements the headers contradict,
injections and acquisitions on both sides of midnight, multi-phase and Dixon series, scaling.

Truths: the phantoms of ``mri_factory`` (constant signal per box, box arithmetic in the test),
clock arithmetic done here, and the rules file's own window values.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import shared_path
from dicom_factory import deterministic_uid, write_enhanced_series, write_image_series
from mri_factory import (
    AFFINE,
    MR_HEADERS,
    SHAPE,
    couinaud_map,
    label_map,
    linear_bias,
    mr_headers,
    signal_image,
    write_nifti_study,
)
from phantoms import write_nifti
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from rules_coverage import covers
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import analyze
from netlm_imaging.api import AnalyzeOptions
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.errors import DicomError
from netlm_imaging.io.mr_headers import image_component, mr_provenance_from_dicom
from netlm_imaging.io.mr_phase import classify_mr_phase, is_hepatocyte_specific, relative_enhancement_withheld

RULES = load_rules()
ROOT = Path(__file__).resolve().parents[1]
LABELS = "liver=1,lesion=2,spleen=3"


def _analyze(paths, **opts) -> dict:
    rep = analyze(
        image=paths["image"],
        segs=[paths["seg"], f"segments={paths['segments']}"],
        labels=LABELS,
        options=AnalyzeOptions(modality="MR", **opts),
    )
    return rep.to_dict()


# ---------------------------------------------------------------- agent names
@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Primovist", True),
        ("EOVIST", True),
        ("gadoxetate disodium", True),
        ("Gd-EOB-DTPA", True),
        ("Gadovist 1.0", False),
        ("gadobutrol", False),
        ("Dotarem", False),
        ("Magnevist (Gd-DTPA)", False),
        ("GADOLINIUM", None),  # names an element, not an agent
        ("contrast", None),
        ("MultiHance", None),  # partly biliary: in neither list
    ],
)
def test_agent_names_are_hepatocyte_specific_extracellular_or_unidentified(agent, expected):
    assert is_hepatocyte_specific({"contrast_agent": agent}, RULES) is expected


def test_a_delayed_phase_of_an_unidentified_agent_says_so_not_extracellular():
    out = classify_mr_phase({"contrast_agent": "GADOLINIUM", "delay_s": 1200.0}, RULES)
    assert out["phase"] == "unknown"
    assert out["hepatocyte_specific_agent"] is None
    assert "not identified as hepatocyte-specific" in out["notes"][0]
    assert "'GADOLINIUM'" in out["notes"][0]


@covers("mri.extracellular_agent_patterns")
def test_rules_key_extracellular_agent_patterns(tmp_path):
    facts = {"contrast_agent": "Xenon-Gd", "delay_s": 1200.0}
    assert is_hepatocyte_specific(facts, RULES) is None
    path = tmp_path / "r.toml"
    path.write_text('[mri]\nextracellular_agent_patterns = ["xenon-gd"]\n')
    rules = load_rules(path)
    assert is_hepatocyte_specific(facts, rules) is False
    # a user's hepatobiliary statement now contradicts the headers
    assert classify_mr_phase(facts, RULES, user_phase="hbp")["phase"] == "hepatobiliary"
    assert classify_mr_phase(facts, rules, user_phase="hbp")["phase"] == "unknown"


# ---------------------------------------------------------------- the user's statement against the headers
def test_mr_phase_hbp_for_a_gadobutrol_series_gives_no_hepatocyte_index(tmp_path):
    side = mr_headers("101500", "103500", ContrastBolusAgent="Gadovist")  # 20 min, extracellular agent
    paths = write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side)
    rep = _analyze(paths, mr_phase="hbp")
    mri = rep["mri"]
    assert mri["phase"]["phase"] == "unknown"
    assert mri["phase"]["basis"] == "conflict"
    assert "Gadovist" in mri["phase"]["notes"][0]
    assert mri["hepatic_uptake_index_ml"] is None
    assert mri["liver_to_spleen_contrast_ratio"] is None
    assert mri["functional_flr"] is None
    assert any("hepatobiliary" in m for m in mri["missing_inputs"])


def test_mr_phase_hbp_for_a_portal_venous_series_is_a_conflict():
    facts = {"contrast_agent": "Primovist", "delay_s": 70.0}
    out = classify_mr_phase(facts, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("unknown", "conflict")
    assert "portal_venous" in out["notes"][0]
    pre = classify_mr_phase({"contrast_agent": "NONE"}, RULES, user_phase="hbp")
    assert (pre["phase"], pre["basis"]) == ("unknown", "conflict")


def test_mr_phase_agrees_with_or_fills_in_for_the_headers():
    facts = {"contrast_agent": "Primovist", "delay_s": 1200.0}
    assert classify_mr_phase(facts, RULES, user_phase="hbp")["basis"] == "user"
    # contrast stated, no time: the headers cannot say, the user can
    out = classify_mr_phase({"contrast_agent": "Primovist"}, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("hepatobiliary", "user")
    # a delayed phase of an unidentified agent: the user says it is gadoxetic
    out = classify_mr_phase({"contrast_agent": "GADOLINIUM", "delay_s": 1200.0}, RULES, user_phase="hbp")
    assert (out["phase"], out["basis"]) == ("hepatobiliary", "user")


# ---------------------------------------------------------------- midnight
def _hms(seconds: int) -> str:
    seconds %= 86400
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


@pytest.mark.parametrize("minutes", [10, 15, 20])
def test_hepatobiliary_delays_across_midnight(tmp_path, minutes):
    start = 23 * 3600 + 58 * 60  # 23:58
    side = mr_headers(_hms(start), _hms(start + minutes * 60), ContrastBolusAgent="Eovist")
    rep = _analyze(write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side))
    phase = rep["mri"]["phase"]
    assert phase["delay_s"] == pytest.approx(minutes * 60.0)
    assert phase["phase"] == "hepatobiliary"
    adequate = minutes * 60.0 >= RULES["mri"]["hepatobiliary_adequate_from_s"]
    assert any("may not yet be complete" in n for n in phase["notes"]) is not adequate


def test_pre_contrast_acquired_before_midnight_with_the_injection_after_it(tmp_path):
    side = mr_headers("000500", "235000")  # injected 00:05, acquired 23:50 the evening before
    rep = _analyze(write_nifti_study(tmp_path, signal_image(250.0, 180.0, 100.0), sidecar=side))
    phase = rep["mri"]["phase"]
    assert phase["delay_s"] == pytest.approx(-15 * 60.0)
    assert phase["phase"] == "pre-contrast"
    assert any("after midnight of the acquisition day" in n for n in rep["mri"]["notes"])


# ---------------------------------------------------------------- what the pixels are: Dixon, subtraction, phase
def _series_folder(root: Path, stacks, *, refer: int, series_number: int = 8) -> Path:
    """One SeriesInstanceUID holding several stacks at the same positions (``stacks``: (tags, image));
    the SEG references stack ``refer``."""
    study, frame, series = (deterministic_uid(root.name, x) for x in ("study", "for", "series"))
    written = []
    for n, (tags, image) in enumerate(stacks):
        written.append(
            write_image_series(
                root / f"stack{n}",
                image,
                AFFINE,
                modality="MR",
                study_uid=study,
                frame_of_reference_uid=frame,
                series_uid=series,
                series_number=series_number,
                extra_tags=tags,
                seed=40 + n,
            )
        )
    lab, seg = label_map(), couinaud_map()
    specs = [
        SegmentSpec("Liver", lab == 1),
        SegmentSpec("Lesion", lab == 2),
        SegmentSpec("Spleen", lab == 3),
        *[SegmentSpec(f"Segment {n}", seg == n) for n in range(1, 9)],
    ]
    write_seg(root / "seg.dcm", written[refer], specs, seed=3)
    return root


DICOM_LABELS = "liver=Liver,lesion=Lesion,spleen=Spleen," + ",".join(f"segment{n}=Segment {n}" for n in range(1, 9))


def _lava_flex(root: Path, refer: int) -> dict:
    comps = [("WATER", 400.0, 200.0), ("FAT", 40.0, 10.0), ("IN_PHASE", 420.0, 210.0), ("OUT_PHASE", 380.0, 200.0)]
    stacks = [
        (
            mr_headers("101500", "103500", ImageType=["DERIVED", "PRIMARY", c], ContrastBolusAgent="EOVIST"),
            signal_image(liver, spleen, 120.0),
        )
        for c, liver, spleen in comps
    ]
    return analyze(_series_folder(root, stacks, refer=refer), labels=DICOM_LABELS).to_dict()["mri"]


def test_lava_flex_water_stack_gives_the_ratios_of_its_own_signal(tmp_path):
    mri = _lava_flex(tmp_path / "flex_w", 0)
    assert mri["provenance"]["image_component"] == "water"
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)
    assert mri["hepatic_uptake_index_ml"] is not None


def test_lava_flex_fat_stack_gives_no_ratio_and_says_why(tmp_path):
    mri = _lava_flex(tmp_path / "flex_f", 1)
    assert mri["provenance"]["image_component"] == "fat"
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(40.0)  # the fat stack was measured
    assert mri["liver_to_spleen_contrast_ratio"] is None  # 40 / 10 = 4 would be a wrong LSC
    assert mri["hepatic_uptake_index_ml"] is None
    assert mri["functional_flr"] is None
    assert any("Dixon fat image" in n for n in mri["notes"])
    assert any("T1-weighted gradient-echo signal image" in m for m in mri["missing_inputs"])


def test_lava_flex_opposed_phase_stack_is_measured_with_a_note(tmp_path):
    mri = _lava_flex(tmp_path / "flex_op", 3)
    assert mri["provenance"]["image_component"] == "opposed_phase"
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(380.0 / 200.0)
    assert any("opposed-phase" in n for n in mri["notes"])


def test_siemens_subtraction_series_gives_means_but_no_ratio(tmp_path):
    tags = mr_headers(
        "101500",
        "103500",
        ImageType=["DERIVED", "PRIMARY", "SUBTRACTION", "MOCO"],
        Manufacturer="SIEMENS",
        SequenceName="*fl3d1",
        ContrastBolusAgent="Primovist",
    )
    stacks = [(tags, signal_image(150.0, 20.0, 5.0))]  # post - pre: 150 / 20 is no LSC
    rep = analyze(_series_folder(tmp_path / "sub", stacks, refer=0), labels=DICOM_LABELS).to_dict()
    mri = rep["mri"]
    assert mri["provenance"]["image_component"] == "subtraction"
    assert mri["provenance"]["image_type"] == "DERIVED\\PRIMARY\\SUBTRACTION\\MOCO"
    assert mri["phase"]["phase"] == "hepatobiliary"  # the timing is still read
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(150.0)
    assert mri["liver_to_spleen_contrast_ratio"] is None
    assert mri["hepatic_uptake_index_ml"] is None
    assert all(les.get("lesion_to_liver_contrast") is None for les in rep["lesions"])
    assert any("subtraction image" in n for n in mri["notes"])


@pytest.mark.parametrize(
    ("image_type", "complex_component", "private", "expected"),
    [
        ("ORIGINAL\\PRIMARY\\M\\ND\\NORM", None, None, None),  # Siemens magnitude
        ("ORIGINAL\\PRIMARY\\P\\ND", None, None, "phase"),  # Siemens phase
        ("DERIVED\\PRIMARY\\DIXON\\WATER", None, None, "water"),  # Siemens Dixon
        ("DERIVED\\PRIMARY\\DIXON\\OPP_PHASE", None, None, "opposed_phase"),
        ("ORIGINAL\\PRIMARY\\W\\W\\DERIVED", None, None, "water"),  # Philips mDIXON
        ("ORIGINAL\\PRIMARY\\M_FFE\\M\\FFE", None, "F", "fat"),  # Philips private image type
        ("ORIGINAL\\PRIMARY\\T1\\NONE", "MAGNITUDE", None, None),  # Enhanced MR
        ("ORIGINAL\\PRIMARY\\T1\\NONE", "PHASE", None, "phase"),
        ("DERIVED\\PRIMARY\\FF", None, None, "fat_fraction"),
    ],
)
def test_image_component_from_vendor_image_types(image_type, complex_component, private, expected):
    assert image_component(image_type, complex_component, private) == expected


def test_philips_private_image_type_fat_is_read_from_the_file(tmp_path):
    files = write_image_series(tmp_path / "ph", signal_image(40.0, 10.0, 5.0), AFFINE, modality="MR", seed=5)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x11, "CS", "F")
        ds.save_as(f)
    assert mr_provenance_from_dicom(files).image_component == "fat"


# ---------------------------------------------------------------- several dynamic phases in one series (GE)
def test_ge_dynamic_phases_in_one_series_use_the_referenced_phase_and_find_the_pre_contrast_one(tmp_path):
    # TemporalPositionIdentifier 1..4, injection 10:15:00; the SEG is drawn on phase 4 (20 min)
    phases = [("100000", 200.0, 150.0), ("101530", 450.0, 400.0), ("101630", 380.0, 300.0), ("103500", 400.0, 200.0)]
    stacks = [
        (
            mr_headers(
                "101500",
                acq,
                TemporalPositionIdentifier=n,
                NumberOfTemporalPositions=4,
                Manufacturer="GE MEDICAL SYSTEMS",
                ContrastBolusAgent="EOVIST",
            ),
            signal_image(liver, spleen, 120.0),
        )
        for n, (acq, liver, spleen) in enumerate(phases, start=1)
    ]
    mri = analyze(_series_folder(tmp_path / "ge", stacks, refer=3), labels=DICOM_LABELS).to_dict()["mri"]
    assert (mri["phase"]["phase"], mri["phase"]["delay_s"]) == ("hepatobiliary", pytest.approx(1200.0))
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)
    others = [(o["stack"], o["phase"], o["delay_s"]) for o in mri["other_series"]]
    assert others == [
        ("TemporalPositionIdentifier 1", "pre-contrast", -900.0),
        ("TemporalPositionIdentifier 2", "arterial", 30.0),
        ("TemporalPositionIdentifier 3", "portal_venous", 90.0),
    ]
    assert mri["pre_contrast"]["series_instance_uid"].endswith("#1")
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 200.0) / 200.0)
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((200.0 - 150.0) / 150.0)


# ---------------------------------------------------------------- relative enhancement needs one sequence and one scale
def _pre_and_hbp(root: Path, pre_series, hbp_tags=None, hbp_values=(400.0, 200.0, 120.0), hbp_rescale=None) -> Path:
    """A study folder: the HBP series (SEG drawn on it) and pre-contrast series ``pre_series``
    (list of (tags, (liver, spleen, lesion), rescale_slope, philips_scale_slope))."""
    study, frame = deterministic_uid(root.name, "study"), deterministic_uid(root.name, "for")

    def series(name, tags, values, number, slope, philips):
        files = write_image_series(
            root / name,
            signal_image(*values),
            AFFINE,
            modality="MR",
            study_uid=study,
            frame_of_reference_uid=frame,
            series_uid=deterministic_uid(root.name, name),
            series_number=number,
            rescale_slope=slope,
            extra_tags=tags,
            seed=number,
        )
        if philips is not None:
            for f in files:
                ds = pydicom.dcmread(f)
                ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x0E, "FL", philips)
                ds.save_as(f)
        return files

    slope, philips = hbp_rescale or (None, None)
    hbp = series("hbp", hbp_tags or mr_headers("101500", "103500"), hbp_values, 9, slope, philips)
    for n, (tags, values, pre_slope, pre_philips) in enumerate(pre_series):
        series(f"pre{n}", tags, values, 3 + n, pre_slope, pre_philips)
    lab = label_map()
    specs = [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2), SegmentSpec("Spleen", lab == 3)]
    write_seg(root / "seg.dcm", hbp, specs, seed=3)
    return root


PRE_TAGS = mr_headers("101500", "100900")  # acquired before the injection, same sequence as MR_HEADERS


def test_philips_series_on_different_scales_compare_their_floating_point_values(tmp_path):
    # Philips floating-point value FP = DV / (RescaleSlope x ScaleSlope); liver FP 250 pre, 400 HBP.
    # pre: RS 1.5, SS 4 -> DV = FP x 6; HBP: RS 2, SS 2 -> DV = FP x 4 (all values exact in the stored integers)
    pre_fp, hbp_fp = (250.0, 180.0, 100.0), (400.0, 200.0, 120.0)
    root = _pre_and_hbp(
        tmp_path / "philips",
        [(PRE_TAGS, tuple(v * 6.0 for v in pre_fp), 1.5, 4.0)],
        hbp_values=tuple(v * 4.0 for v in hbp_fp),
        hbp_rescale=(2.0, 2.0),
    )
    rep = analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()
    mri = rep["mri"]
    assert mri["provenance"]["philips_scale_slope"] == pytest.approx(2.0)
    assert mri["pre_contrast"]["compared_on"].startswith("Philips floating-point")
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 250.0) / 250.0)  # 0.6, not 1600/1500 - 1
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((200.0 - 180.0) / 180.0)
    les = rep["lesions"][0]
    assert les["relative_enhancement"] == pytest.approx((120.0 - 100.0) / 100.0)
    assert mri["liver_reference"]["mean_signal_au"] == pytest.approx(1600.0)  # means stay the image's values


def test_a_philips_scaled_pre_contrast_beside_an_unscaled_image_gives_no_re(tmp_path):
    root = _pre_and_hbp(tmp_path / "mixed", [(PRE_TAGS, (250.0, 180.0, 100.0), 1.0, 4.0)])
    mri = analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()["mri"]
    assert mri["relative_enhancement"] is None
    assert "different scales" in mri["pre_contrast"]["relative_enhancement_withheld"]
    assert any("RE not computed" in n for n in mri["notes"])


def test_the_pre_contrast_twin_is_the_one_of_the_same_sequence(tmp_path):
    other = mr_headers("101500", "100500", FlipAngle="15")  # an earlier pre-contrast run with another flip angle
    root = _pre_and_hbp(
        tmp_path / "twin", [(other, (900.0, 700.0, 300.0), None, None), (PRE_TAGS, (250.0, 180.0, 100.0), None, None)]
    )
    mri = analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()["mri"]
    assert mri["pre_contrast"]["series_instance_uid"] == deterministic_uid("twin", "pre1")
    assert mri["relative_enhancement"]["liver"] == pytest.approx(0.6)


def test_a_pre_contrast_image_of_another_sequence_gives_no_re(tmp_path):
    other = mr_headers("101500", "100500", FlipAngle="15")
    root = _pre_and_hbp(tmp_path / "fa", [(other, (250.0, 180.0, 100.0), None, None)])
    rep = analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()
    mri = rep["mri"]
    assert mri["relative_enhancement"] is None
    assert "flip angle 15 vs 10" in mri["pre_contrast"]["relative_enhancement_withheld"]
    assert all(les.get("relative_enhancement") is None for les in rep["lesions"])


@covers("mri.pre_contrast_parameter_tolerance_percent")
def test_rules_key_pre_contrast_parameter_tolerance_percent(tmp_path):
    stored = (("stored", 1.0, 0.0), ("stored", 1.0, 0.0))
    image, pre = {"flip_angle_deg": 10.0, "echo_time_ms": 1.8}, {"flip_angle_deg": 10.15, "echo_time_ms": 1.8}
    assert relative_enhancement_withheld(image, pre, stored, RULES) is None  # 1.5 % apart, within 2 %
    path = tmp_path / "r.toml"
    path.write_text("[mri]\npre_contrast_parameter_tolerance_percent = 1.0\n")
    assert "flip angle" in relative_enhancement_withheld(image, pre, stored, load_rules(path))


# ---------------------------------------------------------------- what the phase was decided from
def test_the_phase_names_the_header_values_it_was_decided_from(tmp_path):
    side = mr_headers("235800", "001800", ContrastBolusAgent="Gd-EOB-DTPA")
    phase = _analyze(write_nifti_study(tmp_path / "a", signal_image(400.0, 200.0, 120.0), sidecar=side))["mri"]["phase"]
    assert phase["decided_from"] == [
        "ContrastBolusAgent 'Gd-EOB-DTPA'",
        "ContrastBolusStartTime '235800'",
        "AcquisitionTime '00:18:00'",
        "delay 1200 s",
    ]
    assert phase["reason"] is None
    bare = _analyze(write_nifti_study(tmp_path / "b", signal_image(400.0, 200.0, 120.0)))["mri"]["phase"]
    assert (bare["phase"], bare["decided_from"]) == ("unknown", [])
    assert "neither a contrast agent nor an injection time" in bare["reason"]
    no_time = mr_headers(None, "103500", ContrastBolusAgent="Primovist")
    one = _analyze(write_nifti_study(tmp_path / "c", signal_image(400.0, 200.0, 120.0), sidecar=no_time))
    assert one["mri"]["phase"]["phase"] == "unknown"
    assert "delay after injection is not" in one["mri"]["phase"]["reason"]


# ---------------------------------------------------------------- real MR headers (../shared/data/MANIFEST.md)
@pytest.mark.parametrize(
    "parts",
    [
        ("pydicom_data_seg_enhanced", "data_store", "data", "emri_small.dcm"),  # Enhanced MR, pydicom-data (MIT)
        ("dcm_qa_ts", "In", "1.dcm"),  # Siemens MR, neurolabusc/dcm_qa_ts (BSD-2-Clause)
    ],
)
def test_real_mr_headers_give_their_own_facts_and_an_unknown_phase(parts):
    path = shared_path(*parts)
    ds = pydicom.dcmread(path, stop_before_pixels=True)  # the peer reading of the same header
    prov = mr_provenance_from_dicom([path])
    assert prov.image_type == "\\".join(ds.ImageType)
    assert prov.image_component is None  # magnitude images
    assert prov.field_strength_t == pytest.approx(float(ds.MagneticFieldStrength))
    if "FlipAngle" in ds:
        assert prov.flip_angle_deg == pytest.approx(float(ds.FlipAngle))
        assert prov.scanning_sequence == str(ds.ScanningSequence)
    assert prov.contrast_agent is None
    assert prov.contrast_start_time is None
    phase = classify_mr_phase(prov.to_dict(), RULES)
    assert phase["phase"] == "unknown"
    assert "neither a contrast agent nor an injection time" in phase["reason"]


# ---------------------------------------------------------------- one Enhanced MR file with several stacks (Philips)
def _enhanced_two_stacks(path: Path, split: str) -> Path:
    """An Enhanced MR file: pre-contrast (10:09) and HBP (10:35) frames by TemporalPositionIndex, or
    Dixon water and fat frames by FrameType, at the same positions; injection 10:15."""
    nk = SHAPE[2]
    first, second = (
        (signal_image(250.0, 180.0, 100.0), signal_image(400.0, 200.0, 120.0))
        if split == "temporal"
        else (signal_image(400.0, 200.0, 120.0), signal_image(40.0, 10.0, 5.0))
    )
    write_enhanced_series(path, np.concatenate([first, second], axis=2), AFFINE, modality="MR", seed=7)
    ds = pydicom.dcmread(path)
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        k, t = n % nk, n // nk
        item.PlanePositionSequence[0].ImagePositionPatient = [float(x) for x in (AFFINE @ [0.0, 0.0, k, 1.0])[:3]]
        content = Dataset()
        content.TemporalPositionIndex = t + 1 if split == "temporal" else 1
        content.FrameAcquisitionDateTime = "20240101" + ("100900" if split == "temporal" and t == 0 else "103500")
        item.FrameContentSequence = DicomSequence([content])
        frame_type = Dataset()
        frame_type.FrameType = ["ORIGINAL", "PRIMARY", "T1", "WATER" if split == "temporal" or t == 0 else "FAT"]
        item.MRImageFrameTypeSequence = DicomSequence([frame_type])
    ds.ContrastBolusAgent = "Primovist"
    ds.ContrastBolusStartTime = "101500"
    ds.save_as(path)
    return path


def _analyze_stack(path: Path, seg: Path, stack: int | None) -> dict:
    uid = pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
    opts = AnalyzeOptions(modality="MR", image_series=None if stack is None else f"{uid}#{stack}")
    return analyze(image=path, segs=[seg], labels=LABELS, options=opts).to_dict()["mri"]


def test_enhanced_mr_with_two_dynamic_phases_reads_each_phase_from_its_own_frames(tmp_path):
    path = _enhanced_two_stacks(tmp_path / "enh.dcm", "temporal")
    seg = write_nifti(tmp_path / "seg.nii.gz", label_map(), AFFINE)
    with pytest.raises(DicomError, match=r"TemporalPositionIndex 1.*TemporalPositionIndex 2.*--image-series"):
        _analyze_stack(path, seg, None)  # which phase the NIfTI was drawn on is not stated: ambiguous
    pre = _analyze_stack(path, seg, 1)
    assert (pre["phase"]["phase"], pre["phase"]["delay_s"]) == ("pre-contrast", pytest.approx(-360.0))
    assert pre["liver_reference"]["mean_signal_au"] == pytest.approx(250.0)
    hbp = _analyze_stack(path, seg, 2)
    assert (hbp["phase"]["phase"], hbp["phase"]["delay_s"]) == ("hepatobiliary", pytest.approx(1200.0))
    assert hbp["provenance"]["acquisition_time_source"] == "FrameAcquisitionDateTime"
    assert hbp["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)


def test_enhanced_mr_with_dixon_water_and_fat_frames_measures_the_chosen_one(tmp_path):
    path = _enhanced_two_stacks(tmp_path / "dixon.dcm", "frame_type")
    seg = write_nifti(tmp_path / "seg.nii.gz", label_map(), AFFINE)
    water = _analyze_stack(path, seg, 2)  # stacks in FrameType order: ...FAT, ...WATER
    assert water["provenance"]["image_component"] == "water"
    assert water["liver_to_spleen_contrast_ratio"] == pytest.approx(2.0)
    fat = _analyze_stack(path, seg, 1)
    assert fat["provenance"]["image_component"] == "fat"
    assert fat["liver_reference"]["mean_signal_au"] == pytest.approx(40.0)
    assert fat["liver_to_spleen_contrast_ratio"] is None


def test_a_dcm2niix_sidecar_states_tr_and_te_in_seconds(tmp_path):
    # dcm2niix / BIDS: "RepetitionTime": 0.0039 (s), "EchoTime": 0.0018 (s); the DICOM values are 3.9 / 1.8 ms
    side = {
        **mr_headers("101500", "103500"),
        "RepetitionTime": 0.0039,
        "EchoTime": 0.0018,
        "ConversionSoftware": "dcm2niix",
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"],
    }
    prov = _analyze(write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side))["mri"]["provenance"]
    assert prov["repetition_time_ms"] == pytest.approx(3.9)
    assert prov["echo_time_ms"] == pytest.approx(1.8)
    assert prov["image_type"] == "ORIGINAL\\PRIMARY\\M\\ND\\NORM"
    assert any("in seconds" in n for n in prov["notes"])


def test_cli_warns_when_the_headers_contradict_mr_phase(tmp_path):
    side = mr_headers("101500", "103500", ContrastBolusAgent="Gadovist")
    paths = write_nifti_study(tmp_path / "s", signal_image(400.0, 200.0, 120.0), sidecar=side)
    args = ["analyze", "--image", str(paths["image"]), "--seg", str(paths["seg"]), "--labels", LABELS]
    args += ["--modality", "MR", "--mr-phase", "hbp", "--out", str(tmp_path / "out")]
    run = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "contradicts the headers" in run.stderr + run.stdout
    assert "basis: conflict" in run.stdout
    assert "Gadovist" in run.stderr + run.stdout
    assert not re.search(r"HUI \d", run.stdout)  # no "HUI 83.9 mL"
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert any("contradicts the headers" in w for w in rep.get("warnings", []))


def test_n4_divides_the_pre_contrast_image_by_the_same_field_so_re_is_kept(tmp_path):
    # one coil field over both acquisitions: RE = SI / SI_pre - 1 on the same voxels is free of it
    field = linear_bias(0.5)
    pre = signal_image(250.0, 180.0, 100.0, background=40.0) * field
    post = signal_image(400.0, 200.0, 120.0, background=40.0) * field
    paths = write_nifti_study(tmp_path, post, sidecar=mr_headers("101500", "103500"), pre=pre)
    mri = _analyze(paths, pre_contrast=paths["pre"], n4=True)["mri"]
    assert mri["bias_field_correction"]["applied"] is True
    assert "image's bias field" in mri["bias_field_correction"]["pre_contrast"]
    assert mri["relative_enhancement"]["liver"] == pytest.approx((400.0 - 250.0) / 250.0, rel=1e-3)
    assert mri["relative_enhancement"]["spleen"] == pytest.approx((200.0 - 180.0) / 180.0, rel=1e-2)  # was -0.18


def test_prescan_normalised_image_and_a_pre_contrast_without_it_give_no_re():
    stored = (("stored", 1.0, 0.0), ("stored", 1.0, 0.0))
    norm = {"image_type": "ORIGINAL\\PRIMARY\\M\\ND\\NORM", "flip_angle_deg": 10.0}
    plain = {"image_type": "ORIGINAL\\PRIMARY\\M\\ND", "flip_angle_deg": 10.0}
    why = relative_enhancement_withheld(norm, plain, stored, RULES)
    assert "intensity normalisation none vs NORM" in why
    assert relative_enhancement_withheld(norm, dict(norm), stored, RULES) is None
    assert relative_enhancement_withheld(norm, {"flip_angle_deg": 10.0}, stored, RULES) is None  # not stated


# ---------------------------------------------------------------- functional FLR of every standard resection
def test_functional_flr_of_every_standard_resection_from_a_known_uptake_per_segment(tmp_path):
    # segment s has signal 260 + 30 s over a spleen of 200 (segment 1 barely above the spleen); the two
    # lesion boxes (signal 90, no hepatocytes) are not liver parenchyma. Truth per segment, by box arithmetic:
    # HUI_s = (non-tumorous voxels of s) x voxel mL x (SI_s / SI_spleen - 1)
    from mri_factory import LESION_BOXES, box_voxels, lesion_segment, segment_boxes

    signal = {s: 260.0 + 30.0 * s for s in range(1, 9)}
    rep = _analyze(write_nifti_study(tmp_path, signal_image(signal, 200.0, 90.0), sidecar=mr_headers("1015", "1035")))
    voxel_ml = abs(float(np.linalg.det(AFFINE[:3, :3]))) / 1000.0
    lesion_voxels = dict.fromkeys(range(1, 9), 0)
    for n, lb in enumerate(LESION_BOXES):
        lesion_voxels[lesion_segment(n)] += box_voxels(lb)
    hui = {
        s: (box_voxels(b) - lesion_voxels[s]) * voxel_ml * (signal[s] / 200.0 - 1.0) for s, b in segment_boxes().items()
    }
    total = sum(hui.values())
    rows = {r["name"]: r for r in rep["mri"]["functional_flr"]}
    assert set(rows) == set(RULES["resections"])
    for name, res in RULES["resections"].items():
        expected = 100.0 * sum(v for s, v in hui.items() if s not in res["segments"]) / total
        assert rows[name]["removed_segments"] == list(res["segments"])
        assert rows[name]["functional_flr_percent"] == pytest.approx(expected, abs=0.01), name


def test_a_pre_contrast_slab_that_misses_part_of_the_liver_gives_no_liver_re(tmp_path):
    # the pre-contrast series holds only slices k 10..23 of the image grid: the liver (k 2..21) is partly
    # outside it, the spleen (k 6..17) too, and lesion 2 (k 14..19) wholly inside
    from mri_factory import LESION_BOXES

    pre_full = signal_image(250.0, 180.0, 100.0)
    pre_affine = AFFINE.copy()
    pre_affine[:3, 3] = (AFFINE @ [0.0, 0.0, 10.0, 1.0])[:3]
    paths = write_nifti_study(
        tmp_path,
        signal_image(400.0, 200.0, 120.0),
        sidecar=mr_headers("101500", "103500"),
        pre=pre_full[:, :, 10:],
        pre_affine=pre_affine,
    )
    rep = _analyze(paths, pre_contrast=paths["pre"])
    mri = rep["mri"]
    assert mri["relative_enhancement"] == {"liver": None, "spleen": None}  # 0.6 only over the covered part
    assert mri["pre_contrast"]["covers_percent_of_image"] == pytest.approx(100.0 * 14 / 24, abs=0.01)
    by_box = {les["id"]: les.get("relative_enhancement") for les in rep["lesions"]}
    assert sorted(by_box.values(), key=lambda v: v is None) == [pytest.approx(0.2), None]
    assert LESION_BOXES[1][2][0] >= 10  # the covered lesion is the second box


def test_a_non_hepatobiliary_statement_against_the_headers_is_the_users_call():
    out = classify_mr_phase({"contrast_agent": "Primovist", "delay_s": 46.0}, RULES, user_phase="arterial")
    assert (out["phase"], out["basis"]) == ("arterial", "user")
    assert any("would give portal_venous" in n for n in out["notes"])
    # calling a hepatobiliary series portal venous turns the hepatocyte indices off: allowed
    out = classify_mr_phase({"contrast_agent": "Primovist", "delay_s": 1200.0}, RULES, user_phase="pv")
    assert (out["phase"], out["basis"]) == ("portal_venous", "user")


def test_scales_philips_private_real_world_values_and_dcm2niix_sidecars(tmp_path):
    from netlm_imaging.io.mr_headers import MrProvenance, mr_provenance_from_sidecar, signal_scale

    # Philips FP = DV / (RS x SS): RS 2, SS 0.5 -> a = 1
    assert signal_scale(MrProvenance("dicom", rescale_slope=2.0, philips_scale_slope=0.5)) == ("philips_fp", 1.0, 0.0)
    # real-world value = stored x 3 + 7 with DV = stored x 2 + 10: a = 3 / 2, b = 7 - 10 x 1.5
    rwv = MrProvenance(
        "dicom", rescale_slope=2.0, rescale_intercept=10.0, real_world_value_slope=3.0, real_world_value_intercept=7.0
    )
    assert signal_scale(rwv) == ("real_world_value", 1.5, 7.0 - 15.0)
    assert signal_scale(MrProvenance("dicom", philips_scale_slope=0.0)) is None
    # an Enhanced MR file with the mapping in its per-frame functional groups
    path = write_enhanced_series(tmp_path / "rwv.dcm", signal_image(400.0, 200.0, 120.0), AFFINE, modality="MR")
    ds = pydicom.dcmread(path)
    for item in ds.PerFrameFunctionalGroupsSequence:
        m = Dataset()
        m.RealWorldValueSlope, m.RealWorldValueIntercept = 0.25, 0.0
        item.RealWorldValueMappingSequence = DicomSequence([m])
    ds.save_as(path)
    prov = mr_provenance_from_dicom([path])
    assert (prov.real_world_value_slope, prov.real_world_value_intercept) == (0.25, 0.0)
    # dcm2niix sidecars: display values with Philips scaling, or already floating point
    image = tmp_path / "mr.nii.gz"
    image.write_bytes(b"")
    side = tmp_path / "mr.json"
    side.write_text(json.dumps({"PhilipsRescaleSlope": 2.0, "PhilipsScaleSlope": 0.25}))
    assert signal_scale(mr_provenance_from_sidecar(image)) == ("philips_fp", 2.0, 0.0)
    side.write_text(
        json.dumps({"PhilipsRescaleSlope": 2.0, "PhilipsScaleSlope": 0.25, "UsePhilipsFloatNotDisplayScaling": 1})
    )
    assert signal_scale(mr_provenance_from_sidecar(image)) == ("philips_fp", 1.0, 0.0)


def test_ge_private_image_type_phase_and_a_worded_water_type(tmp_path):
    files = write_image_series(tmp_path / "ge", signal_image(400.0, 200.0, 120.0), AFFINE, modality="MR", seed=9)
    ds = pydicom.dcmread(files[0])
    ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x2F, "SS", 1)  # 1 = phase
    ds.save_as(files[0])
    assert mr_provenance_from_dicom([files[0]]).image_component == "phase"
    assert image_component("DERIVED\\PRIMARY\\IDEAL WATER", None) == "water"
    assert image_component("ORIGINAL\\PRIMARY\\OTHER", "MAGNITUDE") is None


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        ({"ScanningSequence": "SE", "SequenceVariant": "SK\\SP", "EchoTime": "90", "ScanOptions": ""}, "SE sequence"),
        ({"ScanningSequence": "EP", "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]}, "diffusion"),
        ({"ScanningSequence": "GR\\EP"}, "sequence (not a T1 gradient echo)"),
    ],
)
def test_a_t2_or_diffusion_series_in_the_hepatobiliary_window_gives_no_hepatocyte_index(tmp_path, tags, why):
    # T2 HASTE / DWI are often acquired while waiting for the HBP: 12 min after Primovist, not a T1 image
    side = mr_headers("101500", "102700", **tags)
    mri = _analyze(write_nifti_study(tmp_path, signal_image(400.0, 200.0, 120.0), sidecar=side))["mri"]
    assert mri["phase"]["phase"] == "hepatobiliary"  # the timing is what it is
    assert mri["liver_to_spleen_contrast_ratio"] is None
    assert mri["hepatic_uptake_index_ml"] is None
    assert any(why in n for n in mri["notes"])
    assert any("T1-weighted gradient-echo" in m for m in mri["missing_inputs"])


# ---------------------------------------------------------------- contrast attributes only on some series of the study
def _study_without_contrast_on_the_hbp(root: Path, second_start: str | None) -> dict:
    no_contrast = {"ContrastBolusAgent": None, "ContrastBolusStartTime": None}
    series = [(mr_headers("101500", "101545"), (450.0, 400.0, 150.0), None, None)]  # arterial, states both
    if second_start is not None:
        series.append((mr_headers(second_start, "101700"), (380.0, 300.0, 130.0), None, None))
    series.append((mr_headers(None, "100900", **no_contrast), (250.0, 180.0, 100.0), None, None))  # pre, bare
    hbp_tags = mr_headers(None, "103500", **no_contrast)
    root = _pre_and_hbp(root, series, hbp_tags=hbp_tags)
    return analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()["mri"]


def test_a_series_without_contrast_attributes_takes_the_studys_one_injection(tmp_path):
    mri = _study_without_contrast_on_the_hbp(tmp_path / "one", None)
    phase = mri["phase"]
    assert (phase["phase"], phase["delay_s"]) == ("hepatobiliary", pytest.approx(1200.0))  # 10:35 - 10:15
    assert mri["provenance"]["contrast_from"] == "series 3"
    assert "ContrastBolusStartTime '101500' (from series 3)" in phase["decided_from"]
    assert any("taken from series 3 of the same study" in n for n in mri["notes"])
    assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(2.0)
    # the bare pre-contrast series gets its delay too, and is the twin
    assert mri["relative_enhancement"]["liver"] == pytest.approx(0.6)


def test_series_that_disagree_on_the_injection_time_lend_nothing(tmp_path):
    mri = _study_without_contrast_on_the_hbp(tmp_path / "two", "102000")  # a second start time
    assert mri["phase"]["phase"] == "unknown"
    assert mri["provenance"]["contrast_from"] is None
    assert mri["hepatic_uptake_index_ml"] is None


def test_enhanced_mr_contrast_start_time_in_the_administration_profile(tmp_path):
    # Enhanced Contrast/Bolus Module: the start time sits in ContrastBolusAgentSequence >
    # ContrastAdministrationProfileSequence, the agent is a code; FrameAcquisitionDateTime per frame
    path = write_enhanced_series(tmp_path / "e.dcm", signal_image(400.0, 200.0, 120.0), AFFINE, modality="MR")
    ds = pydicom.dcmread(path)
    profile = Dataset()
    profile.ContrastBolusVolume = "7.5"
    profile.ContrastBolusStartTime = "101500"
    agent = Dataset()
    agent.CodeValue, agent.CodingSchemeDesignator, agent.CodeMeaning = "C0000", "99LOCAL", "Gadoxetate disodium"
    agent.ContrastBolusAgentNumber = 1
    agent.ContrastAdministrationProfileSequence = DicomSequence([profile])
    ds.ContrastBolusAgentSequence = DicomSequence([agent])
    for item in ds.PerFrameFunctionalGroupsSequence:
        content = Dataset()
        content.FrameAcquisitionDateTime = "20240101103000"
        item.FrameContentSequence = DicomSequence([content])
    ds.save_as(path)
    prov = mr_provenance_from_dicom([path])
    assert prov.contrast_agent == "Gadoxetate disodium"
    assert prov.contrast_start_time == "101500"
    assert prov.contrast_volume_ml == pytest.approx(7.5)
    assert prov.delay_s == pytest.approx(15 * 60.0)
    assert classify_mr_phase(prov.to_dict(), RULES)["phase"] == "hepatobiliary"


def test_the_console_names_the_image_component(tmp_path):
    side = mr_headers("101500", "103500", ImageType=["DERIVED", "PRIMARY", "DIXON", "FAT"])
    paths = write_nifti_study(tmp_path / "s", signal_image(40.0, 10.0, 5.0), sidecar=side)
    rep = analyze(image=paths["image"], segs=[paths["seg"]], labels=LABELS, options=AnalyzeOptions(modality="MR"))
    summary = rep.summary()
    assert "basis: delay; fat image)" in summary
    assert "Hepatocyte function not measured" in summary


def test_multi_valued_sequence_facts_compare_in_any_order():
    stored = (("stored", 1.0, 0.0), ("stored", 1.0, 0.0))
    a, b = (
        {"sequence_variant": "SP\\SK", "scanning_sequence": "GR"},
        {"sequence_variant": "SK\\SP", "scanning_sequence": "GR"},
    )
    assert relative_enhancement_withheld(a, b, stored, RULES) is None
    assert "SequenceVariant" in relative_enhancement_withheld(
        a, {**b, "sequence_variant": "SK\\SP\\OSP"}, stored, RULES
    )


def test_enhanced_mr_stacks_whose_positions_round_apart_are_still_split(tmp_path):
    """The two phases' positions differ by 0.0002 mm, placed on each side of a 0.01 mm rounding boundary
    (x.xx5 -/+ 0.0001 in every coordinate): one position each, as a tolerance says, not two as rounding to
    2 decimals said (the file was then read as one stack of twice the slices)."""
    path = _enhanced_two_stacks(tmp_path / "enh.dcm", "temporal")
    ds = pydicom.dcmread(path)
    nk = SHAPE[2]
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        k, t = n % nk, n // nk
        base = np.round((AFFINE @ [0.0, 0.0, k, 1.0])[:3], 2) + 0.005
        item.PlanePositionSequence[0].ImagePositionPatient = [f"{x:.4f}" for x in base + (1e-4 if t else -1e-4)]
    ds.save_as(path)
    seg = write_nifti(tmp_path / "seg.nii.gz", label_map(), AFFINE)
    with pytest.raises(DicomError, match=r"TemporalPositionIndex 1.*TemporalPositionIndex 2.*--image-series"):
        _analyze_stack(path, seg, None)
    hbp = _analyze_stack(path, seg, 2)
    assert hbp["phase"]["phase"] == "hepatobiliary"
    assert hbp["liver_reference"]["mean_signal_au"] == pytest.approx(400.0)


@pytest.mark.parametrize(
    ("tags", "withheld"),
    [
        ({"EchoPulseSequence": "SPIN", "EchoPlanarPulseSequence": "NO"}, "a SPIN echo sequence"),
        ({"EchoPulseSequence": "GRADIENT", "EchoPlanarPulseSequence": "YES"}, "an echo-planar sequence"),
        ({"EchoPulseSequence": "GRADIENT", "EchoPlanarPulseSequence": "NO"}, None),
    ],
)
def test_an_enhanced_mr_spin_echo_or_epi_in_the_hepatobiliary_window_gives_no_hepatocyte_index(
    tmp_path, tags, withheld
):
    # Enhanced MR states the sequence in EchoPulseSequence / EchoPlanarPulseSequence, not ScanningSequence
    path = write_enhanced_series(tmp_path / "e.dcm", signal_image(400.0, 200.0, 120.0), AFFINE, modality="MR")
    ds = pydicom.dcmread(path)
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.ContrastBolusAgent, ds.ContrastBolusStartTime = "Primovist", "101500"
    for item in ds.PerFrameFunctionalGroupsSequence:
        content = Dataset()
        content.FrameAcquisitionDateTime = "20240101103500"  # 20 min after the injection
        item.FrameContentSequence = DicomSequence([content])
    ds.save_as(path)
    seg = write_nifti(tmp_path / "seg.nii.gz", label_map(), AFFINE)
    mri = analyze(image=path, segs=[seg], labels=LABELS, options=AnalyzeOptions(modality="MR")).to_dict()["mri"]
    assert mri["phase"]["phase"] == "hepatobiliary"
    if withheld is None:
        assert mri["liver_to_spleen_contrast_ratio"] == pytest.approx(400.0 / 200.0)
    else:
        assert mri["liver_to_spleen_contrast_ratio"] is None
        assert any(withheld in n for n in mri["notes"]), mri["notes"]


_STORED = (("stored", 1.0, 0.0), ("stored", 1.0, 0.0))


@pytest.mark.parametrize(
    ("image", "pre", "named"),
    [
        ({"fat_suppression": True}, {"fat_suppression": False}, "fat suppression"),
        ({"field_strength_t": 3.0}, {"field_strength_t": 1.5}, "field strength 1.5 vs 3"),
        ({"echo_time_ms": 1.8}, {"echo_time_ms": 2.3}, "TE 2.3 vs 1.8"),
        (
            {"image_type": "ORIGINAL\\PRIMARY\\M\\FIL"},
            {"image_type": "ORIGINAL\\PRIMARY\\M"},
            "normalisation none vs FIL",
        ),
    ],
)
def test_each_sequence_fact_a_pre_contrast_image_must_share_for_re(image, pre, named):
    assert named in relative_enhancement_withheld(image, pre, _STORED, RULES)
    assert relative_enhancement_withheld(image, image, _STORED, RULES) is None


def test_a_scale_slope_of_zero_gives_no_re():
    why = relative_enhancement_withheld({}, {}, (("stored", 1.0, 0.0), None), RULES)
    assert why is not None
    assert "scale slope of 0" in why


def _bare_hbp_study(root: Path, arterial_agent: str, hbp_agent: str | None) -> dict:
    """An arterial series (the factory's agent, 10:15) and a second one naming ``arterial_agent`` at the same
    time; the HBP (10:35) states no ContrastBolusStartTime and ``hbp_agent`` (None: no agent either)."""
    series = [
        (mr_headers("101500", "101545"), (450.0, 400.0, 150.0), None, None),
        (mr_headers("101500", "101700", ContrastBolusAgent=arterial_agent), (380.0, 300.0, 130.0), None, None),
        (
            mr_headers(None, "100900", ContrastBolusAgent=None, ContrastBolusStartTime=None),
            (250.0, 180.0, 100.0),
            None,
            None,
        ),
    ]
    hbp_tags = mr_headers(None, "103500", ContrastBolusAgent=hbp_agent, ContrastBolusStartTime=None)
    root = _pre_and_hbp(root, series, hbp_tags=hbp_tags)
    return analyze(root, labels="liver=Liver,lesion=Lesion,spleen=Spleen").to_dict()["mri"]


@pytest.mark.parametrize(
    ("arterial_agent", "hbp_agent"),
    [("Dotarem", None), (MR_HEADERS["ContrastBolusAgent"], "Gadovist")],
    ids=["the study's series name two agents", "the series names another agent than the study's"],
)
def test_series_that_name_other_agents_lend_no_injection(tmp_path, arterial_agent, hbp_agent):
    mri = _bare_hbp_study(tmp_path / "s", arterial_agent, hbp_agent)
    assert mri["provenance"]["contrast_from"] is None
    assert mri["phase"]["phase"] == "unknown"
    assert mri["hepatic_uptake_index_ml"] is None


def test_the_study_lends_its_one_agent_and_time(tmp_path):  # the control of the two above: one agent, one time
    mri = _bare_hbp_study(tmp_path / "s", MR_HEADERS["ContrastBolusAgent"], None)
    assert mri["provenance"]["contrast_agent"] == MR_HEADERS["ContrastBolusAgent"]
    assert (mri["phase"]["phase"], mri["phase"]["delay_s"]) == ("hepatobiliary", pytest.approx(1200.0))

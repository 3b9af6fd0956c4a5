"""Issue 12 item 1: roles of named segments / ROIs as clinical systems name them.

A user mapping (``--labels`` names, ``--segment-pattern``) is exclusive; without
one, codes first, then conservative name patterns; RT interpreted types that are
never a liver or a tumour, planning volumes, compound names and unknown organs
are ignored with a note; exit 3 only when no liver and no lesion is found.
Truths are voxel counts of boxes whose corners the tests place themselves
(volume = count x |det(affine)|), or MANIFEST facts of the real files.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import Contour, RoiSpec, seg_identity, write_rtstruct

from netlm_imaging.api import analyze_with_context
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.role_checks import flag_for
from netlm_imaging.io.role_precedence import decide_role

DATA = Path(__file__).parent / "data"
LIVER = ("SCT", "10200004")
TISSUE = ("SCT", "85756007")
KIDNEY = ("SCT", "64033007")
NEOPLASM = ("SCT", "108369006")
VESSEL = ("SCT", "59820001")


@pytest.mark.parametrize(
    ("name", "code", "itype", "role", "reason"),
    [
        ("BODY", None, "EXTERNAL", None, "type-ignored"),
        ("Couch", None, "SUPPORT", None, "type-ignored"),
        ("Liver", None, "AVOIDANCE", None, "type-ignored"),  # the type wins over a telling name
        ("Tumor Bed", None, "CTV", None, "type-ignored"),
        ("Tumor Bed", None, None, None, "unmatched-ignored"),  # a bed is not a tumour
        ("PTV_Liver", None, "ORGAN", None, "type-ignored"),
        ("ctv 50", None, None, None, "type-ignored"),
        ("Liver-GTV", None, "ORGAN", None, "unmatched-ignored"),  # compound: never guessed
        ("Liver_minus_tumour", None, None, None, "unmatched-ignored"),
        ("Liver+2mm", None, None, None, "unmatched-ignored"),
        ("GTV_Edema", None, "GTV", None, "unmatched-ignored"),
        ("Spinal-Cord", None, "ORGAN", None, "unmatched-ignored"),
        ("Lung-Left", None, "ORGAN", None, "unmatched-ignored"),
        ("Heart", None, "ORGAN", None, "unmatched-ignored"),
        # hepatic vessels: measured against the lesions (vascular contact), never liver
        ("Hepatic vein", None, None, "vessel", "pattern"),
        ("portal_vein_and_splenic_vein", ("SCT", "110765007"), None, "vessel", "code"),
        ("Liver_PV", None, None, None, "unmatched-ignored"),  # a helper beside the organ, not the organ's vessel
        ("liver_vessels", VESSEL, None, "vessel", "code"),  # Blood vessel: TotalSegmentator's SEG
        ("kidney_left", KIDNEY, None, None, "unmatched-ignored"),
        ("liver_tumor", NEOPLASM, None, "lesion", "code"),  # TotalSegmentator liver_vessels task
        ("anything", LIVER, None, "liver", "code"),
        ("Liver", TISSUE, None, "liver", "pattern"),  # Slicer's default Tissue code says nothing
        ("GTV_Mass", None, "GTV", "lesion", "pattern"),
        ("liver_segment_4", LIVER, None, "segment4", "pattern"),
        ("Liver", None, "ORGAN", "liver", "pattern"),
        ("Lesion no 3", None, None, "lesion", "pattern"),
        ("Lesion_arterial", None, None, "lesion", "pattern"),  # a phase, not an artery
        ("Liver scar", None, None, None, "unmatched-ignored"),
        # short lesion words between non-letters: two roles, never guessed (was the liver: metastases as liver)
        ("Liver_mets", None, "GTV", "lesion", "pattern"),  # the tumour by its organ
        ("Leber_Met1", None, None, "lesion", "pattern"),
        ("Liver_NET", None, None, "lesion", "pattern"),
        ("Met1", None, None, "lesion", "pattern"),
        ("NET_2", None, None, "lesion", "pattern"),
        ("mets-3", None, None, "lesion", "pattern"),
        ("Magnet", None, None, None, "unmatched-ignored"),  # not inside words
        ("Comet", None, None, None, "unmatched-ignored"),
        # the names of other languages
        ("Foie", None, "ORGAN", "liver", "pattern"),
        ("Hígado", None, None, "liver", "pattern"),
        ("Fígado", None, None, "liver", "pattern"),
        ("Fegato", None, None, "liver", "pattern"),
        ("Lever", None, None, "liver", "pattern"),
        ("Clever", None, None, None, "unmatched-ignored"),
        ("Tumeur 1", None, None, "lesion", "pattern"),
        ("Métastase", None, None, "lesion", "pattern"),
        ("Metástasis 2", None, None, "lesion", "pattern"),
        ("Lésion", None, None, "lesion", "pattern"),
        ("Le\u0301sion", None, None, "lesion", "pattern"),  # the accent as its own code point (NFD)
        ("Läsion", None, None, "lesion", "pattern"),
        ("Nódulo", None, None, "lesion", "pattern"),
        ("Metástasis hepática", None, None, "lesion", "pattern"),  # a metastasis qualified by its organ
        ("Metastasi epatica", None, None, "lesion", "pattern"),
        ("Vena hepatica", None, None, "vessel", "pattern"),
    ],
)
def test_decide_role_without_a_user_mapping(name, code, itype, role, reason):
    d = decide_role(name, code, parse_label_spec(None), interpreted_type=itype)
    assert (d.role, d.reason) == (role, reason), d.note


def test_a_user_mapping_is_exclusive():
    spec = parse_label_spec("lesion=GTV_Mass")
    assert decide_role("gtv_mass", None, spec).reason == "user"  # names compare case-insensitively
    edema = decide_role("GTV_Edema", None, spec, interpreted_type="GTV")
    assert (edema.role, edema.reason) == (None, "unmatched-ignored")  # the built-in 'gtv' pattern no longer applies
    liver = decide_role("Liver", LIVER, spec)
    assert (liver.role, liver.reason) == (None, "unmatched-ignored")  # nor do codes
    pat = parse_label_spec(None, name_patterns=[("^target", "lesion")])
    assert decide_role("Target 2", TISSUE, pat).role == "lesion"
    assert decide_role("Liver", LIVER, pat).role is None


def test_flag_for_names_that_labels_cannot_hold():
    assert flag_for("Tumor Bed") == '--labels lesion="Tumor Bed"'
    assert flag_for("Liver,left", "liver") == "--segment-pattern '^Liver,left$=liver'"


# ---------------------------------------------------------------- a treatment-planning RTSTRUCT, end to end

AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(0.0, 0.0, 15.0), origin=(-30.0, -20.0, 50.0))
SHAPE = (40, 40, 12)
VOXEL_ML = abs(np.linalg.det(AFF[:3, :3])) / 1000.0


def _box(i0, i1, j0, j1, k0, k1) -> list[Contour]:
    """Square contours with corners between voxel centres: they hold centres i0..i1-1, j0..j1-1 on k0..k1-1."""
    out = []
    for k in range(k0, k1):
        corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
        pts = np.array([AFF[:3, :3] @ np.array([i, j, k], float) + AFF[:3, 3] for i, j in corners])
        out.append(Contour(pts))
    return out


def _count(i0, i1, j0, j1, k0, k1) -> int:
    return (i1 - i0) * (j1 - j0) * (k1 - k0)


LIVER_BOX = (5, 35, 5, 35, 1, 10)
MASS_BOX = (10, 16, 10, 16, 3, 7)
EDEMA_BOX = (8, 20, 8, 20, 2, 8)


@pytest.fixture(scope="module")
def planning(tmp_path_factory):
    root = tmp_path_factory.mktemp("planning")
    files = write_image_series(root / "ct", np.zeros(SHAPE, np.float32), AFF, seed=12)
    rois = [
        RoiSpec("BODY", _box(1, 39, 1, 39, 0, 12), interpreted_type="EXTERNAL"),
        RoiSpec("Liver", _box(*LIVER_BOX), interpreted_type="ORGAN"),
        RoiSpec("GTV_Mass", _box(*MASS_BOX), interpreted_type="GTV"),
        RoiSpec("GTV_Edema", _box(*EDEMA_BOX), interpreted_type="GTV"),
        RoiSpec("PTV_Liver", _box(4, 36, 4, 36, 1, 10), interpreted_type="PTV"),
        RoiSpec("Liver-GTV", _box(5, 35, 5, 35, 1, 10), interpreted_type="ORGAN"),
        RoiSpec("Tumor Bed", _box(9, 17, 9, 17, 3, 7), interpreted_type="CTV"),
        RoiSpec("Heart", _box(30, 38, 30, 38, 10, 12), interpreted_type="ORGAN"),
        RoiSpec("Spinal-Cord", [], interpreted_type="ORGAN"),
    ]
    rt = write_rtstruct(root / "rt.dcm", files, rois, seed=12)
    only_organs = write_rtstruct(root / "organs.dcm", files, [rois[0], rois[7], rois[8]], seed=13)
    return root / "ct", rt, only_organs


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *args, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_planning_rtstruct_without_labels_takes_liver_and_gtv_mass_only(planning):
    ct, rt, _ = planning
    res = _run("--image", str(ct), "--seg", str(rt))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["tumor"]["lesion_count"] == 1
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_count(*MASS_BOX) * VOXEL_ML, rel=1e-6)
    assert rep["liver"]["volume_ml"] == pytest.approx(_count(*LIVER_BOX) * VOXEL_ML, rel=1e-6)
    roles = {r["name"]: (r["role"], r["reason"], r["interpreted_type"]) for r in rep["study"]["segment_roles"]}
    assert roles == {
        "BODY": (None, "type-ignored", "EXTERNAL"),
        "Liver": ("liver", "pattern", "ORGAN"),
        "GTV_Mass": ("lesion", "pattern", "GTV"),
        "GTV_Edema": (None, "unmatched-ignored", "GTV"),
        "PTV_Liver": (None, "type-ignored", "PTV"),
        "Liver-GTV": (None, "unmatched-ignored", "ORGAN"),
        "Tumor Bed": (None, "type-ignored", "CTV"),
        "Heart": (None, "unmatched-ignored", "ORGAN"),
        "Spinal-Cord": (None, "unmatched-ignored", "ORGAN"),
    }
    notes = [w for w in rep["warnings"] if "got no role and were ignored" in w]
    assert len(notes) == 1
    assert "'GTV_Edema'" in notes[0]
    assert "'BODY'" in notes[0]


def test_planning_rtstruct_user_mapping_is_exclusive(planning):
    ct, rt, _ = planning
    res = _run("--image", str(ct), "--seg", str(rt), "--labels", "lesion=GTV_Mass")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    tumour = rep["tumor"]["intrahepatic_volume_ml"] + rep["tumor"]["extrahepatic_volume_ml"]
    assert tumour == pytest.approx(_count(*MASS_BOX) * VOXEL_ML, rel=1e-6)  # not the edema's 59 % more
    assert len(rep["lesions"]) == 1
    assert rep["liver"]["volume_ml"] is None  # Liver is not in the mapping: ignored, not guessed
    warn = [w for w in rep["warnings"] if "not in the user mapping were ignored" in w]
    assert len(warn) == 1
    assert "'GTV_Edema'" in warn[0]
    assert "'Liver'" in warn[0]
    reasons = {r["name"]: r["reason"] for r in rep["study"]["segment_roles"]}
    assert reasons["GTV_Mass"] == "user"
    assert set(reasons.values()) == {"user", "unmatched-ignored"}


def test_a_labels_name_matching_no_roi_lists_the_names(planning):
    ct, rt, _ = planning
    res = _run("--image", str(ct), "--seg", str(rt), "--labels", "lesion=GTV_Mas")
    assert res.returncode == 3
    assert "['GTV_Mas'] match no segment/ROI" in res.stderr
    assert "'GTV_Mass'" in res.stderr
    assert "Traceback" not in res.stderr


def test_no_liver_and_no_lesion_is_exit_3_listing_each_roi_and_its_flag(planning):
    ct, _, organs = planning
    res = _run("--image", str(ct), "--seg", str(organs))
    assert res.returncode == 3
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    # neither name says which role it would have: the flag leaves the role to the user
    assert "1 'BODY' [EXTERNAL] type-ignored -> --labels ROLE=\"BODY\"" in err
    assert "'Heart' [ORGAN] unmatched-ignored -> --labels ROLE=\"Heart\"" in err
    assert "'Spinal-Cord' [ORGAN]" in err


def test_labels_value_absent_from_a_label_map_lists_the_values(tmp_path):
    aff_ras = np.diag([-2.0, -2.0, 3.0, 1.0])
    lab = np.zeros((10, 10, 4), np.uint8)
    lab[2:8, 2:8, 1:3] = 1
    lab[4:6, 4:6, 1:2] = 2
    nib.save(nib.Nifti1Image(lab, aff_ras), tmp_path / "seg.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 4), np.float32), aff_ras), tmp_path / "img.nii.gz")
    res = _run("--image", str(tmp_path / "img.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz"), "--labels", "liver=9")
    assert res.returncode == 3
    assert "values present: [1, 2]" in res.stderr


# ---------------------------------------------------------------- a TotalSegmentator-style SEG (117 coded segments)


def test_totalsegmentator_seg_gives_liver_and_spleen_by_code(shared, tmp_path):
    ts = ("totalseg_example", "tests", "reference_files")
    ct_nii = nib.load(shared(*ts, "example_ct_sm.nii.gz"))
    labels = np.asarray(nib.load(shared(*ts, "example_seg.nii.gz")).dataobj).astype(np.uint8)
    aff_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ct_nii.affine  # RAS -> LPS
    files = write_image_series(tmp_path / "ct", np.asarray(ct_nii.dataobj, np.float32), aff_lps, seed=117)
    with (DATA / "totalseg_total_v2_codes.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 117
    descs, planes = [], []
    for row in table:
        descs.append(
            hd.seg.SegmentDescription(
                segment_number=int(row["label"]),
                segment_label=row["structure"],
                segmented_property_category=hd.sr.CodedConcept(
                    row["category_code"], row["category_scheme"], row["category_meaning"]
                ),
                segmented_property_type=hd.sr.CodedConcept(row["type_code"], row["type_scheme"], row["type_meaning"]),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    "TotalSegmentator", pydicom.sr.codedict.codes.DCM.ArtificialIntelligence, "2"
                ),
            )
        )
    # label map [i, j, k] -> highdicom (frames, rows, columns) with one value per segment
    pixels = np.transpose(labels, (2, 1, 0))
    planes = [pydicom.dcmread(f) for f in files]
    seg = hd.seg.Segmentation(
        source_images=planes,
        pixel_array=pixels,
        segmentation_type="BINARY",
        segment_descriptions=descs,
        **seg_identity(90, "TotalSegmentator-like"),
    )
    seg.save_as(tmp_path / "total.dcm")
    report, ctx = analyze_with_context(image=tmp_path / "ct", segs=[str(tmp_path / "total.dcm")])
    voxel_ml = abs(np.linalg.det(aff_lps[:3, :3])) / 1000.0
    assert report.liver["volume_ml"] == pytest.approx(1043.12, abs=0.01)  # MANIFEST fact
    assert report.liver["voxel_count"] == int(np.count_nonzero(labels == 5))
    assert int(np.count_nonzero(ctx.spleen)) == int(np.count_nonzero(labels == 1))
    assert int(np.count_nonzero(ctx.spleen)) * voxel_ml > 100.0
    roles = report.study["segment_roles"]
    assert len(roles) == 117
    by_name = {r["name"]: r for r in roles}
    assert (by_name["liver"]["role"], by_name["liver"]["reason"]) == ("liver", "code")
    assert (by_name["spleen"]["role"], by_name["spleen"]["reason"]) == ("spleen", "code")
    assert by_name["liver"]["code"] == {"scheme": "SCT", "value": "10200004", "meaning": "Liver"}
    # TotalSegmentator's IVC and portal / splenic vein are vessels by their codes (vascular contact)
    vessels = ("inferior_vena_cava", "portal_vein_and_splenic_vein")
    assert [(by_name[n]["role"], by_name[n]["reason"]) for n in vessels] == [("vessel", "code")] * 2
    others = [r for r in roles if r["name"] not in ("liver", "spleen", *vessels)]
    assert {r["role"] for r in others} == {None}
    assert {r["reason"] for r in others} == {"unmatched-ignored"}
    assert report.tumor["lesion_count"] == 0


# ---------------------------------------------------------------- the real RTSTRUCT of the mirp FDG PET (MANIFEST)


@pytest.mark.parametrize("labels", ["lesion=GTV_Mass", None])
def test_real_sarcoma_rtstruct_gtv_mass_with_and_without_labels(shared, labels):
    # oncoray/mirp @d8a6a726, TCIA Soft-tissue-Sarcoma STS_001 (CC BY 3.0; Vallieres et al. 2015):
    # ROIs GTV_Mass and GTV_Edema; GTV_Mass about 365 mL by planimetry (MANIFEST)
    folder = shared("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET")
    report, _ = analyze_with_context(folder, labels=labels)
    (lesion,) = report.lesions  # GTV_Edema is never a lesion: unmapped with --labels, oedema without
    assert lesion["label"] == "GTV_Mass"
    assert lesion["volume_ml"] == pytest.approx(366.08, abs=0.005)
    assert lesion["suv_max"] == pytest.approx(7.911, abs=0.0005)
    assert lesion["suv_mean"] == pytest.approx(2.555, abs=0.0005)
    edema = next(r for r in report.study["segment_roles"] if r["name"] == "GTV_Edema")
    assert edema["role"] is None
    assert edema["reason"] == "unmatched-ignored"
    assert edema["interpreted_type"] == "GTV"


def test_couinaud_names_win_only_over_the_liver_code():
    spec = parse_label_spec(None)
    assert decide_role("Segment_1", LIVER, spec).role == "segment1"  # a Couinaud map coded Liver
    assert decide_role("Segment_1", NEOPLASM, spec).role == "lesion"  # Slicer's default name on a coded tumour


def test_a_code_that_contradicts_the_name_is_named_in_a_warning(tmp_path):
    # every segment coded SCT Liver (a tool that copied the liver terminology): the code decides, as
    # docs/roles.md says, and the warning gives the mapping that takes the name instead
    from seg_factory import SegmentSpec, write_seg

    liver = np.zeros(SHAPE, bool)
    liver[4:36, 5:34, 2:10] = True
    tumour = np.zeros(SHAPE, bool)
    tumour[10:16, 12:19, 4:7] = True  # 6 x 7 x 3 = 126 voxels
    study = tmp_path / "study"
    files = write_image_series(study / "ct", np.where(liver, 60.0, -80.0), AFF)
    write_seg(study / "seg.dcm", files, [SegmentSpec("Liver", liver), SegmentSpec("Tumor", tumour)])
    rep, _ = analyze_with_context(study)
    conflict = [w for w in rep.warnings if "by its code although its name says lesion" in w]
    assert len(conflict) == 1, rep.warnings
    assert "'Tumor'" in conflict[0]
    flag = '--labels liver="Liver",lesion="Tumor"'
    assert flag in conflict[0]
    assert rep.tumor["lesions_segmented"] is False  # both taken as liver: no lesion measured
    # the flag as a script passes it (no shell to strip the quotes)
    mapped, _ = analyze_with_context(study, labels=flag.split(" ", 1)[1])
    assert mapped.tumor["intrahepatic_volume_ml"] == pytest.approx(126 * VOXEL_ML, rel=1e-9)
    assert mapped.liver["volume_ml"] == pytest.approx(int(liver.sum()) * VOXEL_ML, rel=1e-9)
    assert not any("by its code although" in w for w in mapped.warnings)


def test_no_conflict_when_the_name_agrees_or_says_nothing():
    spec = parse_label_spec(None)
    assert decide_role("Liver", LIVER, spec).name_role is None
    assert decide_role("anything", LIVER, spec).name_role is None
    assert decide_role("Tumor", LIVER, spec).name_role == "lesion"
    assert decide_role("Liver", NEOPLASM, spec).name_role == "liver"


def test_quoted_labels_values_are_names():
    assert parse_label_spec('liver="Liver",lesion="Tumor"+\'GTV 2\'').mapping == {
        "liver": ["Liver"],
        "lesion": ["Tumor", "GTV 2"],
    }
    assert parse_label_spec('lesion="5"').mapping == {"lesion": ["5"]}  # quoted: the segment named 5
    assert parse_label_spec("lesion=5").mapping == {"lesion": [5]}


def test_a_hundred_ignored_structures_are_named_in_a_short_warning():
    """TotalSegmentator's real --ml map (../shared/data/totalseg_example, Apache-2.0) names 117 structures;
    the 113 without a role are summed up by the first 10 and a count, all of them in study.segment_roles."""
    import re

    from conftest import shared_path

    from netlm_imaging.api import analyze

    ref = shared_path("totalseg_example", "tests", "reference_files")
    table = nib.load(ref / "example_seg.nii.gz").header.extensions[0].get_content().decode()
    names = re.findall(r"<!\[CDATA\[([^\]]+)\]\]></Label>", table)
    with_role = {"spleen", "kidney_right", "kidney_left", "liver"}
    with_role |= {"inferior_vena_cava", "portal_vein_and_splenic_vein"}  # vessels (vascular contact)
    n_ignored = len(names) - len(with_role & set(names))
    report = analyze(image=ref / "example_ct_sm.nii.gz", segs=[ref / "example_seg.nii.gz"]).to_dict()
    (warning,) = [w for w in report["warnings"] if "got no role and were ignored" in w]
    assert f"{n_ignored} segment(s)/ROI(s) got no role" in warning
    assert f"and {n_ignored - 10} more" in warning
    assert warning.count("(unmatched-ignored)") == 10
    assert sum(r["role"] is None for r in report["study"]["segment_roles"]) == n_ignored


def test_totalsegmentator_rtstruct_names_its_liver_tumour(tmp_path):
    # TotalSegmentator --output_type dicom_rtstruct (rt_utils): ROIs named after its classes, no codes; the
    # liver_vessels task's liver_tumor (and liver_lesions) matched the liver and the lesion pattern: ignored
    files = write_image_series(tmp_path / "ct", np.zeros(SHAPE, np.float32), AFF, seed=21)
    rois = [
        RoiSpec("liver", _box(*LIVER_BOX), interpreted_type=""),
        RoiSpec("liver_tumor", _box(*MASS_BOX), interpreted_type=""),
        RoiSpec("liver_vessels", _box(20, 24, 20, 24, 2, 8), interpreted_type=""),
    ]
    rt = write_rtstruct(tmp_path / "totalseg_rtstruct.dcm", files, rois, seed=21)
    res = _run("--image", str(tmp_path / "ct"), "--seg", str(rt))
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["liver"]["volume_ml"] == pytest.approx(_count(*LIVER_BOX) * VOXEL_ML, rel=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_count(*MASS_BOX) * VOXEL_ML, rel=1e-6)
    assert rep["involvement_percent"] == pytest.approx(100 * _count(*MASS_BOX) / _count(*LIVER_BOX), abs=0.01)
    roles = {r["name"]: r["role"] for r in rep["study"]["segment_roles"]}
    assert roles == {"liver": "liver", "liver_tumor": "lesion", "liver_vessels": "vessel"}  # vascular contact
    # the boxes' nearest edges: 4 empty voxels (1.5 mm) along i and along j, overlapping in k
    assert rep["lesions"][0]["vessel_distances_mm"] == {"liver vessels": pytest.approx(np.hypot(6.0, 6.0), abs=1e-3)}
    assert decide_role("liver_lesions", None, parse_label_spec(None)).role == "lesion"

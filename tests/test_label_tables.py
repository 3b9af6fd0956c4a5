"""Label maps read with the names their exporter wrote (io/label_tables.py, docs/roles.md).

The files are written as the exporters write them (formats checked in their sources):
TotalSegmentator v2 ``--ml`` appends a NIfTI header extension (code 0) holding a CaretExtension
XML LabelTable (``nifti_ext_header.add_label_map_to_nifti``); 3D Slicer saves a labelmap
volume's color node as ``<name>_ColorTable.ctbl`` (``# Color table file``, ``# N values``,
``index name R G B A`` with spaces as ``_``) or as the Slicer 5 CSV (``LabelValue,Name,Color_R,
...,Type_CodingScheme,Type_CodeValue,Type_CodeMeaning,...``); ITK-SNAP exports label descriptions
as ``IDX R G B A VIS MSH "LABEL"`` lines under its ``#`` header. Truths: voxel counts of boxes
placed here x |det(affine)|, never read back from the code under test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import ROOT, oblique_affine
from phantoms import write_nifti

from netlm_imaging.api import analyze
from netlm_imaging.errors import LabelError
from netlm_imaging.volume import lps_to_ras

AFF = oblique_affine(spacing=(1.2, 0.9, 2.5), angles_deg=(12.0, -6.0, 25.0), origin=(-80.0, 40.0, 300.0))
SHAPE = (36, 32, 18)
VOXEL_ML = abs(np.linalg.det(AFF[:3, :3])) / 1000.0
LIVER = (slice(4, 30), slice(4, 26), slice(2, 14))  # 26 x 22 x 12 = 6864 voxels
TUMOUR = (slice(8, 14), slice(8, 13), slice(4, 8))  # 6 x 5 x 4 = 120 voxels, inside the liver
SPLEEN = (slice(31, 35), slice(2, 8), slice(2, 8))  # 4 x 6 x 6 = 144 voxels
KIDNEY_R = (slice(0, 3), slice(27, 31), slice(2, 6))  # 3 x 4 x 4 = 48
KIDNEY_L = (slice(31, 35), slice(27, 31), slice(10, 14))  # 4 x 4 x 4 = 64
STOMACH = (slice(0, 3), slice(0, 3), slice(14, 18))  # 3 x 3 x 4 = 36

LIVER_N = 26 * 22 * 12
TUMOUR_N = 6 * 5 * 4

#: TotalSegmentator's "total" task numbering (map_to_binary.class_map["total"]), first six values.
TOTAL = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver", 6: "stomach"}


def _caret_xml(labels: dict[int, str]) -> str:
    """A CaretExtension document laid out as TotalSegmentator v2 writes it."""
    rows = "".join(
        f'<Label Key="{k}" Red="1.0" Green="0.0" Blue="0.0" Alpha="1"><![CDATA[{v}]]></Label>\n'
        for k, v in labels.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:45:09]]></Date>'
        '   <VolumeInformation Index="0">   <LabelTable>\n'
        + rows
        + "\n  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType><![CDATA[Label]]>"
        "</VolumeType>   </VolumeInformation></CaretExtension>\n              "
    )


def _total_map() -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 5
    lab[SPLEEN] = 1
    lab[KIDNEY_R] = 2
    lab[KIDNEY_L] = 3
    lab[STOMACH] = 6
    return lab


def _write_ml(path, lab: np.ndarray, xml: str | None, *, extra_ext: bytes | None = None):
    """A multilabel NIfTI as TotalSegmentator saves it: uint8, the CT's header, the XML as extension code 0."""
    ras = lps_to_ras(AFF)
    img = nib.Nifti1Image(lab.astype(np.uint8), ras)
    img.set_sform(ras, code=1)
    img.set_qform(ras, code=1)
    if extra_ext is not None:  # an extension copied over from the input CT's header
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, extra_ext))
    if xml is not None:
        img.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode("utf-8")))
    nib.save(img, str(path))
    return path


@pytest.fixture
def ct(tmp_path):
    return write_nifti(tmp_path / "ct.nii.gz", np.full(SHAPE, 40, np.int16), AFF)


def _roles(rep) -> dict[str, str | None]:
    return {r["name"]: r["role"] for r in rep.study["segment_roles"]}


# --- 1. TotalSegmentator --ml ---------------------------------------------------------------


def test_totalsegmentator_ml_is_read_with_its_own_label_table(tmp_path, ct):
    seg = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL), extra_ext=b"a comment")
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["lesions_segmented"] is False  # the total task has no tumour class: not 0 %
    assert rep.involvement_percent is None
    roles = _roles(rep)
    assert roles["liver"] == "liver"
    assert roles["spleen"] == "spleen"
    assert roles["kidney_left"] == roles["kidney_right"] == "kidney"
    assert roles["gallbladder"] is None
    assert roles["stomach"] is None
    assert any("TotalSegmentator label table" in n and "liver=5" in n for n in rep.extra["notes"])
    # without the table the same map is refused by the LiTS default (values 3, 5, 6 have no role)
    plain = _write_ml(tmp_path / "plain.nii.gz", _total_map(), None)
    with pytest.raises(LabelError, match=r"plain\.nii\.gz: label values \[3, 5, 6\] have no role"):
        analyze(image=ct, segs=[plain])


def test_real_totalsegmentator_output_needs_no_labels(shared):
    # MANIFEST: liver on example_ct_sm via example_seg.nii.gz (the total task's --ml output): 1043.12 mL
    ts = ("totalseg_example", "tests", "reference_files")
    rep = analyze(image=shared(*ts, "example_ct_sm.nii.gz"), segs=[shared(*ts, "example_seg.nii.gz")])
    assert rep.liver["volume_ml"] == pytest.approx(1043.12, abs=0.01)
    assert rep.tumor["lesions_segmented"] is False
    roles = _roles(rep)
    assert (roles["liver"], roles["spleen"], roles["kidney_left"], roles["portal_vein_and_splenic_vein"]) == (
        "liver",
        "spleen",
        "kidney",
        "vessel",  # measured against the lesions (vascular contact)
    )
    # --roi_subset liver brain: a table of two values, 5 liver and 90 brain; truth counted here with nibabel
    sub = nib.load(shared(*ts, "example_seg_roi_subset.nii.gz"))
    truth_ml = np.count_nonzero(np.asarray(sub.dataobj) == 5) * abs(np.linalg.det(sub.affine[:3, :3])) / 1000
    subset = analyze(image=shared(*ts, "example_ct_sm.nii.gz"), segs=[shared(*ts, "example_seg_roi_subset.nii.gz")])
    assert subset.liver["volume_ml"] == pytest.approx(truth_ml, abs=0.001)
    assert _roles(subset) == {"liver": "liver", "brain": None}


def test_total_and_liver_vessels_maps_together(tmp_path, ct):
    total = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL))
    vessels_map = np.zeros(SHAPE, np.uint8)
    vessels_map[LIVER][::4] = 1  # vessels inside the liver
    vessels_map[TUMOUR] = 2
    vessels_xml = _caret_xml({1: "liver_vessels", 2: "liver_tumor"})  # TotalSegmentator's liver_vessels task
    vessels = _write_ml(tmp_path / "liver_vessels.nii.gz", vessels_map, vessels_xml)
    rep = analyze(image=ct, segs=[total, vessels])
    assert rep.tumor["lesions_segmented"] is True
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert _roles(rep)["liver_vessels"] == "vessel"  # measured against the lesions, never liver


def test_liver_segments_and_liver_lesions_maps(tmp_path, ct):
    # TotalSegmentator's liver_segments task (liver_segment_1..8) and liver_lesions task (liver_lesions),
    # each an --ml map with its table, beside the total map that gives the liver
    total = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL))
    couinaud = np.zeros(SHAPE, np.uint8)
    edges = [4, 7, 10, 13, 17, 20, 23, 26, 30]  # eight slabs of the liver box along i
    for n in range(8):
        couinaud[edges[n] : edges[n + 1], LIVER[1], LIVER[2]] = n + 1
    names = {n: f"liver_segment_{n}" for n in range(1, 9)}
    segments = _write_ml(tmp_path / "liver_segments.nii.gz", couinaud, _caret_xml(names))
    lesions_map = np.zeros(SHAPE, np.uint8)
    lesions_map[TUMOUR] = 1
    lesions = _write_ml(tmp_path / "liver_lesions.nii.gz", lesions_map, _caret_xml({1: "liver_lesions"}))
    rep = analyze(image=ct, segs=[total, segments, lesions])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    by_segment = {s["segment"]: s["liver_volume_ml"] for s in rep.segments}
    expected = {n + 1: (edges[n + 1] - edges[n]) * 22 * 12 * VOXEL_ML for n in range(8)}
    assert by_segment == pytest.approx(expected, rel=1e-6)
    assert _roles(rep)["liver_lesions"] == "lesion"


def test_the_files_own_table_wins_over_a_dataset_json_in_its_folder(tmp_path, ct):
    import json

    seg = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "tumour": 2}}))
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)  # 5, not the spleen's 1
    assert not any("dataset.json" in n for n in rep.extra.get("notes", []))


def test_values_missing_from_the_table_are_ignored_with_a_note(tmp_path, ct):
    lab = _total_map()  # values 1, 2, 3, 5, 6; the table names only the liver (as --roi_subset liver writes it)
    seg = _write_ml(tmp_path / "subset.nii.gz", lab, _caret_xml({5: "liver"}))
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert any("label values [1, 2, 3, 6] are not in its TotalSegmentator label table" in w for w in rep.warnings)


def test_the_users_labels_win_over_the_table(tmp_path, ct):
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    lab[TUMOUR] = 2
    # a table that says the opposite of LiTS: --labels decides, the table is not read
    seg = _write_ml(tmp_path / "ml.nii.gz", lab, _caret_xml({1: "liver_tumor", 2: "liver"}))
    told = analyze(image=ct, segs=[seg], labels="liver=1,lesion=2")
    assert told.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert "segment_roles" not in told.study or not told.study["segment_roles"]
    by_table = analyze(image=ct, segs=[seg])  # without --labels the table decides: value 1 is the tumour
    assert _roles(by_table) == {"liver_tumor": "lesion", "liver": "liver"}
    assert by_table.tumor["lesion_count"] == 1
    lesion_ml = by_table.tumor["intrahepatic_volume_ml"] + by_table.tumor["extrahepatic_volume_ml"]
    assert lesion_ml == pytest.approx((LIVER_N - TUMOUR_N) * VOXEL_ML, rel=1e-9)


def test_names_in_labels_map_the_tables_names(tmp_path, ct):
    seg = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL))
    # exclusive, as for named segments: the user's names decide, every other value is ignored
    rep = analyze(image=ct, segs=[seg], labels='liver="liver",lesion="stomach"')
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    roles = _roles(rep)
    assert roles["stomach"] == "lesion"
    assert roles["spleen"] is None


def test_segment_patterns_select_among_the_tables_names(tmp_path, ct):
    from netlm_imaging.api import AnalyzeOptions

    seg = _write_ml(tmp_path / "total.nii.gz", _total_map(), _caret_xml(TOTAL))
    opts = AnalyzeOptions(name_patterns=(("^liver$", "liver"), ("^kidney_", "lesion")))
    rep = analyze(image=ct, segs=[seg], options=opts)
    roles = _roles(rep)
    assert (roles["liver"], roles["kidney_left"], roles["kidney_right"], roles["spleen"]) == (
        "liver",
        "lesion",
        "lesion",
        None,
    )
    # the two kidney boxes (48 + 64 voxels) are the lesions, both outside the liver
    lesion_ml = rep.tumor["intrahepatic_volume_ml"] + rep.tumor["extrahepatic_volume_ml"]
    assert lesion_ml == pytest.approx((48 + 64) * VOXEL_ML, rel=1e-9)


@pytest.mark.parametrize(
    ("xml", "needle"),
    [
        (_caret_xml({1: "liver", 2: "liver_tumor"}).replace('Key="2"', 'Key="1"'), "gives label value 1 two names"),
        (_caret_xml({1: "liver"}).replace("</LabelTable>", ""), "not well-formed XML"),
        (_caret_xml({1: "liver"}).replace('Key="1"', 'Key="one"'), "Label Key 'one' that is not an integer"),
    ],
    ids=["value-named-twice", "broken-xml", "key-not-integer"],
)
def test_tables_that_cannot_be_decided_are_refused(tmp_path, ct, xml, needle):
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    seg = _write_ml(tmp_path / "bad.nii.gz", lab, xml)
    with pytest.raises(LabelError, match=rf"bad\.nii\.gz: .*{needle}.*--labels"):
        analyze(image=ct, segs=[seg])


def test_two_different_tables_in_one_header(tmp_path, ct):
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    seg = _write_ml(tmp_path / "two.nii.gz", lab, _caret_xml({1: "liver"}), extra_ext=_caret_xml({1: "tumor"}).encode())
    with pytest.raises(LabelError, match=r"two\.nii\.gz: its header holds 2 different label tables"):
        analyze(image=ct, segs=[seg])


def test_a_table_without_liver_or_lesion_is_exit_3_on_the_command_line(tmp_path, ct):
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    seg = _write_ml(tmp_path / "body.nii.gz", lab, _caret_xml({1: "body_trunc", 2: "body_extremities"}))
    argv = [sys.executable, "-m", "netlm_imaging.cli", "analyze", "--image", str(ct), "--seg", str(seg)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in proc.stderr
    assert "body.nii.gz" in lines[0]
    assert "no liver and no lesion" in lines[0]
    assert "--labels" in lines[0]
    assert not (tmp_path / "out" / "report.json").exists()


# --- 2. 3D Slicer color tables ----------------------------------------------------------------


def _write_nrrd(path, lab: np.ndarray, meta: dict[str, str] | None = None):
    """A labelmap volume as Slicer saves it (NRRD, LPS)."""
    from netlm_imaging.volume import Volume

    img = Volume(lab.astype(np.int16), AFF).to_sitk()
    for k, v in (meta or {}).items():
        img.SetMetaData(k, v)
    sitk.WriteImage(img, str(path), True)
    return path


def _ctbl(path, rows: list[tuple[int, str, int, int, int, int]]):
    """A color table as Slicer's ``WriteCtblFile`` lays it out (spaces in names stored as ``_``)."""
    lines = [f"# Color table file {path}", f"# {max(r[0] for r in rows) + 1} values"]
    lines += [f"{i} {name.replace(' ', '_') or '_'} {r} {g} {b} {a}" for i, name, r, g, b, a in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _swapped_map() -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 2
    lab[TUMOUR] = 1
    return lab


def test_slicer_ctbl_beside_a_labelmap_volume(tmp_path, ct):
    seg = _write_nrrd(tmp_path / "Segmentation-label.nrrd", _swapped_map())
    _ctbl(
        tmp_path / "Segmentation_ColorTable.ctbl",
        [(0, "background", 0, 0, 0, 0), (1, "Tumor 1", 255, 0, 0, 255), (2, "Liver", 221, 130, 101, 255)],
    )
    rep = analyze(image=ct, segs=[seg])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert _roles(rep) == {"Tumor 1": "lesion", "Liver": "liver"}
    assert any("3D Slicer color table Segmentation_ColorTable.ctbl" in n for n in rep.extra["notes"])


def test_slicer_csv_color_table_with_terminology_codes(tmp_path, ct):
    seg = _write_nrrd(tmp_path / "scan-label.nrrd", _swapped_map())
    head = (
        "LabelValue,Name,Color_R,Color_G,Color_B,Color_A,Category_CodingScheme,Category_CodeValue,"
        "Category_CodeMeaning,Type_CodingScheme,Type_CodeValue,Type_CodeMeaning,TypeModifier_CodingScheme,"
        "TypeModifier_CodeValue,TypeModifier_CodeMeaning,Region_CodingScheme,Region_CodeValue,Region_CodeMeaning,"
        "RegionModifier_CodingScheme,RegionModifier_CodeValue,RegionModifier_CodeMeaning"
    )
    rows = [
        "0,background,0,0,0,0,,,,,,,,,,,,,,,",
        "1,Structure A,255,0,0,255,SCT,49755003,Morphologically abnormal structure,SCT,108369006,Neoplasm,,,,,,,,,",
        "2,Structure B,221,130,101,255,SCT,123037004,Anatomical Structure,SCT,10200004,Liver,,,,,,,,,",
    ]
    (tmp_path / "scan_ColorTable.csv").write_text("\n".join([head, *rows]) + "\n")
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    reasons = {r["name"]: r["reason"] for r in rep.study["segment_roles"]}
    assert reasons == {"Structure A": "code", "Structure B": "code"}


def test_totalsegmentator_names_through_a_slicer_ctbl(tmp_path, ct):
    # a TotalSegmentator map loaded into Slicer and saved: the ctbl stores liver_tumor, Slicer reads "liver tumor"
    seg = _write_nrrd(tmp_path / "ts-label.nrrd", _swapped_map())
    _ctbl(tmp_path / "ts-label.ctbl", [(0, "background", 0, 0, 0, 0), (1, "liver tumor", 255, 0, 0, 255)])
    with (tmp_path / "ts-label.ctbl").open("a") as fh:
        fh.write("2 liver 221 130 101 255\n")
    rep = analyze(image=ct, segs=[seg])
    assert _roles(rep) == {"liver tumor": "lesion", "liver": "liver"}
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)


def test_slicer_labels_csv_suffix(tmp_path, ct):
    seg = write_nifti(tmp_path / "case3.nii.gz", _swapped_map(), AFF)
    (tmp_path / "case3.labels.csv").write_text(
        "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n0,background,0,0,0,0\n1,Tumor,255,0,0,255\n"
        "2,Liver,221,130,101,255\n"
    )
    rep = analyze(image=ct, segs=[seg])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)


def test_a_study_folder_with_a_slicer_export(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    write_nifti(study / "image.nii.gz", np.full(SHAPE, 40, np.int16), AFF)
    _write_nrrd(study / "Segmentation-label.nrrd", _swapped_map())
    (study / "Segmentation_ColorTable.csv").write_text(
        "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n0,background,0,0,0,0\n1,Tumor,255,0,0,255\n"
        "2,Liver,221,130,101,255\n"
    )
    rep = analyze(study)
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert any("Segmentation_ColorTable.csv" in n for n in rep.extra["notes"])


def test_a_table_named_after_no_label_map_is_noted_not_used(tmp_path, ct):
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    lab[TUMOUR] = 2
    seg = _write_nrrd(tmp_path / "seg.nrrd", lab)
    _ctbl(tmp_path / "colors.ctbl", [(1, "Tumor", 255, 0, 0, 255), (2, "Liver", 0, 255, 0, 255)])
    _ctbl(tmp_path / "other.ctbl", [(1, "Tumor", 255, 0, 0, 255), (1, "Liver", 0, 255, 0, 255)])  # not ours
    rep = analyze(image=ct, segs=[seg])  # LiTS, as without the table
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert any("colors.ctbl" in w and "named after no label map: not used" in w for w in rep.warnings)
    assert any("other.ctbl" in w and "named after no label map: not used" in w for w in rep.warnings)


def test_two_tables_named_after_one_map(tmp_path, ct):
    seg = _write_nrrd(tmp_path / "seg-label.nrrd", _swapped_map())
    _ctbl(tmp_path / "seg-label.ctbl", [(1, "Tumor", 255, 0, 0, 255), (2, "Liver", 0, 255, 0, 255)])
    _ctbl(tmp_path / "seg_ColorTable.txt", [(1, "Tumor", 255, 0, 0, 255), (2, "Liver", 0, 255, 0, 255)])
    rep = analyze(image=ct, segs=[seg])  # two copies of one table: used
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    _ctbl(tmp_path / "seg_ColorTable.txt", [(1, "Liver", 255, 0, 0, 255), (2, "Tumor", 0, 255, 0, 255)])
    with pytest.raises(LabelError, match=r"seg-label\.nrrd: the label tables named after it disagree"):
        analyze(image=ct, segs=[seg])


def test_a_table_file_that_cannot_be_read_is_refused(tmp_path, ct):
    seg = _write_nrrd(tmp_path / "seg.nrrd", _swapped_map())
    (tmp_path / "seg.ctbl").write_text("1 Liver Tumor 255 0 0 255\n2 Liver 0 255 0 255\n")  # a name with a space
    with pytest.raises(LabelError, match=r"seg\.ctbl: named after the label map seg\.nrrd but not a color table"):
        analyze(image=ct, segs=[seg])
    (tmp_path / "seg.ctbl").unlink()
    (tmp_path / "seg.txt").write_text("Liver and tumour drawn by reader 2, 2024-03-01\n")  # a .txt note, not a table
    lits = analyze(image=ct, segs=[seg])  # read as without it: LiTS, 1 liver, 2 lesion
    assert lits.tumor["intrahepatic_volume_ml"] + lits.tumor["extrahepatic_volume_ml"] == pytest.approx(
        (LIVER_N - TUMOUR_N) * VOXEL_ML, rel=1e-9
    )


def test_a_plain_nrrd_with_slicer_segment_keys(tmp_path, ct):
    meta = {
        "Segment0_ID": "Segment_1",
        "Segment0_Name": "Liver",
        "Segment0_LabelValue": "2",
        "Segment0_Layer": "0",
        "Segment1_ID": "Segment_2",
        "Segment1_Name": "Tumor",
        "Segment1_LabelValue": "1",
        "Segment1_Layer": "0",
    }
    seg = _write_nrrd(tmp_path / "labels.nrrd", _swapped_map(), meta)
    rep = analyze(image=ct, segs=[seg])
    # value 2 is the liver (its volume includes the tumour inside it), value 1 the tumour
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)


# --- 3. ITK-SNAP label descriptions -----------------------------------------------------------

ITKSNAP_HEAD = """################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    IDX:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
"""


@pytest.mark.parametrize("table_name", ["case7_seg.label", "case7_seg.txt"])
def test_itksnap_label_descriptions(tmp_path, ct, table_name):
    seg = write_nifti(tmp_path / "case7_seg.nii.gz", _swapped_map(), AFF)
    (tmp_path / table_name).write_text(
        ITKSNAP_HEAD
        + '    0     0    0    0        0  0  0    "Clear Label"\n'
        + '    1   255    0    0        1  1  1    "Metastasis"\n'
        + '    2     0  255    0        1  1  1    "Liver"\n'
    )
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)
    assert any("ITK-SNAP label description file" in n for n in rep.extra["notes"])


# --- 4. the readers' edge cases, one by one (mutation round 5) ------------------------------------


def _entries_of(table):
    return [(e.value, e.name) for e in table.entries]


def test_a_header_table_after_a_dicom_extension_and_padded_with_nuls(tmp_path):
    """An uncompressed .nii whose header carries a DICOM extension (code 2) first, then the table padded with NULs."""
    from netlm_imaging.io.label_tables import label_table_for

    img = nib.Nifti1Image(_swapped_map(), lps_to_ras(AFF))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(2, b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100"))
    xml = _caret_xml({1: "liver_tumor", 2: "liver"}).encode("utf-8") + b"\x00" * 7
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml))
    nib.save(img, str(tmp_path / "seg.nii"))
    table = label_table_for(tmp_path / "seg.nii")
    assert table is not None
    assert _entries_of(table) == [(1, "liver_tumor"), (2, "liver")]
    assert table.source == str(tmp_path / "seg.nii")


def test_negative_and_background_values_of_a_table(tmp_path):
    from netlm_imaging.io.label_tables import sidecar_label_table

    seg = tmp_path / "seg.nrrd"
    seg.write_bytes(b"")
    _ctbl(tmp_path / "seg.ctbl", [(0, "background", 0, 0, 0, 0), (2, "Liver", 1, 2, 3, 255)])
    assert _entries_of(sidecar_label_table(seg)) == [(2, "Liver")]  # 0 is the background, not a label
    (tmp_path / "seg.ctbl").write_text("-1 air 0 0 0 0\n2 Liver 1 2 3 255\n")
    with pytest.raises(LabelError, match=r"seg\.ctbl: its 3D Slicer color table names the negative label value -1"):
        sidecar_label_table(seg)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 liver 10 20 30\n", [(1, "liver")]),  # five columns (no alpha) are a table too
        ("1 _ 10 20 30 255\n2 'hepatic_vein' 1 2 3 255\n", [(1, ""), (2, "hepatic vein")]),
        ("1 liver 2 3\n", None),  # four columns
        ("1 liver x 2 3 255\n", None),  # a colour that is not a number
        ("a liver 1 2 3 255\n", None),  # an index that is not an integer
        ("# Color procedural file x.txt\n0 a 1 2 3 4\n", None),  # Slicer's procedural colours: no names
        ("\ufeffLabelValue,Name,Color_R\n2,liver,1\n", [(2, "liver")]),  # the Slicer CSV saved with a BOM
    ],
)
def test_slicer_color_table_lines(text, expected):
    from netlm_imaging.io.label_tables import parse_slicer_color_table

    rows = parse_slicer_color_table(text)
    assert (None if rows is None else [(e.value, e.name) for e in rows]) == expected


def test_slicer_csv_rows_codes_and_meanings():
    from netlm_imaging.io.label_tables import parse_slicer_color_table

    text = (
        "LabelValue,Name,Type_CodingScheme,Type_CodeValue,Type_CodeMeaning\n"
        ",,,,\n"  # an empty row, then more rows
        "1,Liver,SCT,10200004,Liver\n"
        "2,Tumour,SCT,,Neoplasm\n"  # a scheme without a code value: no code
        "3,Vessel,,,\n"
    )
    rows = parse_slicer_color_table(text)
    assert [(e.value, e.name, e.code, e.meaning) for e in rows] == [
        (1, "Liver", ("SCT", "10200004"), "Liver"),
        (2, "Tumour", None, "Neoplasm"),
        (3, "Vessel", None, ""),
    ]


def test_an_itksnap_file_with_indented_comments_and_latin1_names(tmp_path):
    from netlm_imaging.io.label_tables import sidecar_label_table

    seg = tmp_path / "case.nii.gz"
    seg.write_bytes(b"")
    text = '  # ITK-SnAP Label Description File\n    1 255 0 0 1 1 1 "L\xe9sion"\n    2 0 255 0 1 1 1 "Liver"\n'
    (tmp_path / "case.label").write_bytes(text.encode("cp1252"))  # saved by a Windows editor
    table = sidecar_label_table(seg)
    assert table.kind == "ITK-SNAP label description file"
    assert _entries_of(table) == [(1, "L\ufffdsion"), (2, "Liver")]  # the byte that is not UTF-8 is replaced


def test_a_label_file_named_after_the_map_that_is_not_a_table_is_refused(tmp_path):
    from netlm_imaging.io.label_tables import sidecar_label_table

    seg = tmp_path / "seg.nii.gz"
    seg.write_bytes(b"")
    (tmp_path / "seg.label").write_text("liver and tumour, reader 2\n")
    with pytest.raises(LabelError, match=r"seg\.label: named after the label map seg\.nii\.gz but not a color table"):
        sidecar_label_table(seg)


def test_only_tables_named_after_no_label_map_are_noted(tmp_path):
    from netlm_imaging.io.label_tables import label_table_for, sidecar_label_table

    for name in ("seg.nii.gz", "other.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    _ctbl(tmp_path / "other.ctbl", [(1, "Liver", 1, 2, 3, 255)])  # named after other.nii.gz
    _ctbl(tmp_path / "unpaired.ctbl", [(1, "Liver", 1, 2, 3, 255)])  # sorts last; named after no map
    (tmp_path / "readme.txt").write_text("exported 2024-03-01\n")  # not a table
    notes: list[str] = []
    assert sidecar_label_table(tmp_path / "seg.nii.gz", notes) is None
    assert [n.split(":")[0] for n in notes] == [str(tmp_path / "unpaired.ctbl")]
    assert "name it seg.ctbl / .txt / .label to pair it, or pass --labels" in notes[0]
    assert sidecar_label_table(tmp_path / "seg.nii.gz") is None  # without a list for notes: nothing to say
    assert label_table_for(tmp_path / "seg.nii.gz") is None  # not a NIfTI nibabel reads: no header table either


def test_a_table_split_without_a_decision_log_checks_itself_and_carries_its_note(tmp_path):
    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.io.label_tables import label_table_for, layers_from_label_table
    from netlm_imaging.volume import Volume

    vol = Volume(_swapped_map(), AFF, source="seg.nrrd")
    _ctbl(tmp_path / "seg.ctbl", [(1, "Tumor", 255, 0, 0, 255), (2, "Liver", 1, 2, 3, 255), (3, "Vein", 0, 0, 9, 255)])
    table = label_table_for(tmp_path / "seg.nrrd")
    layers = layers_from_label_table(vol, table, parse_label_spec(None), notes=["before"])
    by_role = {layer.role: layer for layer in layers}
    assert int(np.count_nonzero(by_role["liver"].mask.array)) == LIVER_N - TUMOUR_N
    assert int(np.count_nonzero(by_role["lesion"].mask.array)) == TUMOUR_N
    note = "seg.nrrd: label names from the 3D Slicer color table seg.ctbl: lesion=1,liver=2"
    for layer in layers:
        assert layer.mask.meta["notes"][:1] == ["before"]
        assert note in layer.mask.meta["notes"][1]
        assert "; 1 named value(s) without a role ignored" in layer.mask.meta["notes"][1]
    body = _ctbl(tmp_path / "seg.ctbl", [(1, "body_trunc", 1, 2, 3, 255), (2, "body_extremities", 1, 2, 3, 255)])
    with pytest.raises(LabelError, match="no liver and no lesion"):
        layers_from_label_table(vol, label_table_for(body.with_suffix(".nrrd")), parse_label_spec(None))


def test_header_extensions_that_are_not_label_tables(tmp_path):
    """A Workbench CaretExtension of an anatomical volume (no LabelTable), and a comment that mentions one."""
    from netlm_imaging.io.label_tables import label_table_for

    img = nib.Nifti1Image(_swapped_map(), lps_to_ras(AFF))
    anatomy = "<CaretExtension><VolumeInformation><VolumeType>Anatomy</VolumeType></VolumeInformation></CaretExtension>"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, anatomy.encode()))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"LabelTable: see the study's protocol"))
    nib.save(img, str(tmp_path / "seg.nii.gz"))
    assert label_table_for(tmp_path / "seg.nii.gz") is None


def test_a_table_pairs_by_the_whole_name_of_the_map():
    from pathlib import Path

    from netlm_imaging.io.label_tables import _pairs

    assert _pairs(Path("case_12_seg_ColorTable.ctbl"), Path("case_12_seg.nii.gz"))
    assert _pairs(Path("case_12_seg.ctbl"), Path("case_12_seg-label.nrrd"))
    assert not _pairs(Path("case.ctbl"), Path("case_12_seg.nii.gz"))  # "case" is not "case_12_seg" less a tail


def test_the_loader_path_keeps_earlier_notes_and_logs_the_code_meanings(tmp_path):
    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.io.label_tables import label_table_for, layers_from_label_table
    from netlm_imaging.volume import Volume

    vol = Volume(_swapped_map(), AFF, source="seg.nrrd")
    (tmp_path / "seg.csv").write_text(
        "LabelValue,Name,Type_CodingScheme,Type_CodeValue,Type_CodeMeaning\n"
        "1,Tumor,SCT,108369006,Neoplasm\n2,Liver,SCT,10200004,Liver\n"
    )
    log, source_notes = [], []
    table = label_table_for(tmp_path / "seg.nrrd")
    layers = layers_from_label_table(
        vol, table, parse_label_spec(None), log=log, notes=["before"], source_notes=source_notes
    )
    assert [(d.number, d.role, d.code_meaning) for d in log] == [(1, "lesion", "Neoplasm"), (2, "liver", "Liver")]
    assert source_notes == ["seg.nrrd: label names from the 3D Slicer color table seg.csv: lesion=1,liver=2"]
    for layer in layers:
        assert layer.mask.meta["notes"] == ["before"]


@pytest.mark.parametrize("table_name", ["Segmentation-label.ctbl", "Segmentation-label.txt"])
def test_a_table_saved_with_a_byte_order_mark(tmp_path, ct, table_name):
    # a color table / label description edited in a Windows editor starts with a UTF-8 BOM: the .ctbl was
    # refused as not a table, the .txt not used (the swapped map then read with the LiTS numbering)
    seg = _write_nrrd(tmp_path / "Segmentation-label.nrrd", _swapped_map())
    text = ITKSNAP_HEAD + '    1   255    0    0        1  1  1    "Metastasis"\n    2  0 255 0  1  1  1    "Liver"\n'
    (tmp_path / table_name).write_bytes(b"\xef\xbb\xbf" + text.encode())
    rep = analyze(image=ct, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(LIVER_N * VOXEL_ML, rel=1e-9)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_N * VOXEL_ML, rel=1e-9)

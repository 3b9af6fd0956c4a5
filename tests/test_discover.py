"""Study-folder discovery on synthetic DICOM studies (dicom_factory + seg_factory) and file layouts."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path
from dicom_factory import deterministic_uid, write_image_series
from seg_factory import Contour, RoiSpec, SegmentSpec, ellipse_points, write_rtstruct, write_seg

from netlm_imaging.api import analyze
from netlm_imaging.errors import DicomError, InputError
from netlm_imaging.io.dicom_series import read_series_from_index
from netlm_imaging.io.discover import discover_study, study_facts

CT_AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
PET_AFF = oblique_affine(spacing=(3.0, 3.0, 6.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
SEED = 11
CT_UID = deterministic_uid("series", SEED, "CT")
PET_UID = deterministic_uid("series", SEED, "PT")


def _liver_mask() -> np.ndarray:
    mask = np.zeros((16, 14, 6), dtype=bool)
    mask[3:11, 4:10, 1:5] = True
    return mask


def _study(root, *, rtstruct=False, seg=True):
    """CT + PET (same FrameOfReference) + SEG on the CT, shuffled names, junk files, nested folders."""
    rng = np.random.default_rng(0)
    ct_files = write_image_series(
        root / "DICOM" / "A1", rng.integers(-200, 200, (16, 14, 6)).astype(float), CT_AFF,
        seed=SEED, shuffle_names=True, series_description="CT venous",
    )  # fmt: skip
    write_image_series(
        root / "DICOM" / "B7", rng.integers(0, 5000, (8, 7, 3)).astype(float), PET_AFF,
        modality="PT", seed=SEED, shuffle_names=True, series_description="PET AC", series_number=2,
    )  # fmt: skip
    (root / "DICOMDIR.txt").write_text("not dicom")
    (root / "DICOM" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    paths = {"ct": ct_files}
    (root / "DICOM" / "S9").mkdir()
    (root / "DICOM" / "R2").mkdir()
    if seg:
        paths["seg"] = write_seg(root / "DICOM" / "S9" / "seg.dcm", ct_files, [SegmentSpec("Liver", _liver_mask())])
    if rtstruct:
        centre = (CT_AFF @ [8, 7, 2, 1])[:3]
        pts = ellipse_points(centre, CT_AFF[:3, 0], CT_AFF[:3, 1], 6.0, 4.0, n=32)
        paths["rt"] = write_rtstruct(
            root / "DICOM" / "R2" / "rs.dcm", ct_files, [RoiSpec("GTV lesion", [Contour(pts)])]
        )
    return paths


def test_seg_on_ct_resolves_to_ct_and_reports_pet(tmp_path):
    paths = _study(tmp_path)
    found = discover_study(tmp_path)
    assert found.image_series_uid == CT_UID
    assert found.image_modality == "CT"
    assert sorted(found.image_files) == sorted(paths["ct"])
    assert found.segmentation_files == [paths["seg"]]
    assert found.segmentations[0].kind == "SEG"
    assert found.segmentations[0].segment_names == ("Liver",)
    assert found.pet_series_uid == PET_UID
    assert found.pet_files is not None
    assert len(found.pet_files) == 3
    assert found.segmentation_args == [str(paths["seg"])]
    # the discovered series reads back as the CT that was written
    vol = read_series_from_index(found.dicom_index, series_uid=found.image_series_uid)
    np.testing.assert_allclose(vol.affine, CT_AFF, atol=1e-5)
    assert study_facts(vol.meta) == {
        "study_instance_uid": deterministic_uid("study", SEED),
        "series_instance_uid": CT_UID,
        "modality": "CT",
    }
    assert "Doe" not in json.dumps(vol.meta)
    assert "SECRET-ID-123" not in json.dumps(vol.meta)


def test_two_candidates_listed_with_option_then_chosen(tmp_path):
    paths = _study(tmp_path, rtstruct=True)
    with pytest.raises(
        DicomError, match=r"2 candidate segmentations: 1\) rs\.dcm \(RTSTRUCT.*GTV lesion.*2\) seg\.dcm \(SEG.*Liver"
    ):
        discover_study(tmp_path)
    with pytest.raises(DicomError, match=r"--seg-choice N\|UID"):
        discover_study(tmp_path)
    # candidates are numbered in path order (DICOM/R2/rs.dcm before DICOM/S9/seg.dcm)
    found = discover_study(tmp_path, seg_choice="1")
    assert found.segmentation_files == [paths["rt"]]
    assert found.image_series_uid == CT_UID
    both = discover_study(tmp_path, seg_choice="1,2")
    assert both.segmentation_files == [paths["rt"], paths["seg"]]
    by_uid = discover_study(tmp_path, seg_choice=pydicom.dcmread(paths["seg"]).SOPInstanceUID)
    assert by_uid.segmentation_files == [paths["seg"]]
    with pytest.raises(InputError, match=r"--seg-choice 3 is out of range 1\.\.2"):
        discover_study(tmp_path, seg_choice="3")


def test_rtstruct_by_frame_of_reference_prefers_ct_over_pet(tmp_path):
    paths = _study(tmp_path, rtstruct=True, seg=False)
    ds = pydicom.dcmread(paths["rt"])
    for rfor in ds.ReferencedFrameOfReferenceSequence:  # keep only the FrameOfReferenceUID
        del rfor.RTReferencedStudySequence
    for rc in ds.ROIContourSequence:  # and no contour names its image (else those images decide)
        for contour in rc.ContourSequence:
            if "ContourImageSequence" in contour:
                del contour.ContourImageSequence
    ds.save_as(paths["rt"])
    found = discover_study(tmp_path)
    assert found.image_series_uid == CT_UID
    assert found.pet_series_uid == PET_UID
    assert any("FrameOfReferenceUID" in n for n in found.notes)


def test_seg_referencing_series_not_in_folder(tmp_path):
    other = tmp_path / "other"
    ct_other = write_image_series(other, np.zeros((16, 14, 6)), CT_AFF, seed=99)
    study = tmp_path / "study"
    study.mkdir()
    write_image_series(study / "ct", np.zeros((16, 14, 6)), CT_AFF, seed=SEED)
    write_seg(study / "seg.dcm", ct_other, [SegmentSpec("Liver", _liver_mask())])
    missing = deterministic_uid("series", 99, "CT")
    with pytest.raises(DicomError, match=rf"seg\.dcm: SEG references image series {missing}, which is not in"):
        discover_study(study)


def test_no_segmentation_in_dicom_folder(tmp_path):
    _study(tmp_path, seg=False)
    with pytest.raises(DicomError, match=r"no DICOM SEG or RTSTRUCT found"):
        discover_study(tmp_path)


def test_image_series_option_overrides_reference(tmp_path):
    _study(tmp_path)
    found = discover_study(tmp_path, image_series=PET_UID)
    assert found.image_series_uid == PET_UID
    assert found.pet_files is None
    with pytest.raises(DicomError, match=r"--image-series 1\.2\.3 is not in the folder"):
        discover_study(tmp_path, image_series="1.2.3")


# ------------------------------------------------------------------ manifest
def test_json_manifest_overrides_discovery(tmp_path):
    paths = _study(tmp_path, rtstruct=True)
    manifest = {
        "image": CT_UID,
        "segmentations": [str(paths["rt"].relative_to(tmp_path)), "lesion=" + str(paths["seg"].relative_to(tmp_path))],
        "labels": "liver=Liver",
        "pet": PET_UID,
    }
    (tmp_path / "netlm.json").write_text(json.dumps(manifest))
    found = discover_study(tmp_path)  # no error about two candidates: the manifest decides
    assert found.source == "manifest"
    assert found.image_series_uid == CT_UID
    assert found.segmentation_args == [str(paths["rt"]), f"lesion={paths['seg']}"]
    assert found.labels == "liver=Liver"
    assert found.pet_series_uid == PET_UID


def test_toml_manifest_with_nifti_paths(tmp_path):
    (tmp_path / "scan.nii.gz").write_bytes(b"x")
    (tmp_path / "masks.nii.gz").write_bytes(b"x")
    (tmp_path / "netlm.toml").write_text(
        'image = "scan.nii.gz"\nsegmentations = ["masks.nii.gz"]\nlabels = "liver=5"\n'
    )
    found = discover_study(tmp_path)
    assert found.image_path == tmp_path / "scan.nii.gz"
    assert found.segmentations[0].kind == "NIFTI"
    assert found.labels == "liver=5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"image": "ct", "segs": ["a"]}', r"unknown manifest key\(s\) segs"),
        ('{"segmentations": ["a.nii"]}', r'manifest needs "image"'),
        ('{"image": "ct", "segmentations": []}', r'"segmentations" must be a non-empty list'),
        ('{"image": "ct", "segmentations": ["a"], "labels": 5}', r'"labels" must be a string, got int'),
        ('{"image": "ct",', r"manifest is not valid JSON"),
        ('{"image": "nowhere.nii.gz", "segmentations": ["x"]}', r'"image" path nowhere\.nii\.gz does not exist'),
        ('{"image": "1.2.840.99", "segmentations": ["x"]}', r'"image" names series 1\.2\.840\.99, not found'),
    ],
)
def test_bad_manifest_is_input_error(tmp_path, content, message):
    (tmp_path / "netlm.json").write_text(content)
    with pytest.raises(InputError, match=message) as err:
        discover_study(tmp_path)
    assert err.value.exit_code == 3
    assert "netlm.json" in str(err.value)


def test_explicit_manifest_missing(tmp_path):
    with pytest.raises(InputError, match=r"manifest file not found"):
        discover_study(tmp_path, manifest=tmp_path / "m.json")


# ------------------------------------------------------------------ NIfTI convention
def _nifti(path):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), path)


def test_nifti_image_plus_label_map(tmp_path):
    for name in ("image.nii.gz", "seg.nii.gz", "notes.txt"):
        _nifti(tmp_path / name) if name.endswith(".gz") else (tmp_path / name).write_text("x")
    found = discover_study(tmp_path)
    assert found.source == "files"
    assert found.image_path == tmp_path / "image.nii.gz"
    assert found.segmentation_args == [str(tmp_path / "seg.nii.gz")]


def test_nifti_binary_masks_by_role(tmp_path):
    for name in ("ct.nii.gz", "liver.nii.gz", "lesion1.nii.gz", "lesion_2.nii.gz", "segment4.nrrd", "pet.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    found = discover_study(tmp_path)
    assert sorted(found.segmentation_args) == sorted(
        [
            f"liver={tmp_path / 'liver.nii.gz'}",
            f"lesion={tmp_path / 'lesion1.nii.gz'}",
            f"lesion={tmp_path / 'lesion_2.nii.gz'}",
            f"segment4={tmp_path / 'segment4.nrrd'}",
        ]
    )
    assert found.pet_files == [tmp_path / "pet.nii.gz"]


def test_totalsegmentator_output_folder_by_name(tmp_path):
    # TotalSegmentator writes one mask per structure: liver, spleen, kidney_left/right, and the
    # liver_vessels task liver_tumor + liver_vessels; the vessels are measured against the lesions (vascular
    # contact), other organs have no role
    names = ("ct.nii.gz", "liver.nii.gz", "liver_tumor.nii.gz", "liver_vessels.nii.gz", "spleen.nii.gz")
    for name in (*names, "kidney_left.nii.gz", "kidney_right.nii.gz", "portal_vein_and_splenic_vein.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "stomach.nii.gz").write_bytes(b"x")
    found = discover_study(tmp_path)
    assert sorted(found.segmentation_args) == sorted(
        f"{role}={tmp_path / name}"
        for role, name in [
            ("liver", "liver.nii.gz"),
            ("lesion", "liver_tumor.nii.gz"),
            ("spleen", "spleen.nii.gz"),
            ("kidney", "kidney_left.nii.gz"),
            ("kidney", "kidney_right.nii.gz"),
            ("vessel", "liver_vessels.nii.gz"),
            ("vessel", "portal_vein_and_splenic_vein.nii.gz"),
        ]
    )
    unused = [n for n in found.notes if n.startswith("not used")]
    assert len(unused) == 1
    assert "stomach.nii.gz" in unused[0]
    assert "--seg ROLE=PATH" in unused[0]


def _ct_beside(folder, shape=(40, 36, 20), spacing=(1.5, 1.5, 3.0)) -> np.ndarray:
    """Write ``ct.nii.gz`` (an oblique grid) into ``folder``; its affine."""
    from phantoms import write_nifti

    aff = oblique_affine(spacing=spacing)
    write_nifti(folder / "ct.nii.gz", np.full(shape, 50, np.int16), aff)
    return aff


def test_totalsegmentator_folder_measures_the_liver_tumour(tmp_path):
    from phantoms import write_nifti

    from netlm_imaging.api import analyze

    shape = (40, 36, 20)
    aff = _ct_beside(tmp_path, shape)
    liver = np.zeros(shape, np.uint8)
    liver[5:35, 5:30, 3:15] = 1
    tumour = np.zeros(shape, np.uint8)
    tumour[10:16, 10:16, 5:9] = 1  # 144 voxels of 6.75 uL
    write_nifti(tmp_path / "liver.nii.gz", liver, aff)
    write_nifti(tmp_path / "liver_tumor.nii.gz", tumour, aff)
    write_nifti(tmp_path / "liver_vessels.nii.gz", tumour, aff)  # no role: must not count
    rep = analyze(tmp_path)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * 1.5 * 1.5 * 3.0 / 1000)
    assert rep.liver["volume_ml"] == pytest.approx(int(liver.sum()) * 1.5 * 1.5 * 3.0 / 1000)


def test_nifti_ambiguities_listed(tmp_path):
    for name in ("ct.nii.gz", "image.nii.gz", "seg.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=r"2 image candidates \(ct\.nii\.gz, image\.nii\.gz\)"):
        discover_study(tmp_path)
    (tmp_path / "ct.nii.gz").unlink()
    (tmp_path / "label.nii.gz").write_bytes(b"x")
    with pytest.raises(DicomError, match=r"2 candidate segmentations: 1\) label\.nii\.gz .*2\) seg\.nii\.gz"):
        discover_study(tmp_path)
    assert discover_study(tmp_path, seg_choice="2").segmentation_files == [tmp_path / "seg.nii.gz"]
    (tmp_path / "liver.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match=r"both label maps .* and binary masks \(liver\.nii\.gz\)"):
        discover_study(tmp_path)


def test_empty_folder_and_missing_pieces(tmp_path):
    with pytest.raises(InputError, match=r"no DICOM files and no NIfTI/NRRD/MHA volumes"):
        discover_study(tmp_path)
    (tmp_path / "image.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match=r"no segmentation file"):
        discover_study(tmp_path)
    shutil.rmtree(tmp_path)
    with pytest.raises(InputError, match=r"not a folder"):
        discover_study(tmp_path)


def test_mask_files_named_mets_are_lesions(tmp_path):
    """A study folder of single-role masks named as radiologists save them: liver_mets, mets_2."""
    for name in ("ct.nii.gz", "liver.nii.gz", "liver_mets.nii.gz", "mets_2.nii.gz", "magnets.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    found = discover_study(tmp_path)
    assert sorted(found.segmentation_args) == sorted(
        f"{role}={tmp_path / name}"
        for role, name in [("liver", "liver.nii.gz"), ("lesion", "liver_mets.nii.gz"), ("lesion", "mets_2.nii.gz")]
    )


def _frame_only_rtstruct_study(root, with_mip):
    """A soft-kernel CT, its topogram (and a MIP) in one frame of reference, and an RTSTRUCT naming only that."""
    shape = (30, 28, 12)
    aff = oblique_affine(spacing=(0.8, 0.8, 2.5), angles_deg=(0.0, 0.0, 9.0), origin=(-20.0, -10.0, 100.0))
    liver = np.zeros(shape, bool)
    liver[4:26, 4:24, 2:10] = True
    hu = np.where(liver, 60.0, -50.0)
    frame = deterministic_uid("for-only", 1)
    series = [
        ("soft", hu, 2, ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("topo", hu[:, :, :1], 1, ["ORIGINAL", "PRIMARY", "LOCALIZER"]),
    ]
    if with_mip:
        series.append(("mip", hu, 5, ["DERIVED", "SECONDARY", "MIP"]))
    files = {
        name: write_image_series(
            root / name,
            arr,
            aff,
            seed=n,
            series_number=number,
            extra_tags={"ImageType": kind},
            frame_of_reference_uid=frame,
            modality="CT",
        )
        for n, (name, arr, number, kind) in enumerate(series, start=1)
    }
    soft = files["soft"]
    corners = np.array([[3.5, 3.5, 0.0], [25.5, 3.5, 0.0], [25.5, 23.5, 0.0], [3.5, 23.5, 0.0]])
    contours = [Contour((corners + np.array([0.0, 0.0, k])) @ aff[:3, :3].T + aff[:3, 3]) for k in range(2, 10)]
    rt = write_rtstruct(root / "rtss.dcm", soft, [RoiSpec("Liver", contours)], contour_image_sequence=False)
    ds = pydicom.dcmread(rt)
    for item in ds.ReferencedFrameOfReferenceSequence:
        if "RTReferencedStudySequence" in item:
            del item.RTReferencedStudySequence  # only the frame of reference is named
    ds.save_as(rt)
    return int(liver.sum()) * abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0


def test_a_frame_of_reference_shared_with_a_topogram_names_the_volume(tmp_path, capsys):
    """The topogram (LOCALIZER, one image) is never what a structure set was drawn on; a MIP may be (4D planning)."""
    from netlm_imaging.api import analyze
    from netlm_imaging.cli import main

    truth = _frame_only_rtstruct_study(tmp_path / "two", with_mip=False)
    assert analyze(tmp_path / "two").to_dict()["liver"]["volume_ml"] == pytest.approx(truth, abs=1e-6)
    _frame_only_rtstruct_study(tmp_path / "three", with_mip=True)
    assert main(["analyze", str(tmp_path / "three"), "--out", str(tmp_path / "out"), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "3 image series share its frame of reference" in err
    assert "--image-series" in err


def test_totalsegmentator_liver_segments_folder(tmp_path):
    # the total task's liver + liver_tumor beside the liver_segments task's liver_segment_1 .. _8 masks:
    # the segment files contain "seg", and were taken for label maps mixed with masks (refused)
    from phantoms import write_nifti

    from netlm_imaging.api import analyze

    shape = (40, 36, 20)
    aff = _ct_beside(tmp_path, shape, spacing=(1.5, 1.25, 3.0))
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000
    liver = np.zeros(shape, np.uint8)
    liver[4:36, 5:30, 3:15] = 1  # 32 x 25 x 12
    tumour = np.zeros(shape, np.uint8)
    tumour[10:16, 10:16, 5:9] = 1  # 144 voxels, in segment 2 (i 8..12) and 3 (i 12..16)
    write_nifti(tmp_path / "liver.nii.gz", liver, aff)
    write_nifti(tmp_path / "liver_tumor.nii.gz", tumour, aff)
    for n in range(1, 9):
        seg = np.zeros(shape, np.uint8)
        seg[4 * n : 4 * n + 4, 5:30, 3:15] = 1  # eight slabs of 4 x 25 x 12 voxels along i
        write_nifti(tmp_path / f"liver_segment_{n}.nii.gz", seg, aff)
    found = discover_study(tmp_path)
    assert f"segment5={tmp_path / 'liver_segment_5.nii.gz'}" in found.segmentation_args
    rep = analyze(tmp_path)
    assert rep.liver["volume_ml"] == pytest.approx(32 * 25 * 12 * voxel_ml)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * voxel_ml)
    by_segment = {s["segment"]: s["liver_volume_ml"] for s in rep.segments}
    assert by_segment == pytest.approx(dict.fromkeys(range(1, 9), 4 * 25 * 12 * voxel_ml))


def test_macos_resource_forks_beside_the_files_are_not_volumes(tmp_path):
    # a Mac copying a study to a USB / network drive writes ._NAME beside each file (AppleDouble): ._seg.nii.gz
    # was a second label map candidate and the study was refused
    from phantoms import write_nifti

    from netlm_imaging.api import analyze

    shape = (40, 36, 20)
    aff = _ct_beside(tmp_path, shape)
    lab = np.zeros(shape, np.uint8)
    lab[5:35, 5:30, 3:15] = 1
    lab[10:16, 10:16, 5:9] = 2
    write_nifti(tmp_path / "seg.nii.gz", lab, aff)
    for name in ("._ct.nii.gz", "._seg.nii.gz"):
        (tmp_path / name).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    found = discover_study(tmp_path)
    assert found.image_path == tmp_path / "ct.nii.gz"
    assert found.segmentation_args == [str(tmp_path / "seg.nii.gz")]
    rep = analyze(tmp_path)
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * voxel_ml)
    assert rep.liver["volume_ml"] == pytest.approx(30 * 25 * 12 * voxel_ml)


def test_a_lits_case_folder(tmp_path):
    # the LiTS challenge names its files volume-N.nii and segmentation-N.nii: the folder had no image
    from phantoms import write_nifti

    from netlm_imaging.api import analyze

    shape = (40, 36, 20)
    aff = oblique_affine(spacing=(0.7, 0.7, 2.5))
    write_nifti(tmp_path / "volume-12.nii", np.full(shape, 50, np.int16), aff)
    lab = np.zeros(shape, np.uint8)
    lab[5:35, 5:30, 3:15] = 1
    lab[10:16, 10:16, 5:9] = 2
    write_nifti(tmp_path / "segmentation-12.nii", lab, aff)
    found = discover_study(tmp_path)
    assert found.image_path == tmp_path / "volume-12.nii"
    assert found.segmentation_args == [str(tmp_path / "segmentation-12.nii")]
    rep = analyze(tmp_path)
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000
    assert rep.liver["volume_ml"] == pytest.approx(30 * 25 * 12 * voxel_ml)
    # LiTS' tumour burden: lesion voxels / liver voxels (lesions included)
    assert rep.involvement_percent == pytest.approx(100 * 144 / (30 * 25 * 12), abs=0.01)


def test_a_byte_identical_copy_of_the_seg_is_read_once(tmp_path):
    # a PACS export or a download that wrote the SEG twice was refused as '2 candidate segmentations' whose
    # listing showed one UID twice (so --seg-choice UID could not pick either). Real files: the dcmqi GE CT and
    # its liver SEG (QIICR/dcmqi @b6137d9e, BSD-3-Clause; MANIFEST: 107,098 voxels = 70.362 mL)
    src = shared_path("dcmqi_ct3slice_seg", "data", "segmentations")
    for name in ("01.dcm", "02.dcm", "03.dcm"):
        shutil.copy(src / "ct-3slice" / name, tmp_path / name)
    shutil.copy(src / "liver.dcm", tmp_path / "liver.dcm")
    shutil.copy(src / "liver.dcm", tmp_path / "liver (1).dcm")
    found = discover_study(tmp_path)
    assert [p.name for p in found.segmentation_files] == ["liver (1).dcm"]
    assert any("byte-identical copy" in n and "read once" in n for n in found.notes)
    rep = analyze(tmp_path)
    assert rep.liver["voxel_count"] == 107098
    assert rep.liver["volume_ml"] == pytest.approx(70.362, abs=5e-4)


def test_two_different_files_with_one_sop_instance_uid_stay_ambiguous(tmp_path):
    paths = _study(tmp_path)
    ds = pydicom.dcmread(paths["seg"])
    ds.SeriesDescription = "edited after export"
    ds.save_as(str(paths["seg"].with_name("seg_edited.dcm")), enforce_file_format=False)
    with pytest.raises(DicomError, match=r"2 candidate segmentations"):
        discover_study(tmp_path)

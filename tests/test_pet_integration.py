"""PET through the whole analysis: a PET/CT study folder and the real non-uniform FDG PET."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import write_image_series
from pet_factory import write_pet_series
from phantoms import grid_affine, sphere_mask
from rules_coverage import covers
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.api import analyze
from netlm_imaging.cli import main

HALF_LIFE_S = 4069.8
DOSE_BQ = 150e6
WEIGHT_KG = 70.0
DELAY_S = 3600.0  # injection 10:00:00, series 11:00:00 (pet_factory defaults)


def _suv_to_bqml(suv: float) -> float:
    # QIBA: SUVbw = A * weight_g / (dose * 2^(-t/T)); solved for A, computed here independently
    return suv * DOSE_BQ * 2 ** (-DELAY_S / HALF_LIFE_S) / (WEIGHT_KG * 1000.0)


@pytest.fixture(scope="module")
def petct(tmp_path_factory):
    root = tmp_path_factory.mktemp("petct")
    for_uid = pydicom.uid.generate_uid(entropy_srcs=["netlm-petct-for"])
    ct_aff = grid_affine((2.0, 2.0, 3.0), (-60.0, -50.0, -45.0))
    ct_shape = (60, 50, 30)
    liver = sphere_mask(ct_shape, ct_aff, (0.0, 0.0, 0.0), 40.0)
    lesion = sphere_mask(ct_shape, ct_aff, (8.0, 4.0, 3.0), 10.0)
    spleen = sphere_mask(ct_shape, ct_aff, (-40.0, 30.0, 20.0), 12.0) & ~liver
    ct = np.where(liver, 60.0, -50.0)
    files = write_image_series(root / "ct", ct, ct_aff, modality="CT", frame_of_reference_uid=for_uid, seed=1)
    write_seg(
        root / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver),
            SegmentSpec("Tumour 1", lesion, property_type=pydicom.sr.codedict.codes.SCT.Neoplasm),
            SegmentSpec("Spleen", spleen, property_type=pydicom.sr.codedict.codes.SCT.Spleen),
        ],
    )
    # PET on a coarser, shifted grid in the same frame of reference
    pet_aff = grid_affine((4.0, 4.0, 4.0), (-62.0, -52.0, -46.0))
    pet_shape = (31, 26, 23)
    act = np.zeros(pet_shape)
    act[sphere_mask(pet_shape, pet_aff, (0.0, 0.0, 0.0), 40.0)] = _suv_to_bqml(5.0)
    act[sphere_mask(pet_shape, pet_aff, (-40.0, 30.0, 20.0), 12.0)] = _suv_to_bqml(15.0)
    act[sphere_mask(pet_shape, pet_aff, (8.0, 4.0, 3.0), 10.0)] = _suv_to_bqml(20.0)
    write_pet_series(
        root / "pet",
        act,
        pet_aff,
        frame_of_reference_uid=for_uid,
        weight_kg=WEIGHT_KG,
        dose_bq=DOSE_BQ,
        half_life_s=HALF_LIFE_S,
        seed=2,
    )
    return root


def test_pet_ct_folder_gives_suv_and_krenning(petct):
    rep = analyze(petct)
    assert rep.study["modality"] == "CT"
    pet = rep.pet
    assert pet is not None
    assert pet["units"] == "BQML"
    assert pet["decay_correction"] == "START"
    (les,) = rep.lesions
    assert les["suv_max"] == pytest.approx(20.0, rel=2e-3)
    assert pet["spleen_suv_mean"] == pytest.approx(15.0, rel=0.05)
    assert pet["liver_suv_mean"] == pytest.approx(5.0, rel=0.05)
    assert les["krenning_score"] == 4  # SUVmax 20 above spleen SUVmean 15
    assert pet["delineation"] == "rel:0.45"
    rep.to_dict()


def test_pet_ct_without_lesion_mask_derives_lesions_on_pet(petct, tmp_path):
    # drop the lesion segment: liver + spleen only -> lesions delineated on PET inside the liver
    ct_files = sorted((petct / "ct").iterdir())
    seg = pydicom.dcmread(petct / "seg.dcm")
    assert seg is not None
    ct_aff = grid_affine((2.0, 2.0, 3.0), (-60.0, -50.0, -45.0))
    liver = sphere_mask((60, 50, 30), ct_aff, (0.0, 0.0, 0.0), 40.0)
    study = tmp_path / "study"
    study.mkdir()
    import shutil

    shutil.copytree(petct / "ct", study / "ct")
    shutil.copytree(petct / "pet", study / "pet")
    write_seg(study / "seg.dcm", sorted((study / "ct").iterdir()) or ct_files, [SegmentSpec("Liver", liver)])
    rep = analyze(study)
    assert rep.pet["delineation"].startswith("pet-derived:")
    assert rep.tumor["lesions_segmented"] is True  # delineated on PET: measured, not absent
    assert rep.tumor["lesion_count"] == 1
    # truth (method: SUV >= 1.5 x liver median SUV, SUV interpolated linearly at CT voxel centres):
    # computed here with scipy's map_coordinates on the PET values, independently of the package
    from phantoms import physical_grid
    from scipy.ndimage import map_coordinates

    pet_aff = grid_affine((4.0, 4.0, 4.0), (-62.0, -52.0, -46.0))
    pet_suv = np.zeros((31, 26, 23))
    pet_suv[sphere_mask((31, 26, 23), pet_aff, (0.0, 0.0, 0.0), 40.0)] = 5.0
    pet_suv[sphere_mask((31, 26, 23), pet_aff, (-40.0, 30.0, 20.0), 12.0)] = 15.0
    pet_suv[sphere_mask((31, 26, 23), pet_aff, (8.0, 4.0, 3.0), 10.0)] = 20.0
    pts = physical_grid((60, 50, 30), ct_aff).reshape(-1, 3)
    idx = (pts - pet_aff[:3, 3]) / 4.0
    suv_on_ct = map_coordinates(pet_suv, idx.T, order=1, mode="nearest").reshape(60, 50, 30)
    expected_ml = np.count_nonzero((suv_on_ct >= 1.5 * 5.0) & liver) * 2.0 * 2.0 * 3.0 / 1000
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(expected_ml, rel=0.05)
    assert any("delineated on PET" in w for w in rep.warnings)


def test_real_fdg_pet_with_rtstruct_is_handled_not_rejected(shared, tmp_path):
    # MANIFEST: non-uniform steps; GTV_Mass about 365 mL by planimetry; BQML, START, 71 kg, 3.88777e8 Bq,
    # injection 10:35:00, series 11:20:11, half-life 6588 s
    folder = shared("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET")
    rc = main(
        ["analyze", str(folder), "--labels", "lesion=GTV_Mass,ignore=GTV_Edema", "--out", str(tmp_path), "--quiet"]
    )
    assert rc == 0
    import json

    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["study"]["modality"] == "PT"
    assert rep["study"]["grid"]["resampled"] is True
    assert any("non-uniform slice steps" in w for w in rep["warnings"])
    (les,) = rep["lesions"]
    assert les["volume_ml"] == pytest.approx(365.0, rel=0.02)
    # hand-computed SUV of the hottest stored voxel of the whole series: a bound for the lesion SUVmax
    factor = 71.0 * 1000.0 / (3.88777e8 * 2 ** (-(2711.0) / 6588.0))
    hottest = 0.0
    for f in sorted((folder / "image").glob("*.dcm")) or sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        if ds.get("Modality") != "PT":
            continue
        hottest = max(hottest, float(ds.pixel_array.max()) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert 0 < les["suv_max"] <= hottest * factor * 1.001
    assert rep["pet"]["units"] == "BQML"
    assert rep["pet"]["decay_correction"] == "START"


def test_real_fdg_pet_given_as_image_folder(shared):
    # the same non-uniform PET passed with --image: recognised as PET from its one folder scan, not rejected
    folder = shared("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET")
    rep = analyze(image=folder / "image", segs=[folder / "mask" / "1-1.dcm"], labels="lesion=GTV_Mass,ignore=GTV_Edema")
    assert rep.study["modality"] == "PT"
    assert rep.study["grid"]["resampled"] is True
    assert rep.lesions[0]["volume_ml"] == pytest.approx(365.0, rel=0.02)
    assert rep.pet["units"] == "BQML"


def test_kidney_mask_by_labels_is_the_krenning_reference_without_spleen(petct, tmp_path):
    """--labels kidney=NAME: a study without a spleen mask uses the kidney for grade 4 (after splenectomy)."""
    import shutil

    study = tmp_path / "study"
    shutil.copytree(petct / "ct", study / "ct")
    shutil.copytree(petct / "pet", study / "pet")
    ct_aff = grid_affine((2.0, 2.0, 3.0), (-60.0, -50.0, -45.0))
    shape = (60, 50, 30)
    liver = sphere_mask(shape, ct_aff, (0.0, 0.0, 0.0), 40.0)
    lesion = sphere_mask(shape, ct_aff, (8.0, 4.0, 3.0), 10.0)
    kidney = sphere_mask(shape, ct_aff, (-40.0, 30.0, 20.0), 12.0) & ~liver  # the SUV-15 ball of the PET
    write_seg(
        study / "seg.dcm",
        sorted((study / "ct").iterdir()),
        [SegmentSpec("Liver", liver), SegmentSpec("Tumour 1", lesion), SegmentSpec("Left kidney", kidney)],
    )
    rep = analyze(study, labels="liver=Liver,lesion=Tumour 1,kidney=Left kidney")
    assert rep.pet["spleen_suv_mean"] is None
    assert rep.pet["upper_reference"]["organ"] == "kidney"
    assert rep.lesions[0]["krenning_score"] == 4  # lesion 20 above kidney 15


def test_pet_flags_reach_lesions_csv(petct):
    """The per-lesion PET flags go through the lesion registry into lesions.csv."""
    import csv
    import io

    from netlm_imaging.report.tables import format_lesions_csv, lesion_rows

    rep = analyze(petct).to_dict()
    (row,) = list(csv.DictReader(io.StringIO(format_lesions_csv(lesion_rows(rep)))))
    # the lesion is a 10 mm-radius ball: 20 mm across, below 3 x the default 7 mm FWHM (21 mm)
    assert row["partial_volume_warning"] == "true"
    assert row["krenning_confidence"] == "low"
    assert row["fdg_pet_advised"] == "false"  # SUV 20 above spleen 15: Krenning 4
    assert float(row["krenning_statistic_suv"]) == pytest.approx(20.0, rel=2e-3)


def test_study_folder_pet_is_scanned_once(petct, monkeypatch):
    """The PET of a PET/CT study folder is read from the folder's one scan: each PET header parsed once."""
    from collections import Counter

    from netlm_imaging.io import _dicom_common

    seen: Counter = Counter()
    real = _dicom_common.read_header

    def counting(path, *args, **kwargs):
        seen[Path(path)] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_dicom_common, "read_header", counting)
    rep = analyze(petct)
    pet_files = sorted((petct / "pet").iterdir())
    assert rep.pet is not None
    assert [seen[p] for p in pet_files] == [1] * len(pet_files)


def _pet_only_study(root, **headers):
    aff = grid_affine((4.0, 4.0, 4.0), (-40.0, -40.0, -30.0))
    shape = (20, 20, 16)
    liver = sphere_mask(shape, aff, (0.0, 0.0, 0.0), 30.0)
    lesion = sphere_mask(shape, aff, (6.0, 4.0, 2.0), 8.0)
    act = np.full(shape, _suv_to_bqml(1.0))
    act[liver] = _suv_to_bqml(5.0)
    act[lesion] = _suv_to_bqml(20.0)
    write_pet_series(root / "pet", act, aff, slopes=[8.0] * shape[2], **headers)
    from phantoms import write_nifti

    seg = write_nifti(root / "labels.nii.gz", np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8), aff)
    return root / "pet", seg


def test_sul_and_resolution_from_the_pet_header(tmp_path):
    """PatientSize / PatientSex give SUL (Janmahasatian); ConvolutionKernel gives the filter FWHM."""
    pet, seg = _pet_only_study(tmp_path, patient_size_m=1.80, patient_sex="M", convolution_kernel="XYZ Gauss6.00")
    rep = analyze(image=pet, segs=[seg])
    bmi = WEIGHT_KG / 1.80**2
    lbm = 9270.0 * WEIGHT_KG / (6680.0 + 216.0 * bmi)  # Janmahasatian 2005, male
    assert rep.pet["sul"]["sul_per_suvbw"] == pytest.approx(lbm / WEIGHT_KG, rel=1e-3)
    assert rep.pet["sul"]["height_source"] == "DICOM PatientSize (0010,1020)"
    assert rep.pet["sul"]["sex_source"] == "DICOM PatientSex (0010,0040)"
    assert rep.lesions[0]["sul_max"] == pytest.approx(20.0 * lbm / WEIGHT_KG, rel=2e-3)
    assert rep.pet["resolution_fwhm_mm"] == pytest.approx((6.0**2 + 5.0**2) ** 0.5, rel=1e-3)


def test_two_digit_filter_fwhm_of_the_convolution_kernel(tmp_path):
    """'Gauss12.00' is a 12 mm filter (was read as 2 mm: the word pattern took the first digit)."""
    pet, seg = _pet_only_study(tmp_path, patient_size_m=1.80, patient_sex="M", convolution_kernel="3D Gauss12.00")
    assert analyze(image=pet, segs=[seg]).pet["resolution_fwhm_mm"] == pytest.approx(13.0, rel=1e-3)  # sqrt(144 + 25)


@covers("pet.header_filter_fwhm_max_mm")
def test_header_filter_fwhm_limit_of_the_rules(tmp_path):
    """A 35 mm 'filter' is above the shipped 30 mm limit: the rules' resolution is used; a higher limit reads it."""
    pet, seg = _pet_only_study(tmp_path, patient_size_m=1.80, patient_sex="M", convolution_kernel="XYZ Gauss35.00")
    assert analyze(image=pet, segs=[seg]).pet["resolution_fwhm_mm"] == pytest.approx(7.0)  # pet.resolution_fwhm_mm
    (tmp_path / "rules.toml").write_text("[pet]\nheader_filter_fwhm_max_mm = 40.0\n")
    wide = analyze(image=pet, segs=[seg], rules=tmp_path / "rules.toml").pet
    assert wide["resolution_fwhm_mm"] == pytest.approx((35.0**2 + 5.0**2) ** 0.5, rel=1e-3)


@covers("pet.sul_height_m_range")
def test_sul_header_height_range_of_the_rules(tmp_path):
    """A PatientSize of 2.70 m is outside the shipped 0.3-2.6 m: no SUL; a wider range lets it give the SUL."""
    pet, seg = _pet_only_study(tmp_path, patient_size_m=2.70, patient_sex="M")
    default = analyze(image=pet, segs=[seg]).pet
    assert default["sul"] is None
    assert any("height" in m for m in default["sul_missing_inputs"])
    (tmp_path / "rules.toml").write_text("[pet]\nsul_height_m_range = [0.3, 3.0]\n")
    wide = analyze(image=pet, segs=[seg], rules=tmp_path / "rules.toml").pet
    lbm = 9270.0 * WEIGHT_KG / (6680.0 + 216.0 * WEIGHT_KG / 2.70**2)  # Janmahasatian 2005, male
    assert wide["sul"]["sul_per_suvbw"] == pytest.approx(lbm / WEIGHT_KG, rel=1e-3)
    assert wide["sul"]["height_source"] == "DICOM PatientSize (0010,1020)"


def test_sul_from_the_clinical_sidecar_overrides_the_header(tmp_path):
    pet, seg = _pet_only_study(tmp_path, patient_size_m=1.80, patient_sex="M")
    (tmp_path / "clinical.json").write_text('{"height_cm": 160, "sex": "female"}')
    rep = analyze(image=pet, segs=[seg], clinical=tmp_path / "clinical.json")
    bmi = WEIGHT_KG / 1.60**2
    lbm = 9270.0 * WEIGHT_KG / (8780.0 + 244.0 * bmi)  # female
    assert rep.pet["sul"]["sul_per_suvbw"] == pytest.approx(lbm / WEIGHT_KG, rel=1e-3)
    assert rep.pet["sul"]["height_source"] == "clinical file"
    assert rep.pet["sul_missing_inputs"] == []


def _without_patient_weight(src: Path, dst: Path) -> Path:
    """A copy of the PET/CT study whose PET lost Patient's Weight (0010,1030), as de-identification removes it."""
    import shutil

    shutil.copytree(src, dst)
    for f in sorted((dst / "pet").iterdir()):
        ds = pydicom.dcmread(f)
        del ds.PatientWeight
        ds.save_as(f)
    return dst


def test_pet_without_body_weight_gives_null_suvs_and_the_same_krenning(petct, tmp_path):
    # PS3.15's Basic Profile removes PatientWeight: the CT burden must still be measured, every SUV must
    # be null with the reason, and what needs no weight (Krenning: uptake ratios; rel:0.45 SRETV) must
    # equal the analysis with the weight (the expected grade 4 is the phantom's: SUV 20 > spleen 15)
    study = _without_patient_weight(petct, tmp_path / "study")
    full, bare = analyze(petct), analyze(study)
    assert bare.liver["volume_ml"] == full.liver["volume_ml"]
    (les,) = bare.lesions
    assert les["krenning_score"] == full.lesions[0]["krenning_score"] == 4
    for key in ("suv_max", "suv_mean", "suv_peak"):
        assert les[key] is None
    pet = bare.pet
    for key in ("suv_max", "liver_suv_mean", "spleen_suv_mean", "tlsre", "liver_suv_max", "whole_body_tlsre"):
        assert pet[key] is None, key
    assert pet["liver_reference"]["suv_mean"] is None
    assert pet["sretv_ml"] == pytest.approx(full.pet["sretv_ml"], rel=1e-6)
    assert pet["units"] == "BQML"
    assert "(0010,1030)" in pet["suv_missing_inputs"][0]
    assert "--weight" in pet["suv_missing_inputs"][0]
    assert "body weight (for SUV)" in bare.classification["missing_inputs"]
    bare.to_dict()


def test_pet_without_body_weight_and_an_absolute_avid_floor_gives_no_sretv(petct, tmp_path):
    """An avid floor in SUV (rules [pet] avid_min_suv 2) cannot be applied to Bq/mL values: without the weight
    the SRETV of the study and of the lesion are null, not volumes counted against a floor of 2 Bq/mL."""
    from rules_coverage import user_rules

    rules = user_rules(tmp_path, {"pet.avid_min_suv": 2.0})
    study = _without_patient_weight(petct, tmp_path / "study")
    full, bare = analyze(petct, rules=rules), analyze(study, rules=rules)
    assert full.pet["sretv_ml"] > 0
    assert full.lesions[0]["sretv_ml"] > 0
    assert (bare.pet["sretv_ml"], bare.pet["whole_body_sretv_ml"], bare.lesions[0]["sretv_ml"]) == (None, None, None)
    assert bare.lesions[0]["krenning_score"] == 4


def test_pet_without_injected_dose_gives_null_suvs_and_the_same_krenning(petct, tmp_path):
    """Radionuclide Total Dose (0018,1074) missing: as without the weight, the burden, the Krenning grade and
    the liver-relative SRETV are those of the complete study; every SUV is null, the dose named as missing."""
    import shutil

    study = tmp_path / "study"
    shutil.copytree(petct, study)
    for f in sorted((study / "pet").iterdir()):
        ds = pydicom.dcmread(f)
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
        ds.save_as(f)
    full, bare = analyze(petct), analyze(study)
    assert bare.liver["volume_ml"] == full.liver["volume_ml"]
    (les,) = bare.lesions
    assert les["krenning_score"] == full.lesions[0]["krenning_score"] == 4
    assert (les["suv_max"], les["suv_mean"], les["suv_peak"]) == (None, None, None)
    assert bare.pet["sretv_ml"] == pytest.approx(full.pet["sretv_ml"], rel=1e-6)
    assert "Radionuclide Total Dose (0018,1074) is missing" in bare.pet["suv_missing_inputs"][0]
    assert "injected dose (for SUV)" in bare.classification["missing_inputs"]
    assert "body weight (for SUV)" not in bare.classification["missing_inputs"]


def test_pet_without_body_weight_through_the_cli_with_every_output(petct, tmp_path):
    study = _without_patient_weight(petct, tmp_path / "study")
    out = tmp_path / "out"
    assert main(["analyze", str(study), "--out", str(out), "--quiet", "--sr", "--html"]) == 0
    import json

    rep = json.loads((out / "report.json").read_text())
    assert rep["lesions"][0]["suv_max"] is None
    assert rep["lesions"][0]["krenning_score"] == 4
    assert (out / "report_sr.dcm").exists()
    # the QA page draws no PET overlay on an SUV scale: the values are Bq/mL
    assert "PET SUV sampled" not in (out / "report.html").read_text()
    # an absolute SUV cut-off cannot be applied without the weight: SRETV null, the grade unchanged
    out2 = tmp_path / "out_abs"
    assert main(["analyze", str(study), "--out", str(out2), "--quiet", "--delineation", "abs:8"]) == 0
    rep2 = json.loads((out2 / "report.json").read_text())
    assert rep2["pet"]["sretv_ml"] is None
    assert rep2["lesions"][0]["krenning_score"] == 4


@pytest.mark.parametrize("header_weight", [None, WEIGHT_KG])
def test_clinical_file_weight_gives_the_suv(petct, tmp_path, header_weight):
    # the clinical sidecar's weight_kg is the patient's weight (batch has no per-study --weight): SUVbw
    # scales with it by the QIBA formula (SUV 20 at 70 kg is 20 x 84 / 70 at 84 kg)
    import json

    study = petct if header_weight is not None else _without_patient_weight(petct, tmp_path / "study")
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps({"weight_kg": 84.0}))
    rep = analyze(study, clinical=clinical)
    assert rep.lesions[0]["suv_max"] == pytest.approx(20.0 * 84.0 / WEIGHT_KG, rel=2e-3)
    assert "suv_missing_inputs" not in rep.pet
    if header_weight is not None:
        assert any("84 kg of the clinical file's weight_kg, not Patient's Weight" in w for w in rep.warnings)


def test_lesion_cut_by_the_pet_field_of_view_is_flagged(tmp_path):
    # the CT reaches 10 mm further than the PET's axial field of view (z -46..32 mm) and a lesion
    # (centre z 30 mm, radius 10 mm) straddles the PET's edge: its PET numbers describe the part
    # inside only, which the report must say (it did not: SRETV 2.56 of a 4.1 mL lesion, no word)
    for_uid = pydicom.uid.generate_uid(entropy_srcs=["netlm-fov-for"])
    ct_aff = grid_affine((2.0, 2.0, 3.0), (-60.0, -50.0, -45.0))
    ct_shape = (60, 50, 30)
    liver = sphere_mask(ct_shape, ct_aff, (0.0, 0.0, 0.0), 40.0)
    lesion = sphere_mask(ct_shape, ct_aff, (8.0, 4.0, 30.0), 10.0)
    whole = sphere_mask(ct_shape, ct_aff, (-20.0, -10.0, -10.0), 8.0)
    files = write_image_series(
        tmp_path / "ct", np.where(liver, 60.0, -50.0), ct_aff, modality="CT", frame_of_reference_uid=for_uid, seed=1
    )
    neo = pydicom.sr.codedict.codes.SCT.Neoplasm
    write_seg(
        tmp_path / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver),
            SegmentSpec("Tumour 1", lesion, property_type=neo),
            SegmentSpec("Tumour 2", whole, property_type=neo),
        ],
    )
    pet_aff = grid_affine((4.0, 4.0, 4.0), (-62.0, -52.0, -46.0))
    pet_shape = (31, 26, 20)
    act = np.zeros(pet_shape)
    act[sphere_mask(pet_shape, pet_aff, (0.0, 0.0, 0.0), 40.0)] = _suv_to_bqml(5.0)
    act[sphere_mask(pet_shape, pet_aff, (8.0, 4.0, 30.0), 10.0)] = _suv_to_bqml(20.0)
    act[sphere_mask(pet_shape, pet_aff, (-20.0, -10.0, -10.0), 8.0)] = _suv_to_bqml(20.0)
    write_pet_series(tmp_path / "pet", act, pet_aff, frame_of_reference_uid=for_uid, seed=2)
    rep = analyze(tmp_path)
    # truth: the lesion's CT voxel centres at z <= 30 + 4 / 2 mm (the PET's last slice and its half step)
    z = ct_aff[2, 3] + ct_aff[2, 2] * np.nonzero(lesion)[2]
    expected = np.count_nonzero(z <= 32.0) / z.size
    by_height = sorted(rep.lesions, key=lambda les: les["centroid_lps_mm"][2])
    inner, cut = by_height
    assert cut["pet_fov_fraction"] == pytest.approx(expected, abs=1e-4)  # reported to 4 decimals
    assert 0.3 < expected < 0.9
    assert "pet_fov_fraction" not in inner
    assert rep.pet["pet_fov_cut_lesion_ids"] == [cut["id"]]
    assert any(f"lesion {cut['id']} lies partly outside the PET field of view" in w for w in rep.warnings)


def test_lesion_cut_at_the_first_pet_slice_counts_the_half_step_below_it(tmp_path):
    # the CT starts 4 mm below the PET's first slice centre (z -46 mm, 4 mm slices): CT voxel centres at
    # z -47 mm lie in that slice (within its half step, down to -48 mm) and count as inside, -50 mm does not
    for_uid = pydicom.uid.generate_uid(entropy_srcs=["netlm-fov-low-for"])
    ct_aff = grid_affine((2.0, 2.0, 3.0), (-60.0, -50.0, -50.0))
    ct_shape = (60, 50, 30)
    liver = sphere_mask(ct_shape, ct_aff, (0.0, 0.0, -10.0), 38.0)
    lesion = sphere_mask(ct_shape, ct_aff, (0.0, 0.0, -44.0), 8.0)
    files = write_image_series(
        tmp_path / "ct", np.where(liver, 60.0, -50.0), ct_aff, modality="CT", frame_of_reference_uid=for_uid, seed=1
    )
    neo = pydicom.sr.codedict.codes.SCT.Neoplasm
    write_seg(
        tmp_path / "seg.dcm", files, [SegmentSpec("Liver", liver), SegmentSpec("Tumour 1", lesion, property_type=neo)]
    )
    pet_aff = grid_affine((4.0, 4.0, 4.0), (-62.0, -52.0, -46.0))
    pet_shape = (31, 26, 23)
    act = np.zeros(pet_shape)
    act[sphere_mask(pet_shape, pet_aff, (0.0, 0.0, -10.0), 38.0)] = _suv_to_bqml(5.0)
    act[sphere_mask(pet_shape, pet_aff, (0.0, 0.0, -44.0), 8.0)] = _suv_to_bqml(20.0)
    write_pet_series(tmp_path / "pet", act, pet_aff, frame_of_reference_uid=for_uid, seed=2)
    rep = analyze(tmp_path)
    z = ct_aff[2, 3] + ct_aff[2, 2] * np.nonzero(lesion)[2]
    expected = np.count_nonzero(z >= -48.0) / z.size
    assert np.any((z > -48.0) & (z < -46.0))  # the half step below the first PET slice holds lesion voxels
    (les,) = rep.lesions
    assert les["pet_fov_fraction"] == pytest.approx(expected, abs=1e-4)


def test_pet_in_another_frame_of_reference_is_named_not_silently_dropped(petct, tmp_path):
    # a PET whose FrameOfReferenceUID is not the CT's (separately de-identified series, another
    # scanner) cannot be placed on the CT's masks; the report had no PET and said nothing about it
    import shutil

    study = tmp_path / "study"
    shutil.copytree(petct, study)
    other = pydicom.uid.generate_uid(entropy_srcs=["netlm-petct-other-for"])
    for f in sorted((study / "pet").iterdir()):
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = other
        pet_uid = ds.SeriesInstanceUID
        ds.save_as(f)
    rep = analyze(study)
    assert rep.pet is None
    assert rep.lesions[0]["suv_max"] is None
    (note,) = [n for n in rep.to_dict()["notes"] if pet_uid in n]
    assert "not used, no uptake measured" in note
    assert "FrameOfReferenceUID differs" in note


def test_attenuation_corrected_pet_is_chosen_beside_the_nac_series(petct, tmp_path):
    # a PET/CT export holds the AC PET and the non-attenuation-corrected (NAC) PET, both in the CT's
    # frame of reference; "several PET series: none used" lost the PET of every such study
    import shutil

    study = tmp_path / "study"
    shutil.copytree(petct, study)
    for_uid = pydicom.dcmread(next((petct / "pet").iterdir())).FrameOfReferenceUID
    pet_aff = grid_affine((4.0, 4.0, 4.0), (-62.0, -52.0, -46.0))
    nac = np.full((31, 26, 23), _suv_to_bqml(2.0))  # NAC values: not quantitative
    write_pet_series(
        study / "pet_nac", nac, pet_aff, frame_of_reference_uid=for_uid, corrected_image=("NORM", "DECY"), seed=9
    )
    rep = analyze(study)
    assert rep.lesions[0]["suv_max"] == pytest.approx(20.0, rel=2e-3)  # the AC series' lesion
    ac_uid = pydicom.dcmread(next((petct / "pet").iterdir())).SeriesInstanceUID
    assert any(ac_uid in n and "attenuation-corrected one of 2" in n for n in rep.to_dict()["notes"])
    # two attenuation-corrected series (two reconstructions) stay a choice for the user
    write_pet_series(study / "pet_ac2", nac, pet_aff, frame_of_reference_uid=for_uid, seed=10)
    shutil.rmtree(study / "pet_nac")
    assert analyze(study).pet is None


def test_rotated_pet_grid_over_midnight_with_two_beds_and_a_fine_ct_segmentation(tmp_path):
    """A user's PET/CT: CT SEG on a 0.8 x 0.8 x 2 mm grid, PET on 4.07 x 4.07 x 3 mm rows and columns rotated 4
    degrees in-plane and offset; Ga-68 (T 4062.6 s), 82 kg, 180 MBq injected 23:40, series 00:35 the next day,
    two beds (acquisition times 00:35 and 00:38), a RescaleSlope per slice. The truth: the activity written is
    SUV x dose x 2^(-3300 s / T) / weight_g (QIBA, solved here), so uniform regions read their SUV exactly;
    the lesions' masks reach the PET through its rotated orientation (a wrong one misses them)."""
    from conftest import oblique_affine

    for_uid = pydicom.uid.generate_uid(entropy_srcs=["netlm-rotated-pet-for"])
    ct_aff = grid_affine((0.8, 0.8, 2.0), (-56.0, -56.0, -50.0))
    ct_shape = (140, 140, 50)
    liver = sphere_mask(ct_shape, ct_aff, (0.0, 0.0, 0.0), 48.0)
    lesions = {1: ((22.0, -18.0, 6.0), 12.0, 12.0), 2: ((-20.0, 18.0, -8.0), 12.0, 25.0)}  # centre, radius, SUV
    masks = {k: sphere_mask(ct_shape, ct_aff, c, r) for k, (c, r, _) in lesions.items()}
    spleen = sphere_mask(ct_shape, ct_aff, (40.0, 40.0, 30.0), 14.0) & ~liver
    files = write_image_series(
        tmp_path / "ct", np.where(liver, 60.0, -50.0), ct_aff, modality="CT", frame_of_reference_uid=for_uid, seed=5
    )
    neoplasm = pydicom.sr.codedict.codes.SCT.Neoplasm
    write_seg(
        tmp_path / "seg.dcm",
        files,
        [SegmentSpec("Liver", liver)]
        + [SegmentSpec(f"Tumour {k}", m, property_type=neoplasm) for k, m in masks.items()]
        + [SegmentSpec("Spleen", spleen, property_type=pydicom.sr.codedict.codes.SCT.Spleen)],
    )
    pet_aff = oblique_affine(spacing=(4.07, 4.07, 3.0), angles_deg=(0.0, 0.0, 4.0), origin=(-66.3, -63.1, -56.5))
    pet_shape = (34, 34, 38)
    weight, dose, half_life, uptake_s = 82.0, 180e6, 4062.6, 55 * 60.0
    per_suv = dose * 2 ** (-uptake_s / half_life) / (weight * 1000.0)  # Bq/mL of SUV 1
    suv = np.ones(pet_shape)
    suv[sphere_mask(pet_shape, pet_aff, (0.0, 0.0, 0.0), 48.0)] = 5.0
    suv[sphere_mask(pet_shape, pet_aff, (40.0, 40.0, 30.0), 14.0)] = 16.0
    for c, r, v in lesions.values():
        suv[sphere_mask(pet_shape, pet_aff, c, r)] = v
    act = suv * per_suv
    write_pet_series(
        tmp_path / "pet",
        act,
        pet_aff,
        slopes=[float(act[:, :, z].max()) / 30000.0 for z in range(pet_shape[2])],
        frame_of_reference_uid=for_uid,
        weight_kg=weight,
        dose_bq=dose,
        half_life_s=half_life,
        series_date="20240103",
        series_time="003500",
        acquisition_times=["003500"] * 19 + ["003800"] * 19,
        injection_time="234000",
        seed=6,
    )
    rep = analyze(tmp_path)
    assert rep.pet["liver_suv_mean"] == pytest.approx(5.0, rel=1e-4)
    assert rep.pet["liver_reference"]["method"] == "sphere"
    assert rep.pet["mask_resampling"].startswith("nearest")
    by_label = {les["label"]: les for les in rep.lesions}
    for k, (_, _, v) in lesions.items():
        les = by_label[f"Tumour {k}"]
        assert les["suv_max"] == pytest.approx(v, rel=1e-4)
        assert les["suv_peak"] == pytest.approx(v, rel=1e-4)  # 24 mm balls hold a 1 mL sphere around a voxel
        # PET voxels whose centre is in the CT-drawn ball: a few boundary ones may read the liver's 5
        assert 5.0 + 0.9 * (v - 5.0) <= les["suv_mean"] <= v * (1 + 1e-4)
        assert les["partial_volume_warning"] is False  # 24 mm > 3 x 7 mm
    assert by_label["Tumour 1"]["krenning_score"] == 3  # 12: above the liver band, below the spleen's 16
    assert by_label["Tumour 2"]["krenning_score"] == 4  # 25 > 16
    assert any("midnight" in w for w in rep.warnings)

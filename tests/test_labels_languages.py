"""Structure names in other scripts and the names that only look like the liver (io/role_patterns.py).

Planning systems in Japan, China, Korea and Russia name ROIs in their own scripts: 肝臓 / 肝脏 (liver),
腫瘍 / 肿瘤 (tumour), 肝転移 (liver metastasis), Печень (liver), 간 (liver), 종양 (tumour). None was
recognised, so a structure set with 肝臓 and 腫瘍 stopped with exit 3 ("no liver and no lesion"), and
the flag it suggested mapped the liver as a lesion. The names are now read, whatever character set
the file is encoded in (UTF-8, ISO 2022 with escape sequences, ISO 8859-5, GB18030), and the vessels
(肝静脈, воротная вена, 간정맥) and oedema of those languages are not the organ.

A tumour named after the organ it lies in (``Liver tumor``, ``LiverMets``, ``GTV_Liver``,
``Hepatic metastasis``, 肝転移) is a lesion; a name that subtracts (``Liver-GTV``, TG-263's Boolean
minus) or negates (``non-tumorous liver``) stays a derived structure, never guessed.

Helper structures that carried the liver's name were taken as liver: an expansion in cm
(``Liver_2cm``: only ``mm`` was known), a dose structure (``DoseLiver``) and a hepatic artery
(``Art_Hepatic``). Each added its voxels to the liver.

Phantom: an oblique anisotropic CT; ROIs are boxes outlined through voxel edges, so each ROI's voxel
count, computed here from the box, is its truth.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pydicom
import pytest

from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.role_precedence import decide_role
from netlm_imaging.segmentation import vessel_name
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import RoiSpec, box_outline, write_rtstruct

SHAPE = (32, 30, 12)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -3.0, 20.0), origin=(-30.0, 15.0, 250.0))
VOXEL_ML = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
LIVER = ((4, 28), (3, 27), range(2, 10))
TUMOUR = ((9, 15), (8, 13), range(4, 7))
EXPANDED = ((1, 31), (1, 29), range(1, 11))  # the liver grown by a margin: a planning helper
ARTERY = ((20, 23), (10, 13), range(0, 12))  # a vessel box crossing the liver


def _voxels(box) -> int:
    (i0, i1), (j0, j1), ks = box
    return (i1 - i0) * (j1 - j0) * len(ks)


def _roi(name: str, box, itype: str | None = None) -> RoiSpec:
    return RoiSpec(name, [box_outline(AFFINE, box, k) for k in box[2]], interpreted_type=itype)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names_ct")
    return folder, write_image_series(folder / "ct", np.zeros(SHAPE), AFFINE, seed=43)


def _study(ct, tmp_path, rois, charset=None):
    _folder, paths = ct
    study = tmp_path / "study"
    (study / "ct").mkdir(parents=True)
    for p in paths:
        (study / "ct" / p.name).write_bytes(p.read_bytes())
    names = [r.name for r in rois]
    rt = write_rtstruct(study / "rt.dcm", paths, [replace(r, name=f"roi{i}") for i, r in enumerate(rois)])
    ds = pydicom.dcmread(rt)  # the names encoded as that planning system writes them
    ds.SpecificCharacterSet = charset or "ISO_IR 100"
    for item, name in zip(ds.StructureSetROISequence, names, strict=True):
        item.ROIName = name
    ds.save_as(rt, enforce_file_format=True)
    return study, rt


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("肝臓", "liver"),
        ("肝脏", "liver"),
        ("肝", "liver"),
        ("Печень", "liver"),
        ("печень", "liver"),
        ("간", "liver"),
        ("Karaciğer", "liver"),
        ("腫瘍", "lesion"),
        ("肿瘤", "lesion"),
        ("肝転移", "lesion"),  # the metastasis qualified by its organ
        ("肝转移", "lesion"),
        ("肝癌", "lesion"),
        ("Метастаз 1", "lesion"),
        ("опухоль", "lesion"),
        ("종양", "lesion"),
        ("간전이", "lesion"),
        ("간암", "lesion"),
        ("tümör", "lesion"),
        ("脾臓", "spleen"),
        ("Селезёнка", "spleen"),
        ("비장", "spleen"),
        ("肝静脈", "vessel"),  # hepatic vein: measured against the lesions
        ("門脈", "vessel"),  # portal vein
        ("肝動脈", "vessel"),
        ("肝内胆管", None),  # intrahepatic bile duct
        ("воротная вена", "vessel"),
        ("печёночная артерия", "vessel"),  # hepatic artery
        ("Pfortader", "vessel"),  # portal vein, German
        ("veine porte", "vessel"),
        ("vena porta", "vessel"),
        ("poortader", "vessel"),
        ("veines sus-hépatiques", "vessel"),  # the hepatic veins, French: "sus-" is no Boolean minus
        ("veine he\u0301patique", "vessel"),  # the accent as its own code point (NFD)
        ("Leberarterie", "vessel"),
        ("arteria hepática", "vessel"),
        ("untere Hohlvene", "vessel"),
        ("Vena cava superior", None),  # the superior vena cava is no hepatic vessel
        ("obere Hohlvene", None),
        ("Leber-Pfortader", None),  # TG-263 Boolean: liver minus portal vein
        ("Leber_ohne_Lebervenen", None),
        ("간정맥", "vessel"),
        ("浮腫", None),
        ("간호", None),  # nursing: 간 inside a word is not the liver
        ("Liver_2cm", None),
        ("Liver_1.5cm", None),
        ("Liver 2 cm", None),
        ("Liver_2", "liver"),  # a numbered copy, not an expansion
        ("DoseLiver", None),
        ("LiverDose", None),
        ("Art_Hepatic", None),
        ("Liver_PV", None),
        ("Liver tumor", "lesion"),
        ("GTV_Liver", "lesion"),
        ("Hepatic metastasis", "lesion"),
        ("Lebermetastase", "lesion"),
        ("Splenic metastasis", "lesion"),
        ("Liver-GTV", None),  # TG-263 Boolean: liver minus GTV
        ("Liver - Tumor", None),
        ("non-tumorous liver", None),
        ("Liver_NoTumor", None),
        ("非腫瘍肝", None),
        ("Liver_minus_GTV", None),
        ("Liver tumour 2cm", None),
    ],
)
def test_role_of_a_name(name, role):
    decision = decide_role(name, None, parse_label_spec(None))
    assert decision.role == role, decision.note


@pytest.mark.parametrize(
    ("name", "vessel"),
    [
        ("Pfortader", "portal vein"),
        ("V. portae", "portal vein"),
        ("veine porte", "portal vein"),
        ("veia porta", "portal vein"),
        ("poortader", "portal vein"),
        ("porta hepatis", None),  # the hilum, not the vein
        ("Lebervenen", "hepatic vein"),
        ("veines sus-hépatiques", "hepatic vein"),
        ("venas hepáticas", "hepatic vein"),
        ("vene sovraepatiche", "hepatic vein"),
        ("leverader", "hepatic vein"),
        ("печеночные вены", "hepatic vein"),
        ("Arteria hepatica propria", "hepatic artery"),
        ("artère hépatique", "hepatic artery"),
        ("arteria epatica", "hepatic artery"),
        ("artéria hepática", "hepatic artery"),
        ("leverslagader", "hepatic artery"),
        ("печёночная артерия", "hepatic artery"),
        ("Vena cava inferior", "inferior vena cava"),
        ("veine cave inférieure", "inferior vena cava"),
        ("untere Hohlvene", "inferior vena cava"),
        ("onderste holle ader", "inferior vena cava"),
        ("Vena cava superior", None),
        ("veine cave supérieure", None),
        ("верхняя полая вена", None),
        ("reporter", None),
    ],
)
def test_the_vessel_a_name_names_in_its_language(name, vessel):
    # the vessel the report names beside each lesion's gap (vascular_contact): which it is, not only "a vessel"
    assert vessel_name(name) == vessel


@pytest.mark.parametrize(
    ("charset", "liver", "lesion", "escape"),
    [
        ("ISO_IR 192", "肝臓", "腫瘍", None),
        (["", "ISO 2022 IR 87"], "肝臓", "肝転移", b"\x1b$B"),  # JIS X 0208 behind its escape sequence
        ("GB18030", "肝脏", "肿瘤", None),
        ("ISO_IR 144", "Печень", "Метастаз 1", None),  # ISO 8859-5 Cyrillic
        (["", "ISO 2022 IR 149"], "간", "간 전이", b"\x1b$)C"),  # KS X 1001
    ],
)
def test_a_structure_set_named_in_another_script_is_measured(ct, tmp_path, charset, liver, lesion, escape):
    rois = [_roi(liver, LIVER, "ORGAN"), _roi(lesion, TUMOUR, "GTV")]
    study, rt = _study(ct, tmp_path, rois, charset)
    raw = rt.read_bytes()
    assert liver.encode("utf-8") not in raw or charset == "ISO_IR 192"  # the file really is in that encoding
    if escape is not None:
        assert escape in raw
    report = analyze_json(str(study))
    assert report["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-4)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_voxels(TUMOUR) * VOXEL_ML, abs=1e-4)
    assert len(report["lesions"]) == 1
    roles = {r["name"]: r["role"] for r in report["study"]["segment_roles"]}
    assert roles == {liver: "liver", lesion: "lesion"}


@pytest.mark.parametrize(("helper", "box"), [("Liver_2cm", EXPANDED), ("DoseLiver", EXPANDED), ("Art_Hepatic", ARTERY)])
def test_a_helper_named_after_the_liver_adds_nothing_to_it(ct, tmp_path, helper, box):
    rois = [_roi("Liver", LIVER, "ORGAN"), _roi(helper, box), _roi("GTV", TUMOUR, "GTV")]
    study, _ = _study(ct, tmp_path, rois)
    report = analyze_json(str(study))
    assert report["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-4)
    assert {r["name"]: r["role"] for r in report["study"]["segment_roles"]}[helper] is None


def test_the_flag_for_an_unnamed_liver_maps_it_as_the_liver(ct, tmp_path):
    """With a lesion found and no liver, the example flag offers the ignored ROI as the liver, not a lesion."""
    rois = [_roi("Organ A", LIVER, "ORGAN"), _roi("GTV", TUMOUR, "GTV")]
    study, _ = _study(ct, tmp_path, rois)
    report = analyze_json(str(study))
    (warning,) = [w for w in report["warnings"] if "got no role and were ignored" in w]
    flag = warning.split("map one with e.g. --labels ", 1)[1].split(" (study.segment_roles", 1)[0]
    assert flag == 'lesion="GTV",liver="Organ A"'
    mapped = analyze_json(str(study), "--labels", flag)
    assert mapped["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * VOXEL_ML, abs=1e-4)
    assert mapped["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_voxels(TUMOUR) * VOXEL_ML, abs=1e-4)

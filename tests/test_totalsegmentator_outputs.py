"""Output folders as TotalSegmentator writes them, with several of its liver tasks run into one folder.

``TotalSegmentator -i ct.nii.gz -o segmentations`` writes one uint8 mask per class of the ``total`` task
(117 files, most of them empty) with the CT's own header (nibabel, its scaling reset); ``-ta
liver_vessels`` adds ``liver_vessels.nii.gz`` and ``liver_tumor.nii.gz``, ``-ta liver_lesions``
``liver_lesions.nii.gz`` into the same folder. ``liver_tumor`` and ``liver_lesions`` each hold every
tumour of the liver: with both, the study's two tumours were read as one lesion per file, the first
file's lesion spanning both tumours (12.8 mm across two 6 mm spheres) and the second's left empty.

Truths: voxel counts of the spheres drawn here x |det(affine)|; the class names are those of the
``total`` task (tests/data/totalseg_total_v2_codes.csv).
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import analyze_json, compare_seg_json, oblique_affine
from test_faults_messages import netlm, one_line
from test_label_tables import _caret_xml

from netlm_imaging.volume import lps_to_ras

DATA = Path(__file__).parent / "data"
AFF_LPS = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(4.0, -3.0, 12.0))
SHAPE = (44, 40, 20)
VOXEL_ML = 0.9 * 0.8 * 2.0 / 1000


def _ball(centre: tuple[float, float, float], radii: tuple[float, float, float]) -> np.ndarray:
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return ((i - centre[0]) / radii[0]) ** 2 + ((j - centre[1]) / radii[1]) ** 2 + (
        (k - centre[2]) / radii[2]
    ) ** 2 <= 1


LIVER = _ball((22, 20, 10), (16, 14, 7))
TUMOURS = (_ball((14, 20, 10), (3.4, 3.8, 1.6)), _ball((30, 20, 10), (3.4, 3.8, 1.6)))
SPLEEN = _ball((40, 6, 10), (3, 4, 2))


def _save_like_totalsegmentator(ct: nib.Nifti1Image, mask: np.ndarray, path: Path) -> None:
    header = ct.header.copy()  # the CT's header, the data type changed to uint8
    header.set_data_dtype(np.uint8)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), ct.affine, header), path)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ts") / "study"
    (d / "segmentations").mkdir(parents=True)
    ras = lps_to_ras(AFF_LPS)
    stored = np.random.default_rng(24).integers(1000, 1100, SHAPE).astype(np.int16)
    ct = nib.Nifti1Image(stored, ras)
    ct.header.set_slope_inter(1.0, -1024.0)  # a scaled CT, as converters write it
    ct.set_sform(ras, code=1)
    ct.set_qform(ras, code=1)
    nib.save(ct, d / "ct.nii.gz")
    ct = nib.load(d / "ct.nii.gz")
    with (DATA / "totalseg_total_v2_codes.csv").open() as fh:
        names = [row["structure"] for row in csv.DictReader(fh)]
    assert len(names) == 117
    tumours = TUMOURS[0] | TUMOURS[1]
    masks = {"liver": LIVER, "spleen": SPLEEN, "liver_vessels": LIVER & (np.arange(SHAPE[1]) == 8)[None, :, None]}
    masks |= {"liver_tumor": tumours, "liver_lesions": tumours}
    for name in [*names, "liver_vessels", "liver_tumor", "liver_lesions"]:
        _save_like_totalsegmentator(ct, masks.get(name, np.zeros(SHAPE, bool)), d / "segmentations" / f"{name}.nii.gz")
    return d


def test_two_liver_tasks_in_one_folder_give_each_tumour_once(study):
    rep = analyze_json(str(study))
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(LIVER) * VOXEL_ML, abs=1e-6)
    each = [np.count_nonzero(t) * VOXEL_ML for t in TUMOURS]
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(sum(each), abs=1e-6)
    assert rep["tumor"]["lesion_count"] == 2
    assert sorted(lesion["volume_ml"] for lesion in rep["lesions"]) == pytest.approx(sorted(each), abs=1e-6)
    # each lesion is one sphere: its longest diameter is the largest distance between its voxel centres
    for t in TUMOURS:
        centres = np.argwhere(t) @ AFF_LPS[:3, :3].T
        widest = float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=-1)))
        assert any(abs(x["max_3d_diameter_mm"] - widest) < 0.01 for x in rep["lesions"]), widest
    assert any("holds 2 separate parts" in w for w in rep["warnings"])


def test_compare_seg_counts_the_lesions_of_both_tasks_as_analyze_does(study, tmp_path):
    # the reference: a LiTS label map of the same liver and tumours; B: the two TotalSegmentator lesion masks
    ras = lps_to_ras(AFF_LPS)
    lits = LIVER.astype(np.uint8)
    lits[TUMOURS[0] | TUMOURS[1]] = 2
    nib.save(nib.Nifti1Image(lits, ras), tmp_path / "reference_seg.nii.gz")
    masks = study / "segmentations"
    args = ["--image", str(study / "ct.nii.gz"), "--seg-a", str(tmp_path / "reference_seg.nii.gz")]
    args += ["--seg-b", f"liver={masks / 'liver.nii.gz'}", "--seg-b", f"lesion={masks / 'liver_tumor.nii.gz'}"]
    args += ["--seg-b", f"lesion={masks / 'liver_lesions.nii.gz'}"]
    det = compare_seg_json(*args)["detection"]
    assert (det["true_positives"], det["false_positives"], det["false_negatives"]) == (2, 0, 0)


def _couinaud() -> np.ndarray:
    """liver_segments numbering: the liver split into octants numbered 1..8."""
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    octant = 1 + 4 * (i >= 22) + 2 * (j >= 20) + (k >= 10)
    return np.where(LIVER, octant, 0).astype(np.uint8)


def test_liver_segments_alone_are_refused_naming_what_else_to_give(study, tmp_path):
    ct = nib.load(study / "ct.nii.gz")
    header = ct.header.copy()
    header.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(_couinaud(), ct.affine, header)
    names = {n: f"liver_segment_{n}" for n in range(1, 9)}
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _caret_xml(names).encode()))
    nib.save(img, tmp_path / "liver_segments.nii.gz")  # TotalSegmentator -ta liver_segments --ml
    (tmp_path / "s" / "segmentations").mkdir(parents=True)  # ... and without --ml, one file per segment
    (tmp_path / "s" / "ct.nii.gz").write_bytes((study / "ct.nii.gz").read_bytes())
    for n, name in names.items():
        _save_like_totalsegmentator(ct, _couinaud() == n, tmp_path / "s" / "segmentations" / f"{name}.nii.gz")
    for args in (["--image", study / "ct.nii.gz", "--seg", tmp_path / "liver_segments.nii.gz"], [tmp_path / "s"]):
        line = one_line(netlm("analyze", *args, "--json", "-"))
        assert "Couinaud segments only (segment1, segment2, segment3" in line
        assert "--seg liver=PATH --seg lesion=PATH" in line
        assert 'lesion="liver_segment_1"' not in line  # the generic advice made a segment the lesion
    # with the total task's liver and the liver_vessels tumours, the segments are measured
    rep = analyze_json(
        "--image", str(study / "ct.nii.gz"), "--seg", str(study / "segmentations" / "liver.nii.gz"),
        "--seg", f"lesion={study / 'segmentations' / 'liver_tumor.nii.gz'}",
        "--seg", f"segments={tmp_path / 'liver_segments.nii.gz'}",
    )  # fmt: skip
    by_segment = {s["segment"]: s["liver_volume_ml"] for s in rep["segments"]}
    assert by_segment == {n: pytest.approx(np.count_nonzero(_couinaud() == n) * VOXEL_ML, abs=1e-6) for n in names}


def test_a_total_map_without_its_label_table_is_refused_with_its_own_labels(study, tmp_path):
    # TotalSegmentator v1 --ml (no table), or a map re-saved without its header extension: 1 spleen, 5 liver
    total = np.where(SPLEEN, 1, np.where(LIVER, 5, 0)).astype(np.uint8)
    nib.save(nib.Nifti1Image(total, lps_to_ras(AFF_LPS)), tmp_path / "total.nii.gz")
    line = one_line(netlm("analyze", "--image", study / "ct.nii.gz", "--seg", tmp_path / "total.nii.gz", "--json", "-"))
    assert f"{tmp_path / 'total.nii.gz'}: label values [5] have no role" in line
    assert "values present: [1, 5]" in line
    assert "--labels liver=5,spleen=1 for a TotalSegmentator 'total' map" in line
    rep = analyze_json(
        "--image", str(study / "ct.nii.gz"), "--seg", str(tmp_path / "total.nii.gz"), "--labels", "liver=5,spleen=1"
    )
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(LIVER) * VOXEL_ML, abs=1e-6)


def test_the_liver_vessels_map_beside_the_total_map_keeps_the_total_maps_liver(study, tmp_path):
    # TotalSegmentator --ml: the total map and the liver_vessels map, each with its label table; its liver_vessels
    # got no role (a --labels flag was offered for it) and is now the vessel the lesions are measured against
    ct = nib.load(study / "ct.nii.gz")
    with (DATA / "totalseg_total_v2_codes.csv").open() as fh:
        total_names = {int(row["label"]): row["structure"] for row in csv.DictReader(fh)}
    vessels = LIVER & (np.arange(SHAPE[1]) == 8)[None, :, None]
    tumours = np.where(TUMOURS[0] | TUMOURS[1], 2, np.where(vessels, 1, 0))
    maps = {
        "total": (np.where(SPLEEN, 1, np.where(LIVER, 5, 0)), total_names),
        "liver_vessels": (tumours, {1: "liver_vessels", 2: "liver_tumor"}),
    }
    args = ["--image", str(study / "ct.nii.gz")]
    for task, (values, names) in maps.items():
        header = ct.header.copy()
        header.set_data_dtype(np.uint8)
        img = nib.Nifti1Image(values.astype(np.uint8), ct.affine, header)
        img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _caret_xml(names).encode()))
        nib.save(img, tmp_path / f"{task}.nii.gz")
        args += ["--seg", str(tmp_path / f"{task}.nii.gz")]
    rep = analyze_json(*args)
    assert not [w for w in rep["warnings"] if "liver_vessels.nii.gz: 1 segment(s)/ROI(s) got no role" in w]
    roles = {
        r["name"]: r["role"] for r in rep["study"]["segment_roles"] if r["source"].endswith("liver_vessels.nii.gz")
    }
    assert roles == {"liver_vessels": "vessel", "liver_tumor": "lesion"}
    liver_ml = np.count_nonzero(LIVER) * VOXEL_ML
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)  # the vessels are not taken for liver
    tumour_ml = np.count_nonzero(TUMOURS[0] | TUMOURS[1]) * VOXEL_ML
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    assert rep["vascular_contact"]["vessels"] == ["liver vessels"]
    assert all(set(les["vessel_distances_mm"]) == {"liver vessels"} for les in rep["lesions"])

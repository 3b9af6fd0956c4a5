"""netlm check: finds exactly the planted wrong cells of a reported-burden CSV (and of a DICOM SR).

Studies are small NIfTI folders (ct.nii.gz + LiTS seg.nii.gz) on oblique,
anisotropic grids; each study's truth is computed here from its label map's
voxel counts and the spacing alone: liver = (label >= 1), tumour = (label == 2),
lesions = separated boxes.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from phantoms_verify import grid_affine, write_nifti
from rules_coverage import covers, user_rules

from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from netlm_imaging.verify.check import check_reported, check_values

SHAPE = (36, 32, 18)


def _study(folder, spacing, angles, lesion_boxes, seed):
    aff = grid_affine(SHAPE, spacing, angles, centre=(10.0 * seed, -5.0, 100.0))
    lab = np.zeros(SHAPE, np.uint8)
    lab[3:33, 3:29, 2:16] = 1
    for lo, size in lesion_boxes:
        lab[lo[0] : lo[0] + size[0], lo[1] : lo[1] + size[1], lo[2] : lo[2] + size[2]] = 2
    rng = np.random.default_rng(seed)
    img = np.where(lab == 2, 120.0, np.where(lab == 1, 60.0, -100.0)) + rng.normal(0, 5, SHAPE)
    folder.mkdir(parents=True)
    write_nifti(folder / "ct.nii.gz", img.astype(np.float32), aff)
    write_nifti(folder / "seg.nii.gz", lab, aff)
    vox_ml = float(np.prod(spacing)) / 1000.0
    liver = int((lab >= 1).sum()) * vox_ml
    tumour = int((lab == 2).sum()) * vox_ml
    return {
        "liver_volume_ml": liver,
        "tumor_volume_ml": tumour,
        "involvement_percent": 100.0 * tumour / liver,
        "lesion_count": len(lesion_boxes),
        "remnant_volume_ml": liver - tumour,
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    truths = {
        "studies/p1": _study(
            root / "studies/p1",
            (1.5, 1.6, 3.0),
            (0.0, 0.0, 12.0),
            [((6, 6, 4), (5, 5, 4)), ((20, 18, 9), (6, 4, 4))],
            1,
        ),
        "studies/p2": _study(root / "studies/p2", (2.0, 1.8, 2.5), (10.0, -6.0, 4.0), [((8, 8, 5), (8, 8, 6))], 2),
        "studies/p3": _study(
            root / "studies/p3",
            (1.7, 1.7, 4.0),
            (0.0, 5.0, -20.0),
            [((5, 5, 3), (3, 3, 3)), ((15, 15, 8), (4, 4, 4)), ((25, 6, 4), (4, 5, 3))],
            3,
        ),
    }
    return root, truths


def _write_csv(path, rows, extra_cols=()):
    cols = [
        "study",
        "liver_volume_ml",
        "tumor_volume_ml",
        "involvement_percent",
        "lesion_count",
        "remnant_volume_ml",
        *extra_cols,
    ]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def _planted(root, truths):
    """Reported values: the truths, some inside tolerance, and exactly four planted wrong cells."""
    t1, t2, t3 = truths["studies/p1"], truths["studies/p2"], truths["studies/p3"]
    rows = [
        {
            "study": "studies/p1",
            "liver_volume_ml": t1["liver_volume_ml"] + 0.8,  # within 1 mL
            "tumor_volume_ml": t1["tumor_volume_ml"] * 1.5 + 2.0,  # WRONG (beyond 1 mL and 2 %)
            "involvement_percent": t1["involvement_percent"],
            "lesion_count": 2,
            "remnant_volume_ml": "",
            "reader": "R1",
        },
        {
            "study": "studies/p2",
            "liver_volume_ml": t2["liver_volume_ml"] * 1.015,  # within 2 % (> 1 mL)
            "tumor_volume_ml": t2["tumor_volume_ml"],
            "involvement_percent": t2["involvement_percent"] + 1.2,  # WRONG
            "lesion_count": 2,  # WRONG (1 lesion)
            "remnant_volume_ml": t2["remnant_volume_ml"] - 0.9,
            "reader": "R2",
        },
        {
            "study": "studies/p3",
            "liver_volume_ml": "",
            "tumor_volume_ml": "",
            "involvement_percent": t3["involvement_percent"] - 0.4,  # within 0.5 points
            "lesion_count": 3,
            "remnant_volume_ml": t3["remnant_volume_ml"] * 0.9,  # WRONG
            "reader": "R1",
        },
    ]
    return _write_csv(root / "reported.csv", rows, extra_cols=("reader",))


def test_finds_exactly_the_planted_cells(cohort):
    root, truths = cohort
    res = check_reported(_planted(root, truths))
    bad = {(r.study, r.quantity) for r in res.rows if r.verdict == "DISCREPANT"}
    assert bad == {
        ("studies/p1", "tumor_volume_ml"),
        ("studies/p2", "involvement_percent"),
        ("studies/p2", "lesion_count"),
        ("studies/p3", "remnant_volume_ml"),
    }
    assert len(res.rows) == 12  # the empty cells are not checked
    assert all(r.verdict == "agree" for r in res.rows if (r.study, r.quantity) not in bad)
    for r in res.rows:  # recomputed values are the independent truths (the report rounds to 4-6 decimals)
        assert r.recomputed == pytest.approx(truths[r.study][r.quantity], rel=1e-6, abs=1e-4)
    assert any("reader" in n for n in res.notes)
    assert res.exit_code == 1


def test_cli_exit_codes_and_table(cohort, tmp_path, capsys):
    root, truths = cohort
    planted = _planted(root, truths)
    out = tmp_path / "disc.csv"
    assert main(["check", str(planted), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert printed.count("DISCREPANT") >= 4
    table = list(csv.DictReader(out.open()))
    assert sum(r["verdict"] == "DISCREPANT" for r in table) == 4
    assert set(table[0]) >= {
        "study",
        "quantity",
        "reported",
        "recomputed",
        "difference",
        "relative_difference",
        "verdict",
    }
    # all correct -> 0
    good = _write_csv(root / "good.csv", [{"study": s, **t} for s, t in truths.items()])
    assert main(["check", str(good)]) == 0
    # tight tolerances still accept the exact truths (the report rounds to 6 decimals)
    assert main(["check", str(good), "--abs-tol", "liver_volume_ml=0.001", "--rel-tol", "liver_volume_ml=0"]) == 0
    # tolerances change verdicts: with only the p3 remnant row, -10 % agrees at rel 0.11 but not at the default
    only_p3 = _write_csv(
        root / "p3.csv", [{"study": "studies/p3", "remnant_volume_ml": truths["studies/p3"]["remnant_volume_ml"] * 0.9}]
    )
    assert main(["check", str(only_p3)]) == 1
    assert main(["check", str(only_p3), "--rel-tol", "remnant_volume_ml=0.11"]) == 0
    capsys.readouterr()
    # unreadable study -> error verdict, exit 3
    missing = _write_csv(root / "missing.csv", [{"study": "studies/nope", "liver_volume_ml": 1000}])
    assert main(["check", str(missing)]) == 3
    assert "error" in capsys.readouterr().out


def test_tolerance_rule_abs_or_rel():
    rows = check_values(
        "s",
        {"liver_volume_ml": 1010.0, "tumor_volume_ml": 10.9, "lesion_count": 4.0},
        {"liver_volume_ml": 1000.0, "tumor_volume_ml": 10.0, "lesion_count": 3},
    )
    v = {r.quantity: r.verdict for r in rows}
    assert v == {"liver_volume_ml": "agree", "tumor_volume_ml": "agree", "lesion_count": "DISCREPANT"}
    rows = check_values("s", {"tumor_volume_ml": 12.0}, {"tumor_volume_ml": 10.0})
    assert rows[0].verdict == "DISCREPANT"
    assert rows[0].difference == pytest.approx(2.0)
    assert rows[0].relative_difference == pytest.approx(0.2)
    rows = check_values("s", {"tumor_volume_ml": 0.5}, {"tumor_volume_ml": 0.0})
    assert rows[0].verdict == "agree"  # within 1 mL; relative difference undefined
    assert rows[0].relative_difference is None


# (quantity, recomputed, reported): outside both shipped tolerances, inside the widened one
_ABS_CASES = [
    ("liver_volume_ml", 10.0, 11.5),  # 1.5 mL > 1 mL and 15 % > 2 %
    ("tumor_volume_ml", 10.0, 11.5),
    ("involvement_percent", 10.0, 11.0),  # 1 point > 0.5 and 10 % > 2 %
    ("lesion_count", 10.0, 11.0),  # exact by default
    ("remnant_volume_ml", 10.0, 11.5),
]
_REL_CASES = [
    ("liver_volume_ml", 1000.0, 1030.0),  # 30 mL > 1 mL and 3 % > 2 %
    ("tumor_volume_ml", 1000.0, 1030.0),
    ("involvement_percent", 50.0, 51.5),  # 1.5 points > 0.5 and 3 % > 2 %
    ("lesion_count", 100.0, 101.0),  # 1 % > 0
    ("remnant_volume_ml", 1000.0, 1030.0),
]


@covers(
    *(f"check.abs_tolerance.{q}" for q, _, _ in _ABS_CASES), *(f"check.rel_tolerance.{q}" for q, _, _ in _REL_CASES)
)
@pytest.mark.parametrize(
    ("kind", "quantity", "recomputed", "reported"),
    [("abs_tolerance", *c) for c in _ABS_CASES] + [("rel_tolerance", *c) for c in _REL_CASES],
)
def test_rules_tolerances_decide_the_verdict(tmp_path, kind, quantity, recomputed, reported):
    """Each [check] tolerance of the rules file turns a discrepant cell into an agreeing one when widened."""
    diff = reported - recomputed
    widened = 1.5 * diff if kind == "abs_tolerance" else 1.5 * diff / recomputed
    shipped = check_values("s", {quantity: reported}, {quantity: recomputed}, rules=user_rules(tmp_path))
    assert [r.verdict for r in shipped] == ["DISCREPANT"]
    changed = user_rules(tmp_path, {f"check.{kind}.{quantity}": widened}, name="wide.json")
    assert [r.verdict for r in check_values("s", {quantity: reported}, {quantity: recomputed}, rules=changed)] == [
        "agree"
    ]
    assert check_values("s", {quantity: reported}, {quantity: recomputed})[0].verdict == "DISCREPANT"  # shipped
    with pytest.raises(InputError, match=rf"'check.{kind}.{quantity}' must be (a finite number )?>= 0"):
        user_rules(tmp_path, {f"check.{kind}.{quantity}": -1.0}, name="bad.json")


def test_cli_rules_file_sets_the_tolerances_of_a_check(cohort, tmp_path):
    """``netlm check --rules`` reads the tolerances (and recomputes) with the file; a missing file is exit 2."""
    root, truths = cohort
    only_p3 = _write_csv(
        root / "p3r.csv",
        [{"study": "studies/p3", "remnant_volume_ml": truths["studies/p3"]["remnant_volume_ml"] * 0.9}],
    )
    assert main(["check", str(only_p3)]) == 1
    rules = tmp_path / "loose.toml"
    rules.write_text("[check.rel_tolerance]\nremnant_volume_ml = 0.11\n")
    assert main(["check", str(only_p3), "--rules", str(rules)]) == 0
    assert main(["check", str(only_p3), "--rules", str(tmp_path / "none.toml")]) == 2


def test_bad_csv_inputs(tmp_path, capsys):
    p = tmp_path / "nostudy.csv"
    p.write_text("case,liver_volume_ml\na,100\n")
    with pytest.raises(InputError, match="no 'study' column"):
        check_reported(p)
    p = tmp_path / "nonnum.csv"
    p.write_text("study,liver_volume_ml,tumor_volume_ml\na,100,\nb,200,twelve\n")
    with pytest.raises(InputError, match=r"row 3, column tumor_volume_ml: 'twelve' is not a number"):
        check_reported(p)
    p2 = tmp_path / "empty_study.csv"
    p2.write_text("study,liver_volume_ml\n,100\n")
    with pytest.raises(InputError, match="row 2 has an empty 'study' cell"):
        check_reported(p2)
    with pytest.raises(InputError, match="CSV not found"):
        check_reported(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="unknown quantity 'volume'"):
        check_reported(p2, abs_tol={"volume": 1.0})
    assert main(["check", str(p)]) == 3
    assert "row 3, column tumor_volume_ml" in capsys.readouterr().err
    assert main(["check", str(p2), "--abs-tol", "liver_volume_ml=abc"]) == 2
    assert main(["check", str(p2), "--rel-tol", "liver=0.1"]) == 2
    assert main(["check", str(p2), "--abs-tol", "liver_volume_ml=-1"]) == 2
    assert main(["check", str(p2), "--study", str(tmp_path)]) == 2  # --study is for SR input


def test_dicom_sr_input(tmp_path, capsys):
    """Reported values from a TID 1500 SR (written with highdicom) against its DICOM study."""
    from pydicom.sr.codedict import codes

    from netlm_imaging.report.dicom_sr import write_sr
    from tests.conftest import oblique_affine
    from tests.dicom_factory import write_image_series
    from tests.seg_factory import SegmentSpec, write_seg

    shape, spacing = (30, 28, 14), (0.9, 1.1, 2.5)
    aff = oblique_affine(spacing=spacing, angles_deg=(6.0, -4.0, 12.0), origin=(-60.0, 10.0, 200.0))
    liver = np.zeros(shape, bool)
    liver[3:27, 3:25, 2:12] = True
    lesion = np.zeros(shape, bool)
    lesion[8:14, 8:13, 4:8] = True
    hu = np.where(lesion, 120.0, np.where(liver, 60.0, -50.0))
    study = tmp_path / "study"
    files = write_image_series(study / "ct", hu, aff, modality="CT", seed=3)
    write_seg(
        study / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver & ~lesion),
            SegmentSpec(
                "Lesion 1",
                lesion,
                property_type=codes.SCT.Neoplasm,
                property_category=codes.SCT.MorphologicallyAbnormalStructure,
            ),
        ],
        seed=3,
    )
    vox = float(np.prod(spacing)) / 1000.0
    liver_ml, tumour_ml = int(liver.sum()) * vox, int(lesion.sum()) * vox
    reported = {
        "schema_version": "1.1",
        "tool": {"name": "netlm-imaging", "version": "0"},
        "study": {
            "modality": "CT",
            "image_source": "ct",
            "segmentation_sources": [],
            "grid": {"shape": list(shape), "spacing_mm": list(spacing)},
        },
        "liver": {"volume_ml": liver_ml},
        "tumor": {
            "intrahepatic_volume_ml": tumour_ml + 3.0,  # WRONG
            "extrahepatic_volume_ml": 0.0,
            "lesion_count": 1,
            "extrahepatic_lesion_count": 0,
        },
        "involvement_percent": 100 * tumour_ml / liver_ml,
        "remnant": {"non_tumorous_liver_volume_ml": liver_ml - tumour_ml},
        "lesions": [
            {
                "id": 1,
                "location": "intrahepatic",
                "volume_ml": tumour_ml,
                "centroid_lps_mm": [float(v) for v in (np.array([10.5, 10.0, 5.5, 1.0]) @ aff.T)[:3]],
                "longest_axial_diameter_mm": 7.0,
                "short_axis_diameter_mm": 5.0,
                "max_3d_diameter_mm": 11.0,
            }
        ],
        "classification": {"rules_version": "x", "rationale": []},
        "warnings": [],
        "method": {"volume": "voxel_count"},
    }
    sr = write_sr(reported, None, tmp_path / "reported_sr.dcm", image_datasets=files)
    code = main(["check", str(sr), "--study", str(study), "--out", str(tmp_path / "d.csv")])
    assert code == 1
    table = list(csv.DictReader((tmp_path / "d.csv").open()))
    bad = [r["quantity"] for r in table if r["verdict"] == "DISCREPANT"]
    assert bad == ["tumor_volume_ml"]
    assert {r["quantity"] for r in table} >= {"liver_volume_ml", "involvement_percent", "lesion_count"}
    assert main(["check", str(sr)]) == 2  # SR without --study
    assert "--study" in capsys.readouterr().err


def test_liver_only_study_is_not_checked_as_tumour_free(tmp_path, shared):
    # MANIFEST: dcmqi liver.dcm (one "Liver" segment) on ct-3slice: 70.362 mL; no lesion segment at all
    import shutil

    seg_dir = shared("dcmqi_ct3slice_seg", "data", "segmentations")
    study = tmp_path / "s1"
    shutil.copytree(seg_dir / "ct-3slice", study / "ct")
    shutil.copy(seg_dir / "liver.dcm", study / "liver.dcm")
    reported = tmp_path / "reported.csv"
    reported.write_text(
        "study,liver_volume_ml,tumor_volume_ml,involvement_percent,lesion_count\ns1,70.4,0,0,0\n", encoding="utf-8"
    )
    rows = {r.quantity: r for r in check_reported(reported).rows}
    assert rows["liver_volume_ml"].verdict == "agree"
    assert rows["liver_volume_ml"].recomputed == pytest.approx(70.362, abs=5e-4)
    for q in ("tumor_volume_ml", "involvement_percent", "lesion_count"):
        assert rows[q].verdict == "error", q  # a 0 from no lesion segmentation does not confirm a reported 0
        assert rows[q].recomputed is None
        assert "no lesion segmentation" in rows[q].note


def test_a_lesion_only_study_has_no_liver_to_check(tmp_path):
    lab = np.zeros(SHAPE, np.uint8)
    lab[6:11, 6:11, 4:8] = 1  # one lesion mask, no liver
    aff = grid_affine(SHAPE, (1.5, 1.6, 3.0), (0.0, 0.0, 12.0), centre=(0.0, -5.0, 100.0))
    study = tmp_path / "s1"
    study.mkdir()
    write_nifti(study / "ct.nii.gz", np.full(SHAPE, 60.0, np.float32), aff)
    write_nifti(study / "lesion.nii.gz", lab, aff)
    reported = tmp_path / "reported.csv"
    reported.write_text(
        "study,liver_volume_ml,tumor_volume_ml,involvement_percent\ns1,900,0.72,0.08\n", encoding="utf-8"
    )
    rows = {r.quantity: r for r in check_reported(reported).rows}
    assert rows["tumor_volume_ml"].recomputed == pytest.approx(100 * 1.5 * 1.6 * 3.0 / 1000)  # 5 x 5 x 4 voxels
    for q in ("liver_volume_ml", "involvement_percent"):
        assert rows[q].verdict == "error", q
        assert "no liver mask" in rows[q].note

"""``netlm check REPORT.json --study DIR``: a netlm report (a colleague's, an older run's) against
its study as it is now; a new version of the segmentation is named in the notes.

Truths: sample_data/netlm_demo/truth.json (make_sample.py's own voxel counts, no package code);
the removed lesion's voxels are counted here with scipy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy import ndimage

from netlm_imaging.cli import main
from tests.test_sr import write_phantom_study

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
TRUTH = json.loads((DEMO / "truth.json").read_text())


@pytest.fixture(scope="module")
def old_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("old_run")
    assert main(["analyze", str(DEMO), "--out", str(out)]) == 0
    return out / "report.json"


def _rows(out: str, study: str) -> dict[str, list[str]]:
    return {r.split()[1]: r.split() for r in out.splitlines() if r.startswith(study)}


def test_a_report_against_its_own_study_agrees_with_the_truth(old_report: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["check", str(old_report), "--study", str(DEMO)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out, str(DEMO)[-28:])
    assert set(rows) == {
        "liver_volume_ml",
        "tumor_volume_ml",
        "involvement_percent",
        "lesion_count",
        "remnant_volume_ml",
    }
    assert float(rows["liver_volume_ml"][2]) == pytest.approx(TRUTH["liver_volume_ml"], abs=1e-3)
    assert float(rows["tumor_volume_ml"][2]) == pytest.approx(TRUTH["intrahepatic_tumor_ml"], abs=1e-3)
    assert float(rows["lesion_count"][2]) == TRUTH["intrahepatic_lesion_count"]
    assert all(r[6] == "agree" for r in rows.values())
    assert "note:" not in out  # same inputs, tool and rules: nothing to say


def test_a_new_segmentation_version_is_discrepant_and_named(old_report: Path, tmp_path: Path, capsys) -> None:
    study = tmp_path / "study"
    shutil.copytree(DEMO, study)
    img = nib.load(study / "seg.nii.gz")
    labels = np.asarray(img.dataobj).astype(np.int16)
    comp, _ = ndimage.label(labels == 2, np.ones((3, 3, 3)))
    sizes = np.bincount(comp.ravel())[1:]
    smallest = int(np.argmin(sizes)) + 1
    labels[comp == smallest] = 1  # the reader of version 2 called the smallest lesion liver
    nib.save(nib.Nifti1Image(labels, img.affine, img.header), study / "seg_v2.nii.gz")
    (study / "seg.nii.gz").unlink()
    manifest = json.loads((study / "netlm.json").read_text())
    manifest["segmentations"][0] = "seg_v2.nii.gz"
    (study / "netlm.json").write_text(json.dumps(manifest))
    removed = [les for les in TRUTH["lesions"] if les["voxel_count"] == sizes[smallest - 1]]
    assert len(removed) == 1
    assert removed[0]["intrahepatic"]
    removed_ml = sizes[smallest - 1] * TRUTH["voxel_volume_ml"]
    capsys.readouterr()
    assert main(["check", str(old_report), "--study", str(study)]) == 1
    out = capsys.readouterr().out
    rows = _rows(out, str(study)[-28:])
    assert rows["lesion_count"][2:4] == [
        str(TRUTH["intrahepatic_lesion_count"]),
        str(TRUTH["intrahepatic_lesion_count"] - 1),
    ]
    assert rows["lesion_count"][6] == "DISCREPANT"
    assert float(rows["tumor_volume_ml"][3]) == pytest.approx(TRUTH["intrahepatic_tumor_ml"] - removed_ml, abs=1e-3)
    assert rows["liver_volume_ml"][6] == "agree"  # the lesion became liver: the total liver is unchanged
    assert "note: the report's segmentation ['seg.nii.gz', 'couinaud.nii.gz'] is now ['seg_v2.nii.gz'," in out


def test_report_input_errors(old_report: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["check", str(old_report)]) == 2
    assert "a report.json needs --study STUDY_DIR" in capsys.readouterr().err
    assert main(["check", str(old_report), "--study", str(DEMO), "--studies", str(tmp_path)]) == 2
    assert "--studies is for CSV input" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"liver_volume_ml": 856.3}')
    assert main(["check", str(other), "--study", str(DEMO)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{other}: not a netlm report" in err[0]
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": "1.1", "liver": ')
    assert main(["check", str(broken), "--study", str(DEMO)]) == 3
    assert f"{broken}: not a JSON file" in capsys.readouterr().err
    listed = tmp_path / "list.json"  # named .json: read as a report whatever it holds (it is no CSV)
    listed.write_text("[856.3, 22.3]")
    assert main(["check", str(listed), "--study", str(DEMO)]) == 3
    assert f"{listed}: not a netlm report" in capsys.readouterr().err
    empty = json.loads(old_report.read_text())
    empty["liver"]["volume_ml"] = None
    empty["tumor"]["lesions_segmented"] = False  # nothing the report measured
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    assert main(["check", str(tmp_path / "empty.json"), "--study", str(DEMO)]) == 3
    assert "the report measured none of" in capsys.readouterr().err


def test_a_report_of_another_study_is_refused(tmp_path: Path, capsys) -> None:
    """The report's StudyInstanceUID is not the --study folder's: exit 3 naming both."""
    a = write_phantom_study(tmp_path / "a")
    b = write_phantom_study(tmp_path / "b", seed=4)
    uid_a, uid_b = (str(pydicom.dcmread(s["files"][0], stop_before_pixels=True).StudyInstanceUID) for s in (a, b))
    assert uid_a != uid_b
    assert main(["analyze", str(tmp_path / "a"), "--out", str(tmp_path / "out_a")]) == 0
    capsys.readouterr()
    report = tmp_path / "out_a" / "report.json"
    assert main(["check", str(report), "--study", str(tmp_path / "b")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert uid_a in err[0]
    assert uid_b in err[0]
    assert "--study" in err[0]
    assert main(["check", str(report), "--study", str(tmp_path / "a")]) == 0


def test_a_report_saved_again_with_a_byte_order_mark_is_read(old_report: Path, tmp_path: Path, capsys) -> None:
    """A report.json opened and saved by a Windows editor starts with a UTF-8 BOM (and may lose its name)."""
    saved = tmp_path / "report_copy"
    saved.write_bytes(b"\xef\xbb\xbf" + old_report.read_bytes())
    capsys.readouterr()
    assert main(["check", str(saved), "--study", str(DEMO)]) == 0
    rows = _rows(capsys.readouterr().out, str(DEMO)[-28:])
    assert float(rows["liver_volume_ml"][2]) == pytest.approx(TRUTH["liver_volume_ml"], abs=1e-3)
    assert all(r[6] == "agree" for r in rows.values())


def test_a_report_of_another_tool_rules_and_grid_names_each(old_report: Path, tmp_path: Path, capsys) -> None:
    """The report as an older run wrote it (another tool and rules version, volume method and grid spacing, as
    edited here): each difference is one note, naming the report's value and the recomputation's."""
    old = json.loads(old_report.read_text())
    now = {"tool": old["tool"]["version"], "rules": old["classification"]["rules_version"]}
    old["tool"]["version"], old["classification"]["rules_version"] = "0.0.9", "netlm-rules-2025.4"
    old["method"]["volume"] = "fractional"
    spacing = old["study"]["grid"]["spacing_mm"]
    old["study"]["grid"]["spacing_mm"] = [1.0, 1.0, 1.0]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(old))
    capsys.readouterr()
    assert main(["check", str(older), "--study", str(DEMO)]) == 0  # the quantities are unchanged: they agree
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert sorted(notes) == sorted(
        [
            f"note: the report's tool version 0.0.9 is now {now['tool']}",
            f"note: the report's rules version netlm-rules-2025.4 is now {now['rules']}",
            "note: the report's volume method fractional is now voxel_count",
            f"note: the report's grid spacing (mm) [1.0, 1.0, 1.0] is now {spacing}",
        ]
    )

"""A study exported from PACS as one archive (.zip, .tar.gz) inside a cohort folder or given to analyze.

DESIGN.md's inputs are study folders, so an archive is refused, but never silently: in a cohort
folder it is a failed row (exit 4) whose error says how to unpack it, instead of being left out
of cohort.csv without a word; ``analyze`` says the same in one line (exit 3).
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from netlm_imaging.cli import main
from tests.test_batch import read_rows, write_study


def _zip_study(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}")


def test_archive_in_a_cohort_folder_is_a_failed_row_saying_how_to_unpack_it(tmp_path, capfd):
    root = tmp_path / "cohort"
    truth = write_study(root / "p1", 0)
    write_study(tmp_path / "p2", 1)
    _zip_study(tmp_path / "p2", root / "p2.zip")
    (root / "notes.txt").write_text("not a study")
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 4
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert sorted(rows) == ["p1", "p2.zip"]
    assert rows["p1"]["status"] == "ok"
    assert abs(float(rows["p1"]["liver_volume_ml"]) - truth["liver_volume_ml"]) < 1e-5
    assert rows["p2.zip"]["status"] == "failed"
    assert rows["p2.zip"]["error"] == (
        f"{root / 'p2.zip'}: a zip archive, not a study folder (netlm reads study folders); unpack it "
        f"(unzip '{root / 'p2.zip'}' -d '{root / 'p2'}'), then move the archive out of the cohort folder and "
        "pass the folder"
    )
    assert "Traceback" not in capfd.readouterr().err


def test_pseudonymized_archive_error_names_no_path(tmp_path):
    root = tmp_path / "cohort"
    write_study(tmp_path / "DOE_JOHN", 1)
    root.mkdir()
    _zip_study(tmp_path / "DOE_JOHN", root / "DOE_JOHN.zip")
    out = tmp_path / "out"
    key = tmp_path / "key.json"
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--pseudonymize", "--pseudonym-key", str(key)]) == 4
    text = (out / "cohort.csv").read_text() + "".join(p.read_text() for p in (out / "reports").iterdir())
    assert "DOE" not in text
    assert "a zip archive, not a study folder" in text


def test_analyze_of_a_tar_archive_is_one_line_with_the_unpack_command(tmp_path, capfd):
    write_study(tmp_path / "p3", 2)
    archive = tmp_path / "p3.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "p3", arcname="p3")
    assert main(["analyze", str(archive), "--out", str(tmp_path / "out")]) == 3
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"netlm: error: {archive}: a tar archive, not a study folder (netlm reads study folders); unpack it "
        f"(mkdir '{tmp_path / 'p3'}' && tar -xf '{archive}' -C '{tmp_path / 'p3'}'), then move the archive aside "
        "and pass the folder"
    ]


def test_link_to_a_missing_study_folder_is_a_failed_row_not_left_out(tmp_path):
    """A study linked from another disk that is not mounted: a failed row naming the target."""
    root = tmp_path / "cohort"
    write_study(root / "p1", 0)
    target = tmp_path / "unmounted" / "p2"
    (root / "p2").symlink_to(target, target_is_directory=True)
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 4
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert rows["p1"]["status"] == "ok"
    assert rows["p2"]["status"] == "failed"
    assert rows["p2"]["error"] == f"{target}: study folder not found; check the cohort listing or the path"


def test_the_unpack_command_in_the_error_works_for_a_name_with_a_quote(tmp_path, capfd):
    """An archive named after the patient, O'Brien: the command the error gives, run by a shell,
    unpacks it, and the folder it makes is then analysed."""
    import subprocess

    write_study(tmp_path / "src" / "ct", 2)
    archive = tmp_path / "O'Brien 2024.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for f in (tmp_path / "src" / "ct").iterdir():
            tf.add(f, arcname=f.name)
    assert main(["analyze", str(archive), "--out", str(tmp_path / "out")]) == 3
    [line] = capfd.readouterr().err.strip().splitlines()
    command = line.split("; unpack it (", 1)[1].rsplit("), then move the archive aside", 1)[0]
    subprocess.run(["sh", "-c", command], check=True)
    assert main(["analyze", str(tmp_path / "O'Brien 2024"), "--out", str(tmp_path / "out"), "--quiet"]) == 0

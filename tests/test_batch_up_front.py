"""Options of ``netlm batch`` that are wrong for every study are one error before any study starts.

A broken ``--rules`` file failed each study of the cohort in turn (exit 4, the same error in every
row); a ``--discrepancies`` table without its columns silently flagged nothing in index.html.
Both are now refused up front (exit 3, one line naming the file), and nothing is written.
"""

from __future__ import annotations

from netlm_imaging.cli import main
from tests.test_batch import write_study


def test_broken_rules_file_is_one_error_before_any_study(tmp_path, capfd):
    write_study(tmp_path / "cohort" / "s00", 0)
    write_study(tmp_path / "cohort" / "s01", 1)
    rules = tmp_path / "rules.json"
    rules.write_text('{"body": {"height_cm": [100, }')
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "cohort"), "--out", str(out), "--rules", str(rules)]) == 3
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"netlm: error: {rules}: rules file is not valid JSON")
    assert not out.exists()


def test_discrepancies_table_without_its_columns_is_refused(tmp_path, capfd):
    write_study(tmp_path / "cohort" / "s00", 0)
    table = tmp_path / "check.csv"
    table.write_text("folder,result\ns00,DISCREPANT\n")
    out = tmp_path / "out"
    code = main(["batch", str(tmp_path / "cohort"), "--out", str(out), "--html", "--discrepancies", str(table)])
    assert code == 3
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"netlm: error: --discrepancies {table}: no 'study' and 'verdict' columns (found ['folder', 'result']); "
        "give the table netlm check --out writes"
    ]
    assert not out.exists()


def test_study_folder_name_too_long_for_its_report_files_is_refused_up_front(tmp_path, capfd):
    """A 248-byte folder name cannot name ``reports/<id>.failed.json``: it stopped the batch midway
    with "File name too long" and a fix about the output folder; now one line before any work."""
    root = tmp_path / "cohort"
    write_study(root / "p1", 0)
    long_name = "é" * 124  # 248 bytes in UTF-8
    write_study(root / long_name, 1)
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 3
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"netlm: error: {root / long_name}: study id {'é' * 40}... is 248 bytes")
    assert "rename the folder, or list the cohort in a CSV with a shorter study_id column" in err[0]
    assert not out.exists()


def test_study_folder_name_of_200_bytes_is_analysed(tmp_path, capfd):
    """The limit is the longest id whose report files and their temporary siblings
    (``.<id>.failed.json.XXXXXXXX.tmp``, 226 bytes) fit a 255-byte file name: 200 bytes work."""
    root = tmp_path / "cohort"
    name = "é" * 100  # 200 bytes in UTF-8
    write_study(root / name, 1)
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 0, capfd.readouterr().err
    assert (out / "reports" / f"{name}.json").is_file()

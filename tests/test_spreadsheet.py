"""CSV tables as spreadsheets save them (netlm_imaging.spreadsheet): cohort lists and reported burdens.

Excel and LibreOffice in locales with a decimal comma save "CSV" separated by semicolons, with
numbers such as ``172,5``, CRLF line ends and a UTF-8 byte-order mark; "Unicode text" is
UTF-16 separated by tabs. The expected values are the ones written into each file here.
"""

from __future__ import annotations

import codecs
import json

import numpy as np
import pytest
from phantoms_verify import grid_affine, write_nifti

from netlm_imaging.batch.cohort import studies_from_csv
from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from netlm_imaging.spreadsheet import read_table


def _write(path, text, *, bom=True, encoding="utf-8", newline="\r\n"):
    data = text.replace("\n", newline).encode(encoding)
    if bom and encoding == "utf-8":
        data = codecs.BOM_UTF8 + data
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- the reader
@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("path;height_cm;weight_kg\np1;172,5;81,3\n", ";"),
        ("path\theight_cm\tweight_kg\np1\t172,5\t81,3\n", "\t"),
        ("sep=;\npath;height_cm;weight_kg\np1;172,5;81,3\n", ";"),
    ],
)
def test_semicolons_and_tabs_read_decimal_commas(tmp_path, text, delimiter):
    t = read_table(_write(tmp_path / "c.csv", text), ("path",))
    assert t.delimiter == delimiter
    assert t.decimal_comma
    assert t.header == ["path", "height_cm", "weight_kg"]
    ((line, row),) = t.rows
    assert row == {"path": "p1", "height_cm": "172.5", "weight_kg": "81.3"}
    assert line == (3 if text.startswith("sep=") else 2)  # the line in the file


def test_commas_keep_a_quoted_decimal_comma(tmp_path):
    t = read_table(_write(tmp_path / "c.csv", 'path,height_cm\np1,"172,5"\n', bom=False, newline="\n"), ("path",))
    assert t.delimiter == ","
    assert not t.decimal_comma
    assert t.rows == [(2, {"path": "p1", "height_cm": "172,5"})]


def test_text_columns_and_other_cells_are_not_numbers(tmp_path):
    text = "path;study_id;liver_condition;ki67_percent;note\nsite 1,2;12,5;cirrhosis;-2,5;1.234,5\n"
    t = read_table(_write(tmp_path / "c.csv", text), ("path",), text_columns=("path", "study_id"))
    ((_, row),) = t.rows
    assert row["path"] == "site 1,2"
    assert row["study_id"] == "12,5"
    assert row["ki67_percent"] == "-2.5"
    assert row["liver_condition"] == "cirrhosis"
    assert row["note"] == "1.234,5"


def test_utf16_unicode_text_and_quoted_line_breaks(tmp_path):
    p = tmp_path / "u.txt"
    text = 'study\tnote\ttumor_volume_ml\na\t"two\nlines"\t12,25\nb\t\t3\n'
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    t = read_table(p, ("study",))
    assert t.delimiter == "\t"
    assert t.rows == [
        (3, {"study": "a", "note": "two\nlines", "tumor_volume_ml": "12.25"}),
        (4, {"study": "b", "note": "", "tumor_volume_ml": "3"}),
    ]


def test_a_header_without_the_required_column_is_split_for_the_message(tmp_path):
    t = read_table(_write(tmp_path / "c.csv", "case;volume\na;1\n"), ("path",))
    assert t.header == ["case", "volume"]
    assert t.column("path") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cohort CSV not found"),
        ("path;x\np;\xe9\n".encode("cp1252"), "not UTF-8 text; save it as 'CSV UTF-8'"),
        (b"\r\n\r\n", "is empty"),
        (b'path,x\n"p,1\n', "check its quoting"),
    ],
)
def test_unreadable_tables_name_the_file_and_the_fix(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=message) as exc:
        read_table(p, ("path",), what="cohort CSV")
    assert str(p) in str(exc.value)


def test_the_required_column_decides_the_delimiter_before_the_cell_count(tmp_path):
    # split by commas this header has three cells and no "path"; split by semicolons, two and "Path"
    t = read_table(_write(tmp_path / "c.csv", "Path;remark, free, text\np1;a\n"), ("path",))
    assert t.delimiter == ";"
    assert t.header == ["Path", "remark, free, text"]
    assert t.column("path") == "Path"


def test_without_the_required_column_the_delimiter_splitting_most_is_taken(tmp_path):
    t = read_table(_write(tmp_path / "c.csv", "case\tvolume\tnote;x\na\t1\tb\n"), ("path",))
    assert t.delimiter == "\t"  # tabs give 3 cells, semicolons 2, commas 1
    assert t.header == ["case", "volume", "note;x"]


def test_a_sep_line_wins_over_the_header(tmp_path):
    # split by commas the header would hold "path"; Excel's sep= line says semicolons
    t = read_table(_write(tmp_path / "c.csv", "sep=;\npath;origin, path\np1;a,b\n"), ("path",))
    assert t.delimiter == ";"
    assert t.header == ["path", "origin, path"]
    assert t.rows == [(3, {"path": "p1", "origin, path": "a,b"})]


def test_blank_lines_short_rows_and_line_numbers(tmp_path):
    text = "\n\n\npath;age;note\np1;61\n\n;;\np2;70;x\n"
    p = _write(tmp_path / "c.csv", text, bom=False, newline="\n")
    t = read_table(p, ("path",))
    assert t.path == p
    assert t.header == ["path", "age", "note"]
    # a row shorter than the header has empty cells; blank rows are skipped, not the end
    lines = text.split("\n")
    assert t.rows == [
        (lines.index("p1;61") + 1, {"path": "p1", "age": "61", "note": ""}),
        (lines.index("p2;70;x") + 1, {"path": "p2", "age": "70", "note": "x"}),
    ]


def test_an_empty_file_and_a_folder_are_refused(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: the CSV is empty"):
        read_table(p, ("path",))
    with pytest.raises(InputError, match=r"cannot read the cohort CSV \(Is a directory\); check the file") as exc:
        read_table(tmp_path, ("path",), what="cohort CSV")
    assert str(tmp_path) in str(exc.value)


def test_a_name_with_a_backslash_that_exists_is_taken_as_written(tmp_path):
    from netlm_imaging.spreadsheet import table_path

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    assert table_path(tmp_path, "a\\b") == (tmp_path / "a" / "b").resolve()
    (tmp_path / "a\\b").mkdir()  # on Linux a folder may be named so
    assert table_path(tmp_path, "a\\b") == (tmp_path / "a\\b").resolve()
    assert table_path(tmp_path, "missing") == (tmp_path / "missing").resolve()


# --------------------------------------------------------------------------- through the commands
def _tiny_study(folder, seed):
    shape, spacing = (30, 28, 12), (1.4, 1.6, 3.0)
    aff = grid_affine(shape, spacing, (0.0, 8.0, -14.0), centre=(12.0 * seed, -4.0, 90.0))
    lab = np.zeros(shape, np.uint8)
    lab[3:27, 3:25, 2:10] = 1
    lab[8:14, 8:13, 4:8] = 2
    img = np.where(lab == 2, 120.0, np.where(lab == 1, 60.0, -100.0)).astype(np.float32)
    folder.mkdir(parents=True)
    write_nifti(folder / "ct.nii.gz", img, aff)
    write_nifti(folder / "seg.nii.gz", lab, aff)
    vox_ml = float(np.prod(spacing)) / 1000.0
    return {"liver_volume_ml": int((lab >= 1).sum()) * vox_ml, "tumor_volume_ml": int((lab == 2).sum()) * vox_ml}


def test_batch_reads_a_semicolon_cohort_with_decimal_commas(tmp_path):
    _tiny_study(tmp_path / "studies" / "p1", 1)
    csv_path = _write(
        tmp_path / "cohort.csv",
        "path;study_id;height_cm;weight_kg;symptoms;ki67_percent\nstudies/p1;P1;172,5;81,3;hormonal;2,5\n",
    )
    (study,) = studies_from_csv(csv_path)
    assert study.study_id == "P1"
    assert study.clinical["height_cm"] == "172.5"
    assert study.clinical["ki67_percent"] == "2.5"
    assert main(["batch", str(csv_path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "reports" / "P1.json").read_text())
    text = json.dumps(report)
    assert '"height_cm": {"value": 172.5' in text
    assert '"weight_kg": {"value": 81.3' in text
    assert '"ki67_percent": {"value": 2.5' in text


def test_a_decimal_comma_in_a_comma_separated_cohort_says_how_to_write_it(tmp_path, capsys):
    _tiny_study(tmp_path / "studies" / "p1", 1)
    csv_path = _write(tmp_path / "cohort.csv", 'path,height_cm\nstudies/p1,"172,5"\n', bom=False, newline="\n")
    assert main(["batch", str(csv_path), "--out", str(tmp_path / "out"), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert str(csv_path) in err
    assert "line 2" in err
    assert "height_cm" in err
    assert "decimal point (12.5)" in err
    assert "\n" not in err
    assert "Traceback" not in err


def test_check_reads_a_semicolon_table_of_reported_burdens(tmp_path):
    from netlm_imaging.verify.check import check_reported

    truth = _tiny_study(tmp_path / "studies" / "p1", 2)
    wrong = truth["tumor_volume_ml"] * 1.5 + 2.0
    text = f"study;liver_volume_ml;tumor_volume_ml\nstudies\\p1;{truth['liver_volume_ml']:.3f};{wrong:.3f}\n".replace(
        ".", ","
    )
    res = check_reported(_write(tmp_path / "reported.csv", text))
    verdicts = {r.quantity: r.verdict for r in res.rows}
    assert verdicts == {"liver_volume_ml": "agree", "tumor_volume_ml": "DISCREPANT"}
    by_q = {r.quantity: r for r in res.rows}
    assert by_q["tumor_volume_ml"].reported == pytest.approx(round(wrong, 3))
    assert by_q["liver_volume_ml"].recomputed == pytest.approx(truth["liver_volume_ml"], rel=1e-6)
    assert any("separated by semicolons" in n for n in res.notes)


def test_the_review_queue_reads_a_semicolon_discrepancies_table(tmp_path):
    import re

    from netlm_imaging.report.html import write_cohort_index

    (tmp_path / "reports").mkdir()
    disc = _write(tmp_path / "disc.csv", "study;quantity;verdict\ncohort/s2;liver_volume_ml;DISCREPANT\ns1;x;agree\n")
    rows = [{"study_id": s, "status": "ok", "warnings_count": "0"} for s in ("s1", "s2")]
    text = write_cohort_index(tmp_path, rows, discrepancies=disc).read_text()
    flags = dict(re.findall(r'<tr data-study="(\w+)" data-flags="(\d+)">', text))
    assert flags == {"s1": "0", "s2": "1"}


def test_a_cohort_written_on_windows_finds_its_folders(tmp_path):
    import csv as csv_module

    _tiny_study(tmp_path / "studies" / "p1", 1)
    csv_path = _write(tmp_path / "cohort.csv", "path,study_id\nstudies\\p1,P1\nC:\\data\\p2,P2\n", bom=False)
    p1, _p2 = studies_from_csv(csv_path)
    assert p1.path == (tmp_path / "studies" / "p1").resolve()  # the backslash separates folders
    assert main(["batch", str(csv_path), "--out", str(tmp_path / "out"), "--quiet"]) == 4  # P2 fails, P1 not
    with (tmp_path / "out" / "cohort.csv").open() as fh:
        rows = {r["study_id"]: r for r in csv_module.DictReader(fh)}
    assert rows["P1"]["status"] == "ok"
    assert rows["P2"]["status"] == "failed"
    assert "study folder not found (a Windows path: give the folder relative to the cohort CSV)" in rows["P2"]["error"]

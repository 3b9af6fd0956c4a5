"""A cohort CSV as a researcher's spreadsheet saves it: BOM, semicolons, CRLF, trailing empty rows,
a row pasted twice, and two rows that really disagree.

A row repeated with the same values is the same study: analysed once, with a warning naming both
lines. Two rows giving one study id different folders or clinical values are ambiguous: refused up
front, naming both lines and what differs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from netlm_imaging.batch import discover_cohort
from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from tests.test_batch import read_rows, write_study


def _excel(path: Path, lines: list[str]) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + "".join(f"{ln}\r\n" for ln in lines).encode("utf-8"))


def test_excel_csv_with_a_row_pasted_twice_runs_each_study_once(tmp_path, caplog):
    t1 = write_study(tmp_path / "p 1 é", 0)
    t2 = write_study(tmp_path / "p2", 1)
    cohort = tmp_path / "cohort.csv"
    _excel(cohort, ["path;ki67_percent", "p 1 é;2,5", "p2;", "p 1 é;2,5", ";", ";;", ""])
    with caplog.at_level(logging.WARNING):
        studies = discover_cohort(cohort)
    assert [s.study_id for s in studies] == ["p 1 é", "p2"]
    assert f"{cohort}: line 4 repeats line 2 (study 'p 1 é', same values); analysed once" in caplog.text
    out = tmp_path / "out"
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 0
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert sorted(rows) == ["p 1 é", "p2"]
    for sid, truth in (("p 1 é", t1), ("p2", t2)):
        assert float(rows[sid]["liver_volume_ml"]) == pytest.approx(truth["liver_volume_ml"], abs=1e-5)


def test_rows_that_disagree_about_one_study_are_refused_naming_both_lines(tmp_path):
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    clash = tmp_path / "clash.csv"
    _excel(clash, ["path;ki67_percent", "p1;2", "p2;3", "p1;5"])
    with pytest.raises(InputError) as err:
        discover_cohort(clash)
    assert str(err.value) == (
        f"{clash}: lines 2 and 4 both give study id 'p1', with other clinical values (ki67_percent); "
        "delete one of the rows or give each a unique study_id column value"
    )
    ids = tmp_path / "ids.csv"
    _excel(ids, ["path;study_id", "p1;A", "p2;A"])
    with pytest.raises(InputError) as err:
        discover_cohort(ids)
    assert str(err.value).startswith(
        f"{ids}: lines 2 and 3 both give study id 'A', with another folder ({tmp_path / 'p1'} vs {tmp_path / 'p2'})"
    )


def test_csv_name_in_nfc_finds_a_folder_copied_from_a_mac_in_nfd(tmp_path):
    """'Müller é' typed in a spreadsheet (NFC) names the folder a Mac copy wrote decomposed (NFD)."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Müller é")
    truth = write_study(tmp_path / "studies" / nfd, 0)
    cohort = tmp_path / "cohort.csv"
    _excel(cohort, ["path", unicodedata.normalize("NFC", "studies/Müller é")])
    [study] = discover_cohort(cohort)
    assert study.path == (tmp_path / "studies" / nfd).resolve()
    out = tmp_path / "out"
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 0
    [row] = read_rows(out / "cohort.csv")
    assert float(row["liver_volume_ml"]) == pytest.approx(truth["liver_volume_ml"], abs=1e-5)


def test_csv_name_matching_two_folders_by_normalisation_picks_neither(tmp_path):
    """Two folders that both spell the typed name in other Unicode forms: no guess between them."""
    import unicodedata

    fully = unicodedata.normalize("NFD", "Müller é")
    mixed = "Müller " + unicodedata.normalize("NFD", "é")  # ü composed, é decomposed
    assert len({fully, mixed, unicodedata.normalize("NFC", fully)}) == 3
    for name in (fully, mixed):
        (tmp_path / "studies" / name).mkdir(parents=True)
    cohort = tmp_path / "cohort.csv"
    _excel(cohort, ["path", unicodedata.normalize("NFC", "studies/Müller é")])
    [study] = discover_cohort(cohort)
    assert study.path.name == unicodedata.normalize("NFC", "Müller é")

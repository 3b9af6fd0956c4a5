"""Where a researcher puts ``batch --out``: the cohort folder itself, or a folder inside one study.

Neither is ambiguous, so both must work and ``--resume`` must keep every unchanged study: the output
folder's own files are no study (``reports/`` is not a study folder) and are not part of the study
that holds them (its fingerprint must not change because its outputs were written).
"""

from __future__ import annotations

from pathlib import Path

from netlm_imaging.cli import main
from tests.test_batch import read_rows, write_study


def _cohort(root: Path) -> None:
    for n in range(2):
        write_study(root / f"s{n:02d}", n)


def test_out_is_the_cohort_folder_and_reports_is_no_study(tmp_path):
    root = tmp_path / "cohort"
    _cohort(root)
    assert main(["batch", str(root), "--out", str(root), "--quiet"]) == 0
    assert main(["batch", str(root), "--out", str(root), "--quiet", "--resume"]) == 0
    rows = read_rows(root / "cohort.csv")
    assert [(r["study_id"], r["status"], r["resumed"]) for r in rows] == [
        ("s00", "ok", "true"),
        ("s01", "ok", "true"),
    ]
    assert sorted(p.name for p in (root / "reports").iterdir()) == ["s00.json", "s01.json"]


def test_out_inside_a_study_folder_does_not_change_that_studys_fingerprint(tmp_path):
    root = tmp_path / "cohort"
    _cohort(root)
    out = root / "s00" / "netlm out"
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--html"]) == 0
    first = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--html", "--resume"]) == 0
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert {s: r["resumed"] for s, r in rows.items()} == {"s00": "true", "s01": "true"}
    assert rows["s00"]["fingerprint"] == first["s00"]["fingerprint"]
    assert rows["s00"]["liver_volume_ml"] == first["s00"]["liver_volume_ml"]


def test_output_folder_moved_away_during_the_run_stops_it_instead_of_recreating_it(tmp_path):
    """Writing recreates a missing folder; a cohort.csv in a recreated folder would list studies
    whose reports went away with the old one. The run stops (exit 3 class) and the moved folder
    keeps a consistent cohort.csv."""
    import pytest

    from netlm_imaging.batch import discover_cohort, run_cohort
    from netlm_imaging.errors import OutputError

    root = tmp_path / "cohort"
    for n in range(4):
        write_study(root / f"s{n:02d}", n)
    out, moved = tmp_path / "out", tmp_path / "out.moved"
    seen: list[str] = []

    def move_after_two(row: dict) -> None:
        seen.append(row["study_id"])
        if len(seen) == 2:
            out.rename(moved)

    with pytest.raises(OutputError) as err:
        run_cohort(discover_cohort(root), out, jobs=1, on_row=move_after_two)
    assert str(err.value).startswith(f"{out}: the output folder was deleted, moved or replaced while the batch ran")
    assert str(err.value).endswith("The batch stopped; 3 of 4 studies had finished")
    assert not (out / "cohort.csv").exists()
    rows = read_rows(moved / "cohort.csv")
    assert [(r["study_id"], r["status"]) for r in rows] == [
        ("s00", "ok"),
        ("s01", "ok"),
        ("s02", "pending"),
        ("s03", "pending"),
    ]
    assert sorted(p.name for p in (moved / "reports").iterdir()) == ["s00.json", "s01.json"]

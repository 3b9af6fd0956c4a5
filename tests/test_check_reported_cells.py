"""``netlm check`` reads reported cells as a reviewer's spreadsheet writes them: thousands separators,
values rounded to the decimals shown (litres), and a value in another unit is named as such.

Truths: sample_data/netlm_demo/truth.json (computed by make_sample.py from its own voxel counts,
without the package): liver 856.32 mL, intrahepatic tumour 22.333 mL, involvement 2.608 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlm_imaging.cli import main
from netlm_imaging.verify.check import check_values, read_cell

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
TRUTH = json.loads((DEMO / "truth.json").read_text())


def _study(tmp_path: Path) -> Path:
    (tmp_path / "s1").symlink_to(DEMO, target_is_directory=True)
    return tmp_path


def _cells(out: str) -> list[list[str]]:
    """The rows of the console table (study, quantity, reported, recomputed, diff, rel, verdict, note...)."""
    return [line.split() for line in out.splitlines() if line.startswith("s1 ")]


def test_thousands_separators_are_read_where_unambiguous(tmp_path: Path, capsys) -> None:
    root = _study(tmp_path)
    mm3 = TRUTH["liver_volume_ml"] * 1000.0  # 856,320 mm3
    assert mm3 == pytest.approx(856320.0)
    (root / "comma.csv").write_text(
        'study,liver_volume_mm3\ns1,"856,320.0"\ns1,856 320\ns1,856\u2019320\ns1,"956,320.0"\n', encoding="utf-8"
    )
    assert main(["check", str(root / "comma.csv")]) == 1
    rows = _cells(capsys.readouterr().out)
    assert [r[2] for r in rows] == ["856.32", "856.32", "856.32", "956.32"]
    assert [r[6] for r in rows] == ["agree", "agree", "agree", "DISCREPANT"]
    # a table with decimal commas groups with points
    (root / "semi.csv").write_text("study;liver_volume_mm3\ns1;856.320,0\ns1;856\u00a0320,0\n", encoding="utf-8")
    assert main(["check", str(root / "semi.csv")]) == 0
    assert [r[6] for r in _cells(capsys.readouterr().out)] == ["agree", "agree"]


@pytest.mark.parametrize(
    ("table", "cell"),
    [
        ('study,liver_volume_mm3\ns1,"856,320"\n', "856,320"),  # 856320, or 856.320 with a decimal comma
        ('study,liver_volume_mm3\ns1,"856,320,0"\n', "856,320,0"),  # a decimal comma in a table of points
        ("study;liver_volume_mm3\ns1;856,320.0\n", "856,320.0"),  # a decimal point in a table of commas
        ('study,liver_volume_mm3\ns1,"85,6320.0"\n', "85,6320.0"),  # not groups of three
        ('study,liver_volume_mm3\ns1,"8,563,2000.0"\n', "8,563,2000.0"),
    ],
)
def test_ambiguous_or_malformed_grouping_is_refused(tmp_path: Path, capsys, table: str, cell: str) -> None:
    root = _study(tmp_path)
    (root / "r.csv").write_text(table, encoding="utf-8")
    assert main(["check", str(root / "r.csv")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"r.csv: row 2, column liver_volume_mm3: {cell!r} is not a number" in err


def test_a_value_rounded_to_the_decimals_shown_agrees(tmp_path: Path, capsys) -> None:
    root = _study(tmp_path)
    liver_l = TRUTH["liver_volume_ml"] / 1000.0  # 0.856 L: 0.9 L to one decimal, outside 2 % of 856 mL
    assert round(liver_l, 1) == 0.9
    assert abs(900.0 - TRUTH["liver_volume_ml"]) > 0.02 * TRUTH["liver_volume_ml"]
    (root / "l.csv").write_text("study,liver_volume_l\ns1,0.9\ns1,0.8\ns1,1\ns1,0.90\ns1,0.857\n", encoding="utf-8")
    assert main(["check", str(root / "l.csv")]) == 1
    rows = _cells(capsys.readouterr().out)
    # 0.9 rounds 0.856; 0.8 does not; 1 (no decimal written) states no rounding; 0.90 is +/- 0.005 L
    assert [r[6] for r in rows] == ["agree", "DISCREPANT", "DISCREPANT", "DISCREPANT", "agree"]
    assert "rounded as reported (+/- 50 mL)" in " ".join(rows[0])
    assert len(rows[4]) == 7  # 0.857 agrees within the tolerance itself: no note


def test_rounding_of_a_cell_follows_its_decimals_and_exponent() -> None:
    assert read_cell("0.9", "liver_volume_ml").half_step == pytest.approx(0.05)
    assert read_cell("1.25e3", "liver_volume_ml").half_step == pytest.approx(5.0)
    assert read_cell("22.30 mL", "tumor_volume_ml").half_step == pytest.approx(0.005)
    assert read_cell("900", "liver_volume_ml").half_step is None
    # the rule itself: within half the last decimal agrees, beyond it does not (rec 10, tol 1 mL / 2 %)
    at = check_values("s", {"tumor_volume_ml": 11.5}, {"tumor_volume_ml": 10.0}, rounding={"tumor_volume_ml": 1.5})
    beyond = check_values("s", {"tumor_volume_ml": 11.5}, {"tumor_volume_ml": 10.0}, rounding={"tumor_volume_ml": 1.4})
    assert [at[0].verdict, beyond[0].verdict] == ["agree", "DISCREPANT"]


def test_a_value_in_another_unit_is_discrepant_and_says_which_unit_it_fits(tmp_path: Path, capsys) -> None:
    root = _study(tmp_path)
    fraction = TRUTH["involvement_percent"] / 100.0  # 0.026 written in a percent column
    mm3 = TRUTH["intrahepatic_tumor_ml"] * 1000.0  # 22333 written in a mL column
    (root / "u.csv").write_text(
        f"study,involvement_percent,tumor_volume_ml\ns1,{fraction:.4f},{mm3:.0f}\n", encoding="utf-8"
    )
    assert main(["check", str(root / "u.csv")]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("s1 ")]
    assert "DISCREPANT  agrees if the reported value is a fraction (x 100)" in lines[0]
    assert "DISCREPANT  agrees if the reported value is mm3 (x 0.001)" in lines[1]
    # litres in a mL column (0.856 for 856.32 mL)
    (root / "l.csv").write_text(
        f"study,liver_volume_ml\ns1,{TRUTH['liver_volume_ml'] / 1000.0:.3f}\n", encoding="utf-8"
    )
    assert main(["check", str(root / "l.csv")]) == 1
    assert "DISCREPANT  agrees if the reported value is litres (x 1000)" in capsys.readouterr().out
    # a plainly wrong value gets no such note
    (root / "w.csv").write_text("study,involvement_percent\ns1,7.5\n", encoding="utf-8")
    assert main(["check", str(root / "w.csv")]) == 1
    assert "agrees if" not in capsys.readouterr().out


def test_a_burden_that_includes_the_extrahepatic_lesion_says_so(tmp_path: Path, capsys) -> None:
    """The demo has 5 intrahepatic lesions (22.33 mL) and 1 extrahepatic (1.43 mL): 6 lesions, 23.76 mL in all."""
    root = _study(tmp_path)
    total_ml = TRUTH["intrahepatic_tumor_ml"] + TRUTH["extrahepatic_tumor_ml"]
    total_n = TRUTH["intrahepatic_lesion_count"] + TRUTH["extrahepatic_lesion_count"]
    assert abs(total_ml - TRUTH["intrahepatic_tumor_ml"]) > 1.0  # outside the 1 mL tolerance
    (root / "t.csv").write_text(
        f"study,tumor_volume_ml,lesion_count\ns1,{total_ml:.2f},{total_n}\ns1,30,{total_n + 1}\n", encoding="utf-8"
    )
    assert main(["check", str(root / "t.csv")]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("s1 ")]
    assert (
        f"DISCREPANT  agrees with all lesions, extrahepatic ones included ({total_ml:.2f} mL); "
        "tumor_volume_ml is of the intrahepatic lesions" in lines[0]
    )
    assert f"DISCREPANT  agrees with all lesions, extrahepatic ones included ({total_n})" in lines[1]
    assert all("agrees" not in line for line in lines[2:])  # 30 mL and 7 lesions fit neither


def test_an_involvement_column_given_as_a_fraction_is_read_as_one(tmp_path: Path, capsys) -> None:
    """LiTS' tumour burden is a fraction of 1: 'Involvement (fraction)' 0.0261 is 2.61 %; a cell written '2.61%'
    in it is a percentage already."""
    root = _study(tmp_path)
    fraction = TRUTH["involvement_percent"] / 100.0
    (root / "f.csv").write_text(
        f"study,Involvement (fraction)\ns1,{fraction:.4f}\ns1,{TRUTH['involvement_percent']:.2f}%\ns1,0.05\n",
        encoding="utf-8",
    )
    assert main(["check", str(root / "f.csv")]) == 1
    out = capsys.readouterr().out
    rows = _cells(out)
    assert [float(r[2]) for r in rows] == pytest.approx([100 * float(f"{fraction:.4f}"), 2.61, 5.0])
    assert [r[6] for r in rows] == ["agree", "agree", "DISCREPANT"]
    assert "column Involvement (fraction) read as involvement_percent (x 100)" in out


def test_a_remnant_reported_as_the_future_liver_remnant_says_so(tmp_path: Path, capsys) -> None:
    """remnant_volume_ml is the non-tumorous liver (833.99 mL); a surgeon's 'remnant' is often the plan's FLR."""
    root = _study(tmp_path)
    out_dir = tmp_path / "out"
    assert main(["analyze", str(DEMO), "--out", str(out_dir)]) == 0
    flr = json.loads((out_dir / "report.json").read_text())["remnant"]["future_liver_remnant_ml"]
    non_tumorous = TRUTH["liver_volume_ml"] - TRUTH["intrahepatic_tumor_ml"]
    assert abs(flr - non_tumorous) > 0.02 * non_tumorous  # the FLR differs beyond the tolerance
    (root / "r.csv").write_text(f"study,remnant_volume_ml\ns1,{flr:.1f}\ns1,{non_tumorous:.1f}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(root / "r.csv")]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("s1 ")]
    assert f"DISCREPANT  agrees with the future liver remnant of the plan ({flr:.2f} mL)" in lines[0]
    assert lines[1].rstrip().endswith("agree")


def test_cells_as_a_reviewer_writes_them_with_a_label_and_a_decimal_comma(tmp_path: Path, capsys) -> None:
    """'tumour 22.3 ml', 'involvement 2.6 %', '22 cc', '5 lesions' and, quoted in a comma table as a
    spreadsheet of a decimal-comma locale writes it, '2,6 %' (one comma, not three digits after it:
    never a thousands separator). Truth: 22.33 mL, 2.608 %, 856.32 mL, 5 lesions."""
    root = _study(tmp_path)
    (root / "t.csv").write_text(
        "study,tumor_volume_ml,involvement_percent,liver_volume_ml,lesion_count\n"
        's1,tumour 22.3 ml,"2,6 %",0.856 L,5 lesions\n'
        "s1,22 cc,involvement: 2.6 %,856 cm3,n=5\n"
        's1,Tumour volume 32.3 mL,"26 %","856,32 ml",lesions 6\n',
        encoding="utf-8",
    )
    assert main(["check", str(root / "t.csv")]) == 1
    out = capsys.readouterr().out
    rows = _cells(out)
    assert [float(r[2]) for r in rows] == pytest.approx(
        [22.3, 2.6, 856.0, 5, 22.0, 2.6, 856.0, 5, 32.3, 26.0, 856.32, 6]
    )  # 0.856 L is 856 mL; '2,6' is 2.6, not 26
    assert [r[6] for r in rows] == ["agree"] * 8 + ["DISCREPANT", "DISCREPANT", "agree", "DISCREPANT"]
    assert "row 2, column tumor_volume_ml: 'tumour 22.3 ml' read as 22.3 (the label 'tumour')" in out
    assert "row 2, column involvement_percent: '2,6 %' read as 2.6 (a decimal comma)" in out


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("liver 22.3 ml", "is labelled 'liver', which is not tumor_volume_ml"),  # another quantity's value
        ("~22 ml", "is not a number"),  # an estimate
        ("1,043 ml", "is not a number"),  # 1043, or 1.043 with a decimal comma
    ],
)
def test_a_cell_labelled_as_another_quantity_or_ambiguous_is_refused(tmp_path: Path, capsys, cell, said) -> None:
    root = _study(tmp_path)
    (root / "t.csv").write_text(f'study,tumor_volume_ml\ns1,"{cell}"\n', encoding="utf-8")
    assert main(["check", str(root / "t.csv")]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"t.csv: row 2, column tumor_volume_ml: {cell!r} {said}" in err


def test_values_exactly_at_the_tolerance_agree() -> None:
    """Shipped tolerances (docs/verify.md, rules [check]): 1 mL / 0.5 points absolute, 2 % relative, count exact.
    Each pair is exactly at its tolerance in decimal, and beyond it in binary floating point
    (2.43 - 1.43 is 1.0000000000000002; 856.3 x 1.02 = 873.426 is a little more than 2 % above): a cell
    written at the tolerance still agrees."""
    reported = {"tumor_volume_ml": 2.43, "involvement_percent": 1.33, "liver_volume_ml": 873.426, "lesion_count": 5.0}
    recomputed = {"tumor_volume_ml": 1.43, "involvement_percent": 0.83, "liver_volume_ml": 856.3, "lesion_count": 5}
    assert reported["tumor_volume_ml"] - recomputed["tumor_volume_ml"] > 1.0  # the premise: binary is beyond
    assert reported["involvement_percent"] - recomputed["involvement_percent"] > 0.5
    assert (reported["liver_volume_ml"] - recomputed["liver_volume_ml"]) / recomputed["liver_volume_ml"] > 0.02
    assert [r.verdict for r in check_values("s", reported, recomputed)] == ["agree"] * 4
    beyond = {"tumor_volume_ml": 2.4301, "involvement_percent": 1.3301, "liver_volume_ml": 873.44, "lesion_count": 6.0}
    assert [r.verdict for r in check_values("s", beyond, recomputed)] == ["DISCREPANT"] * 4

"""``netlm check`` on TID 1500 SRs written by other tools (highdicom, as a third-party writer would).

Phantom: the CT series + SEG of tests/test_sr.py (liver box, two lesion spheres; truth from voxel
counts and the spacing, computed there independently of the package). The SRs are built here with
highdicom alone, volumes in mm3, the way another tool reports them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements
from netlm_imaging.verify.check import check_sr
from tests.test_sr import write_phantom_study

MM3 = hd.sr.CodedConcept("mm3", "UCUM", "cubic millimeter")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("foreign_sr")
    d = write_phantom_study(root / "study")
    d["root"] = root / "study"
    d["evidence"] = [pydicom.dcmread(f, stop_before_pixels=True) for f in d["files"]]
    d["evidence"].append(pydicom.dcmread(d["seg"], stop_before_pixels=True))
    return d


def _save(study: dict, groups: list, path: Path) -> Path:
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=study["evidence"],
        content=content,
        series_instance_uid=hd.UID(),
        series_number=7,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    sr.save_as(path)
    return path


def _liver_group(volume_mm3: float) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="Liver", uid=hd.UID()),
        finding_type=codes.SCT.Liver,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=volume_mm3, unit=MM3)],
    )


def test_an_sr_without_lesion_groups_reports_no_lesion_count(study: dict, tmp_path: Path) -> None:
    """A liver-volume-only SR says nothing about lesions: no 'lesion_count 0' cell to be DISCREPANT."""
    truth = study["truth"]
    sr = _save(study, [_liver_group(truth["liver_volume_ml"] * 1000.0)], tmp_path / "liver_only.dcm")
    got = read_sr_measurements(sr)
    assert got["liver_volume_ml"] == pytest.approx(truth["liver_volume_ml"], rel=1e-9)  # mm3 -> mL
    assert got["lesion_count"] is None
    assert got["tumor_volume_ml"] is None
    result = check_sr(sr, study["root"])
    assert [(r.quantity, r.verdict) for r in result.rows] == [("liver_volume_ml", "agree")]
    assert result.rows[0].recomputed == pytest.approx(truth["liver_volume_ml"], rel=1e-9)
    assert main(["check", str(sr), "--study", str(study["root"])]) == 0


def test_groups_of_one_tracking_uid_are_one_lesion(study: dict, tmp_path: Path) -> None:
    """Each lesion as a volumetric group (volume, mm3) + a planar group (long axis) sharing the tracking UID."""
    truth = study["truth"]
    seg = study["evidence"][-1]
    frame_uid = study["evidence"][0].FrameOfReferenceUID
    groups: list = [_liver_group(truth["liver_volume_ml"] * 1000.0)]
    long_axes = (9.5, 6.25)
    for n, (vol_ml, axis_mm) in enumerate(zip(truth["lesion_volumes_ml"], long_axes), start=1):
        uid = hd.UID()
        sites = [hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)]
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"met {n}", uid=uid),
                finding_type=codes.SCT.Neoplasm,
                finding_sites=sites,
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID,
                    sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=n + 1,
                    source_series=hd.sr.SourceSeriesForSegmentation(seg.ReferencedSeriesSequence[0].SeriesInstanceUID),
                ),
                measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=vol_ml * 1000.0, unit=MM3)],
            )
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"met {n}", uid=uid),
                finding_type=codes.SCT.Neoplasm,
                finding_sites=sites,
                referenced_region=hd.sr.ImageRegion3D(
                    graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
                    graphic_data=np.array([[0.0, 0.0, 0.0], [axis_mm, 0.0, 0.0]]),
                    frame_of_reference_uid=frame_uid,
                ),
                measurements=[hd.sr.Measurement(name=codes.SCT.LongAxis, value=axis_mm, unit=codes.UCUM.Millimeter)],
            )
        )
    sr = _save(study, groups, tmp_path / "two_groups_per_lesion.dcm")
    got = read_sr_measurements(sr)
    assert got["lesion_count"] == 2
    assert sorted(les["volume_ml"] for les in got["lesions"]) == pytest.approx(truth["lesion_volumes_ml"])
    assert [les["longest_axial_diameter_mm"] for les in got["lesions"]] == list(long_axes)
    assert all(les["referenced_segment"] is not None for les in got["lesions"])
    assert got["tumor_volume_ml"] == pytest.approx(truth["tumor_volume_ml"])
    assert got["involvement_percent"] == pytest.approx(truth["involvement_percent"])
    rows = {r.quantity: r for r in check_sr(sr, study["root"]).rows}
    assert {q: r.verdict for q, r in rows.items()} == dict.fromkeys(
        ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "lesion_count"), "agree"
    )
    # the SR states neither the tumour volume nor the involvement: their cells say how they were derived
    assert got["derived"].keys() == {"tumor_volume_ml", "involvement_percent"}
    assert rows["tumor_volume_ml"].note.startswith("derived: the sum of the SR's intrahepatic lesion volumes")
    assert rows["involvement_percent"].note.startswith("derived: 100 x")
    assert rows["liver_volume_ml"].note == ""


def test_spreadsheet_headers_in_any_case_and_volume_units(study: dict, tmp_path: Path) -> None:
    """'Study', 'Liver_Volume_mL', 'tumour_volume_mm3': unambiguous headers a spreadsheet user writes."""
    truth = study["truth"]
    table = study["root"].parent / "reported.csv"  # the study column is relative to the table
    table.write_text(
        "Study;Liver_Volume_mL;tumour_volume_mm3;Lesion_Count;tumor_volume\n"
        f"study;{truth['liver_volume_ml']:.4f};{truth['tumor_volume_ml'] * 1000:.1f};2;12\n"
        f"study;{truth['liver_volume_ml']:.4f};{truth['tumor_volume_ml'] * 1000 + 3000:.1f};2;12\n",
        encoding="utf-8",
    )
    from netlm_imaging.verify.check import check_reported

    result = check_reported(table)
    rows = [(r.quantity, r.verdict) for r in result.rows]
    assert rows == [
        ("liver_volume_ml", "agree"),
        ("tumor_volume_ml", "agree"),
        ("lesion_count", "agree"),
        ("liver_volume_ml", "agree"),
        ("tumor_volume_ml", "DISCREPANT"),
        ("lesion_count", "agree"),
    ]
    tumour = [r for r in result.rows if r.quantity == "tumor_volume_ml"]
    assert tumour[0].reported == pytest.approx(truth["tumor_volume_ml"], abs=1e-4)  # mm3 -> mL
    assert tumour[1].difference == pytest.approx(3.0, abs=1e-3)  # 3000 mm3 too much = 3 mL
    assert any("tumour_volume_mm3 read as tumor_volume_ml" in n for n in result.notes)
    assert any("not checked (unknown): tumor_volume" in n for n in result.notes)  # no unit: not guessed


def test_two_columns_of_one_quantity_are_refused(study: dict, tmp_path: Path, capsys) -> None:
    table = tmp_path / "reported.csv"
    table.write_text("study,liver_volume_ml,liver_volume_cm3\nstudy,21.2,21.2\n", encoding="utf-8")
    assert main(["check", str(table)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(table) in err[0]
    assert "'liver_volume_ml' and 'liver_volume_cm3'" in err[0]
    assert "keep one" in err[0]


def test_a_lesion_sited_in_a_liver_segment_is_intrahepatic(study: dict, tmp_path: Path) -> None:
    """Finding sites 'Segment VI of liver' (a local code) and the legacy SRT Liver are the liver; a lung is not."""
    truth = study["truth"]
    sites = [
        hd.sr.CodedConcept("SEG6", "99LOCAL", "Segment VI of liver"),
        hd.sr.CodedConcept("T-62000", "SRT", "Liver"),
        codes.SCT.Lung,
    ]
    volumes = [*truth["lesion_volumes_ml"], 4.0]
    groups: list = [_liver_group(truth["liver_volume_ml"] * 1000.0)]
    for n, (site, vol_ml) in enumerate(zip(sites, volumes), start=1):
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"finding {n}"),
                finding_type=codes.SCT.Neoplasm,
                finding_sites=[hd.sr.FindingSite(anatomic_location=site)],
                measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=vol_ml * 1000.0, unit=MM3)],
            )
        )
    got = read_sr_measurements(_save(study, groups, tmp_path / "sites.dcm"))
    assert [les["location"] for les in got["lesions"]] == ["intrahepatic", "intrahepatic", "extrahepatic"]
    assert got["lesion_count"] == 2
    assert got["tumor_volume_ml"] == pytest.approx(truth["tumor_volume_ml"])


def test_a_colleagues_cohort_csv_is_checked_as_it_is(tmp_path: Path, capsys) -> None:
    """netlm batch's own cohort.csv (study_id, intrahepatic_tumor_ml, ...) in another folder, with --studies."""
    import csv

    from tests.test_check import _study

    cohort = tmp_path / "cohort"
    truths = {
        "p1": _study(cohort / "p1", (1.5, 1.6, 3.0), (0.0, 0.0, 12.0), [((6, 6, 4), (5, 5, 4))], 1),
        "p2": _study(cohort / "p2", (2.0, 1.8, 2.5), (10.0, -6.0, 4.0), [((8, 8, 5), (8, 8, 6))], 2),
    }
    out = tmp_path / "colleague_run"
    assert main(["batch", str(cohort), "--out", str(out), "-j", "1"]) == 0
    table = out / "cohort.csv"
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [r["study_id"] for r in rows] == ["p1", "p2"]
    # plant one wrong cell: p2's tumour volume + 5 mL
    rows[1]["intrahepatic_tumor_ml"] = f"{truths['p2']['tumor_volume_ml'] + 5.0:.4f}"
    with table.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    capsys.readouterr()
    disc = tmp_path / "d.csv"
    assert main(["check", str(table), "--studies", str(cohort), "--out", str(disc)]) == 1
    got = list(csv.DictReader(disc.open(encoding="utf-8")))
    checked = {(r["study"], r["quantity"]) for r in got}
    for sid in ("p1", "p2"):
        for q in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "lesion_count", "remnant_volume_ml"):
            assert (sid, q) in checked
    bad = [(r["study"], r["quantity"]) for r in got if r["verdict"] != "agree"]
    assert bad == [("p2", "tumor_volume_ml")]
    p2 = next(r for r in got if r["study"] == "p2" and r["quantity"] == "tumor_volume_ml")
    assert float(p2["recomputed"]) == pytest.approx(truths["p2"]["tumor_volume_ml"], rel=1e-5)
    # without --studies the paths are relative to the CSV's folder, where the studies are not
    assert main(["check", str(table)]) == 3
    assert main(["check", str(table), "--studies", str(tmp_path / "nowhere")]) == 2
    assert "--studies" in capsys.readouterr().err


def test_an_sr_checked_against_another_study_is_refused(study: dict, tmp_path: Path, capsys) -> None:
    """The SR's StudyInstanceUID is not the --study folder's: exit 3 naming both, not a table of discrepancies."""
    other = write_phantom_study(tmp_path / "other", seed=4)
    other_uid = str(pydicom.dcmread(other["files"][0], stop_before_pixels=True).StudyInstanceUID)
    sr_uid = str(study["evidence"][0].StudyInstanceUID)
    assert other_uid != sr_uid
    sr = _save(study, [_liver_group(study["truth"]["liver_volume_ml"] * 1000.0)], tmp_path / "sr.dcm")
    assert main(["check", str(sr), "--study", str(tmp_path / "other")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(sr) in err[0]
    assert sr_uid in err[0]
    assert other_uid in err[0]
    assert "--study" in err[0]
    assert main(["check", str(sr), "--study", str(study["root"])]) == 0  # its own study


def test_a_table_row_of_another_study_is_an_error_not_a_discrepancy(study: dict, tmp_path: Path, capsys) -> None:
    """A cohort table (cohort.csv's study_instance_uid column) whose row names another StudyInstanceUID than its
    folder's (rows swapped, a folder reused): its cells are errors naming both UIDs, exit 3; the row of the
    folder's own study is checked as usual against the phantom's truth."""
    (tmp_path / "s").symlink_to(study["root"], target_is_directory=True)
    uid = str(study["evidence"][0].StudyInstanceUID)
    other = "1.2.826.0.1.3680043.8.498.1"
    truth = study["truth"]
    table = tmp_path / "t.csv"
    table.write_text(
        "study_id,study_instance_uid,liver_volume_ml,intrahepatic_tumor_ml\n"
        f"s,{uid},{truth['liver_volume_ml']:.3f},{truth['tumor_volume_ml']:.3f}\n"
        f"s,{other},{truth['liver_volume_ml'] + 40:.3f},{truth['tumor_volume_ml']:.3f}\n",
        encoding="utf-8",
    )
    disc = tmp_path / "d.csv"
    assert main(["check", str(table), "--out", str(disc)]) == 3
    out = capsys.readouterr().out
    got = [(r["verdict"], r["note"]) for r in csv.DictReader(disc.open(encoding="utf-8"))]
    assert [v for v, _ in got] == ["agree", "agree", "error", "error"]
    assert all(f"row 3 describes the study {other}, but s is the study {uid}" in n for _, n in got[2:])
    assert "study_instance_uid" not in out.partition("not checked")[2]  # the column is read, not ignored


def test_cells_as_a_spreadsheet_shows_them(study: dict, capsys) -> None:
    """'3,64 %', '770,4 mm3', '21,17 mL' in a semicolon table (Excel, decimal-comma locale, unit formats)."""
    truth = study["truth"]
    table = study["root"].parent / "formatted.csv"
    liver = f"{truth['liver_volume_ml']:.4f}".replace(".", ",")
    tumour_mm3 = f"{truth['tumor_volume_ml'] * 1000:.1f}".replace(".", ",")
    inv = f"{truth['involvement_percent']:.3f}".replace(".", ",")
    table.write_text(
        f"study;liver_volume_ml;tumor_volume_ml;involvement_percent\nstudy;{liver} mL;{tumour_mm3} mm3;{inv} %\n",
        encoding="utf-8",
    )
    from netlm_imaging.verify.check import check_reported

    rows = {r.quantity: r for r in check_reported(table).rows}
    assert {q: r.verdict for q, r in rows.items()} == dict.fromkeys(
        ("liver_volume_ml", "tumor_volume_ml", "involvement_percent"), "agree"
    )
    assert rows["tumor_volume_ml"].reported == pytest.approx(truth["tumor_volume_ml"], abs=1e-4)  # mm3 -> mL
    assert rows["involvement_percent"].reported == pytest.approx(truth["involvement_percent"], abs=1e-3)
    # a length where a volume is reported: refused, naming the row and column
    table.write_text("study,tumor_volume_ml\nstudy,12 mm\n", encoding="utf-8")
    assert main(["check", str(table)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "row 2, column tumor_volume_ml: '12 mm' is not a number" in err[0]


def test_check_and_compare_accept_the_study_folder_choices(study: dict, tmp_path: Path, capsys) -> None:
    """A study folder with two SEGs: the message's --seg-choice is an option check and compare accept."""
    import shutil

    import highdicom as hd

    folder = tmp_path / "s1"
    shutil.copytree(study["root"], folder)
    copy = pydicom.dcmread(folder / "seg" / "seg.dcm")
    copy.SOPInstanceUID, copy.SeriesInstanceUID = hd.UID(), hd.UID()
    copy.save_as(folder / "seg" / "seg_copy.dcm")
    table = tmp_path / "reported.csv"
    table.write_text(f"study,liver_volume_ml\ns1,{study['truth']['liver_volume_ml']:.4f}\n", encoding="utf-8")
    from netlm_imaging.verify.check import check_reported

    row = check_reported(table).rows[0]
    assert row.verdict == "error"
    assert "--seg-choice" in row.note
    capsys.readouterr()
    assert main(["check", str(table), "--seg-choice", "1"]) == 0
    assert "1 agree" in capsys.readouterr().out
    # compare: the same study as its own follow-up, the follow-up folder holding the two SEGs
    args = ["compare", str(study["root"]), str(folder), "--json", "-"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "--seg-choice" in err
    assert "netlm analyze --seg-choice" not in err  # compare accepts it itself
    assert main([*args, "--seg-choice", "1"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in out["lesions"]] == ["matched", "matched"]
    assert out["tumor"]["change_ml"] == 0.0
    assert out["tumor"]["baseline_intrahepatic_volume_ml"] == pytest.approx(study["truth"]["tumor_volume_ml"], abs=1e-4)


def test_headers_with_the_unit_in_brackets_and_a_table_with_nothing_to_check(study: dict, capsys) -> None:
    """'Tumor volume (mL)', 'Involvement (%)' are read; a table whose columns hold nothing checkable exits 3."""
    truth = study["truth"]
    table = study["root"].parent / "bracketed.csv"
    table.write_text(
        "study,Liver volume (cm3),Tumour volume [mm3],Tumour burden (%),Number of lesions\n"
        f"study,{truth['liver_volume_ml']:.4f},{truth['tumor_volume_ml'] * 1000:.1f},"
        f"{truth['involvement_percent']:.4f},2\n",
        encoding="utf-8",
    )
    from netlm_imaging.verify.check import check_reported

    rows = {r.quantity: r for r in check_reported(table).rows}
    assert {q: r.verdict for q, r in rows.items()} == dict.fromkeys(
        ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "lesion_count"), "agree"
    )
    assert rows["tumor_volume_ml"].reported == pytest.approx(truth["tumor_volume_ml"], abs=1e-4)
    for text in ("study,Foo,Tumor volume\nstudy,1,2\n", "study,tumor_volume_ml\nstudy,\n"):
        table.write_text(text, encoding="utf-8")
        assert main(["check", str(table)]) == 3  # not "0 cells, 0 DISCREPANT": exit 0 would read as a pass
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert str(table) in err[0]
        assert "nothing to check" in err[0] or "no column to check" in err[0]


def test_the_review_queue_finds_studies_of_a_discrepancy_table_written_on_windows(tmp_path: Path) -> None:
    """A check table whose study cells are Windows paths ('studies\\\\p1') flags the batch study 'p1'."""
    from netlm_imaging.report.html import _read_discrepant

    table = tmp_path / "d.csv"
    table.write_text(
        "study,quantity,verdict\nstudies\\p1,tumor_volume_ml,DISCREPANT\nstudies/p2,lesion_count,agree\n"
        "cohort/p3/,liver_volume_ml,DISCREPANT\n",
        encoding="utf-8",
    )
    found = _read_discrepant(table)
    assert {"p1", "p3"} <= found
    assert "p2" not in found


def test_a_study_on_several_rows_is_analysed_once(study: dict) -> None:
    """A reader study: one row per reader for the same study; each row is checked, the study analysed once."""
    from netlm_imaging.api import analyze
    from netlm_imaging.verify.check import check_reported

    truth = study["truth"]
    table = study["root"].parent / "readers.csv"
    table.write_text(
        "study,reader,tumor_volume_ml\n"
        f"study,R1,{truth['tumor_volume_ml']:.4f}\nstudy,R2,{truth['tumor_volume_ml'] + 2:.4f}\n./study,R3,0.77\n",
        encoding="utf-8",
    )
    calls = []

    def counted(folder, **kw):
        calls.append(folder)
        return analyze(folder, **kw)

    rows = check_reported(table, analyze=counted).rows
    assert [r.verdict for r in rows] == ["agree", "DISCREPANT", "agree"]
    assert rows[1].difference == pytest.approx(2.0, abs=1e-3)
    assert len(calls) == 1

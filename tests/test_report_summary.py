"""The console summary (StudyReport.summary): type, plan and PET numbers are shown.

The PET study is a CT + SEG (liver, one lesion) and a uniform PET series in the
same frame of reference; its SUVbw is computed here from the QIBA formula with
the values written into the headers (pet_factory defaults: 70 kg, 150 MBq,
injection 10:00:00, series 11:00:00, Ga-68 half-life 4069.8 s).
"""

from __future__ import annotations

import json

import numpy as np
from conftest import ROOT, oblique_affine
from dicom_factory import deterministic_uid, write_image_series
from pet_factory import write_pet_series
from pydicom.sr.codedict import codes
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main

DEMO = ROOT / "sample_data" / "netlm_demo"


def test_summary_shows_the_mahuron_type_and_the_plan_of_the_report(tmp_path, capsys):
    assert main(["analyze", str(DEMO), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "report.json").read_text())
    c = rep["classification"]
    plan = rep["remnant"]["resection_plan"]
    assert f"Mahuron type {c['mahuron_type']}" in out
    line = next(ln for ln in out.splitlines() if "Debulking plan:" in ln)
    assert f"{c['achievable_debulking_percent']:.1f}% by volume" in line
    n_ablated = sum(t["treatment"] == "ablation" for t in plan["lesion_treatments"])
    if n_ablated:
        assert f"ablate {n_ablated} lesion(s)" in line


def test_summary_shows_pet_uptake(tmp_path, capsys):
    seed = 8
    ct_aff = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
    pet_aff = oblique_affine(spacing=(3.0, 3.0, 6.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
    shape = (16, 14, 6)
    liver = np.zeros(shape, bool)
    liver[2:14, 2:12, 1:5] = True
    lesion = np.zeros(shape, bool)
    lesion[5:9, 5:9, 2:4] = True
    ct = write_image_series(tmp_path / "s" / "ct", np.where(liver, 60.0, -50.0), ct_aff, seed=seed)
    write_seg(
        tmp_path / "s" / "seg.dcm",
        ct,
        [SegmentSpec("Liver", liver), SegmentSpec("Tumour", lesion, property_type=codes.SCT.Neoplasm)],
    )
    bqml = 5000.0
    write_pet_series(tmp_path / "s" / "pet", np.full((8, 7, 3), bqml), pet_aff,
                     frame_of_reference_uid=deterministic_uid("for", seed), seed=seed + 1)  # fmt: skip
    suv = bqml * 70.0 * 1000.0 / (150e6 * 2.0 ** (-3600.0 / 4069.8))  # QIBA SUVbw, START-corrected
    assert main(["analyze", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    pet_line = next(ln for ln in out.splitlines() if "SUVbw from" in ln)
    assert "BQML (START)" in pet_line
    assert f"liver SUVmean {suv:.2f}" in pet_line
    assert f"lesion SUVmax {suv:.2f}" in pet_line
    table = out[out.index("SUVmax\n") :]
    assert table.splitlines()[1].split()[-1] == f"{suv:.1f}"  # the lesion row carries its SUVmax


def _pet_only_study(folder, weight_kg):
    """A PET series (uniform 5000 Bq/mL) with a SEG of the liver and a lesion drawn on it."""
    aff = oblique_affine(spacing=(3.0, 3.0, 4.0), angles_deg=(0.0, 8.0, 0.0), origin=(-20.0, -15.0, 100.0))
    shape = (12, 10, 6)
    liver = np.zeros(shape, bool)
    liver[2:10, 2:8, 1:5] = True
    lesion = np.zeros(shape, bool)
    lesion[4:6, 4:6, 2:4] = True
    pet = write_pet_series(folder / "pet", np.full(shape, 5000.0), aff, weight_kg=weight_kg, seed=3)
    write_seg(
        folder / "seg.dcm",
        pet,
        [SegmentSpec("Liver", liver), SegmentSpec("Tumour", lesion, property_type=codes.SCT.Neoplasm)],
    )
    return folder


def test_summary_of_a_pet_image_states_its_unit(tmp_path, capsys):
    """The liver mean of a PET image is in SUV when it was converted, and in Bq/mL when the body weight is
    missing (it said SUV either way)."""
    suv = 5000.0 * 70.0 * 1000.0 / (150e6 * 2.0 ** (-3600.0 / 4069.8))
    assert main(["analyze", str(_pet_only_study(tmp_path / "w", 70.0)), "--out", str(tmp_path / "ow")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Liver mean intensity" in ln)
    assert line.rstrip().endswith(f"{suv:.1f} SUV"), line
    assert main(["analyze", str(_pet_only_study(tmp_path / "n", None)), "--out", str(tmp_path / "on")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Liver mean intensity" in ln)
    assert line.rstrip().endswith("5000.0 Bq/mL"), line

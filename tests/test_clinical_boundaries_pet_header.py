"""The rules' PET header plausibility limits ([pet_plausibility], [D]) at their edges, through ``netlm analyze``.

A real PET DICOM series (pydicom, tests/pet_factory.py) with one header value set at, just inside or just
outside a limit of the shipped rules file: weight 2-350 kg (usual 30-200), Ga-68 dose 10-1000 MBq (usual
50-300), uptake time 5-300 min (usual 30-120), image SUVmax at most 200. The limits are inclusive: a
value at the edge is measured (with a warning where it is unusual); beyond it the analysis stops with
exit 3 and one line naming the value. Activity is written so that the lesion's SUV is known (the QIBA
formula solved for the activity here).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pet_factory import write_pet_series
from phantoms import grid_affine, sphere_mask, write_nifti

from netlm_imaging.cli import main

AFF = grid_affine((4.0, 4.0, 4.0), (-40.0, -40.0, -30.0))
SHAPE = (20, 20, 16)
LIVER = sphere_mask(SHAPE, AFF, (0.0, 0.0, 0.0), 30.0)
LESION = sphere_mask(SHAPE, AFF, (6.0, 4.0, 2.0), 8.0)
HALF_LIFE_S = 4069.8


def _activity(suv: np.ndarray, dose_bq: float, weight_kg: float, delay_s: float) -> np.ndarray:
    return suv * dose_bq * 2 ** (-delay_s / HALF_LIFE_S) / (weight_kg * 1000.0)


def _hms(minutes_after_10h: float) -> str:
    s = round(36000 + minutes_after_10h * 60)
    return f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"


@pytest.mark.parametrize(
    ("weight_kg", "dose_mbq", "uptake_min", "lesion_suv", "exit_code", "words"),
    [
        (350.0, 150.0, 60.0, 20.0, 0, "350 kg is unusual"),
        (350.5, 150.0, 60.0, 20.0, 3, "350.5 kg"),
        (2.0, 150.0, 60.0, 20.0, 0, "2 kg is unusual"),
        (1.9, 150.0, 60.0, 20.0, 3, "1.9 kg"),
        (200.0, 150.0, 60.0, 20.0, 0, None),  # the usual range is inclusive: no warning
        (70.0, 1000.0, 60.0, 20.0, 0, "unusual"),
        (70.0, 1001.0, 60.0, 20.0, 3, "1001"),
        (70.0, 10.0, 60.0, 20.0, 0, "unusual"),
        (70.0, 9.9, 60.0, 20.0, 3, "9.9"),
        (70.0, 150.0, 300.0, 20.0, 0, "unusual"),
        (70.0, 150.0, 301.0, 20.0, 3, "uptake time 301.0 min"),
        (70.0, 150.0, 5.0, 20.0, 0, "unusual"),
        (70.0, 150.0, 4.9, 20.0, 3, "uptake time 4.9 min"),
        (70.0, 150.0, 60.0, 199.5, 0, None),
        (70.0, 150.0, 60.0, 200.0, 0, None),  # SUVmax 200 is not above the limit
        (70.0, 150.0, 60.0, 200.5, 3, "above 200"),
    ],
)
def test_pet_header_limits_at_their_edges(tmp_path, capsys, weight_kg, dose_mbq, uptake_min, lesion_suv, exit_code,
                                          words):  # fmt: skip
    suv = np.ones(SHAPE)
    suv[LIVER] = 5.0
    suv[LESION] = lesion_suv
    act = _activity(suv, dose_mbq * 1e6, weight_kg, uptake_min * 60.0)
    # one slope per slice making the lesion's activity an exact stored integer (the SUV edge stays exact)
    slope = float(act[LESION][0]) / 20000.0
    write_pet_series(
        tmp_path / "pet", act, AFF, slopes=[slope] * SHAPE[2], weight_kg=weight_kg, dose_bq=dose_mbq * 1e6,
        series_time=_hms(uptake_min),
    )  # fmt: skip
    seg = write_nifti(tmp_path / "seg.nii.gz", np.where(LESION, 2, np.where(LIVER, 1, 0)).astype(np.uint8), AFF)
    out = tmp_path / "out"
    code = main(["analyze", "--image", str(tmp_path / "pet"), "--seg", str(seg), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == exit_code, err
    if exit_code == 3:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert words in lines[0]
        assert not (out / "report.json").exists()
        return
    rep = json.loads((out / "report.json").read_text())
    assert rep["lesions"][0]["suv_max"] == pytest.approx(lesion_suv, rel=1e-4)
    unusual = [w for w in rep["warnings"] if "unusual" in w]
    assert (unusual == []) is (words is None), unusual
    if words is not None:
        assert any(words in w for w in unusual), unusual

"""clinical_rules.md section 6: height and weight for BSA / TELV from the DICOM header, through ``netlm analyze``.

"Height/weight come from user input or DICOM PatientSize (0010,1020, metres) and PatientWeight
(0010,1030, kg)"; a header value outside the rules' plausible adult range (body.height_cm_range
100-250 cm, body.weight_kg_range 25-350 kg, [D]) is ignored with a note: a PatientSize written in
centimetres (175) is not read as 175 m. BSA (Mosteller, DuBois) and TELV (Vauthey) are computed
here from the published formulas.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from pydicom.sr.codedict import codes
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main

AFF = oblique_affine(spacing=(4.0, 4.0, 5.0), angles_deg=(8.0, -6.0, 15.0))
SHAPE = (24, 24, 10)


def _run(tmp_path, size: str | None, weight: str | None, clinical=None, rules: str | None = None) -> dict:
    liver = np.zeros(SHAPE, dtype=bool)
    liver[2:22, 2:22, 1:9] = True
    lesion = np.zeros(SHAPE, dtype=bool)
    lesion[8:11, 8:11, 4:6] = True
    tags = {k: v for k, v in (("PatientSize", size), ("PatientWeight", weight)) if v is not None}
    files = write_image_series(tmp_path / "ct", np.where(liver, 60.0, -100.0), AFF, extra_tags=tags)
    specs = [SegmentSpec("Liver", liver), SegmentSpec("Tumor", lesion, property_type=codes.SCT.Neoplasm)]
    write_seg(tmp_path / "seg.dcm", files, specs)
    argv = ["analyze", "--image", str(tmp_path / "ct"), "--seg", str(tmp_path / "seg.dcm")]
    if clinical is not None:
        (tmp_path / "clin.json").write_text(json.dumps(clinical))
        argv += ["--clinical", str(tmp_path / "clin.json")]
    if rules is not None:
        (tmp_path / "rules.toml").write_text(rules)
        argv += ["--rules", str(tmp_path / "rules.toml")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


def _mosteller(h_cm: float, w_kg: float) -> float:
    return math.sqrt(h_cm * w_kg / 3600.0)


@pytest.mark.parametrize(
    ("size", "weight", "height_used", "weight_used"),
    [
        ("1.75", "70", 175.0, 70.0),
        ("1.0", "70", 100.0, 70.0),  # 100 cm: the lower edge is inside
        ("0.99", "70", None, 70.0),
        ("2.5", "70", 250.0, 70.0),  # 250 cm: the upper edge is inside
        ("2.51", "70", None, 70.0),
        ("175", "70", None, 70.0),  # PatientSize in cm by mistake: ignored, never 175 m
        ("1.75", "25", 175.0, 25.0),  # 25 kg: inside
        ("1.75", "24.9", 175.0, None),
        ("1.75", "350", 175.0, 350.0),
        ("1.75", "350.1", 175.0, None),
    ],
)
def test_body_size_from_the_dicom_header_and_its_plausible_range(tmp_path, size, weight, height_used, weight_used):
    rem = _run(tmp_path, size, weight)["remnant"]
    assert (rem["height_cm"], rem["weight_kg"]) == (height_used, weight_used)
    if height_used is None or weight_used is None:
        assert rem["bsa_m2"] is None
        assert rem["telv_ml"] is None
        return
    bsa = _mosteller(height_used, weight_used)
    assert rem["bsa_m2"] == pytest.approx(bsa, abs=1e-4)
    assert rem["telv_ml"] == pytest.approx(-794.41 + 1267.28 * bsa, abs=1e-2)


def test_the_clinical_file_overrides_the_header_and_dubois_is_selectable(tmp_path):
    rep = _run(tmp_path, "1.75", "70", clinical={"height_cm": 160.0, "weight_kg": 60.0},
               rules='[body]\nbsa_formula = "dubois"\n')  # fmt: skip
    rem = rep["remnant"]
    bsa = 0.007184 * 160.0**0.725 * 60.0**0.425
    assert (rem["height_cm"], rem["weight_kg"], rem["bsa_formula"]) == (160.0, 60.0, "dubois")
    assert rem["bsa_m2"] == pytest.approx(bsa, abs=1e-4)
    used = rep["classification"]["clinical_inputs_used"]
    assert used["height_cm"]["source"] == "clinical file clin.json"

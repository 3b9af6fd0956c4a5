"""The study page shows the debulking plan: which lesion gets which treatment and the FLR it leaves.

It showed the plan only inside a rationale sentence ("Right hemihepatectomy (segment(s) 5,6,7,8)"), not
the treatment of each lesion nor the FLR on the denominator its threshold is on.

Phantom (surgical_phantoms.SlabLiver, oblique grid): a 64 x 80 x 80 mm mass filling segments 5-8 (too
big to wedge or ablate) and a small lesion in segment 6. By hand: the right hemihepatectomy takes both and
keeps segments 1-4 (2 + 3 + 3 + 4 slices x 20 x 20 voxels, tumour-free) = 4800 voxels of FLR.
"""

from __future__ import annotations

import html
import math
import re

import pytest
from cli_studies import run_analyze, stored_voxel_ml
from surgical_phantoms import NY, NZ, SLICES, SlabLiver


def _text(page: str, start: str, end: str) -> str:
    part = page[page.index(start) : page.index(end, page.index(start))]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", part)))


def test_the_page_lists_each_lesions_treatment_and_the_flr_on_its_denominator(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    mass = p.add_box(13, 16, 2, 16, 2, 16)  # x 13..28: segments 5, 6, 7, 8
    small = p.add_in_segment(6, 2, 1, 1, x_off=1, y0=19, z0=19)  # one row clear of the mass (rows 2..17)
    clinical = {"height_cm": 175, "weight_kg": 70, "liver_condition": "normal", "symptoms": "none"}
    rep = run_analyze(tmp_path, p.affine, p.liver, p.labels > 0, segments=p.seg, clinical=clinical, args=["--html"])
    voxel_ml = stored_voxel_ml(tmp_path / "grid", p.affine)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * voxel_ml
    bsa = math.sqrt(175 * 70 / 3600)  # Mosteller
    telv = -794.41 + 1267.28 * bsa  # Vauthey (clinical_rules.md section 6)
    page = (tmp_path / "out" / "report.html").read_text()
    summary = _text(page, '<p id="plan-summary">', "</p>")
    assert summary.startswith(" Right hemihepatectomy (segments 5, 6, 7, 8); remnant contiguous remnant 1,2,3,4")
    assert f"FLR {flr_ml:.1f} mL = {100 * flr_ml / telv:.1f}% of TELV (threshold 20.0%)" in summary
    assert "debulking 100.0% by volume, 100.0% by count (threshold 70.0%)" in summary
    rows = _text(page, '<table id="plan-lesions">', "</table>")
    assert f" {mass.id} " in rows
    assert f" {small.id} 6 resection 0.0 " in rows
    assert rows.count("resection") == 2
    assert rep["remnant"]["resection_plan"]["remnant_ml"] == pytest.approx(flr_ml, rel=1e-6)

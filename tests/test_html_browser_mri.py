"""The QA page of a gadoxetic-acid MR study in headless Chromium: the MRI numbers it shows are the
phantom's, and the readout under the crosshair is in a.u., never HU.

Study: one Siemens VIBE series holding four dynamic phases that only AcquisitionTime tells apart
(tests/test_mri_dynamic_series.py), the SEG drawn on the 20-min hepatobiliary phase. Truths from the
phantom (mri_factory, constants written there): liver 400, spleen 200, lesions 120 a.u.; pre-contrast
phase liver 200, spleen 150. LSC = 400 / 200; RE(liver) = (400 - 200) / 200; HUI = non-tumorous
voxels x voxel volume x (400 / 200 - 1), the voxels counted from the boxes.
"""

from __future__ import annotations

import re

import pytest
from browsers import chromium
from mri_factory import LESION_BOXES, LIVER_BOX, SPACING, box_voxels
from test_mri_dynamic_series import LABELS, _dynamic_series

from netlm_imaging.api import analyze_with_context
from netlm_imaging.report.html import write_study_html


def _rows(d) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    out = {}
    for tr in d.find_elements(By.CSS_SELECTOR, "h2#mri ~ table tr"):
        cells = tr.find_elements(By.CSS_SELECTOR, "th, td")
        if len(cells) == 2:
            out.setdefault(cells[0].text, cells[1].text)
    return out


@pytest.mark.chromium
def test_an_mr_page_shows_the_phantoms_ratios_and_reads_out_in_au(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    report, ctx = analyze_with_context(_dynamic_series(tmp_path / "vibe", refer=3), labels=LABELS)
    page = write_study_html(report.to_dict(), ctx, tmp_path / "report.html")
    voxel_ml = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
    non_tumorous = box_voxels(LIVER_BOX) - sum(box_voxels(b) for b in LESION_BOXES)
    with chromium() as d:
        d.get(page.as_uri())
        WebDriverWait(d, 240).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        rows = _rows(d)
        assert rows["Phase"] == "hepatobiliary (basis: delay)"
        assert float(rows["Delay after injection (min)"]) == pytest.approx(20.0)
        assert float(rows["Liver-to-spleen contrast ratio"]) == pytest.approx(400.0 / 200.0, abs=0.005)
        assert float(rows["Relative enhancement, liver"]) == pytest.approx((400.0 - 200.0) / 200.0, abs=0.005)
        hui = float(rows["Hepatic uptake index (mL, research measure)"])
        assert hui == pytest.approx(non_tumorous * voxel_ml * (400.0 / 200.0 - 1.0), abs=0.005)
        others = d.find_element(By.XPATH, "//p[starts-with(., 'Other MR series in the study')]").text
        assert "series 8 [AcquisitionTime 100000] (pre-contrast)" in others  # the stacks of one series told apart
        assert "[AcquisitionTime 101530] (arterial)" in others
        d.find_element(By.CSS_SELECTOR, "tr.lesion-row[data-lesion='1']").click()
        text = d.find_element(By.ID, "viewer-position").text
    assert "HU" not in text
    value = re.search(r"; (-?\d+(?:\.\d+)?) a\.u\.", text)
    assert value is not None, text
    assert float(value.group(1)) == pytest.approx(120.0, abs=450.0 / 255 + 1.0)  # the lesion, within an 8-bit step

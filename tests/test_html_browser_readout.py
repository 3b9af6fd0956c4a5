"""The QA page's readout of the value under the crosshair, in headless Chromium.

The page embeds the image in 8 bits over a stated range (CT: -200 to 300 HU) and the PET up to its
99.9th percentile: a calcified lesion (800 HU) or the hottest PET voxels are stored as the range's
end, so the readout must say "≥ 300 HU", not "300 HU". Expectations come from the phantom's arrays
(numpy here), not from the page's code.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from browsers import chromium
from phantoms_verify import voxel_centres
from test_html import _ctx, _report

from netlm_imaging.report.html import write_study_html
from netlm_imaging.report.viewer_data import CT_ENCODE_RANGE_HU
from netlm_imaging.volume import Volume


def _readout(d, lesion_id: int) -> tuple[str, np.ndarray]:
    from selenium.webdriver.common.by import By

    d.find_element(By.CSS_SELECTOR, f"tr.lesion-row[data-lesion='{lesion_id}']").click()
    pos = np.asarray(d.execute_script("return window.netlmViewer.position()"), int)
    return d.find_element(By.ID, "viewer-position").text, pos


@pytest.mark.chromium
def test_values_beyond_the_embedded_range_read_as_beyond_it(tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    ctx = _ctx()
    image = np.asarray(ctx.image.array, dtype=np.float32).copy()
    image[ctx.lesion_labels == 1] = 800.0  # a calcified lesion
    image[ctx.lesion_labels == 3] = -1000.0  # air (a gas-containing lesion)
    ctx.image = ctx.image.with_array(image)
    # PET (on the CT grid): SUV 2, and 30 in the few voxels within 3 mm of lesion 2's centre (< 0.1 % of the grid)
    centre2 = np.asarray(ctx.lesions[1].centroid_lps_mm)
    near = np.linalg.norm(voxel_centres(ctx.image.shape, ctx.image.affine) - centre2, axis=-1) <= 3.0
    assert 0 < near.mean() < 0.001
    pet = Volume(np.where(near, 30.0, 2.0).astype(np.float32), ctx.image.affine, source="pet")
    report = _report(ctx)
    page = write_study_html(report, ctx, tmp_path / "report.html", pet_suv=pet)
    lo, hi = CT_ENCODE_RANGE_HU
    with chromium() as d:
        d.get(page.as_uri())
        WebDriverWait(d, 240).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        text, _ = _readout(d, 1)
        assert f"\u2265 {hi:.0f} HU" in text  # 800 HU: beyond the range, not "300 HU"
        text, _ = _readout(d, 3)
        assert f"\u2264 {lo:.0f} HU" in text  # -1000 HU
        text, pos = _readout(d, 2)
        assert near[tuple(pos)]  # the centroid voxel is one of the SUV-30 voxels
        suv = re.search(r"SUV (\S+) (\S+)", text)
        assert suv is not None
        assert suv.group(1) == "\u2265"  # the embedded PET ends at its 99.9th percentile (2): SUV 30 is beyond it
        assert float(suv.group(2)) == pytest.approx(float(np.percentile(pet.array, 99.9)), abs=0.01)
        assert suv.group(2) == f"{float(np.percentile(pet.array, 99.9)):.2f}"  # a 2/255 = 0.008 SUV step: 2 decimals
        # inside the range the readout is the voxel's value within the 8-bit step (500 / 255 HU)
        hu = float(re.search(r"; (-?\d+) HU", text).group(1))
        assert hu == pytest.approx(float(image[tuple(pos)]), abs=(hi - lo) / 255)

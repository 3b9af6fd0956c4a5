"""The QA page and the cohort index in real headless browsers (Debian chromium via selenium and
chromium-driver; firefox-esr via Marionette). Few tests, generous timeouts: browsers are CPU-heavy.

Expectations come from the phantom's masks and the report's centroids (inverse affine in numpy
here), never from stored screenshots.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from browsers import chromium, firefox
from test_html import _ctx, _pet, _phantom, _report, _with_segments

from netlm_imaging.report.html import write_cohort_index, write_study_html

ANGLES = (20.0, -10.0, 5.0)  # oblique grid: the jump goes through the affine


def _rgb(png: bytes) -> np.ndarray:
    from matplotlib import image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")[..., :3]


def _lesion_red(img: np.ndarray) -> np.ndarray:
    """Pixels of the lesion colour at opacity 1 (255, 40, 40)."""
    return (img[..., 0] > 0.9) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)


def _liver_tint(img: np.ndarray) -> np.ndarray:
    """Pixels tinted by the liver colour (green over grey)."""
    return img[..., 1] - np.maximum(img[..., 0], img[..., 2]) > 0.08


def _expected_voxel(ctx, centroid):
    inv = np.linalg.inv(ctx.image.affine)
    return inv[:3, :3] @ np.asarray(centroid) + inv[:3, 3]


def _axial_axis(ctx) -> int:
    return int(np.argmax(np.abs(ctx.image.affine[2, :3])))


def _fraction_in_slice(mask: np.ndarray, axis: int, k: int) -> float:
    return float(np.take(mask, k, axis=axis).mean())


@pytest.mark.chromium
def test_viewer_in_chromium(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    ctx = _with_segments(_ctx(ANGLES))
    report = _report(ctx)
    report["pet"] = {"suv_type": "SUVbw", "liver_suv_mean": 2.0}  # the default SUV scale starts at the liver
    sph = _phantom().lesions[0]
    page = write_study_html(report, ctx, tmp_path / "report.html", pet_suv=_pet(sph.centre_lps_mm, sph.radius_mm))
    ax = _axial_axis(ctx)
    with chromium() as d:
        d.get(page.as_uri())
        WebDriverWait(d, 240).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        axial = d.find_element(By.CSS_SELECTOR, "#view-axial canvas")
        index = d.find_element(By.CSS_SELECTOR, "#view-axial .slice-index")

        def shown() -> int:
            return int(index.text)

        # orientation labels and scale bar are on the page
        labels = [
            d.find_element(By.CSS_SELECTOR, f"#view-axial .o-{e}").text for e in ("left", "right", "top", "bottom")
        ]
        assert [lab[0] for lab in labels] == ["R", "L", "A", "P"]  # oblique: the strongest letter first
        # scale bar: its length in px per mm is the view's, which is the same along columns and rows
        bar = d.find_element(By.CSS_SELECTOR, "#view-axial .scalebar")
        mm = float(bar.get_attribute("data-mm"))
        assert d.find_element(By.CSS_SELECTOR, "#view-axial .scalebar span").text == f"{mm:g} mm"
        aff = ctx.image.affine[:3, :3]
        col, row = int(np.argmax(np.abs(aff[0]))), int(np.argmax(np.abs(aff[1])))  # closest to patient x, y
        sp = np.linalg.norm(aff, axis=0)
        px_per_mm = axial.size["width"] / (ctx.image.shape[col] * sp[col])
        assert bar.size["width"] / mm == pytest.approx(px_per_mm, rel=0.02)
        assert axial.size["height"] / (ctx.image.shape[row] * sp[row]) == pytest.approx(px_per_mm, rel=0.02)

        # scroll N slices: wheel, keys, slider
        start = shown()
        for _ in range(4):
            ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(axial), 0, 120).perform()
        assert shown() == start + 4
        axial.send_keys(Keys.ARROW_DOWN * 3)
        assert shown() == start + 1
        d.find_element(By.CSS_SELECTOR, "#view-axial input[type=range]").send_keys(Keys.HOME)
        assert shown() == 1

        # the lesion table sorts by a column (here volume, from report.json)
        d.find_element(By.XPATH, "//table[@id='lesions']//button[text()='volume (mL)']").click()
        shown_ids = [tr.get_attribute("data-lesion") for tr in d.find_elements(By.CSS_SELECTOR, "tr.lesion-row")]
        assert shown_ids == [str(x["id"]) for x in sorted(report["lesions"], key=lambda x: x["volume_ml"])]

        # click each lesion row: all three views go to the reported centroid (within one voxel)
        for les in report["lesions"]:
            d.find_element(By.CSS_SELECTOR, f"tr.lesion-row[data-lesion='{les['id']}']").click()
            pos = np.asarray(d.execute_script("return window.netlmViewer.position()"), float)
            want = _expected_voxel(ctx, les["centroid_lps_mm"])
            assert np.max(np.abs(pos - want)) <= 1.0, (les["id"], pos, want)
            slices = [
                int(d.find_element(By.CSS_SELECTOR, f"#view-{v}").get_attribute("data-slice"))
                for v in ("axial", "coronal", "sagittal")
            ]
            assert sorted(slices) == sorted(int(p) for p in pos)  # each view shows one of the position's planes
            assert f"lesion {les['id']}" in d.find_element(By.ID, "viewer-position").text

        # keyboard: Enter on a focused lesion row jumps too
        d.find_element(By.CSS_SELECTOR, "tr.lesion-row[data-lesion='2']").send_keys(Keys.ENTER)
        pos = np.asarray(d.execute_script("return window.netlmViewer.position()"), float)
        assert np.max(np.abs(pos - _expected_voxel(ctx, report["lesions"][1]["centroid_lps_mm"]))) <= 1.0

        # keyboard crosshair: "d" three times moves it three pixels right = three voxels along the column axis
        before = np.asarray(d.execute_script("return window.netlmViewer.position()"))
        axial.send_keys("ddd")
        moved = np.asarray(d.execute_script("return window.netlmViewer.position()")) - before
        col = int(np.argmax(np.abs(ctx.image.affine[0, :3])))  # the axis closest to patient left
        assert abs(moved[col]) == 3
        assert np.count_nonzero(moved) == 1
        assert np.sign(moved[col]) == np.sign(ctx.image.affine[0, col])  # toward the patient's left

        # the lesion under the cursor is named (mouse over the crosshair of lesion 1)
        d.find_element(By.CSS_SELECTOR, "tr.lesion-row[data-lesion='1']").click()
        k = int(d.find_element(By.ID, "view-axial").get_attribute("data-slice"))
        x = float(d.find_element(By.CSS_SELECTOR, "#view-axial .ch-v").value_of_css_property("left")[:-2])
        y = float(d.find_element(By.CSS_SELECTOR, "#view-axial .ch-h").value_of_css_property("top")[:-2])
        w, h = axial.size["width"], axial.size["height"]
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", axial)  # actions do not scroll
        ActionChains(d).move_to_element_with_offset(axial, int(x - w / 2), int(y - h / 2)).perform()
        assert "lesion 1" in d.find_element(By.ID, "viewer-hover").text

        # overlays: lesion opacity 1, no crosshair, no PET; the screenshot's colours match the masks of this slice
        d.find_element(By.ID, "show-pet").click()
        d.find_element(By.ID, "opacity-lesions").send_keys(Keys.END)
        d.find_element(By.ID, "show-crosshair").click()
        shot = _rgb(axial.screenshot_as_png)
        want_lesion = _fraction_in_slice(ctx.lesion_labels > 0, ax, k)
        want_liver = _fraction_in_slice(ctx.liver, ax, k)
        assert want_lesion > 0.005
        assert _lesion_red(shot).mean() == pytest.approx(want_lesion, rel=0.15)
        # radiological layout: lesion 1 lies 30 mm to the patient's right of the grid centre -> the viewer's left
        cols = np.nonzero(_lesion_red(shot))[1]
        assert (cols < shot.shape[1] / 2).mean() > 0.8
        assert _liver_tint(shot).mean() + _lesion_red(shot).mean() == pytest.approx(want_liver, rel=0.1)
        d.find_element(By.ID, "show-lesions").click()  # toggle the lesions off: their pixels change
        off = _rgb(axial.screenshot_as_png)
        assert _lesion_red(off).mean() < 0.1 * want_lesion
        changed = np.any(np.abs(off - shot) > 0.1, axis=-1).mean()
        assert changed == pytest.approx(want_lesion, rel=0.3)
        assert _liver_tint(off).mean() == pytest.approx(want_liver, rel=0.1)  # liver shows through
        d.find_element(By.ID, "show-liver").click()
        plain = _rgb(axial.screenshot_as_png)
        assert _liver_tint(plain).mean() < 0.01
        # segments on: the pixels of the segment map change (drawn under lesions and liver, here both off)
        d.find_element(By.ID, "show-segments").click()
        seg = _rgb(axial.screenshot_as_png)
        want_seg = _fraction_in_slice(ctx.segment_labels > 0, ax, k)
        assert np.any(np.abs(seg - plain) > 0.05, axis=-1).mean() == pytest.approx(want_seg, rel=0.1)
        d.find_element(By.ID, "show-segments").click()
        # PET on (SUV scale from the report's liver SUVmean): hot pixels only around lesion 1 (SUV 12)
        d.find_element(By.ID, "show-pet").click()
        hot = _rgb(axial.screenshot_as_png)
        hot_px = np.any(np.abs(hot - plain) > 0.05, axis=-1).mean()
        want_l1 = _fraction_in_slice(ctx.lesion_labels == 1, ax, k)
        assert 0.5 * want_l1 < hot_px < 2.5 * want_l1
        d.find_element(By.ID, "show-pet").click()
        # window preset: the liver window changes the grey levels
        d.find_element(By.CSS_SELECTOR, "#window-preset option:nth-child(2)").click()
        liver_window = _rgb(axial.screenshot_as_png)
        assert np.abs(liver_window - plain).mean() > 0.02
        assert d.find_element(By.ID, "window-width").get_attribute("value") == "150"  # W150/L90
        # a free width/level: W 1 HU at L 0 HU makes the image black and white (liver 60 HU white, air black)
        for field, value in (("window-width", "1"), ("window-level", "0")):
            box = d.find_element(By.ID, field)
            box.clear()
            box.send_keys(value + Keys.TAB)
        bw = _rgb(axial.screenshot_as_png)
        grey = bw.max(axis=-1)
        assert ((grey < 0.02) | (grey > 0.98)).mean() > 0.95
        assert (grey > 0.98).mean() == pytest.approx(
            _fraction_in_slice(np.asarray(ctx.image.array) > 0, ax, k), abs=0.02
        )  # > 0 HU: the liver and lesions of the phantom (noise SD 8 HU at 60 and 120)
        # PET MIP: inverted grey (SUV 12 of lesion 1 is the darkest) inside its dashed red outline
        mip = _rgb(d.find_element(By.ID, "mip-canvas").screenshot_as_png)
        red_r, red_c = np.nonzero(_lesion_red(mip))
        dark_r, dark_c = np.nonzero(mip.max(axis=-1) < 0.1)
        assert red_r.size > 20
        assert dark_r.size > 20
        near = [np.min(np.hypot(red_r - r, red_c - c)) for r, c in zip(dark_r[::7], dark_c[::7])]
        assert np.median(near) < 0.25 * np.ptp(red_c)  # the dark spot lies inside an outline, not elsewhere
        ready = d.execute_script("return window.netlmViewer.readyMs")
        assert ready > 0


def _five_study_index(tmp_path):
    """An index of five studies with known liver volumes; s2 and s4 have a warning (flagged)."""
    (tmp_path / "reports").mkdir(parents=True)
    liver = {"s1": 1500.0, "s2": 980.5, "s3": 2210.0, "s4": 1200.25, "s5": 1800.0}
    rows = []
    for n, (sid, v) in enumerate(liver.items()):
        warn = ["a warning"] if n % 2 else []
        (tmp_path / "reports" / f"{sid}.json").write_text(json.dumps({"warnings": warn, "lesions": []}))
        rows.append({"study_id": sid, "status": "ok", "liver_volume_ml": str(v), "warnings_count": str(len(warn))})
    return write_cohort_index(tmp_path, rows), liver


@pytest.mark.chromium
def test_cohort_index_sorts_and_filters_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index, liver = _five_study_index(tmp_path)
    with chromium() as d:
        d.get(index.as_uri())
        WebDriverWait(d, 120).until(lambda d: d.execute_script("return document.documentElement.dataset.indexReady"))

        def order() -> list[str]:
            return [
                tr.get_attribute("data-study")
                for tr in d.find_elements(By.CSS_SELECTOR, "#cohort tbody tr")
                if tr.is_displayed()
            ]

        assert order() == ["s2", "s4", "s1", "s3", "s5"]  # flagged (warnings) first
        head = d.find_element(By.XPATH, "//th[button[text()='liver (mL)']]")
        head.find_element(By.TAG_NAME, "button").click()
        assert order() == sorted(liver, key=liver.get)
        assert head.get_attribute("aria-sort") == "ascending"
        head.find_element(By.TAG_NAME, "button").click()
        assert order() == sorted(liver, key=liver.get, reverse=True)
        d.find_element(By.ID, "filter").send_keys("s3")
        assert order() == ["s3"]
        d.find_element(By.ID, "filter").clear()
        d.find_element(By.ID, "filter").send_keys(" ")  # clear() sends no input event
        d.find_element(By.ID, "only-flagged").click()
        assert sorted(order()) == ["s2", "s4"]
        assert "2 of 5 studies shown" in d.find_element(By.ID, "shown-count").text


@pytest.mark.firefox
def test_viewer_in_firefox(tmp_path):
    ctx = _ctx(ANGLES)
    report = _report(ctx)
    page = write_study_html(report, ctx, tmp_path / "report.html")
    les = report["lesions"][1]
    with firefox() as ff:
        # a link straight to a lesion; b64=js: the portable base64 decoder (Chromium runs the native one)
        ff.navigate(page.as_uri() + f"#lesion={les['id']}&b64=js")
        pos = np.asarray(ff.execute("return window.netlmViewer.position()"), float)
        assert np.max(np.abs(pos - _expected_voxel(ctx, les["centroid_lps_mm"]))) <= 1.0
        ff.click("tr.lesion-row[data-lesion='1'] td")
        pos = np.asarray(ff.execute("return window.netlmViewer.position()"), float)
        assert np.max(np.abs(pos - _expected_voxel(ctx, report["lesions"][0]["centroid_lps_mm"]))) <= 1.0
        ff.send_keys("#view-axial canvas", "\ue013\ue013")  # ArrowUp twice: two slices on
        assert int(ff.execute("return document.querySelector('#view-axial .slice-index').textContent")) == pos[2] + 3
        ff.send_keys("#opacity-lesions", "\ue010")  # End: opacity 1
        ff.click("#show-crosshair")
        k = int(ff.execute("return document.getElementById('view-axial').dataset.slice"))
        shot = _rgb(ff.element_png("#view-axial canvas"))
        want = _fraction_in_slice(ctx.lesion_labels > 0, _axial_axis(ctx), k)
        assert want > 0.002
        assert _lesion_red(shot).mean() == pytest.approx(want, rel=0.2)
        ff.click("#show-lesions")
        assert _lesion_red(_rgb(ff.element_png("#view-axial canvas"))).mean() < 0.1 * want
        # the cohort index sorts and filters in Firefox too
        index, liver = _five_study_index(tmp_path / "cohort")
        ff.navigate(index.as_uri())
        order = (
            "return Array.from(document.querySelectorAll('#cohort tbody tr'))"
            ".filter(r => !r.hidden).map(r => r.dataset.study)"
        )
        ff.click("th[data-col='3'] button")  # liver (mL)
        assert ff.execute("return document.querySelector(\"th[data-col='3']\").textContent") == "liver (mL)"
        assert ff.execute(order) == sorted(liver, key=liver.get)
        ff.send_keys("#filter", "s5")
        assert ff.execute(order) == ["s5"]


@pytest.mark.chromium
def test_batch_index_links_the_study_page_whose_lesions_jump_to_their_centroids(tmp_path):
    """Real pipeline on the demo study (NIfTI, RAS-stored): batch --html, follow the index link, click every lesion.

    The expected voxel comes from nibabel's affine (RAS -> LPS), not from netlm's loader.
    """
    import shutil

    import nibabel as nib
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from netlm_imaging.cli import main

    demo = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
    cohort = tmp_path / "cohort"
    shutil.copytree(demo, cohort / "demo1")
    out = tmp_path / "out"
    assert main(["batch", str(cohort), "--out", str(out), "--html", "--quiet"]) == 0
    report = json.loads((out / "reports" / "demo1.json").read_text())
    assert len(report["lesions"]) >= 3
    inv = np.linalg.inv(np.diag([-1.0, -1.0, 1.0, 1.0]) @ nib.load(demo / "ct.nii.gz").affine)
    with chromium() as d:
        d.get((out / "index.html").as_uri())
        WebDriverWait(d, 120).until(lambda d: d.execute_script("return document.documentElement.dataset.indexReady"))
        thumb = d.find_element(By.CSS_SELECTOR, "tr[data-study='demo1'] img")
        assert d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) > 32
        d.find_element(By.LINK_TEXT, "QA page").click()
        WebDriverWait(d, 240).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        assert d.current_url.endswith("reports/demo1.html")
        for les in report["lesions"]:
            d.find_element(By.CSS_SELECTOR, f"tr.lesion-row[data-lesion='{les['id']}'] td").click()
            pos = np.asarray(d.execute_script("return window.netlmViewer.position()"), float)
            want = inv[:3, :3] @ np.asarray(les["centroid_lps_mm"]) + inv[:3, 3]
            assert np.max(np.abs(pos - want)) <= 1.0, (les["id"], pos, want)


@pytest.mark.chromium
def test_real_ct_liver_overlay_matches_the_segmentation(shared, tmp_path):
    """TotalSegmentator's real abdominal CT (RAS NIfTI, MANIFEST: liver = label 5): analyze --html, then the liver
    pixels of the axial and coronal views equal the label-5 fraction of those slices read with nibabel."""
    import nibabel as nib
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from netlm_imaging.cli import main

    ts = ("totalseg_example", "tests", "reference_files")
    ct, seg = shared(*ts, "example_ct_sm.nii.gz"), shared(*ts, "example_seg.nii.gz")
    out = tmp_path / "o"
    args = ["analyze", "--image", str(ct), "--seg", str(seg), "--labels", "liver=5", "--out", str(out), "--html"]
    assert main([*args, "--quiet"]) == 0
    img = nib.load(seg)
    liver = np.asarray(img.dataobj) == 5
    aff = img.affine
    with chromium() as d:
        d.get((out / "report.html").as_uri())
        WebDriverWait(d, 240).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        d.find_element(By.ID, "opacity-liver").send_keys(Keys.END)
        d.find_element(By.ID, "show-crosshair").click()
        for view, patient_axis in (("axial", 2), ("coronal", 1)):
            axis = int(np.argmax(np.abs(aff[patient_axis, :3])))  # the array axis closest to S (A for coronal)
            k = int(d.find_element(By.ID, f"view-{view}").get_attribute("data-slice"))
            want = _fraction_in_slice(liver, axis, k)
            assert want > 0.05
            shot = _rgb(d.find_element(By.CSS_SELECTOR, f"#view-{view} canvas").screenshot_as_png)
            green = (shot[..., 1] > 0.7) & (shot[..., 0] < 0.1) & (shot[..., 2] < 0.1)  # liver at opacity 1
            assert green.mean() == pytest.approx(want, rel=0.05), view

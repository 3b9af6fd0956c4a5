"""HTML QA page: content, privacy, the transverse view geometry, and a real render in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context

from netlm_imaging.report import html as qa
from netlm_imaging.report.html import write_cohort_index, write_study_html

CHROMIUM = "/usr/bin/chromium"
SHAPE = (80, 70, 36)


def _phantom():
    return LiverPhantom(
        [Sphere((-25.0, 5.0, 0.0), 12.0), Sphere((45.0, -10.0, 15.0), 7.0), Sphere((-40.0, 20.0, -20.0), 6.0)]
    )


def _ctx(angles=(0.0, 0.0, 15.0)):
    aff = grid_affine(SHAPE, (2.2, 2.0, 3.5), angles, centre=(5.0, 0.0, 0.0))
    return make_context(_phantom(), SHAPE, aff, modality="CT")


def _report(ctx):
    return {
        "schema_version": "1.1",
        "tool": {"name": "netlm-imaging", "version": "0.1.0"},
        "study": {
            "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
            "modality": "CT",
            "image_source": "/data/DOE_JANE/ct.nii.gz",
            "segmentation_sources": ["/data/DOE_JANE/seg.nii.gz"],
            "grid": {"shape": list(SHAPE), "spacing_mm": [2.2, 2.0, 3.5], "resampled": False},
            "identifiers": {"patient_name": "DOE^JANE", "patient_id": "PID-12345", "patient_birth_date": "19500101"},
        },
        "liver": {"volume_ml": ctx.liver_volume_ml},
        "tumor": {
            "intrahepatic_volume_ml": ctx.intrahepatic_tumor_ml,
            "extrahepatic_volume_ml": 0.0,
            "lesion_count": len(ctx.lesions),
            "extrahepatic_lesion_count": 0,
        },
        "involvement_percent": 100 * ctx.intrahepatic_tumor_ml / ctx.liver_volume_ml,
        "remnant": {"non_tumorous_liver_volume_ml": ctx.liver_volume_ml - ctx.intrahepatic_tumor_ml},
        "lesions": [les.to_dict() for les in ctx.lesions],
        "segments": [
            {"segment": s, "liver_volume_ml": 100.0, "tumor_volume_ml": float(s % 3), "lesion_count": s % 2}
            for s in range(1, 9)
        ],
        "classification": {"rules_version": "test", "mahuron_type": "1", "rationale": ["single lesion <b>bold</b>"]},
        "warnings": ["mask touched <script>alert(1)</script> border"],
        "method": {"volume": "voxel_count"},
    }


def _images(text):
    return re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)


def test_page_content_images_privacy_and_escaping(tmp_path):
    from matplotlib import image as mpimg

    ctx = _ctx()
    report = _report(ctx)
    path = write_study_html(report, ctx, tmp_path / "out" / "report.html", pet_suv=ctx.image)
    text = path.read_text(encoding="utf-8")
    imgs = _images(text)
    # one axial view per lesion + PET MIP + segment bar chart
    assert len(imgs) == len(ctx.lesions) + 2
    assert sorted(a for a, _ in imgs if a.startswith("lesion")) == [f"lesion {les.id}" for les in ctx.lesions]
    for _, b64 in imgs:
        png = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert png.shape[0] > 100
        assert png.shape[1] > 100
        assert float(np.std(png[..., :3])) > 0.02  # not a blank image
    # self-contained: no external resources
    assert not re.search(r"(src|href)=['\"](?!data:)", text)
    # privacy: the identifiers and the paths (which may carry names) never appear
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # base64 may hold any 3 letters
    for ident in ("DOE", "JANE", "PID-12345", "19500101", "/data/"):
        assert ident not in visible
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert f"{ctx.liver_volume_ml:.2f}" in text
    assert "W400/L40" in text  # CT soft-tissue window


@pytest.mark.parametrize("angles", [(0.0, 0.0, 15.0), (20.0, -10.0, 5.0)])
def test_lesion_view_is_the_transverse_plane_through_the_centre(angles):
    """The sampled lesion cross-section is a disc of radius r around the centre (analytic truth)."""
    ctx = _ctx(angles)
    les = ctx.lesions[0]
    r = 12.0
    c = np.asarray(les.centroid_lps_mm)
    idx, extent, z = qa._axial_plane(ctx, c, qa._xy_extent(ctx))
    lab = qa._sample(ctx.lesion_labels, idx, 0, 0)
    pix = (extent[1] - extent[0]) / lab.shape[1]
    transverse = angles[0] == 0.0 and angles[1] == 0.0
    if transverse:  # snapped to the nearest slice: z of a slice centre within half a slice of the centre
        k = ctx.image.lps_to_index(np.array([[c[0], c[1], z]]))[0][2]
        assert abs(k - round(k)) < 1e-6
        assert abs(z - c[2]) <= 3.5 / 2 + 1e-9
    else:
        assert z == pytest.approx(c[2])
    rr = np.sqrt(r**2 - (z - c[2]) ** 2)  # radius of the sphere's cut at this z
    disc = lab == les.id
    assert disc.sum() * pix * pix == pytest.approx(np.pi * rr**2, rel=0.2)
    ys, xs = np.nonzero(disc)
    cx = extent[0] + (xs.mean() + 0.5) * pix
    cy = extent[3] + (ys.mean() + 0.5) * pix
    assert np.hypot(cx - c[0], cy - c[1]) < 1.5 * pix + 1.0


def test_cohort_index_links_existing_files_only(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "s1.json").write_text("{}")
    (tmp_path / "reports" / "s1.html").write_text("<html></html>")
    rows = [
        {"study_id": "s2", "status": "failed", "error": "s2/ct.nii.gz: image not found <x>"},
        {
            "study_id": "s1",
            "status": "ok",
            "liver_volume_ml": "1510.25",
            "intrahepatic_tumor_ml": 33.5,
            "involvement_percent": 2.2182,
            "lesion_count": "3",
            "warnings_count": 0,
        },
    ]
    path = write_cohort_index(tmp_path, rows)
    text = path.read_text()
    assert path == tmp_path / "index.html"
    assert "href='reports/s1.html'" in text
    assert "href='reports/s1.json'" in text
    assert "reports/s2" not in text
    assert "image not found &lt;x&gt;" in text
    assert text.index(">s1<") < text.index(">s2<")  # sorted by study id
    assert "1510.25" in text
    assert "2.22" in text
    assert "2 studies: 1 ok, 1 not ok" in text


def _chromium_or_skip():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing; run .ci/install_chromium.sh")
        pytest.skip("chromium not installed (Debian package 'chromium'; .ci/install_chromium.sh)")
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]


@pytest.mark.chromium
def test_renders_in_headless_chromium(tmp_path):
    from matplotlib import image as mpimg

    base = _chromium_or_skip()
    ctx = _ctx((20.0, -10.0, 5.0))  # oblique image: resampled transverse views
    page = write_study_html(_report(ctx), ctx, tmp_path / "report.html", pet_suv=ctx.image)
    # 1) the images decode in the browser: a copy of the page with a probe script writing naturalWidth
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load',function(){var o=[];document.querySelectorAll('img')"
        ".forEach(function(i){o.push(i.complete+':'+i.naturalWidth)});var p=document.createElement('pre');"
        "p.id='imgcheck';p.textContent=o.join(';');document.body.appendChild(p);});</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [*base, f"--user-data-dir={tmp_path / 'u1'}", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"<pre id=\"imgcheck\">([^<]*)</pre>", dom.stdout)
    assert m, f"probe output missing; chromium stderr: {dom.stderr[-500:]}"
    states = m.group(1).split(";")
    assert len(states) == len(ctx.lesions) + 2
    assert all(s.startswith("true:") and int(s.split(":")[1]) > 100 for s in states), states
    # 2) the screenshot of the real page is not blank and shows the red lesion contours
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, f"--user-data-dir={tmp_path / 'u2'}", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2000, 1200)
    assert float(img.std()) > 0.1
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)
    assert int(red.sum()) > 200
    green = (img[..., 1] > 0.6) & (img[..., 0] < 0.3) & (img[..., 2] < 0.3)  # liver contours
    assert int(green.sum()) > 200


@pytest.mark.skipif(not Path(CHROMIUM).exists() or not shutil.which("bash"), reason="needs chromium and bash")
def test_chromium_install_script_is_a_no_op_when_installed():
    script = Path(__file__).resolve().parents[1] / ".ci" / "install_chromium.sh"
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "already installed" in out.stdout

"""HTML QA page: content from report.json, privacy and escaping, the embedded viewer data
(decoded here, independently of the page's JavaScript), the byte budget, orientation, PET and the cohort index.

The page in real browsers: tests/test_html_browser.py.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context, voxel_centres
from test_pet_integration import petct  # noqa: F401  (the PET/CT study fixture)

from netlm_imaging.report.html import write_cohort_index, write_study_html
from netlm_imaging.report.viewer_data import decode_rle, orientation_views
from netlm_imaging.volume import Volume

SHAPE = (80, 70, 36)
SPACING = (2.2, 2.0, 3.5)


def _phantom():
    return LiverPhantom(
        [Sphere((-25.0, 5.0, 0.0), 12.0), Sphere((45.0, -10.0, 15.0), 7.0), Sphere((-40.0, 20.0, -20.0), 6.0)]
    )


def _ctx(angles=(0.0, 0.0, 15.0), shape=SHAPE, spacing=SPACING):
    aff = grid_affine(shape, spacing, angles, centre=(5.0, 0.0, 0.0))
    return make_context(_phantom(), shape, aff, modality="CT")


def _report(ctx):
    return {
        "schema_version": "1.1",
        "tool": {"name": "netlm-imaging", "version": "0.1.0"},
        "study": {
            "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
            "modality": "CT",
            "image_source": "/data/DOE_JANE/ct.nii.gz",
            "segmentation_sources": ["/data/DOE_JANE/seg.nii.gz"],
            "grid": {"shape": list(ctx.image.shape), "spacing_mm": list(SPACING), "resampled": False},
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
        "lesions": [{**les.to_dict(), "new_registry_metric_mm": 1.25 * les.id} for les in ctx.lesions],
        "segments": [
            {"segment": s, "liver_volume_ml": 100.0, "tumor_volume_ml": float(s % 3), "lesion_count": s % 2}
            for s in range(1, 9)
        ],
        "classification": {"rules_version": "test", "mahuron_type": "1", "rationale": ["single lesion <b>bold</b>"]},
        "warnings": ["mask touched <script>alert(1)</script> border"],
        "method": {"volume": "voxel_count"},
    }


def _pet(ctx_lesion_centre, radius_mm):
    """A PET on its own coarser grid, turned 20 degrees: SUV 12 inside the sphere, 2 elsewhere (analytic)."""
    pshape = (48, 44, 30)
    paff = grid_affine(pshape, (4.0, 4.0, 4.0), (0.0, 0.0, -20.0), centre=(0.0, 5.0, 0.0))
    pts = voxel_centres(pshape, paff)
    suv = np.where(np.linalg.norm(pts - np.asarray(ctx_lesion_centre), axis=-1) <= radius_mm, 12.0, 2.0)
    return Volume(suv.astype(np.float32), paff, source="pet")


def _with_segments(ctx):
    """Couinaud-like map: segment 2 left of x = 5 mm LPS, 1 right of it, inside the liver."""
    x = voxel_centres(ctx.image.shape, ctx.image.affine)[..., 0]
    ctx.segment_labels = np.where(ctx.liver, np.where(x > 5.0, 2, 1), 0).astype(np.uint8)
    return ctx


def _payload(text: str) -> dict:
    """The viewer data with its base64 blocks put back (as the page's script reads them)."""
    m = re.search(r'<script type="application/json" id="netlm-data">(.*?)</script>', text, re.S)
    assert m
    blobs = dict(re.findall(r'<script type="application/octet-stream" id="netlm-blob-(\d+)">([^<]*)</script>', text))

    def resolve(o):
        if isinstance(o, dict):
            return blobs[str(o["blob"])] if set(o) == {"blob"} else {k: resolve(v) for k, v in o.items()}
        return [resolve(v) for v in o] if isinstance(o, list) else o

    return resolve(json.loads(m.group(1)))


def test_page_is_self_contained_private_escaped_and_from_report_json(tmp_path):
    ctx = _ctx()
    report = _report(ctx)
    report["lesions"][0]["volume_ml"] = 123.456  # the table shows report.json, not the context
    text = write_study_html(report, ctx, tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    # self-contained: no external resource, the viewer script is inline
    assert not re.search(r"(src|href)=['\"](?!data:|#)", text)
    assert "<script src" not in text
    js = (Path(__file__).resolve().parents[1] / "netlm_imaging" / "report" / "js" / "viewer.js").read_text()
    assert js.strip()[:200] in text
    visible = re.sub(r'<script type="application/(json|octet-stream)".*?</script>', "", text, flags=re.S)
    for ident in ("DOE", "JANE", "PID-12345", "19500101", "/data/"):
        assert ident not in visible
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert f"{ctx.liver_volume_ml:.2f}" in text
    assert "123.456" in text
    # one clickable row per report lesion; a metric the code does not know appears as a column
    rows = re.findall(r'<tr class="lesion-row" tabindex="0" data-lesion="(\d+)"', text)
    assert rows == [str(les["id"]) for les in report["lesions"]]
    assert "new registry metric mm" in text
    assert "3.75" in text  # lesion 3's new metric
    assert "soft tissue (-160 to 240 HU)" in text  # W400/L40
    assert "liver (15 to 165 HU)" in text  # W150/L90
    payload = _payload(text)
    assert [les["centroid_lps_mm"] for les in payload["lesions"]] == [
        les["centroid_lps_mm"] for les in report["lesions"]
    ]
    assert "image at full resolution [80, 70, 36]" in text
    assert "masks at full resolution" in text


def test_embedded_masks_and_image_decode_to_the_study(tmp_path):
    ctx = _with_segments(_ctx((20.0, -10.0, 5.0)))
    text = write_study_html(_report(ctx), ctx, tmp_path / "report.html").read_text()
    p = _payload(text)
    assert p["shape"] == list(SHAPE)
    np.testing.assert_allclose(np.asarray(p["affine"]), ctx.image.affine)
    np.testing.assert_array_equal(decode_rle(p["layers"]["liver"], SHAPE).astype(bool), ctx.liver)
    np.testing.assert_array_equal(decode_rle(p["layers"]["lesions"], SHAPE), ctx.lesion_labels)
    np.testing.assert_array_equal(decode_rle(p["layers"]["segments"], SHAPE), ctx.segment_labels)
    f_ordered = np.asfortranarray(ctx.lesion_labels)  # masks are coded in their own memory order
    ctx.lesion_labels = f_ordered
    p2 = _payload(write_study_html(_report(ctx), ctx, tmp_path / "f.html").read_text())
    assert p2["layers"]["lesions"]["strides"] == [1, SHAPE[0], SHAPE[0] * SHAPE[1]]
    np.testing.assert_array_equal(decode_rle(p2["layers"]["lesions"], SHAPE), f_ordered)
    img = p["image"]
    assert img["factor"] == [1, 1, 1]
    enc = np.lib.stride_tricks.as_strided(
        np.frombuffer(base64.b64decode(img["data"]), np.uint8), img["shape"], img["strides"]
    )
    lo, hi = -200.0, 300.0  # stated CT encoding range
    truth = np.clip(np.asarray(ctx.image.array, float), lo, hi)
    back = lo + enc * (hi - lo) / 255
    assert np.max(np.abs(back - truth)) <= (hi - lo) / 255 / 2 + 1e-6


def test_budget_downsamples_the_image_and_the_page_says_so(tmp_path):
    ctx = _ctx((0.0, 0.0, 0.0))
    budget = 0.1  # MB
    path = write_study_html(_report(ctx), ctx, tmp_path / "report.html", budget_mb=budget)
    text = path.read_text()
    p = _payload(text)
    f = p["image"]["factor"]
    assert f[0] > 1
    assert f[0] == f[1]  # in-plane first, both axes alike
    assert len(p["image"]["data"]) <= budget * 1e6
    assert f"image downsampled from [80, 70, 36] to {p['image']['shape']} voxels" in text
    assert "masks at full resolution" in text
    # a block of the embedded image is the mean of its voxels (computed here)
    im = p["image"]
    enc = np.lib.stride_tricks.as_strided(
        np.frombuffer(base64.b64decode(im["data"]), np.uint8), im["shape"], im["strides"]
    )
    a, b, c = 10, 12, 5
    block = np.asarray(ctx.image.array, float)[
        a * f[0] : (a + 1) * f[0], b * f[1] : (b + 1) * f[1], c * f[2] : (c + 1) * f[2]
    ]
    assert -200 + int(enc[a, b, c]) * 500 / 255 == pytest.approx(np.clip(block.mean(), -200, 300), abs=500 / 255)
    # the page (with masks and script) stays near the budget
    assert path.stat().st_size < budget * 1e6 + 120_000


def test_views_follow_the_radiological_layout():
    lps = orientation_views(np.eye(3))  # i -> L, j -> P, k -> S
    assert lps["axial"] == {
        "normal": 2,
        "col": 0,
        "row": 1,
        "flip_col": False,
        "flip_row": False,
        "labels": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
    }
    assert (lps["coronal"]["normal"], lps["coronal"]["flip_row"]) == (1, True)  # superior at the top
    assert lps["coronal"]["labels"] == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert lps["sagittal"]["labels"] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    ras = orientation_views(np.diag([-1.0, -1.0, 1.0]))  # NIfTI-style i -> R, j -> A
    assert (ras["axial"]["flip_col"], ras["axial"]["flip_row"]) == (True, True)
    # slices stored along array axis 0 (sagittal acquisition): the axial view slices axis 1 ... whichever is S
    sag = orientation_views(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))  # i->P, j->I, k->L
    assert (sag["axial"]["normal"], sag["axial"]["col"], sag["axial"]["row"]) == (1, 2, 0)
    assert sag["coronal"]["flip_row"] is False  # j runs inferior already
    c, s = np.cos(np.deg2rad(35)), np.sin(np.deg2rad(35))
    obl = orientation_views(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
    assert obl["axial"]["labels"]["right"] == "LP"  # 35 degrees: mostly left, partly posterior


def test_pet_overlay_and_mip_from_the_pet_grid(tmp_path):
    ctx = _ctx((0.0, 0.0, 10.0))
    # PET on its own coarser, differently oriented grid: SUV 2 background, 12 in lesion 1 (analytic sphere)
    sph = _phantom().lesions[0]
    pet = _pet(sph.centre_lps_mm, sph.radius_mm)
    report = _report(ctx)
    report["pet"] = {"suv_type": "SUVbw", "units": "g/ml", "liver_suv_mean": 2.0, "suv_max": 12.0}
    text = write_study_html(report, ctx, tmp_path / "r.html", pet_suv=pet).read_text()
    p = _payload(text)
    pt = p["pet"]
    enc = np.frombuffer(base64.b64decode(pt["data"]), np.uint8).reshape(pt["shape"])
    f = np.asarray(pt["factor"])
    # the overlay voxel holding the lesion centre reads SUV 12; one far from it reads 2
    ijk = ctx.image.lps_to_index(np.asarray(sph.centre_lps_mm))[0]
    m = np.floor(ijk / f).astype(int)
    assert enc[tuple(m)] * pt["encode_max"] / 255 == pytest.approx(12.0, abs=0.6)
    far = ctx.image.lps_to_index(np.asarray([60.0, 30.0, -30.0]))[0]
    assert enc[tuple(np.floor(far / f).astype(int))] * pt["encode_max"] / 255 == pytest.approx(2.0, abs=0.2)
    mip = p["mip"]
    img = np.frombuffer(base64.b64decode(mip["data"]), np.uint8).reshape(mip["height"], mip["width"])
    assert img.max() * mip["encode_max"] / 255 == pytest.approx(12.0, rel=0.05)
    lab = decode_rle(mip["lesions"], (mip["height"], mip["width"], 1))[:, :, 0]
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    # lesion 1's projected outline surrounds the bright spot of the MIP; projected area ~ pi r^2
    hot = img * mip["encode_max"] / 255 > 7
    assert (lab[hot] == 1).mean() > 0.8
    area = (lab == 1).sum() * mip["spacing_mm"][0] * mip["spacing_mm"][1]
    assert area == pytest.approx(np.pi * sph.radius_mm**2, rel=0.35)
    assert mip["labels"] == {"left": "RP", "right": "LA", "top": "S", "bottom": "I"}  # PET grid turned 20 degrees
    assert "SUV 2.0 (liver SUVmean, report) to 8.0" in text
    assert "liver suv mean" in text  # report.json's PET block as a table
    assert 'id="show-pet"' in text


def _study_report(tmp_path, sid, **over):
    rep = {
        "study": {"grid": {"resampled": False}},
        "liver": {"touches_image_border": False},
        "lesions": [{"id": 1, "touches_image_border": False}],
        "warnings": [],
        "classification": {"mahuron_type": "2"},
    }
    for k, v in over.items():
        rep[k] = v
    (tmp_path / "reports" / f"{sid}.json").write_text(json.dumps(rep))


def test_cohort_index_flags_links_and_thumbnails(tmp_path):
    (tmp_path / "reports").mkdir()
    _study_report(tmp_path, "s1")
    _study_report(tmp_path, "s3", warnings=["x: PET FrameOfReferenceUID differs from that of the image"])
    _study_report(
        tmp_path, "s4", study={"grid": {"resampled": True}}, lesions=[{"id": 7, "touches_image_border": True}]
    )
    _study_report(tmp_path, "s5")
    (tmp_path / "reports" / "s1.html").write_text("<html></html>")
    (tmp_path / "reports" / "s4.html").write_text("<html></html>")
    (tmp_path / "reports" / "s1.thumb.png").write_bytes(b"\x89PNG-test")
    disc = tmp_path / "disc.csv"
    disc.write_text("study,quantity,verdict\ncohort/s5,liver_volume_ml,DISCREPANT\ns1,liver_volume_ml,agree\n")
    rows = [
        {"study_id": "s2", "status": "failed", "error": "s2/ct.nii.gz: image not found <x>"},
        *(
            {
                "study_id": s,
                "status": "ok",
                "liver_volume_ml": "1510.25",
                "involvement_percent": 2.2182,
                "lesion_count": "3",
                "warnings_count": "0",
            }
            for s in ("s1", "s3", "s4", "s5")
        ),
    ]
    text = write_cohort_index(tmp_path, rows, discrepancies=disc).read_text()
    assert 'href="reports/s1.html"' in text
    assert 'href="reports/s1.json"' in text
    assert "reports/s2" not in text
    assert "image not found &lt;x&gt;" in text
    assert "data:image/png;base64," + base64.b64encode(b"\x89PNG-test").decode() in text
    flags = dict(re.findall(r'<tr data-study="(\w+)" data-flags="(\d+)">', text))
    assert flags == {"s1": "0", "s2": "0", "s3": "2", "s4": "2", "s5": "1"}
    for name in ("PET/CT frame", "resampled", "check", "warnings"):
        assert f">{name}</span>" in text
    assert 'href="reports/s4.html#lesion=7" class="flag"' in text  # opens the page at the border lesion
    # what to look at first: failed, then most flags, then the unflagged
    order = re.findall(r'<tr data-study="(\w+)"', text)
    assert order == ["s2", "s3", "s4", "s5", "s1"]
    assert "5 studies: 4 ok, 1 not ok" in text
    assert "2.22" in text


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists() or not shutil.which("bash"), reason="needs chromium")
def test_browser_install_script_is_a_no_op_when_installed():
    if not (Path("/usr/bin/chromedriver").exists() and Path("/usr/bin/firefox-esr").exists()):
        pytest.skip("chromium-driver or firefox-esr missing")
    script = Path(__file__).resolve().parents[1] / ".ci" / "install_chromium.sh"
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "already installed" in out.stdout


def test_pet_image_without_liver_or_lesions(tmp_path):
    """A PET study page (the image is the SUV volume): no liver, no lesions, the MIP drawn from the image."""
    from netlm_imaging.measure.context import MeasurementContext

    sph = _phantom().lesions[0]
    pet = _pet(sph.centre_lps_mm, sph.radius_mm)
    ctx = MeasurementContext(image=pet, liver=None, lesion_labels=np.zeros(pet.shape, np.int32), lesions=[])
    report = {"study": {"modality": "PT"}, "lesions": [], "warnings": [], "pet": {"suv_max": 12.0}}
    text = write_study_html(report, ctx, tmp_path / "pet.html").read_text()
    p = _payload(text)
    assert "liver" not in p["layers"]
    assert "pet" not in p  # the image is the PET: no second copy as overlay
    names = [x["name"] for x in p["image"]["presets"]]
    assert names[:4] == ["auto", "SUV 0-5", "SUV 0-10", "SUV 0-20"]
    mip = p["mip"]
    img = np.frombuffer(base64.b64decode(mip["data"]), np.uint8)
    assert img.max() * mip["encode_max"] / 255 == pytest.approx(12.0, rel=0.05)
    assert "No lesions." in text


def test_pet_ct_study_page_through_the_cli(petct, tmp_path):  # noqa: F811  (petct: the imported fixture)
    """analyze --html on a DICOM PET/CT folder: SUV overlay and MIP from the PET data, tables from report.json."""
    from netlm_imaging.cli import main

    out = tmp_path / "o"
    assert main(["analyze", str(petct), "--out", str(out), "--html", "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    text = (out / "report.html").read_text()
    p = _payload(text)
    (les,) = report["lesions"]
    # lesion table and PET table from report.json
    assert "SUVmax" in text
    assert f"{les['suv_max']:.2f}" in text
    ref = report["pet"]["liver_suv_mean"]
    assert f"SUV {ref:.1f} (liver SUVmean, report) to {4 * ref:.1f}" in text
    # the reference regions (nested in report.json) are on the page, with their SUVmean
    pet_table = text[text.index("<h2>PET</h2>") : text.index("<h2>Classification</h2>")]
    liver_ref = report["pet"]["liver_reference"]
    assert f'<th>liver reference suv mean</th><td class="num">{liver_ref["suv_mean"]:.2f}</td>' in pet_table
    assert f'<th>suv max</th><td class="num">{report["pet"]["suv_max"]:.2f}</td>' in pet_table
    # the overlay at the reported lesion centroid reads the lesion's uptake (SUV 20 in the phantom)
    pt = p["pet"]
    enc = np.frombuffer(base64.b64decode(pt["data"]), np.uint8).reshape(pt["shape"])
    inv = np.linalg.inv(np.asarray(p["affine"]))
    ijk = inv[:3, :3] @ np.asarray(les["centroid_lps_mm"]) + inv[:3, 3]
    assert enc[tuple(np.floor(ijk / np.asarray(pt["factor"])).astype(int))] * pt["encode_max"] / 255 == pytest.approx(
        20.0, rel=0.1
    )
    mip = p["mip"]
    img = np.frombuffer(base64.b64decode(mip["data"]), np.uint8).reshape(mip["height"], mip["width"])
    assert img.max() * mip["encode_max"] / 255 == pytest.approx(20.0, rel=0.05)
    lab = decode_rle(mip["lesions"], (mip["height"], mip["width"], 1))[:, :, 0]
    hot = img * mip["encode_max"] / 255 > 17.0  # only the lesion (SUV 20) is above the spleen (15)
    assert hot.any()
    assert (lab[hot] == les["id"]).mean() > 0.9


def test_masks_beyond_the_voxel_cap_are_sampled_and_the_page_says_so(tmp_path, monkeypatch):
    from netlm_imaging.report import viewer_data

    ctx = _ctx((0.0, 0.0, 0.0))
    monkeypatch.setattr(viewer_data, "MAX_MASK_VOXELS", 80 * 70 * 36 // 3)  # a third of the grid
    text = write_study_html(_report(ctx), ctx, tmp_path / "r.html").read_text()
    p = _payload(text)
    assert p["mask_stride"] == [2, 2, 1]  # in-plane first
    assert "masks sampled every [2, 2, 1] voxels" in text
    # the middle voxel of each 2 x 2 block (no half-block shift against the image)
    np.testing.assert_array_equal(decode_rle(p["layers"]["lesions"], p["mask_shape"]), ctx.lesion_labels[1::2, 1::2, :])


def test_analyze_html_budget_flag(tmp_path, capsys):
    from netlm_imaging.cli import main

    demo = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
    out = tmp_path / "o"
    assert main(["analyze", str(demo), "--out", str(out), "--html", "--html-budget-mb", "0.3", "--quiet"]) == 0
    text = (out / "report.html").read_text()
    p = _payload(text)
    assert len(p["image"]["data"]) <= 0.3e6
    assert "to fit the 0.3 MB budget" in text
    assert main(["analyze", str(demo), "--out", str(tmp_path / "x"), "--html", "--html-budget-mb", "-1"]) == 2
    assert "--html-budget-mb -1.0: give a positive size in MB" in capsys.readouterr().err


def test_single_slice_study_with_a_tiny_budget(tmp_path):
    """One slice, 1 kB budget: masks thin out in-plane only as far as the grid allows; the page still renders."""
    ctx = _ctx((0.0, 0.0, 0.0), shape=(80, 70, 1))
    text = write_study_html(_report(ctx), ctx, tmp_path / "one.html", budget_mb=0.001).read_text()
    p = _payload(text)
    assert p["mask_shape"][2] == 1
    st = p["mask_stride"]
    want = ctx.lesion_labels[st[0] // 2 :: st[0], st[1] // 2 :: st[1], :]
    np.testing.assert_array_equal(decode_rle(p["layers"]["lesions"], p["mask_shape"]), want)
    assert "image at full resolution [80, 70, 1]" in text  # a 5,600-voxel image is under the 0.1 MB floor

"""The performance budget of shared/DESIGN.md, measured side by side in one run.

(a) Lesion metrics: netlm_imaging.measure (26-connected instances + each
    lesion's volume, centroid, axial and 3-D diameters, exactly the calls
    ``measure_burden`` makes) vs SimpleITK ConnectedComponent +
    LabelShapeStatisticsImageFilter (Feret diameter on) and vs pyradiomics
    shape features (one extraction per lesion) on the same lesion mask; the
    3-D diameters must agree within one voxel spacing of SimpleITK's Feret
    diameter and the voxel counts exactly.
(b) ``netlm analyze`` end to end (in-process through ``netlm_imaging.cli.main``
    and as a ``netlm`` subprocess) vs the raw read lower bound (pydicom reading
    the CT pixels + highdicom decoding the SEG; nibabel reading both arrays for
    NIfTI), on DICOM studies of 200 and 400 slices and on NIfTI; peak memory
    of the subprocess (own peak RSS via ``os.wait4``, and the tracemalloc peak
    of the Python/numpy heap) vs the CT array; growth from 200 to 400 slices.
(c) ``netlm --help`` wall time (lazy imports).

Usage::

    python benchmarks/run.py [--slices 200 400] [--quick] [--repeat N]

Studies are generated on first use by ``benchmarks/make_study.py`` into
``benchmarks/_work/`` (about 30 s per 200 slices). ``--quick``: 200 slices
only, one repeat, the pyradiomics extractor timed on 2 lesions (scaled to 40).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, best_time, format_table, netlm_script, python, run_child, warm_page_cache
from make_study import StudyPaths, make_study, study_affine

logger = logging.getLogger("netlm.benchmarks")

TARGET_SITK = 5.0
TARGET_RADIOMICS = 200.0
TARGET_E2E = 1.3
TARGET_MEMORY = 3.0
TARGET_HELP_S = 0.5


# --------------------------------------------------------------------------- (a) lesion metrics
def _load_masks(paths: StudyPaths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import nibabel as nib

    image = np.asanyarray(nib.load(str(paths.image_nifti)).dataobj)
    labels = np.asanyarray(nib.load(str(paths.labels_nifti)).dataobj)
    return image, labels == 2, study_affine(paths.n_slices)


def ours_lesion_metrics(image: Any, lesion_mask: np.ndarray) -> list[dict[str, Any]]:
    """All lesion metrics the way ``netlm analyze`` computes them: ``measure_burden`` on a lesion layer.

    26-connected instances, then each lesion's volume, centroid, longest axial
    diameter, short axis and maximum 3-D diameter (and border flag, mean
    intensity). No liver layer, so no intrahepatic test is added to the time.
    """
    from netlm_imaging.measure.burden import measure_burden
    from netlm_imaging.segmentation import MaskLayer

    layer = MaskLayer("lesion", image.with_array(lesion_mask), label="lesion", source="benchmark")
    res = measure_burden(image, [layer], connectivity=26)
    return [
        {
            "voxels": les.voxel_count,
            "centroid": np.asarray(les.centroid_lps_mm),
            "d3_mm": les.max_3d_diameter_mm,
            "axial_mm": les.longest_axial_diameter_mm,
        }
        for les in res.ctx.lesions
    ]


def _sitk_image(mask: np.ndarray, affine: np.ndarray) -> Any:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(mask.transpose(2, 1, 0)).astype(np.uint8))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in affine[:3, 3]])
    img.SetDirection([float(v) for v in (affine[:3, :3] / spacing).ravel()])
    return img


def sitk_lesion_metrics(mask_img: Any) -> tuple[list[dict[str, Any]], Any]:
    """SimpleITK ConnectedComponent (26) + LabelShapeStatistics with Feret diameter (perimeter off)."""
    import SimpleITK as sitk

    cc = sitk.ConnectedComponent(mask_img, True)
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputeFeretDiameterOn()
    f.ComputePerimeterOff()  # not a metric we compute; leaving it on would only slow SimpleITK down
    f.Execute(cc)
    out = [
        {
            "label": int(lab),
            "voxels": int(f.GetNumberOfPixels(lab)),
            "centroid": np.asarray(f.GetCentroid(lab)),
            "d3_mm": float(f.GetFeretDiameter(lab)),
        }
        for lab in f.GetLabels()
    ]
    return out, cc


def radiomics_extractor_metrics(image_img: Any, cc_img: Any, labels: list[int]) -> list[dict[str, float]]:
    """pyradiomics as users run it: the feature extractor (shape only) on the image and lesion map, per label."""
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ext = featureextractor.RadiomicsFeatureExtractor(geometryTolerance=1e-3)
    ext.disableAllFeatures()
    ext.disableAllImageTypes()
    ext.enableImageTypeByName("Original")
    ext.enableFeatureClassByName("shape")
    out = []
    for lab in labels:
        res = ext.execute(image_img, cc_img, label=int(lab))
        out.append({"d3_mm": float(res["original_shape_Maximum3DDiameter"])})
    return out


def radiomics_shape_cropped(image_img: Any, cc_img: Any, labels: list[int]) -> list[dict[str, float]]:
    """pyradiomics' shape class alone on each lesion's bounding box (+2 voxels): its best case."""
    import SimpleITK as sitk
    from radiomics import shape

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputePerimeterOff()
    f.Execute(cc_img)
    size_all = cc_img.GetSize()
    out = []
    for lab in labels:
        bb = f.GetBoundingBox(lab)
        idx = [max(0, b - 2) for b in bb[:3]]
        size = [min(bb[3 + a] + 4, size_all[a] - idx[a]) for a in range(3)]
        feat = shape.RadiomicsShape(
            sitk.RegionOfInterest(image_img, size, idx), sitk.RegionOfInterest(cc_img, size, idx), label=int(lab)
        )
        feat.enableAllFeatures()
        v = feat.execute()
        out.append({"d3_mm": float(v["Maximum3DDiameter"]), "volume_mm3": float(v["VoxelVolume"])})
    return out


def bench_lesions(paths: StudyPaths, repeat: int, radiomics_n: int) -> tuple[list[Row], dict[str, Any]]:
    """Part (a)."""
    import SimpleITK as sitk

    from netlm_imaging.volume import Volume

    image, lesion_mask, affine = _load_masks(paths)
    vol = Volume(image, affine, source=str(paths.image_nifti))
    t_ours, ours = best_time(lambda: ours_lesion_metrics(vol, lesion_mask), repeat)
    mask_img = _sitk_image(lesion_mask, affine)
    t_sitk, (sitk_res, cc_img) = best_time(lambda: sitk_lesion_metrics(mask_img), repeat)
    # agreement: pair lesions by nearest centroid
    spacing_max = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    worst_d, worst_count, unmatched = 0.0, 0, 0
    for o in ours:
        s = min(sitk_res, key=lambda r: float(np.linalg.norm(r["centroid"] - o["centroid"])))
        if np.linalg.norm(s["centroid"] - o["centroid"]) > 1e-3:
            unmatched += 1
        worst_d = max(worst_d, abs(o["d3_mm"] - s["d3_mm"]))
        worst_count = max(worst_count, abs(o["voxels"] - s["voxels"]))
    info: dict[str, Any] = {
        "n_ours": len(ours),
        "n_sitk": len(sitk_res),
        "max_abs_d3_diff_mm": worst_d,
        "voxel_spacing_max_mm": spacing_max,
        "max_voxel_count_diff": worst_count,
        "unmatched_centroids": unmatched,
        "t_ours_s": t_ours,
        "t_sitk_s": t_sitk,
    }
    rows = [
        Row(
            f"lesion metrics ({len(ours)} lesions) vs SimpleITK CC+shape+Feret",
            f"{t_ours:.3f} s",
            f"{t_sitk:.3f} s",
            t_sitk / t_ours,
            f">= {TARGET_SITK:g}x faster",
            t_sitk / t_ours >= TARGET_SITK,
        ),
        Row(
            "max |3-D diameter - SimpleITK Feret| (mm)",
            f"{worst_d:.3f}",
            f"spacing {spacing_max:.2f}",
            None,
            "<= 1 voxel spacing",
            worst_d <= spacing_max and worst_count == 0 and len(ours) == len(sitk_res) and unmatched == 0,
        ),
    ]
    try:
        import radiomics  # noqa: F401
    except ImportError as exc:
        rows.append(
            Row(
                "lesion metrics vs pyradiomics shape",
                f"{t_ours:.3f} s",
                f"not installed ({exc})",
                None,
                f">= {TARGET_RADIOMICS:g}x faster",
                None,
            )
        )
        return rows, info
    img_img = sitk.GetImageFromArray(np.ascontiguousarray(image.transpose(2, 1, 0)))
    img_img.CopyInformation(mask_img)
    labels = [r["label"] for r in sitk_res]
    t_crop, rad_c = best_time(lambda: radiomics_shape_cropped(img_img, cc_img, labels), 1)
    info["t_radiomics_shape_cropped_s"] = t_crop
    info["max_abs_radiomics_mesh_vs_feret_mm"] = max(abs(r["d3_mm"] - s["d3_mm"]) for r, s in zip(rad_c, sitk_res))
    n = min(radiomics_n, len(labels))
    t0 = time.perf_counter()
    radiomics_extractor_metrics(img_img, cc_img, labels[:n])
    t_ext = (time.perf_counter() - t0) * len(labels) / n
    info["t_radiomics_extractor_s"] = t_ext
    info["radiomics_extractor_lesions_timed"] = n
    rows.append(
        Row(
            f"vs pyradiomics extractor, shape (timed {n}, x{len(labels)}/{n})",
            f"{t_ours:.3f} s",
            f"{t_ext:.1f} s",
            t_ext / t_ours,
            f">= {TARGET_RADIOMICS:g}x faster",
            t_ext / t_ours >= TARGET_RADIOMICS,
        )
    )
    rows.append(
        Row(
            "vs pyradiomics shape class on cropped lesions",
            f"{t_ours:.3f} s",
            f"{t_crop:.2f} s",
            t_crop / t_ours,
            "(its best case; no target)",
            None,
        )
    )
    return rows, info


# --------------------------------------------------------------------------- (b) end to end
def raw_read_dicom(paths: StudyPaths) -> dict[str, float]:
    """Lower bound: pydicom reads every CT slice's pixels; highdicom decodes the SEG."""
    import highdicom as hd
    import pydicom

    files = sorted(paths.ct_dir.glob("*.dcm"))
    t0 = time.perf_counter()
    first = pydicom.dcmread(str(files[0]))
    arr = np.empty((len(files), int(first.Rows), int(first.Columns)), dtype=first.pixel_array.dtype)
    for k, f in enumerate(files):
        arr[k] = pydicom.dcmread(str(f)).pixel_array
    t1 = time.perf_counter()
    seg = hd.seg.segread(str(paths.seg_file))
    vol = seg.get_volume(combine_segments=False)
    _ = vol.array
    t2 = time.perf_counter()
    return {"ct_s": t1 - t0, "seg_s": t2 - t1, "total_s": t2 - t0, "ct_bytes": float(arr.nbytes)}


#: The raw-read lower bound as a fresh process (interpreter start and imports included), to compare
#: with ``netlm analyze`` in a fresh process like for like.
_RAW_DICOM_CHILD = """
import sys
from pathlib import Path
import numpy as np, pydicom, highdicom as hd
files = sorted(Path(sys.argv[1]).glob("*.dcm"))
first = pydicom.dcmread(str(files[0]))
arr = np.empty((len(files), int(first.Rows), int(first.Columns)), dtype=first.pixel_array.dtype)
for k, f in enumerate(files):
    arr[k] = pydicom.dcmread(str(f)).pixel_array
vol = hd.seg.segread(sys.argv[2]).get_volume(combine_segments=False)
_ = vol.array
"""
_RAW_NIFTI_CHILD = """
import sys
import nibabel as nib, numpy as np
for p in sys.argv[1:]:
    _ = np.asanyarray(nib.load(p, mmap=False).dataobj)
"""


def raw_read_child(paths: StudyPaths, kind: str) -> Any:
    """Run the raw read in a fresh interpreter; returns the ``ChildRun``."""
    if kind == "dicom":
        return run_child([python(), "-c", _RAW_DICOM_CHILD, str(paths.ct_dir), str(paths.seg_file)])
    return run_child([python(), "-c", _RAW_NIFTI_CHILD, str(paths.image_nifti), str(paths.labels_nifti)])


def raw_read_nifti(paths: StudyPaths) -> dict[str, float]:
    """Lower bound: nibabel reads the image and the label map arrays."""
    import nibabel as nib

    t0 = time.perf_counter()
    img = np.asanyarray(nib.load(str(paths.image_nifti), mmap=False).dataobj)
    lab = np.asanyarray(nib.load(str(paths.labels_nifti), mmap=False).dataobj)
    t1 = time.perf_counter()
    return {"ct_s": t1 - t0, "seg_s": 0.0, "total_s": t1 - t0, "ct_bytes": float(img.nbytes), "lab": float(lab.sum())}


def _analyze_args(paths: StudyPaths, kind: str, out: Path) -> list[str]:
    if kind == "dicom":
        return ["analyze", str(paths.dicom_dir), "--out", str(out), "--quiet"]
    return [
        "analyze",
        "--image",
        str(paths.image_nifti),
        "--seg",
        str(paths.labels_nifti),
        "--out",
        str(out),
        "--quiet",
    ]


def _in_process(args: list[str]) -> float:
    from netlm_imaging.cli import main

    t0 = time.perf_counter()
    rc = main(args)
    dt = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"netlm {' '.join(args)} exited {rc}")
    return dt


_TRACE_SNIPPET = (
    "import sys, tracemalloc; tracemalloc.start(); from netlm_imaging.cli import main; "
    "rc = main(sys.argv[1:]); print(tracemalloc.get_traced_memory()[1]); sys.exit(rc)"
)


def bench_end_to_end(paths: StudyPaths, kind: str, repeat: int) -> tuple[list[Row], dict[str, Any]]:
    """Part (b) for one study and input kind ("dicom" or "nifti")."""
    files = [paths.dicom_dir] if kind == "dicom" else [paths.image_nifti, paths.labels_nifti]
    warm_page_cache(files)
    raw_fn = raw_read_dicom if kind == "dicom" else raw_read_nifti
    raw = min((raw_fn(paths) for _ in range(repeat)), key=lambda r: r["total_s"])
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        args = _analyze_args(paths, kind, Path(tmp))
        _in_process(args)  # warm-up: imports and lazy caches, as a long-running PACS hook would have them
        t_in = min(_in_process(args) for _ in range(repeat))
        sub = min((run_child([netlm_script(), *args]) for _ in range(repeat)), key=lambda c: c.wall_s)
        raw_sub = min((raw_read_child(paths, kind) for _ in range(repeat)), key=lambda c: c.wall_s)
        if sub.returncode != 0:
            raise RuntimeError(f"netlm subprocess failed: {sub.stderr.strip()}")
        traced = run_child([python(), "-c", _TRACE_SNIPPET, *args])
        traced_peak = int(traced.stdout.strip().splitlines()[-1]) if traced.returncode == 0 else -1
        baseline = run_child(
            [
                python(),
                "-c",
                "import netlm_imaging.api, netlm_imaging.io.loader, pydicom, "
                "highdicom, SimpleITK, nibabel, scipy.ndimage, scipy.spatial",
            ]
        )
        report = json.loads((Path(tmp) / "report.json").read_text())
    ct_bytes = raw["ct_bytes"]
    float_bytes = ct_bytes / np.dtype(np.int16).itemsize * 4
    label = f"{kind.upper()} {paths.n_slices} sl"
    info = {
        "raw": raw,
        "analyze_in_process_s": t_in,
        "analyze_subprocess_s": sub.wall_s,
        "raw_read_subprocess_s": raw_sub.wall_s,
        "subprocess_peak_rss_bytes": sub.max_rss_bytes,
        "baseline_import_rss_bytes": baseline.max_rss_bytes,
        "tracemalloc_peak_bytes": traced_peak,
        "ct_int16_bytes": ct_bytes,
        "lesion_count": report["tumor"]["lesion_count"],
        "liver_volume_ml": report["liver"]["volume_ml"],
    }
    rss_net = sub.max_rss_bytes - baseline.max_rss_bytes
    rows = [
        Row(
            f"analyze in-process, {label}",
            f"{t_in:.2f} s",
            f"raw read {raw['total_s']:.2f} s (CT {raw['ct_s']:.2f} + SEG {raw['seg_s']:.2f})",
            t_in / raw["total_s"],
            f"<= {TARGET_E2E:g}x",
            t_in / raw["total_s"] <= TARGET_E2E,
        ),
        Row(
            f"analyze subprocess, {label}",
            f"{sub.wall_s:.2f} s",
            f"raw read {raw['total_s']:.2f} s",
            sub.wall_s / raw["total_s"],
            f"<= {TARGET_E2E:g}x",
            sub.wall_s / raw["total_s"] <= TARGET_E2E,
        ),
        Row(
            f"analyze subprocess vs raw read subprocess, {label}",
            f"{sub.wall_s:.2f} s",
            f"raw read, fresh process {raw_sub.wall_s:.2f} s",
            sub.wall_s / raw_sub.wall_s,
            f"<= {TARGET_E2E:g}x",
            sub.wall_s / raw_sub.wall_s <= TARGET_E2E,
        ),
        Row(
            f"peak heap (tracemalloc), {label}",
            f"{traced_peak / 2**20:.0f} MiB",
            f"CT int16 {ct_bytes / 2**20:.0f} MiB",
            traced_peak / ct_bytes,
            f"<= {TARGET_MEMORY:g}x",
            traced_peak / ct_bytes <= TARGET_MEMORY,
        ),
        Row(
            f"peak RSS - import baseline, {label}",
            f"{rss_net / 2**20:.0f} MiB",
            f"CT int16 {ct_bytes / 2**20:.0f} MiB (float32 {float_bytes / 2**20:.0f})",
            rss_net / ct_bytes,
            f"<= {TARGET_MEMORY:g}x",
            rss_net / ct_bytes <= TARGET_MEMORY,
        ),
    ]
    return rows, info


# --------------------------------------------------------------------------- (c) --help
def bench_help(repeat: int = 5) -> tuple[Row, float]:
    """Part (c): best wall time of ``netlm --help`` in a fresh interpreter."""
    best = min(run_child([netlm_script(), "--help"]).wall_s for _ in range(repeat))
    return Row(
        "netlm --help (fresh process)", f"{best:.3f} s", "", None, f"< {TARGET_HELP_S:g} s", best < TARGET_HELP_S
    ), best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table; exit 0 when every target is met, 1 otherwise."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, nargs="+", default=[200, 400], help="study sizes (default 200 400)")
    p.add_argument("--quick", action="store_true", help="200 slices, one repeat, pyradiomics extractor on 2 lesions")
    p.add_argument("--repeat", type=int, default=2, help="best of N for timings (default 2)")
    p.add_argument(
        "--radiomics-lesions", type=int, default=4, help="lesions timed with the pyradiomics extractor (scaled to all)"
    )
    p.add_argument("--json", help="also write all figures to this JSON file")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("highdicom").setLevel(logging.ERROR)
    slices = [200] if a.quick else sorted(set(a.slices))
    repeat = 1 if a.quick else max(1, a.repeat)
    t_start = time.perf_counter()
    studies = {n: make_study(n) for n in slices}
    rows: list[Row] = []
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    help_row, _ = bench_help()
    lesion_rows, figures["lesions"] = bench_lesions(
        studies[slices[0]], max(repeat, 2), 2 if a.quick else a.radiomics_lesions
    )
    rows += lesion_rows
    e2e: dict[str, Any] = {}
    for n in slices:
        for kind in ("dicom", "nifti") if n == slices[0] else ("dicom",):
            r, e2e[f"{kind}_{n}"] = bench_end_to_end(studies[n], kind, repeat)
            rows += r
    figures["end_to_end"] = e2e
    if len(slices) >= 2:
        lo, hi = slices[0], slices[-1]
        a_lo, a_hi = e2e[f"dicom_{lo}"], e2e[f"dicom_{hi}"]
        g_ours = a_hi["analyze_in_process_s"] / a_lo["analyze_in_process_s"]
        g_raw = a_hi["raw"]["total_s"] / a_lo["raw"]["total_s"]
        rows.append(
            Row(
                f"time growth {lo} -> {hi} slices (DICOM)",
                f"x{g_ours:.2f}",
                f"raw read x{g_raw:.2f}",
                g_ours / g_raw,
                f"no worse than linear (x{hi / lo:g}) or the raw read",
                g_ours <= 1.15 * max(hi / lo, g_raw),
            )
        )
    rows.append(help_row)
    sys.stdout.write(format_table(rows) + "\n")
    sys.stdout.write(f"\n(total benchmark time {time.perf_counter() - t_start:.0f} s, {os.cpu_count()} CPUs)\n")
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=1, default=float))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

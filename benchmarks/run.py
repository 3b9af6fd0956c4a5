"""The performance goals of issue 17 (and shared/DESIGN.md), measured side by side in one run.

Every comparison runs both sides on the same study, interleaved round by round
(the order alternates), drops the first (warm-up) round and reports the
minimum and the median of the rest; PASS / MISS is judged on the ratio of the
medians (the ratio of the minima is shown beside it).

Rows (targets in the table):

* lesion metrics: ``measure_burden`` on the lesion mask vs SimpleITK
  ConnectedComponent + LabelShapeStatistics with Feret diameter (same numbers
  checked: counts, voxel counts, diameters);
* ``netlm analyze`` in a fresh process vs a fresh SimpleITK process that only
  reads the CT series (``ImageSeriesReader`` + GDCM file names);
* in-process analyze (warm, as in a batch worker) vs the numpy floor (CT
  pixels read from their offsets into one preallocated array + one
  ``unpackbits`` of the SEG frames) and vs the pydicom + highdicom read;
* peak RSS of a fresh analyze at each size vs 2 x the int16 CT + 100 MiB, and
  the RSS of an interpreter that imports exactly the modules analyze imported;
* ``--seg-out``, ``--sr``, ``--html``: fresh processes beside plain analyze;
* NIfTI (``.nii.gz``) analyze in-process vs the nibabel load of the same files,
  and its growth from the smallest to the largest study;
* PET (shared/data mirp_sts_fdg_pet, 267 slices, RTSTRUCT): analyze vs the
  folder scan + pixel read, and the number of pydicom header parses.

Usage::

    python benchmarks/run.py [--slices 200 400 800] [--rounds 5] [--json figures.json]
    python benchmarks/run.py --quick        # 200 slices, 3 rounds

Studies are generated on first use by ``benchmarks/make_study.py`` into
``benchmarks/_work/``. Cohort throughput is ``benchmarks/cohort_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    ROOT,
    Row,
    Timings,
    byte_compile_package,
    format_table,
    interleaved,
    netlm_script,
    python,
    run_child,
    warm_page_cache,
)
from _stages import StageClock
from make_study import StudyPaths, make_study, study_affine

logger = logging.getLogger("netlm.benchmarks")

TARGET_SITK = 10.0
TARGET_FRESH_VS_SITK_READ = 1.0
TARGET_VS_FLOOR = 2.5
TARGET_VS_PYDICOM_HIGHDICOM = 0.8
TARGET_RSS_CT_FACTOR = 2.0
TARGET_RSS_LIBS_MIB = 100.0
TARGET_SEG_OUT_FACTOR = 2.0
TARGET_SEG_OUT_RSS_GIB = 1.0
TARGET_SR_EXTRA_S = 0.3
TARGET_HTML_EXTRA_S = 1.0
TARGET_NIFTI = 1.2
TARGET_HELP_S = 0.5
MIB = 2**20
PET_STUDY = ROOT.parent / "shared" / "data" / "mirp_sts_fdg_pet" / "test" / "data" / "sts_images_raw" / "STS_001"


def _ratio_row(what: str, ours: Timings, ref: Timings, ref_name: str, target: float, *, faster: bool = False) -> Row:
    """One comparison row; ``faster``: the target is a speed-up (reference / ours >= target)."""
    if faster:
        med, mn = ref.median / ours.median, ref.min / ours.min
        return Row(what, ours.show(), f"{ref_name} {ref.show()}", med, f">= {target:g}x faster", med >= target, mn)
    med, mn = ours.median / ref.median, ours.min / ref.min
    return Row(what, ours.show(), f"{ref_name} {ref.show()}", med, f"<= {target:g}x", med <= target, mn)


def _timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run


def _child_time(argv: list[str], keep: list[Any] | None = None) -> Callable[[], float]:
    def run() -> float:
        c = run_child(argv)
        if c.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}... exited {c.returncode}: {c.stderr.strip()[-400:]}")
        if keep is not None:
            keep.append(c)
        return c.wall_s

    return run


# --------------------------------------------------------------------------- lesion metrics
def _load_masks(paths: StudyPaths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import nibabel as nib

    image = np.asanyarray(nib.load(str(paths.image_nifti)).dataobj)
    labels = np.asanyarray(nib.load(str(paths.labels_nifti)).dataobj)
    return image, labels == 2, study_affine(paths.n_slices)


def ours_lesion_metrics(image: Any, lesion_mask: np.ndarray) -> list[dict[str, Any]]:
    """All lesion metrics the way ``netlm analyze`` computes them: ``measure_burden`` on a lesion layer."""
    from netlm_imaging.measure.burden import measure_burden
    from netlm_imaging.segmentation import MaskLayer

    layer = MaskLayer("lesion", image.with_array(lesion_mask), label="lesion", source="benchmark")
    res = measure_burden(image, [layer], connectivity=26)
    return [
        {"voxels": les.voxel_count, "centroid": np.asarray(les.centroid_lps_mm), "d3_mm": les.max_3d_diameter_mm}
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


def sitk_lesion_metrics(mask_img: Any) -> list[dict[str, Any]]:
    """SimpleITK ConnectedComponent (26) + LabelShapeStatistics with Feret diameter (perimeter off)."""
    import SimpleITK as sitk

    cc = sitk.ConnectedComponent(mask_img, True)
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputeFeretDiameterOn()
    f.ComputePerimeterOff()  # not a metric we compute; leaving it on would only slow SimpleITK down
    f.Execute(cc)
    return [
        {
            "voxels": int(f.GetNumberOfPixels(lab)),
            "centroid": np.asarray(f.GetCentroid(lab)),
            "d3_mm": float(f.GetFeretDiameter(lab)),
        }
        for lab in f.GetLabels()
    ]


def bench_lesions(paths: StudyPaths, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Lesion metrics vs SimpleITK, and the agreement of the numbers."""
    from netlm_imaging.volume import Volume

    image, lesion_mask, affine = _load_masks(paths)
    vol = Volume(image, affine, source=str(paths.image_nifti))
    mask_img = _sitk_image(lesion_mask, affine)
    res: dict[str, Any] = {}
    t = interleaved(
        {
            "ours": _timed(lambda: res.__setitem__("ours", ours_lesion_metrics(vol, lesion_mask))),
            "sitk": _timed(lambda: res.__setitem__("sitk", sitk_lesion_metrics(mask_img))),
        },
        rounds,
    )
    ours, ref = res["ours"], res["sitk"]
    spacing_max = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    worst_d, worst_count, unmatched = 0.0, 0, 0
    for o in ours:
        s = min(ref, key=lambda r: float(np.linalg.norm(r["centroid"] - o["centroid"])))
        unmatched += int(np.linalg.norm(s["centroid"] - o["centroid"]) > 1e-3)
        worst_d = max(worst_d, abs(o["d3_mm"] - s["d3_mm"]))
        worst_count = max(worst_count, abs(o["voxels"] - s["voxels"]))
    same = worst_d <= spacing_max and worst_count == 0 and len(ours) == len(ref) and unmatched == 0
    rows = [
        _ratio_row(
            f"lesion metrics ({len(ours)} lesions) vs SimpleITK CC+shape+Feret",
            t["ours"],
            t["sitk"],
            "SimpleITK",
            TARGET_SITK,
            faster=True,
        ),
        Row(
            "  same numbers: lesions, voxel counts, |3-D diameter - Feret| (mm)",
            f"{len(ours)}, max diff {worst_count}, {worst_d:.3f}",
            f"{len(ref)}; spacing {spacing_max:.2f}",
            None,
            "equal counts, <= 1 voxel spacing",
            same,
        ),
    ]
    info = {
        "ours_s": t["ours"].runs,
        "sitk_s": t["sitk"].runs,
        "n_ours": len(ours),
        "n_sitk": len(ref),
        "max_abs_d3_diff_mm": worst_d,
        "max_voxel_count_diff": worst_count,
    }
    return rows, info


# --------------------------------------------------------------------------- references
_SITK_READ_CHILD = """
import sys
import SimpleITK as sitk
r = sitk.ImageSeriesReader()
r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))
img = r.Execute()
assert img.GetSize()[2] > 1
"""


def _pixel_offsets(files: list[Path]) -> list[tuple[int, int]]:
    """(offset, length) of each file's PixelData (found once with pydicom; not timed)."""
    import pydicom

    out = []
    for f in files:
        ds = pydicom.dcmread(str(f), defer_size=1024)
        raw = ds._dict[0x7FE00010]
        out.append((int(raw.value_tell), int(raw.length)))
    return out


def numpy_floor_reader(paths: StudyPaths) -> Callable[[], float]:
    """The numpy floor: CT pixels from their offsets into one preallocated int16 array + one SEG unpackbits."""
    import pydicom

    files = sorted(paths.ct_dir.glob("*.dcm"))
    offsets = _pixel_offsets(files)
    first = pydicom.dcmread(str(files[0]), stop_before_pixels=True)
    rows, cols = int(first.Rows), int(first.Columns)
    ((seg_off, seg_len),) = _pixel_offsets([paths.seg_file])

    def run() -> float:
        t0 = time.perf_counter()
        ct = np.empty((len(files), rows, cols), dtype=np.int16)
        for k, (f, (off, _n)) in enumerate(zip(files, offsets)):
            with open(f, "rb") as fh:
                fh.seek(off)
                fh.readinto(memoryview(ct[k]).cast("B"))
        with open(paths.seg_file, "rb") as fh:
            fh.seek(seg_off)
            packed = np.frombuffer(fh.read(seg_len), dtype=np.uint8)
        bits = np.unpackbits(packed, bitorder="little")
        assert bits.size >= rows * cols
        return time.perf_counter() - t0

    return run


def pydicom_highdicom_read(paths: StudyPaths) -> None:
    """pydicom reads every CT slice's pixels into one array; highdicom decodes the SEG volume."""
    import highdicom as hd
    import pydicom

    files = sorted(paths.ct_dir.glob("*.dcm"))
    first = pydicom.dcmread(str(files[0]))
    arr = np.empty((len(files), int(first.Rows), int(first.Columns)), dtype=first.pixel_array.dtype)
    for k, f in enumerate(files):
        arr[k] = pydicom.dcmread(str(f)).pixel_array
    seg = hd.seg.segread(str(paths.seg_file))
    _ = seg.get_volume(combine_segments=False).array


def _analyze_args(paths: StudyPaths, kind: str, out: Path, *extra: str) -> list[str]:
    if kind == "dicom":
        return ["analyze", str(paths.dicom_dir), "--out", str(out), "--quiet", *extra]
    image, labels = (
        (paths.image_nifti_gz, paths.labels_nifti_gz)
        if kind == "nifti.gz"
        else (
            paths.image_nifti,
            paths.labels_nifti,
        )
    )
    return ["analyze", "--image", str(image), "--seg", str(labels), "--out", str(out), "--quiet", *extra]


def _in_process(args: list[str], clock: StageClock | None = None) -> Callable[[], float]:
    from netlm_imaging.cli import main

    def run() -> float:
        if clock is not None:
            clock.start()
        t0 = time.perf_counter()
        rc = main(args)
        dt = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"netlm {' '.join(args)} exited {rc}")
        return dt

    return run


# --------------------------------------------------------------------------- DICOM end to end
def bench_dicom(paths: StudyPaths, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Fresh analyze vs fresh SimpleITK read; in-process analyze vs the numpy floor and pydicom + highdicom."""
    warm_page_cache([paths.dicom_dir])
    n = paths.n_slices
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        args = _analyze_args(paths, "dicom", Path(tmp))
        fresh = interleaved(
            {
                "netlm": _child_time([netlm_script(), *args]),
                "sitk": _child_time([python(), "-c", _SITK_READ_CHILD, str(paths.ct_dir)]),
            },
            rounds,
        )
        clock = StageClock()
        inproc = interleaved(
            {
                "netlm": _in_process(args, clock),
                "floor": numpy_floor_reader(paths),
                "pydicom": _timed(lambda: pydicom_highdicom_read(paths)),
            },
            rounds,
        )
    rows = [
        _ratio_row(
            f"analyze, fresh process, DICOM {n} sl",
            fresh["netlm"],
            fresh["sitk"],
            "SimpleITK series read",
            TARGET_FRESH_VS_SITK_READ,
        ),
        _ratio_row(
            f"analyze in-process, DICOM {n} sl", inproc["netlm"], inproc["floor"], "numpy floor", TARGET_VS_FLOOR
        ),
        _ratio_row(
            f"analyze in-process, DICOM {n} sl",
            inproc["netlm"],
            inproc["pydicom"],
            "pydicom+highdicom",
            TARGET_VS_PYDICOM_HIGHDICOM,
        ),
    ]
    rows += _stage_rows(n, clock, inproc)
    info = {k: v.runs for k, v in fresh.items()} | {f"in_process_{k}": v.runs for k, v in inproc.items()}
    info["in_process_stages"] = clock.runs
    return rows, info


def _stage_rows(n: int, clock: StageClock, inproc: dict[str, Timings]) -> list[Row]:
    """Where the in-process time goes (median per stage), and the analysis without issue 13's zones.

    The stage times come from the same interleaved netlm runs (the warm-up run's are dropped); the
    "without the zones" rows subtract each run's zones time from its total. Informational: the goals
    are judged on the whole analysis above.
    """
    runs = clock.runs[-len(inproc["netlm"].runs) :]
    clock.runs = runs
    med = clock.medians()
    others = sorted(t - sum(r.values()) for t, r in zip(inproc["netlm"].runs, runs))  # rules, facts, report, CLI
    n_o = len(others)
    med["the rest"] = others[n_o // 2] if n_o % 2 else 0.5 * (others[n_o // 2 - 1] + others[n_o // 2])
    shown = ", ".join(f"{k} {v:.3f}" for k, v in med.items())
    zones = "zones (issue 13)"
    rest = Timings([t - r[zones] for t, r in zip(inproc["netlm"].runs, runs)])
    rows = [Row(f"  in-process stages, DICOM {n} sl (median s)", shown, "", None, "", None)]
    for ref, name, target in (
        ("floor", "numpy floor", TARGET_VS_FLOOR),
        ("pydicom", "pydicom+highdicom", TARGET_VS_PYDICOM_HIGHDICOM),
    ):
        r = _ratio_row(f"  analyze in-process without the zones, {n} sl", rest, inproc[ref], name, target)
        rows.append(Row(r.what, r.ours, r.reference, r.ratio, r.target + " (info)", None, r.ratio_min))
    return rows


# --------------------------------------------------------------------------- memory
_MODULES_CHILD = (
    "import sys\nfrom netlm_imaging.cli import main\nrc = main(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write('\\n'.join(m for m in list(sys.modules) if m != '__main__'))\nsys.exit(rc)\n"
)
_IMPORT_LIST_CHILD = (
    "import importlib, sys\n"
    "for m in open(sys.argv[1]).read().split():\n"
    "    try:\n"
    "        importlib.import_module(m)\n"
    "    except Exception:\n"
    "        pass\n"
)


def bench_memory(paths: StudyPaths, kind: str = "dicom") -> tuple[Row, dict[str, Any]]:
    """Peak RSS of a fresh analyze vs 2 x the int16 CT + 100 MiB; baseline = exactly what analyze imports."""
    ct_bytes = paths.n_slices * 512 * 512 * 2
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        mods = Path(tmp) / "modules.txt"
        args = _analyze_args(paths, kind, Path(tmp))
        runs = [run_child([python(), "-c", _MODULES_CHILD, str(mods), *args]) for _ in range(2)]
        if any(r.returncode for r in runs):
            raise RuntimeError(runs[0].stderr)
        peak = min(r.max_rss_bytes for r in runs)
        base = min(run_child([python(), "-c", _IMPORT_LIST_CHILD, str(mods)]).max_rss_bytes for _ in range(2))
    budget = TARGET_RSS_CT_FACTOR * ct_bytes + TARGET_RSS_LIBS_MIB * MIB
    row = Row(
        f"peak RSS, fresh analyze, {kind.upper()} {paths.n_slices} sl",
        f"{peak / MIB:.0f} MiB (libraries {base / MIB:.0f}, rest {(peak - base) / ct_bytes:.2f} x CT)",
        f"CT int16 {ct_bytes / MIB:.0f} MiB",
        peak / budget,
        f"<= 2 x CT + {TARGET_RSS_LIBS_MIB:g} MiB = {budget / MIB:.0f} MiB",
        peak <= budget and base <= TARGET_RSS_LIBS_MIB * MIB,
    )
    return row, {"peak_rss_bytes": peak, "import_baseline_rss_bytes": base, "ct_int16_bytes": ct_bytes}


# --------------------------------------------------------------------------- outputs
def bench_outputs(paths: StudyPaths, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """--seg-out, --sr and --html beside plain analyze (fresh processes, interleaved)."""
    keep: dict[str, list[Any]] = {"plain": [], "seg": [], "sr": [], "html": []}
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        sides = {}
        for name, flag in (("plain", None), ("seg", "--seg-out"), ("sr", "--sr"), ("html", "--html")):
            out = Path(tmp) / name
            sides[name] = _child_time(
                [netlm_script(), *_analyze_args(paths, "dicom", out, *([flag] if flag else []))], keep[name]
            )
        t = interleaved(sides, rounds)
        n_lesions = len(json.loads((Path(tmp) / "plain" / "report.json").read_text())["lesions"])
    seg_rss = max(c.max_rss_bytes for c in keep["seg"])
    plain = t["plain"]
    rows = [
        _ratio_row(
            f"analyze --seg-out, fresh, {paths.n_slices} sl", t["seg"], plain, "plain analyze", TARGET_SEG_OUT_FACTOR
        ),
        Row(
            "  --seg-out peak RSS",
            f"{seg_rss / MIB:.0f} MiB",
            "",
            None,
            f"<= {TARGET_SEG_OUT_RSS_GIB:g} GiB",
            seg_rss <= TARGET_SEG_OUT_RSS_GIB * 2**30,
        ),
    ]
    for name, flag, target in (("sr", "--sr", TARGET_SR_EXTRA_S), ("html", "--html", TARGET_HTML_EXTRA_S)):
        extra_med = t[name].median - plain.median
        extra_min = t[name].min - plain.min
        rows.append(
            Row(
                f"analyze {flag} extra time ({n_lesions} lesions)",
                f"{extra_min:+.3f} / {extra_med:+.3f} s",
                f"plain {plain.show()}",
                None,
                f"<= {target:g} s extra (median)",
                extra_med <= target,
            )
        )
    info = {k: v.runs for k, v in t.items()} | {"seg_out_peak_rss_bytes": seg_rss, "lesions": n_lesions}
    return rows, info


# --------------------------------------------------------------------------- NIfTI
def nibabel_load(paths: StudyPaths) -> None:
    """nibabel reading the image and the label map arrays of the .nii.gz pair."""
    import nibabel as nib

    for p in (paths.image_nifti_gz, paths.labels_nifti_gz):
        _ = np.asanyarray(nib.load(str(p)).dataobj)


def bench_nifti(studies: Sequence[StudyPaths], rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """In-process analyze of each study's .nii.gz pair vs the nibabel load of it, and the growth from the
    smallest to the largest study: every size and both sides in the same interleaved rounds, so the
    growth compares runs made under the same machine load."""
    warm_page_cache([p for paths in studies for p in (paths.image_nifti_gz, paths.labels_nifti_gz)])
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        sides: dict[str, Callable[[], float]] = {}
        for paths in studies:
            n = paths.n_slices
            sides[f"netlm_{n}"] = _in_process(_analyze_args(paths, "nifti.gz", Path(tmp) / str(n)))
            sides[f"nibabel_{n}"] = _timed(lambda paths=paths: nibabel_load(paths))
        t = interleaved(sides, rounds)
    rows = [
        _ratio_row(
            f"analyze in-process, NIfTI .nii.gz {p.n_slices} sl",
            t[f"netlm_{p.n_slices}"],
            t[f"nibabel_{p.n_slices}"],
            "nibabel load",
            TARGET_NIFTI,
        )
        for p in studies
    ]
    if len(studies) >= 2:
        lo, hi = studies[0].n_slices, studies[-1].n_slices
        a, b = t[f"netlm_{lo}"], t[f"netlm_{hi}"]
        growth = b.median / a.median
        rows.append(
            Row(
                f"NIfTI analyze growth {lo} -> {hi} slices",
                f"x{growth:.2f} (min x{b.min / a.min:.2f})",
                f"slices x{hi / lo:g}",
                growth / (hi / lo),
                "linear (<= 1.15 x the slice ratio)",
                growth <= 1.15 * hi / lo,
                (b.min / a.min) / (hi / lo),
            )
        )
    return rows, {k: v.runs for k, v in t.items()}


# --------------------------------------------------------------------------- PET
def bench_pet(rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """The real 267-slice FDG PET (shared/data): analyze vs folder scan + pixel read; pydicom parses counted."""
    if not PET_STUDY.is_dir():
        return [Row("PET analyze (mirp_sts_fdg_pet)", "", f"not found: {PET_STUDY}", None, "", None)], {}
    import pydicom

    from netlm_imaging.io._dicom_common import scan_dicom_folder
    from netlm_imaging.io.dicom_series import read_series_from_index

    warm_page_cache([PET_STUDY])
    image_dir = PET_STUDY / "FDG_PET" / "image"
    with tempfile.TemporaryDirectory(prefix="netlm_bench_") as tmp:
        args = [
            "analyze",
            str(PET_STUDY / "FDG_PET"),
            "--labels",
            "lesion=GTV_Mass,ignore=GTV_Edema",
            "--out",
            tmp,
            "--quiet",
        ]
        t = interleaved(
            {
                "netlm": _in_process(args),
                "read": _timed(lambda: read_series_from_index(scan_dicom_folder(image_dir), nonuniform="resample")),
            },
            rounds,
        )
        calls = {"n": 0}
        real = pydicom.dcmread

        def counting(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            return real(*a, **k)

        pydicom.dcmread = counting  # type: ignore[assignment]
        try:
            _in_process(args)()
        finally:
            pydicom.dcmread = real  # type: ignore[assignment]
    n_files = len(list(image_dir.glob("*.dcm")))
    rows = [
        Row(
            f"PET analyze ({n_files} slices) vs folder scan + pixel read",
            t["netlm"].show(),
            f"scan+read {t['read'].show()}",
            t["netlm"].median / t["read"].median,
            "(measured for issue 14)",
            None,
            t["netlm"].min / t["read"].min,
        ),
        Row("  pydicom dcmread calls during one PET analyze", str(calls["n"]), f"{n_files} PET files", None, "", None),
    ]
    return rows, {k: v.runs for k, v in t.items()} | {"pydicom_dcmread_calls": calls["n"]}


# --------------------------------------------------------------------------- --help
def bench_help(rounds: int = 5) -> Row:
    """Wall time of ``netlm --help`` in a fresh interpreter."""
    t = interleaved({"help": _child_time([netlm_script(), "--help"])}, rounds)["help"]
    return Row("netlm --help (fresh process)", t.show(), "", None, f"< {TARGET_HELP_S:g} s", t.median < TARGET_HELP_S)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table; exit 0 when every target is met, 1 otherwise."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, nargs="+", default=[200, 400, 800], help="study sizes (default 200 400 800)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up round (default 5)")
    p.add_argument("--quick", action="store_true", help="200 slices, 3 rounds")
    p.add_argument(
        "--only",
        nargs="+",
        choices=("lesions", "dicom", "memory", "outputs", "nifti", "pet", "help"),
        help="run only these parts",
    )
    p.add_argument("--json", help="also write all figures to this JSON file")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("highdicom").setLevel(logging.ERROR)
    slices = [200] if a.quick else sorted(set(a.slices))
    rounds = 3 if a.quick else max(2, a.rounds)
    parts = set(a.only or ("lesions", "dicom", "memory", "outputs", "nifti", "pet", "help"))
    t_start = time.perf_counter()
    print(byte_compile_package(), flush=True)
    studies = {n: make_study(n) for n in slices}
    small = studies[slices[0]]
    rows: list[Row] = []
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_at_start": os.getloadavg()},
        "rounds": rounds,
    }
    if "lesions" in parts:
        r, figures["lesions"] = bench_lesions(small, rounds)
        rows += r
    if "dicom" in parts:
        r, figures[f"dicom_{small.n_slices}"] = bench_dicom(small, rounds)
        rows += r
    if "outputs" in parts:
        r, figures["outputs"] = bench_outputs(small, rounds)
        rows += r
    if "memory" in parts:
        for n in slices:
            r1, figures[f"memory_{n}"] = bench_memory(studies[n])
            rows.append(r1)
    if "nifti" in parts:
        r, figures["nifti"] = bench_nifti([studies[n] for n in slices], rounds)
        rows += r
    if "pet" in parts:
        r, figures["pet"] = bench_pet(rounds)
        rows += r
    if "help" in parts:
        rows.append(bench_help())
    figures["machine"]["load_at_end"] = os.getloadavg()
    sys.stdout.write(format_table(rows) + "\n")
    la0, la1 = figures["machine"]["load_at_start"], figures["machine"]["load_at_end"]
    sys.stdout.write(
        f"\n({rounds} rounds after 1 warm-up, interleaved; total {time.perf_counter() - t_start:.0f} s, "
        f"{os.cpu_count()} CPUs, load average {la0[0]:.1f} at start, {la1[0]:.1f} at end)\n"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=1, default=float))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

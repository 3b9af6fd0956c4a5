"""Cohort throughput: ``netlm batch -j k`` vs ``-j 1``, fresh processes, alternating order.

Writes a synthetic cohort of N NIfTI studies (the generator of tests/test_batch.py,
larger grids so one study takes long enough to measure), then runs
``netlm batch COHORT --out OUT -j 1`` and ``-j k`` as fresh processes, round
after round with the order alternating (1, k, k, 1, ...) so that neither side
always pays the cold caches or a change of machine load; the first round is
dropped. Prints min and median of each side and the speed-up as a multiple
of k. Target (issue 17): >= 0.9 x k.

    python benchmarks/cohort_throughput.py [--studies 24] [--jobs 2] [--size 160] [--rounds 3] [--lesions 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, netlm_script, run_child  # noqa: E402

from tests.conftest import oblique_affine  # noqa: E402

TARGET = 0.9


def write_study(folder: Path, n: int, size: int, lesions: int = 3) -> None:
    """A liver box with ``lesions`` lesion spheres on an oblique grid of size x size x size/2 voxels."""
    shape = (size, size, size // 2)
    lab = np.zeros(shape, np.int16)
    lab[size // 8 : 7 * size // 8, size // 8 : 7 * size // 8, 2 : shape[2] - 2] = 1
    ii, jj, kk = np.indices(shape)
    rng = np.random.default_rng(n)
    radius = size / 10 if lesions <= 3 else size / 20  # more lesions: smaller, so that few of them merge
    for _ in range(lesions):
        c = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        lab[((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + ((kk - c[2]) * 2) ** 2) <= radius**2] = 2
    img = np.where(lab == 0, -40.0, np.where(lab == 1, 55.0, 110.0)).astype(np.float32)
    aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ oblique_affine((0.8, 0.8, 2.0), (4.0, -3.0, 9.0), (-100.0, 20.0, 300.0))
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(img, aff), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(lab, aff), folder / "seg.nii.gz")


def main() -> int:
    """Run the comparison and print the result; exit 0 when the target is met."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round")
    ap.add_argument(
        "--lesions", type=int, default=3, help="lesions per study (8 or more: -j 1 measures them on a thread pool)"
    )
    args = ap.parse_args()
    k = args.jobs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cohort"
        for n in range(args.studies):
            write_study(root / f"s{n:03d}", n, args.size, args.lesions)

        def side(jobs: int):
            def run() -> float:
                out = Path(tmp) / f"out{jobs}"
                shutil.rmtree(out, ignore_errors=True)  # every round analyses the whole cohort again
                c = run_child([netlm_script(), "batch", str(root), "--out", str(out), "-j", str(jobs)])
                if c.returncode != 0:
                    raise RuntimeError(f"netlm batch -j {jobs} exited {c.returncode}: {c.stderr[-400:]}")
                return c.wall_s

            return run

        load0 = os.getloadavg()[0]
        t = interleaved({"1": side(1), str(k): side(k)}, args.rounds)
        load1 = os.getloadavg()[0]
    one, many = t["1"], t[str(k)]
    speed_med, speed_min = one.median / many.median, one.min / many.min
    print(
        f"cohort of {args.studies} NIfTI studies ({args.size}x{args.size}x{args.size // 2} voxels, "
        f"{args.lesions} lesions each)"
    )
    print(f"netlm batch -j 1: {one.show()} ({args.studies / one.median:.2f} studies/s, median)")
    print(f"netlm batch -j {k}: {many.show()} ({args.studies / many.median:.2f} studies/s, median)")
    verdict = "PASS" if speed_med / k >= TARGET else "MISS"
    print(
        f"speed-up (median) {speed_med:.2f}x = {speed_med / k:.2f} x k; "
        f"(min) {speed_min:.2f}x = {speed_min / k:.2f} x k  (target >= {TARGET} x k: {verdict})"
    )
    print(
        f"({args.rounds} rounds after 1 warm-up, {os.cpu_count()} CPUs, "
        f"load average {load0:.1f} at start, {load1:.1f} at end)"
    )
    return 0 if speed_med / k >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

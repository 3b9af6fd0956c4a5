"""Cohort throughput: ``netlm batch -j k`` vs ``-j 1``, fresh processes, alternating order.

Writes a synthetic cohort of N NIfTI studies (the generator of tests/test_batch.py,
larger grids so one study takes long enough to measure) and one of 2N (the same
N and as many again), then runs ``netlm batch COHORT --out OUT -j 1`` and
``-j k`` on both as fresh processes, round after round with the order
alternating so that neither side always pays the cold caches or a change of
machine load; the first round is dropped. Prints min and median of each side,
the end-to-end speed-up on N studies (one interpreter start and the imports
included: with studies of ~30-50 ms that one-off cost is a third of the -j 1
run), and the steady-state throughput: the N extra studies of the larger
cohort divided by the extra time they took, whose ratio is the speed-up of a
long cohort. Target (issue 17): >= 0.9 x k (judged on the steady state; both
are printed).

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
    n_small, n_big = args.studies, 2 * args.studies
    with tempfile.TemporaryDirectory() as tmp:
        # the larger cohort holds the smaller one and as many studies again (the same generator, seeds n)
        roots = {n_small: Path(tmp) / "cohort", n_big: Path(tmp) / "cohort2"}
        for n in range(n_big):
            write_study(roots[n_big] / f"s{n:03d}", n, args.size, args.lesions)
            if n < n_small:
                shutil.copytree(roots[n_big] / f"s{n:03d}", roots[n_small] / f"s{n:03d}")

        def side(jobs: int, studies: int):
            def run() -> float:
                out = Path(tmp) / f"out{jobs}_{studies}"
                shutil.rmtree(out, ignore_errors=True)  # every round analyses the whole cohort again
                c = run_child([netlm_script(), "batch", str(roots[studies]), "--out", str(out), "-j", str(jobs)])
                if c.returncode != 0:
                    raise RuntimeError(f"netlm batch -j {jobs} exited {c.returncode}: {c.stderr[-400:]}")
                return c.wall_s

            return run

        load0 = os.getloadavg()[0]
        names = {(j, n): f"{j}@{n}" for n in (n_small, n_big) for j in (1, k)}
        t = interleaved({name: side(j, n) for (j, n), name in names.items()}, args.rounds)
        load1 = os.getloadavg()[0]
    one, many = t[names[1, n_small]], t[names[k, n_small]]
    speed_med, speed_min = one.median / many.median, one.min / many.min
    print(
        f"cohort of {n_small} NIfTI studies ({args.size}x{args.size}x{args.size // 2} voxels, "
        f"{args.lesions} lesions each), and of {n_big} (the same and as many again)"
    )
    print(f"netlm batch -j 1: {one.show()} ({n_small / one.median:.2f} studies/s, median)")
    print(f"netlm batch -j {k}: {many.show()} ({n_small / many.median:.2f} studies/s, median)")
    end_to_end = "PASS" if speed_med / k >= TARGET else "MISS"
    print(
        f"end to end, {n_small} studies (one interpreter start and import included): speed-up (median) "
        f"{speed_med:.2f}x = {speed_med / k:.2f} x k; (min) {speed_min:.2f}x = {speed_min / k:.2f} x k  "
        f"(target >= {TARGET} x k: {end_to_end})"
    )
    # steady state: the time the extra studies of the larger cohort took (the one-off start-up cancels)
    rate = {}
    for j in (1, k):
        extra_s = t[names[j, n_big]].median - t[names[j, n_small]].median
        rate[j] = (n_big - n_small) / extra_s if extra_s > 0 else float("inf")
        print(
            f"netlm batch -j {j}, {n_big} studies: {t[names[j, n_big]].show()}; the {n_big - n_small} extra "
            f"studies took {extra_s:.3f} s (median): {rate[j]:.2f} studies/s"
        )
    steady = rate[k] / rate[1]
    verdict = "PASS" if steady / k >= TARGET else "MISS"
    print(
        f"steady-state throughput (studies beyond the start-up): {steady:.2f}x = {steady / k:.2f} x k  "
        f"(target >= {TARGET} x k: {verdict})"
    )
    print(
        f"({args.rounds} rounds after 1 warm-up, {os.cpu_count()} CPUs, "
        f"load average {load0:.1f} at start, {load1:.1f} at end)"
    )
    return 0 if steady / k >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""Cohort throughput: k local processes (``run_cohort(jobs=k)``) vs one process.

Writes a synthetic cohort of N NIfTI studies (the generator of tests/test_batch.py,
larger grids so one study takes long enough to measure), runs it with ``jobs=1``
and ``jobs=k``, and prints the speed-up ratio. DESIGN.md target: >= 0.8 x k.

    python benchmarks/cohort_throughput.py [--studies 24] [--jobs 2] [--size 96]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netlm_imaging.batch import discover_cohort, run_cohort  # noqa: E402
from tests.conftest import oblique_affine  # noqa: E402


def write_study(folder: Path, n: int, size: int) -> None:
    """A liver box with three lesion spheres on an oblique grid of size x size x size/2 voxels."""
    shape = (size, size, size // 2)
    lab = np.zeros(shape, np.int16)
    lab[size // 8 : 7 * size // 8, size // 8 : 7 * size // 8, 2 : shape[2] - 2] = 1
    ii, jj, kk = np.indices(shape)
    rng = np.random.default_rng(n)
    for _ in range(3):
        c = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        lab[((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + ((kk - c[2]) * 2) ** 2) <= (size / 10) ** 2] = 2
    img = np.where(lab == 0, -40.0, np.where(lab == 1, 55.0, 110.0)).astype(np.float32)
    aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ oblique_affine((0.8, 0.8, 2.0), (4.0, -3.0, 9.0), (-100.0, 20.0, 300.0))
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(img, aff), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(lab, aff), folder / "seg.nii.gz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--size", type=int, default=96)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cohort"
        for n in range(args.studies):
            write_study(root / f"s{n:03d}", n, args.size)
        studies = discover_cohort(root)
        times = {}
        for jobs in (1, args.jobs):
            t0 = time.perf_counter()
            result = run_cohort(studies, Path(tmp) / f"out{jobs}", jobs=jobs)
            times[jobs] = time.perf_counter() - t0
            assert result.failed == 0, result.rows
        speedup = times[1] / times[args.jobs]
        print(f"cohort of {args.studies} studies ({args.size}x{args.size}x{args.size // 2} voxels each)")
        print(f"1 process:   {times[1]:.2f} s ({args.studies / times[1]:.2f} studies/s)")
        print(f"{args.jobs} processes: {times[args.jobs]:.2f} s ({args.studies / times[args.jobs]:.2f} studies/s)")
        print(f"speed-up: {speedup:.2f} x = {speedup / args.jobs:.2f} x k (target >= 0.80 x k)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

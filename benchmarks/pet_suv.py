"""PET SUV conversion cost against the folder scan and pixel read (issue 14).

On the real 267-slice FDG PET of the shared data (or any PET folder given),
times, best of ``--repeat``: the header scan (``scan_dicom_folder``), the pixel
read (``read_series_from_index``) and the SUVbw conversion
(``suv_from_modality_volume``), and prints the conversion as a ratio of scan +
pixel read. Before issue 14 the conversion re-read every header with pydicom
(about 5x the scan + pixel read); it now reuses the scan's per-slice facts and
parses only the first and last headers again.

    python benchmarks/pet_suv.py [PET_FOLDER] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "mirp_sts_fdg_pet" / "test" / "data" / "sts_images_raw" / "STS_001"
DEFAULT = DEFAULT / "FDG_PET" / "image"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line of figures."""
    sys.path.insert(0, str(ROOT))
    from netlm_imaging.io._dicom_common import scan_dicom_folder
    from netlm_imaging.io.dicom_series import read_series_from_index
    from netlm_imaging.io.pet import suv_from_modality_volume

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", default=str(DEFAULT))
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    folder = Path(args.folder)
    best: dict[str, float] = {}
    n = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        index = scan_dicom_folder(folder)
        t1 = time.perf_counter()
        vol = read_series_from_index(index, nonuniform="resample", where=str(folder))
        t2 = time.perf_counter()
        suv_from_modality_volume(vol)
        t3 = time.perf_counter()
        n = vol.shape[2]
        for key, value in (("scan", t1 - t0), ("pixels", t2 - t1), ("suv", t3 - t2)):
            best[key] = min(best.get(key, float("inf")), value)
    ratio = best["suv"] / (best["scan"] + best["pixels"])
    print(
        f"{n} slices: scan {best['scan']:.3f} s, pixel read {best['pixels']:.3f} s, "
        f"SUV conversion {best['suv']:.3f} s = {ratio:.2f} x (scan + pixel read)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

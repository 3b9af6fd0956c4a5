"""nibabel without pydicom (netlm_imaging.io._nibabel): a NIfTI analysis never loads the DICOM stack.

Each case runs in a fresh interpreter, so the modules other tests loaded do not count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_a_nifti_analysis_loads_no_pydicom_and_pydicom_still_imports(tmp_path):
    import nibabel as nib

    lab = np.zeros((20, 18, 8), np.uint8)
    lab[3:17, 3:15, 1:7] = 1
    lab[6:10, 6:10, 3:5] = 2
    aff = np.diag([-0.9, -0.9, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -40).astype(np.int16), aff), tmp_path / "ct.nii.gz")
    seg = nib.Nifti1Image(lab, aff)
    seg.header.extensions.append(nib.nifti1.Nifti1Extension(2, b"not a DICOM dataset"))  # code 2: "dicom"
    nib.save(seg, tmp_path / "seg.nii.gz")
    out = _run(
        f"""
import sys
from netlm_imaging.cli import main
rc = main(["analyze", "--image", {str(tmp_path / "ct.nii.gz")!r}, "--seg", {str(tmp_path / "seg.nii.gz")!r},
           "--out", {str(tmp_path / "out")!r}, "--quiet"])
print(rc, "pydicom" in sys.modules)
print(any(type(f).__name__ == "_NoPydicomForNibabel" for f in sys.meta_path))  # the finder is removed
import nibabel
print(nibabel.nifti1.have_dicom)
import pydicom  # the finder is gone: any later import works
print(pydicom.dcmread.__name__)
"""
    )
    assert out == ["0", "False", "False", "False", "dcmread"]  # the code-2 extension is kept as bytes, not decoded
    report = (tmp_path / "out" / "report.json").read_text()
    assert '"volume_ml": ' in report


def test_pydicom_loaded_first_is_the_one_nibabel_takes():
    out = _run(
        """
import pydicom
from netlm_imaging.io._nibabel import import_nibabel
print(import_nibabel().nifti1.have_dicom)
"""
    )
    assert out == ["True"]


def test_the_finder_refuses_only_nibabels_optional_import():
    from netlm_imaging.io._nibabel import _NoPydicomForNibabel

    finder = _NoPydicomForNibabel()
    assert finder.find_spec("pydicom", None) is None  # asked from here (another importer): left to the others
    assert finder.find_spec("numpy", None) is None
    optpkg = {"__name__": "nibabel.optpkg", "finder": finder}
    with pytest.raises(ModuleNotFoundError) as exc:  # asked from nibabel's optional-package helper: refused
        exec("finder.find_spec('pydicom', None)", optpkg)
    assert exc.value.name == "pydicom"

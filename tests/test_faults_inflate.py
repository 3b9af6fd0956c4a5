"""Decompression bounded by the voxel budget while inflating: deflated transfer syntax, deflated SEG frames,
gzip NIfTI.

The bombs are built here: a real 16x14 CT slice (tests/dicom_factory.py) followed by 1 GiB of zero bytes in
a private element, deflated to about 1 MB (deflate's best ratio is about 1000:1). Peak memory is the
child process's own ``ru_maxrss``; the unbounded reader (``pydicom.dcmread``) is the comparison.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.uid import DeflatedExplicitVRLittleEndian

from netlm_imaging.errors import ResourceLimitError
from netlm_imaging.io._inflate import dcmread, inflate_bounded
from tests.conftest import ROOT, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (16, 14, 6)
AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
GIB = 1 << 30
#: Peak RSS (MiB) a bounded run must stay under; the whole bomb inflated is 1024 MiB.
RSS_LIMIT_MIB = 400


def _liver() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[3:13, 3:11, 1:5] = True
    return m


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inflate") / "base"
    ct = write_image_series(d / "ct", np.where(_liver(), 60.0, -50.0), AFF, seed=5)
    write_seg(d / "seg.dcm", ct, [SegmentSpec("Liver", _liver())])
    return d


def _deflated_bytes(ds: pydicom.Dataset, tail: int = 0, rows: int | None = None) -> bytes:
    """A Deflated Explicit VR LE file of ``ds``, optionally followed by ``tail`` zero bytes in a private OB."""
    ds = ds.copy()
    if rows is not None:
        ds.Rows = rows
        ds.Columns = rows
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(body, ds)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(body.getvalue())]
    if tail:
        creator = b"NETLM TEST "  # (7FE1,0010) LO, even length
        out.append(comp.compress(struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", len(creator)) + creator))
        out.append(comp.compress(struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, tail)))
        zeros = bytes(1 << 24)
        for _ in range(tail // len(zeros)):
            out.append(comp.compress(zeros))
    out.append(comp.flush())
    meta = pydicom.dataset.FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(head, meta, enforce_standard=False)
    return head.getvalue() + b"".join(out)


def _run(args: list[str]) -> tuple[int, str, float]:
    """``netlm`` in a child process: exit code, stderr, and the child's own peak RSS in MiB.

    The peak is the process's VmHWM (per address space, reset by exec); ``ru_maxrss`` would carry over
    the parent's peak through fork/vfork + exec.
    """
    code = (
        "import sys\nfrom netlm_imaging.cli import main\n"
        f"rc = main({args!r})\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
        "print('RSS', int(hwm) / 1024, file=sys.stderr)\nsys.exit(rc)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = p.stderr.strip().splitlines()
    rss = float(lines[-1].split()[1])
    return p.returncode, "\n".join(lines[:-1]), rss


def test_a_deflated_series_reads_like_the_plain_one(study, tmp_path):
    d = tmp_path / "deflated"
    shutil.copytree(study, d)
    for f in (d / "ct").iterdir():
        f.write_bytes(_deflated_bytes(pydicom.dcmread(f)))
    for f in (d / "ct").iterdir():  # pydicom (unbounded) reads the same pixels
        assert np.array_equal(dcmread(f).pixel_array, pydicom.dcmread(f).pixel_array)
    assert dcmread(next((d / "ct").iterdir())).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert _run(["analyze", str(study), "--out", str(tmp_path / "plain")])[0] == 0
    code, err, _ = _run(["analyze", str(d), "--out", str(tmp_path / "defl")])
    assert code == 0, err
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    defl = json.loads((tmp_path / "defl" / "report.json").read_text())
    assert defl["liver"]["volume_ml"] == plain["liver"]["volume_ml"]
    assert defl["liver"]["volume_ml"] == pytest.approx(_liver().sum() * 1.5 * 1.5 * 3.0 / 1000.0, rel=1e-6)


def test_deflate_bomb_in_a_study_folder_is_refused_with_bounded_memory(study, tmp_path):
    d = tmp_path / "bomb"
    shutil.copytree(study, d)
    victim = sorted((d / "ct").iterdir())[2]
    victim.write_bytes(_deflated_bytes(pydicom.dcmread(victim), tail=GIB))
    assert victim.stat().st_size < 1.2e6  # ~1.1 MB on disk, 1 GiB inflated
    code, err, rss = _run(["analyze", str(d), "--out", str(tmp_path / "out")])
    assert code == 3
    assert err.startswith(f"netlm: error: {victim}: inflates to more than")
    assert len(err.splitlines()) == 1
    assert rss < RSS_LIMIT_MIB, rss
    assert not (tmp_path / "out" / "report.json").exists()


def test_deflated_header_above_max_voxels_is_refused_before_inflating(study, tmp_path):
    src = sorted((study / "ct").iterdir())[0]
    f = tmp_path / "huge.dcm"
    f.write_bytes(_deflated_bytes(pydicom.dcmread(src), tail=64 << 20, rows=65535))
    with pytest.raises(ResourceLimitError, match=r"huge\.dcm: declares 4,294,836,225 voxels"):
        dcmread(f)
    with pytest.raises(ResourceLimitError, match="above the limit of 1,000"):
        dcmread(f, max_voxels=1000)


def test_inflate_bounded_stops_at_the_limit():
    data = zlib.compress(bytes(10_000_000))[2:-4]  # raw deflate of 10 MB of zeros
    assert inflate_bounded(data, 10_000_000, "x")[0] == bytes(10_000_000)
    with pytest.raises(ResourceLimitError, match="x: inflates to more than 1,000 bytes"):
        inflate_bounded(data, 1000, "x")
    cut, more = inflate_bounded(data, 1000, "x", allow_more=True)
    assert (len(cut), more) == (1000, True)


def test_deflated_seg_frame_bomb_is_cut_at_the_frame_size(study, tmp_path):
    """A SEG whose deflated frames each inflate to 64 MiB: read at the declared 16x14 bits each."""
    from netlm_imaging.io._seg_frames import DEFLATED_IMAGE_FRAME, iter_frames

    seg = pydicom.dcmread(study / "seg.dcm")
    n = int(seg.NumberOfFrames)
    truth = seg.pixel_array.reshape(n, int(seg.Rows), int(seg.Columns))
    packed = np.packbits(truth.reshape(n, -1), axis=1, bitorder="little")
    frames = []
    for fr in packed:
        comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        frames.append(comp.compress(fr.tobytes()) + comp.compress(bytes(64 << 20)) + comp.flush())
    seg.PixelData = pydicom.encaps.encapsulate(frames)
    seg.file_meta.TransferSyntaxUID = DEFLATED_IMAGE_FRAME
    seg["PixelData"].VR = "OB"
    seg["PixelData"].is_undefined_length = True
    got = np.stack(list(iter_frames(seg, str(study / "seg.dcm"))))
    np.testing.assert_array_equal(got.astype(bool), truth.astype(bool))


def test_gzip_nifti_bomb_reads_only_the_declared_bytes(tmp_path):
    """A 16x14x6 label map followed by 1 GiB of gzip-compressed zeros: nibabel reads the declared bytes only."""
    lab = np.zeros(SHAPE, np.uint8)
    lab[_liver()] = 1
    img = nib.Nifti1Image(lab, np.diag([-1.5, -1.5, 3.0, 1.0]))
    plain = tmp_path / "plain.nii"
    nib.save(img, plain)
    bomb = tmp_path / "seg.nii.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        fh.write(plain.read_bytes())
        zeros = bytes(1 << 24)
        for _ in range(GIB // len(zeros)):
            fh.write(zeros)
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -50).astype(np.int16), img.affine), ct)
    assert bomb.stat().st_size < 1.2e6
    code, err, rss = _run(["analyze", "--image", str(ct), "--seg", str(bomb), "--out", str(tmp_path / "out")])
    assert code == 0, err
    assert rss < RSS_LIMIT_MIB, rss
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["liver"]["volume_ml"] == pytest.approx(_liver().sum() * 1.5 * 1.5 * 3.0 / 1000.0, rel=1e-6)

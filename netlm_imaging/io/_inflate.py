"""Decompression bounded by the voxel budget, checked while inflating (never inflate a bomb whole).

Three inputs arrive compressed with deflate:

* Deflated Explicit VR Little Endian files (1.2.840.10008.1.2.1.99, PS3.5 A.5):
  the whole data set after the file meta group is one raw deflate stream.
  pydicom 3.0.2 inflates it in one call, so a 1 MB file can become gigabytes.
  :func:`dcmread` inflates the start of the stream, reads the declared
  Rows x Columns x NumberOfFrames, refuses sizes above ``--max-voxels``
  (:func:`netlm_imaging.io.budget.check_voxel_budget`), and stops inflating as
  soon as the output exceeds what the header declares (plus a slack for the
  elements around the pixel data).
* Deflated SEG frames (:mod:`netlm_imaging.io._seg_frames`): each frame's
  declared size bounds its inflation (:func:`inflate_bounded`).
* gzip NIfTI: nibabel reads exactly the declared array bytes, which the voxel
  budget bounds before any read (see :func:`netlm_imaging.io.nifti.read_nifti`).
"""

from __future__ import annotations

import copy
import io
import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import DicomError, ResourceLimitError
from .budget import check_voxel_budget, effective_max_voxels

__all__ = ["DEFLATED_TS", "dcmread", "inflate_bounded", "is_deflated_file"]

#: Deflated Explicit VR Little Endian.
DEFLATED_TS = "1.2.840.10008.1.2.1.99"
_TS_BYTES = DEFLATED_TS.encode("ascii")
#: Inflated bytes read first to find the declared image size.
_HEAD_BYTES = 1 << 20
#: Room allowed beyond the declared pixel bytes (elements before and after Pixel Data).
_SLACK_BYTES = 16 << 20
#: Inflated size allowed for a deflated file without pixel data (SR, RTSTRUCT), per compressed byte.
_NO_PIXELS_RATIO = 64
_CHUNK = 1 << 16


def inflate_bounded(
    source: bytes | BinaryIO, limit: int, what: str, *, wbits: int = -zlib.MAX_WBITS, allow_more: bool = False
) -> tuple[bytes, bool]:
    """Inflate a deflate stream, never producing more than ``limit`` bytes.

    Parameters
    ----------
    source : bytes or binary file
        The compressed bytes (a file is read in chunks).
    limit : int
        Most inflated bytes allowed.
    what : str
        The file (and part) named in the error.
    wbits : int
        zlib window bits (-15: raw deflate; 15: zlib; 31: gzip).
    allow_more : bool
        Return the first ``limit`` bytes and ``True`` when the stream holds more,
        instead of raising.

    Returns
    -------
    bytes, bool
        The inflated bytes and whether the stream was cut at ``limit``.

    Raises
    ------
    ResourceLimitError
        The stream inflates to more than ``limit`` bytes (and not ``allow_more``).
    DicomError
        The stream is not valid deflate data.
    """
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    d = zlib.decompressobj(wbits)
    out = bytearray()
    try:
        while not d.eof:
            chunk = d.unconsumed_tail or fh.read(_CHUNK)
            if not chunk:
                break
            out += d.decompress(chunk, limit - len(out) + 1)
            if len(out) > limit:
                if allow_more:
                    return bytes(out[:limit]), True
                raise ResourceLimitError(
                    f"{what}: inflates to more than {limit:,} bytes, more than its header declares or the "
                    "--max-voxels budget allows (a corrupt file or a decompression bomb); re-export it "
                    "uncompressed, or raise --max-voxels if the image really is that large."
                )
    except zlib.error as exc:
        raise DicomError(f"{what}: compressed data is corrupt ({exc}); re-export the file.") from None
    return bytes(out), False


def is_deflated_file(path: str | os.PathLike[str]) -> bool:
    """True when the file meta group names the Deflated Explicit VR Little Endian transfer syntax."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if _TS_BYTES not in head or head[128:132] != b"DICM":
        return False
    import pydicom

    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:
        return False
    return str(meta.get("TransferSyntaxUID", "")) == DEFLATED_TS


def _declared_pixel_bytes(head: bytes, source: str, max_voxels: int | None) -> int | None:
    """Pixel bytes the data set declares (Rows x Columns x frames x samples x bits), checked against the budget."""
    from pydicom.filereader import read_dataset

    try:
        ds = read_dataset(
            io.BytesIO(head),
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=lambda tag, vr, length: int(tag) >= 0x7FE00008,
        )
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except Exception:
        return None
    if not rows or not cols:
        return None
    check_voxel_budget((cols, rows, frames), max_voxels, source)
    return (rows * cols * frames * samples * bits + 7) // 8


def _read_deflated(path: Path, max_voxels: int | None, kwargs: dict[str, Any]) -> Any:
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.uid import ExplicitVRLittleEndian

    source = str(path)
    with open(path, "rb") as fh:
        read_preamble(fh, False)
        meta = _read_file_meta_info(fh)
        start = fh.tell()
        compressed = os.fstat(fh.fileno()).st_size - start
        head, more = inflate_bounded(fh, _HEAD_BYTES, source, allow_more=True)
        if more:
            pixel_bytes = _declared_pixel_bytes(head, source, max_voxels)
            if pixel_bytes is not None:
                limit = pixel_bytes + _SLACK_BYTES
            else:
                limit = max(_NO_PIXELS_RATIO * compressed, _SLACK_BYTES)
            limit = min(limit, 8 * effective_max_voxels(max_voxels) + _SLACK_BYTES)
            fh.seek(start)
            body, _ = inflate_bounded(fh, limit, source)
        else:
            _declared_pixel_bytes(head, source, max_voxels)
            body = head
    # hand pydicom the inflated data set as a plain Explicit VR Little Endian file, then restore the meta
    plain = copy.deepcopy(meta)
    plain.TransferSyntaxUID = ExplicitVRLittleEndian
    from pydicom.filebase import DicomBytesIO

    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(buf, pydicom.dataset.FileMetaDataset(plain), enforce_standard=False)
    buf.write(body)
    buf.seek(0)
    kwargs = {k: v for k, v in kwargs.items() if k != "defer_size"}
    ds = pydicom.dcmread(buf, **kwargs)
    ds.file_meta = meta
    ds.filename = source
    return ds


def dcmread(path: str | os.PathLike[str], *, max_voxels: int | None = None, **kwargs: Any) -> Any:
    """``pydicom.dcmread`` whose inflation of a deflated file is bounded by the voxel budget.

    Parameters
    ----------
    path : path-like
        DICOM file.
    max_voxels : int, optional
        Voxel budget (default: the ``--max-voxels`` of the running analysis).
    **kwargs
        Passed to :func:`pydicom.dcmread`.

    Returns
    -------
    pydicom.Dataset
        As ``pydicom.dcmread`` returns it (for a deflated file, with its original file meta).

    Raises
    ------
    ResourceLimitError
        A deflated file declaring or inflating to more than the budget allows.
    """
    import pydicom

    p = Path(path)
    if not is_deflated_file(p):
        return pydicom.dcmread(p, **kwargs)
    return _read_deflated(p, max_voxels, kwargs)

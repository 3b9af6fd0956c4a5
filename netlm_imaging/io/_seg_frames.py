"""Decode the frames of a multi-frame segmentation object, one frame at a time.

Private helper of :mod:`netlm_imaging.io.dicom_seg`. Frames are yielded one by
one so that a SEG with thousands of frames never needs all of them decoded at
once.

Decoders, by transfer syntax
----------------------------
* Native (uncompressed) little and big endian, 1-bit (BINARY, bits packed
  continuously across frames, least significant bit first, PS3.5 section 8.1.1
  and annex D) and 8/16-bit: read from the PixelData buffer by byte/bit offset
  with numpy; no per-pixel Python work.
* JPEG 2000, JPEG-LS, JPEG lossless, RLE with 8/16 bits: pydicom's pixel
  handlers (pylibjpeg / GDCM plugins), frame by frame.
* RLE Lossless with BitsAllocated 1 (pydicom 3.0.2 and pylibjpeg-rle refuse it):
  decoded here. Each frame is one RLE segment (PS3.5 annex G) holding the
  frame's packed bits, which start on a byte boundary.
* Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, PS3.5 section
  8.2.16; pydicom 3.0.2 does not know it): each frame is a raw deflate
  (RFC 1951) stream of the frame's native encoding, decoded here with zlib.

Anything else raises :class:`~netlm_imaging.errors.UnsupportedError` naming the
file, the transfer syntax and how to re-encode it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from ..errors import DicomError, UnsupportedError
from ._inflate import inflate_bounded

__all__ = ["DEFLATED_IMAGE_FRAME", "iter_frames"]

#: Deflated Image Frame Compression (DICOM 2024c), unknown to pydicom 3.0.2.
DEFLATED_IMAGE_FRAME = "1.2.840.10008.1.2.8.1"
_RLE = "1.2.840.10008.1.2.5"
_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99"}
_NATIVE_BE = "1.2.840.10008.1.2.2"
_FIX = "re-encode it as Explicit VR Little Endian (e.g. `dcmconv +te in.dcm out.dcm` or `gdcmconv --raw`)"


def _unsupported(source: str, ts: str, why: str) -> UnsupportedError:
    return UnsupportedError(f"{source}: cannot decode the segmentation frames: {why} (transfer syntax {ts}); {_FIX}.")


def _unpack_bits(buf: np.ndarray, start_bit: int, n_bits: int) -> np.ndarray:
    """Bits ``start_bit .. start_bit + n_bits`` of ``buf`` (LSB first) as uint8 0/1."""
    first = start_bit // 8
    last = (start_bit + n_bits + 7) // 8
    bits = np.unpackbits(buf[first:last], bitorder="little")
    off = start_bit - 8 * first
    return bits[off : off + n_bits]


def _native_frames(ds: Dataset, source: str, big_endian: bool) -> Iterator[np.ndarray]:
    rows, cols, n = int(ds.Rows), int(ds.Columns), int(getattr(ds, "NumberOfFrames", 1) or 1)
    bits = int(ds.BitsAllocated)
    raw = ds.PixelData
    buf = np.frombuffer(raw, dtype=np.uint8)
    per_frame_bits = rows * cols * bits
    needed_bytes = (per_frame_bits * n + 7) // 8
    if buf.size < needed_bytes:
        raise DicomError(
            f"{source}: pixel data holds {buf.size:,} bytes but {n} frames of {rows}x{cols} at {bits} bit "
            f"need {needed_bytes:,}; the file is truncated or corrupt. Export the SEG again."
        )
    if bits == 1:
        # PS3.5 8.1.1: 1-bit data is packed LSB first in both byte orders for OB; for big endian OW
        # the bytes of each 16-bit word are swapped.
        if big_endian and ds["PixelData"].VR == "OW":
            words = np.frombuffer(raw[: (len(raw) // 2) * 2], dtype=">u2").astype("<u2")
            buf = words.view(np.uint8)
        for f in range(n):
            yield _unpack_bits(buf, f * rows * cols, rows * cols).reshape(rows, cols)
        return
    if bits not in (8, 16):
        raise _unsupported(source, str(ds.file_meta.TransferSyntaxUID), f"BitsAllocated {bits} is not 1, 8 or 16")
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype(">u2" if big_endian else "<u2")
    arr = np.frombuffer(raw[:needed_bytes], dtype=dtype).reshape(n, rows, cols)
    for f in range(n):
        yield np.asarray(arr[f], dtype=np.uint16 if bits == 16 else np.uint8)


def _packbits_decode(data: bytes, expected: int) -> bytes:
    """Decode one PackBits (DICOM RLE, PS3.5 G.3.1) segment."""
    out = bytearray()
    p = 0
    n = len(data)
    while p < n and len(out) < expected:
        h = data[p]
        p += 1
        if h < 128:
            out += data[p : p + h + 1]
            p += h + 1
        elif h > 128:
            if p >= n:
                break
            out += bytes((data[p],)) * (257 - h)
            p += 1
        # h == 128: no operation
    return bytes(out)


def _encapsulated(ds: Dataset, source: str, ts: str) -> Iterator[bytes]:
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    try:
        frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    except Exception as exc:  # pydicom raises ValueError/struct.error on broken fragments
        raise DicomError(f"{source}: encapsulated pixel data is corrupt ({exc}); export the SEG again.") from exc
    if len(frames) != n:
        raise DicomError(
            f"{source}: NumberOfFrames is {n} but the pixel data holds {len(frames)} frames; "
            "the file is truncated or corrupt. Export the SEG again."
        )
    yield from frames


def _rle_1bit_frames(ds: Dataset, source: str, ts: str) -> Iterator[np.ndarray]:
    rows, cols = int(ds.Rows), int(ds.Columns)
    nbytes = (rows * cols + 7) // 8
    for idx, fr in enumerate(_encapsulated(ds, source, ts)):
        if len(fr) < 64:
            raise DicomError(f"{source}: RLE frame {idx + 1} has no valid RLE header; the file is corrupt.")
        header = struct.unpack("<16I", fr[:64])
        nseg, offsets = header[0], header[1:]
        if nseg != 1 or offsets[0] < 64:
            raise _unsupported(source, ts, f"1-bit RLE frame {idx + 1} has {nseg} RLE segments, expected 1")
        raw = _packbits_decode(fr[offsets[0] :], nbytes)
        if len(raw) < nbytes:
            raise DicomError(
                f"{source}: RLE frame {idx + 1} decodes to {len(raw)} bytes, expected {nbytes}; the file is corrupt."
            )
        buf = np.frombuffer(raw, dtype=np.uint8)
        yield _unpack_bits(buf, 0, rows * cols).reshape(rows, cols)


def _deflate_frames(ds: Dataset, source: str, ts: str) -> Iterator[np.ndarray]:
    rows, cols = int(ds.Rows), int(ds.Columns)
    bits = int(ds.BitsAllocated)
    if bits not in (1, 8, 16):
        raise _unsupported(source, ts, f"BitsAllocated {bits} in deflated frames")
    nbytes = (rows * cols * bits + 7) // 8
    for idx, fr in enumerate(_encapsulated(ds, source, ts)):
        # inflated no further than the frame's declared size: a deflate bomb in one frame costs nothing
        what = f"{source}: deflated frame {idx + 1}"
        try:
            raw, _ = inflate_bounded(bytes(fr), nbytes + 16, what, allow_more=True)
        except DicomError:
            raw, _ = inflate_bounded(bytes(fr), nbytes + 16, what, wbits=zlib.MAX_WBITS, allow_more=True)
        if len(raw) < nbytes:
            raise DicomError(
                f"{source}: deflated frame {idx + 1} inflates to {len(raw)} bytes, expected {nbytes}; corrupt file."
            )
        buf = np.frombuffer(raw, dtype=np.uint8)
        if bits == 1:
            yield _unpack_bits(buf, 0, rows * cols).reshape(rows, cols)
        elif bits == 8:
            yield buf[: rows * cols].reshape(rows, cols)
        else:
            yield np.frombuffer(raw[:nbytes], dtype="<u2").reshape(rows, cols).astype(np.uint16)


def _pydicom_frames(ds: Dataset, source: str, ts: str) -> Iterator[np.ndarray]:
    from pydicom.pixels import pixel_array

    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    for f in range(n):
        try:
            arr = pixel_array(ds, index=f, raw=True)
        except (NotImplementedError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _unsupported(source, ts, f"no installed decoder could read frame {f + 1} ({first})") from exc
        except Exception as exc:
            raise DicomError(f"{source}: frame {f + 1} cannot be decoded ({exc}); the file is corrupt.") from exc
        yield np.asarray(arr)


def iter_frames(ds: Dataset, source: str) -> Iterator[np.ndarray]:
    """Yield the decoded frames of ``ds`` in stored order, each ``(Rows, Columns)``.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A multi-frame dataset with PixelData (DICOM SEG).
    source : str
        File name used in messages.

    Yields
    ------
    numpy.ndarray
        Stored values of one frame (uint8 for 1- and 8-bit, uint16 for 16-bit).

    Raises
    ------
    UnsupportedError
        If no decoder handles the transfer syntax.
    DicomError
        If the pixel data is truncated or corrupt.
    """
    if "PixelData" not in ds:
        raise DicomError(f"{source}: the segmentation has no PixelData; the file is truncated or not a SEG.")
    ts = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else ""
    bits = int(ds.BitsAllocated)
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise _unsupported(source, ts, "SamplesPerPixel is not 1")
    if ts in _NATIVE_LE or ts == "":
        yield from _native_frames(ds, source, big_endian=False)
    elif ts == _NATIVE_BE:
        yield from _native_frames(ds, source, big_endian=True)
    elif ts == DEFLATED_IMAGE_FRAME:
        yield from _deflate_frames(ds, source, ts)
    elif ts == _RLE and bits == 1:
        yield from _rle_1bit_frames(ds, source, ts)
    else:
        yield from _pydicom_frames(ds, source, ts)

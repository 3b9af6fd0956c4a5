"""The data the study page's viewer draws: compact binary, base64-embedded.

Everything is in the voxel grid of the measured image (the *full grid*); the
browser maps voxel index <-> LPS with the image affine, so a lesion's reported
centroid (LPS mm) lands on its voxel for oblique grids too.

- **Image**: 8-bit, linearly encoded over a stated value range (CT: -200..300 HU,
  which holds the soft-tissue and liver presets), block-averaged by integer
  factors (in-plane first) until the page fits its byte budget.
- **Masks** (liver, lesion instances, Couinaud segments): full resolution,
  run-length encoded over the array's memory order (values + uint32 run
  lengths); downsampled by striding only when the runs alone would not fit.
- **PET**: SUV sampled (linear) onto a coarse version of the image grid
  (about the PET's own spacing), 8-bit over 0..SUV ``encode_max``; a
  maximum-intensity projection on the PET's own grid with the lesions
  projected onto it.

Budgets are on the base64 text (4/3 of the bytes).
"""

from __future__ import annotations

import base64
import logging
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..measure.context import MeasurementContext
from ..volume import Volume

__all__ = [
    "CT_ENCODE_RANGE_HU",
    "CT_PRESETS",
    "ViewerData",
    "build_viewer_data",
    "decode_rle",
    "encode_rle",
    "orientation_views",
    "png_rgb",
]

logger = logging.getLogger(__name__)

#: 8-bit encoding range of CT images (HU): holds both presets below.
CT_ENCODE_RANGE_HU = (-200.0, 300.0)
#: Display windows (name, width, level) in HU.
CT_PRESETS: tuple[tuple[str, float, float], ...] = (("soft tissue", 400.0, 40.0), ("liver", 150.0, 90.0))
#: Fixed SUV display scales (upper end; the lower end is 0).
SUV_SCALES: tuple[float, ...] = (5.0, 10.0, 20.0)
_B64 = 4.0 / 3.0
#: Masks with more voxels than this are sampled (the browser holds each one decoded, 1-2 bytes a voxel).
MAX_MASK_VOXELS = 120_000_000


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


# ----------------------------------------------------------------------------- run-length masks
def _flat(a: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The array in its memory order (no copy when contiguous) and its element strides."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    strides = [int(s // a.itemsize) for s in a.strides]
    return a.ravel(order="K"), strides


def encode_rle(a: np.ndarray) -> dict[str, Any]:
    """Run-length code of an integer array in its memory order.

    Returns
    -------
    dict
        ``values`` (base64 uint8 or uint16), ``lengths`` (base64 uint32),
        ``dtype``, ``strides`` (element strides of i, j, k), ``runs``, ``bytes``
        (base64 characters).
    """
    flat, strides = _flat(a)
    if flat.dtype == np.bool_:
        flat = flat.view(np.uint8)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size]))).astype(np.uint32)
    values = flat[starts]
    vmax = int(values.max()) if values.size else 0
    vdtype = np.uint8 if vmax < 256 else np.uint16
    if vmax >= 65536:
        raise ValueError(f"label value {vmax} does not fit 16 bits")
    out: dict[str, Any] = {
        "values": _b64(values.astype(vdtype)),
        "lengths": _b64(lengths),
        "dtype": np.dtype(vdtype).name,
        "strides": strides,
        "runs": int(lengths.size),
    }
    out["bytes"] = len(out["values"]) + len(out["lengths"])
    return out


def decode_rle(enc: Mapping[str, Any], shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_rle` (for tests and tools): the array indexed ``[i, j, k]``."""
    values = np.frombuffer(base64.b64decode(enc["values"]), dtype=enc["dtype"])
    lengths = np.frombuffer(base64.b64decode(enc["lengths"]), dtype=np.uint32)
    flat = np.repeat(values, lengths)
    itemsize = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, tuple(shape), tuple(int(s) * itemsize for s in enc["strides"]))


# ----------------------------------------------------------------------------- views and orientation
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def _label(v: np.ndarray) -> str:
    """Orientation letters of an LPS direction, strongest first (e.g. ``L`` or ``LA`` when oblique)."""
    order = np.argsort(-np.abs(v))
    return "".join(_LETTERS[a][int(v[a] > 0)] for a in order if abs(v[a]) > 0.25) or "?"


def orientation_views(direction: np.ndarray) -> dict[str, dict[str, Any]]:
    """How the three views lay out the array axes.

    Axial: columns toward patient left, rows toward posterior (viewed from the feet);
    coronal: columns toward left, rows toward inferior; sagittal: columns toward
    posterior, rows toward inferior. Each view slices the array axis closest to its
    normal (S, P, L) and shows the other two; ``flip_*`` reverse an axis so the view
    reads in that convention. ``labels`` are the patient directions at the left,
    right, top and bottom edges (two letters on oblique grids).

    Parameters
    ----------
    direction : numpy.ndarray
        3x3 direction cosines (columns i, j, k) in LPS.

    Returns
    -------
    dict
        ``{"axial"|"coronal"|"sagittal": {"normal", "col", "row", "flip_col", "flip_row", "labels"}}``.
    """
    d = np.asarray(direction, dtype=float)
    # assign the array axes to patient axes one to one (largest cosines first)
    pairs = sorted(((abs(d[p, a]), p, a) for p in range(3) for a in range(3)), reverse=True)
    axis_of: dict[int, int] = {}
    used: set[int] = set()
    for _, p, a in pairs:
        if p not in axis_of and a not in used:
            axis_of[p] = a
            used.add(a)
    # (normal patient axis, column patient axis and its sign, row patient axis and its sign)
    spec = {"axial": (2, (0, 1), (1, 1)), "coronal": (1, (0, 1), (2, -1)), "sagittal": (0, (1, 1), (2, -1))}
    views: dict[str, dict[str, Any]] = {}
    for name, (normal, (cp, cs), (rp, rs)) in spec.items():
        ca, ra = axis_of[cp], axis_of[rp]
        flip_c = bool(np.sign(d[cp, ca]) != cs)
        flip_r = bool(np.sign(d[rp, ra]) != rs)
        vc = d[:, ca] * (-1 if flip_c else 1)
        vr = d[:, ra] * (-1 if flip_r else 1)
        views[name] = {
            "normal": axis_of[normal],
            "col": ca,
            "row": ra,
            "flip_col": flip_c,
            "flip_row": flip_r,
            "labels": {"left": _label(-vc), "right": _label(vc), "top": _label(-vr), "bottom": _label(vr)},
        }
    return views


# ----------------------------------------------------------------------------- image
def _pet_unit(vol: Volume) -> str:
    """A PET image's unit: SUV, or Bq/mL when it could not be converted (no patient weight: ``meta["units"]``)."""
    return "Bq/mL" if vol.meta.get("units") == "BQML" else "SUV"


def _encode_range(vol: Volume, modality: str, liver: np.ndarray | None) -> tuple[float, float, str, str]:
    if modality == "CT":
        lo, hi = CT_ENCODE_RANGE_HU
        return lo, hi, "HU", f"{lo:.0f} to {hi:.0f} HU"
    arr = vol.array
    step = max(1, arr.size // 2_000_000)
    vals = arr.ravel(order="K")[::step]
    if liver is not None:
        lv = liver.ravel(order="K")[::step] if liver.flags.c_contiguous == arr.flags.c_contiguous else None
        if lv is not None and lv.any():
            vals = vals[lv]
    vals = vals[np.isfinite(vals)]
    unit = _pet_unit(vol) if modality == "PT" else "a.u."
    if not vals.size:
        return 0.0, 1.0, unit, "no finite values"
    lo, hi = (float(v) for v in np.percentile(vals, [0.5, 99.5]))
    pad = 0.5 * max(hi - lo, 1e-6)
    lo, hi = (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad
    return lo, hi, unit, f"{lo:.3g} to {hi:.3g} {unit} (0.5th-99.5th percentile, widened)"


def _factors(shape: tuple[int, int, int], slice_axis: int, budget_chars: float) -> tuple[int, int, int]:
    """Smallest integer block sizes (in-plane first, then slices) whose 8-bit image fits the budget."""
    f = [1, 1, 1]
    inplane = [a for a in range(3) if a != slice_axis]
    while np.prod([-(-shape[a] // f[a]) for a in range(3)]) * _B64 > budget_chars:
        if f[inplane[0]] <= 2 * f[slice_axis] or max(f) >= min(shape[a] for a in inplane):
            for a in inplane:
                f[a] += 1
        else:
            f[slice_axis] += 1
        if all(f[a] >= shape[a] for a in range(3)):
            break
    return f[0], f[1], f[2]


def _downsample_uint8(arr: np.ndarray, f: tuple[int, int, int], lo: float, hi: float) -> np.ndarray:
    """Block mean over ``f`` (cropped to whole blocks), encoded to uint8 over ``[lo, hi]``.

    The result keeps the source's memory order (F-ordered DICOM/NIfTI volumes are
    walked along memory, not across it); the page reads it through its strides.
    """
    n = [max(1, s // k) for s, k in zip(arr.shape, f)]
    order: Literal["C", "F"] = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    count = f[0] * f[1] * f[2]
    scale = 255.0 / (hi - lo)
    if count == 1:
        acc = np.asarray(arr, dtype=np.float32, order=order)
        if acc is arr or np.shares_memory(acc, arr):
            acc = acc.copy(order=order)
    else:
        acc = np.zeros(n, dtype=np.float32, order=order)
        for a in range(f[0]):
            for b in range(f[1]):
                for c in range(f[2]):
                    acc += arr[a : n[0] * f[0] : f[0], b : n[1] * f[1] : f[1], c : n[2] * f[2] : f[2]]
        scale /= count
    acc -= lo * count
    acc *= scale
    if np.issubdtype(arr.dtype, np.floating):
        acc[np.isnan(acc)] = 0.0
    np.clip(acc, 0.0, 255.0, out=acc)
    acc += 0.5
    return acc.astype(np.uint8, order=order)


# ----------------------------------------------------------------------------- PET
def _display_spacing(image: Volume) -> list[float]:
    """Per-axis mm of the views' pixels: the spacing, with the plane separation on a sheared grid's slice axis."""
    spacing = [float(s) for s in image.spacing]
    if image.sheared:
        spacing[image.slice_axis] = float(image.slice_separation_mm)
    return spacing


def _pet_on_grid(image: Volume, pet: Volume) -> tuple[np.ndarray, tuple[int, int, int]]:
    """PET SUV sampled (linear) on the image grid with blocks about the PET spacing."""
    from scipy import ndimage

    pmin = float(np.min(pet.spacing))
    f = tuple(int(max(1, round(pmin / s))) for s in image.spacing)
    n = [max(1, -(-s // k)) for s, k in zip(image.shape, f)]
    # overlay voxel m sits at full index f*m + (f-1)/2; PET index = inv(pet) @ image affine
    scale = np.diag([*f, 1.0]).astype(float)
    scale[:3, 3] = [(k - 1) / 2 for k in f]
    m = np.linalg.inv(pet.affine) @ image.affine @ scale
    arr = np.asarray(pet.array, dtype=np.float32)
    out = ndimage.affine_transform(arr, m[:3, :3], offset=m[:3, 3], output_shape=tuple(n), order=1, cval=np.nan)
    return out, (int(f[0]), int(f[1]), int(f[2]))


def _mip(pet: Volume, lesion_labels: np.ndarray, image: Volume) -> dict[str, Any]:
    """Anterior MIP on the PET grid (columns toward patient left, rows toward inferior) with projected lesions."""
    v = orientation_views(pet.direction)["coronal"]
    ap, h, r = v["normal"], v["col"], v["row"]
    arr = np.asarray(pet.array, dtype=np.float32)
    mip = np.nanmax(arr, axis=ap)
    rest = [a for a in range(3) if a != ap]
    if rest.index(h) != 1:
        mip = mip.T  # rows: r, columns: h
    if v["flip_col"]:
        mip = mip[:, ::-1]
    if v["flip_row"]:
        mip = mip[::-1, :]
    proj = np.zeros(mip.shape, dtype=np.uint16)
    idx = np.nonzero(lesion_labels)
    if idx[0].size:
        ids = lesion_labels[idx]
        pts = pet.lps_to_index(image.index_to_lps(np.stack(idx, axis=1).astype(np.float64)))
        pts = np.round(pts).astype(np.int64)
        cols, rows = pts[:, h], pts[:, r]
        if v["flip_col"]:
            cols = pet.shape[h] - 1 - cols
        if v["flip_row"]:
            rows = pet.shape[r] - 1 - rows
        ok = (cols >= 0) & (cols < mip.shape[1]) & (rows >= 0) & (rows < mip.shape[0])
        order = np.argsort(ids[ok], kind="stable")  # larger ids drawn last, deterministic
        proj[rows[ok][order], cols[ok][order]] = ids[ok][order].astype(np.uint16)
    finite = mip[np.isfinite(mip)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    top = max(top, 1e-6)
    enc = np.clip(np.nan_to_num(mip, nan=0.0) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    return {
        "width": int(mip.shape[1]),
        "height": int(mip.shape[0]),
        "spacing_mm": [float(pet.spacing[h]), float(pet.spacing[r])],
        "data": _b64(enc),
        "encode_max": top,
        "lesions": encode_rle(proj[:, :, None]),
        "labels": v["labels"],
        "axis": int(ap),
    }


# ----------------------------------------------------------------------------- assembly
@dataclass
class ViewerData:
    """The viewer payload (JSON-able ``payload``) and what the page says about it."""

    payload: dict[str, Any]
    notes: list[str]
    chars: int


def _mask_layers(ctx: MeasurementContext, stride: tuple[int, int, int]) -> tuple[dict[str, Any], tuple[int, int, int]]:
    # every s-th voxel from s // 2: block m of the viewer (full index // s) shows its middle voxel, not its first
    sl = tuple(slice(s // 2, None, s) for s in stride)
    layers: dict[str, Any] = {}
    if ctx.liver is not None:
        layers["liver"] = encode_rle(ctx.liver[sl])
    layers["lesions"] = encode_rle(ctx.lesion_labels[sl])
    if ctx.segment_labels is not None:
        layers["segments"] = encode_rle(ctx.segment_labels[sl])
    shape = ctx.lesion_labels[sl].shape
    return layers, (int(shape[0]), int(shape[1]), int(shape[2]))


def build_viewer_data(
    ctx: MeasurementContext,
    report: Mapping[str, Any],
    *,
    modality: str,
    budget_mb: float = 25.0,
    pet_suv: Volume | None = None,
) -> ViewerData:
    """Encode image, masks and PET of one study for the viewer within ``budget_mb``.

    Parameters
    ----------
    ctx : MeasurementContext
        Image and masks (all on the image grid).
    report : mapping
        ``StudyReport.to_dict()``: lesion ids, centroids and names come from here.
    modality : str
        ``CT`` uses the HU encoding range and presets; others a percentile range.
    budget_mb : float
        Bytes (10^6) of embedded data allowed: masks first (full resolution when
        they take at most half), the image gets the rest.
    pet_suv : Volume, optional
        PET in SUV (any grid in the same patient frame).

    Returns
    -------
    ViewerData
    """
    image = ctx.image
    budget = budget_mb * 1e6
    notes: list[str] = []

    def coarser(st: tuple[int, ...]) -> tuple[int, int, int]:
        """Double the in-plane strides first, then the slice stride."""
        top = max(st)
        out = [min(x * 2, image.shape[a]) if a != image.slice_axis or x < top else x for a, x in enumerate(st)]
        if out == list(st):  # in-plane at the grid size: the slices thin out
            out = [min(x * 2, image.shape[a]) for a, x in enumerate(st)]
        return out[0], out[1], out[2]

    def voxels(st: tuple[int, ...]) -> int:
        return int(np.prod([-(-n // k) for n, k in zip(image.shape, st)]))

    mstride: tuple[int, int, int] = (1, 1, 1)
    while voxels(mstride) > MAX_MASK_VOXELS and coarser(mstride) != mstride:  # the browser holds them decoded
        mstride = coarser(mstride)
    layers, mshape = _mask_layers(ctx, mstride)
    mask_chars = sum(v["bytes"] for v in layers.values())
    while mask_chars > max(budget / 2, 50_000) and coarser(mstride) != mstride:  # tiny budgets: a floor
        mstride = coarser(mstride)
        layers, mshape = _mask_layers(ctx, mstride)
        mask_chars = sum(v["bytes"] for v in layers.values())
    if mstride != (1, 1, 1):
        why = "exceed the budget" if voxels((1, 1, 1)) <= MAX_MASK_VOXELS else f"exceed {MAX_MASK_VOXELS:,} voxels"
        notes.append(f"masks sampled every {list(mstride)} voxels (i, j, k): the full-resolution masks {why}")
    else:
        notes.append("masks at full resolution")

    if image.sheared:
        notes.append(
            f"the image grid is sheared ({image.shear_deg:.1f} degrees of gantry tilt): the coronal and sagittal "
            "views stack its slice planes without the shear, each plane's distance from the next to scale"
        )
    payload: dict[str, Any] = {
        "shape": list(image.shape),
        "affine": np.asarray(image.affine).tolist(),
        # the views are drawn as rectangles: on a sheared grid (gantry tilt) the slice axis's extent is the
        # distance between the slice planes, not the longer step along the tilted axis
        "spacing": _display_spacing(image),
        "views": orientation_views(image.direction),
        "mask_stride": list(mstride),
        "mask_shape": list(mshape),
        "layers": layers,
        "modality": modality,
    }
    pet_chars = 0
    if pet_suv is not None and pet_suv is not image:
        grid, pf = _pet_on_grid(image, pet_suv)
        finite = grid[np.isfinite(grid)]
        top = float(np.percentile(finite, 99.9)) if finite.size else 1.0
        top = max(top, 1.0)
        enc = np.clip(np.nan_to_num(grid, nan=0.0) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        payload["pet"] = {"factor": list(pf), "shape": list(enc.shape), "data": _b64(enc), "encode_max": top}
        pet_chars += len(payload["pet"]["data"])
        notes.append(
            f"PET SUV sampled (linear) onto blocks of {list(pf)} image voxels (about the PET spacing), "
            f"8-bit over SUV 0 to {top:.1f}"
        )
    mip_src = pet_suv if pet_suv is not None else (image if modality == "PT" else None)
    if mip_src is not None:
        payload["mip"] = _mip(mip_src, ctx.lesion_labels, image)
        pet_chars += len(payload["mip"]["data"]) + payload["mip"]["lesions"]["bytes"]

    lo, hi, unit, how = _encode_range(image, modality, ctx.liver)
    room = max(budget - mask_chars - pet_chars - 200_000, 1e5)
    f = _factors(image.shape, image.slice_axis, room)
    img = _downsample_uint8(image.array, f, lo, hi)
    payload["image"] = {
        "factor": list(f),
        "shape": list(img.shape),
        "strides": [int(st // img.itemsize) for st in img.strides],
        "data": _b64(img.ravel(order="K")),
        "lo": lo,
        "hi": hi,
        "unit": unit,
    }
    if modality == "CT":
        payload["image"]["presets"] = [{"name": n, "lo": lv - w / 2, "hi": lv + w / 2} for n, w, lv in CT_PRESETS]
    else:
        payload["image"]["presets"] = [{"name": "auto", "lo": lo, "hi": hi}]
        if modality == "PT" and unit == "SUV":
            payload["image"]["presets"] += [{"name": f"SUV 0-{s:g}", "lo": 0.0, "hi": s} for s in SUV_SCALES]
    payload["image"]["presets"].append({"name": "encoded range", "lo": lo, "hi": hi})
    if f == (1, 1, 1):
        notes.insert(0, f"image at full resolution {list(image.shape)}, 8-bit over {how}")
    else:
        notes.insert(
            0,
            f"image downsampled from {list(image.shape)} to {list(img.shape)} voxels (block mean over {list(f)}) "
            f"to fit the {budget_mb:g} MB budget; 8-bit over {how}",
        )
    payload["lesions"] = [
        {
            "id": int(les["id"]),
            "label": les.get("label"),
            "location": les.get("location"),
            "segment": les.get("couinaud_segment"),
            "centroid_lps_mm": [float(x) for x in les.get("centroid_lps_mm") or [0, 0, 0]],
        }
        for les in report.get("lesions") or []
    ]
    chars = len(payload["image"]["data"]) + mask_chars + pet_chars
    return ViewerData(payload=payload, notes=notes, chars=chars)


# ----------------------------------------------------------------------------- thumbnail
def png_rgb(rgb: np.ndarray) -> bytes:
    """A PNG file of an ``H x W x 3`` uint8 array (no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + np.ascontiguousarray(rgb[y]).tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def thumbnail(ctx: MeasurementContext, modality: str, size: int = 128) -> bytes:
    """PNG of the axial slice through the largest lesion (else the liver centre) with the lesions in red."""
    image = ctx.image
    v = orientation_views(image.direction)["axial"]
    n, r = v["normal"], v["row"]
    if ctx.lesions:
        big = max(ctx.lesions, key=lambda les: les.volume_ml)
        k = int(np.clip(round(image.lps_to_index(np.asarray(big.centroid_lps_mm))[0][n]), 0, image.shape[n] - 1))
    elif ctx.liver is not None and ctx.liver.any():
        other = tuple(a for a in range(3) if a != n)
        k = int(np.median(np.flatnonzero(np.any(ctx.liver, axis=other))))
    else:
        k = image.shape[n] // 2
    take = [slice(None)] * 3
    take[n] = slice(k, k + 1)
    sl = tuple(take)
    lo, hi, _, _ = _encode_range(image, modality, ctx.liver)

    def plane(a: np.ndarray) -> np.ndarray:
        p = np.squeeze(a[sl], axis=n)
        rest = [x for x in range(3) if x != n]
        if rest.index(r) != 0:
            p = p.T
        if v["flip_col"]:
            p = p[:, ::-1]
        if v["flip_row"]:
            p = p[::-1, :]
        step = max(1, int(np.ceil(max(p.shape) / size)))
        return p[::step, ::step]

    g = np.clip((np.asarray(plane(image.array), dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    g = np.nan_to_num(g).astype(np.uint8)
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    les = plane(ctx.lesion_labels) > 0
    rgb[les] = (255, 40, 40)
    return png_rgb(rgb)

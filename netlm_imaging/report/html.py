"""Self-contained HTML QA page of one study, and a cohort index page.

The study page shows what was measured so a person can check it:

- for each lesion, a **transverse (axial) slice through the lesion centre**
  with the liver and lesion contours over the image. The plane is the patient
  transverse plane: for images whose slices are transverse it is the image
  slice nearest the centre (sampled at the voxel centres); for oblique images
  the image is resampled (linear; masks nearest neighbour) onto a transverse
  plane through the centre, and the caption says so;
- a PET maximum-intensity projection (anterior view) when a PET SUV volume is given;
- a per-segment tumour volume bar chart when the report has Couinaud segments;
- the numbers, the lesion table, warnings and the classification with its rationale.

Display windows: CT soft tissue (W 400 / L 40 HU); other modalities the
1st-99th percentile of the image inside the liver (or the whole image).

Images are PNGs drawn with matplotlib's Agg canvas (no pyplot, no global
backend change) and embedded as base64 ``data:`` URIs: the page needs no
other file and no network. Patient identifiers are never written: the page
shows no names, IDs, birth dates or file paths, even when the report holds them.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..measure.context import MeasurementContext
from ..volume import Volume

__all__ = ["CT_WINDOW_HU", "render_study_html", "write_cohort_index", "write_study_html"]

logger = logging.getLogger(__name__)

#: CT soft-tissue window (width, level) in HU.
CT_WINDOW_HU = (400.0, 40.0)
#: |cos| tolerance for image slices to count as transverse.
_AXIAL_TOL = 1e-4
_MAX_PIXELS = 360
_MARGIN_MM = 15.0
_LIVER_COLOUR = "#00d000"
_LESION_COLOUR = "#ff2020"
_OTHER_LESION_COLOUR = "#ffb000"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0;background:#fff}
td,th{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;font-size:.92em}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fff;border:1px solid #d0d0d0;padding:6px;width:380px}
figure img{width:100%;height:auto;display:block}figcaption{font-size:.82em;color:#444;margin-top:4px}
.warn{background:#fff4d6;border-left:4px solid #e0a000;padding:4px 10px;margin:4px 0}
.muted{color:#666;font-size:.88em}.fail{color:#b00020;font-weight:600}.ok{color:#007a33;font-weight:600}
"""


# ----------------------------------------------------------------------------- small helpers
def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _png_data_uri(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100)


def _is_transverse(vol: Volume) -> bool:
    return abs(abs(float(vol.direction[2, vol.slice_axis])) - 1.0) <= _AXIAL_TOL


def _window(vol: Volume, modality: str, liver: np.ndarray | None) -> tuple[float, float, str]:
    if modality == "CT":
        w, level = CT_WINDOW_HU
        return level - w / 2, level + w / 2, f"CT window W{w:.0f}/L{level:.0f} HU"
    arr = vol.array
    vals = arr[liver] if liver is not None and liver.any() else arr.ravel()
    if vals.size > 2_000_000:
        vals = vals[:: vals.size // 2_000_000 + 1]
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return 0.0, 1.0, "window: no finite values"
    lo, hi = (float(v) for v in np.percentile(vals, [1, 99]))
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.25 * (hi - lo)
    return lo - pad, hi + pad, "window: 1st-99th percentile in the liver, widened 25%"


# ----------------------------------------------------------------------------- geometry of the views
def _xy_extent(ctx: MeasurementContext) -> tuple[np.ndarray, np.ndarray] | None:
    """LPS x/y bounds (mm) of the liver's bounding box corners."""
    if ctx.liver is None or not ctx.liver.any():
        return None
    lo_hi = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(np.any(ctx.liver, axis=other))
        lo_hi.append((nz[0], nz[-1]))
    corners = np.array([[i, j, k] for i in lo_hi[0] for j in lo_hi[1] for k in lo_hi[2]], dtype=float)
    pts = ctx.image.index_to_lps(corners)
    return pts.min(0)[:2] - _MARGIN_MM, pts.max(0)[:2] + _MARGIN_MM


def _axial_plane(
    ctx: MeasurementContext, centre_lps: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Sample positions of a transverse plane through ``centre_lps``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, float)
        Continuous voxel indices (H x W x 3), the plane's LPS extent
        ``[x0, x1, y1, y0]`` for imshow, and the plane's z (mm).
    """
    vol = ctx.image
    c = np.asarray(centre_lps, dtype=float)
    if _is_transverse(vol):  # snap to the nearest image slice so the samples are the voxels themselves
        ax = vol.slice_axis
        idx = vol.lps_to_index(c)[0]
        idx[ax] = float(np.clip(np.round(idx[ax]), 0, vol.shape[ax] - 1))
        c = vol.index_to_lps(idx)[0]
    in_plane = [s for a, s in enumerate(vol.spacing) if a != vol.slice_axis] if _is_transverse(vol) else vol.spacing
    pix = float(min(in_plane))
    if bounds is None:
        half = 60.0
        lo, hi = c[:2] - half, c[:2] + half
    else:
        lo, hi = bounds
        lo = np.minimum(lo, c[:2] - 20.0)
        hi = np.maximum(hi, c[:2] + 20.0)
    n = np.ceil((hi - lo) / pix).astype(int) + 1
    if n.max() > _MAX_PIXELS:
        pix *= float(n.max()) / _MAX_PIXELS
        n = np.ceil((hi - lo) / pix).astype(int) + 1
    if _is_transverse(vol):  # align the sample grid with the voxel centres in-plane where the axes allow
        off = (c[:2] - lo) % pix
        lo = lo + off - pix
        n = n + 1
    xs = lo[0] + pix * np.arange(n[0])
    ys = lo[1] + pix * np.arange(n[1])
    gx, gy = np.meshgrid(xs, ys, indexing="xy")  # rows: y (posterior down), columns: x (patient left right)
    pts = np.stack([gx, gy, np.full_like(gx, c[2])], axis=-1)
    idx = vol.lps_to_index(pts.reshape(-1, 3)).reshape(*gx.shape, 3)
    extent = np.array([xs[0] - pix / 2, xs[-1] + pix / 2, ys[-1] + pix / 2, ys[0] - pix / 2])
    return idx, extent, float(c[2])


def _sample(arr: np.ndarray, idx: np.ndarray, order: int, cval: float, output: Any = None) -> np.ndarray:
    from scipy import ndimage

    coords = np.moveaxis(idx, -1, 0)
    if order == 0:
        coords = np.round(coords)
    return ndimage.map_coordinates(arr, coords, output=output, order=order, mode="constant", cval=cval, prefilter=False)


def _lesion_figure(
    ctx: MeasurementContext, lesion: Any, modality: str, win: tuple[float, float, str], bounds: Any
) -> tuple[str, str]:
    """PNG data URI and caption of the axial view through one lesion."""
    centre = np.asarray(lesion.centroid_lps_mm, dtype=float)
    idx, extent, z = _axial_plane(ctx, centre, bounds)
    # float32 output: an integer (int16 DICOM) image is sampled without a full-size float copy per lesion
    img = _sample(ctx.image.array, idx, order=1 if not _is_transverse(ctx.image) else 0, cval=np.nan, output=np.float32)
    labels = _sample(ctx.lesion_labels, idx, 0, 0).astype(np.int32)
    width_mm, height_mm = extent[1] - extent[0], extent[2] - extent[3]
    fig = _figure(3.8, float(np.clip(3.8 * height_mm / width_mm, 1.5, 6.0)))
    fig.patch.set_facecolor("black")
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(img, cmap="gray", vmin=win[0], vmax=win[1], extent=tuple(extent), interpolation="nearest")
    if ctx.liver is not None:
        liver = _sample(ctx.liver.astype(np.uint8), idx, 0, 0)
        if liver.any() and not liver.all():
            ax.contour(liver, levels=[0.5], colors=_LIVER_COLOUR, linewidths=1.2, extent=tuple(extent), origin="upper")
    others = (labels > 0) & (labels != lesion.id)
    if others.any():
        ax.contour(
            others.astype(np.uint8),
            levels=[0.5],
            colors=_OTHER_LESION_COLOUR,
            linewidths=0.9,
            extent=tuple(extent),
            origin="upper",
        )
    this = labels == lesion.id
    if this.any():
        ax.contour(
            this.astype(np.uint8),
            levels=[0.5],
            colors=_LESION_COLOUR,
            linewidths=1.6,
            extent=tuple(extent),
            origin="upper",
        )
    ax.plot([centre[0]], [centre[1]], marker="+", color=_LESION_COLOUR, markersize=8)
    for x, y, t in ((0.02, 0.5, "R"), (0.98, 0.5, "L"), (0.5, 0.98, "A"), (0.5, 0.02, "P")):
        ax.text(x, y, t, color="yellow", transform=ax.transAxes, ha="center", va="center", fontsize=9)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_axis_off()
    uri = _png_data_uri(fig)
    how = (
        "image slice nearest the lesion centre"
        if _is_transverse(ctx.image)
        else "image slices are oblique: resampled onto the patient transverse plane through the lesion centre"
    )
    caption = (
        f"Lesion {lesion.id} ({_e(lesion.location)}): {lesion.volume_ml:.2f} mL, longest axial diameter "
        f"{lesion.longest_axial_diameter_mm:.1f} mm; axial z = {z:.1f} mm; {how}; {_e(win[2])}. "
        "Green: liver, red: this lesion, orange: other lesions."
    )
    return uri, caption


def _pet_mip(pet: Volume, lesions: list[Any]) -> tuple[str, str]:
    """Anterior maximum-intensity projection of a PET SUV volume, with lesion centres marked."""
    d = pet.direction
    ap = int(np.argmax(np.abs(d[1, :])))
    rest = [a for a in range(3) if a != ap]
    h = rest[int(np.argmax([abs(d[0, a]) for a in rest]))]
    v = rest[0] if rest[1] == h else rest[1]
    mip = np.nanmax(np.asarray(pet.array, dtype=np.float32), axis=ap)
    # mip axes are the remaining array axes in order; put v on rows and h on columns
    if rest.index(h) == 0:
        mip = mip.T
    flip_h = d[0, h] < 0  # columns: patient left to the right
    flip_v = d[2, v] > 0  # rows: superior at the top
    if flip_h:
        mip = mip[:, ::-1]
    if flip_v:
        mip = mip[::-1, :]
    sp = pet.spacing
    height_mm, width_mm = mip.shape[0] * sp[v], mip.shape[1] * sp[h]
    fig = _figure(3.8, max(2.0, min(7.5, 3.8 * height_mm / max(width_mm, 1e-6))))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    finite = mip[np.isfinite(mip)]
    vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    ax.imshow(
        mip,
        cmap="gray_r",
        vmin=0.0,
        vmax=max(vmax, 1e-6),
        extent=(0, width_mm, height_mm, 0),
        aspect="equal",
        interpolation="nearest",
    )
    for les in lesions:
        ijk = pet.lps_to_index(np.asarray(les.centroid_lps_mm, dtype=float))[0]
        col = (pet.shape[h] - 1 - ijk[h]) if flip_h else ijk[h]
        row = (pet.shape[v] - 1 - ijk[v]) if flip_v else ijk[v]
        x, y = (col + 0.5) * sp[h], (row + 0.5) * sp[v]
        ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="none", markeredgecolor=_LESION_COLOUR)
        ax.text(x + 6, y, str(les.id), color=_LESION_COLOUR, fontsize=8, va="center")
    ax.set_xlim(0, width_mm)
    ax.set_ylim(height_mm, 0)
    ax.set_axis_off()
    caption = (
        f"PET maximum-intensity projection, anterior view (along array axis {ap}, the axis closest to "
        f"anterior-posterior); grey scale 0 to {vmax:.1f} (99.5th percentile); red circles: lesion centres."
    )
    return _png_data_uri(fig), caption


def _segment_chart(segments: list[Mapping[str, Any]]) -> tuple[str, str]:
    segs = sorted(segments, key=lambda s: int(s["segment"]))
    names = [str(s["segment"]) for s in segs]
    tum = [float(s.get("tumor_volume_ml") or 0.0) for s in segs]
    fig = _figure(3.8, 2.8)
    ax = fig.add_axes((0.16, 0.17, 0.8, 0.75))
    bars = ax.bar(names, tum, color=_LESION_COLOUR)
    for b, s in zip(bars, segs):
        if s.get("lesion_count") is not None:
            ax.text(
                b.get_x() + b.get_width() / 2,
                b.get_height(),
                f"n={s['lesion_count']}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xlabel("Couinaud segment")
    ax.set_ylabel("tumour volume (mL)")
    ax.set_ylim(0, max([*tum, 1e-3]) * 1.2)
    return _png_data_uri(fig), "Tumour volume per Couinaud segment (n = lesions per segment)."


# ----------------------------------------------------------------------------- tables
def _kv_table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td class='num'>{_e(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _numbers(report: Mapping[str, Any]) -> str:
    liver = report.get("liver") or {}
    tumor = report.get("tumor") or {}
    rem = report.get("remnant") or {}
    rows: list[tuple[str, Any]] = [
        ("Total liver volume (mL)", liver.get("volume_ml")),
        ("Intrahepatic tumour volume (mL)", tumor.get("intrahepatic_volume_ml")),
        ("Involvement (%)", report.get("involvement_percent")),
        ("Intrahepatic lesions", tumor.get("lesion_count")),
        ("Extrahepatic tumour volume (mL)", tumor.get("extrahepatic_volume_ml")),
        ("Extrahepatic lesions", tumor.get("extrahepatic_lesion_count")),
        ("Non-tumorous liver (mL)", rem.get("non_tumorous_liver_volume_ml")),
        ("Future liver remnant (mL)", rem.get("future_liver_remnant_ml")),
        ("FLR / non-tumorous liver (%)", rem.get("flr_percent_of_non_tumorous")),
        ("Standardized FLR (%)", rem.get("standardized_flr_percent")),
        ("Liver touches image border", liver.get("touches_image_border")),
    ]
    pet = report.get("pet") or {}
    for key, name in (
        ("liver_suv_mean", "Liver SUVmean"),
        ("spleen_suv_mean", "Spleen SUVmean"),
        ("suv_max", "SUVmax"),
        ("sretv_ml", "SRETV (mL)"),
        ("tlsre", "TLSRE"),
        ("delineation", "PET delineation"),
    ):
        if pet.get(key) is not None:
            rows.append((name, pet[key]))
    return _kv_table((k, v) for k, v in rows if v is not None or k.startswith(("Total", "Intra", "Involve")))


def _lesion_table(lesions: list[Mapping[str, Any]]) -> str:
    if not lesions:
        return "<p class='muted'>No lesions.</p>"
    cols = [
        ("id", "id", 0),
        ("location", "location", 0),
        ("volume (mL)", "volume_ml", 3),
        ("longest axial (mm)", "longest_axial_diameter_mm", 1),
        ("short axis (mm)", "short_axis_diameter_mm", 1),
        ("max 3D (mm)", "max_3d_diameter_mm", 1),
        ("RECIST measurable", "recist_measurable", 0),
        ("segment", "couinaud_segment", 0),
        ("touches border", "touches_image_border", 0),
        ("SUVmax", "suv_max", 2),
        ("label", "label", 0),
    ]
    head = "".join(f"<th>{_e(c[0])}</th>" for c in cols)
    body = ""
    for les in lesions:
        cells = "".join(
            f"<td class='num'>{_e(_fmt(les.get(key), nd) if isinstance(les.get(key), float) else _fmt(les.get(key)))}"
            "</td>"
            for _, key, nd in cols
        )
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _classification(cls: Mapping[str, Any]) -> str:
    rows = [
        (k.replace("_", " "), cls.get(k))
        for k in (
            "mahuron_type",
            "burden_category",
            "distribution",
            "resectable_cloyd",
            "achievable_debulking_percent",
            "rules_version",
        )
    ]
    out = _kv_table(rows)
    rationale = cls.get("rationale") or []
    if rationale:
        out += "<h3>Rationale</h3><ul>" + "".join(f"<li>{_e(r)}</li>" for r in rationale) + "</ul>"
    missing = cls.get("missing_inputs") or []
    if missing:
        out += "<p class='muted'>Missing inputs: " + _e(", ".join(str(m) for m in missing)) + "</p>"
    return out


# ----------------------------------------------------------------------------- pages
def render_study_html(
    report: Mapping[str, Any],
    ctx: MeasurementContext,
    *,
    pet_suv: Volume | None = None,
    max_lesion_figures: int = 60,
) -> str:
    """The QA page of one study as an HTML string (see the module docstring).

    Parameters
    ----------
    report : mapping
        ``StudyReport.to_dict()``.
    ctx : MeasurementContext
        The masks and image the report was measured on.
    pet_suv : Volume, optional
        PET in SUV, for the maximum-intensity projection.
    max_lesion_figures : int
        Draw at most this many lesion views (largest lesions first); the page says when some are left out.

    Returns
    -------
    str
    """
    study = report.get("study") or {}
    modality = str(study.get("modality") or ctx.header.get("modality") or "OT").upper()
    win = _window(ctx.image, modality, ctx.liver)
    bounds = _xy_extent(ctx)
    parts: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<title>netlm-imaging QA report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>netlm-imaging QA report</h1>",
    ]
    grid = study.get("grid") or {}
    tool = report.get("tool") or {}
    parts.append(
        "<p class='muted'>"
        + _e(
            f"Modality {modality}; grid {grid.get('shape')} voxels of {grid.get('spacing_mm')} mm"
            f"{' (masks resampled onto the image grid)' if grid.get('resampled') else ''}; "
            f"{tool.get('name', 'netlm-imaging')} {tool.get('version', '')}; schema {report.get('schema_version', '')}"
        )
        + (f"<br>Study Instance UID {_e(study['study_instance_uid'])}" if study.get("study_instance_uid") else "")
        + "</p>"
    )
    warnings = report.get("warnings") or []
    parts.append("<h2>Warnings</h2>")
    parts.append("".join(f"<div class='warn'>{_e(w)}</div>" for w in warnings) or "<p class='muted'>None.</p>")
    parts.append("<h2>Measurements</h2>" + _numbers(report))
    parts.append("<h2>Classification</h2>" + _classification(report.get("classification") or {}))
    parts.append("<h2>Lesions</h2>" + _lesion_table(list(report.get("lesions") or [])))

    figs: list[tuple[str, str]] = []
    if pet_suv is not None:
        figs.append(_pet_mip(pet_suv, ctx.lesions))
    if report.get("segments"):
        figs.append(_segment_chart(list(report["segments"])))
    if figs:
        parts.append("<h2>Overview</h2><div class='figs'>")
        parts.extend(f"<figure><img alt='overview' src='{u}'><figcaption>{c}</figcaption></figure>" for u, c in figs)
        parts.append("</div>")

    lesions = sorted(ctx.lesions, key=lambda les: -les.volume_ml)
    shown = lesions[:max_lesion_figures]
    parts.append("<h2>Lesion views (axial)</h2>")
    if len(lesions) > len(shown):
        parts.append(f"<p class='muted'>Showing the {len(shown)} largest of {len(lesions)} lesions.</p>")
    if not shown:
        parts.append("<p class='muted'>No lesions to show.</p>")
    parts.append("<div class='figs'>")
    for les in sorted(shown, key=lambda x: x.id):
        uri, cap = _lesion_figure(ctx, les, modality, win, bounds)
        parts.append(f"<figure><img alt='lesion {les.id}' src='{uri}'><figcaption>{cap}</figcaption></figure>")
    parts.append("</div>")
    meth = report.get("method") or {}
    parts.append("<h2>Method</h2>" + _kv_table((k.replace("_", " "), v) for k, v in meth.items()))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_study_html(
    report: Mapping[str, Any],
    ctx: MeasurementContext,
    path: str | os.PathLike[str],
    *,
    pet_suv: Volume | None = None,
) -> Path:
    """Write the self-contained QA page of one study (atomically).

    Parameters
    ----------
    report : mapping
        ``StudyReport.to_dict()``.
    ctx : MeasurementContext
        From ``api.analyze_with_context``.
    path : path-like
        Output file (e.g. ``out_dir/report.html``).
    pet_suv : Volume, optional
        PET in SUV for the maximum-intensity projection.

    Returns
    -------
    Path
        The written file.
    """
    out = Path(path)
    atomic_write_text(out, render_study_html(report, ctx, pet_suv=pet_suv))
    logger.info("wrote %s", out)
    return out


def _link(out_dir: Path, target: Any, default: Path, text: str) -> str:
    p = Path(target) if target else default
    full = p if p.is_absolute() else out_dir / p
    if not full.exists():
        return "<span class='muted'>–</span>"
    rel = os.path.relpath(full, out_dir)
    return f"<a href='{_e(Path(rel).as_posix())}'>{_e(text)}</a>"


def write_cohort_index(out_dir: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``out_dir/index.html``: one table row per study linking its QA page and report.

    Parameters
    ----------
    out_dir : path-like
        The batch output folder.
    rows : iterable of mapping
        cohort.csv rows of ``netlm batch``: ``study_id``, ``status``, ``error``,
        ``liver_volume_ml``, ``intrahepatic_tumor_ml``, ``involvement_percent``,
        ``lesion_count``, ``warnings_count``, ``mahuron_type`` (missing keys shown as –).
        Optional ``report_json`` / ``report_html`` paths (relative to ``out_dir``)
        override the defaults ``reports/<study_id>.json`` / ``.html``; links
        are only written to files that exist.

    Returns
    -------
    Path
        ``out_dir/index.html``.
    """
    out = Path(out_dir)
    rows = sorted(rows, key=lambda r: str(r.get("study_id", "")))
    n_ok = sum(1 for r in rows if r.get("status") == "ok")
    head_cols = [
        "study",
        "status",
        "liver (mL)",
        "tumour (mL)",
        "involvement (%)",
        "lesions",
        "Mahuron type",
        "warnings",
        "QA page",
        "report",
        "error",
    ]
    body = []
    for r in rows:
        sid = str(r.get("study_id", ""))
        status = str(r.get("status", ""))
        cls = "ok" if status == "ok" else "fail"
        cells = [
            f"<td>{_e(sid)}</td>",
            f"<td class='{cls}'>{_e(status)}</td>",
            *(
                f"<td class='num'>{_e(_fmt(_num(r.get(k))))}</td>"
                for k in ("liver_volume_ml", "intrahepatic_tumor_ml", "involvement_percent", "lesion_count")
            ),
            f"<td>{_e(_fmt(r.get('mahuron_type')))}</td>",
            f"<td class='num'>{_e(_fmt(r.get('warnings_count')))}</td>",
            "<td>" + _link(out, r.get("report_html"), Path("reports") / f"{sid}.html", "QA page") + "</td>",
            "<td>" + _link(out, r.get("report_json"), Path("reports") / f"{sid}.json", "report.json") + "</td>",
            f"<td>{_e(r.get('error') or '')}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>netlm-imaging cohort</title>"
        f"<style>{_CSS}</style></head><body><h1>netlm-imaging cohort</h1>"
        f"<p class='muted'>{len(rows)} studies: {n_ok} ok, {len(rows) - n_ok} not ok.</p>"
        "<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in head_cols) + "</tr>" + "".join(body) + "</table>"
        "</body></html>\n"
    )
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def _num(v: Any) -> Any:
    """Cells read back from cohort.csv are strings: show numbers with 2 decimals."""
    if isinstance(v, str) and v:
        try:
            f = float(v)
        except ValueError:
            return v
        return int(f) if f.is_integer() and "." not in v else f
    return v

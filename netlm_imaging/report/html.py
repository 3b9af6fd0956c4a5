"""Self-contained HTML QA page of one study, and a cohort index page.

The study page is one HTML file (no server, no network; it works from a
``file://`` URL and as an e-mail attachment):

- an **interactive viewer**: axial, coronal and sagittal views of the image with
  liver, lesion, Couinaud-segment and PET overlays (toggle, opacity), slice
  scrolling (wheel, keys, slider), window presets (CT soft tissue W400/L40,
  liver W150/L90; SUV scales for PET), the lesion under the cursor named, a
  scale bar in mm and patient orientation labels. A click on a lesion row
  moves all three views to the lesion's **reported** centroid (report.json,
  LPS mm -> voxel through the image affine, so oblique grids too);
- a PET maximum-intensity projection (anterior) with the lesions outlined when
  the study has PET;
- the numbers, the lesion table, warnings, classification and method, all
  generated from the report dict (report.json, one source).

The image, masks and PET are embedded as compact binary (8-bit image,
run-length masks) in base64 within a byte budget (``budget_mb``, default 25 MB;
``--html-budget-mb``); the page lists what was downsampled
(:mod:`netlm_imaging.report.viewer_data`). The HTML comes from Jinja2
templates with autoescape (``report/templates``); the viewer's JavaScript
(``report/js``) is embedded at write time. Patient identifiers are never
written: the page shows no names, IDs, birth dates or file paths, even when
the report holds them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..atomic import atomic_open, atomic_write_bytes, atomic_write_text
from ..measure.context import MeasurementContext
from ..volume import Volume
from .lesion_columns import LESION_COLUMNS as ALL_LESION_COLUMNS
from .lesion_columns import html_columns
from .viewer_data import CT_PRESETS, SUV_SCALES, build_viewer_data, thumbnail

__all__ = ["CT_WINDOW_HU", "DEFAULT_BUDGET_MB", "render_study_html", "write_cohort_index", "write_study_html"]

logger = logging.getLogger(__name__)

#: CT soft-tissue window (width, level) in HU (the first display preset).
CT_WINDOW_HU = (CT_PRESETS[0][1], CT_PRESETS[0][2])
#: Default byte budget of the embedded viewer data (10^6 bytes of base64 text).
DEFAULT_BUDGET_MB = 25.0
_HERE = Path(__file__).resolve().parent
_COLOURS = {"liver": "#00c800", "lesions": "#ff2828", "segments": "#1f77b4", "pet": "#ffb000"}

#: Lesion table columns (report.json key, title, decimals), from the per-lesion registry
#: (report/lesion_columns.py); other scalar keys of the lesions follow.
LESION_COLUMNS: tuple[tuple[str, str, int], ...] = tuple(
    (c.key, c.title, max(0, c.html_decimals or 0)) for c in html_columns()
)
#: Registered keys the table does not show (no HTML decimals in the registry).
_LESION_SKIP = {c.key for c in ALL_LESION_COLUMNS} - {k for k, _, _ in LESION_COLUMNS}


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    return env


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def _safe(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)


_BLOB_SLOT = "<!-- netlm viewer data blocks -->"


def _split_blobs(obj: Any, blobs: list[str], min_chars: int = 4096) -> Any:
    """Copy of ``obj`` whose long strings (base64 data) are replaced by ``{"blob": n}`` references."""
    if isinstance(obj, dict):
        return {k: _split_blobs(v, blobs, min_chars) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_split_blobs(v, blobs, min_chars) for v in obj]
    if isinstance(obj, str) and len(obj) >= min_chars:
        blobs.append(obj)
        return {"blob": len(blobs) - 1}
    return obj


def _script_json(obj: Any) -> Any:
    """JSON for a ``<script type="application/json">`` element (no ``</script>`` can occur)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return _safe(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# ----------------------------------------------------------------------------- tables from report.json
def _numbers(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
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
    return [(k, v) for k, v in rows if v is not None or k.startswith(("Total", "Intra", "Involve"))]


def _pet_rows(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """report.json's ``pet`` block as rows, in its order (new PET fields appear without code changes).

    Nested blocks (e.g. the reference regions) give one row per field (``liver reference suv mean``);
    lists of scalars (e.g. lesion ids) are joined; empty values are left out.
    """

    def rows(prefix: str, block: Mapping[str, Any]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for k, v in block.items():
            name = f"{prefix}{k}".replace("_", " ")
            if isinstance(v, Mapping):
                out += rows(f"{prefix}{k} ", v)
            elif isinstance(v, list) and all(isinstance(x, str | int | float) for x in v):
                out.append((name, ", ".join(_fmt(x) for x in v) if v else "none"))
            elif isinstance(v, str | int | float | bool):
                out.append((name, v))
        return out

    return rows("", report.get("pet") or {})


def _mri_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The MR block of report.json as rows (phase, provenance, references, ratios) and tables (HUI, FLR)."""
    mri = report.get("mri")
    if not isinstance(mri, Mapping):
        return None
    phase = mri.get("phase") or {}
    prov = mri.get("provenance") or {}
    ref = mri.get("liver_reference") or {}
    spl = mri.get("spleen_reference") or {}
    re_ = mri.get("relative_enhancement") or {}
    delay = phase.get("delay_s")
    rows: list[tuple[str, Any]] = [
        ("Phase", f"{phase.get('phase')} (basis: {phase.get('basis')})"),
        ("Delay after injection (min)", None if delay is None else round(float(delay) / 60.0, 2)),
        ("Contrast agent", prov.get("contrast_agent") or prov.get("contrast_ingredient")),
        ("Sequence", " / ".join(str(prov[k]) for k in ("scanning_sequence", "sequence_variant") if prov.get(k))),
        ("Flip angle (deg)", prov.get("flip_angle_deg")),
        ("Fat suppression", prov.get("fat_suppression")),
        ("Bias-field correction", (mri.get("bias_field_correction") or {}).get("applied")),
        ("Healthy-liver reference (a.u.)", ref.get("mean_signal_au")),
        ("Healthy-liver reference SD (a.u.)", ref.get("sd_signal_au")),
        ("Spleen reference (a.u.)", spl.get("mean_signal_au")),
        ("Liver-to-spleen contrast ratio", mri.get("liver_to_spleen_contrast_ratio")),
        *((f"Relative enhancement, {k}", v) for k, v in re_.items()),
        ("Hepatic uptake index (mL, research measure)", mri.get("hepatic_uptake_index_ml")),
    ]
    return {
        "units": mri.get("units"),
        "rows": [(k, v) for k, v in rows if v is not None and v != ""],
        "hui": list(mri.get("hui_by_segment") or []),
        "flr": list(mri.get("functional_flr") or []),
        "plan": mri.get("functional_flr_plan"),
        "missing": [str(m) for m in mri.get("missing_inputs") or []],
        "notes": [str(n) for n in mri.get("notes") or []],
        "others": list(mri.get("other_series") or []),
    }


def _lesion_columns(lesions: list[Mapping[str, Any]], image_unit: str | None = None) -> list[dict[str, Any]]:
    """The lesion table's columns: those the lesions have, the mean intensity in the image's unit."""
    present = {k for les in lesions for k, v in les.items() if v is not None}
    cols = [{"key": k, "title": t, "nd": nd} for k, t, nd in LESION_COLUMNS if k in present or k in ("id", "volume_ml")]
    for c in cols:
        if c["key"] == "mean_intensity" and image_unit:
            c["title"] = f"{c['title']} ({image_unit})"
    known = {k for k, _, _ in LESION_COLUMNS} | _LESION_SKIP
    extra = sorted(
        k
        for k in present - known
        if all(isinstance(les.get(k), str | int | float | bool | type(None)) for les in lesions)
    )
    cols += [{"key": k, "title": k.replace("_", " "), "nd": 2} for k in extra]
    return cols


def _segments(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    segs = sorted((dict(s) for s in report.get("segments") or []), key=lambda s: int(s["segment"]))
    top = max([float(s.get("tumor_volume_ml") or 0.0) for s in segs] + [1e-9])
    for s in segs:
        s["bar"] = round(110.0 * float(s.get("tumor_volume_ml") or 0.0) / top, 1)
        s.setdefault("lesion_count", None)
    return segs


def _plan_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """report.json's debulking plan (``remnant.resection_plan``) and staged strategies as the page shows them.

    The page showed the plan only as a rationale sentence ("ablate 2 lesion(s)"): not which lesion gets
    which treatment, nor the FLR it leaves on the denominator its threshold is on.
    """
    plan = (report.get("remnant") or {}).get("resection_plan")
    if not plan:
        return None
    on_telv = plan.get("adequacy_basis") == "telv"
    pct = plan.get("standardized_flr_percent" if on_telv else "flr_percent_of_non_tumorous")
    staged = (report.get("classification") or {}).get("staged_strategies") or {}
    return {
        "resection": plan.get("resection_name"),
        "segments": plan.get("resected_segments") or [],
        "feasible": plan.get("feasible"),
        "anatomy": plan.get("remnant_anatomy_check"),
        "remnant_ml": plan.get("remnant_ml"),
        "flr_percent": pct,
        "of": "of TELV" if on_telv else "of the non-tumorous liver",
        "threshold": plan.get("flr_threshold_percent"),
        "debulking_volume": plan.get("debulking_percent_volume"),
        "debulking_count": plan.get("debulking_percent_count"),
        "debulking_threshold": plan.get("debulking_threshold_percent"),
        "treatments": list(plan.get("lesion_treatments") or []),
        "staged": staged.get("reason") if staged.get("needed") is not False else None,
        "vascular": _vascular_lines(report),
    }


def _vascular_lines(report: Mapping[str, Any]) -> list[str]:
    """What the plan section says of the vessels (report.json ``vascular_contact``; docs/vascular_contact.md).

    >>> _vascular_lines({"vascular_contact": {"assessed": False, "note": "vascular contact was not assessed: ..."}})
    ['vascular contact was not assessed: ...']
    """
    block = report.get("vascular_contact") or {}
    if not block:
        return []
    if not block.get("assessed"):
        return [str(block.get("note") or "vascular contact was not assessed")]
    gaps = [
        f"lesion {les.get('id')}: {les['nearest_vessel_distance_mm']:.1f} mm to the {les['nearest_vessel']}"
        for les in report.get("lesions") or []
        if les.get("nearest_vessel") is not None
    ]
    head = f"measured against {', '.join(str(v) for v in block.get('vessels') or [])}"
    return [head + (f" (nearest: {'; '.join(gaps)})" if gaps else ""), *(str(n) for n in block.get("plan_notes") or [])]


# ----------------------------------------------------------------------------- pages
def render_study_html(
    report: Mapping[str, Any],
    ctx: MeasurementContext,
    *,
    pet_suv: Volume | None = None,
    budget_mb: float = DEFAULT_BUDGET_MB,
) -> str:
    """The QA page of one study as an HTML string (see the module docstring).

    Parameters
    ----------
    report : mapping
        ``StudyReport.to_dict()`` (the page's tables and lesion positions come from here).
    ctx : MeasurementContext
        The masks and image the report was measured on (the viewer's pictures).
    pet_suv : Volume, optional
        PET in SUV: overlay, SUV scales and the MIP.
    budget_mb : float
        Byte budget (10^6) of the embedded image, masks and PET.

    Returns
    -------
    str
    """
    return "".join(_study_chunks(report, ctx, pet_suv=pet_suv, budget_mb=budget_mb))


def _study_chunks(
    report: Mapping[str, Any], ctx: MeasurementContext, *, pet_suv: Volume | None, budget_mb: float
) -> Iterator[str]:
    """The page as a stream of text pieces (the large data blocks are not copied into one string)."""
    study = report.get("study") or {}
    modality = str(study.get("modality") or ctx.header.get("modality") or "OT").upper()
    data = build_viewer_data(ctx, report, modality=modality, budget_mb=budget_mb, pet_suv=pet_suv)
    payload = data.payload
    overlays = [("liver", "liver", "solid"), ("lesions", "lesions", "dashed")]
    if "segments" in payload["layers"]:
        overlays.append(("segments", "Couinaud segments", "dotted"))
    if "pet" in payload:
        overlays.append(("pet", "PET SUV", "solid"))
    suv_scales: list[dict[str, Any]] = []
    if "pet" in payload or "mip" in payload:
        pet = report.get("pet") or {}
        suv_scales = [{"name": f"SUV 0 to {s:g}", "lo": 0.0, "hi": s} for s in SUV_SCALES]
        if pet.get("liver_suv_mean"):
            ref = float(pet["liver_suv_mean"])
            suv_scales.insert(
                1, {"name": f"SUV {ref:.1f} (liver SUVmean, report) to {4 * ref:.1f}", "lo": ref, "hi": 4 * ref}
            )
    count = payload["shape"]
    views = [
        {"name": n, "title": t, "count": count[payload["views"][n]["normal"]]}
        for n, t in (("axial", "Axial"), ("coronal", "Coronal"), ("sagittal", "Sagittal"))
    ]
    lesions = list(report.get("lesions") or [])
    cls = report.get("classification") or {}
    classification = [
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
    blobs: list[str] = []
    small = _split_blobs(payload, blobs)
    page = (
        _env()
        .get_template("study.html.j2")
        .generate(
            css=_safe(_asset("templates/style.css")),
            viewer_js=_safe(_asset("js/viewer.js")),
            tables_js=_safe(_asset("js/tables.js")),
            data_json=_script_json(small),
            blob_slot=_safe(_BLOB_SLOT),
            modality=modality,
            grid=study.get("grid") or {"shape": list(ctx.image.shape), "spacing_mm": list(ctx.image.spacing)},
            tool={"name": "netlm-imaging", "version": "", **(report.get("tool") or {})},
            schema_version=report.get("schema_version", ""),
            uid=study.get("study_instance_uid"),
            warnings=list(report.get("warnings") or []),
            overlays=overlays,
            colours=_COLOURS,
            presets=payload["image"]["presets"],
            unit=payload["image"]["unit"],
            suv_scales=suv_scales,
            has_segments="segments" in payload["layers"],
            views=views,
            mip=payload.get("mip"),
            notes=data.notes,
            numbers=_numbers(report),
            pet_rows=_pet_rows(report),
            mri=_mri_section(report),
            classification=classification,
            plan=_plan_section(report),
            rationale=list(cls.get("rationale") or []),
            missing=[str(m) for m in cls.get("missing_inputs") or []],
            lesions=lesions,
            lesion_cols=_lesion_columns(lesions, payload["image"].get("unit")),
            segments=_segments(report),
            method=[(k.replace("_", " "), v) for k, v in (report.get("method") or {}).items()],
        )
    )
    # the base64 blocks (base64 has no '<' or '&') go in as they are: no escaping pass, no copy
    for chunk in page:
        if _BLOB_SLOT in chunk:
            before, after = chunk.split(_BLOB_SLOT, 1)
            yield before
            for n, blob in enumerate(blobs):
                yield f'<script type="application/octet-stream" id="netlm-blob-{n}">'
                yield blob
                yield "</script>\n"
            yield after
        else:
            yield chunk


def write_study_html(
    report: Mapping[str, Any],
    ctx: MeasurementContext,
    path: str | os.PathLike[str],
    *,
    pet_suv: Volume | None = None,
    budget_mb: float = DEFAULT_BUDGET_MB,
    thumbnail_path: str | os.PathLike[str] | None = None,
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
        PET in SUV (overlay and MIP).
    budget_mb : float
        Byte budget of the embedded viewer data (``--html-budget-mb``).
    thumbnail_path : path-like, optional
        Also write a small PNG (axial slice through the largest lesion) for the cohort index.

    Returns
    -------
    Path
        The written file.
    """
    out = Path(path)
    with atomic_open(out, "w") as fh:
        for chunk in _study_chunks(report, ctx, pet_suv=pet_suv, budget_mb=budget_mb):
            fh.write(chunk)
    if thumbnail_path is not None:
        modality = str((report.get("study") or {}).get("modality") or "OT").upper()
        atomic_write_bytes(Path(thumbnail_path), thumbnail(ctx, modality))
    logger.info("wrote %s", out)
    return out


# ----------------------------------------------------------------------------- cohort index
#: Sortable numeric columns of the index (cohort row key, title).
_INDEX_VALUES = (
    ("liver_volume_ml", "liver (mL)"),
    ("intrahepatic_tumor_ml", "tumour (mL)"),
    ("involvement_percent", "involvement (%)"),
    ("lesion_count", "lesions"),
)


def _flags(report: Mapping[str, Any] | None, discrepant: set[str], sid: str) -> list[dict[str, Any]]:
    """What a reviewer should look at first, from the study's report.json (``lesion``: the one to open at)."""
    out: list[dict[str, Any]] = []
    if sid in discrepant:
        out.append({"name": "check", "why": "netlm check found discrepancies against the reported numbers"})
    if not report:
        return out
    warnings = [str(w) for w in report.get("warnings") or []]
    if warnings:
        out.append({"name": "warnings", "why": f"{len(warnings)} warning(s) in report.json"})
    if ((report.get("study") or {}).get("grid") or {}).get("resampled"):
        out.append({"name": "resampled", "why": "a mask was resampled onto the image grid"})
    border = [les["id"] for les in report.get("lesions") or [] if les.get("touches_image_border")]
    if border or (report.get("liver") or {}).get("touches_image_border"):
        what = f"lesion(s) {', '.join(map(str, border))}" if border else "the liver"
        out.append(
            {
                "name": "border",
                "why": f"{what} touch the image border (may be cut off)",
                "lesion": border[0] if border else "",
            }
        )
    if any("PET" in w and "FrameOfReferenceUID" in w for w in warnings):
        out.append({"name": "PET/CT frame", "why": "PET and image FrameOfReferenceUIDs differ"})
    return out


def _read_discrepant(path: str | os.PathLike[str] | None) -> set[str]:
    if path is None:
        return set()
    from ..spreadsheet import read_table

    table = read_table(path, ("study", "verdict"), text_columns=("study", "verdict"), what="discrepancies CSV")
    cells = [r.get("study") or "" for _n, r in table.rows if r.get("verdict") == "DISCREPANT"]
    # the check table names study folders (relative to its CSV, as written: "studies\\p1" from a table
    # saved on Windows too); batch study ids are folder names
    return set(cells) | {re.split(r"[\\/]", c.rstrip("\\/"))[-1] for c in cells if c}


def _rel(out_dir: Path, target: Any, default: Path) -> str | None:
    p = Path(target) if target else default
    full = p if p.is_absolute() else out_dir / p
    if not full.exists():
        return None
    return Path(os.path.relpath(full, out_dir)).as_posix()


def _num(v: Any) -> Any:
    """Cells read back from cohort.csv are strings: numbers become numbers."""
    if isinstance(v, str) and v:
        try:
            f = float(v)
        except ValueError:
            return v
        return int(f) if f.is_integer() and "." not in v else f
    return None if v == "" else v


def write_cohort_index(
    out_dir: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    discrepancies: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``out_dir/index.html``: one row per study, sortable and filterable, flagged studies first.

    Parameters
    ----------
    out_dir : path-like
        The batch output folder.
    rows : iterable of mapping
        cohort.csv rows of ``netlm batch`` (``study_id``, ``status``, ``error``,
        the numbers, ``mahuron_type``, ``warnings_count``). Optional
        ``report_json`` / ``report_html`` paths (relative to ``out_dir``) override
        ``reports/<study_id>.json`` / ``.html``; links are only written to files
        that exist. Flags come from each study's report.json; the thumbnail
        (``reports/<study_id>.thumb.png``) is embedded.
    discrepancies : path-like, optional
        A ``netlm check --out`` table; its DISCREPANT rows (column ``study``) flag the studies.

    Returns
    -------
    Path
        ``out_dir/index.html``.
    """
    out = Path(out_dir)
    discrepant = _read_discrepant(discrepancies)
    items = []
    for r in rows:
        sid = str(r.get("study_id", ""))
        json_rel = _rel(out, r.get("report_json"), Path("reports") / f"{sid}.json")
        report = None
        if json_rel is not None:
            try:
                report = json.loads((out / json_rel).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                report = None
        thumb_rel = _rel(out, None, Path("reports") / f"{sid}.thumb.png")
        thumb = None
        if thumb_rel is not None:
            thumb = "data:image/png;base64," + base64.b64encode((out / thumb_rel).read_bytes()).decode("ascii")
        cls = (report or {}).get("classification") or {}
        items.append(
            {
                "study_id": sid,
                "status": str(r.get("status", "")),
                "error": r.get("error") or "",
                "numbers": [_num(r.get(k)) for k, _ in _INDEX_VALUES],
                "classification": r.get("mahuron_type") or cls.get("mahuron_type"),
                "warnings": _num(r.get("warnings_count")),
                "flags": _flags(report, discrepant, sid),
                "page": _rel(out, r.get("report_html"), Path("reports") / f"{sid}.html"),
                "json": json_rel,
                "thumb": thumb,
            }
        )
    items.sort(key=lambda it: (-len(it["flags"]) - (it["status"] != "ok") * 100, it["study_id"]))
    columns = ["study", "status", *(t for _, t in _INDEX_VALUES), "Mahuron type", "warnings", "flags"]
    page = (
        _env()
        .get_template("cohort.html.j2")
        .render(
            css=_safe(_asset("templates/style.css")),
            tables_js=_safe(_asset("js/tables.js")),
            rows=items,
            n_ok=sum(1 for it in items if it["status"] == "ok"),
            columns=columns,
        )
    )
    path = out / "index.html"
    atomic_write_text(path, page)
    return path

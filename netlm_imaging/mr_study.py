"""The MR part of one analysis: provenance, phase, a.u. intensities, ratios and hepatocyte function.

Called by :mod:`netlm_imaging.api` for MR images, after the burden and the
surgical assessment. It reads (io: the series headers, the other MR series of
the study folder, a pre-contrast series), measures (measure.mri: signal,
LSC, RE, HUI per segment), classifies the phase (classify.mr_phase) and returns
an :class:`MrAssessment` that the report is built from. Nothing here writes.

The functional numbers (LSC, HUI, functional FLR) need a hepatobiliary-phase
image and a spleen mask; the per-segment HUI and the functional FLR need a
Couinaud map. Without one of them each is ``None`` and the missing input is
named in ``mri.missing_inputs``. They are research measures: no threshold is
applied to them and no classification uses them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .volume import Volume

__all__ = ["MrAssessment", "assess_mr"]

logger = logging.getLogger(__name__)

_UNITS = "a.u. (MR signal is not calibrated: compare ratios, not means, across scans)"


@dataclass
class MrAssessment:
    """What the MR stage adds to a report.

    Attributes
    ----------
    block : dict
        The report's ``mri`` block.
    lesion_fields : dict
        ``{lesion id: {field: value}}`` merged into ``lesions[]``.
    liver_fields : dict
        Merged into ``liver`` (``mean_signal_au``, ``sd_signal_au``).
    console_lines, warnings : list of str
        For the summary and the report's warnings.
    """

    block: dict[str, Any]
    lesion_fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    liver_fields: dict[str, Any] = field(default_factory=dict)
    console_lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


# ---------------------------------------------------------------- reading
def _provenance(img: Volume) -> Any:
    from .io.mr_headers import mr_provenance_from_dicom, mr_provenance_from_sidecar

    files = img.meta.get("files") or []
    if img.meta.get("format") == "dicom" and files:
        return mr_provenance_from_dicom(files)
    return mr_provenance_from_sidecar(img.source)


def _other_series(img: Volume, index: Sequence[Any], rules: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The other MR image series of the study folder, with their phase (one header pair each)."""
    from .classify.mr_phase import classify_mr_phase
    from .io.mr_headers import mr_provenance_from_dicom

    main_uid = img.meta.get("series_instance_uid")
    by_series: dict[str, list[Any]] = {}
    for info in index:
        if getattr(info, "kind", "") == "IMAGE" and getattr(info, "modality", "") == "MR" and info.series_uid:
            by_series.setdefault(info.series_uid, []).append(info)
    out = []
    for uid, infos in sorted(by_series.items(), key=lambda kv: (kv[1][0].series_number or 0, kv[0])):
        if uid == main_uid:
            continue
        infos = sorted(infos, key=lambda i: str(i.path))
        prov = mr_provenance_from_dicom([infos[0].path, infos[-1].path])
        phase = classify_mr_phase(prov.to_dict(), rules)
        out.append(
            {
                "series_instance_uid": uid,
                "series_number": infos[0].series_number,
                "files": len(infos),
                "phase": phase["phase"],
                "delay_s": prov.delay_s,
                "same_frame_of_reference": bool(prov.frame_of_reference_uid)
                and prov.frame_of_reference_uid == img.frame_of_reference_uid,
            }
        )
    return out


def _load_pre_contrast(
    img: Volume,
    explicit: str | Path | None,
    others: list[dict[str, Any]],
    index: Sequence[Any],
    max_voxels: int | None,
    notes: list[str],
) -> tuple[Volume | None, dict[str, Any] | None]:
    """The pre-contrast series: the user's, else the one pre-contrast series of the folder."""
    from .io.dicom_series import read_series_from_index
    from .io.loader import load_image

    if explicit is not None:
        vol = load_image(explicit, max_voxels=max_voxels, nonuniform="resample")
        return vol, {"source": "user (--pre-contrast)", "path": Path(explicit).name}
    pre = [o for o in others if o["phase"] == "pre-contrast"]
    if not pre:
        return None, None
    same = [o for o in pre if o["same_frame_of_reference"]] or pre
    chosen = same[0]
    if len(pre) > 1:
        notes.append(
            f"{len(pre)} pre-contrast MR series in the study folder; series {chosen['series_number']} "
            f"({chosen['series_instance_uid']}) is used for relative enhancement"
        )
    vol = read_series_from_index(
        index, series_uid=chosen["series_instance_uid"], nonuniform="resample", max_voxels=max_voxels
    )
    return vol, {"source": "study folder", "series_instance_uid": chosen["series_instance_uid"]}


def _align(pre: Volume, img: Volume, notes: list[str]) -> tuple[np.ndarray, str]:
    """Pre-contrast image on the main grid: by position (same frame of reference) or after rigid registration."""
    from .measure.grid import resample_to_grid

    same_for = pre.frame_of_reference_uid is not None and pre.frame_of_reference_uid == img.frame_of_reference_uid
    if same_for or pre.frame_of_reference_uid is None or img.frame_of_reference_uid is None:
        if not same_for:
            notes.append("no frame of reference to compare: the pre-contrast image is placed by its own geometry")
        moving = pre if pre.array.dtype.kind == "f" else pre.with_array(pre.array.astype(np.float32))
        return resample_to_grid(moving, img, linear=True), "physical position (same frame of reference)"
    return _register_rigid(pre, img), "rigid registration (Mattes mutual information, SimpleITK)"


def _register_rigid(moving: Volume, fixed: Volume) -> np.ndarray:
    import SimpleITK as sitk

    from .geometry import array_from_sitk, to_sitk

    f = to_sitk(fixed, fixed.array.astype(np.float32))
    m = to_sitk(moving, moving.array.astype(np.float32))
    init = sitk.CenteredTransformInitializer(
        f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1234)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SetInitialTransform(init, inPlace=False)
    tx = reg.Execute(f, m)
    out = sitk.Resample(m, f, tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return np.ascontiguousarray(array_from_sitk(out))


# ---------------------------------------------------------------- functional FLR
def _functional_flr(
    sig: Any, remnant: Mapping[str, Any], missing: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Functional FLR of every standard resection and of the debulking plan."""
    from .measure.mri import functional_remnant_percent

    if sig.hui_ml is None or not sig.hui_by_segment_ml:
        return [], None
    rows = []
    for res in remnant.get("standard_resections") or []:
        removed = res.get("removed_segments") or []
        pct, why = functional_remnant_percent(sig.hui_by_segment_ml, sig.hui_ml, removed)
        rows.append(
            {
                "name": res.get("name"),
                "label": res.get("label"),
                "removed_segments": list(removed),
                "functional_flr_percent": _r(pct),
                "volumetric_flr_percent_of_non_tumorous": res.get("flr_percent_of_non_tumorous"),
                "standardized_flr_percent": res.get("standardized_flr_percent"),
                "reason": why,
            }
        )
    plan = remnant.get("resection_plan")
    plan_row = None
    if isinstance(plan, Mapping) and plan.get("feasible") is not None:
        costs = [
            (t.get("couinaud_segment"), float(t.get("parenchyma_cost_ml") or 0.0))
            for t in plan.get("lesion_treatments") or []
        ]
        pct, why = functional_remnant_percent(
            sig.hui_by_segment_ml,
            sig.hui_ml,
            plan.get("resected_segments") or [],
            nontumorous_ml_by_segment=sig.nontumorous_ml_by_segment,
            parenchyma_costs=costs,
        )
        plan_row = {
            "removed_segments": list(plan.get("resected_segments") or []),
            "functional_flr_percent": _r(pct),
            "volumetric_flr_percent_of_non_tumorous": plan.get("flr_percent_of_non_tumorous"),
            "parenchyma_sparing_charge": "each enucleation/wedge/ablation is charged at its segment's HUI per mL",
            "reason": why,
        }
    return rows, plan_row


# ---------------------------------------------------------------- the stage
def assess_mr(
    img: Volume,
    ctx: Any,
    remnant: Mapping[str, Any],
    rules: Mapping[str, Any],
    *,
    dicom_index: Sequence[Any] = (),
    pre_contrast: str | Path | None = None,
    user_phase: str | None = None,
    n4: bool = False,
    max_voxels: int | None = None,
) -> MrAssessment:
    """Provenance, phase, signal statistics, ratios and hepatocyte function of an MR study.

    Parameters
    ----------
    img : Volume
        The measured MR image.
    ctx : MeasurementContext
        Masks and lesions on the image grid.
    remnant : mapping
        The report's ``remnant`` block (standard resections and the debulking plan).
    rules : mapping
        The rules (``rules["mri"]``).
    dicom_index : sequence of DicomFileInfo
        The study folder's scan (other MR series, pre-contrast twin).
    pre_contrast : path, optional
        A pre-contrast image given by the user.
    user_phase : str, optional
        ``--mr-phase``.
    n4 : bool
        Apply N4 bias-field correction before the ratios.
    max_voxels : int, optional
        Voxel budget for a pre-contrast series.

    Returns
    -------
    MrAssessment
    """
    from .classify.mr_phase import classify_mr_phase
    from .measure.mri import measure_mr_signal
    from .measure.mri_bias import n4_bias_correct

    mri_rules = rules["mri"]
    notes: list[str] = []
    prov = _provenance(img)
    phase = classify_mr_phase(prov.to_dict(), rules, user_phase=user_phase)
    others = _other_series(img, dicom_index, rules) if dicom_index else []
    pre_vol, pre_info = _load_pre_contrast(img, pre_contrast, others, dicom_index, max_voxels, notes)
    pre_arr = None
    if pre_vol is not None and pre_info is not None:
        pre_arr, how = _align(pre_vol, img, notes)
        pre_info["aligned_by"] = how
    array = img.array
    bias: dict[str, Any] = {"applied": False}
    if n4:
        kw: dict[str, Any] = {
            "shrink_factor": int(mri_rules["n4_shrink_factor"]),
            "iterations": int(mri_rules["n4_iterations"]),
            "fitting_levels": int(mri_rules["n4_fitting_levels"]),
        }
        spacing = [float(s) for s in img.spacing]
        array, bias = n4_bias_correct(array, spacing, **kw)
        if pre_arr is not None:
            pre_arr, _ = n4_bias_correct(pre_arr, spacing, **kw)
    functional = phase["phase"] == "hepatobiliary"
    lesion_ids = [les.id for les in ctx.lesions]
    sig = measure_mr_signal(
        array,
        spacing_mm=[float(s) for s in img.spacing],
        voxel_volume_ml=img.voxel_volume_ml,
        liver=ctx.liver,
        lesion_labels=ctx.lesion_labels,
        lesion_ids=lesion_ids,
        spleen=ctx.spleen,
        segment_labels=ctx.segment_labels,
        pre_contrast=pre_arr,
        reference_erosion_mm=float(mri_rules["reference_erosion_mm"]),
        functional=functional,
    )
    notes.extend(sig.notes)
    missing: list[str] = []
    if not functional:
        missing.append("hepatobiliary-phase MR series (gadoxetic acid, phase from the headers or --mr-phase)")
    if ctx.spleen is None or not ctx.spleen.any():
        missing.append("spleen mask (role 'spleen')")
    if ctx.liver is None:
        missing.append("liver mask")
    if ctx.segment_labels is None:
        missing.append("Couinaud segment map (per-segment HUI and functional FLR)")
    flr_rows, plan_row = _functional_flr(sig, remnant, missing)
    if sig.hui_ml is not None and sig.hui_unassigned_ml is not None and sig.hui_ml > 0:
        share = 100.0 * sig.hui_unassigned_ml / sig.hui_ml
        if abs(share) > 1.0:
            notes.append(
                f"{share:.1f}% of the HUI lies in liver outside every Couinaud segment (kept in every remnant)"
            )
    erosion = float(mri_rules["reference_erosion_mm"])
    block: dict[str, Any] = {
        "units": _UNITS,
        "provenance": prov.to_dict(),
        "phase": phase,
        "other_series": others,
        "pre_contrast": pre_info,
        "bias_field_correction": bias,
        "liver_reference": sig.liver_reference.to_dict() if sig.liver_reference else None,
        "liver_parenchyma": sig.liver_parenchyma.to_dict() if sig.liver_parenchyma else None,
        "spleen_reference": sig.spleen_reference.to_dict() if sig.spleen_reference else None,
        "liver_to_spleen_contrast_ratio": _r(sig.lsc, 6),
        "relative_enhancement": {k: _r(v, 6) for k, v in sig.relative_enhancement.items()} or None,
        "hepatic_uptake_index_ml": _r(sig.hui_ml, 3),
        "hui_by_segment": [
            {
                "segment": s,
                "hui_ml": _r(v, 3),
                "non_tumorous_volume_ml": _r(sig.nontumorous_ml_by_segment.get(s), 3),
                "hui_percent_of_total": _r(100.0 * v / sig.hui_ml) if sig.hui_ml else None,
            }
            for s, v in sorted(sig.hui_by_segment_ml.items())
        ]
        or None,
        "hui_unassigned_ml": _r(sig.hui_unassigned_ml, 3),
        "functional_flr": flr_rows or None,
        "functional_flr_plan": plan_row,
        "research_measure": True,
        "source": mri_rules["hui_source"],
        "missing_inputs": missing,
        "notes": list(dict.fromkeys([*prov.notes, *phase["notes"], *notes])),
        "method": {
            "liver_reference": f"non-tumorous liver eroded by {erosion:g} mm",
            "spleen_reference": f"spleen eroded by {erosion:g} mm",
            "lsc": "mean SI of the liver reference / mean SI of the spleen reference",
            "lesion_to_liver_contrast": "(SI_liver_reference - SI_lesion) / SI_liver_reference, lesion voxels only",
            "relative_enhancement": "(SI_image - SI_pre) / SI_pre on the same voxels, pre-contrast resampled linearly",
            "hui": "sum over non-tumorous liver voxels of v x (SI / SI_spleen_reference - 1), mL",
            "functional_flr": "remnant HUI / total HUI x 100 (liver outside every segment stays in the remnant)",
        },
    }
    lesion_fields: dict[int, dict[str, Any]] = {}
    for lid, vals in sig.lesions.items():
        lesion_fields[lid] = {
            k: _r(v, 6) for k, v in vals.items() if k != "relative_enhancement" or pre_arr is not None
        }
    liver_fields: dict[str, Any] = {}
    if sig.total_liver is not None:
        liver_fields = {
            "mean_signal_au": _r(sig.total_liver.mean_signal_au, 3),
            "sd_signal_au": _r(sig.total_liver.sd_signal_au, 3),
        }
    return MrAssessment(
        block=block,
        lesion_fields=lesion_fields,
        liver_fields=liver_fields,
        console_lines=_console(block, prov, phase),
        warnings=[n for n in phase["notes"] if "hepatocyte uptake may not" in n],
    )


def _console(block: Mapping[str, Any], prov: Any, phase: Mapping[str, Any]) -> list[str]:
    delay = phase.get("delay_s")
    when = f"{float(delay) / 60:.1f} min after injection" if delay is not None else "delay not in headers"
    agent = prov.contrast_agent or prov.contrast_ingredient or "agent not stated"
    lines = [f"MR: phase {phase['phase']} ({when}; {agent}; basis: {phase['basis']})"]
    ref = block.get("liver_reference")
    spl = block.get("spleen_reference")
    parts = []
    if ref:
        parts.append(f"liver {ref['mean_signal_au']:.1f} a.u. (SD {ref['sd_signal_au']:.1f})")
    if spl:
        parts.append(f"spleen {spl['mean_signal_au']:.1f} a.u. (SD {spl['sd_signal_au']:.1f})")
    if parts:
        lines.append("MR signal (a.u., eroded references): " + ", ".join(parts))
    if block.get("liver_to_spleen_contrast_ratio") is not None:
        hui = block.get("hepatic_uptake_index_ml")
        lines.append(
            f"Hepatocyte function (research measure): LSC {block['liver_to_spleen_contrast_ratio']:.3f}, "
            f"HUI {hui:.1f} mL"
            if hui is not None
            else f"LSC {block['liver_to_spleen_contrast_ratio']:.3f}"
        )
    plan = block.get("functional_flr_plan")
    if plan and plan.get("functional_flr_percent") is not None:
        lines.append(f"Functional FLR of the debulking plan: {plan['functional_flr_percent']:.1f}% of total HUI")
    if block.get("relative_enhancement"):
        re_ = block["relative_enhancement"]
        lines.append("Relative enhancement: " + ", ".join(f"{k} {v:.3f}" for k, v in re_.items() if v is not None))
    if block.get("missing_inputs") and block.get("hepatic_uptake_index_ml") is None:
        lines.append("Hepatocyte function not measured: missing " + "; ".join(block["missing_inputs"]))
    return lines

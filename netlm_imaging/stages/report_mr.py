"""MR in the report stage: the report's ``mri`` block, the MR fields of ``liver`` and
``lesions[]``, and the MR console lines, from what the load, measure and classify stages found.

The functional numbers (LSC, HUI, functional FLR) need a hepatobiliary-phase image and a spleen
mask; the per-segment HUI and the functional FLR need a Couinaud map. Without one of them each
is ``None`` and the missing input is named in ``mri.missing_inputs``. They are research
measures: no threshold is applied to them and no classification uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .classify import MrDecisions
from .load_mr import MrInputs
from .measure_mr import MrMeasurement
from .rounding import round_or_none

__all__ = ["MrReport", "mr_report"]

_UNITS = "a.u. (MR signal is not calibrated: compare ratios, not means, across scans)"


@dataclass(frozen=True)
class MrReport:
    """What an MR study adds to its report.

    Attributes
    ----------
    block : dict
        The report's ``mri`` block.
    lesion_fields : dict
        ``{lesion id: {field: value}}`` for ``lesions[]``.
    liver_fields : dict
        For ``liver`` (``mean_signal_au``, ``sd_signal_au``).
    console_lines, warnings : list of str
    """

    block: dict[str, Any]
    lesion_fields: dict[int, dict[str, Any]]
    liver_fields: dict[str, Any]
    console_lines: list[str]
    warnings: list[str]


def mr_report(loaded: MrInputs, measured: MrMeasurement, decided: MrDecisions, rules: Mapping[str, Any]) -> MrReport:
    """The MR parts of the report of one study."""
    mri_rules = rules["mri"]
    sig, prov, phase = measured.signal, loaded.provenance, loaded.phase
    erosion = float(mri_rules["reference_erosion_mm"])
    hui = sig.hui_ml
    block: dict[str, Any] = {
        "units": _UNITS,
        "provenance": prov.to_dict(),
        "phase": phase,
        "other_series": loaded.other_series,
        "pre_contrast": loaded.pre_contrast_info,
        "bias_field_correction": measured.bias_field_correction,
        "liver_reference": sig.liver_reference.to_dict() if sig.liver_reference else None,
        "liver_parenchyma": sig.liver_parenchyma.to_dict() if sig.liver_parenchyma else None,
        "spleen_reference": sig.spleen_reference.to_dict() if sig.spleen_reference else None,
        "liver_to_spleen_contrast_ratio": round_or_none(sig.lsc, 6),
        "relative_enhancement": {k: round_or_none(v, 6) for k, v in sig.relative_enhancement.items()} or None,
        "hepatic_uptake_index_ml": round_or_none(hui, 3),
        "hui_by_segment": [
            {
                "segment": s,
                "hui_ml": round_or_none(v, 3),
                "non_tumorous_volume_ml": round_or_none(sig.nontumorous_ml_by_segment.get(s), 3),
                "hui_percent_of_total": round_or_none(100.0 * v / hui) if hui else None,
            }
            for s, v in sorted(sig.hui_by_segment_ml.items())
        ]
        or None,
        "hui_unassigned_ml": round_or_none(sig.hui_unassigned_ml, 3),
        "functional_flr": decided.functional_flr or None,
        "functional_flr_plan": decided.functional_flr_plan,
        "research_measure": True,
        "source": mri_rules["hui_source"],
        "missing_inputs": decided.missing_inputs,
        "notes": list(dict.fromkeys([*prov.notes, *phase["notes"], *loaded.notes, *sig.notes, *decided.notes])),
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
    lesion_fields = {
        lid: {
            k: round_or_none(v, 6) for k, v in vals.items() if k != "relative_enhancement" or measured.with_pre_contrast
        }
        for lid, vals in sig.lesions.items()
    }
    liver_fields: dict[str, Any] = {}
    if sig.total_liver is not None:
        liver_fields = {
            "mean_signal_au": round_or_none(sig.total_liver.mean_signal_au, 3),
            "sd_signal_au": round_or_none(sig.total_liver.sd_signal_au, 3),
        }
    return MrReport(
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

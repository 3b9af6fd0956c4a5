"""The PET and MR lines of a report's console summary (``StudyReport.console_lines``).

Each line is written from the report's own ``pet`` / ``mri`` block, so the summary states
exactly the numbers the report holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["mr_lines", "pet_lines"]


def _fmt(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None else f"{float(v):.{nd}f}"


def pet_lines(block: Mapping[str, Any], lesions: Sequence[Any]) -> list[str]:
    """References, SRETV and the Krenning estimates of the intrahepatic lesions (12 at most).

    Parameters
    ----------
    block : mapping
        The report's ``pet`` block.
    lesions : sequence of Lesion
        The measured lesions (``id``, ``location``, ``krenning_score``).
    """
    liver_ref = block.get("liver_reference") or {}
    upper_ref = block.get("upper_reference") or {}
    lines = [
        f"PET: SUVbw from {block.get('units')} ({block.get('decay_correction')}); liver SUVmean "
        f"{_fmt(block.get('liver_suv_mean'))} (SD {_fmt(block.get('liver_suv_sd'))}, "
        f"{liver_ref.get('method', 'n/a')}), "
        f"{upper_ref.get('organ', 'spleen')} SUVmean {_fmt(upper_ref.get('suv_mean'))} "
        f"({upper_ref.get('method', 'n/a')}), lesion SUVmax {_fmt(block.get('suv_max'))}",
        f"SRETV ({block.get('delineation')}, avid > {_fmt(block.get('sretv_avid_floor_suv'))}): hepatic "
        f"{_fmt(block.get('sretv_ml'), 1)} mL, TLSRE {_fmt(block.get('tlsre'), 1)} mL*SUV",
    ]
    low = set(block.get("krenning_low_confidence_lesion_ids") or [])
    scores = [
        f"{les.id}: {les.krenning_score if les.krenning_score is not None else 'n/a'}{'?' if les.id in low else ''}"
        for les in lesions
        if les.location == "intrahepatic"
    ]
    if scores:
        lines.append(
            f"Krenning (estimated from {block.get('krenning_lesion_statistic')}; ? = low confidence): "
            + ", ".join(scores[:12])
            + (" ..." if len(scores) > 12 else "")
        )
    return lines


def mr_lines(block: Mapping[str, Any]) -> list[str]:
    """Phase, eroded reference signals, hepatocyte function and relative enhancement.

    Parameters
    ----------
    block : mapping
        The report's ``mri`` block.
    """
    phase, prov = block["phase"], block.get("provenance") or {}
    delay = phase.get("delay_s")
    when = f"{float(delay) / 60:.1f} min after injection" if delay is not None else "delay not in headers"
    agent = prov.get("contrast_agent") or prov.get("contrast_ingredient") or "agent not stated"
    component = f"; {str(prov['image_component']).replace('_', '-')} image" if prov.get("image_component") else ""
    lines = [f"MR: phase {phase['phase']} ({when}; {agent}; basis: {phase['basis']}{component})"]
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

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

from ..classify.functional_flr import FunctionalRemnant
from ..rounding import round_or_none
from .load_mr import MrInputs
from .measure_mr import MrMeasurement

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
    remnant : dict
        The report's ``remnant`` block with the functional FLR of each resection and of the plan.
    console_lines, warnings : list of str
    """

    block: dict[str, Any]
    lesion_fields: dict[int, dict[str, Any]]
    liver_fields: dict[str, Any]
    remnant: dict[str, Any]
    console_lines: list[str]
    warnings: list[str]


def mr_report(
    loaded: MrInputs,
    measured: MrMeasurement,
    functional: FunctionalRemnant,
    rules: Mapping[str, Any],
    remnant: Mapping[str, Any],
) -> MrReport:
    """The MR parts of the report of one study.

    Parameters
    ----------
    loaded, measured, functional
        What the load, measure and classify stages found of the MR study.
    rules : mapping
        The rules (``rules["mri"]``: reference erosion, HUI source).
    remnant : mapping
        The report's ``remnant`` block, to which the functional FLR is added.
    """
    from ..report.console import mr_lines

    mri_rules = rules["mri"]
    sig, prov, phase = measured.signal, loaded.provenance, loaded.phase
    erosion = float(mri_rules["reference_erosion_mm"])
    hui = sig.hui_ml
    pre_contrast = loaded.pre_contrast_info
    if pre_contrast is not None:  # where it came from (load), then how it was placed (measure)
        pre_contrast = {**pre_contrast, **measured.pre_contrast_alignment}
    block: dict[str, Any] = {
        "units": _UNITS,
        "provenance": prov.to_dict(),
        "phase": phase,
        "other_series": loaded.other_series,
        "pre_contrast": None
        if loaded.pre_contrast_info is None
        else {**loaded.pre_contrast_info, **measured.pre_contrast_alignment},
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
        "functional_flr": functional.resections or None,
        "functional_flr_plan": functional.plan,
        "research_measure": True,
        "source": mri_rules["hui_source"],
        "missing_inputs": functional.missing_inputs,
        "notes": list(
            dict.fromkeys(
                [*prov.notes, *phase["notes"], *loaded.notes, *measured.alignment_notes, *sig.notes, *functional.notes]
            )
        ),
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
    # the remnant block states the functional FLR beside each volumetric one
    by_name = {row["name"]: row["functional_flr_percent"] for row in functional.resections}
    with_functional = dict(remnant)
    if remnant.get("standard_resections"):
        with_functional["standard_resections"] = [
            {**res, "functional_flr_percent": by_name[res["name"]]} if res.get("name") in by_name else res
            for res in remnant["standard_resections"]
        ]
    plan = remnant.get("resection_plan")
    if isinstance(plan, dict) and functional.plan:
        with_functional["resection_plan"] = {
            **plan,
            "functional_flr_percent": functional.plan["functional_flr_percent"],
        }
    return MrReport(
        block=block,
        lesion_fields=lesion_fields,
        liver_fields=liver_fields,
        remnant=with_functional,
        console_lines=mr_lines(block),
        warnings=[
            *(n for n in phase["notes"] if "hepatocyte uptake may not" in n or phase["basis"] == "conflict"),
            *([sig.ratios_withheld] if sig.ratios_withheld else []),
        ],
    )

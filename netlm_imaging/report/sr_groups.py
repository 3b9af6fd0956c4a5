"""The measurement groups of netlm's TID 1500 SR: one per finding of a report.

One concept: which groups a report becomes, and what each holds -- the total
liver (volume; MR signal), the intrahepatic tumour burden (volume, hepatic
tumour involvement), the non-tumorous liver, one group per lesion (the
registry's SCT-coded measurements of :mod:`netlm_imaging.report.lesion_columns`,
SUVbw, SRETV / TLSRE, MR signal) and the hepatic and whole-body PET tumour
groups. The groups are :class:`~._sr_writer.Group` items with codes from
:mod:`.sr_template`; both writers (:mod:`._sr_writer`, :mod:`.sr_highdicom`)
encode the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .lesion_columns import sr_columns
from .sr_template import (
    ARB,
    GRAM,
    INVOLVEMENT_CODE,
    LIVER_ID,
    ML,
    MR_SIGNAL,
    PERCENT,
    PET_ID,
    PET_WB_ID,
    REMNANT_ID,
    SRETV_CODE,
    SUV_KEYS,
    SUV_UNIT,
    SUVBW_CODE,
    TLSRE_CODE,
    TUMOUR_ID,
    sct,
)

__all__ = ["measurement_groups"]


def _sretv_measurements(d: Mapping[str, Any], prefix: str) -> list[Any]:
    """SRETV (mL) and TLSRE (g = mL x SUVbw g/mL) of ``d[prefix + "sretv_ml"]`` / ``d[prefix + "tlsre"]``."""
    from ._sr_writer import Measurement

    out = []
    if d.get(prefix + "sretv_ml") is not None:
        out.append(Measurement(SRETV_CODE, float(d[prefix + "sretv_ml"]), ML))
    if d.get(prefix + "tlsre") is not None:
        out.append(Measurement(TLSRE_CODE, float(d[prefix + "tlsre"]), GRAM))
    return out


def measurement_groups(
    d: Mapping[str, Any], refs: Mapping[Any, Mapping[str, Any]], uid: Any
) -> tuple[list[Any], list[Any]]:
    """The measurement groups of a report (:class:`~._sr_writer.Group`) and the segment references they use."""
    from ._sr_writer import Group, Measurement

    used: list[Mapping[str, Any]] = []

    def segment(key: Any) -> tuple[str, str, int, str] | None:
        r = refs.get(key)
        if r is None:
            return None
        used.append(r)
        return (str(r["sop_class_uid"]), str(r["sop_instance_uid"]), int(r["segment_number"]), r["image_series_uid"])

    def mr_signal(item: Mapping[str, Any]) -> list[Measurement]:
        """DCM 110852 MR signal intensity (mean, SD) in arbitrary units, when the report has it (MR)."""
        return [
            Measurement(MR_SIGNAL, float(item[key]), ARB, sct(derivation))
            for key, derivation in (("mean_signal_au", "Mean"), ("sd_signal_au", "StandardDeviation"))
            if item.get(key) is not None
        ]

    volume, liver, neoplasm = sct("Volume"), sct("Liver"), sct("Neoplasm")
    liver_site = [liver]
    groups = []
    liver_ml = (d.get("liver") or {}).get("volume_ml")
    if liver_ml is not None:
        ms = [Measurement(volume, float(liver_ml), ML), *mr_signal(d.get("liver") or {})]
        groups.append(Group(LIVER_ID, uid("liver"), liver, ms, segment("liver")))
    if (d.get("tumor") or {}).get("lesions_segmented", True):  # a liver-only segmentation measured no tumour
        tumour = [Measurement(volume, float((d.get("tumor") or {}).get("intrahepatic_volume_ml", 0.0)), ML)]
        if d.get("involvement_percent") is not None:
            tumour.append(Measurement(INVOLVEMENT_CODE, float(d["involvement_percent"]), PERCENT))
        groups.append(Group(TUMOUR_ID, uid("tumour"), neoplasm, tumour, None, liver_site))
    remnant_ml = (d.get("remnant") or {}).get("non_tumorous_liver_volume_ml")
    if remnant_ml is not None:
        groups.append(Group(REMNANT_ID, uid("remnant"), liver, [Measurement(volume, float(remnant_ml), ML)]))
    for les in d.get("lesions") or []:
        ms = [  # the registry's SCT-coded lesion measurements (report/lesion_columns.py)
            Measurement(
                sct(c.sr.name),
                float(les[c.key]),
                tuple(c.sr.unit),  # type: ignore[arg-type]
                sct(c.sr.derivation) if c.sr.derivation else None,
            )
            for c in sr_columns()
            if c.sr is not None and les.get(c.key) is not None
        ]
        for key, derivation in SUV_KEYS:
            if les.get(key) is not None:
                ms.append(Measurement(SUVBW_CODE, float(les[key]), SUV_UNIT, derivation))
        ms.extend(_sretv_measurements(les, ""))
        ms.extend(mr_signal(les))
        intra = les.get("location") == "intrahepatic"
        groups.append(
            Group(
                f"Lesion {les['id']} ({les.get('location', 'intrahepatic')})",
                uid("lesion", les["id"]),
                neoplasm,
                ms,
                segment(("lesion", int(les["id"]))),
                liver_site if intra else [],
            )
        )
    pet = d.get("pet") or {}
    for tracking, prefix, sites in ((PET_ID, "", liver_site), (PET_WB_ID, "whole_body_", [])):
        pet_ms = _sretv_measurements(pet, prefix)
        if pet_ms:
            groups.append(Group(tracking, uid("pet", prefix), neoplasm, pet_ms, None, sites))
    return groups, used

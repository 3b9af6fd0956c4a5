"""Reading a TID 1500 SR back: the numbers of netlm's SR, or of another tool's, as a dict.

One concept: :func:`read_sr_measurements`. netlm's groups are recognised by the
tracking identifiers of :mod:`.sr_template` (the table the writer uses), other
tools' groups by finding type; groups sharing a Tracking Unique Identifier are
one finding, and volumes and diameters are converted from the UCUM units the
file uses. highdicom and pydicom are imported only when a file is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .sr_template import (
    INVOLVEMENT_CODE,
    LENGTH_UNITS,
    LESION_RE,
    LIVER_ID,
    PET_ID,
    PET_WB_ID,
    REMNANT_ID,
    SRETV_CODE,
    SUV_KEYS,
    SUVBW_CODE,
    TLSRE_CODE,
    TUMOUR_ID,
    VOLUME_UNITS,
)

__all__ = ["read_sr_measurements"]


def _value(item: Any, table: Mapping[str, float], path: Path, what: str) -> float:
    unit = item.unit.value
    if unit not in table:
        raise InputError(f"{path}: {what} is in unit {unit!r}; expected one of {sorted(table)}")
    return float(item.value) * table[unit]


def _first(group: Any, name: Any) -> Any:
    found = group.get_measurements(name=name)
    return found[0] if found else None


def _is_code(concept: Any, code: Any) -> bool:
    """Code equality that maps SNOMED-RT (SRT) to SNOMED CT (SCT) codes, as pydicom's ``Code`` does."""
    return concept is not None and concept == code


#: Finding-site meanings naming a part of the liver (SNOMED CT "Segment VI of liver", "Right lobe of
#: liver", "Structure of hepatic segment ...", Couinaud segments): the lesion is intrahepatic.
_LIVER_PART = re.compile(r"\bliver\b|\bhepatic (?:segment|lobe|sector|section)|\bcouinaud\b", re.IGNORECASE)


def _site_in_liver(concept: Any, liver: Any) -> bool:
    """Whether a finding site is the liver (its code, SRT or SCT) or names a part of it.

    Examples
    --------
    >>> from pydicom.sr.coding import Code
    >>> liver = Code("10200004", "SCT", "Liver")
    >>> _site_in_liver(Code("T-62000", "SRT", "Liver"), liver)
    True
    >>> _site_in_liver(Code("x", "99L", "Segment VI of liver"), liver)
    True
    >>> _site_in_liver(Code("39607008", "SCT", "Lung"), liver)
    False
    """
    if _is_code(concept, liver):
        return True
    return bool(_LIVER_PART.search(str(getattr(concept, "meaning", "") or "")))


def _mr_signal_of(group: Any) -> dict[str, float]:
    """``mean_signal_au`` / ``sd_signal_au`` from DCM 110852 measurements (derivation Mean / SD)."""
    from pydicom.sr.codedict import codes

    out = {}
    for m in group.get_measurements(name=codes.DCM.MRSignalIntensity):
        deriv = str(getattr(m.derivation, "value", ""))
        if deriv == codes.SCT.Mean.value:
            out["mean_signal_au"] = float(m.value)
        elif deriv == codes.SCT.StandardDeviation.value:
            out["sd_signal_au"] = float(m.value)
    return out


def _segment_of(group: Any) -> dict[str, Any] | None:
    ref = getattr(group, "referenced_segment", None)
    if ref is None:
        return None
    return {
        "sop_instance_uid": str(ref.referenced_sop_instance_uid),
        "segment_number": int(ref.referenced_segment_numbers[0]),
    }


class _Finding:
    """The measurement groups of one finding (one Tracking Unique Identifier) read as one group.

    TID 1500 lets a tool report one lesion in several groups -- a volumetric group with its volume
    and a planar group with its long axis, say -- that share the tracking UID; counted group by
    group, such a lesion would be two lesions, each with part of its measurements.
    """

    def __init__(self, groups: Sequence[Any]) -> None:
        self.groups = list(groups)
        first = self.groups[0]
        self.tracking_identifier = first.tracking_identifier
        self.finding_type = next((g.finding_type for g in self.groups if g.finding_type is not None), None)
        self.finding_sites = [s for g in self.groups for s in (g.finding_sites or [])]
        self.referenced_segment = next(
            (ref for g in self.groups if (ref := getattr(g, "referenced_segment", None)) is not None), None
        )

    def get_measurements(self, name: Any = None) -> list[Any]:
        """The measurements named ``name`` of all the finding's groups, in document order."""
        return [m for g in self.groups for m in g.get_measurements(name=name)]


def _findings(groups: Sequence[Any]) -> list[_Finding]:
    """Groups joined by Tracking Unique Identifier (groups without one stay alone), in document order."""
    by_uid: dict[str, list[Any]] = {}
    order: list[list[Any]] = []
    for g in groups:
        uid = str(getattr(g, "tracking_uid", None) or "")
        if uid and uid in by_uid:
            by_uid[uid].append(g)
            continue
        bucket = [g]
        order.append(bucket)
        if uid:
            by_uid[uid] = bucket
    return [_Finding(b) for b in order]


def read_sr_measurements(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TID 1500 SR (written by :func:`write_sr` or another tool) back into numbers.

    Groups are recognised by their tracking identifier (as written by
    :func:`write_sr`), otherwise by finding type: Liver is the liver, any
    other finding is a lesion. Groups sharing a Tracking Unique Identifier are
    one finding (a lesion's volumetric and planar groups are one lesion). Volumes are returned in mL and diameters in mm
    whatever UCUM unit the file uses (ml, cm3, mm3, l; mm, cm, m).

    Parameters
    ----------
    path : path-like
        The SR file.

    Returns
    -------
    dict
        ``liver_volume_ml``, ``tumor_volume_ml``, ``involvement_percent``,
        ``remnant_volume_ml`` (None when absent), ``lesion_count`` (intrahepatic
        lesions; None when the SR has neither a lesion group nor netlm's tumour group, so it does not
        report a count), ``lesions`` (list of dicts: ``id``, ``location``, ``volume_ml``,
        ``longest_axial_diameter_mm``, ``short_axis_diameter_mm``,
        ``max_3d_diameter_mm``, ``suv_max``, ``suv_mean``, ``suv_peak``, ``referenced_segment``),
        ``derived`` (quantity -> how it was derived when the SR does not state it: the tumour
        volume as the sum of the lesion volumes, the involvement from the tumour and liver volumes),
        ``sretv_ml`` and ``tlsre`` (PET; None when absent), ``liver_referenced_segment``
        (``{"sop_instance_uid", "segment_number"}`` or None), ``study_instance_uid``
        and ``referenced_series_instance_uids``.

    Raises
    ------
    InputError
        Unreadable file, not a TID 1500 SR, or a unit that cannot be converted.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    p = Path(path)
    try:
        sr = hd.sr.srread(str(p))
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise InputError(f"{p}: cannot read the DICOM SR ({exc}); pass a DICOM Structured Report file") from None
    except (ValueError, AttributeError, KeyError, RuntimeError) as exc:
        raise InputError(f"{p}: not a structured report highdicom can read ({exc}); pass a TID 1500 SR file") from None
    content = sr.content
    if not isinstance(content, hd.sr.MeasurementReport):
        raise InputError(f"{p}: the SR is not a TID 1500 Measurement Report; pass a TID 1500 SR file")
    groups: list[Any] = list(content.get_volumetric_roi_measurement_groups())
    groups += list(content.get_image_measurement_groups())
    groups += list(content.get_planar_roi_measurement_groups())
    result: dict[str, Any] = {
        "liver_volume_ml": None,
        "tumor_volume_ml": None,
        "involvement_percent": None,
        "remnant_volume_ml": None,
        "lesion_count": 0,
        "lesions": [],
        "liver_referenced_segment": None,
        "sretv_ml": None,
        "tlsre": None,
        "whole_body_sretv_ml": None,
        "whole_body_tlsre": None,
        "study_instance_uid": str(getattr(sr, "StudyInstanceUID", "")) or None,
    }
    involvement = hd.sr.CodedConcept(*INVOLVEMENT_CODE)
    suvbw = hd.sr.CodedConcept(*SUVBW_CODE)
    series = set()
    for ev in getattr(sr, "CurrentRequestedProcedureEvidenceSequence", []):
        for s in getattr(ev, "ReferencedSeriesSequence", []):
            series.add(str(s.SeriesInstanceUID))
    result["referenced_series_instance_uids"] = sorted(series)
    anonymous = 0
    tumour_group = False
    for g in _findings(groups):
        tracking = str(g.tracking_identifier or "")
        vol = _first(g, codes.SCT.Volume)
        vol_ml = _value(vol, VOLUME_UNITS, p, f"volume of '{tracking}'") if vol is not None else None
        if tracking == LIVER_ID:
            result["liver_volume_ml"] = vol_ml
            result["liver_referenced_segment"] = _segment_of(g)
            result.update(_mr_signal_of(g))
        elif tracking == TUMOUR_ID:
            tumour_group = True
            result["tumor_volume_ml"] = vol_ml
            inv = _first(g, involvement)
            if inv is not None:
                result["involvement_percent"] = float(inv.value)
        elif tracking == REMNANT_ID:
            result["remnant_volume_ml"] = vol_ml
        elif tracking in (PET_ID, PET_WB_ID):
            prefix = "" if tracking == PET_ID else "whole_body_"
            for key, code in (("sretv_ml", SRETV_CODE), ("tlsre", TLSRE_CODE)):
                item = _first(g, hd.sr.CodedConcept(*code))
                result[prefix + key] = float(item.value) if item is not None else None
        elif _is_code(g.finding_type, codes.SCT.Liver) and result["liver_volume_ml"] is None:
            result["liver_volume_ml"] = vol_ml
        else:
            m = LESION_RE.match(tracking)
            if m:
                lid, location = int(m.group(1)), m.group(2) or "intrahepatic"
            else:
                anonymous += 1
                lid = anonymous
                sites = g.finding_sites or []
                in_liver = any(_site_in_liver(getattr(s, "value", s), codes.SCT.Liver) for s in sites)
                location = "intrahepatic" if in_liver or not sites else "extrahepatic"
            lesion: dict[str, Any] = {"id": lid, "location": location, "label": tracking, "volume_ml": vol_ml}
            for key, code in (
                ("longest_axial_diameter_mm", codes.SCT.LongAxis),
                ("short_axis_diameter_mm", codes.SCT.ShortAxis),
                ("max_3d_diameter_mm", codes.SCT.Diameter),
            ):
                item = _first(g, code)
                lesion[key] = _value(item, LENGTH_UNITS, p, f"{code.meaning} of '{tracking}'") if item else None
            suvs = {str(getattr(m.derivation, "value", "")): m for m in g.get_measurements(name=suvbw)}
            for key, derivation in SUV_KEYS:
                m_suv = suvs.get(derivation[0])
                lesion[key] = float(m_suv.value) if m_suv is not None else None
            for key, code in (("sretv_ml", SRETV_CODE), ("tlsre", TLSRE_CODE)):
                item = _first(g, hd.sr.CodedConcept(*code))
                lesion[key] = float(item.value) if item is not None else None
            lesion["referenced_segment"] = _segment_of(g)
            lesion.update(_mr_signal_of(g))
            result["lesions"].append(lesion)
    result["lesions"].sort(key=lambda les: les["id"])
    intra = [les for les in result["lesions"] if les["location"] == "intrahepatic"]
    # no tumour group and no lesion group: the SR does not report lesions (a 0 would be checked as one)
    result["lesion_count"] = len(intra) if intra or tumour_group else None
    derived: dict[str, str] = {}
    if result["tumor_volume_ml"] is None and intra and all(les["volume_ml"] is not None for les in intra):
        result["tumor_volume_ml"] = float(sum(les["volume_ml"] for les in intra))
        derived["tumor_volume_ml"] = "the sum of the SR's intrahepatic lesion volumes"
    if result["involvement_percent"] is None and result["tumor_volume_ml"] is not None and result["liver_volume_ml"]:
        result["involvement_percent"] = 100.0 * result["tumor_volume_ml"] / result["liver_volume_ml"]
        derived["involvement_percent"] = "100 x the SR's tumour volume / its liver volume"
    result["derived"] = derived
    return result

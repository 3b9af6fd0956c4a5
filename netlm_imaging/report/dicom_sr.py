"""DICOM SR output: a TID 1500 Measurement Report (Comprehensive 3D SR) written and read with highdicom.

Content (DICOM PS3.16 TID 1500 "Measurement Report")
----------------------------------------------------
The report references the measured image series (the Current Requested
Procedure Evidence Sequence lists every source image; the optional TID 1600
Image Library is left out because highdicom builds it at about 0.1 s per
image) and holds one measurement group per finding:

=====================  ==========================  ===========================================
tracking identifier    finding type                measurements (concept name, UCUM unit)
=====================  ==========================  ===========================================
``Total liver``        SCT 10200004 Liver          SCT 118565006 Volume (``ml``)
``Intrahepatic         SCT 108369006 Neoplasm,     Volume (``ml``); 99NETLM INVOLVEMENT
tumour``               site Liver                  "Hepatic tumour involvement" (``%``)
``Non-tumorous         SCT 10200004 Liver          Volume (``ml``) = total liver - tumour
liver``
``Lesion <id>          SCT 108369006 Neoplasm      Volume (``ml``); SCT 103339001 Long Axis,
(<location>)``         (site Liver if intra-       SCT 103340004 Short Axis, SCT 81827009
                       hepatic)                    Diameter derived SCT 56851009 Maximum
                                                   (3D, ``mm``)
=====================  ==========================  ===========================================

No standard code exists for the share of the liver occupied by tumour, so it
uses the private coding scheme ``99NETLM`` (identified in the SR's Coding
Scheme Identification Sequence). When a group's mask came from a DICOM SEG
segment (``ctx.header["segmentation_refs"]`` as set by
:func:`netlm_imaging.api.analyze_with_context`, or ``seg_references``), the
group is a TID 1411 Volumetric ROI group with a ReferencedSegment; otherwise a
TID 1501 measurement group.

Privacy: patient name, ID, birth date, sex, accession number and referring
physician are emptied (the Type 2 attributes stay, empty) unless
``include_identifiers=True``; the Study Instance UID is kept, as in the JSON
report, so the SR belongs to its study.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import InputError, UnsupportedError

__all__ = ["INVOLVEMENT_CODE", "read_sr_measurements", "strip_identifiers", "write_sr"]

logger = logging.getLogger(__name__)

#: Private code of the hepatic tumour involvement percent (no standard code exists).
INVOLVEMENT_CODE = ("INVOLVEMENT", "99NETLM", "Hepatic tumour involvement")
_LIVER_ID = "Total liver"
_TUMOUR_ID = "Intrahepatic tumour"
_REMNANT_ID = "Non-tumorous liver"
_LESION_RE = re.compile(r"^Lesion (\d+)(?: \((intrahepatic|extrahepatic)\))?$")
#: Attributes emptied (Type 2) or removed (Type 3) unless identifiers are asked for.
_EMPTIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
_REMOVED = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "InstitutionName",
    "InstitutionAddress",
    "PerformingPhysicianName",
    "OperatorsName",
    "IssuerOfPatientID",
    "PatientComments",
    "EthnicGroup",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
)
_PROCEDURES = {
    "CT": ("25045-6", "LN", "CT unspecified body region"),
    "MR": ("25056-3", "LN", "MRI unspecified body region"),
    "PT": ("44136-0", "LN", "PET unspecified body region"),
}


# ----------------------------------------------------------------------------- writing


def _load_evidence(image_datasets: Sequence[Any] | None, ctx: Any, path: Path) -> list[Any]:
    import pydicom

    sources: Sequence[Any] | None = image_datasets
    if sources is None and ctx is not None:
        sources = ctx.image.meta.get("files")
    if not sources:
        raise UnsupportedError(
            f"{path}: a DICOM SR must reference the DICOM images that were measured, and this study's image is not "
            "a DICOM series; analyse the DICOM series (not a NIfTI/NRRD file) to write an SR"
        )
    out = []
    for s in sources:
        if isinstance(s, pydicom.Dataset):
            out.append(s)
            continue
        try:
            out.append(pydicom.dcmread(str(s), stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise InputError(
                f"{s}: cannot read the source image header for the SR ({exc}); keep the series intact"
            ) from None
    return out


def _seg_refs(seg_references: Sequence[Mapping[str, Any]] | None, ctx: Any) -> list[dict[str, Any]]:
    """Segment references whose SEG header can be read (it must be part of the SR's evidence)."""
    refs = seg_references if seg_references is not None else (ctx.header.get("segmentation_refs") if ctx else None)
    out = []
    for r in refs or []:
        if not (r.get("sop_instance_uid") and r.get("segment_number") is not None):
            continue
        d = dict(r)
        ds = d.get("dataset") or _seg_header(d.get("source"))
        if ds is None or str(getattr(ds, "SOPInstanceUID", "")) != str(d["sop_instance_uid"]):
            logger.info(
                "segment %s of %s not referenced in the SR: its SEG header is not readable here",
                d["segment_number"],
                d.get("source"),
            )
            continue
        d["dataset"] = ds
        d["sop_class_uid"] = str(ds.SOPClassUID)
        out.append(d)
    return out


def _seg_header(source: Any) -> Any:
    """Header of the SEG file a layer came from, or None."""
    if not source or not Path(str(source)).is_file():
        return None
    import pydicom

    try:
        return pydicom.dcmread(str(source), stop_before_pixels=True)
    except Exception:  # not readable here: the group is written without a segment reference
        logger.debug("cannot read %s", source, exc_info=True)
        return None


def _ref_segment(ref: Mapping[str, Any]) -> Any:
    import highdicom as hd

    return hd.sr.ReferencedSegment(
        sop_class_uid=ref["sop_class_uid"],
        sop_instance_uid=ref["sop_instance_uid"],
        segment_number=int(ref["segment_number"]),
        source_series=hd.sr.SourceSeriesForSegmentation(ref["image_series_uid"]),
    )


def _report_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def _group(
    tracking: str,
    finding_type: Any,
    measurements: list[Any],
    seg_ref: Mapping[str, Any] | None,
    finding_sites: list[Any] | None = None,
) -> Any:
    import highdicom as hd

    tid = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=tracking)
    if seg_ref is not None:
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tid,
            referenced_segment=_ref_segment(seg_ref),
            finding_type=finding_type,
            finding_sites=finding_sites,
            measurements=measurements,
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tid,
        finding_type=finding_type,
        finding_sites=finding_sites,
        measurements=measurements,
    )


def strip_identifiers(ds: Any) -> None:
    """Empty the Type 2 patient identifiers and drop the Type 3 ones of a dataset, in place.

    Parameters
    ----------
    ds : pydicom.Dataset
        An SR or SEG built from source images.
    """
    for kw in _EMPTIED:
        if kw in ds:
            setattr(ds, kw, "")
    for kw in _REMOVED:
        if kw in ds:
            delattr(ds, kw)
    # nested items too (e.g. InstitutionName inside ContributingEquipmentSequence)
    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value:
                if "InstitutionalDepartmentName" in item:
                    delattr(item, "InstitutionalDepartmentName")
                strip_identifiers(item)


def write_sr(
    report: Any,
    ctx: Any = None,
    path: str | os.PathLike[str] = "report_sr.dcm",
    *,
    image_datasets: Sequence[Any] | None = None,
    seg_references: Sequence[Mapping[str, Any]] | None = None,
    include_identifiers: bool = False,
    series_number: int = 9901,
) -> Path:
    """Write the report's measurements as a TID 1500 Comprehensive 3D SR (atomically).

    Parameters
    ----------
    report : StudyReport or dict
        The study report (``StudyReport.to_dict()`` layout).
    ctx : MeasurementContext, optional
        Gives the source image files (``ctx.image.meta["files"]``) and the SEG
        segments the masks came from (``ctx.header["segmentation_refs"]``).
    path : path-like
        Output file.
    image_datasets : sequence of pydicom.Dataset or path-like, optional
        Source images (headers suffice); overrides ``ctx``.
    seg_references : sequence of dict, optional
        Segments to reference: dicts with ``role`` (liver/lesion), ``label``,
        ``sop_instance_uid``, ``segment_number`` and optionally ``sop_class_uid``;
        overrides ``ctx``.
    include_identifiers : bool
        Keep the patient module of the source images (off by default).
    series_number : int
        Series Number of the SR.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    UnsupportedError
        When there are no DICOM source images (NIfTI/NRRD studies).
    InputError
        When a source image header cannot be read.

    References
    ----------
    DICOM PS3.16 TID 1500, TID 1411 and TID 1501; PS3.3 A.35.13 (Comprehensive 3D SR).
    """
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    from .._version import __version__

    out = Path(path)
    d = _report_dict(report)
    evidence = _load_evidence(image_datasets, ctx, out)
    image_series_uid = str(evidence[0].SeriesInstanceUID)
    refs = _seg_refs(seg_references, ctx)
    for r in refs:
        r.setdefault("image_series_uid", image_series_uid)
    liver_ref = next((r for r in refs if r.get("role") == "liver"), None)
    lesion_refs = [r for r in refs if r.get("role") == "lesion"]
    used_refs: list[dict[str, Any]] = [liver_ref] if liver_ref else []

    ml = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
    mm = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
    pct = hd.sr.CodedConcept("%", "UCUM", "percent")
    liver_site = [hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)]

    def meas(name: Any, value: float, unit: Any, derivation: Any = None) -> Any:
        return hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation)

    groups = []
    liver_ml = (d.get("liver") or {}).get("volume_ml")
    if liver_ml is not None:
        groups.append(_group(_LIVER_ID, codes.SCT.Liver, [meas(codes.SCT.Volume, liver_ml, ml)], liver_ref))
    tumour = [meas(codes.SCT.Volume, (d.get("tumor") or {}).get("intrahepatic_volume_ml", 0.0), ml)]
    if d.get("involvement_percent") is not None:
        tumour.append(meas(hd.sr.CodedConcept(*INVOLVEMENT_CODE), d["involvement_percent"], pct))
    groups.append(_group(_TUMOUR_ID, codes.SCT.Neoplasm, tumour, None, liver_site))
    remnant_ml = (d.get("remnant") or {}).get("non_tumorous_liver_volume_ml")
    if remnant_ml is not None:
        groups.append(_group(_REMNANT_ID, codes.SCT.Liver, [meas(codes.SCT.Volume, remnant_ml, ml)], None))
    per_lesion_segments = len(lesion_refs) > 1 or (len(lesion_refs) == 1 and len(d.get("lesions") or []) == 1)
    for les in d.get("lesions") or []:
        ms = [
            meas(codes.SCT.Volume, les["volume_ml"], ml),
            meas(codes.SCT.LongAxis, les["longest_axial_diameter_mm"], mm),
        ]
        if les.get("short_axis_diameter_mm") is not None:
            ms.append(meas(codes.SCT.ShortAxis, les["short_axis_diameter_mm"], mm))
        ms.append(meas(codes.SCT.Diameter, les["max_3d_diameter_mm"], mm, derivation=codes.SCT.Maximum))
        ref = None
        if per_lesion_segments:
            ref = next((r for r in lesion_refs if les.get("label") and r.get("label") == les.get("label")), None)
            if ref is None and len(lesion_refs) == 1:
                ref = lesion_refs[0]
            if ref is not None:
                used_refs.append(ref)
        intra = les.get("location") == "intrahepatic"
        groups.append(
            _group(
                f"Lesion {les['id']} ({les.get('location', 'intrahepatic')})",
                codes.SCT.Neoplasm,
                ms,
                ref,
                liver_site if intra else None,
            )
        )

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="netlm-imaging", manufacturer_name="netlm-imaging", model_name=__version__
        ),
    )
    modality = str(getattr(evidence[0], "Modality", "") or (d.get("study") or {}).get("modality", "CT"))
    procedure = hd.sr.CodedConcept(*_PROCEDURES.get(modality, _PROCEDURES["CT"]))
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        imaging_measurements=groups,
    )
    seg_evidence = {str(r["sop_instance_uid"]): r["dataset"] for r in used_refs}
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*evidence, *seg_evidence.values()],
        content=content,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="netlm-imaging",
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
    sr.SeriesDescription = "netlm tumour burden (TID 1500)"
    sr.SoftwareVersions = __version__
    scheme = Dataset()
    scheme.CodingSchemeDesignator = INVOLVEMENT_CODE[1]
    scheme.CodingSchemeName = "netlm-imaging local codes"
    scheme.CodingSchemeResponsibleOrganization = "netlm-imaging"
    sr.CodingSchemeIdentificationSequence = [scheme]
    if not include_identifiers:
        strip_identifiers(sr)
    buf = io.BytesIO()
    sr.save_as(buf)
    atomic_write_bytes(out, buf.getvalue())
    logger.info("wrote DICOM SR %s (%d measurement groups)", out, len(groups))
    return out


# ----------------------------------------------------------------------------- reading

_VOLUME_UNITS = {"ml": 1.0, "mL": 1.0, "cm3": 1.0, "cm^3": 1.0, "mm3": 1e-3, "mm^3": 1e-3, "l": 1e3, "L": 1e3}
_LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1e3}


def _value(item: Any, table: Mapping[str, float], path: Path, what: str) -> float:
    unit = item.unit.value
    if unit not in table:
        raise InputError(f"{path}: {what} is in unit {unit!r}; expected one of {sorted(table)}")
    return float(item.value) * table[unit]


def _first(group: Any, name: Any) -> Any:
    found = group.get_measurements(name=name)
    return found[0] if found else None


def _is_code(concept: Any, code: Any) -> bool:
    return concept is not None and concept.value == code.value and concept.scheme_designator == code.scheme_designator


def _segment_of(group: Any) -> dict[str, Any] | None:
    ref = getattr(group, "referenced_segment", None)
    if ref is None:
        return None
    return {
        "sop_instance_uid": str(ref.referenced_sop_instance_uid),
        "segment_number": int(ref.referenced_segment_numbers[0]),
    }


def read_sr_measurements(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TID 1500 SR (written by :func:`write_sr` or another tool) back into numbers.

    Groups are recognised by their tracking identifier (as written by
    :func:`write_sr`), otherwise by finding type: Liver is the liver, any
    other finding is a lesion. Volumes are returned in mL and diameters in mm
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
        lesions), ``lesions`` (list of dicts: ``id``, ``location``, ``volume_ml``,
        ``longest_axial_diameter_mm``, ``short_axis_diameter_mm``,
        ``max_3d_diameter_mm``, ``referenced_segment``), ``liver_referenced_segment``
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
        "study_instance_uid": str(getattr(sr, "StudyInstanceUID", "")) or None,
    }
    involvement = hd.sr.CodedConcept(*INVOLVEMENT_CODE)
    series = set()
    for ev in getattr(sr, "CurrentRequestedProcedureEvidenceSequence", []):
        for s in getattr(ev, "ReferencedSeriesSequence", []):
            series.add(str(s.SeriesInstanceUID))
    result["referenced_series_instance_uids"] = sorted(series)
    anonymous = 0
    for g in groups:
        tracking = str(g.tracking_identifier or "")
        vol = _first(g, codes.SCT.Volume)
        vol_ml = _value(vol, _VOLUME_UNITS, p, f"volume of '{tracking}'") if vol is not None else None
        if tracking == _LIVER_ID:
            result["liver_volume_ml"] = vol_ml
            result["liver_referenced_segment"] = _segment_of(g)
        elif tracking == _TUMOUR_ID:
            result["tumor_volume_ml"] = vol_ml
            inv = _first(g, involvement)
            if inv is not None:
                result["involvement_percent"] = float(inv.value)
        elif tracking == _REMNANT_ID:
            result["remnant_volume_ml"] = vol_ml
        elif _is_code(g.finding_type, codes.SCT.Liver) and result["liver_volume_ml"] is None:
            result["liver_volume_ml"] = vol_ml
        else:
            m = _LESION_RE.match(tracking)
            if m:
                lid, location = int(m.group(1)), m.group(2) or "intrahepatic"
            else:
                anonymous += 1
                lid = anonymous
                sites = g.finding_sites or []
                in_liver = any(_is_code(getattr(s, "value", s), codes.SCT.Liver) for s in sites)
                location = "intrahepatic" if in_liver or not sites else "extrahepatic"
            lesion: dict[str, Any] = {"id": lid, "location": location, "label": tracking, "volume_ml": vol_ml}
            for key, code in (
                ("longest_axial_diameter_mm", codes.SCT.LongAxis),
                ("short_axis_diameter_mm", codes.SCT.ShortAxis),
                ("max_3d_diameter_mm", codes.SCT.Diameter),
            ):
                item = _first(g, code)
                lesion[key] = _value(item, _LENGTH_UNITS, p, f"{code.meaning} of '{tracking}'") if item else None
            lesion["referenced_segment"] = _segment_of(g)
            result["lesions"].append(lesion)
    result["lesions"].sort(key=lambda les: les["id"])
    intra = [les for les in result["lesions"] if les["location"] == "intrahepatic"]
    result["lesion_count"] = len(intra)
    if result["tumor_volume_ml"] is None and intra and all(les["volume_ml"] is not None for les in intra):
        result["tumor_volume_ml"] = float(sum(les["volume_ml"] for les in intra))
    if result["involvement_percent"] is None and result["tumor_volume_ml"] is not None and result["liver_volume_ml"]:
        result["involvement_percent"] = 100.0 * result["tumor_volume_ml"] / result["liver_volume_ml"]
    return result

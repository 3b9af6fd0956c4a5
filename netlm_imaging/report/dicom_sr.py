"""DICOM SR output: a TID 1500 Measurement Report (Comprehensive 3D SR) written and read with highdicom.

Why one module (~800 lines): writing and reading back the same TID 1500 template (codes,
groups, units) must stay side by side so that what is written is what is read.

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
                                                   (3D, ``mm``); with PET: DCM 126401 SUVbw
                                                   derived Maximum / SCT 373098007 Mean /
                                                   DCM 126031 Peak Value Within ROI
                                                   (``{SUVbw}g/ml``)
``Hepatic / Whole-body  SCT 108369006 Neoplasm      99NETLM SRETV (``ml``), 99NETLM TLSRE
somatostatin receptor-                             (``g`` = mL x SUVbw g/mL, as DCM's TLG);
expressing tumour``                                lesions with PET carry their own too
(PET only)
=====================  ==========================  ===========================================

The PET numbers are those of ``report.json`` (``lesions[].suv_max`` /
``suv_mean`` / ``suv_peak`` / ``sretv_ml`` / ``tlsre``, ``pet.sretv_ml`` /
``pet.tlsre`` (hepatic) and ``pet.whole_body_sretv_ml`` / ``pet.whole_body_tlsre``).

No standard code exists for the share of the liver occupied by tumour (nor
for SRETV / TLSRE), so they use the private coding scheme ``99NETLM``
(identified in the SR's Coding Scheme Identification Sequence).

Segments: viewers (3D Slicer QuantitativeReporting, OHIF) pair a measurement
group with a segment through its TID 1411 ReferencedSegment. With
``derived_seg`` (the SEG of :func:`netlm_imaging.report.dicom_seg_out.write_seg`,
which ``--sr`` always writes) the total-liver group and every lesion group
reference the segment of that SEG they were measured on. Without it, a group
references an input SEG segment only when that segment is exactly the
measured region (same voxel count and, for lesions, the same name); every
other group is a TID 1501 group without a region.

Identity: see :mod:`netlm_imaging.report.identity`. Without
``include_identifiers`` the SR is de-identified (PS3.15 Basic Profile, Retain
UIDs Option); with it (the copy pushed back to the PACS) it keeps the source
images' Patient and Study modules. Its UIDs are derived from the measured
content, so a re-run gives the same SOP Instance UID.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import InputError, UnsupportedError
from ._sr_writer import build_sr
from .lesion_columns import sr_columns

__all__ = [
    "INVOLVEMENT_CODE",
    "SRETV_CODE",
    "TLSRE_CODE",
    "derived_segment_references",
    "read_sr_measurements",
    "write_sr",
]

logger = logging.getLogger(__name__)

#: Private code of the hepatic tumour involvement percent (no standard code exists).
INVOLVEMENT_CODE = ("INVOLVEMENT", "99NETLM", "Hepatic tumour involvement")
#: Private code of the somatostatin receptor-expressing tumour volume (PET).
SRETV_CODE = ("SRETV", "99NETLM", "Somatostatin receptor-expressing tumour volume")
#: Private code of the total lesion somatostatin receptor expression (SRETV x SUVmean).
TLSRE_CODE = ("TLSRE", "99NETLM", "Total lesion somatostatin receptor expression")
_LIVER_ID = "Total liver"
_TUMOUR_ID = "Intrahepatic tumour"
_REMNANT_ID = "Non-tumorous liver"
_PET_ID = "Hepatic somatostatin receptor-expressing tumour"
_PET_WB_ID = "Whole-body somatostatin receptor-expressing tumour"
_LESION_RE = re.compile(r"^Lesion (\d+)(?: \((intrahepatic|extrahepatic)\))?$")
_PROCEDURES: dict[str, tuple[str, str, str]] = {
    "CT": ("25045-6", "LN", "CT unspecified body region"),
    "MR": ("25056-3", "LN", "MRI unspecified body region"),
    "PT": ("44136-0", "LN", "PET unspecified body region"),
}
#: DCM 126401 SUVbw, the concept of the per-lesion SUV measurements.
_SUVBW_CODE = ("126401", "DCM", "SUVbw")
#: (report key, derivation code) of the per-lesion SUV measurements.
_SUV_KEYS = (
    ("suv_max", ("56851009", "SCT", "Maximum")),
    ("suv_mean", ("373098007", "SCT", "Mean")),
    ("suv_peak", ("126031", "DCM", "Peak Value Within ROI")),
)


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
    from ._hd_sources import highdicom_sources

    return highdicom_sources(out)


def derived_segment_references(seg: Any, image_series_uid: str) -> dict[Any, dict[str, Any]]:
    """Which segment of a derived SEG holds which measured region.

    Parameters
    ----------
    seg : pydicom.Dataset or path-like
        A SEG written by :func:`netlm_imaging.report.dicom_seg_out.write_seg`
        (segment labels ``Liver``, ``Spleen``, ``Lesion <id> (<location>)``).
    image_series_uid : str
        The measured image series.

    Returns
    -------
    dict
        ``"liver"`` and ``("lesion", id)`` keys to reference dicts
        (``sop_instance_uid``, ``sop_class_uid``, ``segment_number``,
        ``image_series_uid``, ``dataset``).
    """
    if hasattr(seg, "SegmentSequence") and hasattr(seg, "SOPInstanceUID"):
        ds = seg  # a dataset, or the header the SEG writer hands on
    else:
        import pydicom

        ds = pydicom.dcmread(str(seg), stop_before_pixels=True)
    out: dict[Any, dict[str, Any]] = {}
    for item in getattr(ds, "SegmentSequence", []):
        label = str(getattr(item, "SegmentLabel", ""))
        m = _LESION_RE.match(label)
        key: Any = ("lesion", int(m.group(1))) if m else label.lower() if label == "Liver" else None
        if key is None:
            continue
        out[key] = {
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "sop_class_uid": str(ds.SOPClassUID),
            "segment_number": int(item.SegmentNumber),
            "image_series_uid": image_series_uid,
            "dataset": ds,
        }
    return out


def _input_refs(
    seg_references: Sequence[Mapping[str, Any]] | None, ctx: Any, d: Mapping[str, Any], image_series_uid: str
) -> dict[Any, dict[str, Any]]:
    """Input SEG segments that are exactly a measured region (checked by voxel count and name)."""
    refs = seg_references if seg_references is not None else (ctx.header.get("segmentation_refs") if ctx else None)
    usable = []
    for r in refs or []:
        if not (r.get("sop_instance_uid") and r.get("segment_number") is not None):
            continue
        ref = dict(r)
        ds = ref.get("dataset") or _seg_header(ref.get("source"))
        if ds is None or str(getattr(ds, "SOPInstanceUID", "")) != str(ref["sop_instance_uid"]):
            logger.info(
                "segment %s of %s not referenced: its SEG header is not readable here",
                ref["segment_number"],
                ref.get("source"),
            )
            continue
        ref.update(dataset=ds, sop_class_uid=str(ds.SOPClassUID), image_series_uid=image_series_uid)
        usable.append(ref)
    out: dict[Any, dict[str, Any]] = {}
    explicit = seg_references is not None  # given by the caller: taken as exact
    livers = [r for r in usable if r.get("role") == "liver"]
    liver_count = None
    if ctx is not None and ctx.liver is not None:
        box = getattr(ctx, "liver_bbox", None)
        liver_count = int(np.count_nonzero(ctx.liver[box] if box is not None else ctx.liver))
    if len(livers) == 1 and (explicit or (liver_count is not None and livers[0].get("voxel_count") == liver_count)):
        out["liver"] = livers[0]
    elif livers:
        logger.info(
            "the SR's total liver group references no input segment: the input liver segment is not the total liver"
        )
    lesions = [r for r in usable if r.get("role") == "lesion"]
    report_lesions = d.get("lesions") or []
    for les in report_lesions:
        named = [r for r in lesions if les.get("label") and r.get("label") == les.get("label")]
        if not named and len(lesions) == 1 and len(report_lesions) == 1:
            named = lesions
        if len(named) == 1 and (explicit or named[0].get("voxel_count") == les.get("voxel_count")):
            out[("lesion", int(les["id"]))] = named[0]
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


def _report_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


# codes of the document as (value, scheme, meaning), as pydicom's ``codes`` spell them
# (tests/test_sr_writer.py checks each against pydicom); no pydicom.sr import on the write path
_SCT = {
    "Volume": ("118565006", "SCT", "Volume"),
    "Liver": ("10200004", "SCT", "Liver"),
    "Neoplasm": ("108369006", "SCT", "Neoplasm"),
    "LongAxis": ("103339001", "SCT", "Long axis"),
    "ShortAxis": ("103340004", "SCT", "Short axis"),
    "Diameter": ("81827009", "SCT", "Diameter"),
    "Maximum": ("56851009", "SCT", "Maximum"),
    "Mean": ("373098007", "SCT", "Mean"),
    "StandardDeviation": ("386136009", "SCT", "Standard Deviation"),
}
_MR_SIGNAL = ("110852", "DCM", "MR signal intensity")
_ML = ("ml", "UCUM", "milliliter")
_PERCENT = ("%", "UCUM", "percent")
_GRAM = ("g", "UCUM", "gram")
_SUV_UNIT = ("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")
_ARB = ("[arb'U]", "UCUM", "arbitrary unit")


def _sct(name: str) -> tuple[str, str, str]:
    """An SCT code by pydicom's attribute name (pydicom's dictionary only for a name not listed above)."""
    found = _SCT.get(name)
    if found is not None:
        return found
    from pydicom.sr.codedict import codes

    c = getattr(codes.SCT, name)
    return (str(c.value), str(c.scheme_designator), str(c.meaning))


def _sretv_measurements(d: Mapping[str, Any], prefix: str) -> list[Any]:
    """SRETV (mL) and TLSRE (g = mL x SUVbw g/mL) of ``d[prefix + "sretv_ml"]`` / ``d[prefix + "tlsre"]``."""
    from ._sr_writer import Measurement

    out = []
    if d.get(prefix + "sretv_ml") is not None:
        out.append(Measurement(SRETV_CODE, float(d[prefix + "sretv_ml"]), _ML))
    if d.get(prefix + "tlsre") is not None:
        out.append(Measurement(TLSRE_CODE, float(d[prefix + "tlsre"]), _GRAM))
    return out


def content_digest(d: Mapping[str, Any]) -> str:
    """Digest of a report's measured content (names the SR / SEG UIDs; no run times, no identifiers)."""
    import hashlib
    import json

    keep = {k: d.get(k) for k in ("liver", "tumor", "involvement_percent", "remnant", "lesions", "pet")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


def _groups(d: Mapping[str, Any], refs: Mapping[Any, Mapping[str, Any]], uid: Any) -> tuple[list[Any], list[Any]]:
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
            Measurement(_MR_SIGNAL, float(item[key]), _ARB, _sct(derivation))
            for key, derivation in (("mean_signal_au", "Mean"), ("sd_signal_au", "StandardDeviation"))
            if item.get(key) is not None
        ]

    volume, liver, neoplasm = _sct("Volume"), _sct("Liver"), _sct("Neoplasm")
    liver_site = [liver]
    groups = []
    liver_ml = (d.get("liver") or {}).get("volume_ml")
    if liver_ml is not None:
        ms = [Measurement(volume, float(liver_ml), _ML), *mr_signal(d.get("liver") or {})]
        groups.append(Group(_LIVER_ID, uid("liver"), liver, ms, segment("liver")))
    if (d.get("tumor") or {}).get("lesions_segmented", True):  # a liver-only segmentation measured no tumour
        tumour = [Measurement(volume, float((d.get("tumor") or {}).get("intrahepatic_volume_ml", 0.0)), _ML)]
        if d.get("involvement_percent") is not None:
            tumour.append(Measurement(INVOLVEMENT_CODE, float(d["involvement_percent"]), _PERCENT))
        groups.append(Group(_TUMOUR_ID, uid("tumour"), neoplasm, tumour, None, liver_site))
    remnant_ml = (d.get("remnant") or {}).get("non_tumorous_liver_volume_ml")
    if remnant_ml is not None:
        groups.append(Group(_REMNANT_ID, uid("remnant"), liver, [Measurement(volume, float(remnant_ml), _ML)]))
    for les in d.get("lesions") or []:
        ms = [  # the registry's SCT-coded lesion measurements (report/lesion_columns.py)
            Measurement(
                _sct(c.sr.name),
                float(les[c.key]),
                tuple(c.sr.unit),  # type: ignore[arg-type]
                _sct(c.sr.derivation) if c.sr.derivation else None,
            )
            for c in sr_columns()
            if c.sr is not None and les.get(c.key) is not None
        ]
        for key, derivation in _SUV_KEYS:
            if les.get(key) is not None:
                ms.append(Measurement(_SUVBW_CODE, float(les[key]), _SUV_UNIT, derivation))
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
    for tracking, prefix, sites in ((_PET_ID, "", liver_site), (_PET_WB_ID, "whole_body_", [])):
        pet_ms = _sretv_measurements(pet, prefix)
        if pet_ms:
            groups.append(Group(tracking, uid("pet", prefix), neoplasm, pet_ms, None, sites))
    return groups, used


def _highdicom_sr(
    groups: Sequence[Any],
    evidence: Sequence[Any],
    *,
    device: tuple[str, str, str, str],
    procedure: tuple[str, str, str],
    uids: Mapping[str, str],
    series_number: int,
    version: str,
) -> Any:
    """The same document built with highdicom (the reference the direct writer is tested against)."""
    import highdicom as hd
    from pydicom.dataset import Dataset

    from ..creator import CREATOR

    def concept(c: tuple[str, str, str]) -> Any:
        return hd.sr.CodedConcept(*c)

    hd_groups: list[Any] = []
    for g in groups:
        tid = hd.sr.TrackingIdentifier(uid=g.uid, identifier=g.tracking)
        ms = [
            hd.sr.Measurement(
                name=concept(m.name),
                value=float(m.value),
                unit=concept(m.unit),
                derivation=concept(m.derivation) if m.derivation else None,
            )
            for m in g.measurements
        ]
        sites = [hd.sr.FindingSite(anatomic_location=concept(s)) for s in g.sites] or None
        if g.segment is not None:
            sop_class, sop_instance, number, series = g.segment
            ref = hd.sr.ReferencedSegment(
                sop_class_uid=sop_class,
                sop_instance_uid=sop_instance,
                segment_number=number,
                source_series=hd.sr.SourceSeriesForSegmentation(series),
            )
            hd_groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=tid,
                    referenced_segment=ref,
                    finding_type=concept(g.finding),
                    finding_sites=sites,
                    measurements=ms,
                )
            )
        else:
            hd_groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=tid, finding_type=concept(g.finding), finding_sites=sites, measurements=ms
                )
            )
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device[0], name=device[1], manufacturer_name=device[2], model_name=device[3]
        ),
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=concept(procedure),
        imaging_measurements=hd_groups,
    )
    from ._hd_sources import no_person_name_warnings

    with no_person_name_warnings():
        sr = hd.sr.Comprehensive3DSR(
            evidence=list(evidence),
            content=content,
            series_instance_uid=uids["series"],
            series_number=series_number,
            sop_instance_uid=uids["instance"],
            instance_number=1,
            manufacturer=CREATOR,
            is_complete=True,
            is_final=False,
            is_verified=False,
        )
    sr.SeriesDescription = _SERIES_DESCRIPTION
    sr.SoftwareVersions = version
    scheme = Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName, scheme.CodingSchemeResponsibleOrganization = (
        _coding_scheme()
    )
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


_SERIES_DESCRIPTION = "netlm tumour burden (TID 1500)"


def _coding_scheme() -> tuple[str, str, str]:
    from ..creator import CREATOR

    return (INVOLVEMENT_CODE[1], "netlm-imaging local codes", CREATOR)


def _direct_evidence(
    ctx: Any, image_datasets: Sequence[Any] | None, *, research: bool
) -> tuple[Any, dict[int, bytes], list[tuple[str, str, str, str]]] | None:
    """Facts and identity of the first source image and ``(class, instance, study, series)`` of every source,
    from the folder scan (None: the highdicom path)."""
    if image_datasets is not None or ctx is None:
        return None
    meta = ctx.image.meta
    files, instances = meta.get("files") or [], meta.get("sop_instance_uids") or []
    study, series, sop_class = (
        meta.get("study_instance_uid"),
        meta.get("series_instance_uid"),
        meta.get("sop_class_uid"),
    )
    if not files or len(instances) != len(files) or not (study and series and sop_class):
        return None
    from ._seg_writer import _now
    from ._source_header import source_identity

    date, time = _now()
    found = source_identity(files[0], research=research, date=date, time=time)
    if found is None:
        return None
    facts, identity = found
    if facts.sop_instance_uid != str(instances[0]) or facts.series_uid != str(series):
        return None
    return facts, identity, [(str(sop_class), str(i), str(study), str(series)) for i in instances]


def write_sr(
    report: Any,
    ctx: Any = None,
    path: str | os.PathLike[str] = "report_sr.dcm",
    *,
    image_datasets: Sequence[Any] | None = None,
    seg_references: Sequence[Mapping[str, Any]] | None = None,
    derived_seg: Any = None,
    include_identifiers: bool = False,
    series_number: int = 9901,
    engine: str = "auto",
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
        Input segments to reference, taken as exactly the measured regions:
        dicts with ``role`` (liver/lesion), ``label``, ``sop_instance_uid``,
        ``segment_number`` and ``dataset`` or ``source``; overrides ``ctx``.
    derived_seg : pydicom.Dataset or path-like, optional
        The derived SEG (:func:`~netlm_imaging.report.dicom_seg_out.write_seg`)
        whose segments the total-liver and lesion groups reference; it is
        listed in the SR's evidence. Takes precedence over input segments.
    include_identifiers : bool
        Keep the Patient and Study modules of the source images (the copy for
        the source PACS); off: de-identified (PS3.15 Basic Profile, Retain UIDs).
    series_number : int
        Series Number of the SR.
    engine : {"auto", "highdicom"}
        ``"auto"``: the document is encoded directly (:mod:`._sr_writer`, the
        same document as highdicom's) when the source series comes from the
        folder scan; otherwise, and with ``"highdicom"``, highdicom builds it.

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
    from .._version import __version__
    from ..creator import CREATOR
    from .identity import deidentify, result_uid

    if engine not in ("auto", "highdicom"):
        raise ValueError(f"engine must be 'auto' or 'highdicom', not {engine!r}")
    out = Path(path)
    d = _report_dict(report)
    direct = _direct_evidence(ctx, image_datasets, research=not include_identifiers) if engine == "auto" else None
    evidence: list[Any] = []
    if direct is not None:
        image_series_uid, study_uid, modality = direct[0].series_uid, direct[0].study_uid, direct[0].modality
    else:
        evidence = _load_evidence(image_datasets, ctx, out)
        image_series_uid = str(evidence[0].SeriesInstanceUID)
        study_uid = str(getattr(evidence[0], "StudyInstanceUID", ""))
        modality = str(getattr(evidence[0], "Modality", ""))
    if derived_seg is not None:
        refs = derived_segment_references(derived_seg, image_series_uid)
    else:
        refs = _input_refs(seg_references, ctx, d, image_series_uid)
    digest = content_digest(d)

    def uid(*parts: Any) -> str:
        return result_uid(study_uid, image_series_uid, "sr", __version__, digest, *parts)

    groups, used = _groups(d, refs, uid)
    modality = modality or str((d.get("study") or {}).get("modality", "CT"))
    procedure = _PROCEDURES.get(modality, _PROCEDURES["CT"])
    device = (uid("device"), CREATOR, CREATOR, __version__)
    uids = {"series": uid("series"), "instance": uid("instance")}
    seg_evidence = {str(r["sop_instance_uid"]): r["dataset"] for r in used}
    if direct is not None:
        src, identity, sources = direct
        segs = [
            (str(s.SOPClassUID), str(s.SOPInstanceUID), str(s.StudyInstanceUID), str(s.SeriesInstanceUID))
            for s in seg_evidence.values()
        ]
        data = build_sr(
            src,
            identity,
            [*sources, *segs],
            groups,
            device=device,
            procedure=procedure,
            uids=uids,
            series_number=series_number,
            manufacturer=CREATOR,
            software_version=__version__,
            series_description=_SERIES_DESCRIPTION,
            coding_scheme=_coding_scheme(),
        )
    else:
        sr = _highdicom_sr(
            groups,
            [*evidence, *(getattr(s, "to_dataset", lambda s=s: s)() for s in seg_evidence.values())],
            device=device,
            procedure=procedure,
            uids=uids,
            series_number=series_number,
            version=__version__,
        )
        if not include_identifiers:
            deidentify(sr)
        buf = io.BytesIO()
        sr.save_as(buf)
        data = buf.getvalue()
    atomic_write_bytes(out, data)
    logger.info("wrote DICOM SR %s (%d measurement groups, %d referencing a segment)", out, len(groups), len(used))
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
    suvbw = hd.sr.CodedConcept(*_SUVBW_CODE)
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
        vol_ml = _value(vol, _VOLUME_UNITS, p, f"volume of '{tracking}'") if vol is not None else None
        if tracking == _LIVER_ID:
            result["liver_volume_ml"] = vol_ml
            result["liver_referenced_segment"] = _segment_of(g)
            result.update(_mr_signal_of(g))
        elif tracking == _TUMOUR_ID:
            tumour_group = True
            result["tumor_volume_ml"] = vol_ml
            inv = _first(g, involvement)
            if inv is not None:
                result["involvement_percent"] = float(inv.value)
        elif tracking == _REMNANT_ID:
            result["remnant_volume_ml"] = vol_ml
        elif tracking in (_PET_ID, _PET_WB_ID):
            prefix = "" if tracking == _PET_ID else "whole_body_"
            for key, code in (("sretv_ml", SRETV_CODE), ("tlsre", TLSRE_CODE)):
                item = _first(g, hd.sr.CodedConcept(*code))
                result[prefix + key] = float(item.value) if item is not None else None
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
                in_liver = any(_site_in_liver(getattr(s, "value", s), codes.SCT.Liver) for s in sites)
                location = "intrahepatic" if in_liver or not sites else "extrahepatic"
            lesion: dict[str, Any] = {"id": lid, "location": location, "label": tracking, "volume_ml": vol_ml}
            for key, code in (
                ("longest_axial_diameter_mm", codes.SCT.LongAxis),
                ("short_axis_diameter_mm", codes.SCT.ShortAxis),
                ("max_3d_diameter_mm", codes.SCT.Diameter),
            ):
                item = _first(g, code)
                lesion[key] = _value(item, _LENGTH_UNITS, p, f"{code.meaning} of '{tracking}'") if item else None
            suvs = {str(getattr(m.derivation, "value", "")): m for m in g.get_measurements(name=suvbw)}
            for key, derivation in _SUV_KEYS:
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

"""The SR dataset built with highdicom: netlm's TID 1500 document as highdicom's Comprehensive 3D SR.

One concept: the highdicom path of :func:`netlm_imaging.report.sr_write.write_sr`
(``engine="highdicom"``, and sources that are not the folder scan's series).
:func:`load_evidence` reads the source image headers highdicom lists as
evidence; :func:`highdicom_sr` builds the document from the measurement groups
of :mod:`.sr_groups` -- the reference the direct encoder (:mod:`._sr_writer`) is
tested against. highdicom is imported only when one of them runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, UnsupportedError
from .sr_template import SERIES_DESCRIPTION, coding_scheme

__all__ = ["highdicom_sr", "load_evidence"]


def load_evidence(image_datasets: Sequence[Any] | None, ctx: Any, path: Path) -> list[Any]:
    """The source image headers the SR lists as evidence (``image_datasets``, else ``ctx``'s image files).

    Raises
    ------
    UnsupportedError
        No DICOM source images (a NIfTI/NRRD study); ``path`` is the SR being written.
    InputError
        A source image header cannot be read.
    """
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


def highdicom_sr(
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
    sr.SeriesDescription = SERIES_DESCRIPTION
    sr.SoftwareVersions = version
    scheme = Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName, scheme.CodingSchemeResponsibleOrganization = coding_scheme()
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr

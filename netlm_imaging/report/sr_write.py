"""Writing netlm's DICOM SR: a report's TID 1500 Measurement Report to a file.

One concept: :func:`write_sr`, which takes the source series (the folder scan's
facts for the direct encoder :mod:`._sr_writer`, or the image headers for
:mod:`.sr_highdicom`), the segments the groups reference
(:mod:`.sr_segment_refs`) and the measurement groups (:mod:`.sr_groups`),
names the document's UIDs after the measured content (:func:`content_digest`,
so a re-run gives the same SOP Instance UID) and writes it atomically. The
document's content is described in :mod:`netlm_imaging.report.dicom_sr`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ._sr_writer import build_sr
from .sr_groups import measurement_groups
from .sr_highdicom import highdicom_sr, load_evidence
from .sr_segment_refs import derived_segment_references, input_refs
from .sr_template import PROCEDURES, SERIES_DESCRIPTION, coding_scheme

__all__ = ["content_digest", "write_sr"]

logger = logging.getLogger(__name__)


def _report_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def content_digest(d: Mapping[str, Any]) -> str:
    """Digest of a report's measured content (names the SR / SEG UIDs; no run times, no identifiers)."""
    import hashlib
    import json

    keep = {k: d.get(k) for k in ("liver", "tumor", "involvement_percent", "remnant", "lesions", "pet")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


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
        evidence = load_evidence(image_datasets, ctx, out)
        image_series_uid = str(evidence[0].SeriesInstanceUID)
        study_uid = str(getattr(evidence[0], "StudyInstanceUID", ""))
        modality = str(getattr(evidence[0], "Modality", ""))
    if derived_seg is not None:
        refs = derived_segment_references(derived_seg, image_series_uid)
    else:
        refs = input_refs(seg_references, ctx, d, image_series_uid)
    digest = content_digest(d)

    def uid(*parts: Any) -> str:
        return result_uid(study_uid, image_series_uid, "sr", __version__, digest, *parts)

    groups, used = measurement_groups(d, refs, uid)
    modality = modality or str((d.get("study") or {}).get("modality", "CT"))
    procedure = PROCEDURES.get(modality, PROCEDURES["CT"])
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
            series_description=SERIES_DESCRIPTION,
            coding_scheme=coding_scheme(),
        )
    else:
        sr = highdicom_sr(
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

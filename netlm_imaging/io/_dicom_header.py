"""The pydicom header reader: one file's :class:`~._dicom_info.DicomFileInfo` from a pydicom parse.

One concept: every file the raw-byte reader (:mod:`._dicom_fast`) declines (SEG, RTSTRUCT,
Enhanced images, big endian, deflate, unusual or malformed values) is parsed by pydicom
(``defer_size`` so that PixelData is skipped) with all its checks
(:func:`_read_header_pydicom`): per-frame geometry, what a SEG or RTSTRUCT references, the
file's kind and its PixelData span. Also the transfer syntax of a pydicom dataset
(:func:`transfer_syntax_of`, :func:`with_transfer_syntax`), which the pixel readers need too.

A file whose first bytes say it is not DICOM is skipped (logged at INFO) without importing
pydicom. A file that claims to be DICOM but cannot be read (a ``.dcm`` file without a DICOM
header, a damaged ``DICM`` marker before an intact file meta group, an image with PixelData
but Rows or Columns 0 or absent, a header that ends before PixelData) raises
:class:`~netlm_imaging.errors.DicomError` naming it; a zero-byte file that is not desktop
litter is an interrupted copy and raises too. A file shorter than its declared PixelData
length is flagged ``truncated``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import DicomError, ResourceLimitError, UnsupportedError
from ._dicom_fast import _UNDEFINED_LENGTH
from ._dicom_files import _damaged, _is_litter_name, _looks_like_dicom
from ._dicom_info import (
    _NON_IMAGE_SOP_PREFIXES,
    _PIXEL_SOP_CLASSES,
    IMAGE,
    OTHER,
    RTSTRUCT,
    SEG,
    DicomFileInfo,
    FrameGeometry,
)
from ._inflate import DEFLATED_TS
from ._inflate import dcmread as bounded_dcmread
from .formats import LABELMAP_SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS, SEG_SOP_CLASS

__all__ = ["transfer_syntax_of", "with_transfer_syntax"]

logger = logging.getLogger(__name__)


#: Elements above this size are not read while scanning headers (bytes).
_DEFER_SIZE = 4096

#: Float Pixel Data and Double Float Pixel Data: parametric maps only, never in CT/MR/PET image storage.
_FLOAT_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009})


def transfer_syntax_of(ds: Any) -> str:
    """The dataset's TransferSyntaxUID; for a file without file meta (an old export read with ``force``)
    the encoding pydicom found: implicit VR little endian, explicit VR little or big endian. A Part-10
    file (with its preamble) that lacks it is damaged and gives ``""``."""
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "") or "") if meta else ""
    if uid or getattr(ds, "preamble", None) is not None:  # a Part-10 file without its syntax is damaged
        return uid
    encoding = getattr(ds, "original_encoding", (None, None))
    if encoding == (True, True):
        return "1.2.840.10008.1.2"
    if encoding == (False, True):
        return "1.2.840.10008.1.2.1"
    if encoding == (False, False):
        return "1.2.840.10008.1.2.2"
    return ""


def with_transfer_syntax(ds: Any) -> Any:
    """``ds`` with a file meta TransferSyntaxUID (:func:`transfer_syntax_of`), so pydicom can decode its pixels."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return ds
    uid = transfer_syntax_of(ds)
    if uid:
        from pydicom.dataset import FileMetaDataset

        if meta is None:
            ds.file_meta = meta = FileMetaDataset()
        meta.TransferSyntaxUID = uid
    return ds


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _first_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _frame_geometry(ds: Any) -> tuple[FrameGeometry, ...]:
    """Per-frame geometry of a single-frame or an Enhanced multi-frame image."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return (
            FrameGeometry(
                position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
                orientation=_floats(ds.get("ImageOrientationPatient"), 6),
                pixel_spacing=_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
                slope=_slope(ds.get("RescaleSlope")),
                intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0),
            ),
        )
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")

    def group(item: Any, keyword: str) -> Any:
        found = _first_item(item, keyword) if item is not None else None
        if found is None and shared is not None:
            found = _first_item(shared, keyword)
        return found

    frames = []
    for index, item in enumerate(per_frame):
        pos = group(item, "PlanePositionSequence")
        ori = group(item, "PlaneOrientationSequence")
        meas = group(item, "PixelMeasuresSequence")
        pvt = group(item, "PixelValueTransformationSequence")
        content = _first_item(item, "FrameContentSequence") if item is not None else None
        frame_type = group(item, "MRImageFrameTypeSequence")
        temporal = content.get("TemporalPositionIndex") if content is not None else None
        frames.append(
            FrameGeometry(
                position=_floats(pos.get("ImagePositionPatient"), 3) if pos is not None else None,  # type: ignore[arg-type]
                orientation=_floats(ori.get("ImageOrientationPatient"), 6) if ori is not None else None,
                pixel_spacing=_floats(meas.get("PixelSpacing"), 2) if meas is not None else None,  # type: ignore[arg-type]
                slope=_slope(pvt.get("RescaleSlope")) if pvt is not None else 1.0,
                intercept=float(pvt.get("RescaleIntercept", 0.0) or 0.0) if pvt is not None else 0.0,
                frame_index=index,
                temporal_position=int(temporal) if temporal is not None else None,
                frame_type=tuple(str(t).upper() for t in frame_type.get("FrameType") or ())
                if frame_type is not None
                else (),
            )
        )
    return tuple(frames)


def _seg_references(ds: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(series UIDs, SOP instance UIDs, FrameOfReference UIDs) a SEG references.

    SOP instances come from the Common Instance Reference module
    (ReferencedSeriesSequence), which lists every instance the SEG was
    derived from (PS3.3 C.12.2); the per-frame Derivation Image Sequences,
    slow to walk (pydicom parses every frame's functional groups: ~0.3 s for
    200 frames), are read only when that module names no instance.
    """
    from ._seg_fast import referenced_instances

    raw = referenced_instances(ds)  # from the raw bytes: no pydicom dataset per referenced instance
    series: list[str] = list(raw[0]) if raw is not None else []
    sops: list[str] = list(raw[1]) if raw is not None else []
    for ref in (ds.get("ReferencedSeriesSequence") or []) if raw is None else []:
        if ref.get("SeriesInstanceUID"):
            series.append(str(ref.SeriesInstanceUID))
        for inst in ref.get("ReferencedInstanceSequence") or []:
            if inst.get("ReferencedSOPInstanceUID"):
                sops.append(str(inst.ReferencedSOPInstanceUID))
    if not sops:
        for item in ds.get("PerFrameFunctionalGroupsSequence") or []:
            for der in item.get("DerivationImageSequence") or []:
                for src in der.get("SourceImageSequence") or []:
                    if src.get("ReferencedSOPInstanceUID"):
                        sops.append(str(src.ReferencedSOPInstanceUID))
    for src in ds.get("SourceImageSequence") or []:
        if src.get("ReferencedSOPInstanceUID"):
            sops.append(str(src.ReferencedSOPInstanceUID))
    fors = [str(ds.FrameOfReferenceUID)] if ds.get("FrameOfReferenceUID") else []
    return tuple(dict.fromkeys(series)), tuple(dict.fromkeys(sops)), tuple(fors)


def _rtstruct_references(ds: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(series UIDs, SOP instance UIDs, FrameOfReference UIDs) an RTSTRUCT references.

    The images are those of RTReferencedSeriesSequence; without it, those its contours name
    (ContourImageSequence of each contour).
    """
    series: list[str] = []
    sops: list[str] = []
    fors: list[str] = []
    for rfor in ds.get("ReferencedFrameOfReferenceSequence") or []:
        if rfor.get("FrameOfReferenceUID"):
            fors.append(str(rfor.FrameOfReferenceUID))
        for study in rfor.get("RTReferencedStudySequence") or []:
            for ser in study.get("RTReferencedSeriesSequence") or []:
                if ser.get("SeriesInstanceUID"):
                    series.append(str(ser.SeriesInstanceUID))
                for img in ser.get("ContourImageSequence") or []:
                    if img.get("ReferencedSOPInstanceUID"):
                        sops.append(str(img.ReferencedSOPInstanceUID))
    if not series and not sops:  # no RTReferencedStudySequence (Type 3, rt-utils #33): the contours' own images
        for rc in ds.get("ROIContourSequence") or []:
            for contour in rc.get("ContourSequence") or []:
                for img in contour.get("ContourImageSequence") or []:
                    if img.get("ReferencedSOPInstanceUID"):
                        sops.append(str(img.ReferencedSOPInstanceUID))
    for roi in ds.get("StructureSetROISequence") or []:
        if roi.get("ReferencedFrameOfReferenceUID"):
            fors.append(str(roi.ReferencedFrameOfReferenceUID))
    return tuple(dict.fromkeys(series)), tuple(dict.fromkeys(sops)), tuple(dict.fromkeys(fors))


def _kind(sop_class_uid: str, ds: Any) -> str:
    if sop_class_uid in (SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS):
        return SEG
    if sop_class_uid == RTSTRUCT_SOP_CLASS:
        return RTSTRUCT
    if sop_class_uid.startswith(_NON_IMAGE_SOP_PREFIXES):
        return OTHER
    if ds.get("Rows") and ds.get("Columns") and ("PixelData" in ds or 0x7FE00010 in ds._dict):
        return IMAGE
    return OTHER


def _pixel_data_span(ds: Any) -> tuple[int | None, int | None]:
    raw = ds._dict.get(0x7FE00010)
    tell = getattr(raw, "value_tell", None)
    length = getattr(raw, "length", None)
    if tell is None or length is None or length == _UNDEFINED_LENGTH:
        return None, None
    return int(tell), int(length)


def _slope(value: Any) -> float:
    """RescaleSlope as stored: 1 when absent or empty; a stored 0 is kept (the series reader warns and uses 1)."""
    if value is None or value == "":
        return 1.0
    return float(value)


def _read_header_pydicom(path: Path) -> DicomFileInfo | None:
    """:func:`read_header` through a full pydicom header parse (every file the fast path declines).

    The first bytes decide first: a file with neither a ``DICM`` marker nor a
    leading DICOM group (a NIfTI, NRRD or any other non-DICOM file) is skipped
    or refused as damaged without importing pydicom (0.1 s in a fresh process).
    """
    parsed = _pydicom_dataset(path)
    if parsed is None:
        return None
    ds, size = parsed
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
    kind = _kind(sop_class, ds)
    _check_pixel_header(path, ds, sop_class, kind)
    offset, length = _pixel_data_span(ds)
    if meta is not None and str(meta.get("TransferSyntaxUID", "")) == DEFLATED_TS:
        offset = length = None  # offsets into the inflated stream, not the file: no raw reads, no size check
    truncated = offset is not None and length is not None and size < offset + length
    refs, labels, frames = _content_facts(ds, kind)
    try:
        series_number = int(ds.get("SeriesNumber")) if ds.get("SeriesNumber") not in (None, "") else None
    except (TypeError, ValueError):
        series_number = None
    image_type = ds.get("ImageType") or ()
    if isinstance(image_type, str):
        image_type = (image_type,)
    return DicomFileInfo(
        path=path,
        kind=kind,
        sop_class_uid=sop_class,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        series_number=series_number,
        image_type=tuple(str(t).upper() for t in image_type),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        bits_allocated=int(ds.get("BitsAllocated", 0) or 0),
        bits_stored=int(ds.get("BitsStored", 0) or 0),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        has_modality_lut_sequence="ModalityLUTSequence" in ds,
        transfer_syntax_uid=transfer_syntax_of(ds),
        frames=frames,
        pixel_data_offset=offset,
        pixel_data_length=length,
        truncated=truncated,
        referenced_series_uids=refs[0],
        referenced_sop_uids=refs[1],
        referenced_frame_of_reference_uids=refs[2],
        segment_labels=labels,
        acquisition_date=_ds_text(ds, "AcquisitionDate"),
        acquisition_time=_ds_text(ds, "AcquisitionTime"),
        acquisition_datetime=_ds_text(ds, "AcquisitionDateTime"),
        decay_factor=_ds_float(ds, "DecayFactor"),
        acquisition_number=_ds_int(ds, "AcquisitionNumber"),
        temporal_position=_ds_int(ds, "TemporalPositionIdentifier"),
        convolution_kernel=_ds_multi_text(ds, "ConvolutionKernel"),
        slice_thickness=_ds_float(ds, "SliceThickness"),
        echo_number=_ds_single_int(ds, "EchoNumbers"),
        echo_time=_ds_single(ds, "EchoTime"),
        diffusion_b_value=_ds_single(ds, "DiffusionBValue"),
        trigger_time=_ds_single(ds, "TriggerTime"),
        temporal_positions=_ds_int(ds, "NumberOfTemporalPositions"),
        dataset=ds if kind == SEG else None,
    )


def _pydicom_dataset(path: Path) -> tuple[Any, int] | None:
    """The header dataset read by pydicom and the file's size; None for a file to skip (logged).

    Raises
    ------
    DicomError
        A zero-byte file, a damaged or truncated DICOM file.
    """
    size = path.stat().st_size
    if size == 0 and _is_litter_name(path):
        logger.info("skipping zero-byte file %s", path)
        return None
    if size == 0:
        raise DicomError(
            f"{path}: zero-byte file (an interrupted copy or export); re-export the series or delete the file."
        )
    is_dicom, force, damaged = _looks_like_dicom(path)
    if not is_dicom:
        if damaged:
            raise _damaged(path, damaged)
        logger.info("skipping non-DICOM file %s", path)
        return None
    from pydicom.errors import InvalidDicomError

    try:
        ds = bounded_dcmread(path, defer_size=_DEFER_SIZE, force=force)
    except ResourceLimitError:  # a deflate bomb or an oversized header: say so
        raise
    except InvalidDicomError:
        if force:
            if damaged:
                raise _damaged(path, damaged) from None
            logger.info("skipping non-DICOM file %s", path)
            return None
        raise DicomError(f"{path}: not a readable DICOM file; re-export it or remove it from the folder.") from None
    except Exception as exc:  # pydicom raises many types on cut files
        raise DicomError(
            f"{path}: DICOM header is truncated or corrupt ({type(exc).__name__}); re-export the series."
        ) from None
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
    if force and not sop_class and "Rows" not in ds:
        if damaged:
            raise _damaged(path, damaged)
        logger.info("skipping non-DICOM file %s", path)
        return None
    if not force and not sop_class and len(ds) == 0:
        raise DicomError(  # a 'DICM' preamble with a cut file meta group and nothing after it
            f"{path}: DICOM file is truncated or corrupt (a DICOM preamble but no dataset after it); "
            "re-export the series or delete the file."
        )
    return ds, size


def _check_pixel_header(path: Path, ds: Any, sop_class: str, kind: str) -> None:
    """Refuse an image without integer Pixel Data (float pixels, a cut header) or with a 0 matrix size."""
    has_pixels = 0x7FE00010 in ds._dict
    if sop_class in _PIXEL_SOP_CLASSES and not has_pixels and _FLOAT_PIXEL_TAGS & set(ds._dict):
        raise UnsupportedError(
            f"{path}: image stored as Float Pixel Data (7FE0,0008/0009), which CT, MR and PET image storage does "
            "not allow (integers with Rescale Slope), probably written by a converter. Export the scanner's "
            "original series."
        )
    if sop_class in _PIXEL_SOP_CLASSES and not has_pixels:
        raise DicomError(
            f"{path}: DICOM file is truncated or corrupt (header ends before PixelData); re-export the series."
        )
    if kind == OTHER and has_pixels and not sop_class.startswith(_NON_IMAGE_SOP_PREFIXES):
        # an image whose matrix size is missing or 0 would otherwise vanish from its series
        raise DicomError(
            f"{path}: image with Rows {int(ds.get('Rows', 0) or 0)} x Columns {int(ds.get('Columns', 0) or 0)}: "
            "the header is corrupt; re-export the series, or remove the file from the folder."
        )


def _content_facts(
    ds: Any, kind: str
) -> tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], tuple[str, ...], tuple[FrameGeometry, ...]]:
    """What a SEG / RTSTRUCT references and names (series, SOP and frame UIDs; labels), an image's frames."""
    refs: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    labels: tuple[str, ...] = ()
    frames: tuple[FrameGeometry, ...] = ()
    if kind == SEG:
        refs = _seg_references(ds)
        labels = tuple(str(s.get("SegmentLabel", "")) for s in ds.get("SegmentSequence") or [])
    elif kind == RTSTRUCT:
        refs = _rtstruct_references(ds)
        labels = tuple(str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence") or [])
    elif kind == IMAGE:
        frames = _frame_geometry(ds)
    return refs, labels, frames


def _ds_text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _ds_multi_text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _ds_int(ds: Any, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _ds_single(ds: Any, keyword: str) -> float | None:
    """A numeric element with exactly one value, else None (absent, empty, several values, not a number)."""
    from pydicom.multival import MultiValue

    value = ds.get(keyword)
    if value is None or value == "" or isinstance(value, (list, tuple, MultiValue)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ds_single_int(ds: Any, keyword: str) -> int | None:
    value = _ds_single(ds, keyword)
    return int(value) if value is not None and value.is_integer() else None


def _ds_float(ds: Any, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None

"""The first source image's header as the DICOM writers need it, read without pydicom when it is plain.

The derived SEG and the SR copy the Patient and Study modules and the
acquisition equipment of the source images, and take the grid facts (rows,
columns, orientation, pixel spacing) from the first of them. For a Part-10
file in Explicit VR Little Endian this module reads the top-level elements
from the raw bytes and hands them on encoded (:class:`RawHeader`), so that
writing the outputs of a study does not import pydicom (about 0.15 s of a
fresh ``netlm analyze --sr``). Anything else (implicit VR, big endian,
deflate, a malformed header) gives ``None`` and the writers read the header
with pydicom.

The research copy's identity attributes are made here too
(:func:`research_identity`): the result of the de-identification of
:func:`netlm_imaging.report.identity.deidentify` (dicognito, then the Basic
Profile removals) on these attributes, without pydicom. Only attributes whose
treatment is a removal, an emptying, a kept UID, a date shift or a fixed value
are handled; an attribute dicognito would replace by a made-up value (a
person name, an ID, a station name) or a non-empty sequence makes it return
``None`` and the caller de-identifies with dicognito
(tests/test_seg_writer.py and tests/test_sr_writer.py compare both).
"""

from __future__ import annotations

import datetime
import logging
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import _dicom_bytes as B

logger = logging.getLogger(__name__)

__all__ = [
    "RawHeader",
    "SourceFacts",
    "identity_elements",
    "identity_elements_pydicom",
    "read_raw_header",
    "research_identity",
    "source_identity",
]

_LONG = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS"}
    | {b"ST", b"TM", b"UI", b"UL", b"US"}
)
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF


class _NotPlain(Exception):
    """The header is not plain Explicit VR Little Endian: read it with pydicom."""


class RawHeader:
    """Top-level elements of a source image header: tag -> (VR, whole encoded element)."""

    def __init__(self, elements: dict[int, tuple[str, bytes]]) -> None:
        self.elements = elements

    def __contains__(self, tag: int) -> bool:
        return tag in self.elements

    def value(self, tag: int) -> bytes | None:
        """The raw value bytes of a top-level element (None when absent)."""
        found = self.elements.get(tag)
        if found is None:
            return None
        vr, enc = found
        return enc[12:] if vr.encode() in _LONG else enc[8:]

    def text(self, tag: int, default: str | None = None) -> str | None:
        """A text value as pydicom gives it (trailing spaces and NULs removed)."""
        raw = self.value(tag)
        return default if raw is None else raw.decode("latin-1").rstrip(" \0")

    def numbers(self, tag: int) -> list[float] | None:
        """The values of a DS / IS element."""
        raw = self.text(tag)
        if not raw:
            return None
        return [float(v) for v in raw.split("\\")]

    def us(self, tag: int) -> int | None:
        raw = self.value(tag)
        return None if raw is None or len(raw) < 2 else int(struct.unpack("<H", raw[:2])[0])


def _skip_items(data: bytes, pos: int, depth: int = 0) -> int:
    """Position after an undefined-length sequence whose items start at ``pos``."""
    if depth > 16:
        raise _NotPlain
    while True:
        if pos + 8 > len(data):
            raise _NotPlain
        group, number, length = struct.unpack_from("<HHI", data, pos)
        pos += 8
        if (group, number) == (0xFFFE, 0xE0DD):
            return pos
        if (group, number) != (0xFFFE, 0xE000):
            raise _NotPlain
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an item of undefined length
            if pos + 8 > len(data):
                raise _NotPlain
            group, number = struct.unpack_from("<HH", data, pos)
            if (group, number) == (0xFFFE, 0xE00D):
                pos += 8
                break
            pos = _element_end(data, pos, depth + 1)


def _element_end(data: bytes, pos: int, depth: int = 0) -> int:
    vr = data[pos + 4 : pos + 6]
    if vr in _LONG:
        (length,) = struct.unpack_from("<I", data, pos + 8)
        start = pos + 12
        if length == _UNDEFINED:
            if vr not in (b"SQ", b"UN"):
                raise _NotPlain
            return _skip_items(data, start, depth)
    elif vr in _SHORT:
        (length,) = struct.unpack_from("<H", data, pos + 6)
        start = pos + 8
    else:
        raise _NotPlain
    if start + length > len(data):
        raise _NotPlain
    return start + length


def read_raw_header(path: str | Path) -> RawHeader | None:
    """The top-level elements (up to PixelData) of a Part-10 Explicit VR Little Endian file, or None."""
    try:
        data = Path(path).read_bytes()
        if data[128:132] != b"DICM":
            return None
        pos, syntax = 132, ""
        while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
            end = _element_end(data, pos)
            if struct.unpack_from("<HH", data, pos) == (0x0002, 0x0010):
                syntax = data[pos + 8 : end].decode("latin-1").rstrip(" \0")
            pos = end
        if syntax != _EXPLICIT_LE:
            return None
        elements: dict[int, tuple[str, bytes]] = {}
        previous = -1
        while pos + 8 <= len(data):
            tag = B.tag_of(data[pos : pos + 4])
            if tag <= previous or tag >> 16 == 0xFFFE:
                return None
            if tag == _PIXEL_DATA:
                break
            end = _element_end(data, pos)
            elements[tag] = (data[pos + 4 : pos + 6].decode("latin-1"), data[pos:end])
            previous, pos = tag, end
        return RawHeader(elements)
    except (OSError, _NotPlain, struct.error, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------- research copies

#: dicognito's own removals (its UnwantedElementsStripper) among what the writers copy.
_DICOGNITO_REMOVED = frozenset(
    {"BranchOfService", "Occupation", "MedicalRecordLocator", "MilitaryRank", "PatientInsurancePlanCodeSequence"}
    | {"PatientReligiousPreference", "PatientTelecomInformation", "PatientTelephoneNumbers"}
    | {"ReferencedPatientPhotoSequence", "ResponsibleOrganization"}
)
#: dicognito's made-up replacements (IDs, station name): not reproduced here.
_DICOGNITO_REPLACED = frozenset(
    {"AccessionNumber", "OtherPatientIDs", "FillerOrderNumberImagingServiceRequest", "FillerOrderNumberProcedure"}
    | {"PatientID", "PerformedProcedureStepID", "PlacerOrderNumberImagingServiceRequest", "PlacerOrderNumberProcedure"}
    | {"RequestedProcedureID", "ScheduledProcedureStepID", "StationName", "StudyID", "PatientAddress"}
    | {"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName"}
)
#: dicognito's fixed values.
_DICOGNITO_FIXED = {"RequestingService": "", "CurrentPatientLocation": ""}


def date_offset_hours(seed: str) -> int:
    """dicognito's date shift for ``seed`` (its ``Anonymizer``: 62 to 730 days back, from its Randomizer)."""
    from dicognito.randomizer import Randomizer  # pure Python (hashlib); no pydicom

    minimum, maximum = 62 * 24, 730 * 24
    return -(Randomizer(seed).to_int("date_offset") % (maximum - minimum) + minimum)


def _shift(value: str, hours: int) -> str:
    """dicognito's ``DateTimeAnonymizer._shift_datetime``."""
    fmt = "%Y%m%d%H"[: len(value) - 2]
    old = datetime.datetime.strptime(value[:10], fmt)  # dicognito's naive arithmetic
    new = (old + datetime.timedelta(hours=hours)).strftime(fmt)
    return new + value[len(new) :]


def research_identity(
    copied: Iterable[tuple[int, str, str, bytes]],
    *,
    emptied: Iterable[int],
    removed: Iterable[str],
    seed: str,
) -> dict[int, bytes] | None:
    """The de-identified top-level identity elements, or None when dicognito must do it.

    Parameters
    ----------
    copied : iterable of (tag, keyword, VR, encoded element)
        The top-level attributes the writer put in (copied from the source and its own dates).
    emptied : iterable of int
        Tags the Basic Profile empties (Z).
    removed : iterable of str
        Keywords the Basic Profile removes (X).
    seed : str
        dicognito's seed (the Study Instance UID).
    """
    empty, gone = set(emptied), set(removed) | _DICOGNITO_REMOVED
    items = [(tag, kw, vr, enc) for tag, kw, vr, enc in copied if kw not in gone]
    by_kw = {kw: (tag, vr, enc) for tag, kw, vr, enc in items}

    def text_of(vr: str, enc: bytes) -> str:
        value = enc[12:] if vr.encode() in _LONG else enc[8:]
        return value.decode("latin-1").rstrip(" \0")

    # dicognito shifts every dated attribute (and the time of the same name) before the profile empties any
    hours: int | None = None
    shifted: dict[str, str] = {}
    for _, kw, vr, enc in items:
        if vr not in ("DA", "DT") or not text_of(vr, enc):
            continue
        value = text_of(vr, enc)
        if "\\" in value:
            return None
        hours = date_offset_hours(seed) if hours is None else hours
        if vr == "DT":
            shifted[kw] = _shift(value, hours)
            continue
        time_kw = kw.replace("Date", "Time")
        paired = by_kw.get(time_kw)
        time = text_of(paired[1], paired[2]) if paired is not None else ""
        if "\\" in time:
            return None
        new = _shift(value.replace(".", "") + time.replace(":", ""), hours)
        shifted[kw] = new[:8]
        if time:
            shifted[time_kw] = new[8:]
    out: dict[int, bytes] = {}
    for tag, kw, vr, enc in items:
        if tag in empty:
            out[tag] = B.element(tag, vr, b"")
        elif kw in shifted:
            out[tag] = B.text(tag, vr, shifted[kw])
        elif vr == "SQ":
            if enc[12:]:  # a sequence dicognito would walk: not reproduced here
                return None
            out[tag] = enc
        elif kw in _DICOGNITO_FIXED:
            out[tag] = B.text(tag, vr, _DICOGNITO_FIXED[kw])
        elif vr == "PN" or kw in _DICOGNITO_REPLACED:
            if text_of(vr, enc):
                return None
            out[tag] = enc
        else:
            out[tag] = enc  # UIDs (Retain UIDs Option) and everything dicognito keeps
    return out


# ----------------------------------------------------------------------------- the source, as the writers use it

#: Attributes of the acquisition equipment of the source (highdicom's ``ContributingEquipment.for_image_acquisition``).
_EQUIPMENT_TAGS = {
    "Manufacturer": 0x00080070,
    "InstitutionName": 0x00080080,
    "InstitutionAddress": 0x00080081,
    "StationName": 0x00081010,
    "InstitutionalDepartmentName": 0x00081040,
    "ManufacturerModelName": 0x00081090,
    "DeviceSerialNumber": 0x00181000,
    "SoftwareVersions": 0x00181020,
}
_CHARSET, _STUDY_UID = 0x00080005, 0x0020000D
_TYPE2 = {  # type 2 attributes the writers always carry (empty when the source lacks them)
    "StudyDate": 0x00080020,
    "StudyTime": 0x00080030,
    "AccessionNumber": 0x00080050,
    "ReferringPhysicianName": 0x00080090,
    "PatientName": 0x00100010,
    "PatientID": 0x00100020,
    "PatientBirthDate": 0x00100030,
    "PatientSex": 0x00100040,
    "StudyID": 0x00200010,
}
_TYPE2_VR = {"StudyDate": "DA", "StudyTime": "TM", "AccessionNumber": "SH", "ReferringPhysicianName": "PN"} | {
    "PatientName": "PN",
    "PatientID": "LO",
    "PatientBirthDate": "DA",
    "PatientSex": "CS",
    "StudyID": "SH",
}


class SourceFacts:
    """Grid and identification facts of the first source image (from a :class:`RawHeader` or a pydicom Dataset)."""

    def __init__(self, header: Any) -> None:
        if isinstance(header, RawHeader):
            h = header
            self.rows, self.columns = h.us(0x00280010) or 0, h.us(0x00280011) or 0
            frames = h.numbers(0x00280008)
            self.frames = int(frames[0]) if frames else 1
            self.orientation = h.numbers(0x00200037)
            self.pixel_spacing = h.numbers(0x00280030)
            thickness, spacing = h.numbers(0x00180050), h.numbers(0x00180088)
            self.slice_thickness = thickness[0] if thickness else None
            self.spacing_between_slices = spacing[0] if spacing else None
            (
                self.modality,
                self.sop_instance_uid,
                self.study_uid,
                self.series_uid,
                self.frame_of_reference_uid,
                self.position_reference,
            ) = (h.text(t, "") or "" for t in (0x00080060, 0x00080018, _STUDY_UID, 0x0020000E, 0x00200052, 0x00201040))
            self.lossy = h.text(0x00282110, "") or "00"
            return
        ds = header

        def floats(kw: str) -> list[float] | None:
            v = ds.get(kw)
            if v is None or v == "":
                return None
            return [float(x) for x in v] if not isinstance(v, str | float | int) else [float(v)]

        self.rows, self.columns = int(ds.Rows), int(ds.Columns)
        self.frames = int(ds.get("NumberOfFrames", 1) or 1)
        self.orientation, self.pixel_spacing = floats("ImageOrientationPatient"), floats("PixelSpacing")
        thickness, spacing = floats("SliceThickness"), floats("SpacingBetweenSlices")
        self.slice_thickness = thickness[0] if thickness else None
        self.spacing_between_slices = spacing[0] if spacing else None
        self.modality = str(ds.get("Modality", "") or "")
        self.sop_instance_uid = str(ds.get("SOPInstanceUID", "") or "")
        self.study_uid = str(ds.get("StudyInstanceUID", "") or "")
        self.series_uid = str(ds.get("SeriesInstanceUID", "") or "")
        self.frame_of_reference_uid = str(ds.get("FrameOfReferenceUID", "") or "")
        self.position_reference = str(ds.get("PositionReferenceIndicator", "") or "")
        self.lossy = str(ds.get("LossyImageCompression", "") or "00")

    @property
    def usable(self) -> bool:
        """Single-frame, with orientation, pixel spacing and slice thickness (what the direct writers need)."""
        return bool(
            self.frames == 1
            and self.orientation is not None
            and len(self.orientation) == 6
            and self.pixel_spacing is not None
            and len(self.pixel_spacing) == 2
            and self.slice_thickness is not None
            and self.rows
            and self.columns
            and self.study_uid
            and self.lossy != "01"  # lossy sources: highdicom copies the ratio and method too
        )


def _equipment_item(parts: dict[str, bytes]) -> bytes | None:
    """The Contributing Equipment item of the acquisition equipment from encoded source elements (by keyword)."""
    manufacturer = parts.get("Manufacturer")
    if manufacturer is None or not manufacturer[8:].strip(b" \0"):
        return None
    elements = list(parts.values())
    elements.append(B.text(0x0018A003, "ST", "Acquisition equipment of the source image(s)"))
    elements.append(B.sequence(0x0040A170, [B.code_item("109101", "DCM", "Acquisition Equipment")]))
    ordered: list[bytes] = sorted(elements, key=B.tag_of)
    return b"".join(ordered)


def identity_elements(
    header: RawHeader, *, research: bool, date: str, time: str, removed: Iterable[str], emptied: Iterable[str]
) -> dict[int, bytes] | None:
    """The identity attributes of a derived object from a raw source header, encoded (None: use pydicom).

    The Patient and Study modules (:data:`~netlm_imaging.report.identity.PATIENT_STUDY_TAGS`), the
    character set, the dates of the object (``date``, ``time``) and the acquisition equipment, as
    highdicom copies them; for a research copy (``research``) de-identified as
    :func:`~netlm_imaging.report.identity.deidentify` does (None when that needs dicognito).
    """
    from .identity import PATIENT_STUDY_TAGS, deidentification_elements

    names = {tag: kw for kw, tag in PATIENT_STUDY_TAGS.items()}
    copied: dict[int, tuple[str, str, bytes]] = {}
    for kw, tag in _TYPE2.items():
        copied[tag] = (kw, _TYPE2_VR[kw], B.element(tag, _TYPE2_VR[kw], b""))
    for tag, (vr, enc) in header.elements.items():
        if tag in names:
            copied[tag] = (names[tag], vr, enc)
    own = {
        "InstanceCreationDate": (0x00080012, "DA", date),
        "InstanceCreationTime": (0x00080013, "TM", time),
        "ContentDate": (0x00080023, "DA", date),
        "ContentTime": (0x00080033, "TM", time),
    }
    for kw, (tag, vr, value) in own.items():
        copied[tag] = (kw, vr, B.text(tag, vr, value))
    equipment = {kw: header.elements[tag][1] for kw, tag in _EQUIPMENT_TAGS.items() if tag in header.elements}
    out: dict[int, bytes] = {}
    if (header.text(_CHARSET) or "").strip("\\ "):  # an empty one is the default repertoire: left out (Type 1C)
        out[_CHARSET] = header.elements[_CHARSET][1]
    if research:
        gone = set(removed)
        equipment = {kw: enc for kw, enc in equipment.items() if kw not in gone}
        station = equipment.get("StationName")
        if station is not None and station[8:].strip(b" \0"):
            return None  # dicognito replaces it by a made-up one
        emptied_tags = {_TYPE2[kw] for kw in emptied if kw in _TYPE2}
        values = research_identity(
            [(tag, kw, vr, enc) for tag, (kw, vr, enc) in copied.items()],
            emptied=emptied_tags,
            removed=gone,
            seed=header.text(_STUDY_UID) or "netlm",
        )
        if values is None:
            return None
        out.update(values)
        out.update(deidentification_elements())
    else:
        out.update({tag: enc for tag, (_, _, enc) in copied.items()})
    item = _equipment_item(equipment)
    out[0x0018A001] = B.sequence(0x0018A001, [item] if item is not None else [])
    return out


def identity_elements_pydicom(ds: object, *, research: bool, date: str, time: str) -> dict[int, bytes]:
    """:func:`identity_elements` from a pydicom header, de-identified by dicognito when ``research``."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    from ._hd_sources import empty_charset
    from ._seg_writer import equipment
    from .identity import copy_patient_study, deidentify

    src: Any = ds
    out = Dataset()
    if "SpecificCharacterSet" in src and not empty_charset(src):  # an empty one is the default repertoire
        out.SpecificCharacterSet = src.SpecificCharacterSet
    out.InstanceCreationDate, out.InstanceCreationTime = date, time
    for kw in _TYPE2:
        setattr(out, kw, "")
    copy_patient_study(out, src)
    out.ContentDate, out.ContentTime = date, time
    eq = equipment(src)
    out.ContributingEquipmentSequence = [eq] if eq is not None else []
    if research:
        deidentify(out, seed=str(getattr(src, "StudyInstanceUID", "") or "netlm"))
    encoded = {}
    for elem in out:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_data_element(fp, elem)
        encoded[int(elem.tag)] = bytes(fp.getvalue())
    return encoded


def source_identity(
    path: str | Path, *, research: bool, date: str, time: str
) -> tuple[SourceFacts, dict[int, bytes]] | None:
    """Facts and identity elements of the first source image; None when the direct writers do not apply.

    The raw header is used when it is plain and its identity needs no dicognito replacement; otherwise
    the header is read with pydicom and de-identified with dicognito.
    """
    from .identity import BASIC_PROFILE_EMPTIED, BASIC_PROFILE_REMOVED

    raw = read_raw_header(path)
    if raw is not None:
        facts = SourceFacts(raw)
        if not facts.usable:
            return None
        identity = identity_elements(
            raw, research=research, date=date, time=time, removed=BASIC_PROFILE_REMOVED, emptied=BASIC_PROFILE_EMPTIED
        )
        if identity is not None:
            logger.debug("%s: identity attributes taken from the raw header (%d elements)", path, len(identity))
            return facts, identity
        logger.debug("%s: an identity attribute needs dicognito's replacement: read with pydicom", path)
    else:
        logger.debug("%s: not a plain Explicit VR Little Endian header: read with pydicom", path)
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    facts = SourceFacts(ds)
    if not facts.usable:
        return None
    return facts, identity_elements_pydicom(ds, research=research, date=date, time=time)

"""The TID 1500 SR written directly: the document highdicom builds, encoded without highdicom.

:func:`netlm_imaging.report.sr_groups.measurement_groups` describes the report as
:class:`Group` items (codes as ``(value, scheme, meaning)`` tuples); this module
encodes them as highdicom's ``MeasurementReport`` / ``Comprehensive3DSR`` do
(the same content items in the same order, the same evidence and modules;
``tests/test_sr_writer.py`` compares both attribute by attribute). Importing
highdicom alone costs about 0.3 s and building the document another 0.3-1 s
at 40 lesions; this takes a few milliseconds.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _dicom_bytes as B

__all__ = ["Group", "Measurement", "build_sr"]

Code = tuple[str, str, str]

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"

_REL, _VT, _NAME = 0x0040A010, 0x0040A040, 0x0040A043
_CONCEPT_CODE, _TEXT_VALUE, _UID_VALUE = 0x0040A168, 0x0040A160, 0x0040A124
_MEASURED_VALUE, _UNITS, _FLOAT, _NUMERIC = 0x0040A300, 0x004008EA, 0x0040A161, 0x0040A30A
_CONTINUITY, _TEMPLATE, _CONTENT = 0x0040A050, 0x0040A504, 0x0040A730
_REF_SOP_SEQ, _REF_CLASS, _REF_INSTANCE, _REF_SEGMENT = 0x00081199, 0x00081150, 0x00081155, 0x0062000B
_MAPPING_RESOURCE, _TEMPLATE_ID = 0x00080105, 0x0040DB00

_LANGUAGE = ("121049", "DCM", "Language of Content Item and Descendants")
_EN_US = ("en-US", "RFC5646", "English (United States)")
_OBSERVER_TYPE, _DEVICE = ("121005", "DCM", "Observer Type"), ("121007", "DCM", "Device")
_DEVICE_UID, _DEVICE_NAME = ("121012", "DCM", "Device Observer UID"), ("121013", "DCM", "Device Observer Name")
_DEVICE_MAKER = ("121014", "DCM", "Device Observer Manufacturer")
_DEVICE_MODEL = ("121015", "DCM", "Device Observer Model Name")
_PROCEDURE = ("121058", "DCM", "Procedure reported")
_REPORT, _MEASUREMENTS = ("126000", "DCM", "Imaging Measurement Report"), ("126010", "DCM", "Imaging Measurements")
_GROUP, _TRACKING = ("125007", "DCM", "Measurement Group"), ("112039", "DCM", "Tracking Identifier")
_TRACKING_UID, _FINDING = ("112040", "DCM", "Tracking Unique Identifier"), ("121071", "DCM", "Finding")
_FINDING_SITE, _DERIVATION = ("363698007", "SCT", "Finding Site"), ("121401", "DCM", "Derivation")
_SEGMENT = ("121191", "DCM", "Referenced Segment")
_SOURCE_SERIES = ("121232", "DCM", "Source Series for Segmentation")


@dataclass(frozen=True)
class Measurement:
    """One NUM item: concept, value, UCUM unit and optional derivation."""

    name: Code
    value: float
    unit: Code
    derivation: Code | None = None


@dataclass(frozen=True)
class Group:
    """One measurement group: TID 1411 when it references a segment, TID 1501 otherwise.

    ``segment`` is ``(SOP Class UID, SOP Instance UID, segment number, source series UID)``.
    """

    tracking: str
    uid: str
    finding: Code
    measurements: list[Measurement]
    segment: tuple[str, str, int, str] | None = None
    sites: list[Code] = field(default_factory=list)


def _sorted_item(elements: Sequence[bytes]) -> bytes:
    """An item body from encoded elements in any order (sorted by tag, as the standard requires)."""
    ordered: list[bytes] = sorted(elements, key=B.tag_of)
    return b"".join(ordered)


def _code_seq(tag: int, code: Code) -> bytes:
    return B.sequence(tag, [B.code_item(*code)])


def _content_item(rel: str, vt: str, name: Code, *elements: bytes, children: Sequence[bytes] = ()) -> bytes:
    parts = [B.text(_REL, "CS", rel), B.text(_VT, "CS", vt), _code_seq(_NAME, name), *elements]
    if children:
        parts.append(B.sequence(_CONTENT, children))
    return _sorted_item(parts)


def _code(rel: str, name: Code, value: Code) -> bytes:
    return _content_item(rel, "CODE", name, _code_seq(_CONCEPT_CODE, value))


def _text(rel: str, name: Code, value: str) -> bytes:
    return _content_item(rel, "TEXT", name, B.element(_TEXT_VALUE, "UT", value.encode("utf-8")))


def _uidref(rel: str, name: Code, value: str) -> bytes:
    return _content_item(rel, "UIDREF", name, B.uid(_UID_VALUE, value))


def _template(tid: str) -> bytes:
    return B.sequence(_TEMPLATE, [B.text(_MAPPING_RESOURCE, "CS", "DCMR") + B.text(_TEMPLATE_ID, "CS", tid)])


def _container(rel: str | None, name: Code, children: Sequence[bytes], tid: str | None = None) -> bytes:
    parts = [B.text(_VT, "CS", "CONTAINER"), _code_seq(_NAME, name), B.text(_CONTINUITY, "CS", "CONTINUOUS")]
    if rel is not None:
        parts.append(B.text(_REL, "CS", rel))
    if tid is not None:
        parts.append(_template(tid))
    parts.append(B.sequence(_CONTENT, children))
    return _sorted_item(parts)


def _num(m: Measurement) -> bytes:
    value = B.sequence(
        _MEASURED_VALUE,
        [
            _code_seq(_UNITS, m.unit)
            + B.element(_FLOAT, "FD", struct.pack("<d", float(m.value)))
            + B.text(_NUMERIC, "DS", B.ds_number(m.value))
        ],
    )
    children = [_code("HAS CONCEPT MOD", _DERIVATION, m.derivation)] if m.derivation is not None else []
    return _content_item("CONTAINS", "NUM", m.name, value, children=children)


def _group(g: Group) -> bytes:
    items = [
        _text("HAS OBS CONTEXT", _TRACKING, g.tracking),
        _uidref("HAS OBS CONTEXT", _TRACKING_UID, g.uid),
        _code("CONTAINS", _FINDING, g.finding),
        *(_code("HAS CONCEPT MOD", _FINDING_SITE, site) for site in g.sites),
        *(_num(m) for m in g.measurements),
    ]
    if g.segment is not None:
        sop_class, sop_instance, number, series = g.segment
        ref = B.sequence(
            _REF_SOP_SEQ,
            [B.uid(_REF_CLASS, sop_class) + B.uid(_REF_INSTANCE, sop_instance) + B.us(_REF_SEGMENT, number)],
        )
        items.append(_content_item("CONTAINS", "IMAGE", _SEGMENT, ref))
        items.append(_uidref("CONTAINS", _SOURCE_SERIES, series))
    return _container("CONTAINS", _GROUP, items, "1411" if g.segment is not None else "1501")


def content_items(groups: Sequence[Group], device: tuple[str, str, str, str], procedure: Code) -> list[bytes]:
    """The items of the root Content Sequence (TID 1500); ``device`` is (UID, name, manufacturer, model)."""
    uid, name, maker, model = device
    return [
        _code("HAS CONCEPT MOD", _LANGUAGE, _EN_US),
        _code("HAS OBS CONTEXT", _OBSERVER_TYPE, _DEVICE),
        _uidref("HAS OBS CONTEXT", _DEVICE_UID, uid),
        _text("HAS OBS CONTEXT", _DEVICE_NAME, name),
        _text("HAS OBS CONTEXT", _DEVICE_MAKER, maker),
        _text("HAS OBS CONTEXT", _DEVICE_MODEL, model),
        _code("HAS CONCEPT MOD", _PROCEDURE, procedure),
        _container("CONTAINS", _MEASUREMENTS, [_group(g) for g in groups]),
    ]


def evidence_items(study_uid: str, evidence: Sequence[tuple[str, str, str, str]]) -> list[bytes]:
    """Current Requested Procedure Evidence items: evidence ``(class, instance, study, series)`` of the SR's study,
    grouped by series in order of appearance (as highdicom's ``collect_evidence``)."""
    series: dict[str, list[bytes]] = {}
    seen = set()
    for sop_class, sop_instance, study, series_uid in evidence:
        if sop_instance in seen or study != study_uid:
            continue
        seen.add(sop_instance)
        series.setdefault(series_uid, []).append(B.uid(_REF_CLASS, sop_class) + B.uid(_REF_INSTANCE, sop_instance))
    refs = [B.sequence(_REF_SOP_SEQ, sops) + B.uid(0x0020000E, s) for s, sops in series.items()]
    return [B.sequence(0x00081115, refs) + B.uid(0x0020000D, study_uid)]


def build_sr(
    src: Any,
    identity: dict[int, bytes],
    evidence: Sequence[tuple[str, str, str, str]],
    groups: Sequence[Group],
    *,
    device: tuple[str, str, str, str],
    procedure: Code,
    uids: dict[str, str],
    series_number: int,
    manufacturer: str,
    software_version: str,
    series_description: str,
    coding_scheme: tuple[str, str, str],
) -> bytes:
    """The Part-10 file of the SR.

    Parameters
    ----------
    src : SourceFacts
        The first source image's identification (:class:`~._source_header.SourceFacts`).
    identity : dict
        Tag -> encoded element of the Patient / Study modules, dates and equipment (de-identified for
        a research copy): :func:`~._source_header.identity_elements`.
    evidence : sequence of (SOP Class UID, SOP Instance UID, Study UID, Series UID)
        The source images then the referenced SEG.
    groups : sequence of Group
        The measurement groups.
    device : (UID, name, manufacturer, model name)
        The device observer.
    procedure : code
        Procedure reported.
    uids : dict
        ``series`` and ``instance`` UIDs.
    series_number : int
        Series Number.
    manufacturer, software_version, series_description : str
        Equipment and Series attributes.
    coding_scheme : (designator, name, responsible organisation)
        The private coding scheme of the document.
    """
    designator, scheme_name, responsible = coding_scheme
    own = [
        B.uid(0x00080016, COMPREHENSIVE_3D_SR),
        B.uid(0x00080018, uids["instance"]),
        B.text(0x00080060, "CS", "SR"),
        B.text(0x00080070, "LO", manufacturer),
        B.sequence(
            0x00080110,
            [
                B.text(0x00080102, "SH", designator)
                + B.text(0x00080115, "ST", scheme_name)
                + B.text(0x00080116, "ST", responsible)
            ],
        ),
        B.text(0x0008103E, "LO", series_description),
        B.sequence(0x00081111, []),
        B.text(0x00181020, "LO", software_version),
        B.uid(0x0020000E, uids["series"]),
        B.text(0x00200011, "IS", str(series_number)),
        B.text(0x00200013, "IS", "1"),
        B.text(_VT, "CS", "CONTAINER"),
        _code_seq(_NAME, _REPORT),
        B.text(_CONTINUITY, "CS", "CONTINUOUS"),
        B.sequence(0x0040A372, []),
        B.text(0x0040A491, "CS", "COMPLETE"),
        B.text(0x0040A493, "CS", "UNVERIFIED"),
        B.text(0x0040A496, "CS", "PRELIMINARY"),
        _template("1500"),
    ]
    return B.part10(
        COMPREHENSIVE_3D_SR,
        uids["instance"],
        {
            **identity,
            **{B.tag_of(e): e for e in own},
            0x0040A375: B.sequence(0x0040A375, evidence_items(src.study_uid, evidence)),
            _CONTENT: B.sequence(_CONTENT, content_items(groups, device, procedure)),
        },
    )

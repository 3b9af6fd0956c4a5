"""DICOM SEG output: derived masks (liver, lesions, e.g. PET-delineated lesions) on the source image series.

Written with highdicom as a BINARY Segmentation whose frames are aligned with
the source single-frame images. Each source image is placed on the image grid
by its ImagePositionPatient (``ctx.image.lps_to_index``), so the slice order
of the files does not matter. Frame ``k`` of the SEG is ``mask[:, :, k].T``
(DICOM rows are the ``j`` axis, columns the ``i`` axis, as in
:mod:`netlm_imaging.io.dicom_series`).

Segments (the numbering the SR references, see
:func:`netlm_imaging.report.sr_segment_refs.derived_segment_references`): 1 ``Liver``
(the total liver: liver mask UNION intrahepatic lesions, the region of the
report's ``liver.volume_ml``), then ``Spleen`` when present, then one segment
``Lesion <id> (<location>)`` per lesion instance in report order.

Identity: de-identified (PS3.15 Basic Profile, Retain UIDs Option) unless
``include_identifiers=True`` (the copy pushed back to the PACS keeps the
source Patient and Study modules); UIDs derived from the measured content, so
a re-run gives the same SOP Instance UID.

Masks from a measurement (the default) are not stacked one full volume per
segment: they go to highdicom as label maps, one for the total liver (and the
spleen when it does not overlap it) and one for every lesion instance
(``ctx.lesion_labels``, where lesions never overlap), and the two
Segmentations are joined into one (segments renumbered, frame position
indices recomputed over the union of frames, SegmentsOverlap set from the
masks). A 512 x 512 x 200 study with 40 lesions: about 2 s and 0.3 GiB
instead of 18 s and 5 GiB for 42 full-volume masks stacked to 4-D.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import GeometryError, InputError, UnsupportedError
from ._seg_frames import frame_count, frame_plan, reference_measured_frames

__all__ = ["masks_from_context", "write_seg", "write_seg_with_header"]

logger = logging.getLogger(__name__)

_ROLE_CODES = {
    # role -> (segmented property category, segmented property type), SNOMED CT
    "liver": (("91772007", "SCT", "Organ"), ("10200004", "SCT", "Liver")),
    "spleen": (("91772007", "SCT", "Organ"), ("78961009", "SCT", "Spleen")),
    "lesion": (("49755003", "SCT", "Morphologically Abnormal Structure"), ("108369006", "SCT", "Neoplasm")),
}

#: Recommended display colours (sRGB -> the CIELab triplet DICOM stores, as highdicom's
#: ``CIELabColor.from_rgb`` converts it; tests/test_seg_colours.py checks the table against it). Without
#: them dcmqi (3D Slicer) shows every segment in one colour and the lesions vanish in the liver. Liver
#: and spleen as in 3D Slicer's anatomy colours; lesions cycle through 6 colours far from both.
_ORGAN_COLOURS = {"liver": ((221, 130, 101), (41661, 41167, 40792)), "spleen": ((157, 108, 162), (34340, 40315, 27407))}
_LESION_COLOURS = (
    ((255, 255, 0), (63660, 27356, 57178)),
    ((0, 200, 255), (49254, 27161, 23005)),
    ((255, 0, 255), (39531, 58147, 17259)),
    ((255, 128, 0), (43941, 43904, 51921)),
    ((0, 255, 128), (57989, 13172, 44865)),
    ((255, 64, 64), (37593, 51031, 44414)),
)


def display_colours(roles: Sequence[str]) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """(sRGB, DICOM CIELab) of each segment, in order: the organ's colour, or the next lesion colour.

    Examples
    --------
    >>> [rgb for rgb, _ in display_colours(["liver", "lesion", "lesion"])]
    [(221, 130, 101), (255, 255, 0), (0, 200, 255)]
    """
    out, lesions = [], 0
    for role in roles:
        if role in _ORGAN_COLOURS:
            out.append(_ORGAN_COLOURS[role])
        else:
            out.append(_LESION_COLOURS[lesions % len(_LESION_COLOURS)])
            lesions += 1
    return out


def masks_from_context(ctx: Any) -> list[tuple[str, str, np.ndarray]]:
    """The derived masks of a measurement: total liver, spleen, and one mask per lesion instance.

    Parameters
    ----------
    ctx : MeasurementContext
        From :func:`netlm_imaging.api.analyze_with_context`.

    Returns
    -------
    list of (label, role, mask)
        Boolean masks on ``ctx.image``'s grid; empty masks are left out.
    """
    out: list[tuple[str, str, np.ndarray]] = []
    if ctx.liver is not None and ctx.liver.any():
        out.append(("Liver", "liver", ctx.liver.astype(bool)))
    if ctx.spleen is not None and ctx.spleen.any():
        out.append(("Spleen", "spleen", ctx.spleen.astype(bool)))
    for les in ctx.lesions:
        m = ctx.lesion_labels == les.id
        if m.any():
            out.append((f"Lesion {les.id} ({les.location})", "lesion", m))
    return out


def _context_groups(ctx: Any) -> list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray | None]]:
    """Non-overlapping label-map groups of the measured masks: ``[(segments, volume, lut), ...]``.

    ``volume`` is on the image grid; ``lut`` maps its values to 1-based segment
    numbers within the group (``None``: a boolean mask, one segment). Segments
    are in the order of :func:`masks_from_context`.
    """
    groups: list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray | None]] = []
    box = getattr(ctx, "liver_bbox", None)
    if ctx.liver is not None and (box is not None or ctx.liver.any()):
        groups.append(([("Liver", "liver")], np.asarray(ctx.liver, bool), None))
    if ctx.spleen is not None and ctx.spleen.any():
        spleen = np.asarray(ctx.spleen, bool)
        if groups and not np.any(spleen & groups[0][1]):
            # liver and spleen in one label map: 1 liver, 2 spleen
            both = groups[0][1].astype(np.uint8)
            both[spleen] = 2
            groups[0] = ([("Liver", "liver"), ("Spleen", "spleen")], both, np.array([0, 1, 2], np.uint16))
        else:
            groups.append(([("Spleen", "spleen")], spleen, None))
    lesions = [les for les in ctx.lesions if les.voxel_count > 0]
    if lesions:
        lut = np.zeros(max(int(les.id) for les in lesions) + 1, dtype=np.uint16)
        for n, les in enumerate(lesions, start=1):
            lut[int(les.id)] = n
        names = [(f"Lesion {les.id} ({les.location})", "lesion") for les in lesions]
        groups.append((names, ctx.lesion_labels, lut))
    return groups


def _planes(volume: np.ndarray, lut: np.ndarray | None, ks: list[int]) -> np.ndarray:
    """Label-map frames ``(len(ks), rows = j, columns = i)`` of a group, as uint8 (or uint16 for > 255 segments)."""
    t = volume.T  # (k, j, i): a view; C-contiguous for the image's Fortran-ordered arrays
    dtype = np.uint8 if lut is None or int(lut.max()) < 256 else np.uint16
    out = np.empty((len(ks), t.shape[1], t.shape[2]), dtype=dtype)
    table = None if lut is None else lut.astype(dtype)
    for n, k in enumerate(ks):  # plane by plane: no full-volume temporary
        out[n] = t[k] if table is None else table[t[k]]
    return out


def _join(first: Any, others: list[tuple[Any, int]], overlap: bool) -> Any:
    """Append the segments and frames of other Segmentations (``(seg, segment number offset)``) to ``first``.

    All were made by highdicom from the same source images with one pixel
    type, so their frames are alike; the position dimension index is
    recomputed over the union of frame positions (ascending distance along
    the slice normal, as highdicom numbers them), and the bit-packed BINARY
    frames are concatenated (frames of a multiple of 8 pixels only).
    """
    import copy

    from highdicom.spatial import VOLUME_INDEX_CONVENTION, get_normal_vector

    for seg, _ in [(first, 0), *others]:
        # a one-segment Segmentation names its segment once, in the shared groups: name it per frame
        shared = seg.SharedFunctionalGroupsSequence[0]
        if "SegmentIdentificationSequence" in shared:
            for fr in seg.PerFrameFunctionalGroupsSequence:
                fr.SegmentIdentificationSequence = copy.deepcopy(shared.SegmentIdentificationSequence)
            del shared.SegmentIdentificationSequence
    frame_bytes = int(first.Rows) * int(first.Columns) // 8

    def packed(seg: Any) -> bytes:  # the frames' bits without the even-length padding of each part
        return bytes(seg.PixelData)[: int(seg.NumberOfFrames) * frame_bytes]

    frames = list(first.PerFrameFunctionalGroupsSequence)
    pixels = [packed(first)]
    for seg, offset in others:
        for item in seg.SegmentSequence:
            item.SegmentNumber = int(item.SegmentNumber) + offset
            first.SegmentSequence.append(item)
        for fr in seg.PerFrameFunctionalGroupsSequence:
            ident = fr.SegmentIdentificationSequence[0]
            ident.ReferencedSegmentNumber = int(ident.ReferencedSegmentNumber) + offset
            frames.append(fr)
        pixels.append(packed(seg))
    normal = get_normal_vector(
        first.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        index_convention=VOLUME_INDEX_CONVENTION,
    )
    positions = np.array([[float(v) for v in fr.PlanePositionSequence[0].ImagePositionPatient] for fr in frames])
    distances = positions @ normal
    _, rank = np.unique(distances, return_inverse=True)
    for fr, r in zip(frames, rank.ravel()):
        seg_no = int(fr.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        fr.FrameContentSequence[0].DimensionIndexValues = [seg_no, int(r) + 1]
    first.PerFrameFunctionalGroupsSequence = frames
    first.NumberOfFrames = len(frames)
    data = b"".join(pixels)
    first.PixelData = data + b"\0" * (len(data) % 2)  # even length (PS3.5 7.1.1)
    first.SegmentsOverlap = "YES" if overlap else "NO"
    if "DimensionOrganizationType" in first:
        del first.DimensionOrganizationType  # the joined frames need not form one regular 3-D block
    return first


def _overlap(ctx: Any, groups: list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray | None]]) -> bool:
    """Whether segments of different groups share voxels (intrahepatic lesions lie in the total liver)."""
    if any(les.location == "intrahepatic" and les.voxel_count > 0 for les in ctx.lesions) and ctx.liver is not None:
        return True
    masks = [np.asarray(v) != 0 for _, v, _ in groups]
    return any(np.any(a & b) for i, a in enumerate(masks) for b in masks[i + 1 :])


def _normalise(masks: Mapping[str, np.ndarray] | Sequence[tuple[str, str, np.ndarray]]) -> list[tuple[str, str, Any]]:
    if isinstance(masks, Mapping):
        return [(str(k), "lesion" if "lesion" in str(k).lower() else str(k).lower(), v) for k, v in masks.items()]
    return [(str(label), str(role), m) for label, role, m in masks]


def _source_datasets(image_datasets: Sequence[Any] | None, ctx: Any, path: Path) -> list[Any]:
    import pydicom

    sources = image_datasets if image_datasets is not None else ctx.image.meta.get("files")
    if not sources:
        raise UnsupportedError(
            f"{path}: a DICOM SEG must be aligned with DICOM source images, and this study's image is not a DICOM "
            "series; analyse the DICOM series to write a SEG"
        )
    from ._hd_sources import highdicom_sources

    read: dict[str, Any] = {}  # an Enhanced (multi-frame) image is listed once per slice: read it once
    dss = []
    for s in sources:
        key = None if isinstance(s, pydicom.Dataset) else str(s)
        if key is not None and key in read:
            continue
        ds = s if key is None else pydicom.dcmread(key, stop_before_pixels=True)
        if key is not None:
            read[key] = ds
        dss.append(ds)
    dss = highdicom_sources(dss)
    if len(dss) > 1 and any(frame_count(ds) > 1 for ds in dss):
        raise UnsupportedError(
            f"{path}: the image spans several multi-frame (Enhanced) files; a DICOM SEG is written on one "
            "multi-frame file or on single-frame slices. Use the JSON report, or convert the series to single-frame"
        )
    return dss


def _description_items(items: Sequence[tuple[str, str, Any]], version: str) -> list[bytes]:
    """Segment Sequence items, encoded, as highdicom's ``SegmentDescription`` builds them (numbered 1.. in order)."""
    from ..creator import CREATOR
    from . import _dicom_bytes as B

    family = B.sequence(0x0066002F, [B.code_item("123109", "DCM", "Manual Processing")])
    algorithm = B.sequence(0x00620007, [family + B.text(0x00660031, "LO", version) + B.text(0x00660036, "LO", CREATOR)])
    out = []
    colours = display_colours([role for _, role, _ in items])
    for n, ((label, role, _), (_, lab)) in enumerate(zip(items, colours), start=1):
        category, prop = _ROLE_CODES.get(role, _ROLE_CODES["lesion"])
        out.append(
            B.sequence(0x00620003, [B.code_item(*category)])
            + B.us(0x00620004, n)
            + B.text(0x00620005, "LO", label[:64])
            + algorithm
            + B.text(0x00620008, "CS", "SEMIAUTOMATIC")
            + B.text(0x00620009, "LO", CREATOR)
            + B.element(0x0062000D, "US", struct.pack("<3H", *lab))
            + B.sequence(0x0062000F, [B.code_item(*prop)])
        )
    return out


def _plans(ctx: Any, groups: list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray | None]]) -> list[Any] | None:
    """One :class:`~._seg_writer.SegmentPlan` per segment of ``groups`` (None: a box could not be established)."""
    from ..volume import nonzero_bbox
    from ._seg_writer import SegmentPlan, label_planes

    plans: list[Any] = []
    for names, volume, lut in groups:
        if lut is None:
            box = getattr(ctx, "liver_bbox", None) if volume is ctx.liver else None
            box = box if box is not None else nonzero_bbox(volume)
            if box is None:
                return None
            plans.append(SegmentPlan(volume, None, box))
            continue
        values = {n: int(v) for v, n in enumerate(lut.tolist()) if n}
        if volume is ctx.lesion_labels:
            counts = {int(les.id): int(les.voxel_count) for les in ctx.lesions if les.voxel_count > 0}
            box = getattr(ctx, "liver_bbox", None)
            found = label_planes(volume, box, counts) if box is not None else None
            if found is None:  # a lesion outside the liver's box (extrahepatic): the box of all lesions
                box = nonzero_bbox(volume)
                found = label_planes(volume, box, counts) if box is not None else None
            if found is None or box is None:
                return None
            plans.extend(SegmentPlan(volume, values[n], box, found[values[n]]) for n in range(1, len(names) + 1))
        else:
            box = nonzero_bbox(volume)
            if box is None:
                return None
            plans.extend(SegmentPlan(volume, values[n], box) for n in range(1, len(names) + 1))
    return plans


def _write_direct(
    ctx: Any,
    groups: list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray | None]],
    items: list[tuple[str, str, Any]],
    out: Path,
    *,
    include_identifiers: bool,
    series_number: int,
    uid_parts: tuple[Any, ...],
) -> tuple[Path, Any] | None:
    """Write the joined SEG without highdicom (:mod:`._seg_writer`); None when this study needs the general path."""
    from .._version import __version__
    from ..creator import CREATOR
    from ._seg_writer import _now, build_seg, source_headers
    from ._source_header import source_identity
    from .identity import result_uid

    files = ctx.image.meta.get("files") or []
    sources = source_headers(files) if files else None
    if not sources:
        return None
    date, time = _now()
    found = source_identity(files[0], research=not include_identifiers, date=date, time=time)
    if found is None:
        return None
    src, identity = found
    if src.rows * src.columns % 8:
        return None
    shape = ctx.image.shape
    ijk = np.asarray(ctx.image.lps_to_index(np.array([p for _, _, p in sources], float)), float).reshape(-1, 3)
    ks = np.round(ijk[:, 2]).astype(int)
    bad = (np.abs(ijk[:, 2] - ks) > 0.05) | (ks < 0) | (ks >= shape[2]) | (np.abs(ijk[:, :2]).max(axis=1) > 0.05)
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        raise GeometryError(
            f"{files[n]}: its position is not slice origin of the measured grid "
            f"(index {np.round(ijk[n], 3).tolist()}); pass the series the masks were measured on"
        )
    plans = _plans(ctx, groups)
    if plans is None:
        return None
    header, data = build_seg(
        src,
        identity,
        sources,
        ks.tolist(),
        plans,
        _description_items(items, __version__),
        [label[:64] for label, _, _ in items],
        overlap=_overlap(ctx, groups),
        uids={
            "series": result_uid(*uid_parts, "series"),
            "instance": result_uid(*uid_parts, "instance"),
            "dimension_organization": result_uid(*uid_parts, "dimension organization"),
        },
        series_number=series_number,
        manufacturer=CREATOR,
        software_version=__version__,
        series_description="netlm derived masks",
    )
    atomic_write_bytes(out, data)
    logger.info("wrote DICOM SEG %s (%d segments)", out, len(items))
    return out, header


def write_seg_with_header(
    ctx: Any,
    path: str | os.PathLike[str],
    *,
    masks: Mapping[str, np.ndarray] | Sequence[tuple[str, str, np.ndarray]] | None = None,
    image_datasets: Sequence[Any] | None = None,
    include_identifiers: bool = False,
    series_number: int = 9902,
    engine: str = "auto",
) -> tuple[Path, Any]:
    """Write masks as a BINARY DICOM SEG on the source image series (atomically).

    Parameters
    ----------
    ctx : MeasurementContext
        Its ``image`` gives the grid (and the source files in ``image.meta["files"]``).
    path : path-like
        Output file.
    masks : dict of label to array, or sequence of (label, role, array), optional
        Boolean masks on the image grid; roles liver, spleen or lesion choose
        the SNOMED CT codes. Default: :func:`masks_from_context`.
    image_datasets : sequence of pydicom.Dataset or path-like, optional
        Source images (headers suffice); default ``ctx.image.meta["files"]``.
    include_identifiers : bool
        Keep the patient module of the source images (off by default).
    series_number : int
        Series Number of the SEG.
    engine : {"auto", "highdicom"}
        ``"auto"``: masks from the measurement on single-frame sources whose
        frames are whole bytes are written directly (:mod:`._seg_writer`, the
        same object as highdicom's, about 10x faster); everything else goes
        through highdicom. ``"highdicom"``: always highdicom (the reference
        the direct writer is tested against).

    Returns
    -------
    (pathlib.Path, pydicom.Dataset)
        The written file and its header (the Segment Sequence and UIDs an SR references; it may lack the
        per-frame items and the pixels).

    Raises
    ------
    UnsupportedError
        No DICOM source images, or an image spanning several multi-frame files
        (one multi-frame file is written on frame by frame, in its stored order).
    InputError
        No non-empty mask, or a mask whose shape is not the image grid's.
    GeometryError
        A source image that does not lie on a slice of the image grid.
    """
    from .._version import __version__
    from ..creator import CREATOR
    from .identity import deidentify, result_uid

    out = Path(path)
    groups = _context_groups(ctx) if masks is None else None
    if groups is not None:
        items: list[tuple[str, str, Any]] = [(label, role, None) for g in groups for label, role in g[0]]
    else:
        items = [(label, role, np.asarray(m, bool)) for label, role, m in _normalise(masks or {})]
        items = [it for it in items if it[2].any()]
    if not items:
        raise InputError(f"{out}: no non-empty mask to write as a DICOM SEG; check the segmentation")
    shape = ctx.image.shape
    for label, _, m in items:
        if m is not None and m.shape != shape:
            raise InputError(f"{out}: mask {label!r} has shape {m.shape}, the image grid {shape}; resample it first")
    content = (  # what was measured: the masks' content without another pass over them (explicit masks: their sizes)
        [(les.id, les.location, les.voxel_count) for les in ctx.lesions] + [ctx.liver_volume_ml]
        if masks is None
        else [int(m.sum()) for _, _, m in items]
    )

    def uid_parts(study_uid: str, series_uid: str) -> tuple[Any, ...]:
        return (study_uid, series_uid, "seg", __version__, [label for label, _, _ in items], content)

    meta = ctx.image.meta
    if engine not in ("auto", "highdicom"):
        raise ValueError(f"engine must be 'auto' or 'highdicom', not {engine!r}")
    if engine == "auto" and groups is not None and len(groups) > 1 and image_datasets is None:
        direct = _write_direct(
            ctx,
            groups,
            items,
            out,
            include_identifiers=include_identifiers,
            series_number=series_number,
            uid_parts=uid_parts(str(meta.get("study_instance_uid", "")), str(meta.get("series_instance_uid", ""))),
        )
        if direct is not None:
            return direct
    import highdicom as hd  # the general path (the direct one above does without)

    from ._hd_sources import no_person_name_warnings

    dss = _source_datasets(image_datasets, ctx, out)
    ks, plane_positions, frame_of_k = frame_plan(dss, ctx)
    descriptions = []
    colours = display_colours([role for _, role, _ in items])
    for n, ((label, role, _), (rgb, _)) in enumerate(zip(items, colours), start=1):
        category, prop = _ROLE_CODES.get(role, _ROLE_CODES["lesion"])
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=label[:64],
                segmented_property_category=hd.sr.CodedConcept(*category),
                segmented_property_type=hd.sr.CodedConcept(*prop),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name=CREATOR,
                    version=__version__,
                    family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"),
                ),
                display_color=hd.color.CIELabColor.from_rgb(*rgb),
            )
        )
    uid_base = uid_parts(str(getattr(dss[0], "StudyInstanceUID", "")), str(getattr(dss[0], "SeriesInstanceUID", "")))
    common: dict[str, Any] = {
        "source_images": dss,
        "segmentation_type": hd.seg.SegmentationTypeValues.BINARY,
        "series_instance_uid": result_uid(*uid_base, "series"),
        "series_number": series_number,
        "sop_instance_uid": result_uid(*uid_base, "instance"),
        "instance_number": 1,
        "manufacturer": CREATOR,
        "manufacturer_model_name": CREATOR,
        "software_versions": __version__,
        "device_serial_number": "0",
        "series_description": "netlm derived masks",
    }
    if plane_positions is not None:
        common["plane_positions"] = plane_positions
    frame_pixels = int(dss[0].Rows) * int(dss[0].Columns)
    if groups is not None and (len(groups) == 1 or frame_pixels % 8 == 0):
        parts, start = [], 0
        for names, volume, lut in groups:
            descs = descriptions[start : start + len(names)]
            for n, d in enumerate(descs, start=1):  # numbered within the group, renumbered by _join
                d.SegmentNumber = n
            planes = _planes(volume, lut, ks)
            with no_person_name_warnings():
                part = hd.seg.Segmentation(pixel_array=planes, segment_descriptions=descs, **common)
            parts.append((part, start))
            del planes
            start += len(names)
        seg = _join(parts[0][0], parts[1:], _overlap(ctx, groups)) if len(parts) > 1 else parts[0][0]
    else:
        if groups is not None:  # frames not byte-aligned: stack the masks (the general, slower path)
            items = [(label, role, np.asarray(m, bool)) for label, role, m in masks_from_context(ctx)]
        stack = np.stack([np.stack([m[:, :, k].T for _, _, m in items], axis=-1) for k in ks]).astype(np.uint8)
        with no_person_name_warnings():
            seg = hd.seg.Segmentation(pixel_array=stack, segment_descriptions=descriptions, **common)
    if frame_of_k is not None:
        reference_measured_frames(seg, ctx, frame_of_k)
    if not include_identifiers:
        deidentify(seg)
    buf = io.BytesIO()
    seg.save_as(buf)
    atomic_write_bytes(out, buf.getvalue())
    logger.info("wrote DICOM SEG %s (%d segments)", out, len(items))
    return out, seg


def write_seg(
    ctx: Any,
    path: str | os.PathLike[str],
    *,
    masks: Mapping[str, np.ndarray] | Sequence[tuple[str, str, np.ndarray]] | None = None,
    image_datasets: Sequence[Any] | None = None,
    include_identifiers: bool = False,
    series_number: int = 9902,
) -> Path:
    """Write masks as a BINARY DICOM SEG on the source image series (atomically); returns the file.

    Parameters and errors as :func:`write_seg_with_header`.
    """
    return write_seg_with_header(
        ctx,
        path,
        masks=masks,
        image_datasets=image_datasets,
        include_identifiers=include_identifiers,
        series_number=series_number,
    )[0]

"""Discovery in a folder of DICOM files: the segmentation objects, the image series they reference, the PET.

Segmentation objects (SEG, Label Map SEG, RTSTRUCT) are found by SOPClassUID; the image series is the
one they reference (ReferencedSeriesSequence, referenced SOP instances, then FrameOfReferenceUID
preferring CT/MR over PET, never a scout). A PET series in the image's frame of reference is its PET.
"""

from __future__ import annotations

import filecmp
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..creator import is_own_output
from ..errors import DicomError
from ._dicom_info import RTSTRUCT, SEG, DicomFileInfo
from .dicom_series_groups import SeriesGroup, group_image_series
from .discover_choice import SEG_OPTION, SERIES_OPTION, DiscoveredStudy, SegmentationCandidate, choose_segmentations

__all__ = ["dicom_candidates", "dicom_study", "from_dicom", "is_scout", "pet_for", "seg_candidate"]


def seg_candidate(info: DicomFileInfo) -> SegmentationCandidate:
    """The candidate of one SEG / RTSTRUCT the folder scan indexed."""
    return SegmentationCandidate(
        path=info.path,
        kind=info.kind,
        sop_instance_uid=info.sop_instance_uid,
        series_uid=info.series_uid,
        description=info.series_description,
        segment_names=info.segment_labels,
        info=info,
    )


def _header_or_path(cand: SegmentationCandidate) -> Any:
    """The header the scan parsed (pydicom dataset or raw PlainSeg), else the file: no second read for the creator."""
    info = cand.info
    return info.dataset if info is not None and info.dataset is not None else cand.path


def _without_copies(cands: list[SegmentationCandidate], notes: list[str]) -> list[SegmentationCandidate]:
    """The candidates with byte-identical copies of one SOP instance (an export that wrote it twice) taken once.

    Copies that share a SOPInstanceUID but differ in content stay: which one is meant is ambiguous.
    """
    kept: list[SegmentationCandidate] = []
    for cand in cands:
        twin = next(
            (
                k
                for k in kept
                if cand.sop_instance_uid
                and k.sop_instance_uid == cand.sop_instance_uid
                and filecmp.cmp(k.path, cand.path, shallow=False)
            ),
            None,
        )
        if twin is None:
            kept.append(cand)
        else:
            notes.append(
                f"{cand.path.name} is a byte-identical copy of {twin.path.name} (SOPInstanceUID "
                f"{cand.sop_instance_uid}); read once."
            )
    return kept


def _referenced_group(seg: SegmentationCandidate, groups: list[SeriesGroup], folder: Path) -> tuple[SeriesGroup, str]:
    info = seg.info
    assert info is not None
    wanted_sops = set(info.referenced_sop_uids)
    for uid in info.referenced_series_uids:
        stacks = [g for g in groups if g.series_uid == uid]
        if len(stacks) == 1:
            return stacks[0], f"{seg.path.name} references series {uid}"
        if stacks:  # one SeriesInstanceUID holding several reconstructions: the one whose images it references
            return _referenced_stack(seg, stacks, wanted_sops)
    if wanted_sops:
        hit = [g for g in groups if any(f.sop_instance_uid in wanted_sops for f in g.files)]
        if len(hit) == 1:
            return hit[0], f"{seg.path.name} references images of series {hit[0].uid}"
        if hit:
            return _referenced_stack(seg, hit, wanted_sops)
    if info.referenced_series_uids or info.referenced_sop_uids:
        missing = info.referenced_series_uids[0] if info.referenced_series_uids else "(by SOP instance)"
        raise DicomError(
            f"{seg.path}: {seg.kind} references image series {missing}, which is not in {folder}; "
            "export the referenced series into the folder, or pass the image with --image."
        )
    fors = set(info.referenced_frame_of_reference_uids) | (
        {info.frame_of_reference_uid} if info.frame_of_reference_uid else set()
    )
    same_for = [g for g in groups if g.frame_of_reference_uid and g.frame_of_reference_uid in fors]
    anatomical = [g for g in same_for if g.modality not in ("PT", "NM")] or same_for
    # a scout (ImageType LOCALIZER) or a single image is never the volume a segmentation was drawn on
    volumetric = [g for g in anatomical if not is_scout(g)]
    if len(volumetric) == 1 and len(anatomical) > 1:
        scouts = ", ".join(g.uid for g in anatomical if g is not volumetric[0])
        return volumetric[0], (
            f"{seg.path.name} shares FrameOfReferenceUID with series {volumetric[0].uid} "
            f"(and with the scouts or single images {scouts})"
        )
    if len(anatomical) == 1:
        return anatomical[0], f"{seg.path.name} shares FrameOfReferenceUID with series {anatomical[0].uid}"
    if not anatomical:
        raise DicomError(
            f"{seg.path}: {seg.kind} names no image series or frame of reference found in {folder}; "
            "export the image series it was drawn on, or pass it with --image."
        )
    listing = "; ".join(g.summary() for g in anatomical)
    raise DicomError(
        f"{seg.path}: {len(anatomical)} image series share its frame of reference: {listing}; "
        f"choose one with {SERIES_OPTION}."
    )


def is_scout(group: SeriesGroup) -> bool:
    """A localizer (every image typed LOCALIZER) or a series of one image (one frame)."""
    if all("LOCALIZER" in f.image_type for f in group.files):
        return True
    return sum(max(1, len(f.frames)) for f in group.files) <= 1


def _referenced_stack(
    seg: SegmentationCandidate, stacks: list[SeriesGroup], wanted_sops: set[str]
) -> tuple[SeriesGroup, str]:
    """The reconstruction (split off one SeriesInstanceUID) whose images a SEG / RTSTRUCT references."""
    hit = [g for g in stacks if any(f.sop_instance_uid in wanted_sops for f in g.files)]
    if len(hit) == 1:
        return hit[0], (
            f"{seg.path.name} references images of reconstruction {hit[0].stack} ({hit[0].uid}) of series "
            f"{hit[0].series_uid}, which holds {len(stacks)} reconstructions"
        )
    listing = "; ".join(g.summary() for g in stacks)
    which = "several of them" if hit else "none of their images"
    raise DicomError(
        f"{seg.path}: series {stacks[0].series_uid} holds {len(stacks)} reconstructions ({listing}) and the "
        f"{seg.kind} references {which}; choose one with {SERIES_OPTION} (e.g. --image-series {stacks[0].uid})."
    )


def pet_for(image: SeriesGroup, groups: list[SeriesGroup], notes: list[str]) -> SeriesGroup | None:
    if image.modality in ("PT", "NM") or not image.frame_of_reference_uid:
        return None
    pets = [g for g in groups if g.modality == "PT" and g.frame_of_reference_uid == image.frame_of_reference_uid]
    apart = [g for g in groups if g.modality == "PT" and g.frame_of_reference_uid != image.frame_of_reference_uid]
    if not pets and apart:
        notes.append(
            f"PET series {', '.join(g.uid for g in apart)} not used, no uptake measured: its FrameOfReferenceUID "
            "differs from the image's, so its positions need not be the image's; measure uptake with masks drawn on "
            "the PET (--image PET_FOLDER --seg ...) or on a CT of its own frame of reference."
        )
    if len(pets) > 1:  # a PET/CT export: the attenuation-corrected series beside the NAC one
        from .pet import attenuation_corrected

        flags = [attenuation_corrected(g.files[0].path) for g in pets]
        if flags.count(True) == 1 and flags.count(False) == len(pets) - 1:
            chosen = pets[flags.index(True)]
            notes.append(
                f"PET series {chosen.uid} is the attenuation-corrected one of {len(pets)} sharing the image's frame "
                "of reference (the others lack ATTN in Corrected Image (0028,0051): not quantitative); used."
            )
            return chosen
    if len(pets) == 1:
        notes.append(f"PET series {pets[0].uid} shares the frame of reference of the image.")
        return pets[0]
    if len(pets) > 1:
        notes.append(
            "several PET series share the image's frame of reference ("
            + "; ".join(g.summary() for g in pets)
            + "); none used: choose one with --pet."
        )
    return None


def dicom_candidates(
    index: list[DicomFileInfo], notes: list[str]
) -> tuple[list[SegmentationCandidate], list[SegmentationCandidate]]:
    """The SEG / RTSTRUCT objects of a folder's index that are inputs, and the tool's own derived SEGs (never one).

    Byte-identical copies of one SOP instance are taken once; each exclusion is said in ``notes``.
    """
    cands = [seg_candidate(i) for i in index if i.kind in (SEG, RTSTRUCT)]
    own = [c for c in cands if c.kind == SEG and is_own_output(_header_or_path(c))]
    if own:  # the tool's own derived SEG (a re-run on a study it already analysed) is never an input
        cands = [c for c in cands if c not in own]
        notes.append("netlm-imaging's own derived SEG not used as input: " + ", ".join(c.path.name for c in own))
    return _without_copies(cands, notes), own


def from_dicom(
    folder: Path,
    index: list[DicomFileInfo],
    seg_choice: str | None,
    image_series: str | None,
    *,
    chosen: list[SegmentationCandidate] | None = None,
    found_notes: Sequence[str] = (),
) -> DiscoveredStudy:
    """The segmentation(s) of a DICOM folder, the image series they reference and its PET."""
    groups = group_image_series(index)
    notes: list[str] = list(found_notes)
    cands, own = dicom_candidates(index, notes) if chosen is None else (list(chosen), [])
    if not cands and own:
        raise DicomError(
            f"{folder}: the only segmentation is netlm-imaging's own derived SEG ({own[0].path.name}), which is never "
            "taken as input; add the original segmentation to the folder."
        )
    if not cands:
        listing = "; ".join(g.summary() for g in groups)
        raise DicomError(
            f"{folder}: no DICOM SEG or RTSTRUCT found (image series: {listing}); add the segmentation to the folder "
            "or pass it with --image PATH --seg PATH."
        )
    chosen = choose_segmentations(cands, seg_choice, folder) if chosen is None else list(chosen)
    if image_series:
        by_uid = {g.uid: g for g in groups}
        if image_series not in by_uid:
            listing = "; ".join(g.summary() for g in groups)
            raise DicomError(f"{folder}: --image-series {image_series} is not in the folder; available: {listing}.")
        image = by_uid[image_series]
        notes.append(f"image series {image.uid} chosen with --image-series.")
    else:
        resolved = [_referenced_group(c, groups, folder) for c in chosen]
        uids = {g.uid for g, _ in resolved}
        if len(uids) > 1:
            raise DicomError(
                f"{folder}: the chosen segmentations reference different image series ({', '.join(sorted(uids))}); "
                f"choose them one at a time with {SEG_OPTION}, or the image with {SERIES_OPTION}."
            )
        image = resolved[0][0]
        notes.extend(why for _, why in resolved)
    if len(cands) > len(chosen):
        notes.append("segmentation(s) not used: " + ", ".join(c.path.name for c in cands if c not in chosen))
    return dicom_study(folder, image, chosen, groups, notes, index)


def dicom_study(
    folder: Path,
    image: SeriesGroup,
    chosen: list[SegmentationCandidate],
    groups: list[SeriesGroup],
    notes: list[str],
    index: list[DicomFileInfo],
) -> DiscoveredStudy:
    """The study of a DICOM folder: its image series, the chosen segmentations and the PET beside them.

    Parameters
    ----------
    folder : pathlib.Path
        The study folder.
    image : SeriesGroup
        The image series the segmentations are measured on.
    chosen : list of SegmentationCandidate
        The segmentations to measure.
    groups : list of SeriesGroup
        Every image series of the folder (the PET is looked for among them).
    notes : list of str
        What discovery noted so far; :func:`pet_for` adds to it.
    index : list of DicomFileInfo
        The folder's DICOM index, kept for the readers.

    Returns
    -------
    DiscoveredStudy
    """
    pet = pet_for(image, groups, notes)
    return DiscoveredStudy(
        folder=folder,
        image_path=folder,
        image_files=[f.path for f in image.files],
        image_series_uid=image.uid,
        image_modality=image.modality,
        segmentations=chosen,
        pet_files=[f.path for f in pet.files] if pet else None,
        pet_series_uid=pet.uid if pet else None,
        notes=notes,
        source="dicom",
        dicom_index=index,
    )

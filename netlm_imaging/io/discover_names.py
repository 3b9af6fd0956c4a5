"""Discovery by file name: the image, label maps and masks of a folder of NIfTI / NRRD / MHA volumes.

The names (:data:`IMAGE_NAMES`, :data:`LABEL_MAP_PATTERNS`, :data:`ROLE_MASK_PATTERNS`) and the layouts
segmentation tools write: TotalSegmentator's one mask per structure (beside the image or in its
``segmentations/`` subfolder), MONAI's ``ct/ct_<postfix>.nii.gz`` (:mod:`netlm_imaging.io.monai_layout`),
nnU-Net's ``case_0000`` image beside its prediction ``case``, Slicer's ``.seg.nrrd``; and the folders
``--seg`` may name (:func:`expand_segmentation_folders`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from ._dicom_common import scan_dicom_folder
from ._dicom_info import RTSTRUCT, SEG
from .discover_choice import DiscoveredStudy, SegmentationCandidate, choose_segmentations, file_kind
from .formats import volume_base_name
from .monai_layout import monai_outputs, shown_name
from .role_patterns import ROLE_MASK_PATTERNS, role_of_mask_name  # the names single-role masks get their roles by

__all__ = [
    "IMAGE_NAMES",
    "LABEL_MAP_PATTERNS",
    "LITS_IMAGE",
    "PET_NAMES",
    "ROLE_MASK_PATTERNS",
    "expand_segmentation_folders",
    "from_files",
    "segmentation_files",
]

#: Base names (case-insensitive, without extension) taken as the image.
IMAGE_NAMES = ("image", "ct", "mr", "mri", "img", "volume", "scan")
#: The LiTS challenge's image names (``volume-12.nii`` beside its ``segmentation-12.nii``).
LITS_IMAGE = re.compile(r"volume-\d+")
#: Base names taken as a PET image.
PET_NAMES = ("pet", "pt", "suv")
#: Regular expressions (on the lower-case base name) of label maps.
LABEL_MAP_PATTERNS = (r"^(seg|segmentation|label|labels|labelmap|mask)$", r"seg", r"label")


def _is_apple_double(p: Path) -> bool:
    """A macOS resource-fork file (``._seg.nii.gz``) a Mac writes beside each file on a USB / network drive."""
    return p.name.startswith("._")


def _one_file_per_name(masks: list[SegmentationCandidate], folder: Path) -> None:
    """Refuse two role masks of one name in two formats (``liver.nii`` beside ``liver.nii.gz``).

    Read both, they were one structure twice: their union was measured with a warning, a guess at
    which file is the current one (an image named twice is refused the same way).
    """
    by_name: dict[str, list[Path]] = {}
    for m in masks:
        by_name.setdefault((volume_base_name(m.path) or m.path.name).lower(), []).append(m.path)
    twice = [paths for paths in by_name.values() if len(paths) > 1]
    if twice:
        names = "; ".join(" and ".join(p.name for p in paths) for paths in twice)
        raise InputError(
            f"{folder}: one structure in two files ({names}: the same name in two formats); keep the one to "
            "measure, or pass it with --seg ROLE=PATH."
        )


def _role_masks_in(folder: Path) -> tuple[list[SegmentationCandidate], list[Path]]:
    """The masks named after their role directly in ``folder`` (TotalSegmentator's one file per structure) and
    the other volumes there (other organs, vessels: no role by their names)."""
    masks: list[SegmentationCandidate] = []
    others: list[Path] = []
    for p in sorted(folder.iterdir()):
        base = volume_base_name(p) if p.is_file() and not _is_apple_double(p) else None
        if base is None:
            continue
        role = None if p.name.lower().endswith(".seg.nrrd") else role_of_mask_name(base)
        if role:
            masks.append(SegmentationCandidate(path=p, kind=file_kind(p), role=role))
        else:
            others.append(p)
    _one_file_per_name(masks, folder)
    return masks, others


def _unused_note(unused: list[Path], where: str = "") -> str:
    shown = ", ".join(p.name for p in unused[:20]) + (f" and {len(unused) - 20} more" if len(unused) > 20 else "")
    return (
        f"not used{where} (no role by their names, docs/study_folders.md): {shown}; pass one with --seg ROLE=PATH "
        "or list it in a netlm.json manifest"
    )


def _mask_subfolder(folder: Path) -> tuple[Path, list[SegmentationCandidate], list[Path]] | None:
    """The one subfolder of ``folder`` holding masks named after their role (``TotalSegmentator -o segmentations``).

    None when no subfolder holds such masks; several such subfolders are an :class:`InputError` naming them.
    """
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        masks, others = _role_masks_in(sub)
        if masks:
            found.append((sub, masks, others))
    if len(found) > 1:
        raise InputError(
            f"{folder}: masks named after their structure in {len(found)} subfolders "
            f"({', '.join(f[0].name for f in found)}); pass the one to measure with --seg FOLDER, or use a "
            "netlm.json manifest."
        )
    return found[0] if found else None


def segmentation_files(folder: Path) -> tuple[list[SegmentationCandidate], list[SegmentationCandidate], list[str]]:
    """The segmentation volumes a folder of DICOM files holds beside its image series, found by their names.

    Label maps named as such directly in ``folder`` (``seg.nii.gz``, nnU-Net's or MONAI's ``ct_seg.nii.gz``,
    a Slicer ``.seg.nrrd``) and the masks named after their role there or in one subfolder (TotalSegmentator's
    ``segmentations/``); the other volumes are named in a note.

    Returns
    -------
    label_maps, masks : list of SegmentationCandidate
        The label maps (each a candidate of its own) and the role masks (one segmentation together).
    notes : list of str
        The volumes not used.
    """
    masks, others = _role_masks_in(folder)
    label_maps = [
        SegmentationCandidate(path=p, kind=file_kind(p))
        for p in others
        if p.name.lower().endswith(".seg.nrrd")
        or any(re.search(pat, volume_base_name(p) or "") for pat in LABEL_MAP_PATTERNS)
    ]
    unused = [p for p in others if all(c.path != p for c in label_maps)]
    notes = [_unused_note(unused)] if unused and (label_maps or masks) else []
    if not masks:
        sub = _mask_subfolder(folder)
        if sub is not None:
            masks = sub[1]
            notes.append(f"the masks named after their structure in the subfolder {sub[0].name}/")
            if sub[2]:
                notes.append(_unused_note(sub[2], f" in {sub[0].name}/"))
    return label_maps, masks, notes


def expand_segmentation_folders(segs: list[str]) -> tuple[list[str], list[str]]:
    """``--seg`` arguments with each folder replaced by the segmentation(s) it holds, and a note per folder.

    A folder of masks named after their structure (TotalSegmentator's ``segmentations/``: ``liver.nii.gz``,
    ``liver_tumor.nii.gz``, ``spleen.nii.gz`` ...) gives each as ``ROLE=PATH``; a folder holding one DICOM
    SEG or RTSTRUCT (a PACS export's series folder), or else one volume (a Slicer ``.seg.nrrd``, an nnU-Net
    prediction), gives that file. Other folders are an :class:`InputError` saying what they hold.
    """
    out: list[str] = []
    notes: list[str] = []
    for arg in segs:
        path = Path(arg)
        if not path.is_dir():
            out.append(arg)
            continue
        masks, others = _role_masks_in(path)
        if masks:
            out.extend(m.argument for m in masks)
            notes.append(
                f"{path}: the masks named after their structure: " + ", ".join(f"{m.role}={m.path.name}" for m in masks)
            )
            if others:
                notes.append(_unused_note(others, f" in {path}"))
            continue
        objects = [i for i in scan_dicom_folder(path) if i.kind in (SEG, RTSTRUCT)]
        if not objects and len(others) == 1:  # one label map / .seg.nrrd (a Slicer or nnU-Net output folder)
            out.append(str(others[0]))
            notes.append(f"{path}: its one segmentation file {others[0].name}")
            continue
        if len(objects) == 1:
            out.append(str(objects[0].path))
            notes.append(f"{path}: its one segmentation object {objects[0].path.name} ({objects[0].kind})")
            continue
        held = (
            f"{len(objects)} segmentation objects ({', '.join(i.path.name for i in objects[:10])}); pass one file"
            if objects
            else f"{len(others)} volumes, none named after its structure (liver.nii.gz, liver_tumor.nii.gz ...), and "
            "no DICOM SEG / RTSTRUCT; pass the segmentation file"
        )
        raise InputError(f"{path}: --seg names a folder holding {held}.")
    return out, notes


def from_files(folder: Path, seg_choice: str | None) -> DiscoveredStudy:
    """The image, segmentation(s) and PET of a folder of volumes, found by their names."""
    vols = sorted(
        p for p in folder.iterdir() if p.is_file() and volume_base_name(p) is not None and not _is_apple_double(p)
    )
    images, pets, label_maps, masks = [], [], [], []
    unused: list[Path] = []  # volumes whose name has no role (other organs, vessels): listed in a note
    channel_notes: list[str] = []
    for p in vols:
        base = volume_base_name(p) or ""
        if p.name.lower().endswith(".seg.nrrd"):  # Slicer names its segments: Liver.seg.nrrd is no liver mask
            label_maps.append(SegmentationCandidate(path=p, kind=file_kind(p)))
            continue
        role = role_of_mask_name(base)
        if role:
            masks.append(SegmentationCandidate(path=p, kind=file_kind(p), role=role))
        elif base in IMAGE_NAMES or base.endswith("_0000") or LITS_IMAGE.fullmatch(base):
            images.append(p)
        elif base in PET_NAMES:
            pets.append(p)
        elif any(re.search(pat, base) for pat in LABEL_MAP_PATTERNS):
            label_maps.append(SegmentationCandidate(path=p, kind=file_kind(p)))
        else:
            unused.append(p)
    if len(images) == 1 and (volume_base_name(images[0]) or "").endswith("_0000"):
        # nnU-Net: the prediction of case_001_0000.nii.gz is case_001.nii.gz (its numbering: io/nnunet.py)
        case = (volume_base_name(images[0]) or "")[: -len("_0000")]
        label_maps += [SegmentationCandidate(path=p, kind=file_kind(p)) for p in unused if volume_base_name(p) == case]
        unused = [p for p in unused if volume_base_name(p) != case]
        # its other input channels (case_001_0001: a PET, an MR sequence) are images, not masks without a role
        channels = [p for p in unused if re.fullmatch(re.escape(case) + r"_\d{4}", volume_base_name(p) or "")]
        unused = [p for p in unused if p not in channels]
        if channels:
            channel_notes.append(
                f"nnU-Net input channel(s) {', '.join(p.name for p in channels)} of {case} not used (the image is "
                f"its channel 0, {images[0].name}); a PET channel is read with --pet PATH"
            )
    if not vols:
        raise InputError(
            f"{folder}: no DICOM files and no NIfTI/NRRD/MHA volumes; see docs/study_folders.md for the layout, "
            "or pass --image PATH --seg PATH."
        )
    if len(images) != 1:
        what = f"{len(images)} image candidates ({', '.join(p.name for p in images)})" if images else "no image file"
        raise InputError(
            f"{folder}: {what}; name the image image.nii.gz (or ct/mr/img), or add a netlm.json manifest, "
            "or pass --image PATH."
        )
    _one_file_per_name(masks, folder)
    monai = [
        SegmentationCandidate(path=p, kind=file_kind(p), shown=shown_name(p, folder))
        for p in monai_outputs(folder, images[0])
    ]
    label_maps += monai  # beside the folder's own label maps: several candidates, chosen with --seg-choice
    if label_maps and masks:
        raise InputError(
            f"{folder}: both label maps ({', '.join(c.name for c in label_maps)}) and binary masks "
            f"({', '.join(c.path.name for c in masks)}); keep one convention or add a netlm.json manifest."
        )
    sub_notes: list[str] = []
    sub = None if (label_maps and not monai) or masks else _mask_subfolder(folder)
    if sub is not None and monai:
        raise InputError(
            f"{folder}: two segmentations: the MONAI output {', '.join(c.name for c in monai)} and the masks named "
            f"after their structure in {sub[0].name}/; pass the one to measure with --seg PATH (or --seg FOLDER), "
            "or use a netlm.json manifest."
        )
    if sub is not None:  # TotalSegmentator's default: ct.nii.gz beside its output folder segmentations/
        masks = sub[1]
        sub_notes.append(f"the masks named after their structure in the subfolder {sub[0].name}/")
        if sub[2]:
            sub_notes.append(_unused_note(sub[2], f" in {sub[0].name}/"))
    if label_maps:
        segs = choose_segmentations(label_maps, seg_choice, folder)
    elif masks:
        segs = masks
    else:
        stem = volume_base_name(images[0])
        raise InputError(
            f"{folder}: no segmentation file (expected seg.nii.gz / label.nii.gz, or liver.nii.gz + lesion*.nii.gz, or "
            f"MONAI's {stem}/{stem}_seg.nii.gz); see docs/study_folders.md."
        )
    notes = [f"image {images[0].name} and segmentation(s) {', '.join(s.name for s in segs)} found by name."]
    notes.extend(
        f"{s.name}: MONAI's output of {images[0].name} (SaveImage writes <stem>/<stem>_<postfix>)"
        for s in segs
        if s in monai
    )
    if unused:
        notes.append(_unused_note(unused))
    notes.extend(channel_notes + sub_notes)
    if len(pets) > 1:
        raise InputError(
            f"{folder}: several PET files ({', '.join(p.name for p in pets)}); keep one or use a manifest."
        )
    return DiscoveredStudy(
        folder=folder,
        image_path=images[0],
        image_files=[images[0]],
        segmentations=segs,
        pet_files=pets or None,
        notes=notes,
        source="files",
    )

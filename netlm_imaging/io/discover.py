"""Study-folder discovery: which files are the image, the segmentation(s) and the PET.

Why one module (~690 lines): the precedence of a study folder's conventions (manifest, DICOM
references, NIfTI names, sidecars) is one decision that reads top to bottom; split it only
with that order kept in one place.

Order of precedence (documented in docs/study_folders.md):

1. A manifest (``netlm.json`` or ``netlm.toml`` in the folder, or passed
   explicitly) overrides everything.
2. DICOM: segmentation objects (SEG, Label Map SEG, RTSTRUCT) are found by
   SOPClassUID; the image series is the one they reference
   (ReferencedSeriesSequence, referenced SOP instances, then
   FrameOfReferenceUID preferring CT/MR over PET). A PET series in the same
   frame of reference as a CT/MR image is reported as ``pet_files``.
3. NIfTI / NRRD / MHA file names (see :data:`IMAGE_NAMES`, :data:`LABEL_MAP_PATTERNS`,
   :data:`ROLE_MASK_PATTERNS`); beside the image ``ct.nii.gz``, MONAI's output subfolder
   ``ct/ct_<postfix>.nii.gz`` (:mod:`netlm_imaging.io.monai_layout`).

Ambiguity is never resolved by guessing: several candidates raise an error
listing them and naming the option that chooses.
"""

from __future__ import annotations

import filecmp
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..creator import is_own_output
from ..errors import DicomError, InputError
from ._dicom_common import IMAGE, RTSTRUCT, SEG, DicomFileInfo, scan_dicom_folder
from .dicom_series import SeriesGroup, group_image_series
from .formats import file_format, volume_base_name
from .labels import ROLE_MASK_PATTERNS, role_of_mask_name  # the names single-role masks get their roles by
from .monai_layout import monai_outputs, shown_name

__all__ = [
    "IMAGE_NAMES",
    "LABEL_MAP_PATTERNS",
    "MANIFEST_NAMES",
    "ROLE_MASK_PATTERNS",
    "DiscoveredStudy",
    "SegmentationCandidate",
    "candidates_in",
    "discover_study",
    "expand_segmentation_folders",
    "load_manifest",
    "study_facts",
]

logger = logging.getLogger(__name__)

#: Manifest file names looked for in a study folder, in this order.
MANIFEST_NAMES = ("netlm.json", "netlm.toml")
#: Base names (case-insensitive, without extension) taken as the image.
IMAGE_NAMES = ("image", "ct", "mr", "mri", "img", "volume", "scan")
#: The LiTS challenge's image names (``volume-12.nii`` beside its ``segmentation-12.nii``).
LITS_IMAGE = re.compile(r"volume-\d+")
#: Base names taken as a PET image.
PET_NAMES = ("pet", "pt", "suv")
#: Regular expressions (on the lower-case base name) of label maps.
LABEL_MAP_PATTERNS = (r"^(seg|segmentation|label|labels|labelmap|mask)$", r"seg", r"label")
_MANIFEST_KEYS = {"image", "segmentations", "labels", "pet", "modality", "clinical"}
_SEG_OPTION = "--seg-choice N|UID"
_SERIES_OPTION = "--image-series UID"


@dataclass(frozen=True)
class SegmentationCandidate:
    """One segmentation object found in a study.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    kind : str
        ``"SEG"``, ``"RTSTRUCT"``, ``"NIFTI"`` or ``"NRRD"`` (ITK formats).
    role : str or None
        Role of a single-role binary mask (``liver``, ``lesion``, ``segmentN``...),
        ``None`` for label maps and DICOM objects.
    sop_instance_uid, series_uid, description : str
        DICOM identification ("" for files).
    segment_names : tuple of str
        SEG segment labels / RTSTRUCT ROI names.
    info : DicomFileInfo or None
        Header facts for DICOM objects.
    shown : str
        The name messages give the file ("" for its name): its path in the study folder when it is in a
        subfolder (``ct/ct_seg.nii.gz``, a MONAI output beside ``ct_seg.nii.gz``).
    """

    path: Path
    kind: str
    role: str | None = None
    sop_instance_uid: str = ""
    series_uid: str = ""
    description: str = ""
    segment_names: tuple[str, ...] = ()
    info: DicomFileInfo | None = field(default=None, repr=False, compare=False)
    shown: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The file's name in messages and for ``--seg-choice NAME``."""
        return self.shown or self.path.name

    @property
    def argument(self) -> str:
        """``--seg`` argument form: ``PATH`` or ``ROLE=PATH``."""
        return f"{self.role}={self.path}" if self.role else str(self.path)

    def summary(self, index: int) -> str:
        """One line for candidate lists."""
        desc = f" '{self.description}'" if self.description else ""
        names = f" segments: {', '.join(self.segment_names)}" if self.segment_names else ""
        uid = f" {self.sop_instance_uid}" if self.sop_instance_uid else ""
        return f"{index}) {self.name} ({self.kind}{desc}{uid}{names})"


@dataclass
class DiscoveredStudy:
    """What a study folder holds, as discovered (or as its manifest says).

    Attributes
    ----------
    folder : pathlib.Path
        The study folder.
    image_path : pathlib.Path
        NIfTI/ITK image file, or the DICOM folder (read with ``image_series_uid``).
    image_files : list of pathlib.Path
        The image series' files (DICOM) or ``[image_path]``.
    image_series_uid : str or None
        SeriesInstanceUID (or ``nouid:`` key) of the DICOM image series.
    image_modality : str or None
        DICOM Modality of the image series.
    segmentations : list of SegmentationCandidate
        Chosen segmentation objects.
    pet_files : list of pathlib.Path or None
        A PET series sharing the image's FrameOfReference (or the manifest's PET).
    pet_series_uid : str or None
        Its SeriesInstanceUID.
    labels : str or None
        ``--labels`` string from the manifest.
    clinical_path : pathlib.Path or None
        Clinical sidecar named by the manifest (``"clinical"``).
    notes : list of str
        How the choice was made and anything ignored.
    source : str
        ``"manifest"``, ``"dicom"`` or ``"files"``.
    dicom_index : list of DicomFileInfo
        Header index of the folder (reuse with ``read_series_from_index``).
    """

    folder: Path
    image_path: Path
    image_files: list[Path]
    image_series_uid: str | None = None
    image_modality: str | None = None
    segmentations: list[SegmentationCandidate] = field(default_factory=list)
    pet_files: list[Path] | None = None
    pet_series_uid: str | None = None
    labels: str | None = None
    clinical_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "dicom"
    dicom_index: list[DicomFileInfo] = field(default_factory=list, repr=False)

    @property
    def segmentation_files(self) -> list[Path]:
        """Paths of the chosen segmentations."""
        return [s.path for s in self.segmentations]

    @property
    def segmentation_args(self) -> list[str]:
        """``--seg`` arguments (``PATH`` or ``ROLE=PATH``) for :func:`netlm_imaging.api.analyze`."""
        return [s.argument for s in self.segmentations]

    @property
    def pet_path(self) -> list[Path] | None:
        """PET files for ``analyze(pet=...)`` (alias of ``pet_files``)."""
        return self.pet_files


# ------------------------------------------------------------------ manifest
def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and validate a study manifest (JSON or TOML).

    Parameters
    ----------
    path : str or pathlib.Path
        ``netlm.json`` / ``netlm.toml`` (any name; TOML when it ends in ``.toml``).

    Returns
    -------
    dict
        ``image`` (str), ``segmentations`` (list of str), optional ``labels``
        (str) and ``pet`` (str).

    Raises
    ------
    InputError
        Unreadable file, unknown keys, or values of the wrong type.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the manifest ({type(exc).__name__}); check the file.") from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise InputError(f"{p}: manifest is not valid {kind} ({' '.join(str(exc).split())}); fix its syntax.") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: manifest must be an object with keys image, segmentations, labels, pet.")
    unknown = sorted(set(data) - _MANIFEST_KEYS)
    if unknown:
        raise InputError(
            f"{p}: unknown manifest key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_MANIFEST_KEYS))}."
        )
    if not isinstance(data.get("image"), str) or not data["image"].strip():
        raise InputError(f'{p}: manifest needs "image": a path (file or DICOM folder) or a SeriesInstanceUID.')
    segs = data.get("segmentations", [])
    if isinstance(segs, str):
        segs = [segs]
    if not isinstance(segs, list) or not segs or not all(isinstance(s, str) and s.strip() for s in segs):
        raise InputError(f'{p}: manifest "segmentations" must be a non-empty list of paths or ROLE=PATH strings.')
    for key in ("labels", "pet", "modality", "clinical"):
        if key in data and not isinstance(data[key], str):
            raise InputError(f'{p}: manifest "{key}" must be a string, got {type(data[key]).__name__}.')
    return {
        "image": data["image"].strip(),
        "segmentations": [s.strip() for s in segs],
        **{k: data[k] for k in ("labels", "pet", "modality", "clinical") if k in data},
    }


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def _series_files(index: list[DicomFileInfo], uid: str, where: Path, key: str) -> tuple[SeriesGroup, list[Path]]:
    groups = group_image_series(index)
    for g in groups:
        if g.uid == uid:
            return g, [f.path for f in g.files]
    listing = "; ".join(g.summary() for g in groups) or "none"
    raise InputError(f'{where}: manifest "{key}" names series {uid}, not found in the folder; available: {listing}.')


def _from_manifest(folder: Path, manifest_path: Path) -> DiscoveredStudy:
    m = load_manifest(manifest_path)
    base = manifest_path.parent
    index: list[DicomFileInfo] = []

    def resolve(value: str, key: str) -> Path:
        p = Path(value)
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise InputError(f'{manifest_path}: manifest "{key}" path {value} does not exist; fix the manifest.')
        return p

    image_uid: str | None = None
    modality: str | None = None
    image_value = m["image"]
    if _UID_RE.match(image_value) and not (base / image_value).exists():
        index = scan_dicom_folder(folder)
        group, image_files = _series_files(index, image_value, manifest_path, "image")
        image_path, image_uid, modality = folder, group.uid, group.modality
    else:
        image_path = resolve(image_value, "image")
        image_files = [image_path] if image_path.is_file() else []
    segs = []
    for entry in m["segmentations"]:
        head, sep, tail = entry.partition("=")
        role, value = (head, tail) if sep and re.fullmatch(r"[A-Za-z0-9_]+", head) else (None, entry)
        p = resolve(value, "segmentations")
        segs.append(SegmentationCandidate(path=p, kind=_file_kind(p), role=role or None))
    pet_files = None
    pet_uid = None
    if "pet" in m:
        if _UID_RE.match(m["pet"]) and not (base / m["pet"]).exists():
            index = index or scan_dicom_folder(folder)
            group, pet_files = _series_files(index, m["pet"], manifest_path, "pet")
            pet_uid = group.uid
        else:
            p = resolve(m["pet"], "pet")
            pet_files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    clinical = resolve(m["clinical"], "clinical") if "clinical" in m else None
    return DiscoveredStudy(
        folder=folder,
        image_path=image_path,
        image_files=image_files,
        image_series_uid=image_uid,
        image_modality=m.get("modality", modality),
        segmentations=segs,
        pet_files=pet_files,
        pet_series_uid=pet_uid,
        labels=m.get("labels"),
        clinical_path=clinical,
        notes=[f"inputs taken from the manifest {manifest_path.name}"],
        source="manifest",
        dicom_index=index,
    )


# ---------------------------------------------------------------------- DICOM
def _file_kind(p: Path) -> str:
    fmt = file_format(p.name)
    return "DICOM" if fmt is None else fmt.kind


def _seg_candidate(info: DicomFileInfo) -> SegmentationCandidate:
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


def _choose_segmentations(
    cands: list[SegmentationCandidate], seg_choice: str | None, folder: Path
) -> list[SegmentationCandidate]:
    listing = "; ".join(c.summary(i) for i, c in enumerate(cands, 1))
    if seg_choice is None:
        if len(cands) == 1:
            return cands
        raise DicomError(
            f"{folder}: {len(cands)} candidate segmentations: {listing}; choose with {_SEG_OPTION} "
            "(several: --seg-choice 1,2)."
        )
    chosen = []
    for token in (t.strip() for t in str(seg_choice).split(",") if t.strip()):
        if token.isdigit():
            n = int(token)
            if not 1 <= n <= len(cands):
                raise InputError(f"{folder}: --seg-choice {n} is out of range 1..{len(cands)}; candidates: {listing}.")
            chosen.append(cands[n - 1])
            continue
        match = [c for c in cands if token in (c.sop_instance_uid, c.series_uid, c.name)]
        match = match or [c for c in cands if token == c.path.name]  # ct_seg.nii.gz of ct/ct_seg.nii.gz
        if not match:
            raise InputError(f"{folder}: --seg-choice {token} matches no segmentation; candidates: {listing}.")
        chosen.extend(match)
    return list(dict.fromkeys(chosen))


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
    volumetric = [g for g in anatomical if not _is_scout(g)]
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
        f"choose one with {_SERIES_OPTION}."
    )


def _is_scout(group: SeriesGroup) -> bool:
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
        f"{seg.kind} references {which}; choose one with {_SERIES_OPTION} (e.g. --image-series {stacks[0].uid})."
    )


def _pet_for(image: SeriesGroup, groups: list[SeriesGroup], notes: list[str]) -> SeriesGroup | None:
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


def _from_dicom(
    folder: Path, index: list[DicomFileInfo], seg_choice: str | None, image_series: str | None
) -> DiscoveredStudy:
    groups = group_image_series(index)
    cands = [_seg_candidate(i) for i in index if i.kind in (SEG, RTSTRUCT)]
    notes: list[str] = []
    own = [c for c in cands if c.kind == SEG and is_own_output(_header_or_path(c))]
    if own:  # the tool's own derived SEG (a re-run on a study it already analysed) is never an input
        cands = [c for c in cands if c not in own]
        notes.append("netlm-imaging's own derived SEG not used as input: " + ", ".join(c.path.name for c in own))
    cands = _without_copies(cands, notes)
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
    chosen = _choose_segmentations(cands, seg_choice, folder)
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
                f"choose them one at a time with {_SEG_OPTION}, or the image with {_SERIES_OPTION}."
            )
        image = resolved[0][0]
        notes.extend(why for _, why in resolved)
    if len(cands) > len(chosen):
        notes.append("segmentation(s) not used: " + ", ".join(c.path.name for c in cands if c not in chosen))
    pet = _pet_for(image, groups, notes)
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


# ------------------------------------------------------------------ NIfTI etc.
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
            masks.append(SegmentationCandidate(path=p, kind=_file_kind(p), role=role))
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


def _from_files(folder: Path, seg_choice: str | None) -> DiscoveredStudy:
    vols = sorted(
        p for p in folder.iterdir() if p.is_file() and volume_base_name(p) is not None and not _is_apple_double(p)
    )
    images, pets, label_maps, masks = [], [], [], []
    unused: list[Path] = []  # volumes whose name has no role (other organs, vessels): listed in a note
    channel_notes: list[str] = []
    for p in vols:
        base = volume_base_name(p) or ""
        if p.name.lower().endswith(".seg.nrrd"):  # Slicer names its segments: Liver.seg.nrrd is no liver mask
            label_maps.append(SegmentationCandidate(path=p, kind=_file_kind(p)))
            continue
        role = role_of_mask_name(base)
        if role:
            masks.append(SegmentationCandidate(path=p, kind=_file_kind(p), role=role))
        elif base in IMAGE_NAMES or base.endswith("_0000") or LITS_IMAGE.fullmatch(base):
            images.append(p)
        elif base in PET_NAMES:
            pets.append(p)
        elif any(re.search(pat, base) for pat in LABEL_MAP_PATTERNS):
            label_maps.append(SegmentationCandidate(path=p, kind=_file_kind(p)))
        else:
            unused.append(p)
    if len(images) == 1 and (volume_base_name(images[0]) or "").endswith("_0000"):
        # nnU-Net: the prediction of case_001_0000.nii.gz is case_001.nii.gz (its numbering: io/nnunet.py)
        case = (volume_base_name(images[0]) or "")[: -len("_0000")]
        label_maps += [SegmentationCandidate(path=p, kind=_file_kind(p)) for p in unused if volume_base_name(p) == case]
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
        SegmentationCandidate(path=p, kind=_file_kind(p), shown=shown_name(p, folder))
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
        segs = _choose_segmentations(label_maps, seg_choice, folder)
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


# ----------------------------------------------------------------------- API
def discover_study(
    folder: str | Path,
    *,
    seg_choice: str | None = None,
    image_series: str | None = None,
    manifest: str | Path | None = None,
) -> DiscoveredStudy:
    """Find the image, segmentation(s) and PET of a study folder.

    Parameters
    ----------
    folder : str or pathlib.Path
        The study folder (walked recursively for DICOM).
    seg_choice : str, optional
        Which segmentation(s) to use when there are several: 1-based numbers
        from the listed candidates, SOPInstanceUID, SeriesInstanceUID or file
        name; comma-separated for several (CLI ``--seg-choice``).
    image_series : str, optional
        SeriesInstanceUID of the image, overriding the reference (CLI ``--image-series``).
    manifest : str or pathlib.Path, optional
        Manifest file; default ``netlm.json`` / ``netlm.toml`` in the folder.

    Returns
    -------
    DiscoveredStudy
        The choice and how it was made (``notes``).

    Raises
    ------
    DicomError
        Several candidate segmentations without a choice; a segmentation
        referencing a series absent from the folder; no segmentation; corrupt files.
    InputError
        Bad manifest, ambiguous or missing NIfTI/NRRD files.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass the study folder.")
    manifest_path = Path(manifest) if manifest is not None else None
    if manifest_path is None:
        manifest_path = next((root / n for n in MANIFEST_NAMES if (root / n).is_file()), None)
    elif not manifest_path.is_file():
        raise InputError(f"{manifest_path}: manifest file not found; check the path.")
    if manifest_path is not None:
        return _from_manifest(root, manifest_path)
    skipped: list[str] = []
    index = scan_dicom_folder(root, skipped)
    if any(i.kind in (IMAGE, SEG, RTSTRUCT) for i in index):
        found = _from_dicom(root, index, seg_choice, image_series)
    else:
        found = _from_files(root, seg_choice)
    found.notes[:0] = skipped  # junk files skipped while reading the folder (issue 12)
    return found


def study_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """The report's ``study`` identification block from a Volume's meta.

    Parameters
    ----------
    meta : dict
        ``Volume.meta`` from :func:`~netlm_imaging.io.dicom_series.read_dicom_series`.

    Returns
    -------
    dict
        study_instance_uid, series_instance_uid (``None`` when empty) and
        modality (``OT`` when not CT/MR/PT/NM). No patient identifiers.
    """
    modality = str(meta.get("modality") or "OT").upper()
    return {
        "study_instance_uid": meta.get("study_instance_uid") or None,
        "series_instance_uid": meta.get("series_instance_uid") or None,
        "modality": modality if modality in ("CT", "MR", "PT", "NM") else "OT",
    }


def candidates_in(folder: str | Path) -> list[SegmentationCandidate]:
    """All DICOM segmentation objects in a folder, in the listing order of ``--seg-choice``.

    Parameters
    ----------
    folder : str or pathlib.Path
        Study folder.

    Returns
    -------
    list of SegmentationCandidate
        SEG and RTSTRUCT objects (numbered from 1 in messages).
    """
    return [_seg_candidate(i) for i in scan_dicom_folder(Path(folder)) if i.kind in (SEG, RTSTRUCT)]

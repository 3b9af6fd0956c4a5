"""Reading one study: its image series, its segmentations as role layers, and the checks that
refuse what cannot be trusted (NaN voxels, ambiguous roles, no liver and no lesion).

The load stage (:mod:`netlm_imaging.stages.load`) calls these with what the discover stage
found; a folder scanned by discovery is not scanned again (its DICOM index and parsed SEG
datasets are passed in).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..segmentation import MaskLayer
from ..volume import Volume
from .label_spec import LabelSpec
from .role_decision import RoleDecision

__all__ = [
    "StudySegmentations",
    "check_image_values",
    "read_identifiers",
    "read_study_image",
    "read_study_segmentations",
    "seg_source",
]


@dataclass(frozen=True)
class StudySegmentations:
    """The role layers of every ``--seg`` argument of a study.

    Attributes
    ----------
    layers : list of MaskLayer
        As read (label maps on their own grid; SEG and RTSTRUCT on the image grid).
    sources : tuple of str
        The segmentation files, as written.
    role_decisions : list of RoleDecision
        How every named segment / ROI got its role.
    warnings : list of str
        The role summary and the readers' notes and warnings, in order.
    lesions_declared : bool
        Whether the segmentations declare a lesion role at all: a segment or ROI given the
        lesion role (even an empty one), a ``lesion=PATH`` mask, or a label map read with a
        mapping that has lesion values (the default LiTS mapping: 2). When False the study's
        lesions were not segmented, which is not the same as "no lesions".
    notes : list of str
        Where the label names of label maps came from (their exporter's label tables).
    """

    layers: list[MaskLayer]
    sources: tuple[str, ...]
    role_decisions: list[RoleDecision]
    warnings: list[str]
    lesions_declared: bool = True
    notes: list[str] = field(default_factory=list)


def seg_source(seg_arg: str | Path) -> str:
    """The file of a ``--seg`` argument (``ROLE=PATH`` or ``PATH``), as written.

    Examples
    --------
    >>> seg_source("liver=masks/liver.nii.gz")
    'masks/liver.nii.gz'
    """
    text = str(seg_arg)
    return text.split("=", 1)[1] if "=" in text and not Path(text).exists() else text


def read_study_image(
    image: str | Path,
    *,
    dicom_index: Sequence[Any] = (),
    series_uid: str | None = None,
    segs: Sequence[str] = (),
    allow_resample: bool = False,
    max_voxels: int | None = None,
) -> Volume:
    """The study's image: the chosen series of a scanned folder, else the file or folder read alone.

    A DICOM folder is scanned once (the modality check and the pixel read share the scan).
    A PET series with non-uniform slice steps is resampled by slice position (with a warning),
    never refused; other series only with ``allow_resample``. Without ``series_uid`` the
    series the segmentations reference is read.
    """
    from .loader import load_image

    index = list(dicom_index)
    if not index and Path(image).is_dir():
        from ._dicom_common import scan_dicom_folder

        index = scan_dicom_folder(Path(image))
    nonuniform = "resample" if (allow_resample or (bool(index) and _is_pet_series(index, series_uid))) else "error"
    if not index:
        return load_image(image, max_voxels=max_voxels, nonuniform=nonuniform, series_uid=series_uid)
    from .dicom_series import read_series_from_index
    from .dicom_series_header import series_referenced_by

    return read_series_from_index(
        index,
        series_uid=series_uid or series_referenced_by(index, list(segs)),
        nonuniform=nonuniform,
        max_voxels=max_voxels,
        where=str(image),
    )


def _is_pet_series(index: Sequence[Any], series_uid: str | None) -> bool:
    """Whether the image series of a scanned DICOM folder is PET (chosen UID, else every image is PT)."""
    images = [f for f in index if getattr(f, "kind", "IMAGE") == "IMAGE"]
    if series_uid:
        base = series_uid.split("#", 1)[0]  # "UID#n": a reconstruction split off one series
        images = [f for f in images if getattr(f, "series_uid", None) == base]
    return bool(images) and all(getattr(f, "modality", "") == "PT" for f in images)


def check_image_values(img: Volume) -> None:
    """Refuse an image with NaN or infinite voxels (its intensities cannot be trusted).

    Raises
    ------
    InputError
        Naming the file, the count and the fix.
    """
    arr = img.array
    # a finite float64 sum proves every voxel is finite without a full-size temporary
    if arr.dtype.kind == "f" and not np.isfinite(arr.sum(dtype=np.float64)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise InputError(
                f"{img.source}: image contains {bad} NaN/inf voxel(s); intensities cannot be trusted. "
                "Re-export the image (NaN often marks outside-of-FOV voxels: fill them with the background value)."
            )


def read_study_segmentations(
    segs: Sequence[str],
    img: Volume,
    spec: LabelSpec,
    *,
    dicom_index: Sequence[Any] = (),
    max_voxels: int | None = None,
    fractional_threshold: float = 0.5,
) -> StudySegmentations:
    """Every ``--seg`` argument as role layers, with the roles of the whole study checked.

    Raises
    ------
    LabelError
        Roles that are ambiguous across the study (:func:`~netlm_imaging.io.role_checks.check_decisions`).
    InputError
        No liver and no lesion mask came out of the segmentation files.
    """
    from .discover_names import expand_segmentation_folders
    from .loader import load_segmentation
    from .role_checks import check_decisions, summarize_decisions

    layers: list[MaskLayer] = []
    role_log: list[RoleDecision] = []
    segs, label_notes = expand_segmentation_folders(list(segs))
    # SEG datasets the folder scan parsed: handed to the SEG reader explicitly (no second parse)
    scanned = {str(Path(i.path).resolve()): i.dataset for i in dicom_index if getattr(i, "dataset", None) is not None}
    for s in segs:
        layers.extend(
            load_segmentation(
                s,
                img,
                spec,
                max_voxels=max_voxels,
                fractional_threshold=fractional_threshold,
                role_log=role_log,
                scanned=scanned.get(_resolved(s)),
                label_notes=label_notes,
            )
        )
    check_decisions(role_log, spec, found_roles={la.role for la in layers})
    _refuse_two_segmentations(segs, layers)
    warnings = list(summarize_decisions(role_log, spec))
    for la in layers:
        warnings.extend(la.mask.meta.get("notes", []))
        warnings.extend(str(w) for w in la.mask.meta.get("warnings", []))
    if not spec.user_given:
        warnings.extend(_versions_of_one_organ(layers))
    sources = tuple(seg_source(s) for s in segs)
    if sources and not any(la.role in ("liver", "lesion") for la in layers):
        roles = sorted({la.role for la in layers})
        if roles and all(r.startswith("segment") for r in roles):
            from .role_checks import couinaud_only

            raise InputError(couinaud_only(sources, roles))
        found = f"only {', '.join(roles)} masks" if roles else "no voxel with a liver or lesion label (an empty mask?)"
        raise InputError(
            f"{', '.join(sources)}: the segmentation holds {found}; pass the right --seg file, "
            "or map its labels with --labels liver=N,lesion=M."
        )
    named_masks = {la.source for la in layers if la.mask.meta.get("named_mask")}
    declared = any(la.role == "lesion" for la in layers) or _declares_lesions(segs, role_log, spec, named_masks)
    return StudySegmentations(layers, sources, role_log, warnings, declared, label_notes)


def _refuse_two_segmentations(segs: Sequence[str], layers: Sequence[MaskLayer]) -> None:
    """Refuse several label maps that each hold a liver and lesions: two segmentations of the study, not parts of it.

    Two models' outputs (a MONAI ``ct_seg`` and an nnU-Net prediction, two ``--ml`` maps) passed together were
    measured as their union, with a lesion-overlap warning at best. Parts of one segmentation are not refused:
    maps of different roles (TotalSegmentator's ``total`` liver beside its ``liver_vessels`` tumour), a map whose
    one structure has both roles (dcmqi's per-file split read with ``--labels liver=1,lesion=1``), and
    voxel-identical copies.

    Raises
    ------
    InputError
        Naming the files and the fix (one of them per run, or ``netlm compare-seg``).
    """
    from .formats import file_format
    from .loader import parse_seg_argument

    maps = []
    for s in dict.fromkeys(segs):
        role, file = parse_seg_argument(s)
        if role is None and file_format(file) is not None:  # not ROLE=PATH masks, not DICOM SEG / RTSTRUCT
            maps.append(str(file))
    if len(maps) < 2:  # the common case: no mask is looked at
        return
    complete: list[tuple[str, Volume, np.ndarray, np.ndarray]] = []
    for path in maps:
        mine = [la for la in layers if la.source == path and not la.mask.meta.get("named_mask")]
        liver = [la.binary() for la in mine if la.role == "liver"]
        lesion = [la.binary() for la in mine if la.role == "lesion"]
        if not liver or not lesion:
            continue
        liver_mask, lesion_mask = functools.reduce(np.logical_or, liver), functools.reduce(np.logical_or, lesion)
        if lesion_mask.any() and not np.array_equal(liver_mask, lesion_mask):
            complete.append((path, next(la.mask for la in mine if la.role == "liver"), liver_mask, lesion_mask))
    if len(complete) < 2:
        return
    first = complete[0]
    if all(
        c[1].shape == first[1].shape
        and np.allclose(c[1].affine, first[1].affine)
        and np.array_equal(c[2], first[2])
        and np.array_equal(c[3], first[3])
        for c in complete[1:]
    ):
        return  # copies of one segmentation: its union is itself
    names = [c[0] for c in complete]
    raise InputError(
        f"{' and '.join(names)}: {len(names)} label maps that each hold a liver and lesions are {len(names)} "
        "segmentations of the study, not parts of one, and their union would be a guess; pass one of them with "
        f"--seg and analyze the other in its own run, or compare them with netlm compare-seg --image IMAGE "
        f"--seg-a {names[0]} --seg-b {names[1]}."
    )


#: Two masks of one organ role sharing more than this fraction of the smaller one are two versions of it.
VERSION_OVERLAP = 0.5
_ORGANS = ("liver", "spleen", "kidney")


def _versions_of_one_organ(layers: Sequence[MaskLayer]) -> list[str]:
    """A warning per organ role given to several overlapping segments / ROIs by name or code.

    A structure set with ``Liver`` and ``Liver_1`` (MIM numbers a second liver so), or two ROIs
    named ``Liver`` (an automatic and an edited one), holds two versions of one organ, not two
    parts: their union, which is measured, is larger than either. Disjoint parts (two lobes)
    and identical copies change nothing and are not warned about.
    """
    from ..volume import nonzero_bbox

    out: list[str] = []
    for role in _ORGANS:
        chosen = [la for la in layers if la.role == role and la.label]
        if len(chosen) < 2 or len({(la.mask.shape, la.mask.affine.tobytes()) for la in chosen}) > 1:
            continue
        masks = [la.binary() for la in chosen]
        voxel_ml = chosen[0].mask.voxel_volume_ml
        pairs = []
        for a in range(len(chosen)):
            for b in range(a + 1, len(chosen)):
                box = nonzero_bbox(masks[a] | masks[b])
                if box is None:
                    continue
                ma, mb = masks[a][box], masks[b][box]
                na, nb, both = int(np.count_nonzero(ma)), int(np.count_nonzero(mb)), int(np.count_nonzero(ma & mb))
                if both > VERSION_OVERLAP * min(na, nb) and not (both == na == nb):
                    pairs.append((a, b, na, nb, both))
        if not pairs:
            continue
        a, b, na, nb, both = pairs[0]
        union_n = int(np.count_nonzero(np.logical_or.reduce(masks)))
        name_a, name_b = chosen[a].label, chosen[b].label
        out.append(
            f"{chosen[a].source}: {role} segments {name_a!r} ({na * voxel_ml:.2f} mL) and {name_b!r} "
            f"({nb * voxel_ml:.2f} mL) overlap by {100.0 * both / min(na, nb):.0f} % of the smaller: two versions "
            f"of the {role}, not two parts of it; their union ({union_n * voxel_ml:.2f} mL) was measured"
            + (
                f'. Choose one with --labels {role}="{name_a}" (the mapping then reads only what it names)'
                if name_a != name_b
                else " (they have one name, so --labels cannot choose between them: re-export the one you mean)"
            )
        )
    return out


def _declares_lesions(
    segs: Sequence[str], role_log: Sequence[RoleDecision], spec: LabelSpec, named_masks: AbstractSet[str] = frozenset()
) -> bool:
    """Whether any ``--seg`` argument declares a lesion role (see ``StudySegmentations.lesions_declared``).

    A file with named segments or ROIs declares one when one of them got the lesion role (also an
    empty one, which gives no layer); a ``lesion=PATH`` mask is a lesion layer even when empty, so
    the caller has seen it, and so is a 0/1 file read as the mask its name says (``named_masks``,
    their sources); any other file is a label map, which declares one when the mapping gives a value
    the lesion role.
    """
    from .loader import parse_seg_argument

    if any(d.role == "lesion" for d in role_log):
        return True
    named = {Path(d.source).name for d in role_log}
    map_has_lesion = any(isinstance(v, int) for v in spec.mapping.get("lesion", []))
    for s in segs:
        role, path = parse_seg_argument(s)
        label_map = role is None and path.name not in named and str(path) not in named_masks
        if label_map and map_has_lesion:  # ROLE=PATH: a layer of its role
            return True
    return False


def _resolved(seg_arg: str) -> str:
    """The resolved file path of a ``--seg`` argument, for lookups."""
    path = seg_source(seg_arg)
    try:
        return str(Path(path).resolve())
    except OSError:
        return path


def read_identifiers(img: Volume) -> dict[str, Any]:
    """PatientName, PatientID and PatientBirthDate of a DICOM image (empty for other formats).

    Only called when the user asked for identifiers in the outputs.
    """
    files = img.meta.get("files") or []
    if not files or img.meta.get("format") != "dicom":
        return {}
    import pydicom

    ds = pydicom.dcmread(
        files[0], stop_before_pixels=True, specific_tags=["PatientName", "PatientID", "PatientBirthDate"]
    )
    return {
        "patient_name": str(ds.get("PatientName", "")) or None,
        "patient_id": str(ds.get("PatientID", "")) or None,
        "patient_birth_date": str(ds.get("PatientBirthDate", "")) or None,
    }

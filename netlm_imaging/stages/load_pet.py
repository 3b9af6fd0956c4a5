"""PET in the load stage: SUVbw images, and the checks that refuse an implausible SUV scale.

A PET image (the main image, or ``--pet`` beside a CT / MR) is converted to SUVbw here
(:mod:`netlm_imaging.io.pet`) and its maximum is held against ``pet_plausibility.suv_max_limit``
(wrong weight, dose or units exit 3). Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume
from .discover import StudyInputs
from .options import AnalyzeOptions

__all__ = ["is_pet_series", "load_suv", "main_image_as_suv"]


def is_pet_series(index: Sequence[Any], series_uid: str | None) -> bool:
    """Whether the image series of a scanned DICOM folder is PET (chosen UID, else every image is PT)."""
    images = [f for f in index if getattr(f, "kind", "IMAGE") == "IMAGE"]
    if series_uid:
        base = series_uid.split("#", 1)[0]  # "UID#n": a reconstruction split off one series
        images = [f for f in images if getattr(f, "series_uid", None) == base]
    return bool(images) and all(getattr(f, "modality", "") == "PT" for f in images)


def main_image_as_suv(img: Volume, opts: AnalyzeOptions, rules: Any) -> Volume:
    """A PET main image in SUVbw (checked for its scale); any other image unchanged."""
    if img.meta.get("modality") != "PT":
        return img
    from ..io.pet import suv_from_modality_volume

    suv = suv_from_modality_volume(img, weight_kg=opts.weight_kg, plausibility=_plausibility(rules))
    _check_suv_scale(suv, rules)
    return suv


def load_suv(img: Volume, inputs: StudyInputs, opts: AnalyzeOptions, rules: Any) -> tuple[Volume | None, list[str]]:
    """The study's SUVbw image and the warnings of its conversion.

    The ``--pet`` series (read from the folder scan when it indexed every PET file), else the
    main image when it is already in SUVbw, else None.
    """
    if inputs.pet is None:
        return (img if img.meta.get("units") == "SUVbw" else None), []
    from ..io.pet import load_suv_volume, suv_from_modality_volume

    scanned = _scanned_pet(inputs)
    if scanned:  # the study folder's scan already indexed the PET files: no second scan
        from ..io.dicom_series import read_series_from_index

        vol = read_series_from_index(
            scanned, nonuniform="resample", max_voxels=opts.max_voxels, where=str(scanned[0].path.parent)
        )
        suv = suv_from_modality_volume(vol, weight_kg=opts.weight_kg, plausibility=_plausibility(rules))
    else:
        suv = load_suv_volume(
            inputs.pet, weight_kg=opts.weight_kg, max_voxels=opts.max_voxels, plausibility=_plausibility(rules)
        )
    _check_suv_scale(suv, rules)
    return suv, list(suv.meta.get("warnings", []))


def _plausibility(rules: Any) -> Any:
    return rules["pet_plausibility"] if rules is not None and "pet_plausibility" in rules else None


def _check_suv_scale(suv: Volume, rules: Any) -> None:
    """Exit 3 when the SUV image's maximum is above ``pet_plausibility.suv_max_limit`` (wrong weight/dose/units)."""
    from ..io.pet_plausibility import check_suv_max, plausibility_limits

    arr = np.asarray(suv.array)
    finite = arr[np.isfinite(arr)]
    if finite.size:
        meta = suv.meta.get("suv")
        summary = meta if isinstance(meta, dict) else {}
        check_suv_max(float(finite.max()), summary, plausibility_limits(_plausibility(rules)), suv.source)


def _scanned_pet(inputs: StudyInputs) -> list[Any]:
    """The folder scan's entries of the PET files (empty unless every PET file was scanned)."""
    if not inputs.dicom_index or not isinstance(inputs.pet, list) or not inputs.pet:
        return []
    wanted = {Path(p) for p in inputs.pet}
    infos = [f for f in inputs.dicom_index if Path(f.path) in wanted]
    return infos if len({Path(f.path) for f in infos}) == len(wanted) else []

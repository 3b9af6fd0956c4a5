"""MONAI's output layout: the segmentation of ``<stem>.nii.gz`` saved as ``<stem>/<stem>_<postfix>.nii.gz``.

MONAI's ``SaveImage`` / ``SaveImaged`` (and the bundles' inference configs built on them) write each
output to ``<output_dir>/<stem>/<stem>_<postfix><ext>`` by default (``separate_folder=True``), where
``<stem>`` is the input image's file name without its extension and ``<postfix>`` is
``output_postfix``: ``trans`` by default, ``seg`` in the segmentation bundles, or any name the
config gives. A study folder holding the image and MONAI's output folder therefore holds
``ct.nii.gz`` beside ``ct/ct_seg.nii.gz``: :func:`monai_outputs` finds the latter for the study
discovery (:mod:`netlm_imaging.io.discover`), which uses it only when it is the one candidate.
"""

from __future__ import annotations

from pathlib import Path

from .formats import volume_base_name

__all__ = ["monai_outputs", "shown_name"]


def monai_outputs(folder: Path, image: Path) -> list[Path]:
    """The volumes ``<stem>_<postfix>`` in the subfolder of ``folder`` named after the image's ``<stem>``.

    Parameters
    ----------
    folder : pathlib.Path
        The study folder.
    image : pathlib.Path
        The image found in it (``ct.nii.gz``: its stem ``ct``).

    Returns
    -------
    list of pathlib.Path
        Sorted; empty when there is no such subfolder or it holds no such volume. A file that is not
        ``<stem>_...`` (a copy of the image, another tool's output) is not a MONAI output.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "ct").mkdir()
    >>> for name in ("ct_seg.nii.gz", "ct.nii.gz", "notes.txt"):
    ...     _ = (d / "ct" / name).write_bytes(b"")
    >>> [p.name for p in monai_outputs(d, d / "ct.nii.gz")]
    ['ct_seg.nii.gz']
    """
    stem = volume_base_name(image)
    if not stem:
        return []
    found: list[Path] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower() == stem):
        for p in sorted(sub.iterdir()):
            base = volume_base_name(p) if p.is_file() and not p.name.startswith("._") else None
            if base is not None and base.startswith(stem + "_") and len(base) > len(stem) + 1:
                found.append(p)
    return found


def shown_name(path: Path, folder: Path) -> str:
    """``path`` relative to the study ``folder`` (``ct/ct_seg.nii.gz``), for messages; its name when outside."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name

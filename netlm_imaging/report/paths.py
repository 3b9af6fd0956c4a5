"""Paths in a report, written relative to the study folder.

No folder above the study (patient names, MRNs, user folders) reaches a report: the report
stage passes its fields through :func:`relative_paths` before it builds the
:class:`~netlm_imaging.report.model.StudyReport`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import readable

__all__ = ["relative_paths"]

#: A spelling of the root is replaced only where it starts a token: "p2" inside "/mnt/p2/x" or
#: "2" inside "132" or "1.92" is not the root.
_BEFORE = r"(?<![\w.\-/\\])"


def _reads_as_text(form: str) -> bool:
    """A bare folder name (no separator) that the report's own texts also write: a number of up to
    four digits or a name of one or two characters ("2", "17", "C"). A cohort folder named "2" is
    no identifier, and replacing its name in free text made "ablate 2 lesion(s)" read "ablate study
    folder lesion(s)" and "[C]" read "[study folder]"; such a name is replaced only as a path
    (``2/ct.nii.gz``, not ``2/3`` lesions) or as the whole text.

    Examples
    --------
    >>> [_reads_as_text(f) for f in ("2", "0017", "C", "p2x", "DOE_JOHN", "/data/2")]
    [True, True, True, False, False, False]
    """
    return os.sep not in form and (re.fullmatch(r"\d{1,4}", form) is not None or len(form) <= 2)


def relative_paths(fields: Mapping[str, Any], root: Path | None) -> dict[str, Any]:
    """The report's fields with every path written relative to ``root``.

    ``study.image_source`` and ``study.segmentation_sources`` become relative paths (``.`` for
    the root itself); the root inside any other text (warnings, notes, sources) becomes
    "study folder". Every spelling of the root is replaced: as given, absolute, resolved and
    relative to the current folder. Bytes of a file name that are not UTF-8 become U+FFFD
    (:func:`~netlm_imaging.errors.readable`), with or without a root.

    Examples
    --------
    >>> root = Path("/data/Doe^John")
    >>> out = relative_paths({"study": {"image_source": "/data/Doe^John/ct"}, "warnings": ["/data/Doe^John: x"]}, root)
    >>> out["study"]["image_source"], out["warnings"]
    ('ct', ['study folder: x'])
    """
    spellings = {str(root), os.path.abspath(root), str(root.resolve())} if root is not None else set()
    with contextlib.suppress(ValueError):
        if root is not None:
            spellings.add(os.path.relpath(root))  # how a path given relative to the current folder was written
    forms = sorted((f for f in spellings if f not in (".", "") and not f.startswith("..")), key=len, reverse=True)

    def rel(text: str, bare: str) -> str:
        if not any(f in text for f in forms):  # most texts name no path: nothing to replace
            return text
        for f in forms:
            if text == f:
                return "."
            if _reads_as_text(f):  # "3/ct.nii.gz" is a path, "3/3 lesions" a count
                text = re.sub(_BEFORE + re.escape(f + os.sep) + r"(?=[^\d\s])", "", text)
                continue
            text = re.sub(_BEFORE + re.escape(f + os.sep), "", text)
            text = re.sub(_BEFORE + re.escape(f) + r"(?=$|[\s:;,()\]])", bare, text)
        return text

    def walk(v: Any, bare: str) -> Any:
        if isinstance(v, str):
            return readable(rel(v, bare))
        if isinstance(v, list):
            return [walk(x, bare) for x in v]
        if isinstance(v, dict):
            return {k: walk(x, bare) for k, x in v.items()}
        return v

    out = dict(fields)
    if isinstance(out.get("study"), dict):
        study = dict(out["study"])
        for key in ("image_source", "segmentation_sources"):
            if key in study:
                study[key] = walk(study[key], ".")
        out["study"] = study
    return {k: walk(v, "study folder") if isinstance(v, (dict, list)) else v for k, v in out.items()}

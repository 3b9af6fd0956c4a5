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
            text = text.replace(f + os.sep, "")
            text = re.sub(re.escape(f) + r"(?=$|[\s:;,()\]])", bare, text)
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

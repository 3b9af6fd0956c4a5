"""nibabel, imported without pydicom: a NIfTI analysis then never loads the DICOM stack.

nibabel's ``nifti1`` module imports pydicom whenever it is installed, only to decode NIfTI
header extensions of code 2 (a DICOM dataset), which netlm-imaging never reads; without
pydicom nibabel keeps such an extension as raw bytes, as it does on machines without
pydicom. pydicom's import (its pixel handlers, ``pydicom.data`` and with it ``urllib``,
``requests``, ``ssl``) is about half of nibabel's: some 70-130 ms of every fresh NIfTI
analysis and of each ``netlm batch`` start.

:func:`import_nibabel` imports nibabel with a finder on ``sys.meta_path`` that answers
"not installed" to an import of pydicom made from nibabel's ``optpkg`` (its optional
import). Other imports of pydicom, in this thread or any other, while nibabel loads or
after, are untouched: the finder looks at the importing frame, not at a shared switch.
When pydicom is already loaded (a DICOM study came first), nibabel takes it as before.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Sequence
from types import FrameType, ModuleType
from typing import Any

__all__ = ["import_nibabel"]

_LOCK = threading.Lock()


class _NoPydicomForNibabel(importlib.abc.MetaPathFinder):
    """Refuses ``import pydicom`` when nibabel's optional-package helper asks for it."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if fullname != "pydicom":
            return None
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") == "nibabel.optpkg":
                raise ModuleNotFoundError("pydicom is not loaded for nibabel's DICOM extensions", name="pydicom")
            frame = frame.f_back
        return None


def import_nibabel() -> ModuleType:
    """The ``nibabel`` module, imported (the first time) without pydicom unless it is already loaded."""
    loaded = sys.modules.get("nibabel")
    if loaded is not None:
        return loaded
    with _LOCK:
        finder = _NoPydicomForNibabel()
        sys.meta_path.insert(0, finder)
        try:
            import nibabel
        finally:
            sys.meta_path.remove(finder)
    return nibabel

"""Import-time savings that do not change what any library does for netlm.

pydicom imports ``requests`` (and with it urllib3, idna, charset_normalizer
and certifi) only so that ``pydicom.data`` can download pydicom's own test
files; it falls back to :mod:`urllib` when ``requests`` is missing. netlm
never downloads those files, and the import costs a fresh ``netlm analyze``
about 30 ms (a tenth of the analysis). :func:`pydicom_without_requests`
arranges that the first import of pydicom in this process does not import
``requests``; ``requests`` itself stays importable, before and after, for
whoever needs it (the DICOMweb client imports it as usual).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

__all__ = ["pydicom_without_requests"]


class _FirstPydicomImport(importlib.abc.MetaPathFinder):
    """Finds ``pydicom`` once, and runs its module code with ``requests`` marked unavailable."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pydicom":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one-shot; also keeps the lookup below from finding itself
        spec = importlib.util.find_spec("pydicom")
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module") or "requests" in sys.modules:
            return spec
        real_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            sys.modules["requests"] = None  # type: ignore[assignment]  # `import requests` raises ImportError
            try:
                real_exec(module)
            finally:
                if sys.modules.get("requests", 0) is None:
                    del sys.modules["requests"]

        loader.exec_module = exec_module
        return spec


def pydicom_without_requests() -> None:
    """Have the first import of pydicom skip ``requests`` (no effect when pydicom is already imported)."""
    if "pydicom" in sys.modules or any(isinstance(f, _FirstPydicomImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstPydicomImport())

"""netlm-imaging: hepatic tumour burden of neuroendocrine tumour liver metastases.

The public API is imported lazily so that ``netlm --help`` stays fast.
"""

from __future__ import annotations

import logging
from typing import Any

from ._imports import pydicom_without_requests
from ._version import __version__

__all__ = ["Volume", "__version__", "analyze"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
pydicom_without_requests()


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from .api import analyze

        return analyze
    if name == "Volume":
        from .volume import Volume

        return Volume
    raise AttributeError(f"module 'netlm_imaging' has no attribute {name!r}")

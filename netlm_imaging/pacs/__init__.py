"""PACS access over DICOMweb: pull a study, analyse it, push the DICOM SR / SEG back."""

from __future__ import annotations

__all__ = ["PacsCredentials", "analyze_pacs_study", "load_credentials"]


def __getattr__(name: str) -> object:  # lazy: `netlm --help` must not import requests or dicomweb-client
    if name in __all__:
        from . import dicomweb

        return getattr(dicomweb, name)
    raise AttributeError(f"module 'netlm_imaging.pacs' has no attribute {name!r}")

"""The presentation contexts of our DIMSE associations: which SOP classes, in which transfer syntaxes.

A C-GET association must propose every SOP class the PACS will send back on it (PS3.4 C.4.3): a class
left out fails its C-STORE sub-operation. For the classes whose pixels are measured, each compressed
syntax gets its own presentation context, so the PACS can send an instance as it is stored. pynetdicom
allows 128 presentation contexts per association.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = [
    "accept_any_storage_class",
    "add_storage_scp_contexts",
    "compressed_syntaxes",
    "get_contexts",
    "measured_classes",
    "release_any_storage_class",
    "storage_classes",
    "transfer_syntaxes",
    "uncompressed_syntaxes",
]

#: Classes whose pixels are measured: offered in every transfer syntax we decode, one presentation context per
#: compressed syntax, so a PACS sends each instance as stored instead of transcoding it (PS3.8 9.3.2.2: the
#: acceptor picks one syntax per context; a context listing several gets the PACS's choice, often an uncompressed
#: one it cannot transcode a JPEG 2000 instance to).
_PIXEL_CLASSES = (
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "MRImageStorage",
    "EnhancedMRImageStorage",
    "PositronEmissionTomographyImageStorage",
    "EnhancedPETImageStorage",
    "NuclearMedicineImageStorage",
    "SegmentationStorage",
    "LabelMapSegmentationStorage",
)
#: Other objects a liver study holds (structure sets, reports, key objects, presentation states, dose reports,
#: screenshots): offered uncompressed so that their C-GET sub-operations do not fail the retrieval.
_OTHER_CLASSES = (
    "RTStructureSetStorage",
    "Comprehensive3DSRStorage",
    "ComprehensiveSRStorage",
    "EnhancedSRStorage",
    "BasicTextSRStorage",
    "ExtensibleSRStorage",
    "KeyObjectSelectionDocumentStorage",
    "GrayscaleSoftcopyPresentationStateStorage",
    "ColorSoftcopyPresentationStateStorage",
    "XRayRadiationDoseSRStorage",
    "EnhancedXRayRadiationDoseSRStorage",
    "RadiopharmaceuticalRadiationDoseSRStorage",
    "PatientRadiationDoseSRStorage",
    "EncapsulatedPDFStorage",
    "SecondaryCaptureImageStorage",
    "UltrasoundImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "RTDoseStorage",
    "RTPlanStorage",
    "SurfaceSegmentationStorage",
)


def storage_classes() -> list[str]:
    """SOP classes a retrieved study may hold (images, SEG, RTSTRUCT, SR, KO, PR ...)."""
    from pynetdicom import sop_class as s

    return [str(getattr(s, n)) for n in (*_PIXEL_CLASSES, *_OTHER_CLASSES) if hasattr(s, n)]


def measured_classes() -> list[str]:
    """SOP classes whose instances a measurement may need (images, SEG, RTSTRUCT): a retrieval may do without
    the others (reports, key objects, presentation states, screenshots, raw data), never without these."""
    from pynetdicom import sop_class as s

    return [str(getattr(s, n)) for n in (*_PIXEL_CLASSES, "RTStructureSetStorage") if hasattr(s, n)]


def uncompressed_syntaxes() -> list[str]:
    from pydicom import uid

    return [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian]


def compressed_syntaxes() -> list[str]:
    from pydicom import uid

    return [
        uid.JPEGLSLossless,
        uid.JPEG2000Lossless,
        uid.RLELossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
    ]


def transfer_syntaxes() -> list[str]:
    return [*uncompressed_syntaxes(), *compressed_syntaxes()]


def get_contexts() -> list[tuple[str, list[str]]]:
    """(SOP class, transfer syntaxes) of the presentation contexts a C-GET proposes (at most 127 + the GET one)."""
    from pynetdicom import sop_class as s

    contexts: list[tuple[str, list[str]]] = []
    for name in _PIXEL_CLASSES:
        if hasattr(s, name):
            sop = str(getattr(s, name))
            contexts.append((sop, uncompressed_syntaxes()))
            contexts.extend((sop, [ts]) for ts in compressed_syntaxes())
    contexts.extend((str(getattr(s, n)), uncompressed_syntaxes()) for n in _OTHER_CLASSES if hasattr(s, n))
    return contexts


def add_storage_scp_contexts(ae: Any) -> None:
    """Make ``ae`` a storage SCP that takes whatever is sent, as stored: every storage class, every transfer syntax.

    Our C-STORE SCPs (the C-MOVE destination, ``netlm listen``) accept each storage SOP class pynetdicom
    knows in every transfer syntax pydicom knows, so no sender has to transcode.
    """
    from pydicom import uid as tsuid
    from pynetdicom import AllStoragePresentationContexts

    syntaxes = [*tsuid.AllTransferSyntaxes]
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(str(cx.abstract_syntax), syntaxes)


_any_class_lock = threading.Lock()
_any_class_users: list[bool] = []  # one entry per running SCP; the first holds pynetdicom's setting before


def accept_any_storage_class() -> None:
    """While one of our storage SCPs runs, accept every storage SOP class, private and unknown ones too.

    A Siemens study holds CSA Non-Image objects (1.3.12.2.1107.5.9.1), other vendors their own private
    classes: an SCP that rejects their presentation context makes the sender fail them, and Orthanc then
    fails the whole C-MOVE (0xC000, no sub-operation). pynetdicom's switch for this,
    ``_config.UNRESTRICTED_STORAGE_SERVICE``, is process-wide: it is on from the first call to the last
    matching :func:`release_any_storage_class`, and restored then.
    """
    from pynetdicom import _config

    with _any_class_lock:
        _any_class_users.append(bool(_config.UNRESTRICTED_STORAGE_SERVICE))
        _config.UNRESTRICTED_STORAGE_SERVICE = True


def release_any_storage_class() -> None:
    """End one :func:`accept_any_storage_class` (the last one restores pynetdicom's setting)."""
    from pynetdicom import _config

    with _any_class_lock:
        if _any_class_users:
            before = _any_class_users.pop()
            if not _any_class_users:
                _config.UNRESTRICTED_STORAGE_SERVICE = before

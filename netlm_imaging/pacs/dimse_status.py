"""DIMSE status codes as pynetdicom classes them, and the retry of a PACS's transient refusals.

A status is read by its category (:func:`pynetdicom.status.code_to_category`: Success, Warning, Failure,
Cancel, Pending), never by a list of codes written here: a final C-FIND status of the Warning class
(0x0001, 0xB000-range, 0x0107 ...) means the answers came, with a remark of the PACS, not a refusal.

Examples
--------
>>> category(0xB000), category(0x0000), category(0xA700), category(0xFF00)
('Warning', 'Success', 'Failure', 'Pending')
>>> describe(0xA700, "store")
'0xA700 (Refused: Out of Resources)'
>>> out_of_resources(0xA702), out_of_resources(0xC000)
(True, False)
"""

from __future__ import annotations

import logging

__all__ = ["category", "describe", "out_of_resources"]

logger = logging.getLogger(__name__)


def category(code: int) -> str:
    """pynetdicom's category of a DIMSE status code: ``Success``, ``Warning``, ``Failure``, ``Cancel`` ..."""
    from pynetdicom.status import code_to_category

    return str(code_to_category(int(code)))


def describe(code: int, service: str) -> str:
    """``0xCODE (meaning)`` of a status of ``service`` (``find``, ``get``, ``move``, ``store``) as pynetdicom says."""
    from pynetdicom import status

    tables = {
        "find": status.QR_FIND_SERVICE_CLASS_STATUS,
        "get": status.QR_GET_SERVICE_CLASS_STATUS,
        "move": status.QR_MOVE_SERVICE_CLASS_STATUS,
        "store": status.STORAGE_SERVICE_CLASS_STATUS,
    }
    known = {**status.GENERAL_STATUS, **tables.get(service, {})}
    meaning = known.get(int(code), (None, ""))[1]
    return f"0x{int(code):04X}" + (f" ({meaning})" if meaning else "")


def out_of_resources(code: int) -> bool:
    """PS3.4 C.4 / B.2.3: 0xA700-0xA7FF, the PACS is refusing for want of resources (a transient state)."""
    return 0xA700 <= int(code) <= 0xA7FF

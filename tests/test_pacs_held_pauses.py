"""The rules key ``pacs.held_retry_pauses_s``: after a C-STORE of our results, how long the PACS is given to
show (C-FIND, IMAGE level) that it holds them before it is taken for one that discarded them.

The PACS is a real pynetdicom AE on loopback (Storage SCP for Segmentation Storage, Study Root C-FIND SCP)
that indexes slowly: an instance it stored is found by a C-FIND only ``INDEX_DELAY_S`` after its C-STORE was
answered. The object stored is the DICOM SEG of tests/test_sr.py's phantom study.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from rules_coverage import covers

from netlm_imaging.errors import InputError
from netlm_imaging.pacs.dimse import DimseEndpoint, store_files
from netlm_imaging.pacs.dimse_assoc import FIND, with_rules
from tests.orthanc_server import _free_port
from tests.test_sr import write_phantom_study

INDEX_DELAY_S = 0.4


class _SlowIndexingPacs:
    """A C-STORE + C-FIND SCP whose C-FIND finds an instance only INDEX_DELAY_S after it was stored."""

    def __init__(self, sop_class: str) -> None:
        from pynetdicom import AE, evt

        self.port = _free_port()
        self.stored_at: dict[str, float] = {}
        self.finds = 0
        self._lock = threading.Lock()
        ae = AE(ae_title="PACS")
        ae.add_supported_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        ae.add_supported_context(FIND)
        handlers = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_FIND, self._find)]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    def _store(self, event) -> int:
        with self._lock:
            self.stored_at[str(event.dataset.SOPInstanceUID)] = time.monotonic()
        return 0x0000

    def _find(self, event) -> Iterator:
        q = event.identifier
        with self._lock:
            self.finds += 1
            since = self.stored_at.get(str(q.SOPInstanceUID))
        if since is not None and time.monotonic() - since >= INDEX_DELAY_S:
            answer = pydicom.Dataset()
            answer.QueryRetrieveLevel = "IMAGE"
            answer.StudyInstanceUID, answer.SeriesInstanceUID = q.StudyInstanceUID, q.SeriesInstanceUID
            answer.SOPInstanceUID = q.SOPInstanceUID
            yield 0xFF00, answer

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def seg(tmp_path_factory) -> Path:
    return Path(write_phantom_study(tmp_path_factory.mktemp("held_study"), seed=61)["seg"])


def _rules(tmp_path: Path, pauses: list[float]) -> Path:
    path = tmp_path / f"rules_{len(pauses)}.json"
    path.write_text(json.dumps({"pacs": {"held_retry_pauses_s": pauses}}))
    return path


def _store(seg: Path, rules: Path | None) -> tuple[_SlowIndexingPacs, list[str] | InputError]:
    pacs = _SlowIndexingPacs(str(pydicom.dcmread(seg, stop_before_pixels=True).SOPClassUID))
    try:
        ep = with_rules(DimseEndpoint("127.0.0.1", pacs.port, "PACS", "NETLM", timeout_s=10.0), rules)
        try:
            return pacs, store_files(ep, [seg])
        except InputError as exc:
            return pacs, exc
    finally:
        pacs.stop()


@covers("pacs.held_retry_pauses_s")
def test_the_rules_pauses_decide_whether_a_slowly_indexing_pacs_is_seen_to_hold_the_result(seg, tmp_path):
    uid = str(pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID)
    # []: asked once, at once: the PACS has not indexed the SEG yet, so it is reported as not holding it
    pacs, got = _store(seg, _rules(tmp_path, []))
    assert isinstance(got, InputError), got
    assert f"answered success to the C-STORE of the SEG result ({uid}) but does not hold it 0 s later" in str(got)
    assert "rules key pacs.held_retry_pauses_s" in str(got)
    assert pacs.finds == 1
    # one pause longer than its indexing: asked again, and held
    pacs, got = _store(seg, _rules(tmp_path, [2 * INDEX_DELAY_S]))
    assert got == [uid]
    assert pacs.finds == 2
    # the shipped pauses (0.5 s, 1.5 s) give it the time too
    pacs, got = _store(seg, None)
    assert got == [uid]
    assert pacs.finds == 2


def test_negative_held_pauses_are_refused_naming_the_key(tmp_path):
    from netlm_imaging.classify.rules import load_rules

    with pytest.raises(InputError, match=r"'pacs.held_retry_pauses_s' must list pauses in seconds >= 0"):
        load_rules(_rules(tmp_path, [0.5, -1.0]))

"""`netlm listen` receiving a study from a PACS that stores it compressed and does not transcode.

Such a PACS proposes only the syntax each instance is stored in (JPEG 2000 lossless, JPEG-LS lossless,
RLE lossless, deflate): the listener must accept it, keep the instance as received, and measure the study
as the uncompressed one. The sender is pynetdicom on loopback, proposing one compressed syntax only; the
listener runs in-process on a free 127.0.0.1 port and is stopped. The study is tests/test_sr.py's CT + SEG
phantom (truth: its voxel counts), its CT slices re-encoded by tests/test_pacs_transfer_syntaxes.py's
helper (pydicom with pylibjpeg / pyjpegls, SOP Instance UIDs kept: the SEG references them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from netlm_imaging.pacs.listener import ListenerConfig, StudyListener
from tests.orthanc_server import _free_port
from tests.test_pacs_transfer_syntaxes import SYNTAXES, _encode
from tests.test_sr import VOXEL_ML, write_phantom_study


@pytest.mark.parametrize("name", list(SYNTAXES))
def test_a_study_sent_only_compressed_is_kept_as_sent_and_measured_as_the_uncompressed_one(
    name: str, tmp_path: Path
) -> None:
    from pynetdicom import AE

    syntax = SYNTAXES[name]
    d = write_phantom_study(tmp_path / "study", seed=80)
    files = _encode(d["files"], syntax, tmp_path / "encoded")
    listener = StudyListener(
        ListenerConfig(
            port=_free_port(), ae_title="LISTENER", out_dir=tmp_path / "listen", bind="127.0.0.1", quiet_s=0.5
        ),
        on_line=lambda line: None,
    )
    listener.start()
    try:
        ae = AE(ae_title="ARCHIVE")
        ct = [pydicom.dcmread(f) for f in files]
        seg = pydicom.dcmread(d["seg"])
        ae.add_requested_context(str(ct[0].SOPClassUID), [syntax])  # as stored, nothing else
        ae.add_requested_context(str(seg.SOPClassUID), [str(seg.file_meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", listener.config.port, ae_title="LISTENER")
        assert assoc.is_established
        statuses = [assoc.send_c_store(ds).Status for ds in [*ct, seg]]
        assoc.release()
        assert statuses == [0x0000] * 21
        study = str(ct[0].StudyInstanceUID)
        log = tmp_path / "listen" / "listen.log"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not log.exists():
            time.sleep(0.1)
    finally:
        listener.stop()
    (line,) = log.read_text().splitlines()
    assert f"study {study}: 21 instances: ok" in line, line
    kept = pydicom.dcmread(tmp_path / "listen" / "incoming" / study / f"{ct[0].SOPInstanceUID}.dcm")
    assert kept.file_meta.TransferSyntaxUID == syntax  # stored as received
    assert np.array_equal(kept.pixel_array, pydicom.dcmread(d["files"][0]).pixel_array)
    report = json.loads((tmp_path / "listen" / study / "report.json").read_text())
    truth = d["truth"]
    assert report["liver"]["volume_ml"] == pytest.approx(truth["liver_volume_ml"], abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(truth["tumor_volume_ml"], abs=1e-3)
    n_total = round(truth["liver_volume_ml"] / VOXEL_ML)
    n_tumour = round(truth["tumor_volume_ml"] / VOXEL_ML)
    mean_hu = ((n_total - n_tumour) * 60.0 + n_tumour * 120.0) / n_total  # the phantom's HU: liver 60, lesions 120
    assert report["liver"]["mean_intensity"] == pytest.approx(mean_hu, abs=1e-3)


def test_a_private_sop_class_in_the_study_is_taken_and_the_study_measured(tmp_path: Path) -> None:
    """A Siemens study's CSA Non-Image object (private SOP class 1.3.12.2.1107.5.9.1) routed with it: the
    listener rejected its presentation context, so the sender failed it (a PACS routing rule retries it
    or flags the study); it is now accepted and kept, and the CT + SEG are measured to the truth."""
    from pynetdicom import AE, _config

    from tests.test_dimse_get_unsendable import SIEMENS_CSA_NON_IMAGE, _extra

    d = write_phantom_study(tmp_path / "study", seed=81)
    ct = [pydicom.dcmread(f) for f in d["files"]]
    seg = pydicom.dcmread(d["seg"])
    csa = pydicom.dcmread(_extra(tmp_path / "csa.dcm", ct[0], SIEMENS_CSA_NON_IMAGE, "listen csa", 92))
    listener = StudyListener(
        ListenerConfig(
            port=_free_port(), ae_title="LISTENER", out_dir=tmp_path / "listen", bind="127.0.0.1", quiet_s=0.5
        ),
        on_line=lambda line: None,
    )
    listener.start()
    try:
        ae = AE(ae_title="SIEMENS")
        for ds in (ct[0], seg, csa):
            ae.add_requested_context(str(ds.SOPClassUID), [str(ds.file_meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", listener.config.port, ae_title="LISTENER")
        assert assoc.is_established
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        statuses = [assoc.send_c_store(ds).Status for ds in [csa, *ct, seg] if str(ds.SOPClassUID) in accepted]
        assoc.release()
        study = str(ct[0].StudyInstanceUID)
        log = tmp_path / "listen" / "listen.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not log.exists():
            time.sleep(0.1)
    finally:
        listener.stop()
    assert SIEMENS_CSA_NON_IMAGE in accepted
    assert statuses == [0x0000] * 22
    assert (tmp_path / "listen" / "incoming" / study / f"{csa.SOPInstanceUID}.dcm").is_file()
    (line,) = log.read_text().splitlines()
    assert f"study {study}: 22 instances: ok" in line, line
    report = json.loads((tmp_path / "listen" / study / "report.json").read_text())
    assert report["liver"]["volume_ml"] == pytest.approx(d["truth"]["liver_volume_ml"], abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(d["truth"]["tumor_volume_ml"], abs=1e-3)
    assert _config.UNRESTRICTED_STORAGE_SERVICE is False  # restored when the listener stopped

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

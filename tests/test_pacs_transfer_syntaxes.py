"""Studies stored compressed in a real Orthanc (JPEG 2000, JPEG-LS, RLE lossless, deflate) come back with the
same pixels and the same numbers over C-GET, C-MOVE and WADO-RS.

The CT slices of tests/test_sr.py's phantom are re-encoded with pydicom (pylibjpeg-openjpeg, pyjpegls,
pylibjpeg-rle, zlib), keeping their SOP Instance UIDs (the SEG references them), and uploaded to Orthanc
in that syntax. The truth is the phantom's voxel counts and ``netlm analyze`` of the same study's
uncompressed files on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid

from netlm_imaging.cli import main
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.pacs_reports import measured
from tests.test_sr import write_phantom_study

SYNTAXES = {
    "j2k": uid.JPEG2000Lossless,
    "jpegls": uid.JPEGLSLossless,
    "rle": uid.RLELossless,
    "deflate": uid.DeflatedExplicitVRLittleEndian,
}


def _encode(files: list[Path], syntax: str, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        ds = pydicom.dcmread(f)
        if syntax == uid.DeflatedExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax, generate_instance_uid=False)
        p = folder / f.name
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port = _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_ts"), dicom=True, modalities={"NETLM": ("NETLM", move_port)}
    )
    try:
        studies = {}
        for n, (name, syntax) in enumerate(SYNTAXES.items()):
            root = tmp_path_factory.mktemp(f"ts_{name}")
            d = write_phantom_study(root, seed=60 + n)
            stored = _encode(d["files"], syntax, tmp_path_factory.mktemp(f"encoded_{name}"))
            for f in [*stored, d["seg"]]:
                server.upload(f)
            assert pydicom.dcmread(stored[0]).file_meta.TransferSyntaxUID == syntax
            d["study_uid"] = str(pydicom.dcmread(d["files"][0], stop_before_pixels=True).StudyInstanceUID)
            local = tmp_path_factory.mktemp(f"local_{name}")
            assert main(["analyze", str(root), "--out", str(local), "--quiet"]) == 0
            d["local_report"] = json.loads((local / "report.json").read_text())
            studies[name] = d
        yield {"server": server, "move_port": move_port, "studies": studies}
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["get", "move", "web"])
@pytest.mark.parametrize("name", list(SYNTAXES))
def test_compressed_study_is_measured_as_the_uncompressed_one(
    pacs: dict, name: str, how: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    server, d = pacs["server"], pacs["studies"][name]
    out = tmp_path / "out"
    if how == "web":
        monkeypatch.setenv("NETLM_PACS_USER", server.user)
        monkeypatch.setenv("NETLM_PACS_PASSWORD", server.password)
        args = ["pacs", "--url", server.dicomweb_url]
    else:
        args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--retrieve", how]
        if how == "move":
            args += ["--port", str(pacs["move_port"]), "--bind", "127.0.0.1"]
    code = main([*args, "--study", d["study_uid"], "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    truth = d["truth"]
    assert report["liver"]["volume_ml"] == pytest.approx(truth["liver_volume_ml"], rel=1e-4)
    assert report["involvement_percent"] == pytest.approx(truth["involvement_percent"], rel=1e-4)
    assert measured(report) == measured(d["local_report"])


def test_retrieved_pixels_equal_the_originals(pacs: dict, tmp_path: Path) -> None:
    """JPEG 2000 lossless over C-GET and WADO-RS: every CT slice decodes to the stored integers of the original."""
    from netlm_imaging.pacs import dicomweb, dimse

    server, d = pacs["server"], pacs["studies"]["j2k"]
    originals = {str(ds.SOPInstanceUID): ds.pixel_array for ds in map(pydicom.dcmread, d["files"])}
    ep = dimse.DimseEndpoint("127.0.0.1", server.dicom_port, "ORTHANC", "NETLM")
    client = dicomweb.make_client(
        server.dicomweb_url, dicomweb.PacsCredentials(user=server.user, password=server.password)
    )
    # Orthanc answers QIDO-RS with the study's instance count, which the WADO-RS retrieval is checked against
    assert dicomweb._instance_count(client, d["study_uid"]) == len(originals) + 1
    for got in (
        dimse.retrieve_study(ep, d["study_uid"], tmp_path / "get"),
        dicomweb.retrieve_study(client, d["study_uid"], tmp_path / "web"),
    ):
        cts = [ds for ds in map(pydicom.dcmread, got) if ds.Modality == "CT"]
        assert len(cts) == len(originals)
        for ds in cts:
            assert np.array_equal(ds.pixel_array, originals[str(ds.SOPInstanceUID)])

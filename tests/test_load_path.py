"""The load path of issue 17: read threads and SEG placement give the same bytes, reports and errors.

* the range check made after the in-place add (CT: stored int16 + intercept -1024) refuses exactly
  the slices whose true ``stored + intercept`` (computed here in int64) leaves int16;
* a series read with two threads equals the one-thread read and pydicom's ``pixel_array`` x slope
  + intercept, also when a slice of the second half needs the int32 buffer, and a truncated file
  gives the one-thread read's message;
* an analysis of a CT + SEG folder writes the same report.json bytes with one and two read threads,
  and gives the same refusal (the image's first, then the segmentation's);
* ``batch -j k`` workers cap the read threads at their share of the cores;
* the plain SEG reader's placement (a plane's first frame written without reading its zero pages,
  later frames of the plane ORed) equals numpy's OR of every frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg

from netlm_imaging import threads
from netlm_imaging.errors import DicomError
from netlm_imaging.io import _dicom_pixels, dicom_series, dicom_series_pixels
from netlm_imaging.io._dicom_common import scan_dicom_folder
from netlm_imaging.threads import PendingTasks

INT16 = np.iinfo(np.int16)


@pytest.fixture
def read_threads():
    """Set the analysis' threads (those that read a series) for one test; the default comes back afterwards."""
    yield threads.set_analysis_threads
    threads.set_analysis_threads(None)


@pytest.mark.parametrize("intercept", [-32768, -1024, -1, 1, 7, 1024, 32767])
def test_check_after_the_add_refuses_exactly_the_wrapped_values(intercept):
    rng = np.random.default_rng(abs(intercept))
    every = np.arange(INT16.min, INT16.max + 1, dtype=np.int64)
    # every stored value alone, then random sets of values (the check answers for a whole slice)
    edges = {INT16.min, INT16.max, INT16.min - intercept, INT16.max - intercept}  # where a sum starts to wrap
    near = sorted({v + d for v in edges for d in range(-3, 4)} & set(range(INT16.min, INT16.max + 1)))
    sets = [np.array([v]) for v in near] + [every[i : i + 1] for i in range(0, every.size, 97)]
    sets += [rng.choice(every, size=int(rng.integers(1, 300))) for _ in range(400)]
    sets += [every]
    for stored in sets:
        truth = bool(((stored + intercept < INT16.min) | (stored + intercept > INT16.max)).any())
        out = stored.astype(np.int16)
        np.add(out, np.int16(intercept), out=out)  # wraps modulo 2**16, as the reader's in-place add
        assert _dicom_pixels._wrapped_add(out, intercept, INT16) is truth


def _series(tmp_path: Path, n_slices: int, *, big_slice: int | None = None, bits_stored: int = 16) -> list[Path]:
    """An oblique CT series of ``n_slices`` 20 x 24 slices, intercept -1024: BitsStored 16 (values checked, the
    plain per-slice loop), or 12 (sign-extended from bit 11 by the general per-file reader)."""
    rng = np.random.default_rng(n_slices)
    hu = rng.integers(-1024, 3000 if bits_stored == 16 else 1000, size=(24, 20, n_slices)).astype(float)
    files = write_image_series(tmp_path / "ct", hu, oblique_affine(spacing=(0.7, 0.8, 1.5)), seed=2)
    for k, f in enumerate(files):
        if big_slice != k and bits_stored == 16:
            continue
        ds = pydicom.dcmread(f)
        stored = ds.pixel_array.astype(np.int16)
        if big_slice == k:  # stored 32767 there: 31743 HU fits int16, so make one stored value wrap instead
            stored[3, 4] = INT16.min + 5  # -32763 - 1024 is below int16: this slice needs int32
        if bits_stored != 16:
            ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
        ds.PixelData = stored.tobytes()
        ds.save_as(f)
    return files


def _pydicom_volume(files: list[Path], vol) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    by_file = {f: k for k, f in enumerate(vol.meta["files"])}
    out = np.empty(vol.shape, dtype=np.float64)
    for p in files:
        ds = pydicom.dcmread(p)
        out[:, :, by_file[str(p)]] = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64).T
    return out


@pytest.mark.parametrize(("big_slice", "bits_stored"), [(None, 16), (31, 16), (2, 16), (None, 12)])
def test_two_thread_series_read_equals_one_thread_and_pydicom(
    tmp_path, read_threads, monkeypatch, big_slice, bits_stored
):
    files = _series(tmp_path, 40, big_slice=big_slice, bits_stored=bits_stored)
    calls: list[str] = []
    spied = "read_plain_into" if bits_stored == 16 else "_fill_slices"  # the plain loop, or the general reader
    real = getattr(dicom_series_pixels, spied)

    def spy(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(dicom_series_pixels, spied, spy)
    read_threads(1)
    one = dicom_series.read_dicom_series(files)
    assert set(calls) == {"MainThread"}
    calls.clear()
    read_threads(2)
    two = dicom_series.read_dicom_series(files)
    assert any(name.startswith("netlm-read") for name in calls)  # the second thread read slices
    assert two.array.dtype == one.array.dtype == (np.int16 if big_slice is None else np.int32)
    assert two.array.tobytes() == one.array.tobytes()
    assert two.meta["files"] == one.meta["files"]
    np.testing.assert_array_equal(two.array.astype(np.float64), _pydicom_volume(files, two))


def test_two_thread_read_of_a_truncated_file_gives_the_one_thread_message(tmp_path, read_threads):
    files = _series(tmp_path, 40)
    index = scan_dicom_folder(tmp_path / "ct")
    files[29].write_bytes(files[29].read_bytes()[:-100])  # cut after the scan: the pixel read finds it
    messages = []
    for n in (1, 2):
        read_threads(n)
        with pytest.raises(DicomError) as err:
            dicom_series.read_series_from_index(index)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert str(files[29]) in messages[0]
    assert "truncated" in messages[0]


def test_pending_tasks_run_every_task_once_and_report_the_first_failure():
    done: list[int] = []
    lock = threading.Lock()

    def task(i):
        if i in (13, 40):
            raise ValueError(f"task {i}")
        with lock:
            done.append(i)

    ok = PendingTasks([lambda i=i: task(i) for i in range(12)], helpers=1)
    assert ok.finish() is None
    assert sorted(done) == list(range(12))
    done.clear()
    failed = PendingTasks([lambda i=i: task(i) for i in range(60)], helpers=1)
    err = failed.finish()
    assert isinstance(err, ValueError)
    assert str(err) in ("task 13", "task 40")
    assert len(done) == len(set(done))
    assert 13 not in done
    assert set(range(13)) <= set(done)  # tasks are taken in order: the ones before the failure all ran


def test_one_and_two_read_threads_write_the_same_report(tmp_path, read_threads):
    import json

    from netlm_imaging.cli import main

    _ct_seg_study(tmp_path)  # 34 slices: the threaded read applies (two tasks or more)
    reports = []
    for n in (1, 2):
        read_threads(n)
        out = tmp_path / f"out{n}"
        assert main(["analyze", str(tmp_path / "study"), "--out", str(out), "--quiet"]) == 0
        reports.append((out / "report.json").read_bytes())
    assert reports[0] == reports[1]
    (lesion,) = json.loads(reports[0])["lesions"]
    assert lesion["voxel_count"] == int(_LESION.sum())  # the study's one lesion, counted by numpy
    assert lesion["mean_intensity"] == pytest.approx(110.0)  # 60 HU liver + 50 HU lesion, written exactly


def _worker_read_threads(_: int) -> int:
    return threads.analysis_threads()


def test_batch_workers_cap_their_read_threads_at_their_share_of_the_cores():
    """Real -j k pool workers (the batch's start method and initialiser): cores // k read threads, at least 1."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from netlm_imaging.batch import pool

    cores = os.cpu_count() or 1
    ctx = multiprocessing.get_context(pool.START_METHOD)
    for jobs in (2, 1):
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=pool.init_worker, initargs=(None, jobs)) as executor:
            seen = set(executor.map(_worker_read_threads, range(4)))
        assert seen == {max(1, min(threads.MAX_ANALYSIS_THREADS, cores // jobs))}, (jobs, seen)


_II, _JJ, _KK = np.indices((30, 28, 34))
_ORGAN = (_II >= 4) & (_II < 26) & (_JJ >= 4) & (_JJ < 24) & (_KK >= 2) & (_KK < 31)
_LESION = ((_II - 14) ** 2 + (_JJ - 13) ** 2 + ((_KK - 16) * 2.0) ** 2) <= 25


def _ct_seg_study(tmp_path: Path, *, liver_role: bool = True) -> list[Path]:
    """A 34-slice oblique CT + BINARY SEG folder (liver + one lesion, or a spleen alone); the CT files."""
    aff = oblique_affine(spacing=(0.8, 0.9, 2.0))
    organ, lesion = _ORGAN, _LESION
    image = np.where(organ, 60.0, -80.0) + np.where(lesion, 50.0, 0.0)
    files = write_image_series(tmp_path / "study" / "ct", image, aff, seed=6)
    codes = pydicom.sr.codedict.codes
    specs = (
        [SegmentSpec("Liver", organ), SegmentSpec("Lesion 1", lesion, property_type=codes.SCT.Neoplasm)]
        if liver_role
        else [SegmentSpec("Spleen", organ, property_type=codes.SCT.Spleen)]
    )
    write_seg(tmp_path / "study" / "seg.dcm", files, specs, seed=6)
    return files


def _refusal(capsys, study: Path, out: Path) -> str:
    from netlm_imaging.cli import main

    assert main(["analyze", str(study), "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_an_image_refusal_comes_before_a_segmentation_refusal_with_read_threads(
    tmp_path, capsys, read_threads, monkeypatch
):
    """A CT file cut after the scan gives the CT's message even when the SEG is refused too, and with an intact
    CT the SEG's refusal is the message, with one and with two read threads."""
    from netlm_imaging.io import discover

    files = _ct_seg_study(tmp_path, liver_role=False)  # spleen only: the SEG is refused
    seg_only = []
    for n in (1, 2):
        read_threads(n)
        seg_only.append(_refusal(capsys, tmp_path / "study", tmp_path / f"seg{n}"))
    assert seg_only[0] == seg_only[1]
    assert "seg.dcm: no liver and no lesion" in seg_only[0]
    real_discover = discover.discover_study

    def cut_after_scan(*args, **kwargs):  # the file shrinks between the folder scan and the pixel read
        found = real_discover(*args, **kwargs)
        files[20].write_bytes(files[20].read_bytes()[:-64])
        return found

    monkeypatch.setattr(discover, "discover_study", cut_after_scan)
    both = []
    for n in (1, 2):
        read_threads(n)
        full = files[20].read_bytes()
        both.append(_refusal(capsys, tmp_path / "study", tmp_path / f"both{n}"))
        files[20].write_bytes(full)  # intact again for the next round
    assert both[0] == both[1]
    assert str(files[20]) in both[0]
    assert "truncated" in both[0]


@pytest.mark.parametrize(("rows", "cols"), [(11, 16), (8, 13)])  # whole bytes per row; rows that straddle bytes
def test_plain_seg_frames_placed_by_plane_equal_the_or_of_every_frame(rows, cols):
    """decode_binary writes a plane's first frame without reading it and ORs any later frame of the same plane:
    two frames of one segment on one plane, planes out of order and a gap filled later, against numpy's OR."""
    from netlm_imaging.io._seg_fast import FrameTable, decode_binary
    from netlm_imaging.volume import Volume, nonzero_bbox

    nk = 6
    aff = oblique_affine(spacing=(0.7, 0.9, 1.6))
    ref = Volume(np.zeros((cols, rows, nk), np.int16, order="F"), aff)
    rng = np.random.default_rng(cols)
    plan = [(1, 3), (1, 1), (2, 2), (1, 3), (1, 2), (2, 2), (1, 5)]  # (segment, plane)
    frames = [(rng.random((rows, cols)) < 0.3).astype(np.uint8) for _ in plan]
    for f in frames[2:]:  # segmented columns off-centre, so that a box from mirrored bits differs
        f[:, : cols // 5] = 0
        f[:, cols // 2 :] = 0
    frames[1][:] = 0
    frames[1][4, 2] = 1  # a frame with one pixel
    truth = {s: np.zeros((cols, rows, nk), bool) for s in (1, 2)}
    for (seg, k), f in zip(plan, frames):
        truth[seg][:, :, k] |= f.T.astype(bool)
    bits = np.concatenate([f.reshape(-1) for f in frames])
    pixel_data = np.packbits(bits, bitorder="little").tobytes()
    positions = np.array([aff[:3, :3] @ [0.0, 0.0, k] + aff[:3, 3] for _s, k in plan])
    orientation = np.concatenate([aff[:3, 0] / 0.7, aff[:3, 1] / 0.9])
    table = FrameTable(positions, np.array([s for s, _k in plan]))
    out = decode_binary(pixel_data, table, rows, cols, ref, {1, 2}, orientation, (0.9, 0.7), 1e-3, "F")
    assert out is not None
    for seg in (1, 2):
        np.testing.assert_array_equal(out[seg], truth[seg])
        nz = np.nonzero(truth[seg])  # the box the reader records for its array (measure trusts it)
        assert nonzero_bbox(out[seg]) == tuple(slice(int(a.min()), int(a.max()) + 1) for a in nz)


@pytest.mark.parametrize("what", ["PixelSpacing", "ImageOrientationPatient"])
def test_a_slice_with_another_pixel_spacing_or_orientation_is_refused_naming_it(tmp_path, what):
    """The series' grid check (all frames at once, then file by file for the message): one slice of 20 differs."""
    files = write_image_series(tmp_path / "ct", np.zeros((12, 10, 20)), oblique_affine(spacing=(0.7, 0.8, 1.5)), seed=3)
    ds = pydicom.dcmread(files[13])
    if what == "PixelSpacing":
        ds.PixelSpacing = [float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]) + 0.01]
        said = "share a pixel spacing"
    else:  # 2e-3 off (tolerance 1e-3): the same stack (within 1e-2), yet not the same orientation
        iop = [float(v) for v in ds.ImageOrientationPatient]
        n = 0
        iop[n] += 2e-3
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        said = "share an orientation"
    ds.save_as(files[13])
    with pytest.raises(DicomError) as err:
        dicom_series.read_dicom_series(files)
    assert str(err.value).startswith(f"{files[13]}: {what}")
    assert said in str(err.value)

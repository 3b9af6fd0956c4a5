"""A series' pixels read into the memory the last one left (io/_pixel_buffers.py): never while it is alive.

Expected pixel values are pydicom's decoding of the files written here (a peer reader).
"""

from __future__ import annotations

import gc

import numpy as np
import pydicom
from conftest import oblique_affine
from dicom_factory import write_image_series

from netlm_imaging.io import _pixel_buffers
from netlm_imaging.io.dicom_series import read_dicom_series


def _series(folder, shape, seed):
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 1500, shape).astype(np.float64)
    files = write_image_series(folder, hu, oblique_affine(), modality="CT", seed=seed)
    # pydicom's modality values, slice k in array[:, :, k] (the factory writes frame k as array[:, :, k].T)
    truth = np.stack([pydicom.dcmread(f).pixel_array.T.astype(np.int32) - 1024 for f in files], axis=2)
    return truth


def _address(vol):
    base = vol.array
    while base.base is not None and isinstance(base.base, np.ndarray):
        base = base.base
    return base.__array_interface__["data"][0]


def test_a_buffer_is_reused_only_after_its_series_is_gone(tmp_path):
    shape = (48, 40, 20)
    truth_a = _series(tmp_path / "a", shape, 1)
    truth_b = _series(tmp_path / "b", shape, 2)
    a = read_dicom_series(tmp_path / "a")
    b = read_dicom_series(tmp_path / "b")  # a is alive: b gets other memory
    assert _address(a) != _address(b)
    np.testing.assert_array_equal(np.asarray(a.array, np.int32), truth_a)
    np.testing.assert_array_equal(np.asarray(b.array, np.int32), truth_b)
    kept = {_address(a), _address(b)}
    del a, b
    gc.collect()
    again = read_dicom_series(tmp_path / "a")  # both released: the memory of one of them, every voxel rewritten
    assert _address(again) in kept
    np.testing.assert_array_equal(np.asarray(again.array, np.int32), truth_a)
    other = read_dicom_series(tmp_path / "b")
    np.testing.assert_array_equal(np.asarray(other.array, np.int32), truth_b)
    np.testing.assert_array_equal(np.asarray(again.array, np.int32), truth_a)  # untouched by the later read


def test_a_smaller_series_in_a_larger_buffer_and_the_pool_stays_small(tmp_path):
    truth_big = _series(tmp_path / "big", (48, 40, 24), 3)
    truth_small = _series(tmp_path / "small", (48, 40, 16), 4)
    big = read_dicom_series(tmp_path / "big")
    np.testing.assert_array_equal(np.asarray(big.array, np.int32), truth_big)
    del big
    gc.collect()
    small = read_dicom_series(tmp_path / "small")  # 16 of 24 slices: within twice its size, reused
    np.testing.assert_array_equal(np.asarray(small.array, np.int32), truth_small)
    assert len(_pixel_buffers._KEPT) <= _pixel_buffers.MAX_KEPT


def test_a_release_while_the_pool_is_locked_does_not_wait_for_the_lock(tmp_path):
    """The garbage collector can free a buffer (run its finalizer) inside pixel_buffer's locked section."""
    import threading

    _series(tmp_path / "c", (48, 40, 18), 5)
    vol = read_dicom_series(tmp_path / "c")
    cycle = [vol]
    cycle.append(cycle)  # only the cyclic collector frees it
    del vol
    done = threading.Event()

    def collect_under_the_lock():
        with _pixel_buffers._LOCK:
            gc.collect()  # the finalizer of the series' buffer runs here, on this thread
        done.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    del cycle
    worker.start()
    worker.join(timeout=10)
    assert done.is_set(), "the finalizer waited for the pool's lock"

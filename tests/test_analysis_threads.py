"""The second thread of one analysis (``threads.in_background``): the same numbers on one thread or two.

The liver's memory pass (its box copied into the total-liver mask, its voxel count and exact
intensity sum) runs beside the lesions when two threads are allowed. Expected values come from
numpy on masks the test builds itself (the total liver = liver mask UNION the intrahepatic
lesions), and the threaded and one-thread analyses must agree to the byte.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import physical_grid, write_nifti

from netlm_imaging import threads as netlm_threads
from netlm_imaging.measure import burden
from netlm_imaging.measure.summary import liver_facts
from netlm_imaging.segmentation import MaskLayer
from netlm_imaging.volume import Volume

SHAPE = (64, 56, 30)
AFFINE = oblique_affine((1.6, 1.8, 3.0), (8.0, -5.0, 15.0), (-40.0, 12.0, 60.0))


@pytest.fixture(autouse=True)
def _default_threads(monkeypatch):
    monkeypatch.setattr(netlm_threads, "_THREADS", None)


def _masks() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Liver and lesion masks (binary layers that overlap) and the truth of the total liver.

    Lesions: A wholly inside the liver mask, B half inside it, C face to face with it (intrahepatic
    by the 2 mm rule, 1.6 mm away, no voxel in the liver mask), D far from it (extrahepatic).
    """
    p = physical_grid(SHAPE, AFFINE)
    centre = p[32, 28, 15]
    liver = ((p - centre) ** 2 / np.array([45.0, 42.0, 38.0]) ** 2).sum(-1) <= 1.0
    idx = np.indices(SHAPE)

    def ball(c, r):
        return ((idx - np.array(c)[:, None, None, None]) ** 2).sum(0) <= r * r

    a = ball((32, 28, 15), 3)
    edge = np.argwhere(liver[:, 28, 15])[-1, 0]  # the liver's last voxel along i on that line
    b = ball((edge, 28, 15), 3)
    c = np.zeros(SHAPE, bool)
    edge_c = np.argwhere(liver[:, 20, 15])[-1, 0]
    c[edge_c + 1 : edge_c + 3, 20, 15] = True  # beside the liver's last voxel on that line
    d = ball((5, 5, 3), 2)
    lesions = a | b | c | d
    assert not (liver & c).any()
    assert (liver & b).any()
    assert (b & ~liver).any()
    truth_total = liver | a | b | c
    return liver, lesions, truth_total, d


def _burden(image: np.ndarray, n_threads: int) -> tuple[burden.BurdenResult, dict]:
    netlm_threads.set_analysis_threads(n_threads)
    img = Volume(image, AFFINE)
    liver, lesions, _t, _d = _masks()
    layers = [
        MaskLayer("liver", img.with_array(liver), label="liver", source="liver.nii"),
        MaskLayer("lesion", img.with_array(lesions), label="lesion", source="lesions.nii"),
    ]
    res = burden.measure_burden(img, layers)
    return res, liver_facts(res.ctx, res.extra, res.liver_sums)


def test_liver_facts_of_both_paths_are_numpy_s_on_the_true_total_liver() -> None:
    rng = np.random.default_rng(17)
    image = rng.integers(-1024, 3000, SHAPE).astype(np.int16)
    _liver, _lesions, truth, extrahepatic = _masks()
    expected_mean = round(float(image[truth].astype(np.int64).sum()) / int(truth.sum()), 3)
    results = [_burden(image, n) for n in (1, 2)]
    for res, facts in results:
        assert res.liver_sums is not None
        assert facts["voxel_count"] == int(truth.sum())
        assert facts["mean_intensity"] == expected_mean
        np.testing.assert_array_equal(res.ctx.liver, truth)
        assert [les.location for les in res.ctx.lesions].count("extrahepatic") == 1
        extra = next(les for les in res.ctx.lesions if les.location == "extrahepatic")
        assert extra.voxel_count == int(extrahepatic.sum())
        # the fallback (a float64 reduction over ctx.liver) gives the same block
        assert liver_facts(res.ctx, res.extra) == facts
    assert results[0][1] == results[1][1]
    assert [les.to_dict() for les in results[0][0].ctx.lesions] == [les.to_dict() for les in results[1][0].ctx.lesions]


def test_a_float_image_takes_the_reduction_and_the_same_numbers_on_both_paths() -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(400.0, 80.0, SHAPE).astype(np.float32)
    _liver, _lesions, truth, _d = _masks()
    (r1, f1), (r2, f2) = (_burden(image, n) for n in (1, 2))
    assert r1.liver_sums is None
    assert r2.liver_sums is None
    assert f1 == f2
    assert f1["mean_intensity"] == pytest.approx(float(image[truth].astype(np.float64).mean()), abs=1e-3)


def test_the_liver_pass_runs_on_a_second_thread_only_when_allowed(monkeypatch) -> None:
    seen: list[str] = []
    real = burden._liver_pass

    def spy(*args):
        seen.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(burden, "_liver_pass", spy)
    image = np.zeros(SHAPE, np.int16)
    _burden(image, 2)
    _burden(image, 1)
    assert seen == ["netlm-analysis", threading.current_thread().name]


def test_a_failing_background_pass_raises_on_the_caller_s_thread() -> None:
    netlm_threads.set_analysis_threads(2)

    def boom() -> int:
        raise MemoryError("no room")

    pending = netlm_threads.in_background(boom)
    with pytest.raises(MemoryError, match="no room"):
        pending.result()


def test_threaded_and_one_thread_analyses_write_the_same_report(tmp_path, monkeypatch) -> None:
    """A whole analysis (lesions, zones, plan, report) on one thread and on two: byte-identical report.json."""
    from netlm_imaging.cli import main

    rng = np.random.default_rng(11)
    liver, lesions, _t, _d = _masks()
    image = np.where(liver, 60, 40) + rng.normal(0, 12, SHAPE)
    image = np.where(lesions, 115, image).astype(np.int16)
    labels = np.where(lesions, 2, np.where(liver, 1, 0)).astype(np.uint8)
    write_nifti(tmp_path / "ct.nii.gz", image, AFFINE)
    write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE)
    (tmp_path / "clinical.json").write_text(json.dumps({"height_cm": 150.0, "weight_kg": 45.0}))
    texts = []
    for n in (2, 1, 2):
        netlm_threads.set_analysis_threads(n)
        out = tmp_path / f"out{len(texts)}"
        args = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
        rc = main([*args, "--clinical", str(tmp_path / "clinical.json"), "--out", str(out), "--quiet"])
        assert rc == 0
        texts.append((out / "report.json").read_text())
    assert texts[0] == texts[1] == texts[2]
    report = json.loads(texts[0])
    assert report["liver"]["voxel_count"] == int((liver | (lesions & ~_d_mask())).sum())
    treatments = report["remnant"]["resection_plan"]["lesion_treatments"]
    assert any(t["parenchyma_cost_ml"] for t in treatments)  # the zones and the plan ran on both paths


def _d_mask() -> np.ndarray:
    return _masks()[3]


def test_pool_workers_cap_the_analysis_threads_at_their_share(monkeypatch) -> None:
    """``netlm batch -j k`` workers: cores // k threads each (one per worker on 2 cores with -j 2)."""
    from threadpoolctl import threadpool_limits

    from netlm_imaging.batch import pool
    from netlm_imaging.io import _gzip

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(burden, "_LESION_THREADS", None)
    monkeypatch.setattr(pool, "_STARTED", None)
    monkeypatch.setattr(_gzip, "_KEPT", None)
    assert netlm_threads.analysis_threads() == 2
    with threadpool_limits(None):
        pool.init_worker(None, 2)
    assert netlm_threads.analysis_threads() == 1
    netlm_threads.set_analysis_threads(None)
    with threadpool_limits(None):
        pool.init_worker(None, 1)
    assert netlm_threads.analysis_threads() == 2

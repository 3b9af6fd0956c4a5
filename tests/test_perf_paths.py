"""The fast paths give the peer libraries' answers: farthest pairs (scipy pdist), the 2 mm test (scipy dilation).

The speed-ups of issue 17 replace library calls by smaller numpy work; each is
checked here against the library it replaced, on seeded inputs with ties.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import pdist, squareform

from netlm_imaging.measure.intrahepatic import _ball, touches_liver
from netlm_imaging.measure.lesions import max_pairwise_distance


def _pdist_pair(pts: np.ndarray) -> tuple[float, int, int]:
    """pdist's farthest pair: the first maximum in condensed order (lowest i, then lowest j)."""
    d = squareform(pdist(pts))
    iu, ju = np.triu_indices(len(pts), 1)
    k = int(np.argmax(d[iu, ju]))
    return float(d[iu[k], ju[k]]), int(iu[k]), int(ju[k])


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(17)
    out = []
    for n in (33, 200, 1500):
        out.append(rng.normal(size=(n, 3)) * rng.uniform(1, 40, 3))
    # voxel-centre shells on anisotropic grids: many exactly tied farthest pairs
    g = np.indices((25, 25, 13)).reshape(3, -1).T.astype(np.float64)
    for spacing, origin in (((0.75, 0.75, 1.5), (-120.0, 30.0, 400.0)), ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))):
        pts = g * spacing + origin
        c = pts.mean(0)
        r = np.linalg.norm((pts - c) / [9.0, 7.0, 6.0], axis=1)
        out.append(pts[(r <= 1.0) & (r > 0.8)])
    # shells of rotated, roundish voxel-centre ellipsoids, where many points survive the bound from the box
    # centre and the bound from the known pair's midpoint prunes them again (seeds 7 and 9: from over 100
    # survivors, the Gram blocks, to fewer, the direct search; 19: Gram blocks either way; 30: direct either way)
    g = np.indices((45, 45, 23)).reshape(3, -1).T.astype(np.float64)
    for seed in (7, 9, 19, 30):
        rs = np.random.default_rng(seed)
        rot, _ = np.linalg.qr(rs.normal(size=(3, 3)))
        axes = rs.uniform(8.0, 15.0, 3)
        pts = g * (0.75, 0.75, 1.5) - 16.5 + rs.uniform(-0.5, 0.5, 3)
        r = np.linalg.norm((pts @ rot) / axes, axis=1)
        out.append(pts[(r <= 1.0) & (r > 0.8)])
    cube = np.indices((4, 4, 4)).reshape(3, -1).T.astype(np.float64) * 2.5  # 4 tied space diagonals
    out.append(cube)
    out.append(rng.permutation(cube))
    # fewer points than the pruning threshold (one Gram block of all pairs), with tied diagonals
    small = np.indices((4, 4, 3)).reshape(3, -1).T.astype(np.float64) * (0.75, 0.75, 1.5) + (-20.0, 4.0, 90.0)
    out.append(small)
    out.append(rng.permutation(small))
    return out


@pytest.mark.parametrize("pts", _cases(), ids=lambda p: f"n{len(p)}")
def test_farthest_pair_is_pdists_pair(pts):
    d_ref, i, j = _pdist_pair(pts)
    d, u = max_pairwise_distance(pts)
    assert d == pytest.approx(d_ref, rel=0, abs=1e-9)
    expected = (pts[j] - pts[i]) / d_ref
    np.testing.assert_allclose(u, expected, atol=1e-12)


def test_component_boxes_are_cc3d_statistics_boxes(monkeypatch):
    """Boxes from cc3d's runs equal cc3d.statistics' boxes: both memory orders, with and without wrapping runs."""
    import cc3d

    from netlm_imaging.measure.lesions import component_boxes

    rng = np.random.default_rng(11)
    real = cc3d.statistics
    calls: list[int] = []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    fast = 0
    for case in range(150):
        shape = tuple(int(x) for x in rng.integers(2, 24, 3))
        mask = rng.random(shape) < rng.uniform(0.02, 0.4)
        mask[0, 0, 0] = mask[-1, -1, -1] = False  # room around the components, as in a labelled box
        if case % 2:
            mask = np.asfortranarray(mask)
        labels, n = cc3d.connected_components(mask, connectivity=26 if case % 3 else 6, return_N=True)
        labels = np.ascontiguousarray(labels) if case % 4 == 1 else labels
        expected = list(real(labels)["bounding_boxes"][1:]) if n else []
        calls.clear()
        monkeypatch.setattr(cc3d, "statistics", counting)
        assert component_boxes(labels, n) == expected
        monkeypatch.setattr(cc3d, "statistics", real)
        fast += not calls
    assert fast > 40  # most cases took the run-based path (the rest: a run wrapping onto the next line)


def test_component_facts_from_runs_equal_the_voxel_lists():
    """Counts and mean indices from cc3d's runs are the floats of the means over each component's listed voxels;
    the line ends are the first and last voxel of the component on each line along the memory-fastest axis."""
    import cc3d

    from netlm_imaging.measure.lesions import component_boxes_and_centroids

    rng = np.random.default_rng(12)
    checked = 0
    for case in range(120):
        shape = tuple(int(x) for x in rng.integers(2, 30, 3))
        mask = rng.random(shape) < rng.uniform(0.02, 0.5)
        mask[0, 0, 0] = mask[-1, -1, -1] = False
        if case % 2:
            mask = np.asfortranarray(mask)
        labels, n = cc3d.connected_components(mask, connectivity=26 if case % 3 else 6, return_N=True)
        boxes, stats = component_boxes_and_centroids(labels, n)
        for lab, (box, stat) in enumerate(zip(boxes, stats, strict=True), start=1):
            if stat is None:  # a run wrapping onto the next line: left to the measurement
                continue
            mask = labels[box] == lab
            nz = np.nonzero(mask)  # the plain way: the voxel list inside the box
            assert stat.voxel_count == len(nz[0])
            assert np.array_equal(stat.mean_index, np.array([c.mean() for c in nz]))  # bit for bit
            # the first and last voxel on each grid line along the memory-fastest axis, from running counts
            a = stat.line_axis
            assert a == (0 if labels.flags.f_contiguous else 2)
            running = np.cumsum(mask, axis=a)
            ends = mask & ((running == 1) | (running == running.max(axis=a, keepdims=True)))
            order = "F" if a == 0 else "C"
            assert np.array_equal(
                np.unique(stat.line_ends), np.flatnonzero(ends.ravel(order=order))
            )  # one-voxel lines twice
            checked += 1
    assert checked > 500


def test_line_extremes_are_the_first_and_last_voxels_of_each_line():
    """The extremes along every axis (argmax, or plane maxima along the slowest memory axis) on any layout."""
    from netlm_imaging.measure.lesions import _axis_extremes

    rng = np.random.default_rng(13)
    for case in range(300):
        shape = tuple(int(x) for x in rng.integers(1, 30, 3))
        if case % 40 == 0:  # more than 255 voxels along the slowest axis (the wider index type)
            shape = (3, 4, 300) if case % 80 == 0 else (300, 4, 3)
        mask = rng.random(shape) < rng.uniform(0.0, 0.8)
        mask = np.asfortranarray(mask) if case % 2 else mask
        if case % 5 == 1 and min(shape) > 1:
            mask = mask[::-1, 1:]
        for axis in range(3):
            running = np.cumsum(mask, axis=axis)  # the truth: the first voxel counts 1, the last the total
            want = mask & ((running == 1) | (running == running.max(axis=axis, keepdims=True)))
            assert np.array_equal(_axis_extremes(mask, axis), want)


def test_candidate_points_are_the_voxels_extreme_along_the_axes():
    """The diameter candidates listed as points (line ends of cc3d's runs, kept when extreme along the other
    axes) are the voxels extreme on their lines along the in-plane axes (the in-plane candidates) and along all
    three (the 3-D ones), in np.argwhere's order (the in-plane ones with the slice axis first); and a lesion
    measured from them has the numbers of the mask path, on an oblique-free axial grid with spacing and origin."""
    import cc3d

    from netlm_imaging.measure.lesions import (
        LesionGrid,
        _candidate_points,
        component_boxes_and_centroids,
        measure_instance,
    )
    from netlm_imaging.volume import Volume

    def extreme(mask: np.ndarray, axis: int) -> np.ndarray:  # running counts: the first counts 1, the last the total
        running = np.cumsum(mask, axis=axis)
        return mask & ((running == 1) | (running == running.max(axis=axis, keepdims=True)))

    rng = np.random.default_rng(14)
    checked = 0
    for case in range(60):
        shape = tuple(int(x) for x in rng.integers(2, 26, 3))
        if case % 20 == 0:
            shape = (5, 6, 270) if case % 40 == 0 else (270, 6, 5)  # the wider index type along the slowest axis
        mask = rng.random(shape) < rng.uniform(0.05, 0.6)
        mask[0, 0, 0] = mask[-1, -1, -1] = False
        mask = np.asfortranarray(mask) if case % 2 else mask
        labels, n = cc3d.connected_components(mask, connectivity=26, return_N=True)
        boxes, stats = component_boxes_and_centroids(labels, n)
        for lab, (box, stat) in enumerate(zip(boxes, stats, strict=True), start=1):
            if stat is None:
                continue
            m = labels[box] == lab
            for k in range(3):
                if k == stat.line_axis:
                    continue
                by_slice, ext_rows = _candidate_points(m, stat, k)
                p, q = (a for a in range(3) if a != k)
                inplane = extreme(m, p) & extreme(m, q)
                assert np.array_equal(ext_rows, np.argwhere(inplane & extreme(m, k)))
                assert np.array_equal(by_slice, np.argwhere(inplane.transpose(k, p, q)))
                checked += 1
        # one component of each case measured with and without what the runs told: the same numbers
        lab = int(np.argmax([0 if s is None else s.voxel_count for s in stats])) + 1
        if stats[lab - 1] is None:
            continue
        box = boxes[lab - 1]
        affine = np.diag([0.7, 0.8, 2.5, 1.0])
        affine[:3, 3] = (-120.5, 33.0, 7.25)
        image = Volume(rng.integers(-100, 200, shape).astype(np.int16), affine)
        grid = LesionGrid.of(image)
        m = labels[box] == lab
        fast = measure_instance(image, box, m, grid=grid, known=stats[lab - 1])
        plain = measure_instance(image, box, m, grid=grid)
        assert fast == plain
    assert checked > 300


def test_integer_image_means_equal_the_voxel_list_means():
    """Counts per index and a masked integer sum give the floats of the means over the listed voxels."""
    from netlm_imaging.measure.lesions import measure_instance
    from netlm_imaging.volume import Volume
    from tests.conftest import oblique_affine

    rng = np.random.default_rng(21)
    for case in range(40):
        shape = tuple(int(x) for x in rng.integers(3, 30, 3))
        dtype = (np.int16, np.uint8, np.uint16, np.int8)[case % 4]
        info = np.iinfo(dtype)
        image = rng.integers(info.min, info.max, (40, 40, 40), endpoint=True).astype(dtype)
        mask = rng.random(shape) < rng.uniform(0.05, 0.9)
        mask[tuple(int(x) for x in rng.integers(0, shape))] = True
        if case % 2:
            mask = np.asfortranarray(mask)
        lo = [int(x) for x in rng.integers(0, 40 - np.array(shape) + 1)]
        bb = tuple(slice(a, a + n) for a, n in zip(lo, shape))
        aff = oblique_affine((0.7, 0.8, 2.5), (5.0, -7.0, 11.0), (-90.0, 40.0, 310.0))
        geom = measure_instance(Volume(image, aff), bb, mask)
        nz = np.nonzero(mask)  # the voxel list: the plain way
        local = np.array([c.mean() for c in nz])
        origin = aff[:3, :3] @ np.array(lo, dtype=np.float64) + aff[:3, 3]
        centroid = local @ aff[:3, :3].T + origin
        assert geom.voxel_count == len(nz[0])
        assert geom.centroid_lps_mm == tuple(float(c) for c in centroid)
        assert geom.mean_intensity == float(image[bb][nz].mean(dtype=np.float64))


def test_widest_extent_equals_the_all_pairs_search():
    """The short-axis search over the pair ends that can be that far apart equals the search over all pairs."""
    from netlm_imaging.measure.diameters import _widest_perpendicular_extent, max_pairwise_distance

    rng = np.random.default_rng(8)
    normal = np.array([0.0, 0.0, 1.0])
    for n in (5, 40, 79, 300, 700):  # more than one block of 256 rows
        for grid in (True, False):
            if grid:  # voxel centres of a disc: tied diameters
                ij = np.argwhere(np.hypot(*np.indices((41, 41)) - 20.0) <= 20.0)[rng.permutation(1257)[:n]]
                pts = np.column_stack([ij * (0.75, 0.75), np.full(len(ij), 40.0)])
            else:
                pts = np.column_stack([rng.normal(size=(n, 2)) * (30.0, 12.0), np.zeros(n)])
            longest, _ = max_pairwise_distance(pts)
            got, got_dir = _widest_perpendicular_extent(pts, longest, normal)
            want, want_dir = _widest_perpendicular_extent(pts, longest, normal, prune=False)
            assert got == want
            assert np.array_equal(got_dir, want_dir)
            # the pairs read from the farthest-pair search's distance matrix (fewer than 80 points)
            dmat = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
            got, got_dir = _widest_perpendicular_extent(pts, longest, normal, dist=dmat)
            assert got == want
            assert np.array_equal(got_dir, want_dir)


def test_flat_index_nonzero_equals_numpy():
    """The nonzero / argwhere of the lesion code give numpy's indices in numpy's order (C order), on any layout."""
    from netlm_imaging.measure.diameters import _argwhere, _nonzero

    rng = np.random.default_rng(4)
    for shape in ((7, 5, 3), (1, 9, 4), (12, 11), (0, 3, 2)):
        a = rng.random(shape) < 0.3
        for view in (a, np.asfortranarray(a), np.moveaxis(a, -1, 0), a[::-1]):
            got, want = _nonzero(view), np.nonzero(view)
            assert len(got) == len(want)
            assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
            assert np.array_equal(_argwhere(view), np.argwhere(view))


def test_short_axis_directions_are_numpys_cross_and_norm():
    """The short-axis directions on coordinate rows are np.cross and np.linalg.norm's floats, bit for bit."""
    from netlm_imaging.measure.diameters import _widest_over_pairs

    rng = np.random.default_rng(6)
    for n in (2, 7, 300):
        pts = rng.normal(size=(n, 3)) * 40.0
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        ii, jj = rng.integers(0, n, 5), rng.integers(0, n, 5)
        ok = ii != jj
        ii, jj = ii[ok], jj[ok]
        step = pts[jj] - pts[ii]
        length = np.sqrt((step**2).sum(-1))
        v = np.cross(normal, step / length[:, None])
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        proj = pts @ v.T
        ext = proj.max(0) - proj.min(0)
        k = int(np.argmax(ext))
        xyz = np.ascontiguousarray(pts.T)
        got, got_dir = _widest_over_pairs(pts, xyz, ii, jj, length, [c[jj] - c[ii] for c in xyz], normal)
        assert got == float(ext[k])
        assert np.array_equal(got_dir, v[k])


def test_touches_liver_equals_scipy_dilation():
    rng = np.random.default_rng(3)
    for spacing in ((0.75, 0.75, 1.5), (1.0, 0.6, 3.0), (2.5, 2.5, 2.5)):
        ball = _ball(2.0, np.asarray(spacing))
        for _ in range(60):
            shape = (14, 12, 9)
            liver = rng.random(shape) < 0.02
            lesion = np.zeros(shape, bool)
            lo = rng.integers(0, 8, 3)
            hi = lo + rng.integers(1, 5, 3)
            lesion[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
            lesion &= liver == 0
            if not lesion.any():
                continue
            bb = tuple(slice(int(a), int(b)) for a, b in zip(lo, np.minimum(hi, shape)))
            expected = bool(np.any(ndimage.binary_dilation(lesion, structure=ball) & liver))
            assert touches_liver(liver, bb, lesion[bb], ball) is expected


def test_touches_liver_face_neighbours_at_the_image_edges_equal_scipy_dilation():
    """One liver voxel next to a lesion box that lies against an image edge (each axis, each side) or
    across the image: the face-neighbour test (on the liver's box moved by one voxel) agrees with scipy."""
    rng = np.random.default_rng(11)
    shape = (9, 8, 7)
    ball = _ball(2.0, np.asarray((0.8, 0.8, 3.0)))  # across slices only the face neighbours reach
    checked = {True: 0, False: 0}
    for axis in range(3):
        for lo_edge, hi_edge in ((True, False), (False, True), (True, True), (False, False)):
            for _ in range(12):
                lo = [0 if (a == axis and lo_edge) else int(rng.integers(0, 3)) for a in range(3)]
                hi = [shape[a] if (a == axis and hi_edge) else int(rng.integers(lo[a] + 1, shape[a])) for a in range(3)]
                lesion = np.zeros(shape, bool)
                bb = tuple(slice(lo[a], hi[a]) for a in range(3))
                lesion[bb] = rng.random(tuple(hi[a] - lo[a] for a in range(3))) < 0.5
                if not lesion.any():
                    continue
                liver = np.zeros(shape, bool)
                liver[tuple(int(rng.integers(0, n)) for n in shape)] = True
                liver &= ~lesion
                expected = bool(np.any(ndimage.binary_dilation(lesion, structure=ball) & liver))
                assert touches_liver(liver, bb, lesion[bb], ball) is expected
                checked[expected] += 1
    assert min(checked.values()) >= 10, checked  # both answers were tested


def test_totals_from_the_liver_box_equal_full_volume_sums(tmp_path):
    """Totals and liver facts computed inside the liver/lesion box equal plain full-volume numpy sums."""
    import nibabel as nib
    from phantoms import grid_affine

    from netlm_imaging.api import analyze

    rng = np.random.default_rng(11)
    shape = (48, 40, 30)
    aff = grid_affine((0.8, 0.7, 2.5), (-10.0, 20.0, -40.0))
    lab = np.zeros(shape, np.uint8)
    lab[6:30, 8:33, 4:22] = 1
    lab[10:14, 10:16, 6:9] = 2  # inside
    lab[36:40, 30:34, 24:27] = 2  # far outside: extrahepatic
    img = rng.normal(60, 15, shape).astype(np.float32)
    for arr, name in ((img, "ct.nii.gz"), (lab, "seg.nii.gz")):
        nib.save(nib.Nifti1Image(arr, np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff), tmp_path / name)
    rep = analyze(image=tmp_path / "ct.nii.gz", segs=[str(tmp_path / "seg.nii.gz")])
    total = (lab == 1) | ((lab == 2) & (np.indices(shape)[0] < 30))
    vox_ml = 0.8 * 0.7 * 2.5 / 1000
    assert rep.liver["voxel_count"] == int(total.sum())
    assert rep.liver["volume_ml"] == pytest.approx(total.sum() * vox_ml, abs=1e-6)
    assert rep.liver["mean_intensity"] == pytest.approx(float(img[total].astype(np.float64).mean()), abs=1e-3)
    assert rep.liver["touches_image_border"] is False
    assert rep.tumor["extrahepatic_volume_ml"] == pytest.approx(48 * vox_ml, abs=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(72 * vox_ml, abs=1e-6)


def _nifti_gz(tmp_path, arr, name, *, big_endian=False, slope=None):
    import nibabel as nib

    data = arr.astype(arr.dtype.newbyteorder(">")) if big_endian else arr
    img = nib.Nifti1Image(data, np.diag([-0.8, -0.9, 2.5, 1.0]))
    if slope is not None:
        img.header.set_slope_inter(slope, 3.0)
    path = tmp_path / name
    nib.save(img, path)
    return path


def _choose_inflater(monkeypatch, inflater):
    """Select one of _gzip's three paths: isal's reader (the default), isal's one-call inflate, zlib's."""
    import zlib

    from netlm_imaging.io import _gzip

    if inflater == "isal reader":
        if _gzip._gzip_reader() is None:
            pytest.skip("python-isal with its C gzip reader is not installed")
        return
    monkeypatch.setattr(_gzip, "_gzip_reader", lambda: None)
    if inflater == "zlib":
        monkeypatch.setattr(_gzip, "_inflater", lambda: (zlib, (zlib.error,)))


@pytest.mark.parametrize("inflater", ["isal reader", "one call", "zlib"])
def test_gzip_nifti_fast_path_is_nibabels_array(tmp_path, monkeypatch, inflater):
    import gzip

    import nibabel as nib

    from netlm_imaging.io import _gzip
    from netlm_imaging.io.nifti import read_nifti

    _choose_inflater(monkeypatch, inflater)
    rng = np.random.default_rng(5)
    cases = [
        _nifti_gz(tmp_path, rng.integers(-1024, 3000, (37, 23, 11)).astype(np.int16), "ct.nii.gz"),
        _nifti_gz(tmp_path, rng.normal(size=(20, 21, 9)).astype(np.float32), "mr.nii.gz"),
        _nifti_gz(tmp_path, rng.integers(0, 3, (30, 20, 8)).astype(np.uint8), "be.nii.gz", big_endian=True),
        _nifti_gz(tmp_path, rng.integers(0, 500, (16, 16, 6)).astype(np.int16), "scaled.nii.gz", slope=0.5),
    ]
    # two gzip members (a concatenated stream, as `cat a.gz b.gz` writes): the same bytes
    raw = gzip.decompress(cases[0].read_bytes())
    two = tmp_path / "two_members.nii.gz"
    two.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))
    cases.append(two)
    for path in cases:
        expected = np.asanyarray(nib.load(str(path)).dataobj)
        got = read_nifti(path, as_float=False).array
        assert got.dtype == expected.dtype
        assert got.shape == expected.shape
        assert np.array_equal(got, expected), path.name
    # the fast path itself answers for the unscaled files (not a silent fallback to nibabel)
    for path in (cases[0], cases[2], two):
        img = nib.load(str(path))
        direct = _gzip.read_gzip_array(path, int(img.dataobj.offset), img.shape, img.dataobj.dtype, "F")
        assert direct is not None
        assert np.array_equal(direct, np.asanyarray(img.dataobj))


@pytest.mark.parametrize("inflater", ["one call", "zlib"])
def test_gzip_fast_path_inflates_only_the_declared_bytes(tmp_path, monkeypatch, inflater):
    """A stream far longer than the header declares (a decompression bomb) is inflated only up to the array."""
    import gzip
    import zlib

    from netlm_imaging.io import _gzip

    monkeypatch.setattr(_gzip, "_gzip_reader", lambda: None)
    mod, errors = _gzip._inflater() if inflater == "one call" else (zlib, (zlib.error,))
    produced: list[int] = []

    class Counting:
        def __init__(self, wbits):
            self._d = mod.decompressobj(wbits)

        def decompress(self, data, max_length=0):
            out = self._d.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    counting = type("M", (), {"decompressobj": staticmethod(lambda wbits: Counting(wbits))})
    monkeypatch.setattr(_gzip, "_inflater", lambda: (counting, errors))
    arr = np.random.default_rng(3).integers(-1024, 3000, (20, 19, 7)).astype(np.int16)
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(b"h" * 352 + arr.tobytes(order="F") + bytes(64 << 20)))
    got = _gzip.read_gzip_array(path, 352, arr.shape, arr.dtype, "F")
    assert got is not None
    assert np.array_equal(got, arr)
    assert sum(produced) == 352 + arr.nbytes  # not the 64 MiB that follow


@pytest.mark.parametrize("inflater", ["isal reader", "one call", "zlib"])
def test_gzip_fast_path_never_reaches_past_the_declared_bytes(tmp_path, monkeypatch, inflater):
    """The declared array, then 64 MiB of zeros, then a damaged deflate block: only the array is inflated.

    An inflater that went on past the declared bytes would meet the damaged
    block and fail (or, without the zeros and the damage, hold 64 MiB more).
    """
    import gzip
    import zlib

    from netlm_imaging.io import _gzip

    _choose_inflater(monkeypatch, inflater)
    arr = np.random.default_rng(4).integers(-1024, 3000, (21, 17, 9)).astype(np.int16)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    good = comp.compress(b"h" * 352 + arr.tobytes(order="F") + bytes(64 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    path = tmp_path / "damaged_tail.nii.gz"
    path.write_bytes(good + b"\xff" * 4096)  # 0xff: a reserved block type, invalid deflate data
    with pytest.raises((zlib.error, EOFError, OSError)):
        gzip.decompress(path.read_bytes())  # the whole stream is damaged past the zeros
    got = _gzip.read_gzip_array(path, 352, arr.shape, arr.dtype, "F")
    assert got is not None
    assert np.array_equal(got, arr)
    assert not got.flags.writeable


def test_kept_inflate_buffers_are_reused_only_when_no_array_holds_them(tmp_path, monkeypatch):
    """Batch workers keep inflate buffers (``keep_buffers``): a later read reuses an idle one, never the
    memory of an array still alive, and every array is nibabel's whatever buffer it landed in."""
    import nibabel as nib

    from netlm_imaging.io import _gzip

    if _gzip._gzip_reader() is None:
        pytest.skip("python-isal with its C gzip reader is not installed")
    monkeypatch.setattr(_gzip, "_KEPT", None)
    rng = np.random.default_rng(11)
    big = _nifti_gz(tmp_path, rng.integers(-1024, 3000, (40, 31, 17)).astype(np.int16), "big.nii.gz")
    small = _nifti_gz(tmp_path, rng.integers(-1024, 3000, (23, 19, 11)).astype(np.int16), "small.nii.gz")
    other = _nifti_gz(tmp_path, rng.integers(0, 3, (40, 31, 17)).astype(np.uint8), "labels.nii.gz")
    truth = {p: np.asanyarray(nib.load(str(p)).dataobj) for p in (big, small, other)}

    def read(p):
        img = nib.load(str(p))
        got = _gzip.read_gzip_array(p, int(img.dataobj.offset), img.shape, img.dataobj.dtype, "F")
        assert got is not None
        assert np.array_equal(got, truth[p]), p.name
        return got

    def address(a):
        return a.__array_interface__["data"][0]

    _gzip.keep_buffers()
    first = read(big)
    held = read(other)  # the first array is alive: a second buffer
    assert address(held) != address(first)
    where = address(first)
    del first
    assert address(read(small)) == where  # the idle big buffer takes the smaller image
    again = read(big)
    assert address(again) == where
    held_copy = held.copy()
    part = again[2:5]  # a view keeps the buffer busy even when the array itself is gone
    del again
    third = read(big)
    assert address(third) not in (where, address(held))
    assert np.array_equal(part, truth[big][2:5])
    assert np.array_equal(held, held_copy)
    assert len(_gzip._KEPT) == 2  # never more than two kept buffers
    _gzip.keep_buffers(False)
    assert _gzip._KEPT is None


def test_truncated_gzip_nifti_is_still_an_input_error(tmp_path):
    from netlm_imaging.errors import InputError
    from netlm_imaging.io import _gzip
    from netlm_imaging.io.nifti import read_nifti

    path = _nifti_gz(tmp_path, np.arange(40 * 40 * 20, dtype=np.int16).reshape(40, 40, 20), "ct.nii.gz")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    assert _gzip.read_gzip_array(path, 352, (40, 40, 20), np.dtype(np.int16)) is None
    with pytest.raises(InputError, match=r"ct\.nii\.gz"):
        read_nifti(path)


def _seg_frames(path):
    """{(segment number, position): (dimension index values, source SOP UID, frame bytes)} and segment labels."""
    import pydicom

    ds = pydicom.dcmread(path)
    px = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    out = {}
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ident = (
            item.get("SegmentIdentificationSequence")
            or ds.SharedFunctionalGroupsSequence[0].SegmentIdentificationSequence
        )
        key = (
            int(ident[0].ReferencedSegmentNumber),
            tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient),
        )
        src = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        out[key] = (tuple(item.FrameContentSequence[0].DimensionIndexValues), str(src), px[f].tobytes())
    labels = [
        (int(s.SegmentNumber), str(s.SegmentLabel), s.SegmentedPropertyTypeCodeSequence[0].CodeValue)
        for s in ds.SegmentSequence
    ]
    return out, labels, str(ds.SegmentsOverlap), int(ds.NumberOfFrames)


@pytest.mark.parametrize("with_spleen", [False, True])
def test_seg_out_from_label_maps_equals_highdicom_from_stacked_masks(tmp_path, with_spleen):
    """The joined label-map SEG holds the frames highdicom writes from one full mask per segment (the old way)."""
    import pydicom
    from conftest import oblique_affine
    from dicom_factory import write_image_series
    from phantoms import sphere_mask
    from seg_factory import SegmentSpec, write_seg

    from netlm_imaging.api import analyze_with_context
    from netlm_imaging.report.dicom_seg_out import masks_from_context
    from netlm_imaging.report.dicom_seg_out import write_seg as write_derived_seg

    aff = oblique_affine(spacing=(1.0, 1.0, 2.5), angles_deg=(0.0, 0.0, 8.0), origin=(-30.0, -20.0, 50.0))
    shape = (40, 32, 16)
    ijk = np.indices(shape)
    liver = (ijk[0] >= 4) & (ijk[0] < 28) & (ijk[1] >= 4) & (ijk[1] < 28) & (ijk[2] >= 2) & (ijk[2] < 14)
    centre = lambda i, j, k: aff[:3, :3] @ np.array([i, j, k]) + aff[:3, 3]  # noqa: E731
    lesions = sphere_mask(shape, aff, centre(12, 12, 6), 5.0) | sphere_mask(shape, aff, centre(22, 20, 9), 4.0)
    lesions |= sphere_mask(shape, aff, centre(35, 28, 3), 3.0)  # extrahepatic, near the spleen
    segs = [
        SegmentSpec("Liver", liver & ~lesions),
        SegmentSpec("Metastases", lesions, property_type=pydicom.sr.codedict.codes.SCT.Neoplasm),
    ]
    if with_spleen:
        spleen = (ijk[0] >= 31) & (ijk[1] >= 22) & (ijk[2] < 8)
        segs.append(SegmentSpec("Spleen", spleen, property_type=pydicom.sr.codedict.codes.SCT.Spleen))
    study = tmp_path / "study"
    files = write_image_series(study / "ct", np.where(liver, 60.0, -80.0), aff, shuffle_names=True, seed=2)
    write_seg(study / "seg.dcm", files, segs)
    _, ctx = analyze_with_context(study)
    assert len(ctx.lesions) == 3
    assert (ctx.spleen is not None) is with_spleen
    new, old = tmp_path / "new.dcm", tmp_path / "old.dcm"
    write_derived_seg(ctx, new)
    write_derived_seg(ctx, old, masks=masks_from_context(ctx))  # explicit masks: highdicom on the stacked masks
    got, expected = _seg_frames(new), _seg_frames(old)
    assert got[1] == expected[1]  # segment numbers, labels, codes
    assert got[2] == expected[2] == "YES"  # the total liver holds the intrahepatic lesions
    assert got[3] == expected[3]
    assert got[0] == expected[0]  # every frame: dimension indices, source image, pixels
    ds = pydicom.dcmread(new)
    n_bytes = (int(ds.NumberOfFrames) * int(ds.Rows) * int(ds.Columns) + 7) // 8
    assert len(ds.PixelData) == n_bytes + n_bytes % 2  # packed bits, one even-length padding


def _read_both_ways(monkeypatch, seg_path, reference, labels=None):
    """read_dicom_seg with the one-pass reader (if it applies) and forced down the frame-by-frame path."""
    from netlm_imaging.io import _seg_fast, dicom_seg, dicom_seg_decode
    from netlm_imaging.io.label_spec import parse_label_spec

    used = []
    real = dicom_seg_decode.decode_binary

    def spy(*a, **k):
        out = real(*a, **k)
        used.append(out is not None)
        return out

    monkeypatch.setattr(dicom_seg_decode, "decode_binary", spy)
    fast = dicom_seg.read_dicom_seg(seg_path, reference, parse_label_spec(labels))
    monkeypatch.setattr(dicom_seg, "read_frame_table", lambda ds, path: None)
    general = dicom_seg.read_dicom_seg(seg_path, reference, parse_label_spec(labels))
    assert _seg_fast.read_frame_table  # the module stays importable on its own
    return fast, general, any(used)


def _same_layers(fast, general):
    assert [(la.role, la.label) for la in fast] == [(la.role, la.label) for la in general]
    for a, b in zip(fast, general):
        assert a.mask.array.dtype == b.mask.array.dtype
        np.testing.assert_array_equal(a.mask.array, b.mask.array)
        assert a.mask.meta["warnings"] == b.mask.meta["warnings"]


@pytest.mark.parametrize("order", ["C", "F"])
def test_one_pass_seg_reader_equals_the_frame_by_frame_reader(tmp_path, monkeypatch, order):
    import pydicom
    from conftest import oblique_affine
    from dicom_factory import write_image_series
    from seg_factory import SegmentSpec, write_seg

    from netlm_imaging.volume import Volume

    shape = (36, 30, 14)
    aff = oblique_affine(spacing=(0.8, 0.9, 2.5))
    rng = np.random.default_rng(8)
    image = rng.normal(40.0, 10.0, shape).round()
    paths = write_image_series(tmp_path / "ct", image, aff, modality="CT", seed=4)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    arr = np.asarray(image, order=order)
    ref = Volume(arr, aff, str(dss[0].FrameOfReferenceUID), meta={"sop_instance_uids": [d.SOPInstanceUID for d in dss]})
    ii, jj, kk = np.indices(shape)
    liver = (ii >= 4) & (ii < 30) & (jj >= 3) & (jj < 26) & (kk >= 2) & (kk < 12)
    les = [
        ((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + ((kk - c[2]) * 2) ** 2) <= r**2
        for c, r in (((12, 10, 5), 4), ((24, 18, 9), 3))
    ]
    neo = pydicom.sr.codedict.codes.SCT.Neoplasm
    specs = [
        SegmentSpec("Liver", liver),
        *(SegmentSpec(f"Lesion {n}", m, property_type=neo) for n, m in enumerate(les, 1)),
    ]
    for omit in (True, False):
        seg = write_seg(tmp_path / f"seg_{omit}.dcm", paths, specs, omit_empty_frames=omit)
        fast, general, used = _read_both_ways(monkeypatch, seg, ref)
        assert used  # the one-pass reader answered
        _same_layers(fast, general)
        np.testing.assert_array_equal(fast[0].mask.array, liver)  # and both are the truth
        np.testing.assert_array_equal(fast[1].mask.array, les[0])
        monkeypatch.undo()


def test_one_pass_seg_reader_on_real_files(shared, monkeypatch):
    """dcmqi's liver.dcm and partial_overlaps.dcm: the same masks whichever reader places them."""
    from test_dicom_seg import _reference_from_folder  # the independent minimal series reader

    folder = shared("dcmqi_ct3slice_seg", "data", "segmentations")
    ref = _reference_from_folder(folder / "ct-3slice")
    for name, labels in (
        ("liver.dcm", None),
        ("partial_overlaps.dcm", "lesion=GREEN+ORANGE+PURPLE+LIGHT_BLUE+DARK_BLUE"),
    ):
        fast, general, _ = _read_both_ways(monkeypatch, folder / name, ref, labels)
        _same_layers(fast, general)
        monkeypatch.undo()


def test_referenced_instances_from_raw_bytes_equal_pydicom(tmp_path):
    import pydicom
    from conftest import oblique_affine
    from dicom_factory import write_image_series
    from seg_factory import SegmentSpec, write_seg

    from netlm_imaging.io._seg_fast import referenced_instances

    shape = (12, 10, 7)
    paths = write_image_series(tmp_path / "ct", np.zeros(shape), oblique_affine(), modality="CT", seed=9)
    m = np.zeros(shape, bool)
    m[2:8, 3:7, 1:5] = True
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", m)])
    full = pydicom.dcmread(seg)
    series = [str(r.SeriesInstanceUID) for r in full.ReferencedSeriesSequence]
    sops = [
        str(i.ReferencedSOPInstanceUID) for r in full.ReferencedSeriesSequence for i in r.ReferencedInstanceSequence
    ]
    assert len(sops) == shape[2]
    for ds in (pydicom.dcmread(seg, defer_size=256), pydicom.dcmread(seg)):  # deferred and in-memory values
        assert referenced_instances(ds) == (series, sops)


def test_fresh_analyze_imports_only_what_it_needs(tmp_path):
    """A fresh DICOM CT + SEG analysis loads no scipy, jsonschema, requests, numpy.ma, pydicom, socket or uuid."""
    from conftest import oblique_affine
    from dicom_factory import write_image_series
    from seg_factory import SegmentSpec, write_seg

    shape = (30, 28, 12)
    ijk = np.indices(shape)
    liver = (ijk[0] >= 3) & (ijk[0] < 25) & (ijk[1] >= 3) & (ijk[1] < 24) & (ijk[2] >= 1) & (ijk[2] < 11)
    lesion = (ijk[0] - 12) ** 2 + (ijk[1] - 12) ** 2 + ((ijk[2] - 5) * 2) ** 2 <= 16
    files = write_image_series(tmp_path / "study" / "ct", np.where(liver, 60.0, -80.0), oblique_affine(), seed=3)
    write_seg(tmp_path / "study" / "seg.dcm", files, [SegmentSpec("Liver", liver), SegmentSpec("Lesion", lesion)])
    code = (
        "import sys\n"
        "from netlm_imaging.cli import main\n"
        f"rc = main(['analyze', {str(tmp_path / 'study')!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "assert rc == 0, rc\n"
        "heavy = ('scipy', 'jsonschema', 'requests', 'numpy.ma', 'matplotlib', 'highdicom', 'SimpleITK', 'pydicom',\n"
        "         'socket', 'uuid')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import requests, pydicom\n"  # both still importable and working afterwards
        f"print(pydicom.dcmread({str(files[0])!r}).Modality)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NETLM_VALIDATE_REPORTS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tmp_path
    )
    assert out.stdout.split() == ["[]", "CT"]


def test_sparse_zeros_commit_only_the_written_pages():
    """A mask written in a few voxels per slice stays small (no 2 MiB huge page per written byte)."""
    from netlm_imaging.volume import sparse_zeros

    def rss_mib() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    setter = np._core.multiarray._set_madvise_hugepage
    before = setter(True)
    setter(before)
    a = sparse_zeros((512, 512, 64), np.uint16, "F")  # 32 MiB
    assert a.dtype == np.uint16
    assert a.flags.f_contiguous
    assert setter(before) == before  # numpy's own setting is left as it was
    r0 = rss_mib()
    a[100, 200, :] = 7  # one voxel in every slice
    assert rss_mib() - r0 < 4.0
    assert int(a.sum(dtype=np.int64)) == 7 * 64


def test_nonzero_bbox_is_the_argwhere_box():
    """Both reduction orders (C- and F-ordered, any dtype) give the box of ``np.argwhere``, padded and clipped."""
    from netlm_imaging.volume import nonzero_bbox

    rng = np.random.default_rng(29)
    for case in range(120):
        shape = tuple(int(x) for x in rng.integers(1, 20, 3))
        dtype = (bool, np.uint8, np.uint16, np.float32)[case % 4]
        arr = np.zeros(shape, dtype=dtype)
        n = int(rng.integers(0, 4))  # 0: empty
        for _ in range(n):
            arr[tuple(int(rng.integers(0, s)) for s in shape)] = 1
        if case % 3 == 1:
            arr = np.asfortranarray(arr)
        elif case % 3 == 2:
            arr = arr.transpose(1, 0, 2)  # neither C- nor F-contiguous
        pad = int(case % 3)
        got = nonzero_bbox(arr, pad)
        idx = np.argwhere(arr)
        if not len(idx):
            assert got is None
            continue
        lo, hi = idx.min(0), idx.max(0) + 1
        expected = tuple(slice(max(0, int(a) - pad), min(s, int(b) + pad)) for a, b, s in zip(lo, hi, arr.shape))
        assert got == expected, (case, arr.flags.c_contiguous)


def test_output_lock_host_is_socket_hostname():
    """The lock's host name (read without importing socket) is ``socket.gethostname()``."""
    import socket

    from netlm_imaging.outdir import _hostname

    assert _hostname() == socket.gethostname()


def _dp_full_grid(vals, ce, ca, capacity, k_max, resolution):
    """The planner's DP as first written (full-grid candidates, ``np.where``): the reference of the view form."""
    import math

    from netlm_imaging.classify.knapsack import ABLATION as _ABL
    from netlm_imaging.classify.knapsack import NONE as _NONE
    from netlm_imaging.classify.knapsack import VALUE_TOL_ML as _VALUE_TOL_ML
    from netlm_imaging.classify.knapsack import WEDGE as _WEDGE

    n = vals.size
    choice = np.zeros(n, dtype=np.int8)
    if n == 0 or capacity < 0:
        return 0.0, 0.0, choice
    we = np.where(np.isnan(ce), -1, np.ceil(np.nan_to_num(ce) / resolution - 1e-12)).astype(np.int64)
    wa = np.where(np.isnan(ca), -1, np.ceil(np.nan_to_num(ca) / resolution - 1e-12)).astype(np.int64)
    cap = min(math.floor(capacity / resolution + 1e-12), int(np.maximum(we, 0).sum() + np.maximum(wa, 0).sum()))
    k_top = min(k_max, int((wa >= 0).sum()))
    dp = np.zeros((k_top + 1, cap + 1))
    take = np.zeros((n, k_top + 1, cap + 1), dtype=np.int8)
    for i in range(n):
        v = float(vals[i])
        new = dp.copy()
        for kind, w in ((_WEDGE, int(we[i])), (_ABL, int(wa[i]))):
            if w < 0 or w > cap or (kind == _ABL and k_top == 0):
                continue
            cand = np.full_like(dp, -np.inf)
            if kind == _WEDGE:
                cand[:, w:] = dp[:, : cap + 1 - w] + v
            else:
                cand[1:, w:] = dp[:-1, : cap + 1 - w] + v
            better = cand > new + _VALUE_TOL_ML
            new = np.where(better, cand, new)
            take[i][better] = kind
        dp = new
    k, c = k_top, cap
    for i in range(n - 1, -1, -1):
        kind = int(take[i, k, c])
        choice[i] = kind
        if kind == _WEDGE:
            c -= int(we[i])
        elif kind == _ABL:
            c -= int(wa[i])
            k -= 1
    cost = float(
        np.where(choice == _WEDGE, np.nan_to_num(ce), 0).sum() + np.where(choice == _ABL, np.nan_to_num(ca), 0).sum()
    )
    return float(vals[choice != _NONE].sum()), cost, choice


def _best_by_enumeration(vals, ce, ca, capacity, k_max, resolution):
    """The most treated volume over all 3^n choices (none / wedge / ablation), costs rounded up to the resolution."""
    import itertools
    import math

    if capacity < 0:
        return 0.0
    units = math.floor(capacity / resolution + 1e-12)
    best = 0.0
    for combo in itertools.product((0, 1, 2), repeat=len(vals)):
        cost, value, abl = 0, 0.0, 0
        for kind, v, e, a in zip(combo, vals, ce, ca):
            if kind == 0:
                continue
            c = e if kind == 1 else a
            if np.isnan(c):
                break
            cost += math.ceil(c / resolution - 1e-12)
            value += float(v)
            abl += kind == 2
        else:
            if cost <= units and abl <= k_max:
                best = max(best, value)
    return best


def test_planner_dp_on_views_equals_the_full_grid_dp():
    """The DP updated on views of the shifted region, in each item's corner of ablation counts and costs, chooses
    what the full-grid DP chose (seeded, NaNs, ties)."""
    from netlm_imaging.classify.knapsack import solve_dp as _solve_dp

    rng = np.random.default_rng(41)
    for case in range(80):
        n = int(rng.integers(0, 14))
        vals = np.round(rng.uniform(0, 30, n), int(case % 3))  # rounding makes tied values
        ce = np.round(rng.uniform(0, 400, n), 1)
        ca = np.round(rng.uniform(0, 60, n), 1)
        ce[rng.random(n) < 0.2] = np.nan
        ca[rng.random(n) < 0.3] = np.nan
        capacity, k_max, res = float(rng.uniform(-5, 900)), int(rng.integers(0, 5)), (1.0, 2.5, 5.0)[case % 3]
        value, cost, choice = _solve_dp(vals, ce, ca, capacity, k_max, res)
        ref_value, ref_cost, ref_choice = _dp_full_grid(vals, ce, ca, capacity, k_max, res)
        assert value == ref_value
        assert cost == ref_cost
        np.testing.assert_array_equal(choice, ref_choice)
        if n <= 7:  # and both against every combination of the rounded problem (an independent truth)
            assert value == pytest.approx(_best_by_enumeration(vals, ce, ca, capacity, k_max, res), abs=1e-9)
    # the planner's order: the largest lesions first, too large to ablate (their rows of ablation counts
    # stay copies), then small ones; more items than the enumeration takes
    for _ in range(30):
        n = int(rng.integers(15, 40))
        vals = np.round(np.sort(rng.uniform(0, 30, n))[::-1], 1)
        ce = np.round(vals * rng.uniform(2, 8, n), 1)
        ca = np.round(vals * rng.uniform(1, 3, n), 1)
        ca[: n // 3] = np.nan
        capacity, k_max = float(rng.uniform(0.2, 0.9) * np.nansum(ce)), int(rng.integers(0, 8))
        got = _solve_dp(vals, ce, ca, capacity, k_max, 0.5)
        ref = _dp_full_grid(vals, ce, ca, capacity, k_max, 0.5)
        assert got[:2] == ref[:2]
        np.testing.assert_array_equal(got[2], ref[2])


def test_cohort_tables_rewritten_row_by_row_match_formatting_every_row(tmp_path):
    # the batch parent formats each row once (batch.tables.CohortTables); its files must be the text that
    # format_csv / format_lesions_csv give for all rows at once, after every change of a row
    from netlm_imaging.batch.tables import LESIONS_KEY, CohortTables, format_csv
    from netlm_imaging.report.tables import failure_row, format_lesions_csv

    rng = np.random.default_rng(7)
    ids = [f"s{i:02d}" for i in rng.permutation(9)]
    rows = {sid: failure_row(sid, "", "", "pending") for sid in ids}
    tables = CohortTables()

    def expect() -> tuple[str, str]:
        lesions = [r for row in rows.values() for r in row.get(LESIONS_KEY) or []]
        return format_csv(rows.values()), format_lesions_csv(lesions)

    for n, sid in enumerate(ids):
        tables.write(tmp_path, rows.values())
        got = ((tmp_path / "cohort.csv").read_text(), (tmp_path / "lesions.csv").read_text())
        assert got == expect()
        row = failure_row(sid, "", "fp", "ok" if n % 3 else "failed")
        row["liver_volume_ml"] = float(rng.uniform(900, 2100))
        lesion_ids = rng.permutation(n % 4 + 1) + 1  # out of order on purpose
        row[LESIONS_KEY] = [
            {"study_id": sid, "lesion_id": int(k), "volume_ml": float(rng.uniform(0.1, 40))} for k in lesion_ids
        ]
        rows[sid] = row
    tables.write(tmp_path, rows.values())
    assert ((tmp_path / "cohort.csv").read_text(), (tmp_path / "lesions.csv").read_text()) == expect()
    assert (tmp_path / "lesions.csv").read_text().count("\n") > len(ids)

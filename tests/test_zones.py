"""Enucleation / ablation zones (classify/zones.py) against a brute force written here.

The brute force takes every voxel centre to patient space through the (oblique, anisotropic, never
identity) affine and asks a k-d tree for the nearest lesion voxel centre; a voxel is in the zone when
that distance is at most the margin, with the code's documented relative tolerance of 1e-6 (so voxels
at exactly the margin are in). Lesions are seeded random blobs; grids include ones where many voxel
offsets lie exactly at the margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from scipy.spatial import cKDTree

from netlm_imaging.classify.zones import compute_zones, dilate_ball, union_cost_ml, union_voxels_by_label
from netlm_imaging.measure.context import Lesion, MeasurementContext
from netlm_imaging.volume import Volume

TOL = 1e-6  # the margin's relative tolerance (zones.py module docs)


def _centres(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _brute_zone(mask: np.ndarray, affine: np.ndarray, radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(zone, distance) on the whole grid: nearest lesion voxel centre in patient space (k-d tree)."""
    ijk = np.indices(mask.shape).reshape(3, -1).T.astype(np.float64)
    tree = cKDTree(_centres(affine, np.argwhere(mask).astype(np.float64)))
    d, _ = tree.query(_centres(affine, ijk), k=1)
    d = d.reshape(mask.shape)
    return d <= radius_mm * (1 + TOL), d


def _blobs(rng: np.random.Generator, shape: tuple[int, int, int], n: int, density: float = 0.35) -> np.ndarray:
    """``n`` seeded irregular blobs (random voxels of small random boxes, plus a few isolated voxels)."""
    out = np.zeros(shape, dtype=bool)
    for _ in range(n):
        size = rng.integers(2, 6, size=3)
        lo = [int(rng.integers(0, s - z)) for s, z in zip(shape, size)]
        box = tuple(slice(a, a + z) for a, z in zip(lo, size))
        out[box] |= rng.random(tuple(size)) < density
    out[tuple(rng.integers(0, s) for s in shape)] = True
    return out


GRIDS = [
    # spacing, radius: exact ties at the margin (0.75/1.5 grid: offsets (4,0,0), (0,0,2), (0,4,0) are 3.0 mm)
    ((0.75, 0.75, 1.5), 3.0),
    ((0.75, 0.75, 1.5), 10.0),
    ((0.75, 0.75, 1.5), 5.0),
    ((0.8, 1.3, 2.5), 4.3),
    ((1.5, 0.7, 0.7), 3.5),  # the coarsest axis first
    ((0.9, 2.7, 0.9), 2.7),  # the coarsest axis in the middle; 2.7 = 3 x 0.9 = 1 x 2.7 (ties)
    ((1.0, 1.0, 1.0), 5.0),  # isotropic: many offsets at exactly 5 (3-4-0, 0-3-4, ...)
    ((0.6, 0.6, 0.6), 0.5),  # smaller than a voxel: the lesion itself
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("spacing", "radius"), GRIDS)
def test_dilate_ball_equals_the_kd_tree_in_patient_space(spacing, radius, seed):
    rng = np.random.default_rng(seed)
    shape = (24, 21, 17)
    mask = _blobs(rng, shape, 3)
    # the passes follow the memory layout: C order, Fortran order (NIfTI, DICOM) and a permuted view
    mask = [mask, np.asfortranarray(mask), np.ascontiguousarray(mask.transpose(1, 2, 0)).transpose(2, 0, 1)][seed]
    affine = oblique_affine(spacing=spacing, angles_deg=(11.0 + seed, -6.0, 23.0))
    want, _ = _brute_zone(mask, affine, radius)
    got = dilate_ball(mask, radius, np.linalg.norm(affine[:3, :3], axis=0))
    assert got.shape == mask.shape
    assert got.dtype == bool
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} voxels differ"
    assert want.sum() > mask.sum() or radius < min(spacing)  # the zone grew (the test bites)


def test_voxels_exactly_at_the_margin_are_in_the_zone():
    """One voxel, 0.75 x 0.75 x 1.5 mm, 3 mm: the voxels 4 steps along i/j and 2 along k are 3.000 mm away."""
    mask = np.zeros((13, 13, 9), dtype=bool)
    mask[6, 6, 4] = True
    spacing = np.array([0.75, 0.75, 1.5])
    got = dilate_ball(mask, 3.0, spacing)
    for v in [(10, 6, 4), (2, 6, 4), (6, 10, 4), (6, 2, 4), (6, 6, 6), (6, 6, 2)]:
        assert got[v], v
    for v in [(11, 6, 4), (6, 6, 7), (10, 7, 4)]:  # 3.75, 4.5 and 3.09 mm: out
        assert not got[v], v
    # the offsets of the ball counted here: i^2 + j^2 + 4 k^2 <= 16 (3 mm / 0.75 mm)
    ii, jj, kk = np.mgrid[-4:5, -4:5, -2:3]
    assert int(got.sum()) == int(np.count_nonzero(ii**2 + jj**2 + 4 * kk**2 <= 16))


def test_float32_affine_keeps_the_margin_voxels():
    """A NIfTI affine stored as float32: spacing 0.7 is not exact, the margin voxels stay in (tolerance)."""
    mask = np.zeros((15, 15, 15), dtype=bool)
    mask[7, 7, 7] = True
    affine = oblique_affine(spacing=(0.7, 0.7, 1.4)).astype(np.float32).astype(np.float64)
    got = dilate_ball(mask, 2.8, np.linalg.norm(affine[:3, :3], axis=0))
    for v in [(11, 7, 7), (7, 3, 7), (7, 7, 9), (7, 7, 5)]:  # 4 x 0.7 and 2 x 1.4 = 2.8 mm
        assert got[v], v
    want, _ = _brute_zone(mask, affine, 2.8)
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("spacing", "shape"),
    [((0.2, 5.0, 5.0), (301, 13, 13)), ((5.0, 5.0, 0.1), (13, 13, 601))],
    ids=["wide-cone-axis", "wide-flat-axis"],
)
def test_many_voxels_across_the_margin(spacing, shape):
    """30 mm over 0.1-0.2 mm voxels: 150-300 offsets along one axis (wider than 8-bit counters)."""
    mask = np.zeros(shape, dtype=bool)
    c = tuple(s // 2 for s in shape)
    mask[c] = True
    mask[tuple(x + 1 for x in c)] = True
    affine = oblique_affine(spacing=spacing)
    want, _ = _brute_zone(mask, affine, 30.0)
    got = dilate_ball(mask, 30.0, np.linalg.norm(affine[:3, :3], axis=0))
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- compute_zones on a context


def _context(seed: int, *, with_segments: bool, known_boxes: str | None, order: str = "C"):
    rng = np.random.default_rng(seed)
    shape = (40, 36, 22)
    spacing = (0.8, 0.9, 2.0)
    affine = oblique_affine(spacing=spacing, angles_deg=(9.0, -12.0, 31.0))
    ijk = np.indices(shape)
    liver = ((ijk[0] - 20) / 17.0) ** 2 + ((ijk[1] - 18) / 15.0) ** 2 + ((ijk[2] - 11) / 9.0) ** 2 <= 1.0
    labels = np.zeros(shape, dtype=np.uint16)
    # the first two: overlapping zones; the last touches the image's edge (its box is clipped)
    centres = [(14, 16, 10), (19, 17, 11), (27, 22, 12), (20, 9, 8), (1, 18, 1)]
    for lid, c in enumerate(centres, start=1):
        blob = np.zeros(shape, dtype=bool)
        r = rng.integers(1, 3, size=3)
        box = tuple(slice(max(0, x - rr), x + rr + 1) for x, rr in zip(c, r))
        blob[box] = rng.random(tuple(b.stop - b.start for b in box)) < 0.6
        blob[c] = True
        labels[blob & (labels == 0)] = lid
    liver |= labels > 0
    seg = None
    if with_segments:
        seg = np.zeros(shape, dtype=np.uint8)
        seg[liver] = 1 + np.minimum(ijk[0][liver] // 5, 7)  # slabs along i: labels 1..8
    lesions = [
        Lesion(lid, "intrahepatic", 0.0, int((labels == lid).sum()), [0.0] * 3, 0.0, None, 0.0, None, False, None)
        for lid in range(1, len(centres) + 1)
    ]
    boxes = None
    if known_boxes is not None:
        boxes = {}
        for les in lesions:
            idx = np.argwhere(labels == les.id)
            lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
            if known_boxes == "loose":  # a box larger than the lesion (as after overlap attribution)
                lo, hi = np.maximum(lo - 2, 0), np.minimum(hi + 3, shape)
            boxes[les.id] = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    if order == "F":
        liver, labels = np.asfortranarray(liver), np.asfortranarray(labels)
        seg = None if seg is None else np.asfortranarray(seg)
    ctx = MeasurementContext(
        image=Volume(np.zeros(shape, dtype=np.float32), affine),
        liver=liver,
        lesion_labels=labels,
        lesions=lesions,
        segment_labels=seg,
        lesion_boxes=boxes,
    )
    return ctx, affine


def _full(z_box: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[box] = z_box
    return out


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("known_boxes", [None, "tight", "loose"])
@pytest.mark.parametrize("with_segments", [False, True])
def test_compute_zones_equals_the_brute_force(with_segments, known_boxes, order):
    ctx, affine = _context(3, with_segments=with_segments, known_boxes=known_boxes, order=order)
    labels, liver = ctx.lesion_labels, ctx.liver
    seg = ctx.segment_labels if with_segments else np.zeros(labels.shape, dtype=np.uint8)
    zones = compute_zones(ctx, [1, 2, 3, 4, 5], 5.0, 3.0)
    assert sorted(zones) == [1, 2, 3, 4, 5]
    assert zones[5].box[0].start == 0  # clipped at the edge
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    parenchyma = liver & (labels == 0)
    for lid, z in zones.items():
        for mask, margin, ml in (
            (z.enucleation, 5.0, z.enucleation_ml_by_label),
            (z.ablation, 3.0, z.ablation_ml_by_label),
        ):
            want = _brute_zone(labels == lid, affine, margin)[0] & liver
            assert np.array_equal(_full(mask, z.box, labels.shape), want), (lid, margin)
            counts = [np.count_nonzero(want & parenchyma & (seg == s)) for s in range(9)]
            assert np.allclose(ml, np.array(counts) * voxel_ml, rtol=1e-12, atol=0), (lid, margin)


@pytest.mark.parametrize("known_boxes", [None, "tight", "loose"])  # the lesion boxes the union clears tumour in
@pytest.mark.parametrize("order", ["C", "F"])
def test_union_of_overlapping_zones_is_counted_once(order, known_boxes):
    ctx, affine = _context(3, with_segments=True, known_boxes=known_boxes, order=order)
    labels, liver, seg = ctx.lesion_labels, ctx.liver, ctx.segment_labels
    zones = compute_zones(ctx, [1, 2, 3, 4], 5.0, 3.0)
    a = _brute_zone(labels == 1, affine, 5.0)[0] & liver  # enucleation of lesion 1
    b = _brute_zone(labels == 2, affine, 3.0)[0] & liver  # ablation of lesion 2
    par = liver & (labels == 0)
    assert np.count_nonzero(a & b & par) > 20  # the zones overlap: a double count would show
    assert np.count_nonzero((a | b) & (labels > 0) & ~((labels == 1) | (labels == 2))) > 0  # other lesions inside
    want = [np.count_nonzero((a | b) & par & (seg == s)) for s in range(9)]
    chosen = [(zones[1], "enucleation"), (zones[2], "ablation")]
    assert union_voxels_by_label(ctx, chosen).tolist() == want
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    kept = [0, 2, 3, 4, 5, 6, 7, 8]  # segment 1 resected
    assert union_cost_ml(ctx, chosen, kept) == pytest.approx(sum(want[s] for s in kept) * voxel_ml, rel=1e-12)
    assert union_voxels_by_label(ctx, []).tolist() == [0] * 9


def _many_lesions_context(seed: int, n: int):
    """``n`` lesions of different sizes (boxes 1-11 voxels wide) in one liver: their sweeps run in groups."""
    rng = np.random.default_rng(seed)
    shape = (52, 46, 20)
    affine = oblique_affine(spacing=(0.8, 0.9, 2.0), angles_deg=(-7.0, 14.0, 22.0))
    labels = np.zeros(shape, dtype=np.uint16)
    for lid in range(1, n + 1):
        r = rng.integers(0, 6, size=3) // np.array([1, 1, 2])
        c = [int(rng.integers(0, s)) for s in shape]
        box = tuple(slice(max(0, x - int(rr)), min(s, x + int(rr) + 1)) for x, rr, s in zip(c, r, shape))
        blob = np.zeros(shape, dtype=bool)
        blob[box] = rng.random(tuple(b.stop - b.start for b in box)) < 0.5
        blob[tuple(c)] = True
        labels[blob & (labels == 0)] = lid
    ijk = np.indices(shape)
    liver = ((ijk[0] - 26) / 24.0) ** 2 + ((ijk[1] - 23) / 21.0) ** 2 + ((ijk[2] - 10) / 10.0) ** 2 <= 1.0
    liver |= labels > 0
    ids = [lid for lid in range(1, n + 1) if (labels == lid).any()]
    lesions = [
        Lesion(lid, "intrahepatic", 0.0, int((labels == lid).sum()), [0.0] * 3, 0.0, None, 0.0, None, False, None)
        for lid in ids
    ]
    ctx = MeasurementContext(
        image=Volume(np.zeros(shape, dtype=np.float32), affine), liver=liver, lesion_labels=labels, lesions=lesions
    )
    return ctx, affine, ids


@pytest.mark.parametrize("padding", ["default", "any"])  # any: every group as full as zones._GROUP allows
def test_many_lesions_swept_in_groups_equal_the_brute_force(monkeypatch, padding):
    """More lesions than one group of sweeps (zones._GROUP), of different box sizes, some clipped at the edges."""
    from netlm_imaging.classify import zones as zones_module

    if padding == "any":
        monkeypatch.setattr(zones_module, "_PAD_WASTE", 1e9)
        monkeypatch.setattr(zones_module, "_PLANE", 10**9)
    sizes = []
    real = zones_module._flat_distance
    monkeypatch.setattr(zones_module, "_flat_distance", lambda sub, cap: sizes.append(sub.shape[0]) or real(sub, cap))
    ctx, affine, ids = _many_lesions_context(41, 3 * zones_module._GROUP + 2)
    assert len(ids) > 2 * zones_module._GROUP
    labels, liver = ctx.lesion_labels, ctx.liver
    got = compute_zones(ctx, ids, 4.0, 2.5)
    assert sorted(got) == ids
    assert len({tuple(s.stop - s.start for s in z.box) for z in got.values()}) > 5  # boxes of many sizes
    assert any(z.box[a].start == 0 or z.box[a].stop == labels.shape[a] for z in got.values() for a in range(3))
    assert 1 <= len(sizes) < len(ids) // 2  # the flat sweeps ran in groups
    for lid in ids:
        for mask, margin in ((got[lid].enucleation, 4.0), (got[lid].ablation, 2.5)):
            want = _brute_zone(labels == lid, affine, margin)[0] & liver
            assert np.array_equal(_full(mask, got[lid].box, labels.shape), want), (lid, margin)


def test_only_the_asked_zones_are_computed():
    ctx, _ = _context(5, with_segments=True, known_boxes=None)
    full = compute_zones(ctx, [1, 2, 3, 4, 5], 5.0, 3.0)
    some = compute_zones(ctx, [1, 2, 3, 4, 5], 5.0, 3.0, enucleation_ids={1, 3, 4}, ablation_ids=[2, 4])
    assert sorted(some) == [1, 2, 3, 4, 5]  # every lesion keeps its box
    for lid in range(1, 6):
        assert some[lid].box == full[lid].box
        for kind, asked in (("enucleation", {1, 3, 4}), ("ablation", {2, 4})):
            mask, ml = getattr(some[lid], kind), getattr(some[lid], f"{kind}_ml_by_label")
            if lid in asked:
                assert np.array_equal(mask, getattr(full[lid], kind))
                assert np.array_equal(ml, getattr(full[lid], f"{kind}_ml_by_label"))
                assert some[lid].zone(kind) is mask
            else:
                assert mask is None
                assert ml is None
                with pytest.raises(ValueError, match=f"lesion {lid}: no {kind} zone"):
                    some[lid].zone(kind)
    with pytest.raises(ValueError, match="no ablation zone"):
        union_voxels_by_label(ctx, [(some[1], "ablation")])
    assert compute_zones(ctx, [1, 2], 5.0, 3.0, enucleation_ids=[], ablation_ids=[])[1].enucleation is None


@pytest.mark.parametrize("n_rows", [9, 140])  # 140 + the cone reach: the wider integers
def test_cone_pass_equals_its_definition(n_rows):
    """The cone pass on seeded random A values: a cell is in when some row q has A[q] >= |p - q|."""
    from netlm_imaging.classify.zones import _cone

    rng = np.random.default_rng(n_rows)
    for r0, r1 in [(0, n_rows), (2, n_rows - 3), (n_rows // 2, n_rows // 2 + 1)]:
        cone_max = 6
        best = np.full((n_rows, 2, 3, 4), -1, dtype=np.int8)
        some = rng.integers(-1, cone_max + 1, size=(r1 - r0, 2, 3, 4))
        best[r0:r1] = np.where(rng.random(some.shape) < 0.08, some, -1)  # sparse: cells in and out
        best[r0, 0, 0, 0] = cone_max  # the farthest reach from the first and the last row
        best[r1 - 1, 1, 2, 3] = cone_max
        p = np.arange(n_rows)[:, None]
        want = (best.reshape(n_rows, 1, -1) >= np.abs(p - p.T)[:, :, None]).any(axis=0).reshape(best.shape)
        assert want.any()
        assert not want.all()
        assert np.array_equal(_cone(best, r0, r1, cone_max), want), (r0, r1)

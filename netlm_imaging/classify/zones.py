"""Parenchyma lost to wedge resection / enucleation and ablation, measured on the masks.

Why one module (~630 lines): the zones and their costs are one table for the planner, computed
by three linear passes on orthogonal grids and by the exact point test on a gantry-tilted (sheared)
one (:func:`_zones_sheared`), from the same lesion boxes and with the same costs.

For each intrahepatic lesion the zone of a sparing treatment is the lesion
dilated by a margin (every voxel whose centre lies within ``margin_mm`` of a
lesion voxel centre), intersected with the total-liver mask. Its parenchyma cost is the
non-tumorous liver inside it (lesion voxels of any lesion are not
parenchyma), counted per Couinaud segment label so the planner can charge
only what lies in the kept segments. The remnant of a chosen plan is counted
on the union of the chosen zones, so overlapping zones are not charged twice.

The dilation is exact for the voxel spacing along the array axes: a voxel is
in when some lesion voxel lies at an index offset whose length times the
spacing is at most ``margin_mm`` (+1e-6 relative, so voxels at exactly the
margin stay in when the affine went through float32). For an oblique grid with
orthogonal axes (any rotation) that is the Euclidean distance in patient
space. On a sheared grid (gantry tilt) the zones are the exact patient-space
point test instead (:func:`_zones_sheared`: voxels within ``margin_mm`` of a
lesion voxel centre, :func:`~netlm_imaging.geometry.within_mm`). It is computed on each lesion's
box padded by the margin in three passes that are linear in the box's voxels
(numpy only, :func:`_dilate_box`), with the same offsets as the ball. The sweeps are
many small numpy calls, so the flat sweeps of all lesions run as one and the cone
sweeps of boxes of similar size side by side (:func:`_flat_distances`,
:func:`_middle_and_cone_many`); the planner asks only for the zones of the treatments
the rules allow each lesion (``enucleation_ids`` / ``ablation_ids``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry import nonzero_bbox
from ..measure.context import MeasurementContext

__all__ = ["LesionZones", "compute_zones", "dilate_ball", "union_cost_ml", "union_voxels_by_label"]

_N_LABELS = 9
#: At most this many boxes sweep the cone axis together (a few MiB at most)
_GROUP = 8
#: Boxes sweep together while padded they hold at most this times their own voxels ...
_PAD_WASTE = 1.3
#: ... and the plane they sweep at a time has at most this many cells
_PLANE = 16384


@dataclass
class LesionZones:
    """Zones of one lesion within its padded bounding box.

    Attributes
    ----------
    lesion_id : int
    box : tuple of slice
        Crop of the image grid holding both zones.
    enucleation, ablation : numpy.ndarray or None
        Boolean zone masks (liver only) within ``box``; ``None`` when that zone was not asked for
        (:func:`compute_zones`'s ``enucleation_ids`` / ``ablation_ids``).
    enucleation_ml_by_label, ablation_ml_by_label : numpy.ndarray or None
        (9,) non-tumorous liver (mL) of each zone per segment label (0 = none); ``None`` likewise.
    """

    lesion_id: int
    box: tuple[slice, slice, slice]
    enucleation: np.ndarray | None
    ablation: np.ndarray | None
    enucleation_ml_by_label: np.ndarray | None
    ablation_ml_by_label: np.ndarray | None

    def zone(self, kind: str) -> np.ndarray:
        """The ``"enucleation"`` or ``"ablation"`` mask (within :attr:`box`).

        Raises
        ------
        ValueError
            If that zone was not computed for this lesion.
        """
        mask = self.enucleation if kind == "enucleation" else self.ablation if kind == "ablation" else None
        if mask is None:
            raise ValueError(f"lesion {self.lesion_id}: no {kind} zone was computed")
        return mask


def _labels(ctx: MeasurementContext, box: tuple[slice, slice, slice]) -> np.ndarray:
    if ctx.segment_labels is None:
        return np.zeros(tuple(s.stop - s.start for s in box), dtype=np.int64)
    lab = np.asarray(ctx.segment_labels[box]).astype(np.int64)
    return np.where((lab >= 1) & (lab <= 8), lab, 0)


def _ball_offsets(radius_mm: float, spacing: Sequence[float] | np.ndarray) -> np.ndarray:
    """``inside[a, b, c]``: the voxel offset (+-a, +-b, +-c) lies within the ball (the rule of the margin).

    A centre-to-centre distance ``|offset x spacing|`` up to ``radius_mm`` (+1e-6 relative) is inside,
    evaluated as the dilation always has: the half-length along the third axis allowed by each offset
    in the first two, ``floor(sqrt(r^2 - (a s0)^2 - (b s1)^2) / s2)``. The set is monotone in each
    ``|offset|`` (rounding is monotone), which is what the three passes of :func:`_dilate_box` rely on.
    """
    si, sj, sk = (float(x) for x in spacing)
    # a relative tolerance keeps voxels at exactly the radius inside even when the affine went through float32
    radius = radius_mm * (1.0 + 1e-6)
    r2 = radius * radius
    ni, nj = math.floor(radius / si), math.floor(radius / sj)
    h = np.full((ni + 1, nj + 1), -1, dtype=np.int64)
    for a in range(ni + 1):
        for b in range(nj + 1):
            rest = r2 - (a * si) ** 2 - (b * sj) ** 2
            if rest >= 0:
                h[a, b] = math.floor(math.sqrt(rest) / sk)
    return np.asarray(np.arange(int(h.max()) + 1)[None, None, :] <= h[:, :, None])


@dataclass(frozen=True)
class _Passes:
    """How one ball is dilated: the array frame ``perm`` (cone, middle, flat axes) and the tables.

    See :func:`_dilate_box`.
    """

    perm: tuple[int, int, int]
    flat_cap: int  # flat distances >= this reach no voxel
    reach: np.ndarray  # (middle offset b, flat distance t) -> 1 + the largest cone offset |a| allowed, 0 = none
    cone_max: int
    repeats: tuple[bool, ...]  # reach[b] equals reach[b - 1]

    @staticmethod
    def _repeats(reach: np.ndarray) -> tuple[bool, ...]:
        return (False, *(bool(np.array_equal(reach[b], reach[b - 1])) for b in range(1, reach.shape[0])))

    @classmethod
    def plan(cls, radius_mm: float, spacing: Sequence[float] | np.ndarray, like: np.ndarray) -> _Passes:
        """The passes for a ball on arrays laid out as ``like``.

        The flat axis is the fastest in memory (the masks are read in whole rows; its sweeps run on a
        small transposed copy); of the other two the coarser is the middle one (the fewest windowed
        offsets). The frame's arrays are C ordered: the cone sweeps whole planes, the window moves
        whole rows.
        """
        sp = [float(x) for x in spacing]
        s0, s1, s2 = (int(a) for a in np.argsort([-abs(st) for st in like.strides], kind="stable"))
        perm = (s1, s0, s2) if sp[s0] > sp[s1] else (s0, s1, s2)
        inside = _ball_offsets(radius_mm, sp).transpose(perm[0], perm[2], perm[1])  # (a, t, b)
        flat_max = inside.sum(axis=1) - 1  # (a, b) -> largest flat offset allowed, -1 = none
        cap = int(flat_max.max()) + 1
        cone_max = inside.shape[0] - 1
        # A + 1 <= cone_max + 1 and the cone's carry (down to -1) fit int8 for any usual margin / spacing
        reach = np.zeros((inside.shape[2], cap + 1), dtype=np.int8 if cone_max < 126 else np.int32)
        for b in range(inside.shape[2]):
            for t in range(cap):
                reach[b, t] = np.count_nonzero(flat_max[:, b] >= t)  # flat_max falls with a: a prefix
        return cls(perm, cap, reach, cone_max, cls._repeats(reach))

    def widened(self, cap: int) -> _Passes:
        """The same passes reading flat distances up to ``cap`` (larger ones reach nothing)."""
        extra = max(0, cap - self.flat_cap)
        reach = np.pad(self.reach, ((0, 0), (0, extra)))
        return _Passes(self.perm, self.flat_cap + extra, reach, self.cone_max, self._repeats(reach))


def _flat_distance(sub: np.ndarray, cap: int) -> np.ndarray:
    """Index distance along axis 2 to the nearest ``True`` of ``sub``, at most ``cap`` (C order)."""
    far = np.ascontiguousarray(~sub.transpose(2, 0, 1))  # swept plane by plane: contiguous planes
    n = far.shape[0]
    # the sweeps' values stay below cap + 2 n (a row without True: cap + n - 1 forwards, then n - 1 more
    # backwards): bytes when they fit, half the memory traffic of uint16
    d = np.empty(far.shape, dtype=np.uint8 if cap + 2 * n < 256 else np.uint16)
    np.multiply(far[0], cap, out=d[0], casting="unsafe")
    for p in range(1, n):  # numpy's accumulate along an axis is several times slower than these sweeps
        np.add(d[p - 1], 1, out=d[p])
        np.multiply(d[p], far[p], out=d[p])
    cur = d[n - 1].copy()
    for p in range(n - 2, -1, -1):
        np.add(cur, 1, out=cur)
        np.multiply(cur, far[p], out=cur)
        np.minimum(d[p], cur, out=d[p])
    np.minimum(d, cap, out=d)
    return np.ascontiguousarray((d.astype(np.uint8, copy=False) if cap < 256 else d).transpose(1, 2, 0))


def _groups(
    key: Sequence[float],
    own: Sequence[int],
    padded: Callable[[list[int]], int],
    plane: Callable[[list[int]], int],
    limit: int,
) -> list[list[int]]:
    """Indices in runs (sorted by ``key``) of at most ``limit`` whose padded size is at most
    :data:`_PAD_WASTE` times their own and whose swept plane has at most :data:`_PLANE` cells.

    Sweeping small boxes together saves numpy calls (about 1 us each, the most of a small box's
    time); large planes gain nothing from it, and their padding would only add work.
    """
    groups: list[list[int]] = []
    for n in sorted(range(len(key)), key=lambda i: key[i]):
        if groups and len(groups[-1]) < limit:
            trial = [*groups[-1], n]
            if plane(trial) <= _PLANE and padded(trial) <= _PAD_WASTE * sum(own[i] for i in trial):
                groups[-1].append(n)
                continue
        groups.append([n])
    return groups


def _flat_distances(subs: Sequence[np.ndarray], cap: int) -> list[np.ndarray]:
    """:func:`_flat_distance` of every array of ``subs``, those of similar flat length in one sweep.

    The rows (axes 0 and 1) of a group's arrays are stacked, shorter rows padded at their end with
    ``False`` (which adds no ``True``: every distance inside a row is unchanged), and swept together.
    """
    rows = [sub.shape[0] * sub.shape[1] for sub in subs]
    flat = [sub.shape[2] for sub in subs]
    out: list[np.ndarray] = [np.empty(0, dtype=np.uint8)] * len(subs)
    padded = lambda g: sum(rows[i] for i in g) * max(flat[i] for i in g)  # noqa: E731
    plane = lambda g: sum(rows[i] for i in g)  # noqa: E731
    for group in _groups(flat, [r * f for r, f in zip(rows, flat)], padded, plane, len(subs)):
        stack = np.zeros((sum(rows[i] for i in group), 1, max(flat[i] for i in group)), dtype=bool)
        at = 0
        for i in group:
            stack[at : at + rows[i], 0, : flat[i]] = subs[i].reshape(rows[i], flat[i])
            at += rows[i]
        dist = _flat_distance(stack, cap)[:, 0, :]
        at = 0
        for i in group:
            out[i] = dist[at : at + rows[i], : flat[i]].reshape(subs[i].shape)
            at += rows[i]
    return out


def _dilate_box(mask: np.ndarray, tight: tuple[slice, slice, slice], passes: _Passes) -> np.ndarray:
    """The ball dilation of ``mask`` (its ``True`` voxels lie in ``tight``), in three linear passes.

    With the axes renamed (cone a, middle b, flat t), a voxel is in the dilation when some mask voxel
    lies at an offset (a, b, t) of the ball. The passes: ``t`` = distance to the mask along the flat
    axis (two sweeps); for each voxel, ``A`` = the largest ``|a|`` that some middle offset ``b`` with
    the flat distance found there allows (a windowed maximum over the middle axis through a small
    table); then the cone: the voxel is in when some ``A`` at cone offset ``a`` has
    ``A >= |a|`` (two running maxima along the cone axis, :func:`_cone`). Every step is exact integer work on the rule
    of :func:`_ball_offsets`, so the result is the set of the offsets, voxel for voxel.
    """
    perm = passes.perm
    inv = tuple(int(i) for i in np.argsort(perm))
    m = np.ascontiguousarray(mask.transpose(perm))
    tc, tm = tight[perm[0]], tight[perm[1]]
    t_flat = _flat_distance(m[tc, tm, :], passes.flat_cap)
    return _middle_and_cone(t_flat, m.shape, tc, tm, passes).transpose(inv)


def _middle_and_cone(t_flat: np.ndarray, shape: tuple[int, ...], tc: slice, tm: slice, passes: _Passes) -> np.ndarray:
    """The last two passes of :func:`_dilate_box`, in the frame (cone, middle, flat).

    ``t_flat`` holds the flat distances on the mask's cone rows ``tc`` and middle columns ``tm``
    (every flat position); the result is the dilation on ``shape`` (C order).
    """
    return _middle_and_cone_many([(t_flat, shape, tc, tm)], passes)[0]


def _middle(t_flat: np.ndarray, best: np.ndarray, tm: slice, passes: _Passes) -> None:
    """The middle pass into ``best`` (zeros; the mask's cone rows x every middle x every flat position):
    A + 1 of each voxel (0 = none), a windowed maximum over the middle offsets through the table.

    ``best`` may be wider along the flat axis than ``t_flat`` (a group's padding): those cells read the
    distance ``flat_cap``, which reaches nothing (0, as they were), and the maxima then run on whole
    planes of ``best`` (middle and flat axes contiguous) instead of one short row at a time.
    """
    n_mid = best.shape[1]
    width = t_flat.shape[2]
    index = np.empty((*t_flat.shape[:2], best.shape[2]), dtype=np.intp)
    index[:, :, :width] = t_flat
    index[:, :, width:] = passes.flat_cap
    t_flat = index
    vals = np.empty(t_flat.shape, dtype=best.dtype)
    for b in range(passes.reach.shape[0]):
        # every t_flat indexes the table (<= its flat_cap): "wrap" only skips numpy's bounds check (4x faster);
        # a row equal to the one before it (offsets 0 and 1 at 10 mm / 1.5 mm) has those values already
        if not passes.repeats[b]:
            np.take(passes.reach[b], t_flat, out=vals, mode="wrap")
        for lo in {tm.start + b, tm.start - b}:
            s0, s1 = max(lo, 0), min(lo + (tm.stop - tm.start), n_mid)
            if s0 < s1:
                dst = best[:, s0:s1]
                np.maximum(dst, vals[:, s0 - lo : s1 - lo], out=dst)


def _middle_and_cone_many(
    items: Sequence[tuple[np.ndarray, tuple[int, ...], slice, slice]], passes: _Passes
) -> list[np.ndarray]:
    """:func:`_middle_and_cone` of every ``(t_flat, shape, tc, tm)``, the cone sweeps of up to
    :data:`_GROUP` boxes of similar size done together.

    The boxes of a group lie side by side in one array ``(cone, box, middle, flat)`` (each at
    index 0 of every axis, the rest padded); ``A`` is -1 (none) outside each box's mask rows and in
    the padding, so the running maxima of :func:`_cone` on a box's own cells are the ones of its own
    sweep (a column of the cone axis is swept alone; padded cells are cropped).
    """
    dtype = passes.reach.dtype
    out: list[np.ndarray] = [np.empty(0, dtype=bool)] * len(items)
    shapes = [items[n][1] for n in range(len(items))]
    volumes = [math.prod(shape) for shape in shapes]
    padded = lambda g: len(g) * math.prod(max(shapes[i][a] for i in g) for a in range(3))  # noqa: E731
    plane = lambda g: len(g) * math.prod(max(shapes[i][a] for i in g) for a in (1, 2))  # noqa: E731
    for group in _groups(volumes, volumes, padded, plane, _GROUP):
        n_cone, n_mid, n_flat = (max(shapes[n][a] for n in group) for a in range(3))
        best = np.zeros((n_cone, len(group), n_mid, n_flat), dtype=dtype)
        for g, n in enumerate(group):
            t_flat, shape, tc, tm = items[n]
            _middle(t_flat, best[tc, g, : shape[1]], tm, passes)
        best -= 1  # A, -1 = none
        r0, r1 = min(items[n][2].start for n in group), max(items[n][2].stop for n in group)
        reached = _cone(best, r0, r1, passes.cone_max)
        for g, n in enumerate(group):
            shape = shapes[n]
            out[n] = reached[: shape[0], g, : shape[1], : shape[2]].copy()
    return out


def _cone(best: np.ndarray, r0: int, r1: int, cone_max: int) -> np.ndarray:
    """The cone pass: cell ``p`` is in when some row ``q`` has ``A[q] >= |p - q|`` (``best`` = A, -1 outside
    the rows ``r0 .. r1 - 1``).

    Running maxima instead of carries: ``A[q] - (p - q) >= 0`` for some ``q <= p`` is
    ``max(A[q] + q for q <= p) >= p``, and ``A[q] - (q - p) >= 0`` for some ``q >= p`` is
    ``max(A[q] - q for q >= p) >= -p``: one call per row and direction; rows beyond ``r0 .. r1 - 1``
    compare against the last maximum (their own A is -1), and none farther than ``cone_max`` can be in.
    """
    n = best.shape[0]
    # A + q <= cone_max + n - 1 and A - q >= -n: the narrowest integers that hold them
    dt = np.dtype(np.int8 if n + cone_max < 127 else np.int16 if n + cone_max < 32767 else np.int32)
    q = np.arange(r0, r1, dtype=dt).reshape(-1, 1, 1, 1)
    fwd = np.add(best[r0:r1], q, dtype=dt)
    bwd = np.subtract(best[r0:r1], q, dtype=dt)
    for i in range(1, r1 - r0):
        np.maximum(fwd[i - 1], fwd[i], out=fwd[i])
    for i in range(r1 - r0 - 2, -1, -1):
        np.maximum(bwd[i + 1], bwd[i], out=bwd[i])
    reached = np.zeros(best.shape, dtype=bool)
    inner = reached[r0:r1]
    np.greater_equal(fwd, q, out=inner)
    inner |= np.greater_equal(bwd, np.negative(q))
    lo, hi = max(0, r0 - cone_max), min(n, r1 + cone_max)
    if hi > r1:  # rows after the last mask row: the forward maximum only
        np.greater_equal(fwd[-1][None], np.arange(r1, hi, dtype=dt).reshape(-1, 1, 1, 1), out=reached[r1:hi])
    if lo < r0:  # rows before the first: the backward maximum only
        np.greater_equal(bwd[0][None], np.arange(-lo, -r0, -1, dtype=dt).reshape(-1, 1, 1, 1), out=reached[lo:r0])
    return reached


def _lesion_boxes(ctx: MeasurementContext, labels: np.ndarray) -> Mapping[int, tuple[slice, slice, slice]]:
    """Lesion id -> bounding box (image indices): the measure stage's, else found on the label map."""
    known = getattr(ctx, "lesion_boxes", None)
    if known is not None:
        return known
    import cc3d

    # cc3d reads either memory order: no C-ordered copy of the label map (100 MiB at 512 x 512 x 200)
    contiguous = labels if labels.flags.c_contiguous or labels.flags.f_contiguous else np.ascontiguousarray(labels)
    boxes = cc3d.statistics(contiguous)["bounding_boxes"] if labels.any() else []
    return {i: b for i, b in enumerate(boxes) if i > 0 and b is not None}


@dataclass(frozen=True)
class _Box:
    """One lesion's padded box in the passes' frame (cone, middle, flat axes), C order."""

    lesion_id: int
    box: tuple[slice, slice, slice]  # on the image grid
    shape: tuple[int, int, int]
    lesion_rows: np.ndarray  # the lesion's mask on its own cone rows and middle columns (every flat position)
    non_tumour: np.ndarray
    in_liver: np.ndarray
    seg: np.ndarray | None  # segment labels 0..8, or None: all 0
    tight: tuple[slice, slice, slice]  # the lesion's own box within it


def compute_zones(
    ctx: MeasurementContext,
    lesion_ids: Iterable[int],
    margin_mm: float,
    ablation_margin_mm: float,
    *,
    enucleation_ids: Collection[int] | None = None,
    ablation_ids: Collection[int] | None = None,
    part_segment: Mapping[int, int] | None = None,
) -> dict[int, LesionZones]:
    """Enucleation (``margin_mm``) and ablation (``ablation_margin_mm``) zones of the given lesions.

    Parameters
    ----------
    ctx : MeasurementContext
        Needs the total-liver mask and the lesion label map.
    lesion_ids : iterable of int
    margin_mm, ablation_margin_mm : float
    enucleation_ids, ablation_ids : collection of int, optional
        Only these lesions get that zone (the others' fields are ``None``); default: all of ``lesion_ids``.
    part_segment : Mapping, optional
        Lesion id -> a segment label: dilate only the lesion's voxels in that segment (its part over a
        boundary, :mod:`netlm_imaging.classify.involvement`); needs the segment map.

    Returns
    -------
    dict
        Lesion id -> :class:`LesionZones` (every lesion of ``lesion_ids`` that has voxels).
    """
    spacing = np.linalg.norm(ctx.image.affine[:3, :3], axis=0)
    labels = np.asarray(ctx.lesion_labels)
    liver = np.asarray(ctx.liver, dtype=bool) if ctx.liver is not None else np.ones(labels.shape, bool)
    margins = (margin_mm, ablation_margin_mm)
    if ctx.image.sheared:  # gantry tilt: the passes need orthogonal axes; the exact point test instead
        return _zones_sheared(ctx, labels, liver, lesion_ids, margins, (enucleation_ids, ablation_ids), part_segment)
    passes = [_Passes.plan(m, spacing, labels) for m in margins]
    cap = max(ps.flat_cap for ps in passes)
    passes = [ps.widened(cap) for ps in passes]  # one flat pass serves both margins
    perm = passes[0].perm  # from the memory layout: the same for both
    # each margin's box: the lesion's grown by the ball's largest offset along each axis (no voxel
    # beyond it can be reached), the lesion's masks on that of the larger margin
    reach = [[n - 1 for n in _ball_offsets(m, spacing).shape] for m in margins]
    pad = [max(r) for r in zip(*reach)]
    pads = [[r[a] for a in perm] for r in reach]
    known = _lesion_boxes(ctx, labels)
    boxes = [
        _lesion_box(ctx, labels, liver, int(lid), known[int(lid)], pad, perm, (part_segment or {}).get(int(lid)))
        for lid in lesion_ids
        if int(lid) in known
    ]
    if not boxes:
        return {}
    t_flats = _flat_distances([b.lesion_rows for b in boxes], cap)
    inv = tuple(int(i) for i in np.argsort(perm))
    voxel_ml = ctx.voxel_volume_ml  # a determinant each time it is read
    found: list[list[tuple[np.ndarray | None, np.ndarray | None]]] = [[(None, None), (None, None)] for _ in boxes]
    for m, (ps, p, only) in enumerate(zip(passes, pads, (enucleation_ids, ablation_ids))):
        wanted = [n for n, b in enumerate(boxes) if only is None or b.lesion_id in only]
        subs = [_padded(boxes[n].tight, p, boxes[n].shape) for n in wanted]  # the whole box for the larger margin
        items = [
            (
                t_flats[n][:, :, sub[2]],
                tuple(x.stop - x.start for x in sub),
                slice(boxes[n].tight[0].start - sub[0].start, boxes[n].tight[0].stop - sub[0].start),
                slice(boxes[n].tight[1].start - sub[1].start, boxes[n].tight[1].stop - sub[1].start),
            )
            for n, sub in zip(wanted, subs)
        ]
        dilated = _middle_and_cone_many(items, ps) if items else []
        for n, sub, zone in zip(wanted, subs, dilated):
            found[n][m] = _on_liver(boxes[n], sub, zone, inv, voxel_ml)
    return {
        b.lesion_id: LesionZones(b.lesion_id, b.box, enuc[0], abl[0], enuc[1], abl[1])
        for b, (enuc, abl) in zip(boxes, found)
    }


def _zones_sheared(
    ctx: MeasurementContext,
    labels: np.ndarray,
    liver: np.ndarray,
    lesion_ids: Iterable[int],
    margins: tuple[float, float],
    only: tuple[Collection[int] | None, Collection[int] | None],
    part_segment: Mapping[int, int] | None = None,
) -> dict[int, LesionZones]:
    """:func:`compute_zones` on a sheared grid (gantry tilt), voxel for voxel by the same rule.

    A voxel is in a zone when some lesion voxel centre lies within the margin in patient space
    (``+1e-6`` relative), tested with a k-d tree of the lesion's voxels
    (:func:`~netlm_imaging.geometry.within_mm`) on its box padded by the larger margin's reach
    (:func:`~netlm_imaging.geometry.ball_offsets`).
    """
    from ..geometry import ball_offsets, within_mm

    affine = ctx.image.affine
    pad = np.max(np.abs(ball_offsets(affine, max(margins))), axis=0)
    known = _lesion_boxes(ctx, labels)
    voxel_ml = ctx.voxel_volume_ml
    out: dict[int, LesionZones] = {}
    for lid in (int(x) for x in lesion_ids):
        if lid not in known:
            continue
        box3 = _padded(known[lid], [int(p) for p in pad], labels.shape)
        lab = np.asarray(labels[box3])
        lesion = lab == lid
        in_liver = np.asarray(liver[box3], dtype=bool)
        seg = _labels(ctx, box3) if ctx.segment_labels is not None else None
        if part_segment is not None and lid in part_segment:
            lesion &= _labels(ctx, box3) == part_segment[lid]
        points = np.argwhere(np.ones(lab.shape, dtype=bool))
        found: list[tuple[np.ndarray | None, np.ndarray | None]] = []
        for m, ids in zip(margins, only):
            if ids is not None and lid not in ids:
                found.append((None, None))
                continue
            zone = within_mm(lesion, affine, m, points).reshape(lab.shape) & in_liver
            cost = zone & (lab == 0)
            if seg is None:
                counts = np.zeros(_N_LABELS, dtype=np.int64)
                counts[0] = np.count_nonzero(cost)
            else:
                counts = np.bincount(seg[cost], minlength=_N_LABELS)[:_N_LABELS]
            found.append((zone, counts.astype(np.float64) * voxel_ml))
        (enuc, enuc_ml), (abl, abl_ml) = found
        out[lid] = LesionZones(lid, box3, enuc, abl, enuc_ml, abl_ml)
    return out


def _lesion_box(
    ctx: MeasurementContext,
    labels: np.ndarray,
    liver: np.ndarray,
    lid: int,
    tight_box: tuple[slice, slice, slice],
    pad: Sequence[int],
    perm: tuple[int, int, int],
    part: int | None = None,
) -> _Box:
    """The masks of lesion ``lid`` (only its voxels in segment ``part`` when given) on its box padded by ``pad``,
    in the frame ``perm``."""
    box3 = _padded(tight_box, pad, labels.shape)
    lab = np.ascontiguousarray(labels[box3].transpose(perm))  # one strided read; the comparisons run on it
    tc, tm, tf = (slice(tight_box[a].start - box3[a].start, tight_box[a].stop - box3[a].start) for a in perm)
    lesion_rows = lab[tc, tm, :] == lid  # all the flat pass reads
    non_tumour = lab == 0
    in_liver = liver[box3].transpose(perm)  # a view, read by _on_liver: no copy pass per box
    seg = _labels(ctx, box3).transpose(perm) if ctx.segment_labels is not None else None
    if part is not None:  # the lesion's part in one segment (its lesion box still holds it)
        lesion_rows &= _labels(ctx, box3).transpose(perm)[tc, tm, :] == part
    shape = (lab.shape[0], lab.shape[1], lab.shape[2])
    return _Box(lid, box3, shape, lesion_rows, non_tumour, in_liver, seg, (tc, tm, tf))


def _on_liver(
    b: _Box, sub: tuple[slice, slice, slice], zone: np.ndarray, inv: tuple[int, ...], voxel_ml: float
) -> tuple[np.ndarray, np.ndarray]:
    """(zone on the liver within the lesion's box in image axis order, its non-tumorous mL per segment label)."""
    zone &= b.in_liver[sub]
    cost = zone & b.non_tumour[sub]
    if b.seg is None:  # every voxel has label 0: the count is the whole histogram
        counts = np.zeros(_N_LABELS, dtype=np.int64)
        counts[0] = np.count_nonzero(cost)
    else:
        counts = np.bincount(b.seg[sub][cost], minlength=_N_LABELS)[:_N_LABELS]
    if zone.shape != b.shape:
        full = np.zeros(b.shape, dtype=bool)
        full[sub] = zone
        zone = full
    return zone.transpose(inv), counts.astype(np.float64) * voxel_ml


def _padded(box: Sequence[slice], pad: Sequence[int], shape: Sequence[int]) -> tuple[slice, slice, slice]:
    s = [slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, shape)]
    return (s[0], s[1], s[2])


def dilate_ball(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` (+1e-6 relative) of a ``True`` voxel centre (anisotropic spacing).

    Distances are index offsets times ``spacing`` (one value per array axis); see
    :func:`_dilate_box` for the method (linear in the number of voxels).

    Examples
    --------
    >>> m = np.zeros((5, 5, 5), bool); m[2, 2, 2] = True
    >>> int(dilate_ball(m, 1.0, np.array([1.0, 1.0, 1.0])).sum())  # the centre and its 6 face neighbours
    7
    """
    mask = np.asarray(mask, dtype=bool)
    tight = nonzero_bbox(mask)
    if tight is None:
        return np.zeros(mask.shape, dtype=bool)
    return np.ascontiguousarray(_dilate_box(mask, tight, _Passes.plan(radius_mm, spacing, mask)))


def union_voxels_by_label(ctx: MeasurementContext, zones: Sequence[tuple[LesionZones, str]]) -> np.ndarray:
    """Voxel counts of non-tumorous liver in the union of the chosen zones, per segment label (9,).

    Parameters
    ----------
    ctx : MeasurementContext
    zones : sequence of (LesionZones, kind)
        ``kind`` is "enucleation" or "ablation".

    Returns
    -------
    numpy.ndarray
        int64 counts for labels 0 (no segment) .. 8; overlapping zones are counted once.
    """
    counts = np.zeros(_N_LABELS, dtype=np.int64)
    if not zones:
        return counts
    box = tuple(slice(min(z.box[a].start for z, _ in zones), max(z.box[a].stop for z, _ in zones)) for a in range(3))
    box3: tuple[slice, slice, slice] = (box[0], box[1], box[2])
    labels = np.asarray(ctx.lesion_labels)
    union = np.zeros(tuple(s.stop - s.start for s in box3), dtype=bool, order="F")
    for z, kind in zones:
        rel = tuple(slice(zb.start - b.start, zb.stop - b.start) for zb, b in zip(z.box, box3))
        union[rel] |= z.zone(kind)
    # lesion voxels are not parenchyma; each lies in its lesion's box, so only those boxes are read
    # (about a tenth of the union's box); boxes that overlap clear the same voxels twice, harmlessly
    for lesion_box in _lesion_boxes(ctx, labels).values():
        part = [slice(max(lb.start, b.start), min(lb.stop, b.stop)) for lb, b in zip(lesion_box, box3)]
        if all(x.start < x.stop for x in part):
            rel = tuple(slice(x.start - b.start, x.stop - b.start) for x, b in zip(part, box3))
            union[rel] &= labels[part[0], part[1], part[2]] == 0
    if ctx.segment_labels is None:
        counts[0] = np.count_nonzero(union)
    else:
        counts += np.bincount(_labels(ctx, box3)[union], minlength=_N_LABELS)[:_N_LABELS]
    return counts


def union_cost_ml(
    ctx: MeasurementContext, zones: Sequence[tuple[LesionZones, str]], kept_labels: Sequence[int]
) -> float:
    """Non-tumorous liver (mL) in the union of the chosen zones that lies in the kept segment labels.

    Parameters
    ----------
    ctx : MeasurementContext
    zones : sequence of (LesionZones, kind)
        ``kind`` is "enucleation" or "ablation".
    kept_labels : sequence of int
        Segment labels (0 = unlabelled liver, 1..8) left in place.
    """
    counts = union_voxels_by_label(ctx, zones)
    kept = sorted({int(k) for k in kept_labels if 0 <= int(k) < _N_LABELS})
    return float(counts[kept].sum()) * ctx.voxel_volume_ml

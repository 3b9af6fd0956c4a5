"""Lesions of a follow-up matched to those of its baseline: matched, new, disappeared, split, merged.

Matching [D]
    The follow-up lesion map is resampled onto the baseline grid through the
    alignment; pairs are matched greedily by overlap (largest first), then
    remaining lesions by centroid distance (follow-up centroid mapped into
    baseline space) up to ``match_distance_mm``.
Split and coalesced lesions (RECIST 1.1, Eisenhauer et al. 2009 [U])
    An unmatched follow-up lesion that overlaps a matched baseline lesion is a
    fragment of it (**split**); an unmatched baseline lesion that overlaps a
    matched follow-up lesion has coalesced into it (**merged**). The other
    unmatched baseline lesions have **disappeared**, the other unmatched
    follow-up lesions are **new**; an unmatched baseline lesion that lies (even partly) outside
    the follow-up image is **not_imaged** (not assessable), not disappeared.
    :func:`credited_targets` says which
    baseline target each follow-up lesion's diameter counts for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..measure.context import Lesion, MeasurementContext
from .registration import Alignment, resample_nearest

__all__ = ["LesionChange", "credited_targets", "lesion_changes", "match_lesions", "outside_followup_fractions"]


@dataclass
class LesionChange:
    """One lesion across the two studies (ids are each study's ``Lesion.id``)."""

    # "matched" | "new" | "disappeared" | "split" (fragment of baseline_id) | "merged" (into followup_id) |
    # "not_imaged" (where the baseline lesion was, the follow-up image has no voxel: not assessable)
    # | "normal_node" (a new lymph node of short axis < 10 mm: normal in RECIST 1.1, not a new lesion)
    status: str
    baseline_id: int | None
    followup_id: int | None
    baseline_volume_ml: float | None
    followup_volume_ml: float | None
    volume_change_ml: float | None
    volume_change_percent: float | None
    baseline_diameter_mm: float | None
    followup_diameter_mm: float | None
    centroid_distance_mm: float | None
    overlap_ml: float | None
    matched_by: str | None = None  # "overlap" | "centroid_distance"
    target: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded)."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def match_lesions(
    baseline: MeasurementContext, followup: MeasurementContext, al: Alignment, match_distance_mm: float
) -> tuple[list[tuple[Lesion, Lesion, str, float, float]], dict[tuple[int, int], float]]:
    """Greedy matching: overlap first, then centroid distance.

    Returns the pairs (b, f, how, distance_mm, overlap_ml) and the overlap (mL) of every
    (baseline id, follow-up id) that overlaps after the alignment.
    """
    b_by_id = {les.id: les for les in baseline.lesions}
    f_by_id = {les.id: les for les in followup.lesions}
    if not b_by_id or not f_by_id:
        return [], {}
    moving = followup.image.with_array(np.asarray(followup.lesion_labels, dtype=np.int32))
    warped = resample_nearest(moving, baseline.image, al.sitk_transform())
    bl = np.asarray(baseline.lesion_labels, dtype=np.int64)
    both = (bl > 0) & (warped > 0)
    nf = int(max(f_by_id)) + 1
    keys, counts = np.unique(bl[both] * nf + warped[both], return_counts=True)
    vox_ml = baseline.image.voxel_volume_ml
    overlap = {(int(k) // nf, int(k) % nf): int(c) for k, c in zip(keys, counts)}
    f_ids = sorted(f_by_id)
    f_cent = al.moving_to_fixed(np.array([f_by_id[i].centroid_lps_mm for i in f_ids], dtype=float))
    f_cent_by_id = dict(zip(f_ids, f_cent))

    def dist(b: int, f: int) -> float:
        return float(np.linalg.norm(np.asarray(b_by_id[b].centroid_lps_mm, dtype=float) - f_cent_by_id[f]))

    used_b: set[int] = set()
    used_f: set[int] = set()
    out: list[tuple[Lesion, Lesion, str, float, float]] = []
    for (b, f), c in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if b in b_by_id and f in f_by_id and b not in used_b and f not in used_f:
            used_b.add(b)
            used_f.add(f)
            out.append((b_by_id[b], f_by_id[f], "overlap", dist(b, f), c * vox_ml))
    cands = sorted((dist(b, f), b, f) for b in b_by_id if b not in used_b for f in f_ids if f not in used_f)
    for d, b, f in cands:
        if d <= match_distance_mm and b not in used_b and f not in used_f:
            used_b.add(b)
            used_f.add(f)
            out.append((b_by_id[b], f_by_id[f], "centroid_distance", d, 0.0))
    overlap_ml = {k: c * vox_ml for k, c in overlap.items() if k[0] in b_by_id and k[1] in f_by_id}
    return out, overlap_ml


def _fragments(
    pairs: Sequence[tuple[Lesion, Lesion, str, float, float]],
    overlap_ml: Mapping[tuple[int, int], float],
    baseline_ids: Sequence[int],
    followup_ids: Sequence[int],
) -> tuple[dict[int, tuple[int, float]], dict[int, tuple[int, float]]]:
    """Lesions that split or coalesced (RECIST 1.1, Eisenhauer 2009 [U]: fragments' diameters add up).

    After the one-to-one matching, an unmatched follow-up lesion that overlaps a matched baseline
    lesion is a **fragment** of it (split), and an unmatched baseline lesion that overlaps a matched
    follow-up lesion has **coalesced** into it (merged): neither is new nor disappeared. (The greedy
    matching leaves no overlapping pair with both lesions unmatched.)

    Returns
    -------
    (dict, dict)
        Follow-up id -> (baseline id, overlap mL) of the fragments, and baseline id ->
        (follow-up id, overlap mL) of the coalesced lesions; the partner with the largest overlap.
    """
    matched_b = {b.id for b, *_ in pairs}
    matched_f = {f.id for _, f, *_ in pairs}
    split: dict[int, tuple[int, float]] = {}
    merged: dict[int, tuple[int, float]] = {}
    for (b, f), ml in sorted(overlap_ml.items(), key=lambda kv: (-kv[1], kv[0])):
        if f not in matched_f and b in matched_b and f not in split and f in followup_ids:
            split[f] = (b, ml)
        elif b not in matched_b and f in matched_f and b not in merged and b in baseline_ids:
            merged[b] = (f, ml)
    return split, merged


def credited_targets(
    changes: Sequence[LesionChange], targets: set[int], overlap_ml: Mapping[tuple[int, int], float]
) -> dict[int, int]:
    """Follow-up lesion id -> the baseline target its diameter counts for at follow-up.

    Each follow-up lesion is linked to the baseline lesions it continues (its match, the lesions
    that coalesced into it, the lesion it split from). It counts for one target among them: its
    match when that is a target, else the linked target with the largest overlap; a follow-up
    lesion linked to no target counts for none. So a fragment adds its diameter to its target, and
    a coalesced lesion's diameter counts once, for a target, the others of the group 0 mm.
    """
    links: dict[int, list[LesionChange]] = {}
    for c in changes:
        if c.followup_id is not None and c.baseline_id is not None:
            links.setdefault(c.followup_id, []).append(c)
    credit: dict[int, int] = {}
    for f, cs in links.items():
        tgt = [c for c in cs if c.baseline_id in targets]
        if not tgt:
            continue
        main = next((c for c in tgt if c.status in ("matched", "split")), None)
        if main is None:
            main = max(tgt, key=lambda c: (overlap_ml.get((int(c.baseline_id or 0), f), 0.0), -int(c.baseline_id or 0)))
        credit[f] = int(main.baseline_id or 0)
    return credit


def outside_followup_fractions(
    baseline: MeasurementContext, followup: MeasurementContext, al: Alignment
) -> dict[int, float]:
    """Baseline lesion id -> fraction of its voxels that fall outside the follow-up image (field of view).

    The voxel centres are mapped through the alignment (baseline -> follow-up LPS) onto the
    follow-up grid; a centre more than half a voxel beyond the array is outside. One pass over
    the lesion voxels of all lesions.
    """
    labels = np.asarray(baseline.lesion_labels)
    idx = np.argwhere(labels > 0)
    if not len(idx):
        return {}
    ids = labels[tuple(idx.T)].astype(np.int64)
    m = al.matrix_fixed_to_moving @ baseline.image.affine  # baseline index -> follow-up LPS
    to_ijk = np.linalg.inv(followup.image.affine) @ m  # baseline index -> follow-up index
    ijk = idx.astype(np.float64) @ to_ijk[:3, :3].T + to_ijk[:3, 3]
    shape = np.asarray(followup.image.shape[:3], dtype=np.float64)
    outside = ~np.all((ijk >= -0.5) & (ijk < shape - 0.5), axis=1)
    total = np.bincount(ids)
    out_n = np.bincount(ids, weights=outside.astype(np.float64), minlength=len(total))
    return {int(i): float(out_n[i] / total[i]) for i in np.nonzero(total)[0]}


def lesion_changes(
    pairs: Sequence[tuple[Lesion, Lesion, str, float, float]],
    overlap_ml: Mapping[tuple[int, int], float],
    baseline: MeasurementContext,
    followup: MeasurementContext,
    al: Alignment,
    targets: set[int],
    fov: Mapping[int, float] | None = None,
) -> list[LesionChange]:
    """One :class:`LesionChange` per lesion: the matched pairs, then merged / disappeared, then split / new.

    Parameters
    ----------
    pairs, overlap_ml
        From :func:`match_lesions`.
    baseline, followup : MeasurementContext
    al : Alignment
        Follow-up -> baseline alignment (centroid distances of fragments).
    targets : set of int
        Baseline target ids (``target`` flag of the rows).
    fov : mapping, optional
        :func:`outside_followup_fractions` when the caller has it.
    """
    outside = outside_followup_fractions(baseline, followup, al) if fov is None else fov
    unseen = {
        les.id for les in baseline.lesions if les.id not in {b.id for b, *_ in pairs} and outside.get(les.id, 0.0)
    }
    split, merged = _fragments(
        pairs, overlap_ml, [les.id for les in baseline.lesions], [les.id for les in followup.lesions]
    )
    b_by_id = {les.id: les for les in baseline.lesions}
    changes: list[LesionChange] = []
    matched_b = {b.id for b, *_ in pairs}
    matched_f = {f.id for _, f, *_ in pairs}
    for b, f, how, d, ov in sorted(pairs, key=lambda p: p[0].id):
        changes.append(
            LesionChange(
                status="matched",
                baseline_id=b.id,
                followup_id=f.id,
                baseline_volume_ml=b.volume_ml,
                followup_volume_ml=f.volume_ml,
                volume_change_ml=f.volume_ml - b.volume_ml,
                volume_change_percent=100.0 * (f.volume_ml - b.volume_ml) / b.volume_ml if b.volume_ml > 0 else None,
                baseline_diameter_mm=b.longest_axial_diameter_mm,
                followup_diameter_mm=f.longest_axial_diameter_mm,
                centroid_distance_mm=d,
                overlap_ml=ov,
                matched_by=how,
                target=b.id in targets,
            )
        )

    def baseline_only(les: Lesion, status: str, gone: bool, f_id: int | None = None, ov: float | None = None) -> None:
        """A baseline lesion without a match: disappeared (gone: 0 at follow-up), merged or not imaged."""
        changes.append(
            LesionChange(
                status,
                les.id,
                f_id,
                les.volume_ml,
                0.0 if gone else None,
                -les.volume_ml if gone else None,
                -100.0 if gone else None,
                les.longest_axial_diameter_mm,
                0.0 if gone else None,
                None,
                ov,
                None if ov is None else "overlap",
                les.id in targets,
            )
        )

    def followup_only(les: Lesion, status: str, b_id: int | None = None, ov: float | None = None) -> None:
        """A follow-up lesion without a match: new, or a fragment (split) of baseline lesion ``b_id``."""
        dist = None
        if b_id is not None:
            moved = al.moving_to_fixed(np.array([les.centroid_lps_mm], dtype=float))[0]
            dist = float(np.linalg.norm(np.asarray(b_by_id[b_id].centroid_lps_mm, dtype=float) - moved))
        changes.append(
            LesionChange(
                status,
                b_id,
                les.id,
                None,
                les.volume_ml,
                None,
                None,
                None,
                les.longest_axial_diameter_mm,
                dist,
                ov,
                None if ov is None else "overlap",
                b_id in targets,
            )
        )

    for les in baseline.lesions:
        if les.id in matched_b:
            continue
        if les.id in merged:  # coalesced into a matched follow-up lesion: not gone
            baseline_only(les, "merged", False, *merged[les.id])
        elif les.id in unseen:  # where it was, the follow-up image has no voxel: not seen, not gone
            baseline_only(les, "not_imaged", False)
        else:
            baseline_only(les, "disappeared", True)
    for les in followup.lesions:
        if les.id in matched_f:
            continue
        if les.id in split:  # a fragment of a matched baseline lesion: not new
            followup_only(les, "split", *split[les.id])
        else:
            followup_only(les, "new")
    return changes

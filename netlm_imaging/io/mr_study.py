"""The MR series of a study folder beside the one measured, and the injection they share.

A study has one injection: a series exported without the contrast attributes takes the agent and
ContrastBolusStartTime the study's other series agree on (:func:`with_study_contrast`). The other MR
image stacks of the folder are listed with their provenance (:func:`other_mr_series`), one entry per
stack split off a SeriesInstanceUID (dynamic phases, Dixon images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..dicom_values import parse_time
from ..volume import Volume
from .mr_headers import MrProvenance, _delay_s, mr_provenance_from_dicom

__all__ = ["MrSeries", "other_mr_series", "with_study_contrast"]


@dataclass(frozen=True)
class MrSeries:
    """One MR image series of a scanned study folder, with the provenance of its headers."""

    series_instance_uid: str
    series_number: int | None
    files: int
    provenance: MrProvenance
    #: what tells this stack from the others of its SeriesInstanceUID ("TemporalPositionIdentifier 2")
    stack: str = ""


def other_mr_series(img: Volume, index: Sequence[Any]) -> list[MrSeries]:
    """The MR image stacks of a scanned study folder other than ``img``'s, in series-number order.

    A series holding several stacks at the same positions (GE dynamic phases told apart by
    TemporalPositionIdentifier, LAVA-Flex water/fat/in/opposed-phase) gives one entry per stack,
    named ``UID#n`` as ``--image-series`` takes it; the stack ``img`` was read from is left out.
    One header pair (first and last file by path) is read per stack.
    """
    from .dicom_series_groups import group_image_series

    mine = {str(Path(f)) for f in img.meta.get("files") or []}
    my_frames = set(img.meta.get("frame_numbers") or [])
    main_uid = img.meta.get("series_instance_uid")
    images = [i for i in index if getattr(i, "kind", "") == "IMAGE" and getattr(i, "modality", "") == "MR"]
    out = []
    for group in group_image_series(images):
        paths = sorted(str(i.path) for i in group.files)
        first = group.files[0]
        frames = [fr.frame_index + 1 for fr in first.frames] if len(group.files) == 1 and first.is_multiframe else None
        same_files = bool(mine) and mine.issuperset(paths)
        if (same_files and (frames is None or my_frames.issuperset(frames))) or (not mine and group.uid == main_uid):
            continue
        prov = mr_provenance_from_dicom([paths[0], paths[-1]], frames, trigger_time_ms=group.trigger_time_ms)
        out.append(MrSeries(group.uid, group.files[0].series_number, len(paths), prov, group.stack))
    return out


def with_study_contrast(prov: MrProvenance, others: Sequence[MrSeries]) -> MrProvenance:
    """``prov`` with the agent and injection time its series does not state, taken from the study's other
    series when those state one agent and one ContrastBolusStartTime (one injection per study).

    A series exported without the contrast attributes (they are often written only on the dynamic
    series) then gets its delay; when the other series disagree, or state nothing, ``prov`` is returned.
    """
    if prov.source != "dicom" or prov.acquisition_time is None:
        return prov
    need_start = prov.contrast_start_time is None
    need_agent = prov.contrast_agent is None and prov.contrast_ingredient is None
    if not need_start:
        return prov
    stating = [o for o in others if o.provenance.contrast_start_time]
    starts = {o.provenance.contrast_start_time for o in stating}
    named = {o.provenance.contrast_agent.strip() for o in stating if o.provenance.contrast_agent}
    own = (prov.contrast_agent or "").strip()
    if len(starts) != 1 or len(named) > 1 or (own and named and {own.lower()} != {a.lower() for a in named}):
        return prov  # the study's series disagree (or another agent): nothing is taken
    need_agent = need_agent and bool(named)
    donor = next((o for o in stating if o.provenance.contrast_agent), stating[0])
    where = f"series {donor.series_number}" if donor.series_number is not None else donor.series_instance_uid
    notes = [
        n for n in prov.notes if "no ContrastBolusStartTime" not in n and (not need_agent or "no contrast" not in n)
    ]
    acq = parse_time(prov.acquisition_time)
    if acq is None:
        return prov
    when = datetime.combine(datetime(2000, 1, 1).date(), acq)
    delay = None if prov.trigger_time_ms is not None else _delay_s(donor.provenance.contrast_start_time, when, notes)
    taken = "ContrastBolusStartTime" + (" and ContrastBolusAgent" if need_agent else "")
    notes.append(f"{taken} taken from {where} of the same study: this series does not state them")
    return replace(
        prov,
        contrast_start_time=donor.provenance.contrast_start_time,
        contrast_agent=donor.provenance.contrast_agent if need_agent else prov.contrast_agent,
        contrast_from=where,
        delay_s=delay,
        notes=notes,
    )

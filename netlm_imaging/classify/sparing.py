"""Which parenchymal-sparing treatments the rules allow each lesion, and the zones the planner reads.

The ``planner`` table of the rules enables enucleation / wedge resection and
ablation and limits each to lesions up to a maximum 3-D diameter (the
edge-to-edge one when measured). :func:`refusal` says why a treatment is not
available to a lesion; :func:`planner_zones` measures only the zones of the
treatments that are (a zone of a refused treatment is never read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..measure.context import Lesion, MeasurementContext
from .rules import DIAMETER_REL_TOL, meets
from .zones import LesionZones, compute_zones

__all__ = ["SPARING", "planner_zones", "refusal", "zone_lesion_ids"]

#: (kind, its name in the reasons)
SPARING = (("enucleation", "enucleation/wedge"), ("ablation", "ablation"))


def _diameter_mm(les: Lesion) -> float:
    return float(les.max_3d_diameter_edge_mm if les.max_3d_diameter_edge_mm is not None else les.max_3d_diameter_mm)


def refusal(les: Lesion, planner: Mapping[str, Any], kind: str, label: str) -> str | None:
    """Why the rules' ``planner`` table refuses ``kind`` (named ``label``) for this lesion; ``None``: allowed.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> les = SimpleNamespace(max_3d_diameter_edge_mm=None, max_3d_diameter_mm=31.0)
    >>> refusal(les, {"ablation_max_diameter_mm": 30.0, "allow_ablation": True}, "ablation", "ablation")
    'ablation: diameter 31.0 mm > 30 mm'
    """
    limit = float(planner[f"{kind}_max_diameter_mm"])
    if not planner[f"allow_{kind}"]:
        return f"{label} disabled in the rules"
    d = _diameter_mm(les)
    if meets(d, limit, ">", DIAMETER_REL_TOL):  # up to the limit (within float noise) is allowed
        return f"{kind}: diameter {d:.1f} mm > {limit:g} mm"
    return None


def zone_lesion_ids(lesions: Sequence[Lesion], planner: Mapping[str, Any]) -> dict[str, list[int]]:
    """The lesions whose enucleation / ablation zones the planner can use (the rules allow that treatment).

    The keyword arguments ``enucleation_ids`` and ``ablation_ids`` of
    :func:`~netlm_imaging.classify.zones.compute_zones`.
    """
    return {
        f"{kind}_ids": [les.id for les in lesions if refusal(les, planner, kind, label) is None]
        for kind, label in SPARING
    }


def planner_zones(
    ctx: MeasurementContext, lesions: Sequence[Lesion], planner: Mapping[str, Any]
) -> dict[int, LesionZones]:
    """The zones of ``lesions`` with the rules' margins, only for the treatments the rules allow each one.

    Parameters
    ----------
    ctx : MeasurementContext
    lesions : sequence of Lesion
        The intrahepatic lesions the planner considers.
    planner : Mapping
        The rules' ``planner`` table.

    Returns
    -------
    dict
        Lesion id -> :class:`~netlm_imaging.classify.zones.LesionZones`.
    """
    ids = zone_lesion_ids(lesions, planner)
    return compute_zones(
        ctx,
        [les.id for les in lesions],
        float(planner["margin_mm"]),
        float(planner["ablation_margin_mm"]),
        enucleation_ids=ids["enucleation_ids"],
        ablation_ids=ids["ablation_ids"],
    )

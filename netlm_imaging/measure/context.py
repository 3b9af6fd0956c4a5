"""Data passed between measurement stages.

:class:`Lesion` is one lesion instance's measurements (the report's
``lesions[]`` items). :class:`MeasurementContext` is everything measured on
the image grid that later stages (segments, remnant, PET, classification) use.
All arrays are on the image grid of ``ctx.image``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..volume import Volume

__all__ = ["Lesion", "MeasurementContext"]


@dataclass
class Lesion:
    """One lesion instance.

    Attributes mirror ``report.schema.json`` ``lesions[]``; units are in names.
    ``id`` equals the value of this lesion in ``MeasurementContext.lesion_labels``.
    """

    id: int
    location: str  # "intrahepatic" | "extrahepatic"
    volume_ml: float
    voxel_count: int
    centroid_lps_mm: list[float]
    longest_axial_diameter_mm: float
    short_axis_diameter_mm: float | None
    max_3d_diameter_mm: float
    recist_measurable: bool | None
    touches_image_border: bool
    mean_intensity: float | None
    label: str | None = None
    couinaud_segment: int | None = None
    suv_max: float | None = None
    suv_mean: float | None = None
    suv_peak: float | None = None
    krenning_score: int | None = None
    #: edge-to-edge diameters (centre-to-centre + one voxel along the direction); see measure.lesions
    longest_axial_diameter_edge_mm: float | None = None
    short_axis_diameter_edge_mm: float | None = None
    max_3d_diameter_edge_mm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Report item (``extra`` keys merged in, additive to the schema).

        The values as ``dataclasses.asdict`` gives them (lists and dicts copied), without its
        generic recursion (~40 us a lesion).

        Examples
        --------
        >>> les = Lesion(1, "intrahepatic", 1.5, 12, [1.0, 2.0, 3.0], 4.0, None, 5.0, True, False, 60.0)
        >>> les.extra["a"] = [1]
        >>> d = les.to_dict()
        >>> d["centroid_lps_mm"], d["a"], d["centroid_lps_mm"] is les.centroid_lps_mm
        ([1.0, 2.0, 3.0], [1], False)
        """
        d = {name: _copied(getattr(self, name)) for name in _LESION_FIELDS}
        d.update(_copied(self.extra))
        return d


def _copied(value: Any) -> Any:
    """Lists, tuples and dicts copied all the way down (as ``dataclasses.asdict`` copies them); others as they are."""
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, dict):
        return {_copied(k): _copied(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


_LESION_FIELDS = tuple(f.name for f in fields(Lesion) if f.name != "extra")


@dataclass
class MeasurementContext:
    """What the core measured, on the image grid.

    Attributes
    ----------
    image : Volume
        The measured image (HU on CT, SUV or Bq/mL on PET, MR signal).
    liver : numpy.ndarray or None
        Boolean total-liver mask (liver mask UNION intrahepatic lesions).
    lesion_labels : numpy.ndarray
        int32 instance map: 0 background, ``lesion.id`` for each lesion.
    lesions : list of Lesion
        Intra- and extrahepatic lesions.
    segment_labels : numpy.ndarray or None
        uint8 Couinaud map (0 none, 1..8) restricted to nothing; as given.
    spleen : numpy.ndarray or None
        Boolean spleen mask.
    liver_volume_ml, intrahepatic_tumor_ml, extrahepatic_tumor_ml : float or None
        Totals (liver volume None when there is no liver mask).
    pet_suv : Volume or None
        The SUVbw volume (PET grid) when the study has PET.
    liver_bbox : tuple of slice or None
        Bounding box of ``liver`` (image indices): no liver voxel lies outside it,
        so whole-liver reductions can be taken on ``liver[liver_bbox]``.
    lesion_boxes : dict or None
        Lesion id -> a box (image indices) holding every voxel of that id in
        ``lesion_labels``, when the measure stage knows them (None: find them on the map).
    header : dict
        Non-identifying header facts (e.g. ``patient_weight_kg``,
        ``patient_height_m`` when the user allowed them, ``modality``).
    lesions_segmented : bool
        False when the inputs declare no lesion role at all (a liver-only segmentation): the
        tumour totals are then 0 because nothing was segmented, not because the liver is free
        of tumour, and the involvement is not computed.
    """

    image: Volume
    liver: np.ndarray | None
    lesion_labels: np.ndarray
    lesions: list[Lesion]
    segment_labels: np.ndarray | None = None
    spleen: np.ndarray | None = None
    liver_volume_ml: float | None = None
    intrahepatic_tumor_ml: float = 0.0
    extrahepatic_tumor_ml: float = 0.0
    header: dict[str, Any] = field(default_factory=dict)
    pet_suv: Volume | None = None
    liver_bbox: tuple[slice, slice, slice] | None = None
    lesion_boxes: dict[int, tuple[slice, slice, slice]] | None = None
    lesions_segmented: bool = True

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one image voxel (mL)."""
        return self.image.voxel_volume_ml

    @property
    def involvement_percent(self) -> float | None:
        """100 x intrahepatic tumour / total liver volume (DESIGN.md).

        None without a liver volume, and None when the lesions were not segmented
        (``lesions_segmented`` False): a liver-only segmentation does not say the liver is free
        of tumour.

        The one place it is computed: the report and the classification read it here.

        Examples
        --------
        >>> from netlm_imaging.volume import Volume
        >>> ctx = MeasurementContext(Volume(np.zeros((1, 1, 1)), np.eye(4)), None, np.zeros((1, 1, 1)), [])
        >>> ctx.liver_volume_ml, ctx.intrahepatic_tumor_ml = 800.0, 200.0
        >>> ctx.involvement_percent
        25.0
        >>> ctx.lesions_segmented = False
        >>> ctx.involvement_percent is None
        True
        """
        liver_ml = self.liver_volume_ml
        if liver_ml is None or liver_ml <= 0 or not self.lesions_segmented:
            return None
        return min(100.0, 100.0 * self.intrahepatic_tumor_ml / liver_ml)

    @property
    def intrahepatic_lesions(self) -> list[Lesion]:
        """Lesions whose location is intrahepatic."""
        return [les for les in self.lesions if les.location == "intrahepatic"]

"""Constructed Couinaud segment maps and lesion layouts with known voxel counts.

The liver is a box split along the first array axis into slabs, one per
Couinaud segment (``slices_per_segment``), optionally followed by liver slabs
without a segment label. Lesions are boxes of voxels placed at known indices.
Rows ``y >= ny`` lie outside the liver (room for extrahepatic lesions).

Tests compute their expected numbers from the counts they chose (slab slices x
ny x nz, lesion box sizes) times the voxel volume (product of the spacings),
never from the code under test. The affine is oblique and anisotropic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from conftest import oblique_affine

from netlm_imaging.clinical.inputs import ClinicalInputs
from netlm_imaging.measure.context import Lesion, MeasurementContext
from netlm_imaging.volume import Volume

#: clinical_rules.md section 9 (Brisbane 2000): segments removed by each standard resection (caudate kept)
BRISBANE_RESECTIONS = {
    "right_hepatectomy": [5, 6, 7, 8],
    "left_hepatectomy": [2, 3, 4],
    "extended_right_hepatectomy": [4, 5, 6, 7, 8],
    "extended_left_hepatectomy": [2, 3, 4, 5, 8],
    "left_medial_sectionectomy": [4],  # the left medial section is segment 4 (4a + 4b)
    "central_hepatectomy": [4, 5, 8],  # left medial + right anterior section
    "left_lateral_sectionectomy": [2, 3],
    "right_anterior_sectionectomy": [5, 8],
    "right_posterior_sectionectomy": [6, 7],
}
SPACING = (4.0, 5.0, 5.0)  # mm -> 100 mm3 = 0.1 mL per voxel
#: The standard slab liver of the classification tests: 30 x-slices, 20 x 20 voxels each.
SLICES = {1: 2, 2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5}
NY = NZ = 20
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0


class SlabLiver:
    """A box liver made of Couinaud slabs, plus box lesions.

    Parameters
    ----------
    slices_per_segment : Mapping[int, int]
        Segment -> number of x-slices, in x order.
    ny, nz : int
        Liver size in y and z (voxels); one x-slice holds ny*nz voxels.
    unlabeled_slices : int
        Liver x-slices after the segments with segment label 0.
    outside_rows : int
        Extra y rows outside the liver.
    """

    def __init__(
        self,
        slices_per_segment: Mapping[int, int],
        ny: int = 10,
        nz: int = 10,
        unlabeled_slices: int = 0,
        outside_rows: int = 4,
    ) -> None:
        self.ny, self.nz = ny, nz
        self.ranges: dict[int, tuple[int, int]] = {}
        x = 0
        for seg, n in slices_per_segment.items():
            self.ranges[seg] = (x, x + n)
            x += n
        self.nx = x + unlabeled_slices
        shape = (self.nx, ny + outside_rows, nz)
        self.shape = shape
        self.liver = np.zeros(shape, dtype=bool)
        self.liver[:, :ny, :] = True
        self.seg = np.zeros(shape, dtype=np.uint8)
        for seg, (a, b) in self.ranges.items():
            self.seg[a:b, :ny, :] = seg
        self.labels = np.zeros(shape, dtype=np.int32)
        self.lesions: list[Lesion] = []
        self.affine = oblique_affine(spacing=SPACING, angles_deg=(12.0, -8.0, 25.0), origin=(-150.0, 40.0, 300.0))

    @property
    def slice_voxels(self) -> int:
        """Voxels in one liver x-slice."""
        return self.ny * self.nz

    def add_box(
        self,
        x0: int,
        nx: int,
        y0: int = 0,
        ny: int = 1,
        z0: int = 0,
        nz: int = 1,
        *,
        max_3d_diameter_mm: float | None = None,
        longest_axial_diameter_mm: float | None = None,
        recist_measurable: bool | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Lesion:
        """Add a box lesion at absolute indices; intrahepatic when inside the liver rows."""
        sl = (slice(x0, x0 + nx), slice(y0, y0 + ny), slice(z0, z0 + nz))
        if np.any(self.labels[sl]):
            raise ValueError("phantom lesions must not overlap")
        lid = len(self.lesions) + 1
        self.labels[sl] = lid
        n = nx * ny * nz
        inside = y0 + ny <= self.ny
        diag = math.sqrt(((nx - 1) * SPACING[0]) ** 2 + ((ny - 1) * SPACING[1]) ** 2 + ((nz - 1) * SPACING[2]) ** 2)
        les = Lesion(
            id=lid,
            location="intrahepatic" if inside else "extrahepatic",
            volume_ml=n * VOXEL_ML,
            voxel_count=n,
            centroid_lps_mm=[0.0, 0.0, 0.0],
            longest_axial_diameter_mm=longest_axial_diameter_mm if longest_axial_diameter_mm is not None else diag,
            short_axis_diameter_mm=None,
            max_3d_diameter_mm=max_3d_diameter_mm if max_3d_diameter_mm is not None else diag,
            recist_measurable=recist_measurable,
            touches_image_border=False,
            mean_intensity=None,
            extra=dict(extra or {}),
        )
        self.lesions.append(les)
        return les

    def add_in_segment(
        self, seg: int, nx: int, ny: int = 1, nz: int = 1, *, x_off: int = 0, y0: int = 0, z0: int = 0, **kw: Any
    ) -> Lesion:
        """Add a box lesion starting ``x_off`` slices into a segment's slab."""
        return self.add_box(self.ranges[seg][0] + x_off, nx, y0, ny, z0, nz, **kw)

    def ctx(
        self, *, with_segments: bool = True, with_liver: bool = True, header: dict[str, Any] | None = None
    ) -> MeasurementContext:
        """The MeasurementContext of the phantom (liver includes the intrahepatic lesions)."""
        intra = sum(les.volume_ml for les in self.lesions if les.location == "intrahepatic")
        extra = sum(les.volume_ml for les in self.lesions if les.location == "extrahepatic")
        return MeasurementContext(
            image=Volume(np.zeros(self.shape, dtype=np.float32), self.affine),
            liver=self.liver.copy() if with_liver else None,
            lesion_labels=self.labels.copy(),
            lesions=list(self.lesions),
            segment_labels=self.seg.copy() if with_segments else None,
            liver_volume_ml=float(self.liver.sum()) * VOXEL_ML if with_liver else None,
            intrahepatic_tumor_ml=intra,
            extrahepatic_tumor_ml=extra,
            header=dict(header or {}),
        )


def weight_for_telv(telv_ml: float, height_cm: float) -> float:
    """Weight (kg) giving this Vauthey TELV with Mosteller BSA at ``height_cm`` (inverse of the formulas)."""
    bsa = (telv_ml + 794.41) / 1267.28
    return bsa * bsa * 3600.0 / height_cm


def sphere_shell_ml(volume_ml: float, margin_mm: float) -> float:
    """Shell of ``margin_mm`` around the sphere of equal volume (written independently of the planner)."""
    r = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return 4.0 / 3.0 * math.pi * ((r + margin_mm) ** 3 - r**3) / 1000.0


def ablation_zone_ml(volume_ml: float, diameter_mm: float, margin_mm: float) -> float:
    """Ablation sphere (radius = diameter/2 + margin) minus the lesion (mL), floored at 0."""
    r = diameter_mm / 2.0 + margin_mm
    return max(0.0, 4.0 / 3.0 * math.pi * r**3 / 1000.0 - volume_ml)


def zone_mask(p: SlabLiver, lesion_id: int, margin_mm: float) -> np.ndarray:
    """Liver voxels whose centre is within ``margin_mm`` of a voxel centre of the lesion (k-d tree in LPS).

    Written independently of the planner's distance transform: the distances are taken between patient
    coordinates of voxel centres through the phantom's (oblique) affine.
    """
    from scipy.spatial import cKDTree

    idx = np.argwhere(p.liver)
    pts = idx @ p.affine[:3, :3].T + p.affine[:3, 3]
    les = np.argwhere(p.labels == lesion_id)
    tree = cKDTree(les @ p.affine[:3, :3].T + p.affine[:3, 3])
    d, _ = tree.query(pts, k=1)
    out = np.zeros(p.shape, dtype=bool)
    sel = idx[d <= margin_mm + 1e-9]
    out[tuple(sel.T)] = True
    return out


def parenchyma_ml_by_segment(p: SlabLiver, mask: np.ndarray) -> dict[int, float]:
    """Non-tumorous liver (mL) of ``mask`` per Couinaud segment label (0 = unlabelled)."""
    par = mask & p.liver & (p.labels == 0)
    return {s: float(np.count_nonzero(par & (p.seg == s))) * VOXEL_ML for s in range(9)}


def remnant_possible(kept: set[int], anatomy: Mapping[str, Any]) -> bool:
    """The consensus remnant rule, written here from the rules data: contiguous, >= minimum segments,
    each kept segment keeps one of its inflow, outflow and biliary structures."""
    segs = {int(k): v for k, v in anatomy["couinaud"]["segments"].items()}
    if len(kept) < anatomy["couinaud"]["min_remnant_segments"]:
        return False
    start = next(iter(kept))
    reach = {start}
    frontier = [start]
    while frontier:
        nxt = []
        for s in frontier:
            for t in segs[s]["adjacent"]:
                if t in kept and t not in reach:
                    reach.add(t)
                    nxt.append(t)
        frontier = nxt
    if reach != kept:
        return False
    removed = set(range(1, 9)) - kept
    alive = {n for n, v in anatomy["vessels"].items() if not set(v["lost_when_resected"]).issubset(removed)}
    return all(any(n in alive for n in segs[s][role]) for s in kept for role in ("inflow", "outflow", "biliary"))


#: Every clinical input given, all favourable (grade 1, ECOG 0, normal liver, 175 cm / 70 kg).
FULL_CLINICAL = ClinicalInputs(
    symptoms="none",
    grade=1,
    ki67_percent=2.0,
    extrahepatic_disease=False,
    primary_resected=True,
    height_cm=175.0,
    weight_kg=70.0,
    liver_condition="normal",
    performance_status=0,
)


def assess(ctx: MeasurementContext, clinical: Any, rules: Any, **kw: Any) -> Any:
    """``classify.surgical.assess`` of a context with the segment table and the resection remnants the
    measure stage would hand it (``stages.measure.measure_study``)."""
    from netlm_imaging.classify.surgical import assess as _assess
    from netlm_imaging.measure.remnant import standard_resections
    from netlm_imaging.measure.segments import compute_segment_table
    from netlm_imaging.measure.summary import non_tumorous_liver_ml

    table, non_tumorous = compute_segment_table(ctx), non_tumorous_liver_ml(ctx)
    extra = kw.get("resections", ())
    remnants = standard_resections(table, rules["resections"], extra=extra, non_tumorous_total_ml=non_tumorous)
    return _assess(ctx, clinical, rules, table=table, non_tumorous_ml=non_tumorous, remnants=remnants, **kw)

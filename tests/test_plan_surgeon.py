"""Plans a liver surgeon would sign: resection names, segment involvement, FLR threshold after chemotherapy.

Through ``netlm analyze`` on the oblique anisotropic slab liver of ``surgical_phantoms`` (30 x-slices of
20 x 20 voxels; segments 1..8 as slabs of 2, 3, 3, 4, 4, 4, 5, 5 slices). The expected plans follow from
the voxel counts chosen here and from clinical_rules.md sections 6 and 9.
"""

from __future__ import annotations

import numpy as np
from cli_studies import run_analyze
from surgical_phantoms import NY, NZ, SLICES, SlabLiver

#: x-slice ranges of the segments in the slab liver
X = {1: (0, 2), 2: (2, 5), 3: (5, 8), 4: (8, 12), 5: (12, 16), 6: (16, 20), 7: (20, 25), 8: (25, 30)}
#: Only whole-segment resection treats a lesion (no wedge, no ablation).
RESECTION_ONLY = "[planner]\nallow_enucleation = false\nallow_ablation = false\n"
CLINICAL = {
    "symptoms": "none",
    "grade": 1,
    "ki67_percent": 2.0,
    "extrahepatic_disease": False,
    "primary_resected": True,
    "liver_condition": "normal",
    "performance_status": 0,
}


def _liver() -> SlabLiver:
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    assert {s: p.ranges[s] for s in X} == X
    return p


def _box(p: SlabLiver, x: tuple[int, int], y: tuple[int, int] = (2, 6), z: tuple[int, int] = (2, 6)) -> np.ndarray:
    m = np.zeros(p.shape, dtype=bool)
    m[slice(*x), slice(*y), slice(*z)] = True
    return m


def test_segments_4_5_8_are_a_central_hepatectomy(tmp_path):
    """One lesion in each of segments 4, 5 and 8, resection only: the plan keeping the most FLR resects exactly
    4 + 5 + 8 (remnant 1, 2, 3, 6, 7: contiguous through segment 1, with the left pedicle and the right
    posterior pedicle). That is the left medial plus the right anterior section: a central hepatectomy
    (mesohepatectomy), which the plan named 'Right anterior sectionectomy + segmentectomy 4'."""
    p = _liver()
    lesion = _box(p, (9, 11)) | _box(p, (13, 15)) | _box(p, (26, 28))
    rep = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=CLINICAL, rules=RESECTION_ONLY
    )
    plan = rep["remnant"]["resection_plan"]
    assert plan["resected_segments"] == [4, 5, 8]
    assert plan["resection_name"] == "Central hepatectomy (mesohepatectomy)"
    assert plan["treated_lesion_count"] == 3
    rows = {r["name"]: r for r in rep["remnant"]["standard_resections"]}
    assert rows["central_hepatectomy"]["removed_segments"] == [4, 5, 8]
    assert rows["left_medial_sectionectomy"]["removed_segments"] == [4]

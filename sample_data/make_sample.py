"""Write the synthetic NETLM demo study in sample_data/netlm_demo/ and its independent truth.

The study is a CT-like phantom (HU values with seeded noise) of a liver made of
two ellipsoids, split into eight Couinaud-like segments by planes, with
spherical lesions in several segments of both hemilivers, one extrahepatic
lesion and a spleen. The truth (truth.json) is computed here with plain numpy
from the phantom's own voxel sets and brute-force distances: it does not use
netlm_imaging at all.

Run: python sample_data/make_sample.py  (deterministic; seed 20231)
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

HERE = Path(__file__).resolve().parent
OUT = HERE / "netlm_demo"
SEED = 20231

SHAPE = (150, 120, 52)
SPACING = np.array([1.6, 1.6, 3.0])
ORIGIN_LPS = np.array([-150.0, -95.0, -75.0])

# (name, centre LPS mm, radius mm)
LESIONS = [
    ("L1 right posterior-superior", (-75.0, 15.0, 25.0), 15.0),
    ("L2 right posterior-inferior", (-70.0, 30.0, -22.0), 8.0),
    ("L3 right anterior-inferior", (-45.0, -30.0, -20.0), 5.5),
    ("L4 left lateral", (42.0, -12.0, 2.0), 10.0),
    ("L5 left medial", (10.0, -22.0, 15.0), 6.5),
    ("E1 extrahepatic (peritoneal)", (-10.0, 55.0, -55.0), 7.0),
]


def lps_affine() -> np.ndarray:
    """Index -> LPS affine of the phantom grid."""
    a = np.eye(4)
    a[:3, :3] = np.diag(SPACING)
    a[:3, 3] = ORIGIN_LPS
    return a


def build() -> dict[str, np.ndarray]:
    """The phantom's arrays (index order i, j, k on the LPS grid)."""
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    x = ORIGIN_LPS[0] + SPACING[0] * ii
    y = ORIGIN_LPS[1] + SPACING[1] * jj
    z = ORIGIN_LPS[2] + SPACING[2] * kk

    def ellipsoid(c: tuple[float, float, float], r: tuple[float, float, float]) -> np.ndarray:
        return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0

    liver = ellipsoid((-55.0, 5.0, 0.0), (60.0, 55.0, 50.0)) | ellipsoid((20.0, -10.0, 5.0), (45.0, 35.0, 30.0))
    spleen = ellipsoid((85.0, 45.0, 15.0), (22.0, 18.0, 35.0)) & ~liver
    # Couinaud-like segments by planes (a phantom, not anatomy)
    seg = np.zeros(SHAPE, dtype=np.uint8)
    right = x < -5.0
    anterior = y < 0.0
    superior = z > 0.0
    seg[liver & right & ~anterior & superior] = 7
    seg[liver & right & anterior & superior] = 8
    seg[liver & right & ~anterior & ~superior] = 6
    seg[liver & right & anterior & ~superior] = 5
    seg[liver & ~right & (x < 25.0)] = 4
    seg[liver & ~right & (x >= 25.0) & (z > 5.0)] = 2
    seg[liver & ~right & (x >= 25.0) & (z <= 5.0)] = 3
    caudate = liver & (((x + 5.0) ** 2 + (y - 25.0) ** 2 + z**2) <= 16.0**2)
    seg[caudate] = 1
    lesions = []
    for _name, c, r in LESIONS:
        lesions.append(((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) <= r * r)
    rng = np.random.default_rng(SEED)
    hu = np.full(SHAPE, -80.0)  # fat background
    body = ellipsoid((0.0, 5.0, 0.0), (140.0, 90.0, 200.0))
    hu[~body] = -1000.0
    hu[liver] = 60.0
    hu[spleen] = 50.0
    for m in lesions:
        hu[m] = 110.0  # arterially enhancing NET metastases
    hu += rng.normal(0.0, 12.0, SHAPE)
    return {
        "hu": np.round(hu).astype(np.int16),
        "liver": liver,
        "spleen": spleen,
        "segments": seg,
        "lesions": np.stack(lesions),
    }


def truth(arrays: dict[str, np.ndarray]) -> dict:
    """Independent truth: voxel counts, brute-force diameters, analytic sphere volumes."""
    vox_ml = float(np.prod(SPACING)) / 1000.0
    liver = arrays["liver"]
    lesions = arrays["lesions"]
    out_lesions = []
    liver_tree = cKDTree(np.argwhere(liver) * SPACING + ORIGIN_LPS)
    intra_union = np.zeros(SHAPE, dtype=bool)
    extra_union = np.zeros(SHAPE, dtype=bool)
    for (name, c, r), m in zip(LESIONS, lesions):
        idx = np.argwhere(m)
        pts = idx * SPACING + ORIGIN_LPS
        d3 = float(pdist(pts).max()) if len(pts) > 1 else 0.0
        longest = 0.0
        for k in np.unique(idx[:, 2]):
            p2 = pts[idx[:, 2] == k][:, :2]
            if len(p2) > 1:
                longest = max(longest, float(pdist(p2).max()))
        # intrahepatic: some lesion voxel centre within 2 mm of a liver voxel centre (brute-force k-d tree)
        intra = bool(np.isfinite(liver_tree.query(pts, k=1, distance_upper_bound=2.0 + 1e-6)[0]).any())
        (intra_union if intra else extra_union)[m] = True
        out_lesions.append(
            {
                "name": name,
                "intrahepatic": intra,
                "voxel_count": int(m.sum()),
                "volume_ml": int(m.sum()) * vox_ml,
                "analytic_sphere_volume_ml": 4.0 / 3.0 * np.pi * r**3 / 1000.0,
                "centre_lps_mm": list(c),
                "max_3d_diameter_mm": d3,
                "longest_axial_diameter_mm": longest,
            }
        )
    total_liver = liver | intra_union
    seg = arrays["segments"]
    per_segment = {}
    for s in range(1, 9):
        sm = seg == s
        per_segment[str(s)] = {
            "liver_voxels_excluding_lesions": int((sm & ~intra_union).sum()),
            "tumor_voxels": int((sm & intra_union).sum()),
        }
    return {
        "voxel_volume_ml": vox_ml,
        "liver_volume_ml": int(total_liver.sum()) * vox_ml,
        "liver_voxel_count": int(total_liver.sum()),
        "intrahepatic_tumor_ml": int(intra_union.sum()) * vox_ml,
        "extrahepatic_tumor_ml": int(extra_union.sum()) * vox_ml,
        "intrahepatic_lesion_count": sum(1 for le in out_lesions if le["intrahepatic"]),
        "extrahepatic_lesion_count": sum(1 for le in out_lesions if not le["intrahepatic"]),
        "involvement_percent": 100.0 * int(intra_union.sum()) / int(total_liver.sum()),
        "spleen_volume_ml": int(arrays["spleen"].sum()) * vox_ml,
        "liver_mean_hu_truth_noise_free": 60.0,
        "segments": per_segment,
        "lesions": out_lesions,
    }


def main() -> None:
    """Write the NIfTI files, the manifest, the clinical sidecar and truth.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    arrays = build()
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps_affine()  # NIfTI stores RAS; conversion happens at the loader
    img = nib.Nifti1Image(arrays["hu"], ras)
    img.set_sform(ras, code=1)
    img.set_qform(ras, code=1)
    nib.save(img, OUT / "ct.nii.gz")
    label = np.zeros(SHAPE, dtype=np.uint8)
    label[arrays["liver"]] = 1  # liver label excludes lesions (LiTS-style maps include them: both work)
    label[arrays["spleen"]] = 3
    label[arrays["lesions"].any(0)] = 2
    lab = nib.Nifti1Image(label, ras)
    lab.set_sform(ras, code=1)
    lab.set_qform(ras, code=1)
    nib.save(lab, OUT / "seg.nii.gz")
    seg = nib.Nifti1Image(arrays["segments"], ras)
    seg.set_sform(ras, code=1)
    seg.set_qform(ras, code=1)
    nib.save(seg, OUT / "couinaud.nii.gz")
    (OUT / "clinical.json").write_text(
        json.dumps(
            {
                "symptoms": "hormonal",
                "grade": 2,
                "ki67_percent": 4.0,
                "extrahepatic_disease": True,
                "primary_resected": True,
                "height_cm": 172.0,
                "weight_kg": 74.0,
                "liver_condition": "normal",
                "performance_status": 1,
            },
            indent=2,
        )
        + "\n"
    )
    (OUT / "truth.json").write_text(json.dumps(truth(arrays), indent=2) + "\n")


if __name__ == "__main__":
    main()

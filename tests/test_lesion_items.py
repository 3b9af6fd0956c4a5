"""``Lesion.to_dict`` (the report's lesion items) against ``dataclasses.asdict``, which it replaced."""

from __future__ import annotations

import dataclasses

import numpy as np

from netlm_imaging.measure.context import Lesion


def _asdict_item(les: Lesion) -> dict:
    d = dataclasses.asdict(les)
    d.update(d.pop("extra"))
    return d


def test_lesion_items_are_the_asdict_items_and_copies():
    rng = np.random.default_rng(17)
    for n in range(20):
        les = Lesion(
            n + 1,
            "intrahepatic" if n % 3 else "extrahepatic",
            float(rng.uniform(0, 50)),
            int(rng.integers(1, 10_000)),
            [float(x) for x in rng.normal(0, 100, 3)],
            float(rng.uniform(0, 40)),
            None if n % 4 == 0 else float(rng.uniform(0, 20)),
            float(rng.uniform(0, 60)),
            bool(n % 2),
            n % 5 == 0,
            None if n % 6 == 0 else float(rng.normal(60, 10)),
            label=None if n % 2 else f"L{n}",
            suv_max=float(rng.uniform(1, 30)) if n % 3 == 0 else None,
        )
        les.extra.update({"organ": "liver", "nested": {"a": [1, (2, 3)], "b": None}, "pair": (1.5, 2.5)})
        item = les.to_dict()
        assert item == _asdict_item(les)
        assert list(item) == list(_asdict_item(les))  # the same key order in report.json
        item["centroid_lps_mm"].append(0.0)
        item["nested"]["a"].append(4)
        assert len(les.centroid_lps_mm) == 3  # copies, as asdict made them
        assert les.extra["nested"]["a"] == [1, (2, 3)]

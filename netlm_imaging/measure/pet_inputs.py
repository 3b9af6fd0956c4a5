"""The report's ``pet.suv_inputs``: the decay-correction inputs the SUVbw actually used, and where each came from.

``SUVbw = value x weight_g / (dose_bq x 2^(-decay_time_s / half_life_s))`` (QIBA, clinical_rules.md 7.1): a
reader checking an SUV against the scanner's needs those four numbers and whether each was the header's or
the user's (``--weight``, the clinical file's ``weight_kg``, ``--pet-half-life``). The schema's ``pet``
object allows additional properties, so they are one additive object there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["suv_inputs"]

#: How the SUV scale was obtained when it is not the QIBA formula on Bq/mL values.
_SCANNER_SCALED = {
    "GML": "scanner (Units GML: values already SUVbw)",
    "CNTS:7053,1000": "scanner (Philips SUV Scale Factor (7053,1000))",
    "file": "none (a NIfTI/NRRD/MHA file's values taken as SUVbw)",
}


def suv_inputs(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The SUV's decay-correction inputs from the conversion facts (``Volume.meta["suv"]``).

    Parameters
    ----------
    facts : mapping
        :meth:`~netlm_imaging.io.suv.SuvConversion.summary`, or the facts of an SUV file.

    Returns
    -------
    dict
        ``half_life_s``, ``injected_dose_bq``, ``decay_time_s``, ``decayed_dose_bq``, ``weight_kg`` (null
        when the SUV did not use them) and ``*_source`` beside each; ``method`` and ``nuclide``;
        ``scanner_suv_check``: the Philips SUV Scale Factor (7053,1000) against the computed factor, or null.

    Examples
    --------
    >>> facts = {"method": "BQML", "decay_correction": "START", "half_life_s": 4069.8,
    ...          "half_life_source": "header (0018,1075)", "injected_dose_bq": 1.5e8, "decay_time_s": 3600.0,
    ...          "weight_kg": 70.0, "weight_source": "user (--weight)"}
    >>> d = suv_inputs(facts)
    >>> d["half_life_s"], d["decay_time_source"], d["weight_source"]
    (4069.8, 'header (injection (0018,1078/1072) to scan time)', 'user (--weight)')
    """
    method = str(facts.get("method") or "")
    scanner = _SCANNER_SCALED.get(method)
    admin = str(facts.get("decay_correction") or "").upper() == "ADMIN"
    dose = facts.get("injected_dose_bq")
    decay_time = facts.get("decay_time_s")
    half_life = facts.get("half_life_s")
    time_source: str | None
    dose_source: str | None
    half_life_source: str | None
    if scanner is not None:
        time_source = dose_source = half_life_source = scanner
    else:
        dose_source = "header (0018,1074)" if dose is not None else None
        half_life_source = facts.get("half_life_source") if half_life is not None else None
        if admin:
            time_source = "not used (Decay Correction ADMIN: values corrected to the injection)"
        elif decay_time is not None:
            time_source = "header (injection (0018,1078/1072) to scan time)"
        else:
            time_source = None
    weight = facts.get("weight_kg")
    return {
        "method": method or None,
        "nuclide": facts.get("nuclide"),
        "half_life_s": half_life,
        "half_life_source": half_life_source,
        "injected_dose_bq": dose,
        "injected_dose_source": dose_source,
        "decay_time_s": decay_time,
        "decay_time_source": time_source,
        "decayed_dose_bq": facts.get("decayed_dose_bq"),
        "weight_kg": weight,
        "weight_source": facts.get("weight_source") if weight is not None else None,
        "scanner_suv_check": facts.get("scanner_suv_check"),
    }

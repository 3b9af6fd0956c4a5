"""The contrast phase of an MR series, classified from its header facts by the rules' windows.

The phase says what the image is, as Modality does: the load stage reads it with the image (it tells
the measure stage whether hepatocyte function can be measured), so it lives with the MR header
readers and follows the rules file (``[mri]``), before anything is measured: the delay from
ContrastBolusStartTime to the acquisition falls in one of the ``phase_window_start_s`` /
``phase_window_end_s`` windows (start inclusive, end exclusive). What the headers do not tell is ``"unknown"`` with the
reason, never a guess:

* acquisition before the injection (negative delay), or an agent attribute that
  says no contrast was given -> ``"pre-contrast"``;
* a delay in the hepatobiliary window counts as ``"hepatobiliary"`` only with a
  hepatocyte-specific agent (gadoxetic acid); with another agent, or no agent
  named, it is ``"unknown"``;
* no agent and no timing -> ``"unknown"`` (a missing attribute is not proof that
  no contrast was given);
* a dynamic phase told apart from the other phases of its series by TriggerTime alone, all sharing
  one acquisition time (GE LAVA / DISCO multiphase, ``trigger_time_ms``) -> ``"unknown"``: the shared
  time is no phase's known acquisition and what GE's TriggerTime adds to it is not documented (DICOM
  defines it for cardiac gating; GE's fMRI ``epi`` writes slice timing in it, dcm2niix GE/README.md),
  so each phase needs ``--mr-phase``; one label for every phase would be wrong for all but one.

The agent is hepatocyte-specific (``True``) when its text matches
``hepatocyte_specific_agent_patterns``, extracellular (``False``) when it matches
``extracellular_agent_patterns`` (gadobutrol, gadoterate, ...), and unidentified
(``None``) otherwise: a text such as "GADOLINIUM" or "contrast" names no agent.

A user statement (``--mr-phase``) wins unless it is ``hepatobiliary`` and the headers
contradict it (an extracellular agent, a delay in another phase, no contrast): then the
phase is ``"unknown"`` with ``basis: "conflict"`` and a note naming both, because a
hepatocyte index computed from a non-hepatobiliary image would be a silently wrong
number. Another phase stated against the headers is used, with a note.

Examples
--------
>>> from netlm_imaging.classify.rules import load_rules
>>> rules = load_rules()
>>> classify_mr_phase({"contrast_agent": "Gd-EOB-DTPA", "delay_s": 1200.0}, rules)["phase"]
'hepatobiliary'
>>> classify_mr_phase({"contrast_agent": "Gd-EOB-DTPA", "delay_s": 70.0}, rules)["phase"]
'portal_venous'
>>> classify_mr_phase({}, rules)["phase"]
'unknown'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from ..errors import UsageError

__all__ = [
    "MR_PHASES",
    "check_phase_name",
    "classify_mr_phase",
    "component_note",
    "hepatocyte_indices_withheld",
    "is_hepatocyte_specific",
    "ratios_withheld",
    "relative_enhancement_withheld",
]

#: Every phase name the report can carry.
MR_PHASES = ("pre-contrast", "arterial", "portal_venous", "transitional", "hepatobiliary", "unknown")


def check_phase_name(phase: str) -> str:
    """Normalise a user phase name (``--mr-phase``); ``hbp``/``pre`` are accepted shorthands.

    Raises
    ------
    UsageError
        For a name that is not a phase.
    """
    aliases = {"hbp": "hepatobiliary", "pre": "pre-contrast", "precontrast": "pre-contrast", "pv": "portal_venous"}
    name = phase.strip().lower().replace(" ", "_").replace("-", "_")
    name = aliases.get(name, name)
    name = "pre-contrast" if name == "pre_contrast" else name
    if name not in MR_PHASES or name == "unknown":
        allowed = ", ".join(p for p in MR_PHASES if p != "unknown")
        raise UsageError(f"--mr-phase {phase!r}: use one of {allowed} (or hbp, pre)")
    return name


def _agent_text(facts: Mapping[str, Any]) -> str:
    return " ".join(str(facts.get(k) or "") for k in ("contrast_agent", "contrast_ingredient")).strip()


def _matches(text: str, patterns: Any) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


def is_hepatocyte_specific(facts: Mapping[str, Any], rules: Mapping[str, Any]) -> bool | None:
    """Whether the stated agent is hepatocyte-specific.

    ``True`` for a gadoxetic-acid name, ``False`` for a named extracellular agent, ``None`` when
    no agent is stated or its text identifies none (e.g. "GADOLINIUM", "contrast").
    """
    text = _agent_text(facts)
    if not text:
        return None
    if _matches(text, rules["mri"]["hepatocyte_specific_agent_patterns"]):
        return True
    if _matches(text, rules["mri"]["extracellular_agent_patterns"]):
        return False
    return None


def _agent_reason(facts: Mapping[str, Any], hs: bool | None) -> str:
    text = _agent_text(facts)
    if not text:
        return "no agent is named"
    if hs is False:
        return f"the agent {text!r} is not hepatocyte-specific"
    return f"the agent {text!r} is not identified as hepatocyte-specific (gadoxetic acid)"


def _says_no_contrast(facts: Mapping[str, Any], rules: Mapping[str, Any]) -> bool:
    if facts.get("contrast_administered") is False:
        return True
    agent = str(facts.get("contrast_agent") or "").strip()
    return bool(agent) and any(re.search(p, agent, re.IGNORECASE) for p in rules["mri"]["no_contrast_patterns"])


def classify_mr_phase(
    facts: Mapping[str, Any], rules: Mapping[str, Any], *, user_phase: str | None = None
) -> dict[str, Any]:
    """Phase of one MR series, with what it was decided from (``decided_from``) and, when it is
    ``"unknown"``, why (``reason``); the other keys are those of :func:`_classify`.

    Examples
    --------
    >>> from netlm_imaging.classify.rules import load_rules
    >>> out = classify_mr_phase({"contrast_agent": "Primovist", "contrast_start_time": "101500",
    ...                          "acquisition_time": "10:35:00", "acquisition_time_source": "AcquisitionTime",
    ...                          "delay_s": 1200.0}, load_rules())
    >>> out["decided_from"]
    ["ContrastBolusAgent 'Primovist'", "ContrastBolusStartTime '101500'", "AcquisitionTime '10:35:00'", 'delay 1200 s']
    >>> classify_mr_phase({}, load_rules())["reason"]
    'the headers state neither a contrast agent nor an injection time: phase unknown'
    """
    out = _classify(facts, rules, user_phase=user_phase)
    used = []
    for key, name in (("contrast_agent", "ContrastBolusAgent"), ("contrast_ingredient", "ContrastBolusIngredient")):
        if facts.get(key):
            used.append(f"{name} {facts[key]!r}")
    if facts.get("contrast_administered") is not None:
        used.append(f"ContrastBolusAgentAdministered {'YES' if facts['contrast_administered'] else 'NO'}")
    if facts.get("contrast_start_time"):
        borrowed = f" (from {facts['contrast_from']})" if facts.get("contrast_from") else ""
        used.append(f"ContrastBolusStartTime {facts['contrast_start_time']!r}{borrowed}")
    if facts.get("acquisition_time"):
        used.append(f"{facts.get('acquisition_time_source') or 'acquisition time'} {facts['acquisition_time']!r}")
    if facts.get("trigger_time_ms") is not None:
        used.append(f"TriggerTime {float(facts['trigger_time_ms']):g} ms")
    if facts.get("delay_s") is not None:
        used.append(f"delay {float(facts['delay_s']):.0f} s")
    if user_phase is not None:
        used.append(f"--mr-phase {user_phase}")
    out["decided_from"] = used
    out["reason"] = out["notes"][0] if out["phase"] == "unknown" and out["notes"] else None
    return out


def _classify(facts: Mapping[str, Any], rules: Mapping[str, Any], *, user_phase: str | None = None) -> dict[str, Any]:
    """Phase of one MR series.

    Parameters
    ----------
    facts : mapping
        :meth:`netlm_imaging.io.mr_headers.MrProvenance.to_dict` (``contrast_agent``,
        ``contrast_ingredient``, ``contrast_administered``, ``delay_s``, ...).
    rules : mapping
        The rules (``rules["mri"]``).
    user_phase : str, optional
        The user's statement (``--mr-phase``), which wins.

    Returns
    -------
    dict
        ``phase`` (one of :data:`MR_PHASES`), ``basis`` (``"user"``, ``"delay"``, ``"agent"``,
        ``"conflict"`` or ``"none"``), ``delay_s``, ``window_s`` (the matched ``[start, end)``),
        ``hepatocyte_specific_agent``, ``notes`` and ``source`` (the rules' phase source).
    """
    mri = rules["mri"]
    delay = facts.get("delay_s")
    hs = is_hepatocyte_specific(facts, rules)
    out: dict[str, Any] = {
        "phase": "unknown",
        "basis": "none",
        "delay_s": delay,
        "window_s": None,
        "hepatocyte_specific_agent": hs,
        "notes": [],
        "source": mri["phase_source"],
    }
    notes: list[str] = out["notes"]
    if user_phase is not None:
        stated = check_phase_name(user_phase)
        headers = _classify(facts, rules)
        conflict = _conflict(stated, headers, hs, facts)
        if conflict:
            out.update(basis="conflict", window_s=headers["window_s"])
            notes.append(
                f"--mr-phase {stated} contradicts the headers ({conflict}): phase unknown, no hepatocyte "
                "index; check the series, or correct its headers"
            )
            return out
        out.update(phase=stated, basis="user", window_s=headers["window_s"])
        notes.append("phase stated by the user (--mr-phase), not read from the headers")
        if headers["basis"] in ("delay", "agent") and headers["phase"] != stated:  # no hepatocyte index at stake
            notes.append(f"the headers would give {headers['phase']}; the user's {stated} is used")
        return out
    if _says_no_contrast(facts, rules):
        out.update(phase="pre-contrast", basis="agent")
        notes.append("the headers state that no contrast agent was given")
        return out
    if facts.get("trigger_time_ms") is not None:
        notes.append(
            f"the phases of this series are told apart only by TriggerTime ({float(facts['trigger_time_ms']):g} ms "
            "here) and share one acquisition time; what GE's TriggerTime means in a multiphase dynamic is not "
            "documented, so this phase's delay after injection is unknown: phase unknown (state it with --mr-phase)"
        )
        return out
    if delay is None:
        if _agent_text(facts) or facts.get("contrast_start_time"):
            notes.append("contrast is stated but the delay after injection is not: phase unknown")
        else:
            notes.append("the headers state neither a contrast agent nor an injection time: phase unknown")
        return out
    delay = float(delay)
    if delay < 0:
        out.update(phase="pre-contrast", basis="delay")
        notes.append(f"acquired {-delay:.0f} s before ContrastBolusStartTime")
        return out
    for name, lo, hi in zip(mri["phase_order"], mri["phase_window_start_s"], mri["phase_window_end_s"], strict=True):
        if lo <= delay < hi:
            out["window_s"] = [lo, hi]
            if name == "hepatobiliary" and hs is not True:
                why = _agent_reason(facts, hs)
                notes.append(
                    f"delay {delay / 60:.1f} min is in the hepatobiliary window but {why}: phase unknown "
                    "(use --mr-phase hepatobiliary if it is a gadoxetic-acid hepatobiliary phase)"
                )
                return out
            out.update(phase=name, basis="delay")
            if name == "hepatobiliary" and delay < float(mri["hepatobiliary_adequate_from_s"]):
                notes.append(
                    f"hepatobiliary phase at {delay / 60:.1f} min: hepatocyte uptake may not yet be complete "
                    f"(adequate in most livers from {float(mri['hepatobiliary_adequate_from_s']) / 60:.0f} min)"
                )
            return out
    notes.append(f"delay {delay:.0f} s after injection is outside every phase window of the rules: phase unknown")
    return out


def _conflict(stated: str, headers: Mapping[str, Any], hs: bool | None, facts: Mapping[str, Any]) -> str | None:
    """Why the headers contradict a user's hepatobiliary statement, or ``None``.

    Only a hepatobiliary statement can be contradicted: it alone turns on the hepatocyte indices.
    Another phase stated against the headers (a 46 s series called arterial) is the user's call.
    """
    if stated != "hepatobiliary":
        return None
    if hs is False:
        return _agent_reason(facts, hs)
    if headers["basis"] in ("delay", "agent") and headers["phase"] != stated:
        delay = headers.get("delay_s")
        if headers["basis"] == "delay" and delay is not None:
            return f"they give {headers['phase']}: acquired {float(delay):.0f} s after ContrastBolusStartTime"
        return f"they give {headers['phase']}: {headers['notes'][0]}"
    return None


#: Image components whose pixel values are not a T1-weighted signal: no ratio means anything on them.
_NOT_SIGNAL = {
    "subtraction": "a subtraction image (post- minus pre-contrast): its values are differences",
    "projection": "a projection image (MIP / MinIP): each value is the extreme along a ray, not a voxel's signal",
    "fat": "a Dixon fat image: it shows fat, not the hepatocyte uptake",
    "fat_fraction": "a fat-fraction map (percent), not a signal",
    "parametric_map": "a parametric map, not a T1-weighted signal",
    "phase": "a phase image, not the signal magnitude",
    "real": "a real-part image, not the signal magnitude",
    "imaginary": "an imaginary-part image, not the signal magnitude",
}


def ratios_withheld(component: str | None) -> str | None:
    """Why LSC, lesion-to-liver contrast, RE and HUI are not computed on this image, or ``None``.

    Parameters
    ----------
    component : str or None
        :attr:`netlm_imaging.io.mr_headers.MrProvenance.image_component`.

    Examples
    --------
    >>> ratios_withheld("water") is None
    True
    >>> ratios_withheld("subtraction").startswith("a subtraction image")
    True
    """
    why = _NOT_SIGNAL.get(component or "")
    if why is None:
        return None
    return (
        f"{why}: no signal ratio (LSC, lesion-to-liver, RE) or HUI is computed; analyse the water or "
        "fat-suppressed image"
    )


def component_note(component: str | None) -> str | None:
    """A note for Dixon in-/opposed-phase images, whose ratios fat in the liver changes."""
    if component in ("in_phase", "opposed_phase"):
        kind = component.replace("_", "-")
        return (
            f"a Dixon {kind} image: fat in the liver changes its signal, so the ratios are not those of the "
            "water or fat-suppressed image usually read in the hepatobiliary phase"
        )
    return None


#: Sequence facts a pre-contrast image must share with the image for RE to mean anything.
_SAME_SEQUENCE = (
    ("image_component", "image component"),
    ("scanning_sequence", "ScanningSequence"),
    ("sequence_variant", "SequenceVariant"),
    ("fat_suppression", "fat suppression"),
    ("field_strength_t", "field strength"),
    ("flip_angle_deg", "flip angle"),
    ("repetition_time_ms", "TR"),
    ("echo_time_ms", "TE"),
)


#: ImageType values that name an intensity normalisation of the reconstruction (Siemens prescan
#: normalise NORM, elliptical filter FIL): two images of which one has it are on different intensity profiles.
_INTENSITY_FILTERS = frozenset({"NORM", "FIL"})


def _intensity_filters(image_type: Any) -> frozenset[str] | None:
    """The intensity normalisations an ImageType names (``None`` when no ImageType is stated)."""
    if not image_type:
        return None
    return _values(image_type) & _INTENSITY_FILTERS


def _values(value: Any) -> frozenset[str]:
    """The values of a multi-valued DICOM text (``SK\\SP``), upper case, as a set; empty for ``None``."""
    return frozenset(t.strip().upper() for t in ("" if value is None else str(value)).split("\\") if t.strip())


def _component(facts: Mapping[str, Any]) -> str | None:
    """The image component, ``"magnitude"`` for an image whose ImageType names none (a plain signal image:
    a T1 map beside it is another kind of value), ``None`` when no image type is known (a bare NIfTI)."""
    component = facts.get("image_component")
    if component is None and facts.get("image_type"):
        return "magnitude"
    return cast("str | None", component)


def relative_enhancement_withheld(
    image: Mapping[str, Any], pre: Mapping[str, Any], scales: tuple[Any, Any], rules: Mapping[str, Any]
) -> str | None:
    """Why RE against this pre-contrast image would be no number, or ``None`` when it is comparable.

    RE = (SI - SI_pre) / SI_pre compares two images' values, so both must be the same sequence
    (the facts both headers state are equal: image component (a plain image whose ImageType names no
    component is a magnitude image), ScanningSequence, SequenceVariant,
    fat suppression, field strength, the intensity normalisation ImageType names (Siemens NORM,
    FIL); flip angle, TR and TE within
    ``rules["mri"]["pre_contrast_parameter_tolerance_percent"]``) and on one scale (the same kind
    of :func:`netlm_imaging.io.mr_headers.signal_scale`: both Philips floating-point, both real-world
    values, or both stored values).

    Parameters
    ----------
    image, pre : mapping
        :meth:`MrProvenance.to_dict` of the image and of the pre-contrast image.
    scales : (tuple or None, tuple or None)
        :func:`~netlm_imaging.io.mr_headers.signal_scale` of each.
    rules : mapping
        The rules (``rules["mri"]``).

    Examples
    --------
    >>> from netlm_imaging.classify.rules import load_rules
    >>> relative_enhancement_withheld({"flip_angle_deg": 10.0}, {"flip_angle_deg": 15.0},
    ...                               (("stored", 1.0, 0.0), ("stored", 1.0, 0.0)), load_rules())
    'the pre-contrast image is another sequence (flip angle 15 vs 10): RE not computed'
    """
    tol = float(rules["mri"]["pre_contrast_parameter_tolerance_percent"]) / 100.0
    differ = []
    for key, name in _SAME_SEQUENCE:
        a, b = (_component(image), _component(pre)) if key == "image_component" else (image.get(key), pre.get(key))
        if a is None or b is None:
            continue
        if isinstance(a, float) and isinstance(b, float):
            if abs(a - b) > tol * max(abs(a), abs(b)):
                differ.append(f"{name} {b:g} vs {a:g}")
        elif _values(a) != _values(b):  # multi-valued (SequenceVariant SK\\SP) in any order
            differ.append(f"{name} {b} vs {a}")
    norm = [_intensity_filters(x.get("image_type")) for x in (image, pre)]
    if norm[0] is not None and norm[1] is not None and norm[0] != norm[1]:
        differ.append(
            f"intensity normalisation {'+'.join(sorted(norm[1])) or 'none'} vs {'+'.join(sorted(norm[0])) or 'none'}"
        )
    if differ:
        return f"the pre-contrast image is another sequence ({', '.join(differ)}): RE not computed"
    post_scale, pre_scale = scales
    if post_scale is None or pre_scale is None:
        return "a scale slope of 0 in the headers: the images' values cannot be compared; RE not computed"
    if post_scale[0] != pre_scale[0]:
        return (
            f"the images are on different scales ({pre_scale[0].replace('_', ' ')} vs "
            f"{post_scale[0].replace('_', ' ')} values): RE not computed"
        )
    return None


def hepatocyte_indices_withheld(facts: Mapping[str, Any]) -> str | None:
    """Why LSC and HUI are not computed on this image although its timing is hepatobiliary, or ``None``.

    Hepatocyte uptake of gadoxetic acid shortens T1: it shows on T1-weighted gradient-echo images
    (VIBE, LAVA, THRIVE). A T2-weighted or diffusion series acquired in the hepatobiliary window (they
    are often run while waiting for it) is no hepatobiliary-phase image. Decided from what the headers
    state: ScanningSequence (GR, not EP), else Enhanced MR EchoPulseSequence / EchoPlanarPulseSequence,
    and a diffusion image type; nothing stated (a bare NIfTI) is not a reason.

    Examples
    --------
    >>> hepatocyte_indices_withheld({"scanning_sequence": "GR", "image_component": None}) is None
    True
    >>> hepatocyte_indices_withheld({"scanning_sequence": "SE"}).startswith("a SE sequence")
    True
    """
    tail = (
        ": hepatocyte uptake shows on T1-weighted gradient-echo images, so LSC and HUI are not computed "
        "on it; analyse the hepatobiliary-phase T1 gradient-echo series"
    )
    if facts.get("image_component") == "diffusion":
        return "a diffusion-weighted image" + tail
    seq = _values(facts.get("scanning_sequence"))
    if seq and ("GR" not in seq or "EP" in seq):
        return f"a {'/'.join(sorted(seq))} sequence (not a T1 gradient echo)" + tail
    if facts.get("echo_planar") is True:
        return "an echo-planar sequence" + tail
    pulse = str(facts.get("echo_pulse_sequence") or "").strip().upper()
    if not seq and pulse and pulse != "GRADIENT":
        return f"a {pulse} echo sequence (not a gradient echo)" + tail
    return None

"""``netlm compare``: follow-up vs baseline (volume change, RECIST 1.1, volumetric response, new/gone lesions)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_selection_arguments, check_json_and_voxels, check_output, emit

__all__ = ["add_arguments", "format_summary", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the compare options to ``p``."""
    p.add_argument("baseline", help="baseline study folder, or image file with --baseline-seg")
    p.add_argument("followup", help="follow-up study folder, or image file with --followup-seg")
    p.add_argument(
        "--baseline-seg",
        action="append",
        default=[],
        metavar="[ROLE=]PATH",
        help="segmentation of a baseline image file (repeatable)",
    )
    p.add_argument(
        "--followup-seg",
        action="append",
        default=[],
        metavar="[ROLE=]PATH",
        help="segmentation of a follow-up image file (repeatable)",
    )
    p.add_argument("--labels", help="role mapping for both studies, e.g. liver=1,lesion=2 (default LiTS)")
    p.add_argument(
        "--registration",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto (default): identity with a shared FrameOfReferenceUID, else register the livers",
    )
    p.add_argument(
        "--match-distance",
        type=float,
        metavar="MM",
        help="[D] largest centroid distance matching non-overlapping lesions (default: response.match_distance_mm)",
    )
    p.add_argument(
        "--volume-pr",
        type=float,
        metavar="PERCENT",
        help="[D] volumetric PR: tumour volume decrease (default: rules response.volume_pr_decrease_percent)",
    )
    p.add_argument(
        "--volume-pd",
        type=float,
        metavar="PERCENT",
        help="[D] volumetric PD: tumour volume increase (default: rules response.volume_pd_increase_percent)",
    )
    p.add_argument(
        "--rules",
        help="rules file (TOML/JSON): its [recist] limits and [response] thresholds replace the defaults "
        "(the options above still override it)",
    )
    add_selection_arguments(p, per_study=True)
    p.add_argument("--json", dest="json_out", metavar="-", help="'-' prints the comparison JSON to stdout")
    p.add_argument("--out", help="folder to write comparison.json into")


def format_summary(d: dict) -> str:
    """Human-readable summary of ``LongitudinalComparison.to_dict()``."""

    def f(v, nd=2):
        return "-" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)

    al = d["alignment"]
    t = d["tumor"]
    lines = [
        f"alignment: {al['method']}; liver Dice before {f(al['liver_dice_before'], 3)}, "
        f"after {f(al['liver_dice_after'], 3)}",
        f"intrahepatic tumour: {f(t['baseline_intrahepatic_volume_ml'])} -> {f(t['followup_intrahepatic_volume_ml'])} "
        f"mL ({f(t['change_percent'], 1)}%)",
        f"{'status':<12}{'base id':>8}{'fu id':>6}{'base mL':>10}{'fu mL':>10}{'change %':>10}{'base mm':>9}"
        f"{'fu mm':>8}{'target':>8}",
    ]
    for c in d["lesions"]:
        lines.append(
            f"{c['status']:<12}{f(c['baseline_id']):>8}{f(c['followup_id']):>6}{f(c['baseline_volume_ml']):>10}"
            f"{f(c['followup_volume_ml']):>10}{f(c['volume_change_percent'], 1):>10}"
            f"{f(c['baseline_diameter_mm'], 1):>9}{f(c['followup_diameter_mm'], 1):>8}{'yes' if c['target'] else '':>8}"
        )
    r = d["recist_1_1"]
    lines.append(
        f"RECIST 1.1: {r['category']} (target sum {f(r['baseline_sum_mm'], 1)} -> {f(r['followup_sum_mm'], 1)} mm; "
        f"{r['new_lesions']} new lesion(s))"
    )
    lines.extend(f"  {x}" for x in r["rationale"])
    lines.append(f"  (the table's mm: longest axial diameters between voxel centres; the RECIST sums: {r['method']})")
    v = d["volumetric"]
    lines.append(f"volumetric [D]: {v['category']}: {'; '.join(v['rationale'])}")
    lines.extend(f"warning: {w}" for w in d.get("warnings", []))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``netlm compare``; returns the exit code."""
    from ..errors import UsageError
    from ..verify.longitudinal import ResponseThresholds, compare_study_inputs
    from .analyze import options_from_args

    check_json_and_voxels(args, "comparison.json")

    check_output(args)
    for when, path, segs, flag in (
        ("baseline", args.baseline, args.baseline_seg, "--baseline-seg"),
        ("follow-up", args.followup, args.followup_seg, "--followup-seg"),
    ):
        if Path(path).is_file() and not segs:  # an image file alone: its segmentation is missing
            raise UsageError(
                f"{path}: the {when} is an image file; give its segmentation with {flag} PATH, or pass the study folder"
            )
    if args.rules is not None and not Path(args.rules).is_file():
        raise UsageError(f"--rules {args.rules}: file not found")
    thresholds = ResponseThresholds.from_rules(
        args.rules,
        match_distance_mm=args.match_distance,
        volume_pr_decrease_percent=args.volume_pr,
        volume_pd_increase_percent=args.volume_pd,
    )
    t = thresholds
    if t.match_distance_mm <= 0 or not 0 < t.volume_pr_decrease_percent < 100 or t.volume_pd_increase_percent <= 0:
        raise UsageError("--match-distance must be > 0, --volume-pr in (0, 100), --volume-pd > 0")
    res = compare_study_inputs(
        args.baseline,
        args.followup,
        baseline_segs=args.baseline_seg,
        followup_segs=args.followup_seg,
        labels=args.labels,
        options=options_from_args(args),  # --seg-choice, --image-series, ... as analyze reads a study folder
        thresholds=thresholds,
        registration=args.registration,
        recist=_recist_rules(args.rules),
    )
    return emit(res.to_dict(), args, "comparison.json", format_summary)


def _recist_rules(path: Any) -> Any:
    """``[recist]`` of the ``--rules`` file (target selection as ``analyze`` does), None for the defaults."""
    if path is None:
        return None
    from ..classify.rules import load_rules

    return load_rules(path)["recist"]

"""``netlm compare-seg``: two segmentations of one study (Dice, HD95, LiTS detection, burden)."""

from __future__ import annotations

import argparse

from ._common import check_json_and_voxels, check_output, emit

__all__ = ["add_arguments", "format_table", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the compare-seg options to ``p``."""
    p.add_argument(
        "--image", required=True, help="image whose grid is the common grid (NIfTI/NRRD/MHA or DICOM folder)"
    )
    p.add_argument(
        "--seg-a",
        required=True,
        action="append",
        metavar="[ROLE=]PATH",
        help="segmentation A, the reference (label map, DICOM SEG, RTSTRUCT or ROLE=PATH; repeatable)",
    )
    p.add_argument(
        "--seg-b",
        required=True,
        action="append",
        metavar="[ROLE=]PATH",
        help="segmentation B, compared with A (repeatable)",
    )
    p.add_argument("--labels", help="role mapping of A (and B), e.g. liver=1,lesion=2 (default LiTS)")
    p.add_argument("--labels-b", help="role mapping of B when it differs from A's")
    p.add_argument("--max-voxels", type=int, help="refuse images declaring more voxels than this")
    p.add_argument("--image-series", help="SeriesInstanceUID of the image when its DICOM folder holds several")
    p.add_argument(
        "--allow-resample",
        action="store_true",
        help="resample a DICOM series with a missing slice or irregular steps onto a regular grid",
    )
    p.add_argument(
        "--rules", help="rules file (TOML/JSON); its compare_seg.detection_iou is the lesion detection IoU (0.5)"
    )
    p.add_argument("--json", dest="json_out", metavar="-", help="'-' prints the comparison JSON to stdout")
    p.add_argument("--out", help="folder to write compare_seg.json into")


def format_table(d: dict) -> str:
    """Human-readable summary of a comparison dict (``SegComparison.to_dict()``)."""

    def f(v, nd=3):
        return "-" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)

    lines = [
        f"{'structure':<12}{'vol A mL':>11}{'vol B mL':>11}{'diff mL':>10}{'diff %':>9}{'Dice':>8}"
        f"{'HD95 mm':>9}{'HD mm':>8}{'ASSD mm':>9}"
    ]
    for s in d["structures"]:
        lines.append(
            f"{s['structure']:<12}{f(s['volume_a_ml'], 2):>11}{f(s['volume_b_ml'], 2):>11}"
            f"{f(s['volume_difference_ml'], 2):>10}{f(s['volume_difference_percent'], 1):>9}{f(s['dice']):>8}"
            f"{f(s['hd95_mm'], 2):>9}{f(s['hd_mm'], 2):>8}{f(s['assd_mm'], 2):>9}"
        )
    det = d.get("detection")
    if det:
        lines.append(
            f"lesion detection (LiTS, IoU > {det['iou_threshold']}): TP {det['true_positives']}, "
            f"FP {det['false_positives']}, FN {det['false_negatives']}"
        )
        for m in det["matches"]:
            lines.append(
                f"  A lesion {m['reference_id']} ~ B lesion {m['predicted_id']}: IoU {f(m['iou'])}, "
                f"{f(m['volume_reference_ml'], 2)} vs {f(m['volume_predicted_ml'], 2)} mL "
                f"({f(m['volume_difference_percent'], 1)}%)"
            )
    if d.get("burden_a_percent") is not None:
        lines.append(
            f"burden A {f(d['burden_a_percent'], 2)}%, B {f(d['burden_b_percent'], 2)}%, "
            f"difference {f(d['burden_difference_percent_points'], 2)} percentage points"
        )
    lines.extend(f"warning: {w}" for w in d.get("warnings", []))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``netlm compare-seg``; returns the exit code."""
    from ..verify.segcompare import compare_segmentation_files

    check_json_and_voxels(args, "compare_seg.json")

    check_output(args)
    if args.labels_b is not None:  # a malformed --labels-b fails before the image is read
        from ..io.label_spec import parse_label_spec

        parse_label_spec(args.labels_b, option="--labels-b")
    res = compare_segmentation_files(
        args.image,
        args.seg_a,
        args.seg_b,
        labels=args.labels,
        labels_b=args.labels_b,
        max_voxels=args.max_voxels,
        rules=args.rules,
        image_series=args.image_series,
        allow_resample=args.allow_resample,
    )
    return emit(res.to_dict(), args, "compare_seg.json", format_table)

"""``netlm pacs``: retrieve a study over DICOMweb (WADO-RS), analyse it, store SR/SEG back (STOW-RS).

Credentials come from NETLM_PACS_USER / NETLM_PACS_PASSWORD or NETLM_PACS_TOKEN,
or a private TOML file (--pacs-config, default ~/.config/netlm/pacs.toml);
never from the command line.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the pacs options to ``p``."""
    p.add_argument("--url", required=True, help="DICOMweb root, e.g. http://pacs:8042/dicom-web (no credentials)")
    p.add_argument("--study", required=True, metavar="UID", help="Study Instance UID")
    p.add_argument("--push", action="store_true", help="store the DICOM SR (and --seg-out SEG) back with STOW-RS")
    p.add_argument("--out", metavar="DIR", help="also write report.json and report_sr.dcm to DIR")
    p.add_argument("--seg-out", action="store_true", help="also produce a DICOM SEG of the derived masks")
    p.add_argument(
        "--pacs-config",
        metavar="FILE",
        help="TOML file with user/password or token (chmod 600); default ~/.config/netlm/pacs.toml",
    )
    p.add_argument("--labels", help="role mapping for segment names/values, e.g. liver=Liver,lesion=Lesion*")
    p.add_argument("--rules", help="rules file (TOML/JSON) overriding the default clinical rules")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="keep patient identifiers in the local report/SR/SEG copies (off by default)",
    )
    p.add_argument("--quiet", action="store_true", help="no console summary")


def run(args: argparse.Namespace) -> int:
    """Run ``netlm pacs``; returns the exit code."""
    from ..api import AnalyzeOptions
    from ..pacs.dicomweb import analyze_pacs_study, load_credentials

    creds = load_credentials(args.pacs_config)
    result = analyze_pacs_study(
        args.url,
        args.study,
        out_dir=args.out,
        push=args.push,
        seg_out=args.seg_out,
        credentials=creds,
        labels=args.labels,
        rules=args.rules,
        options=AnalyzeOptions(include_identifiers=args.include_identifiers),
    )
    if not args.quiet:
        print(result.report.summary())
        for w in result.written:
            print(f"wrote {w}")
        if args.push:
            print(f"stored {len(result.pushed_sop_instance_uids)} object(s) in the PACS", file=sys.stdout)
    return 0

"""``netlm pacs``: retrieve a study, analyse it, store SR + SEG back.

Over DICOMweb (``--url``: WADO-RS streaming, STOW-RS) or classic DIMSE
(``--dimse HOST:PORT --called-ae AE``: C-FIND, C-GET or C-MOVE, C-STORE).
DICOMweb credentials come from NETLM_PACS_USER / NETLM_PACS_PASSWORD or
NETLM_PACS_TOKEN, or a private TOML file (--pacs-config, default
~/.config/netlm/pacs.toml); never from the command line.
"""

from __future__ import annotations

import argparse
import sys

from ._common import add_pacs_analysis_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the pacs options to ``p``."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="DICOMweb root, e.g. http://pacs:8042/dicom-web (no credentials, no query)")
    where.add_argument("--dimse", metavar="HOST:PORT", help="the PACS's DICOM (DIMSE) address, e.g. pacs:104")
    p.add_argument("--study", required=True, metavar="UID", help="Study Instance UID")
    p.add_argument("--called-ae", metavar="AE", help="with --dimse: the PACS's AE title (required)")
    p.add_argument("--calling-ae", metavar="AE", default="NETLM", help="with --dimse: our AE title (default NETLM)")
    p.add_argument(
        "--retrieve",
        choices=("get", "move"),
        default="get",
        help="with --dimse: C-GET (default) or C-MOVE to our C-STORE SCP on --port",
    )
    p.add_argument(
        "--port",
        type=int,
        help="with --retrieve move: port our C-STORE SCP listens on; with --retrieve get: where a C-MOVE is "
        "received when the PACS refuses the C-GET (then tried instead)",
    )
    p.add_argument(
        "--move-ae",
        metavar="AE",
        help="with --retrieve move: the AE title the PACS sends the study to (default --calling-ae), "
        "when it knows this computer's C-STORE SCP under another title",
    )
    p.add_argument("--bind", default="0.0.0.0", help="with --retrieve move: address to listen on (default all)")
    p.add_argument(
        "--push", action="store_true", help="store the DICOM SR and the derived SEG it references back in the PACS"
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=60.0,
        help="seconds to wait for each answer of the PACS (default 60); raise it for a PACS that fetches "
        "studies from its archive",
    )
    p.add_argument("--out", metavar="DIR", help="also write report.json, report_sr.dcm and derived_seg.dcm to DIR")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of another study found in --out")
    p.add_argument("--seg-out", action="store_true", help="(kept for compatibility: the SEG always comes with the SR)")
    p.add_argument(
        "--pacs-config",
        metavar="FILE",
        help="with --url: TOML file with user/password or token (chmod 600); default ~/.config/netlm/pacs.toml",
    )
    add_pacs_analysis_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no console summary")


def run(args: argparse.Namespace) -> int:
    """Run ``netlm pacs``; returns the exit code."""
    from ..errors import UsageError
    from ..pacs.common import check_uid
    from .analyze import options_from_args

    check_uid(args.study)
    opts = options_from_args(args)
    if args.dimse:
        from ..pacs.dimse import DimseEndpoint, analyze_dimse_study, parse_address

        if not args.called_ae:
            raise UsageError("--dimse needs --called-ae AE (the PACS's AE title)")
        if args.pacs_config:
            raise UsageError("--pacs-config holds DICOMweb credentials; DIMSE uses AE titles (--calling-ae)")
        if args.move_ae is not None and args.retrieve != "move":
            raise UsageError("--move-ae is the C-MOVE destination: use it with --retrieve move --port P")
        host, port = parse_address(args.dimse)
        ep = DimseEndpoint(host, port, args.called_ae, args.calling_ae, args.move_ae, args.timeout)
        result = analyze_dimse_study(
            ep,
            args.study,
            out_dir=args.out,
            push=args.push,
            method=args.retrieve,
            move_port=args.port,
            bind=args.bind,
            labels=args.labels,
            rules=args.rules,
            options=opts,
            overwrite=args.overwrite,
        )
    else:
        from ..pacs.dicomweb import analyze_pacs_study, load_credentials

        for flag, given in (("--called-ae", args.called_ae), ("--port", args.port), ("--move-ae", args.move_ae)):
            if given is not None:
                raise UsageError(f"{flag} is for --dimse; with --url the DICOMweb root says where the PACS is")
        result = analyze_pacs_study(
            args.url,
            args.study,
            out_dir=args.out,
            push=args.push,
            credentials=load_credentials(args.pacs_config),
            labels=args.labels,
            rules=args.rules,
            options=opts,
            timeout_s=args.timeout,
            overwrite=args.overwrite,
        )
    if not args.quiet:
        print(result.report.summary())
        for w in result.written:
            print(f"wrote {w}")
        if args.push:
            print(f"stored {len(result.pushed_sop_instance_uids)} object(s) in the PACS", file=sys.stdout)
    return 0

"""``netlm listen``: a DICOM C-STORE SCP that analyses each study when it has arrived.

Writes instances to OUT/incoming/<study>/, outputs to OUT/<study>/ and one line
per study to stdout and OUT/listen.log; optionally C-STOREs the SR and the
derived SEG to a destination (--dest HOST:PORT --dest-ae AE). Runs until
interrupted (SIGINT / SIGTERM: exit 0) or until --max-studies studies are done.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from ._common import add_pacs_analysis_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the listen options to ``p``."""
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--ae-title", required=True, metavar="AE", help="our AE title")
    p.add_argument("--out", required=True, metavar="DIR", help="incoming instances and per-study outputs")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all interfaces)")
    p.add_argument(
        "--quiet-seconds",
        type=float,
        metavar="N",
        help="analyse a study N s after its associations ended with no new instance (default 10, NETLM_LISTEN_QUIET_S)",
    )
    p.add_argument("--dest", metavar="HOST:PORT", help="C-STORE the SR and derived SEG to this DICOM node")
    p.add_argument("--dest-ae", metavar="AE", help="AE title of --dest")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --dest: seconds to wait for each answer of the destination (default 60)",
    )
    p.add_argument("--max-studies", type=int, metavar="N", help="exit after N analysed studies")
    add_pacs_analysis_arguments(p, listen=True)


def run(args: argparse.Namespace) -> int:
    """Run ``netlm listen`` until interrupted; returns the exit code."""
    from ..errors import UsageError
    from ..pacs.listener import ListenerConfig, StudyListener, default_quiet_seconds, parse_destination
    from .analyze import options_from_args

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: give a TCP port 1..65535")
    quiet = args.quiet_seconds if args.quiet_seconds is not None else default_quiet_seconds()
    if quiet < 0:
        raise UsageError("--quiet-seconds must be >= 0")
    if args.max_studies is not None and args.max_studies < 1:
        raise UsageError("--max-studies must be at least 1")
    config = ListenerConfig(
        port=args.port,
        ae_title=args.ae_title,
        out_dir=Path(args.out),
        bind=args.bind,
        quiet_s=quiet,
        destination=parse_destination(args.dest, args.dest_ae, args.ae_title, args.timeout),
        max_studies=args.max_studies,
        labels=args.labels,
        rules=args.rules,
        options=options_from_args(args),
        accepted_flags=tuple(getattr(args, "_options", ())),
    )

    def line(text: str) -> None:
        print(f"netlm listen: {text}", flush=True)

    listener = StudyListener(config, on_line=line)

    def stop(signum: int, frame: Any) -> None:
        listener.request_stop()

    listener.start()
    old = signal.signal(signal.SIGTERM, stop)
    print(
        f"netlm listen: {args.ae_title} on {args.bind}:{args.port}, writing to {args.out}", file=sys.stderr, flush=True
    )
    try:
        while not listener.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        signal.signal(signal.SIGTERM, old)
    return 0

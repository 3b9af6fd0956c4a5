"""Command-line entry point ``netlm``: a thin layer over the Python API.

Each sub-command lives in ``netlm_imaging/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
nothing heavy at module level, so ``netlm --help`` stays fast.

Exit codes: 0 success; 1 discrepancies found (``check``); 2 usage error;
3 input error; 4 partial success (``batch``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import NetlmError, for_command

__all__ = ["COMMANDS", "main"]

#: sub-command -> (module under netlm_imaging.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("analyze", "measure one study (folder, or --image/--seg) and write report.json"),
    "batch": ("batch", "analyse every study of a cohort, resumable, local or Dask"),
    "check": ("check", "recompute reported burdens (CSV or DICOM SR) and list discrepancies"),
    "compare-seg": ("compare_seg", "compare two segmentations of one study (Dice, HD95, detection)"),
    "compare": ("compare", "follow-up vs baseline: volume change, RECIST 1.1, new/disappeared lesions"),
    "pacs": ("pacs", "retrieve a study (DICOMweb or DIMSE), analyse it, store SR/SEG back"),
    "listen": ("listen", "C-STORE SCP: analyse each study that arrives, optionally send SR/SEG on"),
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors raise instead of exiting (exit code 2 via main)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from .errors import UsageError

        # "netlm batch: ..." would read "netlm: error: netlm batch: ..." once main adds its prefix
        sub = self.prog.removeprefix("netlm").strip()
        raise UsageError(f"{sub}: {message}" if sub else message)


@functools.cache
def _get_parser() -> argparse.ArgumentParser:
    """The parser of every command, built once per process (parsing never changes it; ~2 ms a build)."""
    parser = _Parser(
        prog="netlm",
        description="Hepatic tumour burden of neuroendocrine tumour liver metastases (NETLM).",
    )
    parser.add_argument("--version", action="version", version=f"netlm-imaging {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(f".commands.{module}", __package__)
        except ModuleNotFoundError as exc:  # a command not built into this version
            if exc.name and exc.name.endswith(f"commands.{module}"):
                continue
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_module=mod, _options=tuple(p._option_string_actions))
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="netlm: %(levelname)s: %(message)s", stream=sys.stderr)
    from .commands._common import WarningLog

    WarningLog.seen.clear()  # one run's memory (main may be called many times in one process)
    # pynetdicom logs a peer's reset or abort at ERROR with its traceback, then our one error line (naming the
    # PACS and the fix) says what failed; its records are for -vv only
    logging.getLogger("pynetdicom").setLevel(logging.DEBUG if verbosity >= 2 else logging.CRITICAL)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, WarningLog) for f in handler.filters):
            handler.addFilter(WarningLog())
    if verbosity <= 0:
        import warnings

        # pydicom's "Invalid value for VR DS: 'nan'" and the like: the error or warning line that
        # follows names the file and the problem; -v shows them
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?$")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The process exit code.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _get_parser()
        if not args_list:
            parser.print_help(sys.stderr)
            return 2
        args = parser.parse_args(args_list)
    except NetlmError as exc:
        print(f"netlm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    _configure_logging(args.verbose)
    try:
        return int(args._module.run(args))
    except NetlmError as exc:
        # suggest only options this command accepts (a library message may name analyze's)
        print(f"netlm: error: {for_command(exc, args._options, args.command)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("netlm: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("netlm: error: out of memory; lower --max-voxels or use a smaller study", file=sys.stderr)
        return 3
    except OSError as exc:  # the environment refused a file operation no writer translated: not a bug
        from .atomic import ENVIRONMENT_ERRNOS, output_error

        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _internal_error(exc)
        print(f"netlm: error: {output_error(exc.filename or '(unnamed file)', exc, 'cannot access')}", file=sys.stderr)
        return 3
    except Exception as exc:  # last resort: never a traceback, but say it is a bug
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """Exit 70: a real bug (the only case left once inputs and the environment are checked)."""
    logging.getLogger("netlm_imaging").debug("internal error", exc_info=exc)
    print(
        f"netlm: internal error: {type(exc).__name__}: {exc} (a bug: rerun with -vv and report it)",
        file=sys.stderr,
    )
    return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `sciml` command line: `sciml info | solve | datagen | train | bench | report`.

`main(argv)` parses the arguments, runs one subcommand and returns its exit status. Mistakes in
the command line or its values give one line, `sciml: error: ...`, on stderr and a non-zero
status (2 for usage mistakes, 1 for failures while running), never a traceback. JAX is imported
only after the global options have been applied (`--platform`, x64 for `--dtype float64`).

Every subcommand is a private module with `add_parser(subparsers)` and `run(args) -> int`.
"""

import os
import sys
import traceback
from collections.abc import Sequence

from sciml import __version__

from ._common import (
    PLATFORMS,
    ArgumentParser,
    RunFailure,
    UsageError,
    jax_platforms_value,
    one_line,
)


def build_parser() -> ArgumentParser:
    """The argument parser of the `sciml` command."""
    parser = ArgumentParser(
        prog="sciml",
        description="sciml: a JAX toolkit for scientific machine learning.",
        epilog="Run `sciml <command> --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"sciml {__version__}")
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=None,
        help="run JAX on this platform (sets JAX_PLATFORMS before JAX starts)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        default=False,
        help="never show progress bars (they are shown only on a terminal anyway)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False,
        help="show the Python traceback of unexpected errors",
    )
    # Imported here, not at the top, so that `import sciml.cli` stays light.
    from . import _bench, _datagen, _info, _report, _solve, _train

    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for module in (_info, _solve, _datagen, _train, _bench, _report):
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sciml` command line.

    Args:
        argv: the arguments after the program name (`sys.argv[1:]` by default).

    Returns:
        The exit status: 0 on success, 1 when the run failed or was refused (a solver did not
        converge, an output exists and `--force` was not given, a file could not be written,
        ...), 2 for a mistake in the command line itself (an unknown option or a bad value).
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    debug = "--debug" in argv or os.environ.get("SCIML_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(
                "choose a command: info, solve, datagen, train, bench, report (see `sciml --help`)"
            )
        if args.platform is not None and "jax" not in sys.modules:
            # Every subcommand imports JAX after this point, so the choice takes effect.
            os.environ["JAX_PLATFORMS"] = jax_platforms_value(args.platform)
        return int(args.run(args) or 0)
    except SystemExit as exit_request:  # --help and --version
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except UsageError as error:
        _error(str(error))
        return 2
    except RunFailure as error:
        _error(str(error))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except (ValueError, OSError, RuntimeError, MemoryError, ImportError) as error:
        if debug:
            traceback.print_exc()
        _error(_describe(error))
        return 1
    except Exception as error:  # a bug in sciml: say so, with the traceback on request
        if debug:
            traceback.print_exc()
        _error(
            f"internal error: {_describe(error)} (this is a bug in sciml; rerun with --debug "
            f"or SCIML_DEBUG=1 for the traceback)"
        )
        return 1


def _describe(error: BaseException) -> str:
    text = one_line(error)
    if isinstance(error, (ValueError, OSError)) or not text:
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _error(message: str) -> None:
    print(f"sciml: error: {one_line(message)}", file=sys.stderr, flush=True)


__all__ = ["build_parser", "main"]

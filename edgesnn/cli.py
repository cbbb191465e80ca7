"""The ``edgesnn`` command line.

Each subcommand lives in its own module under :mod:`edgesnn.commands` and exposes
``register(subparsers)`` which adds its parser and sets ``func`` to a callable taking the
parsed namespace and returning an exit code. Adding a command touches only the list below.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgesnn import __version__

# Order is the order shown in --help.
COMMANDS = (
    "train",
    "evaluate",
    "compress",
    "export",
    "inspect",
    "build",
    "flash",
    "devices",
    "eval",
    "report",
    "run",
    "crossbar_sim",
    "import_",
    "tune",
)


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def _number(kind: type, accepted: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value
    parse.__name__ = accepted  # argparse names the type in its messages
    return parse


#: argparse ``type=`` checkers: a bad value is refused at parse time, one line, exit 2.
positive_int = _number(int, "a positive integer", lambda v: v >= 1)
count = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a number > 0", lambda v: v > 0)
fraction = _number(float, "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)


def check_run_dir(path: Path, needs: str | None = None, hint: str = "") -> Path:
    """Check a RUN_DIR argument before any work: it is an existing folder (a file inside one
    is named as such) and holds ``needs`` (else ``hint`` says how to make it)."""
    if path.is_file():
        raise CliError(f"{path} is a file; give the run directory that holds it "
                       f"({path.parent})")
    if not path.is_dir():
        raise CliError(f"run directory {path} does not exist")
    if needs is not None and not (path / needs).is_file():
        raise CliError(f"{path / needs} not found" + (f"; {hint}" if hint else ""))
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit code 2
        self.exit(2, f"edgesnn: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgesnn",
        description="Train, compress, deploy and evaluate spiking neural networks on "
        "microcontrollers and memristor crossbars.",
    )
    parser.add_argument("--version", action="version", version=f"edgesnn {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"edgesnn.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgesnn.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edgesnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgesnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users, the traceback with -v
        if args.verbose:
            raise
        print(f"edgesnn {args.command}: error: {type(exc).__name__}: {exc} "
              "(run with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``edgesnn build DIR [--clean] [--make-arg VAR=VALUE] [--json]``: make a generated project."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.build import BuildError, build_project
from edgesnn.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="build a generated C firmware project and report its size",
        description="Run make in DIR (written by `edgesnn export --target c`) and report the "
        "image's text/data/bss, flash and RAM bytes (from the toolchain's size).",
    )
    p.add_argument("project", type=Path, metavar="DIR")
    p.add_argument("--clean", action="store_true", help="rebuild from scratch")
    p.add_argument("--make-arg", action="append", default=[], metavar="VAR=VALUE",
                   help="extra make variable, repeatable (e.g. EXTRA_CFLAGS=-g)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for arg in args.make_arg:
        if "=" not in arg:
            raise CliError(f"--make-arg expects VAR=VALUE, got {arg!r}")
    if not args.project.is_dir():
        raise CliError(f"project folder {args.project} does not exist")
    try:
        result = build_project(args.project, make_args=tuple(args.make_arg), clean=args.clean)
    except BuildError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        print(f"built {result.elf}: text {result.text} B, data {result.data} B, "
              f"bss {result.bss} B (flash {result.flash_bytes} B, RAM {result.ram_bytes} B)")
    return 0

"""``edgesnn export RUN_DIR --target T --out PATH [--device NAME] [--option key=value]``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError, check_run_dir


class _Targets:
    """The registered target names, looked up only when argparse needs them (checking a
    value, or printing ``export --help``), so building the whole CLI parser imports no
    export code (and no numpy)."""

    def _names(self) -> list[str]:
        from edgesnn.export.base import available_targets

        return available_targets()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a run to a deployment or interchange format",
        description="Export RUN_DIR (model.pt / model.esg) to one target (--target).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--target", required=True, choices=_Targets(), metavar="TARGET",
                   help="one of: %(choices)s")
    p.add_argument("--out", type=Path, required=True, help="output file or folder")
    p.add_argument("--device", help="device profile name (devices/NAME.toml) for c/crossbar")
    p.add_argument("--option", action="append", default=[], type=_parse_option,
                   metavar="KEY=VALUE", help="target-specific option, repeatable")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.export.base import ExportError, get_target

    check_run_dir(args.run_dir)
    target = get_target(args.target)
    if target.needs_device and not args.device:
        raise CliError(f"--target {args.target} needs --device NAME")
    try:
        target.check_out(args.out)
        summary = target.export(args.run_dir, args.out, device=args.device, **dict(args.option))
    except (ExportError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary, indent=None, sort_keys=True))
    else:
        print(f"wrote {summary['path']} ({summary['bytes']} bytes, target {args.target})")
    return 0

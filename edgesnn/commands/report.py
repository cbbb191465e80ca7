"""``edgesnn report RUN_DIR [--json]``: re-render the report from saved results."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="compare float / integer / device results (no device needed)",
        description="Rebuild RUN_DIR/report.json and the self-contained RUN_DIR/report.html "
        "from RUN_DIR/eval/*/samples.jsonl without touching any device.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--no-html", action="store_true", help="write report.json only")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.pipeline import report
    from edgesnn.report import print_report

    try:
        rep = report(args.run_dir, html=not args.no_html)
    except (FileNotFoundError, ValueError) as exc:  # ResultsError, EsgError: names the file
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(rep, default=str))
    else:
        print_report(rep)
        written = ["report.json"] + ([] if args.no_html else ["report.html"])
        print("wrote " + " and ".join(str(args.run_dir / f) for f in written))
    return 0

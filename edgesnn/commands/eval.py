"""``edgesnn eval RUN_DIR --device NAME|URL|sim [--device ...] [--samples N] [--resume]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.cli import CliError


def add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, default=None,
                   help="evaluate the first N MNIST test samples (default: all 10,000)")
    p.add_argument("--resume", action="store_true",
                   help="continue after the last complete line of each samples.jsonl")
    p.add_argument("--window", type=int, default=8,
                   help="requests in flight per device (default 8)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="longest wait for a reply before asking again; the wait in force "
                   "adapts to the measured round trip (default 5)")
    p.add_argument("--budget", type=float, default=60.0, metavar="S",
                   help="seconds a sample may take from its first send before it is recorded "
                   "as failed (default 60)")
    p.add_argument("--retries", type=int, default=None, metavar="N",
                   help="also fail a sample after N whole sends (default: no cap, the budget "
                   "decides)")
    p.add_argument("--no-chunks", action="store_true",
                   help="send each input as one INFER frame instead of compact DATA chunks")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/")
    p.add_argument("--baseline", choices=("ann", "ann-sparse"), default=None,
                   help="also run the same-topology int8 ANN (dense kernel, or the sparse "
                   "zero-skipping one at the SNN's weight density) on the same device and "
                   "samples, checked against its numpy twin; trained and quantized with the "
                   "run's data and options when the run has none yet")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a compressed run on devices over the serial protocol",
        description="Stream MNIST test samples to one or more devices and compare with the "
        "float and golden integer models. --device is a device profile (exported, built and "
        "launched automatically), a pyserial URL (/dev/ttyACM0, /dev/pts/N, "
        "socket://HOST:PORT, rfc2217://...), PROFILE@URL for a flashed board whose profile "
        "gives clock and energy (nucleo-l4r5zi@/dev/ttyACM0), or 'sim' (the Python "
        "emulator). Several "
        "--device share the samples. Writes RUN_DIR/eval/<device>/samples.jsonl, "
        "RUN_DIR/report.json and RUN_DIR/report.html.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--device", action="append", required=True, metavar="NAME|URL",
                   help="device profile, pyserial URL, PROFILE@URL or 'sim'; repeat for a fleet")
    add_eval_options(p)
    p.add_argument("--no-report", action="store_true",
                   help="skip writing the report (with --json: print the evaluation summary)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.host.link import LinkError
    from edgesnn.pipeline import eval as evaluate
    from edgesnn.pipeline.evaluation import EvalError
    from edgesnn.report import print_report

    try:
        out = evaluate(args.run_dir, args.device, samples=args.samples, resume=args.resume,
                       window=args.window, timeout=args.timeout, retries=args.retries,
                       budget=args.budget, chunks=not args.no_chunks, data_dir=args.data_dir,
                       report=not args.no_report, progress=not args.json,
                       baseline=args.baseline)
    except (EvalError, LinkError, FileNotFoundError, OSError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(out, default=str))
    elif not args.no_report:
        print_report(out)
        print(f"wrote {args.run_dir / 'report.json'} and {args.run_dir / 'report.html'}")
    return 0

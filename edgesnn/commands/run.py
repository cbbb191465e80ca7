"""``edgesnn run``: the whole pipeline (:mod:`edgesnn.pipeline.chain`) on the embedded default,
ending in a report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgesnn.cli import CliError
from edgesnn.data import ENCODERS
from edgesnn.pipeline.chain import RunOptions, StageError, run_pipeline

DEFAULTS = RunOptions()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="the whole pipeline on the embedded default, ending in a report",
        description="Train a small spiking MLP on MNIST, compress it to int8 (model.esg), "
        "export and build the C firmware for --device, launch it (host process on a "
        "pseudo-terminal, or QEMU), stream test samples over the serial protocol and write "
        "RUN_DIR/report.{json,html}. Defaults (a few minutes on 2 cores): 784-"
        f"{DEFAULTS.hidden}-10 LIF, {DEFAULTS.encoder} encoding, T={DEFAULTS.steps}, "
        f"{DEFAULTS.epochs} epoch on the first {DEFAULTS.train_limit:,} training images, "
        f"--device host, {DEFAULTS.samples:,} test samples. Stages whose outputs exist and "
        "are current are skipped; an existing RUN_DIR trained by `edgesnn train` is used as is.")
    p.add_argument("--out", type=Path, default=Path("runs/default"), metavar="RUN_DIR",
                   help="run directory (default runs/default)")
    p.add_argument("--device", default="host",
                   help="device profile (host, lm3s6965evb, mps2-an386), a pyserial URL or "
                        "'sim' (default host)")
    p.add_argument("--samples", type=int, default=DEFAULTS.samples,
                   help=f"test samples to evaluate (default {DEFAULTS.samples})")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                   help=f"training epochs (default {DEFAULTS.epochs})")
    p.add_argument("--hidden", type=int, default=DEFAULTS.hidden,
                   help=f"hidden neurons (default {DEFAULTS.hidden})")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps,
                   help=f"time steps T (default {DEFAULTS.steps})")
    p.add_argument("--encoder", choices=ENCODERS, default=DEFAULTS.encoder,
                   help="input encoding: rate (Bernoulli spikes), latency (one spike per "
                   "pixel) or direct (the pixels as a constant current into layer 0; fewest "
                   f"device instructions) (default {DEFAULTS.encoder})")
    p.add_argument("--train-limit", type=int, default=DEFAULTS.train_limit,
                   help=f"training images used (default {DEFAULTS.train_limit})")
    p.add_argument("--window", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/")
    p.add_argument("--baseline", choices=("ann", "ann-sparse"), default=None,
                   help="also train (with the run's data and options), quantize and run the "
                   "same-topology int8 ANN (dense, or sparse at the SNN's weight density) on "
                   "the same device and samples; the report shows both side by side")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.report import print_report

    opts = RunOptions(out=args.out, device=args.device, samples=args.samples,
                      epochs=args.epochs, hidden=args.hidden, steps=args.steps,
                      encoder=args.encoder, train_limit=args.train_limit,
                      window=args.window, data_dir=args.data_dir, force=args.force,
                      progress=not args.json, baseline=args.baseline)

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    try:
        report = run_pipeline(opts, say)
    except (StageError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print_report(report)
        print(f"wrote {args.out / 'report.json'} and {args.out / 'report.html'}")
    return 0

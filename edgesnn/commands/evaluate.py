"""``edgesnn evaluate RUN_DIR``: float test accuracy of a trained run (deterministic encoder,
SPEC 3.3 readout)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from edgesnn.data import DATASETS

    p = sub.add_parser("evaluate", help="float test accuracy of a trained run",
                       description="Evaluate RUN_DIR/model.pt on the test split with the "
                       "deterministic encoder and the SPEC readout.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--test-limit", type=int, help="use the first N test samples")
    p.add_argument("--dataset", choices=DATASETS, help="default: the one the run trained on")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else $EDGESNN_DATA)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--predictions", type=Path, metavar="FILE.json",
                   help="also write the predicted labels (a JSON list in test-set order), to "
                   "compare with the model in the library it came from")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.data import ChecksumError, DataError
    from edgesnn.pipeline import evaluate
    from edgesnn.snn.checkpoint import CheckpointError

    if not args.run_dir.is_dir():
        raise CliError(f"run directory {args.run_dir} does not exist")
    try:
        result = evaluate(args.run_dir, test_limit=args.test_limit, data_dir=args.data_dir,
                          dataset=args.dataset, batch_size=args.batch_size,
                          predictions=args.predictions)
    except (CheckpointError, DataError, ChecksumError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"{args.run_dir}: test accuracy {result['test_accuracy']:.4f} on "
              f"{result['test_samples']} {result['dataset']} test samples")
    return 0

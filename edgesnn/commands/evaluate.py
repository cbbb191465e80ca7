"""``edgesnn evaluate RUN_DIR``: float test accuracy of a trained run (deterministic encoder,
SPEC 3.3 readout)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgesnn.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from edgesnn.data.datasets import DATASETS

    p = sub.add_parser("evaluate", help="float test accuracy of a trained run",
                       description="Evaluate RUN_DIR/model.pt on the test split with the "
                       "deterministic encoder and the SPEC readout.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--test-limit", type=int, help="use the first N test samples")
    p.add_argument("--dataset", choices=DATASETS, help="default: the one the run trained on")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else $EDGESNN_DATA)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.data import ChecksumError, DataError, load_dataset
    from edgesnn.snn.checkpoint import CheckpointError, load
    from edgesnn.snn.train import evaluate

    if not args.run_dir.is_dir():
        raise CliError(f"run directory {args.run_dir} does not exist")
    if args.test_limit is not None and args.test_limit < 1:
        raise CliError(f"--test-limit {args.test_limit}: must be >= 1")
    if args.batch_size < 1:
        raise CliError(f"--batch-size {args.batch_size}: must be >= 1")
    try:
        model, meta = load(args.run_dir)
        name = args.dataset or meta.get("dataset", "mnist")
        data = load_dataset(name, "test", args.data_dir, args.test_limit)
        t0 = time.perf_counter()
        acc = evaluate(model, data, args.batch_size)
        elapsed = time.perf_counter() - t0
    except (CheckpointError, DataError, ChecksumError) as exc:
        raise CliError(str(exc)) from exc
    result = {"test_accuracy": acc, "test_samples": len(data), "dataset": name,
              "run_dir": str(args.run_dir), "steps": model.config.steps,
              "encoder": model.config.encoder, "eval_time_s": round(elapsed, 3)}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"{args.run_dir}: test accuracy {acc:.4f} on {len(data)} {name} test samples")
    return 0

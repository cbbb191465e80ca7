"""``edgesnn compress RUN_DIR``: prune + quantize a trained run into ``model.esg``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError, check_run_dir, count, fraction, positive_int
from edgesnn.compress.defaults import DEFAULT_PRUNE_QAT_EPOCHS, QAT_LR_PER_QMAX


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress",
        help="prune and quantize a trained run into model.esg",
        description="Prune (magnitude / structured), quantize (int8 or int4, PTQ with "
        "calibration, optional QAT) the float model of RUN_DIR; write RUN_DIR/model.esg and "
        "RUN_DIR/compress.json and report float vs golden-simulator accuracy.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--sparsity", type=fraction, default=0.0,
                   help="fraction of weights to prune, 0 <= s < 1 (default 0)")
    p.add_argument("--prune-scope", choices=("global", "layer"), default="global",
                   help="one magnitude cut over all layers, or the sparsity in every layer")
    p.add_argument("--weight-bits", type=int, choices=(8, 4), default=8)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                       help="one weight scale per output neuron (default)")
    group.add_argument("--per-layer", dest="per_channel", action="store_false",
                       help="one weight scale per layer")
    p.add_argument("--qat-epochs", type=count, default=None,
                   help="epochs of quantization-aware fine-tuning (default: "
                   f"{DEFAULT_PRUNE_QAT_EPOCHS} when pruning, 0 = PTQ only otherwise; 0 with "
                   "--sparsity prunes one-shot)")
    p.add_argument("--qat-lr", type=float, default=None,
                   help="QAT learning rate in integer weight units (default "
                   f"{QAT_LR_PER_QMAX:g} * qmax, the largest magnitude of a --weight-bits weight)")
    p.add_argument("--structured", action="store_true",
                   help="remove hidden neurons that never fire on the calibration data")
    p.add_argument("--structured-drop", type=fraction, default=0.0,
                   help="with --structured, also drop this fraction of the least important "
                   "firing neurons")
    p.add_argument("--train-limit", type=positive_int, default=None,
                   help="training samples for calibration and QAT (default: all; QAT on all "
                   "of them is the measured best, benchmarks/fewer_events.py)")
    p.add_argument("--calib-limit", type=positive_int, default=1000,
                   help="calibration samples drawn from the training subset (default 1000)")
    p.add_argument("--test-limit", type=positive_int, default=None,
                   help="test samples to evaluate (default: the whole test set)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder holding mnist/ (default $EDGESNN_DATA, then the cache)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.compress.pipeline import compress_run
    from edgesnn.export.base import ExportError

    check_run_dir(args.run_dir, "model.pt", "run `edgesnn train --out RUN_DIR` first")
    if args.structured_drop and not args.structured:
        raise CliError("--structured-drop needs --structured")
    try:
        summary = compress_run(
            args.run_dir, sparsity=args.sparsity, weight_bits=args.weight_bits,
            per_channel=args.per_channel, qat_epochs=args.qat_epochs, qat_lr=args.qat_lr,
            structured=args.structured, structured_drop=args.structured_drop,
            train_limit=args.train_limit, test_limit=args.test_limit,
            calib_limit=args.calib_limit, data_dir=args.data_dir, seed=args.seed,
            prune_scope=args.prune_scope, progress=not args.json)
    except (ExportError, ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    print(f"wrote {summary['esg']} ({summary['esg_bytes']} bytes, "
          f"{summary['ratio']:.3f}x the raw int8 weights)")
    print(f"accuracy: float {100 * summary['float_accuracy']:.2f} %, golden "
          f"{100 * summary['golden_accuracy']:.2f} % on {summary['test_samples']} test samples; "
          f"agreement {100 * summary['agreement']:.2f} %")
    print(f"int{summary['weight_bits']} "
          f"{'per-channel' if summary['per_channel'] else 'per-layer'}, sparsity "
          f"{100 * summary['sparsity']:.1f} %, layers {summary['layer_sizes']} "
          f"({', '.join(summary['storage'])})")
    print(_what_it_did(summary))
    return 0


def _what_it_did(summary: dict[str, Any]) -> str:
    epochs, n = summary["qat_epochs"], f"{summary['train_samples']:,}"
    if not epochs:
        tuned = "post-training quantization only, no fine-tuning"
        if summary["pruning"]["target_sparsity"] > 0:
            tuned += " (pruned one-shot: expect a loss; --qat-epochs 1 recovers it)"
        return tuned
    text = (f"fine-tuned {epochs} QAT epoch{'s' if epochs > 1 else ''} on {n} training "
            "images")
    if summary["qat_default"]:
        text += " (the default when pruning; --qat-epochs 0 prunes one-shot)"
    return text

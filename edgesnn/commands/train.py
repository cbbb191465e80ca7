"""``edgesnn train --out RUN_DIR [...]``: train a spiking MLP (surrogate gradients or ANN->SNN
conversion) and write ``model.pt``, ``config.json`` and ``train.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError, count, positive_float, positive_int

METHODS = ("surrogate", "convert")


def _layers(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes like 256,128, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers, got {text!r}")
    return sizes


def register(sub: argparse._SubParsersAction) -> None:
    from edgesnn.data import DATASETS, ENCODERS
    from edgesnn.snn.config import (
        NEURONS,
        RESETS,
        SCHEDULES,
        SPIKE_REG,
        SURROGATES,
        SNNConfig,
    )

    p = sub.add_parser("train", help="train a spiking MLP on MNIST / Fashion-MNIST",
                       description="Train a spiking MLP and write RUN_DIR/model.pt, "
                       "config.json and train.json. Under `torchrun --nproc_per_node N` it "
                       "trains data-parallel (gloo).")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("--hidden", type=positive_int,
                   help="one hidden layer of this size (default 256)")
    p.add_argument("--layers", type=_layers, help="hidden layer sizes, e.g. 256,128")
    p.add_argument("--steps", type=positive_int, default=25, help="time steps T (default 25)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (default 2; convert: 3)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate (default 5e-3; convert: 3e-3)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--encoder", choices=ENCODERS, default="rate")
    p.add_argument("--encoder-seed", type=lambda s: int(s, 0), default=0x1234ABCD)
    p.add_argument("--neuron", choices=NEURONS, default="lif")
    p.add_argument("--reset", choices=RESETS, default="subtract")
    p.add_argument("--beta", type=float, default=None, help="leak (default 0.9; IF: 1)")
    p.add_argument("--threshold", type=positive_float, default=1.0)
    p.add_argument("--learn-beta", action="store_true")
    p.add_argument("--learn-threshold", action="store_true")
    p.add_argument("--per-neuron", action="store_true", help="one beta/threshold per neuron")
    p.add_argument("--bias", action="store_true", help="layers with a bias (a constant current)")
    p.add_argument("--surrogate", choices=SURROGATES, default="fast_sigmoid")
    p.add_argument("--slope", type=positive_float, default=SNNConfig.slope,
                   help=f"surrogate-gradient slope (default {SNNConfig.slope:g}, the measured "
                   "best; see the README's accuracy recipe)")
    p.add_argument("--loss-scale", type=positive_float, default=None,
                   help="cross-entropy on spike counts x this (default 0.5)")
    p.add_argument("--augment-shift", type=count, default=0, metavar="N",
                   help="shift each training image by up to N pixels (0 = off; the accuracy "
                        "recipe uses 1)")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="X",
                   help="label smoothing of the cross-entropy (0 = off; the recipe uses 0.1)")
    p.add_argument("--spike-reg", type=float, default=SPIKE_REG, metavar="X",
                   help="add X times the hidden layers' firing rate (spikes per neuron and "
                   f"step) to the loss: fewer events on the device (default "
                   f"{SPIKE_REG:g}; 0 = off; see benchmarks/fewer_events.py)")
    p.add_argument("--method", choices=METHODS, default="surrogate")
    p.add_argument("--train-limit", type=positive_int,
                   help="use the first N training samples")
    p.add_argument("--test-limit", type=positive_int, help="use the first N test samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else $EDGESNN_DATA)")
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last epoch")
    p.add_argument("--threads", type=positive_int,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Any:
    from edgesnn.snn.config import SNNConfig

    if args.hidden is not None and args.layers is not None:
        raise CliError("give either --hidden or --layers, not both")
    hidden = args.layers if args.layers is not None else (
        args.hidden if args.hidden is not None else SNNConfig().hidden)
    beta = args.beta if args.beta is not None else (1.0 if args.neuron == "if" else 0.9)
    return SNNConfig(hidden=hidden, steps=args.steps, encoder=args.encoder,
                     encoder_seed=args.encoder_seed, neuron=args.neuron, reset=args.reset,
                     beta=beta, threshold=args.threshold, learn_beta=args.learn_beta,
                     learn_threshold=args.learn_threshold, per_neuron=args.per_neuron,
                     surrogate=args.surrogate, slope=args.slope, bias=args.bias)


def run(args: argparse.Namespace) -> int:
    from edgesnn.data import ChecksumError, DataError
    from edgesnn.snn.checkpoint import CheckpointError
    from edgesnn.snn.config import ConfigError
    from edgesnn.snn.train import TrainError, TrainOptions

    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out} is a file; give a run directory (a new one, or an "
                       "earlier run with --resume)")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        config = _config(args).validate()
        opts = TrainOptions(batch_size=args.batch_size, schedule=args.schedule,
                            train_limit=args.train_limit, test_limit=args.test_limit,
                            seed=args.seed, dataset=args.dataset, resume=args.resume,
                            augment_shift=args.augment_shift,
                            label_smoothing=args.label_smoothing, spike_reg=args.spike_reg,
                            progress=not args.no_progress and not args.json)
        if args.epochs is not None:
            opts.epochs = args.epochs
        if args.lr is not None:
            opts.lr = args.lr
        if args.loss_scale is not None:
            opts.loss_scale = args.loss_scale
        opts.validate()
        if args.method == "convert":
            from edgesnn.snn.convert import ConvertOptions, convert_and_save

            metrics = convert_and_save(config, opts, ConvertOptions(
                epochs=args.epochs or 3, lr=args.lr or 3e-3,
                batch_size=args.batch_size), args.out, args.data_dir)
        else:
            from edgesnn.snn.train import train

            metrics = train(config, opts, args.out, args.data_dir)
    except (ConfigError, TrainError, DataError, ChecksumError, CheckpointError) as exc:
        raise CliError(str(exc)) from exc
    if metrics.get("rank", 0) != 0:
        return 0
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        print(f"{args.out}: test accuracy {metrics['test_accuracy']:.4f} on "
              f"{metrics['test_samples']} samples ({metrics['method']}, "
              f"{metrics['train_time_s']:.1f} s)")
    return 0

"""``edgesnn tune OUT --device NAME``: device-aware architecture search (Optuna)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.cli import CliError, count, fraction, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="device-aware search: golden accuracy vs predicted device cost",
        description="Multi-objective Optuna search over hidden size, T, encoder, sparsity, "
        "weight bits and spike-regularizer strength: maximize golden accuracy, minimize the "
        "device cost per inference predicted by a linear model calibrated from measured "
        "counts on the device; the profile's flash and RAM are constraints. The Pareto "
        "candidates are measured on the device at the end. Writes OUT/tune.json, "
        "OUT/costmodel.json, OUT/pareto.png and one run folder per trial (OUT/trials/N). "
        "Extra machines join with the same --storage and --worker.")
    p.add_argument("out", type=Path, metavar="OUT")
    p.add_argument("--device", required=True, metavar="NAME", help="device profile")
    p.add_argument("--trials", type=positive_int, default=20,
                   help="trials in the study, all workers together (default 20)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes on this machine (default 1)")
    p.add_argument("--storage", default=None, metavar="URL|FILE",
                   help="Optuna storage shared by all workers: a journal file (default "
                   "OUT/journal.log) or an RDB URL such as postgresql://user@host/db")
    p.add_argument("--study-name", default="edgesnn-tune")
    p.add_argument("--worker", action="store_true",
                   help="only run trials of the study in --storage (another machine's "
                   "coordinator calibrates and measures)")
    p.add_argument("--measure", type=count, default=3, metavar="K",
                   help="measure the K cheapest Pareto candidates on the device (default 3)")
    p.add_argument("--measure-samples", type=positive_int, default=50)
    p.add_argument("--calibrate-models", type=positive_int, default=6,
                   help="synthetic models measured to calibrate the cost model (default 6, "
                   "at most 8)")
    p.add_argument("--calibrate-samples", type=positive_int, default=12,
                   help="digits per calibration model; one in three is held out (default 12)")
    p.add_argument("--train-limit", type=positive_int, default=2000,
                   help="training images per trial (default 2000)")
    p.add_argument("--test-limit", type=positive_int, default=500,
                   help="test images for each trial's golden accuracy (default 500)")
    p.add_argument("--epochs", type=positive_int, default=1, help="epochs per trial")
    p.add_argument("--qat-epochs", type=count, default=0, help="QAT epochs per trial")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--steps", type=positive_int, nargs="+", default=[4, 8, 16])
    p.add_argument("--encoders", nargs="+", choices=("rate", "latency"),
                   default=["rate", "latency"])
    p.add_argument("--sparsity", type=fraction, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    p.add_argument("--weight-bits", type=int, nargs="+", choices=(4, 8), default=[4, 8])
    p.add_argument("--spike-reg", type=positive_float, nargs=2, default=[1e-4, 1e-1],
                   metavar=("LOW", "HIGH"),
                   help="log-uniform range of the spike-count regularizer (default 1e-4 0.1)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/")
    p.add_argument("--no-plot", action="store_true", help="skip OUT/pareto.png")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.pipeline.tune import TuneOptions, run_tune

    opts = TuneOptions(
        out=args.out, device=args.device, trials=args.trials, workers=args.workers,
        storage=args.storage, study_name=args.study_name, worker=args.worker,
        measure=args.measure, measure_samples=args.measure_samples,
        calibrate_models=args.calibrate_models, calibrate_samples=args.calibrate_samples,
        train_limit=args.train_limit, test_limit=args.test_limit, epochs=args.epochs,
        qat_epochs=args.qat_epochs, seed=args.seed, hidden=tuple(args.hidden),
        steps=tuple(args.steps), encoders=tuple(args.encoders),
        sparsity=tuple(args.sparsity), weight_bits=tuple(args.weight_bits),
        spike_reg=(args.spike_reg[0], args.spike_reg[1]), data_dir=args.data_dir,
        plot=not args.no_plot)
    try:
        out = run_tune(opts)
    except ImportError as exc:
        raise CliError(f"{exc}; install the search extra: pip install 'edgesnn[tune]'") from exc
    except (ValueError, RuntimeError, OSError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(out, default=str))
    elif out.get("worker"):
        print(f"worker ran {out['trials_run']} trial(s) of study {out['study']}")
    else:
        print_summary(out)
    return 0


def print_summary(out: dict) -> None:
    cal = out["cost_model"]["calibration"]
    unit = out["unit"]
    print(f"cost model for {out['device']} ({unit}): {cal['models']} models, "
          f"{cal['samples']} samples; held-out error {cal['held_out_mape_pct']:.2f} % mean, "
          f"{cal['held_out_max_pct']:.2f} % max")
    print(f"trials: {out['n_complete']} complete ({out['n_infeasible']} do not fit), "
          f"{out['n_failed']} failed")
    print(f"{'trial':>5}  {'accuracy':>8}  {'predicted':>10}  {'measured':>10}  {'err %':>6}"
          "  params")
    for t in out["pareto"]:
        meas = t.get("measured_cost")
        print(f"{t['number']:>5}  {100 * t['golden_accuracy']:>7.2f}%  "
              f"{t['predicted_cost']:>10,.0f}  "
              f"{'' if meas is None else f'{meas:,.0f}':>10}  "
              f"{'' if meas is None else format(t['error_pct'], '+.2f'):>6}  {t['params']}")
    me = out["measured_error"]
    if me["candidates"]:
        print(f"measured {me['candidates']} candidate(s): prediction error "
              f"{me['mape_pct']:.2f} % mean, {me['max_pct']:.2f} % max")
    if out.get("plot"):
        print(f"wrote {out['plot']}")

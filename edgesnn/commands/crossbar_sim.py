"""``edgesnn crossbar-sim FILE.json``: Monte-Carlo simulation of a crossbar description."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.cli import CliError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crossbar-sim",
        help="simulate a crossbar description (noise, faults, drift, ADC) against golden",
        description="Run the SNN of a crossbar description (edgesnn export --target crossbar) "
        "through its mapped arrays with device non-idealities, Monte-Carlo over trials; "
        "report accuracy, agreement with the golden integer model, energy and latency.",
    )
    p.add_argument("description", type=Path, metavar="FILE.json")
    p.add_argument("--samples", type=int, default=500, help="test images (default 500)")
    p.add_argument("--trials", type=int, default=5, help="Monte-Carlo trials (default 5)")
    p.add_argument("--ideal", action="store_true",
                   help="all non-idealities off (only conductance quantization remains)")
    p.add_argument("--sweep", metavar="NAME=A:B:STEP",
                   help="sweep variation|programming|read|stuck|time, e.g. "
                   "variation=0:0.2:0.02 or stuck=0,0.01,0.05")
    p.add_argument("--variation", type=float, help="device-to-device sigma override")
    p.add_argument("--stuck-rate", type=float, help="total stuck-at rate override")
    p.add_argument("--stuck-map", type=Path, help="measured stuck-at map (.npy or JSON)")
    p.add_argument("--remap", action="store_true",
                   help="fault-aware remapping (with --stuck-map, a sampled map per trial "
                   "otherwise); reports before/after")
    p.add_argument("--time", type=float, dest="time_s", metavar="S",
                   help="seconds after programming (drift)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder holding mnist/ (default $EDGESNN_DATA)")
    p.add_argument("--plot-dir", type=Path, help="where sweep PNGs go (default: next to FILE)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _float_accuracy(source: str, pixels: np.ndarray, labels: np.ndarray) -> float | None:
    run_dir = Path(source) if source else None
    if run_dir is None or not (run_dir / "model.pt").is_file():
        return None
    try:
        from edgesnn.compress.pipeline import float_predict
        from edgesnn.snn.checkpoint import load

        model, _ = load(run_dir)
        return float(np.mean(float_predict(model, pixels) == labels))
    except Exception as exc:  # noqa: BLE001 - the float model is optional extra information
        log.warning("float accuracy unavailable (%s)", exc)
        return None


def run(args: argparse.Namespace) -> int:
    from edgesnn.crossbar.description import DescriptionError, read_description
    from edgesnn.crossbar.evaluate import evaluate, parse_sweep, plot_sweep, stuck_split, sweep
    from edgesnn.crossbar.faults import FaultMapError, fit_to, load_stuck_map
    from edgesnn.crossbar.sim import Conditions

    if args.samples < 1 or args.trials < 1:
        raise CliError("--samples and --trials must be >= 1")
    try:
        model = read_description(args.description)
    except DescriptionError as exc:
        raise CliError(str(exc)) from exc
    dataset = model.doc["provenance"].get("dataset") or "mnist"
    try:
        from edgesnn.data import load_dataset

        ds = load_dataset(dataset, "test", args.data_dir, limit=args.samples)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot load {dataset} test images: {exc}") from exc
    if ds.images.shape[1] != model.spec.input_size:
        raise CliError(f"{dataset} images have {ds.images.shape[1]} pixels; the model takes "
                       f"{model.spec.input_size}")
    pixels, labels = ds.images, ds.labels
    cond = Conditions(ideal=args.ideal, time_s=args.time_s)
    if args.variation is not None:
        cond = dataclasses.replace(cond, variation_sigma=args.variation)
    if args.stuck_rate is not None:
        p0, p1 = stuck_split(model, args.stuck_rate)
        cond = dataclasses.replace(cond, stuck_at_gmin=p0, stuck_at_gmax=p1)
    stuck = model.fault_map
    if args.stuck_map is not None:
        try:
            stuck = load_stuck_map(args.stuck_map)
        except FaultMapError as exc:
            raise CliError(str(exc)) from exc
    if stuck is not None:
        try:
            stuck = fit_to(stuck, model.mapping.arrays_used, model.profile.rows,
                           model.profile.cols, str(args.stuck_map or "of the description"))
        except FaultMapError as exc:
            raise CliError(str(exc)) from exc
        cond = dataclasses.replace(cond, stuck_map=stuck)
    out: dict[str, Any] = {"description": str(args.description), "device": model.profile.name,
                           "model_hash": model.doc["provenance"]["model_hash"],
                           "dataset": dataset, "ideal": args.ideal, "time_s": args.time_s}
    if args.sweep:
        try:
            name, values = parse_sweep(args.sweep)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        rows = sweep(model, pixels, labels, name, values, trials=args.trials, base=cond,
                     seed=args.seed, remap_faults=args.remap)
        plot_dir = args.plot_dir or args.description.parent
        plot_dir.mkdir(parents=True, exist_ok=True)
        png = plot_dir / f"{args.description.stem}.sweep-{name}.png"
        plot_sweep(rows, name, str(png), f"{model.profile.name}: accuracy vs {name} "
                   f"({len(pixels)} samples x {args.trials} trials)")
        base = rows[0]
        out.update({k: base[k] for k in ("accuracy", "accuracy_std", "golden_accuracy",
                                          "agreement_with_golden", "energy_per_inference_pj",
                                          "energy_breakdown", "latency_per_inference_s")})
        out["sweep"] = {"param": name, "plot": str(png),
                        "points": [{k: r.get(k) for k in (
                            "value", "accuracy", "accuracy_std", "agreement_with_golden",
                            "energy_per_inference_pj", "remap")} for r in rows]}
    else:
        res = evaluate(model, pixels, labels, trials=args.trials, cond=cond, seed=args.seed,
                       remap_faults=args.remap)
        out.update(res)
    out["float_accuracy"] = _float_accuracy(model.doc["provenance"].get("source", ""),
                                            pixels, labels)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    _print_human(out)
    return 0


def _print_human(out: dict[str, Any]) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    print(f"device {out['device']}  model {out['model_hash'][:12]}  samples {out.get('samples')}"
          f"  trials {out.get('trials')}  ideal={out['ideal']}")
    print(f"accuracy {pct(out['accuracy'])} ± {pct(out['accuracy_std'])}   golden "
          f"{pct(out['golden_accuracy'])}   float {pct(out['float_accuracy'])}   agreement "
          f"{pct(out['agreement_with_golden'])}")
    e = out["energy_breakdown"]
    print(f"energy/inference {out['energy_per_inference_pj'] / 1000:.3f} nJ  (cells "
          f"{e['cell_reads_pj']:.0f} pJ, ADC {e['adc_pj']:.0f} pJ, neurons "
          f"{e['neuron_updates_pj']:.0f} pJ, adds {e['digital_adds_pj']:.0f} pJ)   latency "
          f"{out['latency_per_inference_s'] * 1e6:.3f} µs")
    if out.get("remap"):
        r = out["remap"]
        print(f"fault-aware remap: accuracy {pct(r['accuracy_before'])} -> "
              f"{pct(r['accuracy_after'])}")
    if out.get("sweep"):
        print(f"sweep {out['sweep']['param']} (plot {out['sweep']['plot']}):")
        for pnt in out["sweep"]["points"]:
            extra = ""
            if pnt.get("remap"):
                extra = f"  remapped {pct(pnt['remap']['accuracy_after'])}"
            print(f"  {pnt['value']:<8g} accuracy {pct(pnt['accuracy'])} ± "
                  f"{pct(pnt['accuracy_std'])}{extra}")

"""``edgesnn crossbar-sim FILE.json``: Monte-Carlo simulation of a crossbar description."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError


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


def run(args: argparse.Namespace) -> int:
    from edgesnn.pipeline import crossbar_sim

    try:
        out = crossbar_sim(args.description, samples=args.samples, trials=args.trials,
                           ideal=args.ideal, sweep=args.sweep, variation=args.variation,
                           stuck_rate=args.stuck_rate, stuck_map=args.stuck_map,
                           remap=args.remap, time_s=args.time_s, seed=args.seed,
                           data_dir=args.data_dir, plot_dir=args.plot_dir)
    except ValueError as exc:  # DescriptionError, FaultMapError, bad option or data
        raise CliError(str(exc)) from exc
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

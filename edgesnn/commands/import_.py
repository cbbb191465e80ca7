"""``edgesnn import FILE.nir|FILE.onnx --out RUN_DIR``: bring a model from another tool."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesnn.cli import CliError
from edgesnn.snn.config import FIRES, READOUTS, RESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import a NIR or ONNX model into a new run directory",
        description="Import FILE (.nir: NIR graph, e.g. from snnTorch's export_to_nir; .onnx: "
        "a float graph written by `edgesnn export --target onnx`) into RUN_DIR (model.pt + "
        "config.json + import.json). Nothing is written on failure.",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR",
                   help="new run directory (must not exist, or be empty)")
    p.add_argument("--dt", type=float, default=None,
                   help="NIR time step in seconds (default: the file's edgesnn metadata, else "
                   "1e-4 as snnTorch writes); beta = 1 - dt/tau")
    p.add_argument("--reset", choices=RESETS, default=None,
                   help="reset mode (default: the file's edgesnn metadata, else 'zero', NIR's "
                   "reset to v_reset); snnTorch Leaky's default reset_mechanism='subtract' is "
                   "'subtract_delayed'; SpikingJelly's soft reset is 'subtract', Norse's and "
                   "hard resets to 0 are 'zero'")
    p.add_argument("--fire", choices=FIRES, default=None,
                   help="threshold rule: 'gt' v > theta (NIR, snnTorch, Norse; default), 'ge' "
                   "v >= theta (SpikingJelly)")
    p.add_argument("--readout", choices=READOUTS, default=None,
                   help="prediction: 'count' = argmax of the spike counts, lowest index on ties "
                   "(the peers'; default for files without edgesnn metadata), 'count_membrane' "
                   "= ties broken by the larger final membrane (edgesnn's)")
    p.add_argument("--cuba-input", choices=("euler", "jump"), default=None,
                   help="CubaLIF synaptic input: 'euler' = NIR's Euler step, input scaled by "
                   "dt/tau_syn (snnTorch Synaptic; default), 'jump' = I += W*S unscaled (Norse "
                   "LIFCell, whose exporter writes no w_in)")
    p.add_argument("--steps", type=int, default=None, help="time steps T (default: metadata or 25)")
    p.add_argument("--encoder", choices=("rate", "latency", "direct"), default=None,
                   help="input encoder (default: metadata or rate)")
    p.add_argument("--encoder-seed", type=lambda s: int(s, 0), default=None,
                   help="rate-encoder seed (default: metadata or 0x1234ABCD)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesnn.interop.importers import import_file

    try:
        summary = import_file(args.file, args.out, dt=args.dt, reset=args.reset,
                              steps=args.steps, encoder=args.encoder,
                              encoder_seed=args.encoder_seed, fire=args.fire,
                              readout=args.readout, cuba_input=args.cuba_input)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # InteropError, ConfigError
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        sizes = [summary["input_size"], *summary["hidden"], summary["n_classes"]]
        print(f"imported {args.file} ({summary['format']}) -> {args.out}: "
              f"{'-'.join(map(str, sizes))}, {summary['neuron']}, reset {summary['reset']}, "
              f"T={summary['steps']}")
    return 0

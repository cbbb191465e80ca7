"""MNIST accuracy of a 784-256-10 SNN on a memristor crossbar vs device non-idealities.

Grid: conductance (device-to-device) variation sigma x stuck-at rate, Monte-Carlo mean ± std
over trials, each stuck-at cell also deployed fault-aware (remap + differential compensation,
same conductance draw); plus the ideal crossbar, the golden integer model, energy per
inference with its breakdown, and latency.

    python benchmarks/crossbar.py [--run-dir RUN] [--device rram-1t1r] [--samples 500]
                                  [--trials 3] [--json]

Without ``--run-dir`` it trains a quick 784-256-10 (T = 10) with edgesnn's API and compresses
it (int8) first. Prints a markdown table (``--json``: one JSON object).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgesnn.crossbar.description import read_description  # noqa: E402
from edgesnn.crossbar.evaluate import evaluate, stuck_split  # noqa: E402
from edgesnn.crossbar.sim import Conditions  # noqa: E402
from edgesnn.export.crossbar import export_crossbar, run_dataset  # noqa: E402

log = logging.getLogger("bench.crossbar")
SIGMAS = (0.0, 0.02, 0.05, 0.10, 0.20)
STUCK = (0.0, 0.01, 0.05)


def make_run(out: Path, data_dir: str | None, train_limit: int, epochs: int) -> Path:
    from edgesnn.compress import compress_run
    from edgesnn.snn import SNNConfig
    from edgesnn.snn.train import TrainOptions, train

    run = out / "run-784-256-10"
    if not (run / "model.pt").is_file():
        cfg = SNNConfig(hidden=[256], steps=10, encoder="rate", neuron="lif",
                        reset="subtract", beta=0.9, threshold=1.0)
        train(cfg, TrainOptions(epochs=epochs, batch_size=128, lr=5e-3,
                                train_limit=train_limit, test_limit=1000, seed=0,
                                progress=False), run, data_dir=data_dir)
    if not (run / "model.esg").is_file():
        compress_run(run, weight_bits=8, per_channel=True, train_limit=train_limit,
                     test_limit=1000, data_dir=data_dir, seed=0)
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--device", default="rram-1t1r")
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigmas", default=",".join(str(s) for s in SIGMAS))
    ap.add_argument("--stuck", default=",".join(str(s) for s in STUCK))
    ap.add_argument("--out-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "edgesnn-bench-crossbar",
                    help="where the trained run and the description go")
    ap.add_argument("--data-dir", default=os.environ.get("EDGESNN_DATA"))
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="export option / profile override, e.g. technology.levels=128")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if not args.json else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    run = args.run_dir or make_run(args.out_dir, args.data_dir, args.train_limit, args.epochs)
    options = {}
    for kv in args.option:
        k, v = kv.split("=", 1)
        options[k] = json.loads(v) if v[:1].isdigit() or v[:1] in "-[{tf" else v
    desc = args.out_dir / f"{args.device}.json"
    export_crossbar(run / "model.esg", desc, args.device, source=str(run.resolve()),
                    dataset=run_dataset(run), data_dir=args.data_dir, seed=args.seed,
                    **options)
    model = read_description(desc)
    from edgesnn.data import load_dataset
    from edgesnn.graph.golden import simulate as golden

    ds = load_dataset(model.doc["provenance"].get("dataset") or "mnist", "test",
                      args.data_dir, limit=args.samples)
    px, labels = ds.images, ds.labels
    gold = golden(model.graph, px).pred
    ideal = evaluate(model, px, labels, cond=Conditions(ideal=True), golden_pred=gold)
    sigmas = [float(x) for x in args.sigmas.split(",")]
    stucks = [float(x) for x in args.stuck.split(",")]
    grid = []
    for sigma in sigmas:
        for rate in stucks:
            p0, p1 = stuck_split(model, rate)
            cond = Conditions(variation_sigma=sigma, stuck_at_gmin=p0, stuck_at_gmax=p1)
            t0 = time.perf_counter()
            r = evaluate(model, px, labels, trials=args.trials, cond=cond, seed=args.seed,
                         remap_faults=rate > 0, golden_pred=gold)
            cell = {"sigma": sigma, "stuck_rate": rate, "accuracy": r["accuracy"],
                    "accuracy_std": r["accuracy_std"],
                    "agreement_with_golden": r["agreement_with_golden"],
                    "energy_per_inference_pj": r["energy_per_inference_pj"],
                    "seconds": time.perf_counter() - t0}
            if "remap" in r:
                cell["remap_accuracy"] = r["remap"]["accuracy_after"]
                cell["remap_accuracy_std"] = r["remap"]["accuracy_after_std"]
            grid.append(cell)
            log.info("sigma=%.2f stuck=%.2f: %.4f ± %.4f%s (%.0f s)", sigma, rate,
                     r["accuracy"], r["accuracy_std"],
                     f" remapped {cell['remap_accuracy']:.4f}" if "remap_accuracy" in cell
                     else "", cell["seconds"])
            if sigma == 0 and rate == 0:
                base = r
    prof = model.profile
    result = {
        "device": prof.name, "run_dir": str(run), "model_hash": model.doc["provenance"][
            "model_hash"], "samples": len(px), "trials": args.trials,
        "arrays_used": model.mapping.arrays_used,
        "levels": prof.levels, "weight_scale": [lm.weight_scale for lm in model.mapping.layers],
        "profile_noise_fixed": {k: prof[f"noise.{k}"] for k in (
            "programming_sigma", "read_sigma")},
        "golden_accuracy": ideal["golden_accuracy"],
        "ideal_accuracy": ideal["accuracy"],
        "ideal_agreement": ideal["agreement_with_golden"],
        "grid": grid,
        "energy_per_inference_pj": base["energy_per_inference_pj"],
        "energy_breakdown": base["energy_breakdown"],
        "counts_per_inference": base["counts_per_inference"],
        "latency_per_inference_s": base["latency_per_inference_s"],
        "seconds": time.perf_counter() - t_start,
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(markdown(result, sigmas, stucks))
    return 0


def markdown(r: dict, sigmas: list[float], stucks: list[float]) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    lines = [f"Crossbar `{r['device']}` ({r['arrays_used']} arrays, {r['levels']} levels), "
             f"MNIST test first {r['samples']} images, {r['trials']} trials (mean ± std, %). "
             f"Golden integer model {pct(r['golden_accuracy'])} %, ideal crossbar "
             f"{pct(r['ideal_accuracy'])} % (agreement {pct(r['ideal_agreement'])} %). "
             f"Programming noise {r['profile_noise_fixed']['programming_sigma']}, read noise "
             f"{r['profile_noise_fixed']['read_sigma']} throughout; cells with stuck-at show "
             "naive → fault-aware remap.", "",
             "| variation σ | " + " | ".join(f"stuck {100 * s:g} %" for s in stucks) + " |",
             "|---|" + "---|" * len(stucks)]
    for sigma in sigmas:
        row = [f"{100 * sigma:g} %"]
        for s in stucks:
            c = next(c for c in r["grid"] if c["sigma"] == sigma and c["stuck_rate"] == s)
            txt = f"{pct(c['accuracy'])} ± {pct(c['accuracy_std'])}"
            if "remap_accuracy" in c:
                txt += f" → {pct(c['remap_accuracy'])} ± {pct(c['remap_accuracy_std'])}"
            row.append(txt)
        lines.append("| " + " | ".join(row) + " |")
    e = r["energy_breakdown"]
    lines += ["", f"Energy per inference (σ = 0, no faults): "
              f"{r['energy_per_inference_pj'] / 1000:.2f} nJ = cell reads "
              f"{e['cell_reads_pj'] / 1000:.2f} nJ + ADC {e['adc_pj'] / 1000:.2f} nJ + neuron "
              f"updates {e['neuron_updates_pj'] / 1000:.2f} nJ + partial-sum adds "
              f"{e['digital_adds_pj'] / 1000:.3f} nJ; latency "
              f"{r['latency_per_inference_s'] * 1e6:.2f} µs per inference."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

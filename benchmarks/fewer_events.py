"""SNNs that need fewer events: which training / compression recipe costs the fewest device
instructions at a given accuracy, side by side with the int8 ANN baselines.

Each *variant* is a 784-H-10 LIF network (rate code) trained with
:func:`edgesnn.snn.train.train` and compressed with
:func:`edgesnn.compress.pipeline.compress_run` (int8 per-channel, magnitude pruning with QAT
fine-tuning, optionally structured neuron pruning); what the variants change:

* ``T``: time steps, trained for (not a T = 25 network run at a smaller T);
* ``spike_reg``: the hidden firing rate in the loss (``edgesnn train --spike-reg``);
* ``sparsity`` / ``qat``: how much magnitude pruning, how many fine-tuning epochs;
* ``drop``: structured pruning (``--structured --structured-drop``: whole hidden neurons);
* ``learn``: learned per-neuron thresholds and leaks.

Measured per variant: golden (integer simulator) accuracy on ``--test-limit`` MNIST test
digits (default all 10,000), and instructions per inference on QEMU ``lm3s6965evb``
(Cortex-M3, ``-icount``; ``benchmarks/device_cost.py``'s runner, every RESULT bit for bit the
golden simulator's) on the first ``--samples`` test digits: mean, p50, p99, max. The int8
ANN baselines (``benchmarks/ann_baseline.py``: the 784-H-10 ReLU network trained by edgesnn,
PTQ + QAT; the dense kernel, the zero-skipping sparse kernels and the 90 %-pruned sparse
ANN) run on the same digits, and Arm CMSIS-NN's ``arm_fully_connected_s8`` is the per-MAC
figure (``ann_device.CMSIS_NN``). Break-even: the spike rate ((input + hidden
spikes) / (T * (784 + H))) at which a least-squares fit ``instructions = a + b * rate`` over
the measured digits meets the ANN's mean.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/fewer_events.py \\
        [--work DIR] [--variants NAME,...] [--samples 100] [--test-limit 10000] \\
        [--epochs 2] [--train-limit 60000] [--ann-dir DIR] [--no-ann] [--json]

Trained runs and ANNs are kept in ``--work`` (default ``runs/fewer_events``) and reused when
their recipe is unchanged, so a second call only measures. ``--threads`` sets torch's CPU
threads.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

log = logging.getLogger("fewer_events")

DEVICE = "lm3s6965evb"
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class Variant:
    """One recipe: training (``hidden``, ``steps``, ``spike_reg``, ``learn``, ``epochs`` /
    ``augment``) and compression (``sparsity``, ``qat``, ``drop``)."""

    hidden: int = 256
    steps: int = 25
    spike_reg: float = 0.0
    learn: bool = False
    sparsity: float = 0.9
    qat: int = 1
    drop: float = 0.0  # structured: fraction of the firing hidden neurons removed
    epochs: int | None = None  # None: --epochs
    augment: int = 0
    smoothing: float = 0.0  # label smoothing
    qat_train: int = 10000  # training images for calibration and QAT (compress's default)
    scope: str = "global"  # magnitude pruning: one cut over all layers, or per layer
    encoder: str = "rate"  # rate, latency or direct (layer 0's current computed once)
    qat_lr: float | None = None  # QAT learning rate (None: compress's default)


#: the candidates, cheapest idea first within each group; ``T25-s90`` is issue 11's
#: reference (README: 784-256-10, T = 25, 90 % pruned)
def rec(**changes: Any) -> Variant:
    """The accuracy recipe (8 epochs, +-1 px shifts, label smoothing 0.1, 3 QAT epochs on all
    60,000 training images) with ``changes``."""
    return Variant(**({"epochs": 8, "augment": 1, "smoothing": 0.1, "qat": 3,
                       "qat_train": 60000} | changes))


VARIANTS: dict[str, Variant] = {
    "T25-s90": Variant(steps=25),
    "T8-s90": Variant(steps=8),
    "T8-s90-reg": Variant(steps=8, spike_reg=0.3),
    "T8-s90-reg1": Variant(steps=8, spike_reg=1.0),
    "T8-s95": Variant(steps=8, sparsity=0.95, qat=2),
    "T8-s97": Variant(steps=8, sparsity=0.97, qat=2),
    "T8-s90-drop50": Variant(steps=8, drop=0.5),
    "T8-s90-learn": Variant(steps=8, learn=True),
    "T4-s90": Variant(steps=4),
    "T8-s95-reg-drop30": Variant(steps=8, sparsity=0.95, qat=2, spike_reg=0.3, drop=0.3),
    "T8-s95-long": Variant(steps=8, sparsity=0.95, qat=2, epochs=6, augment=1),
    # fine-tuning on all 60,000 training images (compress's default is 10,000)
    "T25-s90-q3": Variant(steps=25, qat=3, qat_train=60000),
    "T8-s90-q3": Variant(steps=8, qat=3, qat_train=60000),
    "T8-s90-q1full": Variant(steps=8, qat=1, qat_train=60000),
    "T8-s90-q3-10k": Variant(steps=8, qat=3),
    "T8-s95-q3": Variant(steps=8, sparsity=0.95, qat=3, qat_train=60000),
    # the accuracy recipe (8 epochs, +-1 px shifts, label smoothing 0.1) trained at T = 8
    "T8-rec-s90": rec(steps=8),
    "T6-rec-s90": rec(steps=6),
    "T6-rec-s90-q6": rec(steps=6, qat=6),
    "T6-rec12-s90": Variant(steps=6, epochs=12, augment=1, smoothing=0.1, qat=4,
                            qat_train=60000),
    "T8-rec-s95": rec(steps=8, sparsity=0.95),
    "T8-rec-s97": rec(steps=8, sparsity=0.97),
    "T8-rec-s95-drop30": rec(steps=8, sparsity=0.95, drop=0.3),
    "T4-rec-s90": rec(steps=4),
    "T4-rec-s95": rec(steps=4, sparsity=0.95),
    # edgesnn run's network (784-128-10, 1 epoch on all 60,000 images): as run compresses it
    # (dense int8, T = 12), and pruned
    "run-T12-dense": Variant(hidden=128, steps=12, epochs=1, sparsity=0.0, qat=0),
    "run-T12-s90": Variant(hidden=128, steps=12, epochs=1),
    "run-T8-s90": Variant(hidden=128, steps=8, epochs=1),
    "run-T8-s90-full": Variant(hidden=128, steps=8, epochs=1, qat_train=60000),
    "run-T8-s80": Variant(hidden=128, steps=8, epochs=1, sparsity=0.8),
    "run-T4-s90": Variant(hidden=128, steps=4, epochs=1),
    # direct encoding: the pixels are layer 0's constant input current, computed once per
    # inference (SPEC 3.1), so input events no longer scale with T
    "T4-dir-s90": rec(steps=4, encoder="direct"),
    "T6-dir-s90": rec(steps=6, encoder="direct"),
    "T8-dir-s90": rec(steps=8, encoder="direct"),
    "T4-dir-s95": rec(steps=4, encoder="direct", sparsity=0.95),
    "T6-dir-s80": rec(steps=6, encoder="direct", sparsity=0.8),
    "T6-dir-s70": rec(steps=6, encoder="direct", sparsity=0.7),
    "T8-dir-s80": rec(steps=8, encoder="direct", sparsity=0.8),
    "T6-dir16-s80": Variant(steps=6, encoder="direct", epochs=16, augment=1, smoothing=0.1,
                            sparsity=0.8, qat=3, qat_train=60000),
    "T6-dir-s90-q6": rec(steps=6, encoder="direct", qat=6),
    "T6-dir-h512-s95": rec(hidden=512, steps=6, encoder="direct", sparsity=0.95),
    "T12-dir-s90": rec(steps=12, encoder="direct"),
    # the QAT learning rate: compress's default (0.02 * qmax = 2.54 for int8) is too high
    # unless pruning to 90 %
    "T8-dir-s80-lr": rec(steps=8, encoder="direct", sparsity=0.8, qat_lr=0.25),
    "T8-dir-s85-lr": rec(steps=8, encoder="direct", sparsity=0.85, qat_lr=0.25),
    "T8-dir-s0-lr": rec(steps=8, encoder="direct", sparsity=0.0, qat=1, qat_lr=0.25),
    "T8-dir-h512-s90-lr": rec(hidden=512, steps=8, encoder="direct", sparsity=0.9, qat_lr=0.25),
    "T8-dir-s80-lr-q6": rec(steps=8, encoder="direct", sparsity=0.8, qat=6, qat_lr=0.25),
    "T8-dir-s70-lr": rec(steps=8, encoder="direct", sparsity=0.7, qat_lr=0.25),
    # latency code: every nonzero pixel spikes once, brighter earlier
    "T8-lat-s80-lr": rec(steps=8, encoder="latency", sparsity=0.8, qat_lr=0.25),
    "T8-dir-h512-s90": rec(hidden=512, steps=8, encoder="direct", sparsity=0.9),
    "T8-dir-h512-s85-lr": rec(hidden=512, steps=8, encoder="direct", sparsity=0.85, qat_lr=0.25),
    "T8-rec-h512-s975": rec(hidden=512, steps=8, sparsity=0.975),
}
#: what the README's table measures (about 40 minutes on 2 busy cores from nothing, ANNs
#: included; 10 with every run kept in --work)
DEFAULT_VARIANTS = ("T25-s90", "T25-s90-q3", "T8-s90", "T8-s90-q1full", "T8-s90-q3-10k",
                    "T8-s90-q3", "T8-s90-reg", "T8-s90-reg1", "T8-s90-learn", "T8-s95-q3",
                    "T8-s90-drop50", "T8-rec-s90", "T8-rec-s95", "T8-rec-s97",
                    "T8-rec-s95-drop30", "T8-rec-h512-s975", "T6-rec-s90", "T4-s90",
                    "T4-rec-s90", "T4-rec-s95", "run-T12-dense", "run-T12-s90", "run-T8-s90",
                    "run-T8-s90-full", "run-T8-s80", "run-T4-s90", "T8-dir-s90",
                    "T8-dir-s80-lr", "T8-dir-s85-lr", "T8-dir-s70-lr", "T8-dir-s0-lr",
                    "T8-dir-h512-s90-lr", "T8-lat-s80-lr")


TRAIN_FIELDS = ("hidden", "steps", "spike_reg", "learn", "epochs", "augment", "smoothing",
                "encoder")


def recipes(v: Variant, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training recipe, compression recipe) of ``v``: what decides whether a kept run can be
    reused (a variant that differs only in compression reuses another's trained model)."""
    d = asdict(v)
    for key, default in (("encoder", "rate"), ("qat_lr", None)):
        if d[key] == default:  # runs kept from before the field existed stay valid
            del d[key]
    train = {k: d[k] for k in TRAIN_FIELDS if k in d} | {
        "epochs": v.epochs or args.epochs, "train_limit": args.train_limit, "seed": args.seed}
    comp = {k: d[k] for k in d if k not in TRAIN_FIELDS} | {"test_limit": args.test_limit}
    return train, comp


def train_and_compress(name: str, v: Variant, work: Path, args: argparse.Namespace,
                       ) -> dict[str, Any]:
    """Train and compress ``v`` into ``work/name`` (reused when its recipe is unchanged)."""
    from edgesnn.compress.pipeline import compress_run
    from edgesnn.snn.config import SNNConfig
    from edgesnn.snn.train import TrainOptions, train

    run_dir = work / name
    train_recipe, comp_recipe = recipes(v, args)
    recipe = {"train": train_recipe, "compress": comp_recipe}
    done = run_dir / RECIPE_FILE
    if done.is_file() and json.loads(done.read_text()) == recipe:
        log.info("%s: trained and compressed before, reused", name)
        return {"train": json.loads((run_dir / "train.json").read_text()),
                "compress": json.loads((run_dir / "compress.json").read_text()),
                "reused": True}
    shutil.rmtree(run_dir, ignore_errors=True)
    same = [f.parent for f in sorted(work.glob(f"*/{RECIPE_FILE}"))
            if json.loads(f.read_text())["train"] == train_recipe]
    if same:  # the same training: copy the trained model, compress it afresh
        run_dir.mkdir()
        for part in ("model.pt", "config.json", "train.json"):
            shutil.copy2(same[0] / part, run_dir / part)
        trained = json.loads((run_dir / "train.json").read_text())
        log.info("%s: trained as %s, copied", name, same[0].name)
    else:
        cfg = SNNConfig(hidden=[v.hidden], steps=v.steps, encoder=v.encoder,
                        learn_threshold=v.learn,
                        learn_beta=v.learn, per_neuron=v.learn)
        opts = TrainOptions(epochs=v.epochs or args.epochs, train_limit=args.train_limit,
                            test_limit=args.test_limit, seed=args.seed,
                            spike_reg=v.spike_reg, augment_shift=v.augment,
                            label_smoothing=v.smoothing, progress=False)
        log.info("%s: training %s ...", name, v)
        trained = train(cfg, opts, run_dir, data_dir=args.data_dir)
    log.info("%s: float %.4f; compressing ...", name, trained["test_accuracy"])
    summary = compress_run(run_dir, sparsity=v.sparsity, qat_epochs=v.qat,
                           structured=v.drop > 0, structured_drop=v.drop,
                           train_limit=v.qat_train, prune_scope=v.scope, qat_lr=v.qat_lr,
                           test_limit=args.test_limit, data_dir=args.data_dir,
                           seed=args.seed)
    log.info("%s: golden %.4f, layers %s", name, summary["golden_accuracy"],
             summary["layer_sizes"])
    done.write_text(json.dumps(recipe, sort_keys=True))
    return {"train": trained, "compress": summary, "reused": False}


def measure_snn(name: str, run_dir: Path, pixels: np.ndarray, work: Path, opt: str,
                port: str) -> dict[str, Any]:
    import device_cost
    from ann_baseline import fit_rate, stats

    from edgesnn.graph import esg

    graph = esg.read_esg(run_dir / "model.esg")
    sub = work / "builds" / f"{name}-{port}"
    shutil.rmtree(sub, ignore_errors=True)  # the runner creates its folders afresh
    sub.mkdir(parents=True)
    run = device_cost.run_snn(name.replace(".", "_"), graph, pixels, sub, opt, device=port)
    a, b = fit_rate(run.cycles, run.rate)
    return {**stats(run.cycles), "fit": {"a": a, "b": b},
            "spike_rate_mean": float(run.rate.mean()),
            "input_rate_mean": float(run.input_rate.mean()),
            "hidden_rate_mean": float(run.hidden_rate.mean()),
            "synaptic_ops_mean": float(run.ops.mean()),
            "image_text_bytes": run.text_bytes, "esg_bytes": run.esg_bytes,
            "arena_bytes": run.arena_bytes}


def ann_rows(args: argparse.Namespace, work: Path, ports: list[str], test: Any,
             pixels: np.ndarray) -> dict[str, Any]:
    """ann_baseline.py's rows (trained into ``work/ann`` once, or read from ``--ann-dir``)."""
    import ann_baseline

    if args.ann_dir is not None:
        base = args.ann_dir
    else:
        base = work / "ann"
        if not ((base / "ann-dense").is_dir() and (base / "ann-pruned").is_dir()):
            log.info("training the ANN baselines (dense, and 90 %% pruned) ...")
            ann_baseline.train_anns(base, args.hidden, 0.10, args.ann_epochs, 2, args.seed)
    dirs = ann_baseline.ann_dirs(base)
    ns = argparse.Namespace(opt=args.opt, snn_run=None)
    r = ann_baseline.measure(dirs, ns, ports, [], test, pixels, work / "ann-builds")
    return r["rows"]


#: "equal accuracy" (issue 11): golden accuracies within 0.3 percentage points
EQUAL_PP = 0.003


def equal_accuracy_ann(accuracy: float, anns: dict[str, Any], port: str) -> str | None:
    """The cheapest ANN row (mean instructions on ``port``) within :data:`EQUAL_PP` of
    ``accuracy``, or None."""
    near = [(a["ports"][port]["mean"], name) for name, a in anns.items()
            if abs(a["golden_accuracy"] - accuracy) <= EQUAL_PP + 1e-12
            and a["ports"].get(port, {}).get("mean")]
    return min(near)[1] if near else None


def break_even(fit: dict[str, float], ref: float | None) -> float | None:
    if ref is None or fit["b"] <= 0:
        return None
    return (ref - fit["a"]) / fit["b"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "fewer_events",
                    help="where runs, ANNs and builds are kept (default runs/fewer_events)")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma-separated, of: {', '.join(VARIANTS)}")
    ap.add_argument("--samples", type=int, default=100,
                    help="test digits run on the device (default 100)")
    ap.add_argument("--test-limit", type=int, default=10000,
                    help="test digits for golden accuracy (default 10000)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs (default 2)")
    ap.add_argument("--train-limit", type=int, default=60000)
    ap.add_argument("--hidden", type=int, default=256, help="ANN hidden size (default 256)")
    ap.add_argument("--ann-dir", type=Path, help="ann_baseline.py's trained ANNs (ann-dense/, "
                    "ann-pruned/); else trained into WORK/ann")
    ap.add_argument("--ann-epochs", type=int, default=12)
    ap.add_argument("--no-ann", action="store_true", help="leave the ANN baselines out")
    ap.add_argument("--ports", default=DEVICE, help=f"QEMU boards (default {DEVICE}; "
                    "mps2-an386 for the Cortex-M4)")
    ap.add_argument("--opt", default="-Os", help="gcc optimisation of every firmware")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--render", action="store_true",
                    help="only print the table of WORK/fewer_events.json (the last run's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.render:
        print_table(json.loads((args.work / "fewer_events.json").read_text()))
        return 0
    names = [n for n in args.variants.split(",") if n]
    bad = [n for n in names if n not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {', '.join(bad)}; accepted: {', '.join(VARIANTS)}")
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; this benchmark needs it")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from edgesnn.data import load_dataset

    ports = [p for p in args.ports.split(",") if p]
    t0 = time.monotonic()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    test = load_dataset("mnist", "test", args.data_dir, limit=args.test_limit)
    pixels = test.images[:args.samples]
    rows: dict[str, Any] = {}
    for name in names:
        v = VARIANTS[name]
        made = train_and_compress(name, v, work, args)
        comp = made["compress"]
        row: dict[str, Any] = {
            "recipe": asdict(v), "float_accuracy": made["train"]["test_accuracy"],
            "golden_accuracy": comp["golden_accuracy"], "test_samples": comp["test_samples"],
            "layer_sizes": comp["layer_sizes"], "sparsity": comp["sparsity"],
            "esg_bytes": comp["esg_bytes"], "train_time_s": made["train"]["train_time_s"],
            "ports": {}}
        for port in ports:
            log.info("%s on %s: %d inferences ...", name, port, len(pixels))
            row["ports"][port] = measure_snn(name, work / name, pixels, work, args.opt, port)
            log.info("%s on %s: mean %.0f instructions", name, port,
                     row["ports"][port]["mean"])
        rows[name] = row
    anns = {} if args.no_ann else ann_rows(args, work, ports, test, pixels)
    from ann_baseline import CMSIS_NN

    macs = 784 * args.hidden + args.hidden * 10
    for row in rows.values():
        for port, p in row["ports"].items():
            cmsis = CMSIS_NN.get(port)
            p["x_cmsis_nn"] = p["mean"] / (cmsis * macs) if cmsis else None
            p["max_x_cmsis_nn"] = p["max"] / (cmsis * macs) if cmsis else None
            for other, arow in anns.items():
                ref = arow["ports"].get(port, {}).get("mean")
                p[f"x_{other}"] = p["mean"] / ref if ref else None
                p[f"break_even_rate_vs_{other}"] = break_even(p["fit"], ref)
            eq = equal_accuracy_ann(row["golden_accuracy"], anns, port)
            p["equal_accuracy_ann"] = eq
            p["x_equal_accuracy_ann"] = p.get(f"x_{eq}") if eq else None
            p["break_even_rate_vs_equal_accuracy_ann"] = (
                p.get(f"break_even_rate_vs_{eq}") if eq else None)
    result = {"hidden": args.hidden, "device_ports": ports, "samples": len(pixels),
              "test_limit": len(test), "opt": args.opt, "cmsis_nn_instr_per_mac": CMSIS_NN,
              "cmsis_nn_macs": macs,
              "unit": "instructions (QEMU -icount)", "snn": rows, "ann": anns,
              "bit_exact": True, "wall_s": round(time.monotonic() - t0, 1)}
    text = json.dumps(result, sort_keys=True)
    (work / "fewer_events.json").write_text(text)
    print(text) if args.json else print_table(result)
    return 0


def print_table(r: dict[str, Any]) -> None:
    print(f"784-H-10 SNNs vs int8 ANNs; instructions per inference (QEMU -icount) on "
          f"{r['samples']} MNIST test digits, every answer bit-exact with golden / the numpy "
          f"twin; golden accuracy on {r['test_limit']} test digits; {r['opt']}")
    for port in r["device_ports"]:
        cm = r["cmsis_nn_instr_per_mac"].get(port)
        print(f"\n{port}" + (f": CMSIS-NN arm_fully_connected_s8 = {cm * r['cmsis_nn_macs']:,.0f}"
                            f" instructions ({cm:.2f}/MAC)" if cm else ""))
        print(f"{'':22}{'layers':>13}{'T':>4}{'spars.':>7}{'accuracy':>9}{'mean':>10}"
              f"{'p50':>10}{'p99':>10}{'max':>10}{'xCMSIS':>7}{'xANNd':>7}{'xANNs':>7}"
              f"{'in/hid rate':>13}{'b-e ANNs':>9}  ANN at equal accuracy (x, b-e)")
        for name, a in r["ann"].items():
            p = a["ports"].get(port, {})
            if not p or p.get("fits") is False:
                print(f"{name:22}{'':13}{'':4}{'':7}{a['golden_accuracy']:>8.2%}  does not "
                      "fit the flash")
                continue
            xc = p["mean"] / (cm * r["cmsis_nn_macs"]) if cm else float("nan")
            sizes = np.array([784 * r["hidden"], r["hidden"] * 10], dtype=np.float64)
            density = np.asarray(a.get("weight_density") or [1.0, 1.0], dtype=np.float64)
            overall = float((density * sizes).sum() / sizes.sum())
            print(f"{name:22}{'':13}{'':4}{1 - overall:>7.1%}"
                  f"{a['golden_accuracy']:>8.2%} {p['mean']:>10,.0f}{p['p50']:>10,.0f}"
                  f"{p['p99']:>10,.0f}{p['max']:>10,.0f}{xc:>7.3f}")
        for name, s in r["snn"].items():
            p = s["ports"][port]
            layers = "-".join(map(str, s["layer_sizes"]))

            def num(x: float | None, w: int = 7, f: str = ".3f") -> str:
                return f"{x:>{w}{f}}" if x is not None else f"{'-':>{w}}"

            print(f"{name:22}{layers:>13}{s['recipe']['steps']:>4}{s['sparsity']:>7.1%}"
                  f"{s['golden_accuracy']:>8.2%} {p['mean']:>10,.0f}{p['p50']:>10,.0f}"
                  f"{p['p99']:>10,.0f}{p['max']:>10,.0f}{num(p['x_cmsis_nn'])}"
                  f"{num(p.get('x_ann_dense'))}{num(p.get('x_ann_pruned_sparse'))}"
                  f"{p['input_rate_mean']:>7.3f}/{p['hidden_rate_mean']:<5.3f}"
                  f"{num(p.get('break_even_rate_vs_ann_pruned_sparse'), 9)}"
                  + (f"  {p['equal_accuracy_ann']} ({p['x_equal_accuracy_ann']:.3f}, "
                     f"{num(p['break_even_rate_vs_equal_accuracy_ann'], 0)})"
                     if p.get("equal_accuracy_ann") else ""))
    print("\nxANNd / xANNs: mean instructions over edgesnn's dense int8 ANN kernel / over the "
          "90 %-pruned int8 ANN on the event-driven sparse kernel; b-e ANNs: spike rate at "
          f"which the SNN's fit meets the pruned sparse ANN; ANN at equal accuracy: the cheapest "
          f"ANN row within {EQUAL_PP * 100:.1f} pp. wall {r['wall_s']} s")


if __name__ == "__main__":
    sys.exit(main())

"""SNN vs the int8 ANN people would deploy instead, side by side on QEMU (instructions).

For one network topology (784-H-10) it measures, per inference, on Cortex-M3 (QEMU
``lm3s6965evb``, ``-icount shift=7``) and Cortex-M4 (``mps2-an386``, ``shift=6``):

* the int8 ReLU ANN trained by edgesnn (``edgesnn.compress.ann``; PTQ + optional QAT) on
  edgesnn's dense int8 kernel (``firmware/runtime/esnn_ann.c``: 4-row blocks, MLA on M3,
  SMLAD on M4) -- its instructions per MAC against Arm CMSIS-NN ``arm_fully_connected_s8``
  (3.40 on M3 -Ofast, 1.94 on M4 with DSP, measured the same way on QEMU for 784-256-10;
  ``ann_device.CMSIS_NN``);
* the same ANN on the event-driven sparse kernel (skips zero pixels and zero activations;
  its CSR lists of the unpruned weights need about 400 KB of flash), and on the dense kernel
  skipping runs of all-zero groups of 4 inputs (``dense-skip``, the dense blocks' flash);
* the ANN magnitude-pruned (``--keep``, fine-tuned) on the sparse kernel (also skips pruned
  weights);
* the SNN of ``--snn-run`` (a compressed RUN_DIR with ``model.esg``) at each ``--steps`` T,
  on the edgesnn firmware (``benchmarks/device_cost.py``'s runner: every RESULT bit-exact
  with the golden simulator);

every ANN answer is checked bit for bit against the numpy twin (``edgesnn.graph.ann``).
Accuracy is the golden / numpy-twin integer model on ``--test-limit`` test digits (device =
golden on the measured ones). Ratios are against the dense ANN on the same core and against
CMSIS-NN's figure; the break-even spike rate comes from a least-squares fit
``instructions = a + b * rate`` over the measured digits.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/ann_baseline.py \\
        --snn-run RUN [--ann-dir DIR] [--samples 50] [--steps 25,16,8] [--json]

Without ``--ann-dir`` the ANNs (dense; pruned to ``--keep`` and to each ``--extra-keep``) are
trained here, about a minute each on two cores, and kept in ``--work`` (default: a temporary
folder). The default SNN of the README: ``edgesnn train --out RUN --hidden 256 --steps 25
--epochs 2`` then ``edgesnn compress RUN --sparsity 0.9 --qat-epochs 2``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ann_device  # noqa: E402

from edgesnn.graph import ann as gann  # noqa: E402

log = logging.getLogger("ann_baseline")
CMSIS_NN = ann_device.CMSIS_NN  # instructions per MAC of Arm CMSIS-NN (its one home)
CORES = {"lm3s6965evb": "Cortex-M3", "mps2-an386": "Cortex-M4"}


def stats(cycles: np.ndarray) -> dict[str, float]:
    c = np.asarray(cycles, dtype=np.float64)
    return {"mean": float(c.mean()), "p50": float(np.percentile(c, 50)),
            "p99": float(np.percentile(c, 99)), "max": float(c.max()), "min": float(c.min())}


def train_anns(work: Path, hidden: int, keep: float, epochs: int, qat_epochs: int,
               seed: int, extra_keep: list[float]) -> dict[str, Path]:
    """The dense ANN, the one pruned to ``keep`` and one per ``extra_keep`` (same recipe:
    ``epochs`` with ±1 px shifts, gradual magnitude pruning over 4 fine-tuning epochs, then
    ``qat_epochs`` of QAT)."""
    from edgesnn.compress.ann import AnnBaselineOptions, make_baseline
    from edgesnn.data import load_dataset
    from edgesnn.snn.ann import AnnTrainOptions

    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    topts = AnnTrainOptions(epochs=epochs, augment_shift=1, seed=seed)
    dirs = {"dense": work / "ann-dense", "pruned": work / "ann-pruned"}
    make_baseline(train, test, AnnBaselineOptions(hidden=(hidden,), train=topts,
                                                  qat_epochs=qat_epochs), dirs["dense"])
    for name, k in (("pruned", keep), *((f"pruned-{k:g}", k) for k in extra_keep)):
        dirs[name] = work / f"ann-{name}"
        make_baseline(train, test, AnnBaselineOptions(hidden=(hidden,), train=topts, keep=k,
                                                      qat_epochs=qat_epochs, storage="sparse"),
                      dirs[name])
    return dirs


def ann_dirs(base: Path) -> dict[str, Path]:
    """The trained ANNs in ``base``: ann-dense/, ann-pruned/ and every ann-pruned-*/."""
    dirs = {"dense": base / "ann-dense", "pruned": base / "ann-pruned"}
    for extra in sorted(base.glob("ann-pruned-*")):
        dirs[extra.name.removeprefix("ann-")] = extra
    return dirs


def with_storage(graph: gann.AnnGraph, storage: str) -> gann.AnnGraph:
    layers = [gann.AnnLayer(la.weights, la.bias, la.multiplier, la.shift, storage, la.name)
              for la in graph.layers]
    return gann.AnnGraph(graph.input_size, layers, dict(graph.metadata)).validate()


def fit_rate(cycles: np.ndarray, rate: np.ndarray) -> tuple[float, float]:
    a_mat = np.stack([np.ones_like(rate), rate], axis=1)
    (a, b), *_ = np.linalg.lstsq(a_mat, cycles.astype(np.float64), rcond=None)
    return float(a), float(b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snn-run", type=Path, help="compressed SNN RUN_DIR (model.esg, 784-H-10)")
    ap.add_argument("--ann-dir", type=Path, help="folder with ann-dense/, ann-pruned/ and "
                    "optionally more ann-pruned-*/ (edgesnn.compress.ann.make_baseline "
                    "outputs); else ann-dense and ann-pruned are trained")
    ap.add_argument("--work", type=Path, help="where to keep trained ANNs and builds")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--keep", type=float, default=0.10, help="pruned ANN: fraction kept")
    ap.add_argument("--extra-keep", default="0.07,0.05",
                    help="more pruned ANNs to train (comma-separated fractions kept)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=50, help="test digits run on each device")
    ap.add_argument("--test-limit", type=int, default=10000, help="digits for accuracy")
    ap.add_argument("--steps", default="25,16,8", help="SNN time steps to measure")
    ap.add_argument("--ports", default="lm3s6965evb,mps2-an386")
    ap.add_argument("--opt", default="-Os", help="gcc optimisation of every firmware")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; this benchmark needs it")
    from edgesnn.data import load_dataset

    ports = [p for p in args.ports.split(",") if p]
    steps = [int(t) for t in args.steps.split(",") if t]
    test = load_dataset("mnist", "test", limit=args.test_limit)
    pixels = test.images[:args.samples]
    t0 = time.monotonic()
    tmp = None
    work = args.work
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgesnn-ann-")
        work = Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.ann_dir:
            dirs = ann_dirs(args.ann_dir)
        else:
            dirs = train_anns(work, args.hidden, args.keep, args.epochs, args.qat_epochs,
                              args.seed, [float(k) for k in args.extra_keep.split(",") if k])
        result = measure(dirs, args, ports, steps, test, pixels, work)
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["wall_s"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_table(result)
    return 0


def measure(dirs: dict[str, Path], args: argparse.Namespace, ports: list[str],
            steps: list[int], test: Any, pixels: np.ndarray, work: Path) -> dict[str, Any]:
    from edgesnn.compress.ann import load_baseline

    dense_graph, dense_stats = load_baseline(dirs["dense"])
    pruned_graph, pruned_stats = load_baseline(dirs["pruned"])
    anns = {
        "ann_dense": (with_storage(dense_graph, "dense"), dense_stats),
        "ann_zero_skip": (with_storage(dense_graph, "sparse"), dense_stats),
        "ann_dense_skip": (with_storage(dense_graph, "dense-skip"), dense_stats),
        "ann_pruned_sparse": (with_storage(pruned_graph, "sparse"), pruned_stats),
    }
    for name, folder in dirs.items():
        if name.startswith("pruned-"):
            graph, st = load_baseline(folder)
            anns["ann_" + name.replace("-", "_")] = (with_storage(graph, "sparse"), st)
    rows: dict[str, Any] = {}
    for name, (graph, st) in anns.items():
        twin = gann.infer(graph, test.images)
        acc = float(np.mean(twin.pred == test.labels))
        row: dict[str, Any] = {"golden_accuracy": acc, "quantization": st.get("quantization"),
                               "weight_density": st.get("weight_density"),
                               "macs_mean": float(twin.macs.sum(axis=1).mean()),
                               "blob_bytes": len(gann.encode(graph)), "ports": {}}
        for port in ports:
            try:
                elf = ann_device.build(graph, work / f"{name}-{port}", port, args.opt)
            except RuntimeError as exc:  # the model does not fit the board's flash
                over = re.search(r"overflowed by (\d+) bytes", str(exc))
                if over is None:
                    raise
                row["ports"][port] = {"fits": False, "flash_overflow_bytes": int(over[1])}
                log.info("%s does not fit %s (flash overflowed by %s bytes)", name, port,
                         over[1])
                continue
            run = ann_device.run(graph, elf, port, pixels)
            s = stats(run.cycles)
            row["ports"][port] = {**s, "instr_per_dense_mac": s["mean"] / graph.macs_dense(),
                                  "x_cmsis_nn": s["mean"] / (CMSIS_NN[port]
                                                             * graph.macs_dense()),
                                  "image_text_bytes": run.text_bytes,
                                  "arena_bytes": graph.arena_bytes()}
            log.info("%s on %s: mean %.0f instructions", name, port, s["mean"])
        rows[name] = row
    if args.snn_run is not None:
        rows.update(measure_snn(args.snn_run, ports, steps, test, pixels, work, args.opt))
    for row in rows.values():
        for port, p in row["ports"].items():
            if p.get("fits") is False:
                continue
            base = rows["ann_dense"]["ports"][port]["mean"]
            p["x_ann_dense"] = p["mean"] / base
            p["x_ann_pruned_sparse"] = p["mean"] / rows["ann_pruned_sparse"]["ports"][port]["mean"]
            p["x_cmsis_nn_network"] = p["mean"] / (CMSIS_NN[port] * dense_graph.macs_dense())
            if "fit" in p:
                a, b = p["fit"]["a"], p["fit"]["b"]
                for other in ("ann_dense", "ann_zero_skip", "ann_dense_skip",
                              "ann_pruned_sparse"):
                    ref = rows[other]["ports"][port].get("mean")  # None: did not fit
                    p["fit"][f"break_even_rate_vs_{other}"] = (
                        (ref - a) / b if b > 0 and ref is not None else None)
    return {"network": [dense_graph.input_size, *[la.n_out for la in dense_graph.layers]],
            "samples": len(pixels), "test_limit": len(test), "opt": args.opt,
            "cmsis_nn_instr_per_mac": CMSIS_NN, "rows": rows, "bit_exact": True,
            "unit": "instructions (QEMU -icount; SysTick ticks / ticks per instruction)"}


def measure_snn(run_dir: Path, ports: list[str], steps: list[int], test: Any,
                pixels: np.ndarray, work: Path, opt: str) -> dict[str, Any]:
    import device_cost

    from edgesnn.graph import esg
    from edgesnn.graph.golden import simulate

    rows: dict[str, Any] = {}
    for t in steps:
        graph = esg.read_esg(run_dir / "model.esg")
        graph.steps = t
        graph.validate()
        gold = simulate(graph, test.images)
        row: dict[str, Any] = {"golden_accuracy": float(np.mean(gold.pred == test.labels)),
                               "steps": t, "ports": {},
                               "weight_density": [la.nnz / la.weights.size
                                                  for la in graph.layers]}
        for port in ports:
            sub = work / f"snn-T{t}-{port}"
            shutil.rmtree(sub, ignore_errors=True)  # the runner creates its folders afresh
            sub.mkdir(parents=True)
            run = device_cost.run_snn(f"snn{t}", graph, pixels, sub, opt, device=port)
            s = stats(run.cycles)
            a, b = fit_rate(run.cycles, run.rate)
            row["ports"][port] = {**s, "fit": {"a": a, "b": b},
                                  "spike_rate_mean": float(run.rate.mean()),
                                  "synaptic_ops_mean": float(run.ops.mean()),
                                  "image_text_bytes": run.text_bytes,
                                  "arena_bytes": run.arena_bytes}
            log.info("SNN T=%d on %s: mean %.0f instructions", t, port, s["mean"])
        rows[f"snn_T{t}"] = row
    return rows


def print_table(r: dict[str, Any]) -> None:
    print(f"network {'-'.join(map(str, r['network']))}; {r['samples']} MNIST test digits on "
          f"each device (bit-exact with the integer twins), accuracy on {r['test_limit']}; "
          f"{r['opt']}; {r['unit']}")
    ports = list(next(iter(r["rows"].values()))["ports"])
    for port in ports:
        print(f"\n{CORES.get(port, port)} ({port}); CMSIS-NN arm_fully_connected_s8 "
              f"{r['cmsis_nn_instr_per_mac'][port]:.2f} instructions/MAC")
        print(f"{'':26}{'accuracy':>9}{'mean':>10}{'p50':>10}{'p99':>10}{'max':>10}"
              f"{'x CMSIS':>9}{'x dense':>9}{'x pruned':>9}{'rate':>7}{'b-e dense':>10}"
              f"{'b-e pruned':>11}")
        for name, row in r["rows"].items():
            p = row["ports"][port]
            if p.get("fits") is False:
                print(f"{name:26}{row['golden_accuracy']:>8.2%}  does not fit the flash "
                      f"(overflowed by {p['flash_overflow_bytes']:,} B)")
                continue
            fit = p.get("fit", {})
            be_d = fit.get("break_even_rate_vs_ann_dense")
            be_p = fit.get("break_even_rate_vs_ann_pruned_sparse")
            print(f"{name:26}{row['golden_accuracy']:>8.2%} {p['mean']:>10,.0f}"
                  f"{p['p50']:>10,.0f}{p['p99']:>10,.0f}{p['max']:>10,.0f}"
                  f"{p['x_cmsis_nn_network']:>9.3f}{p['x_ann_dense']:>9.3f}"
                  f"{p['x_ann_pruned_sparse']:>9.2f}"
                  f"{p.get('spike_rate_mean', float('nan')):>7.3f}"
                  f"{be_d if be_d is not None else float('nan'):>10.3f}"
                  f"{be_p if be_p is not None else float('nan'):>11.3f}")
        d = r["rows"]["ann_dense"]["ports"][port]
        print(f"dense int8 kernel: {d['instr_per_dense_mac']:.2f} instructions/MAC = "
              f"{d['x_cmsis_nn']:.3f}x CMSIS-NN")
    print(f"wall {r.get('wall_s', 0)} s")


if __name__ == "__main__":
    sys.exit(main())

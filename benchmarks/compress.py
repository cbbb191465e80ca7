"""Compression benchmark: float -> int8 / 90 %-sparse int8 / 90 %-sparse int4 on MNIST.

Trains a 784-256-10 LIF SNN (rate code, T = 25) with edgesnn's training API, or takes
``--run-dir``; then compresses copies of it with :func:`edgesnn.compress.compress_run` and
compares, on the same test samples, the float model (torch) with the golden integer simulator
running the written ``model.esg``. Sizes are compared with the raw dense int8 weight bytes and
with the float model exported to ONNX (``edgesnn export --target onnx``, single-step mode).

Goals (issue #3): int8 loss <= 0.5 pp; 90 % sparsity + int8 <= 1.0 pp; 90 % + int4 <= 1.5 pp;
``.esg`` <= 1.02x the raw int8 weight bytes dense and <= 0.3x at 90 % sparsity int4.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/compress.py [--json]

Every number printed is measured in this run; the command line and timings are in the JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

CASES = [
    # name, kwargs for compress_run, accuracy goal (pp), size goal (x raw int8 weights)
    ("int8 dense (PTQ)", {"weight_bits": 8, "sparsity": 0.0, "qat": False}, 0.5, 1.02),
    ("int8 dense per-layer (PTQ)", {"weight_bits": 8, "sparsity": 0.0, "qat": False,
                                    "per_channel": False}, 0.5, 1.02),
    ("int8 90% sparse (QAT)", {"weight_bits": 8, "sparsity": 0.9, "qat": True}, 1.0, None),
    ("int4 90% sparse (QAT)", {"weight_bits": 4, "sparsity": 0.9, "qat": True}, 1.5, 0.3),
    # for comparison, no goal: what QAT buys
    ("int4 dense (PTQ)", {"weight_bits": 4, "sparsity": 0.0, "qat": False}, None, None),
    ("int8 90% sparse one-shot (PTQ)", {"weight_bits": 8, "sparsity": 0.9, "qat": False},
     None, None),
]


def _train(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from edgesnn.snn import SNNConfig
    from edgesnn.snn.train import TrainOptions, train

    cfg = SNNConfig(input_size=784, hidden=[args.hidden], n_classes=10, steps=args.steps,
                    encoder="rate")
    opts = TrainOptions(epochs=args.epochs, batch_size=128, lr=args.lr,
                        train_limit=args.train_limit, test_limit=args.test_limit,
                        seed=args.seed, progress=not args.json)
    return train(cfg, opts, out, data_dir=args.data_dir)


def _onnx_bytes(run_dir: Path, work: Path) -> dict[str, Any]:
    from edgesnn.export.base import get_target

    out: dict[str, Any] = {}
    try:
        summary = get_target("onnx").export(run_dir, work / "model.onnx", mode="step")
        out["onnx_float_bytes"] = int(summary["bytes"])
        out["onnx_source"] = "edgesnn export --target onnx (mode=step)"
    except Exception as exc:  # noqa: BLE001 - report why, fall back to torch.onnx
        out["onnx_error"] = f"{type(exc).__name__}: {exc}"
        import torch

        from edgesnn.snn import load

        model, _ = load(run_dir)
        lin = torch.nn.Sequential(*model.fcs)  # the weights alone: a lower bound
        path = work / "weights.onnx"
        torch.onnx.export(lin, (torch.zeros(1, model.config.input_size),), str(path),
                          dynamo=False)
        out["onnx_float_bytes"] = path.stat().st_size
        out["onnx_source"] = "torch.onnx.export of the float Linear stack"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, help="a trained run to use instead of training")
    ap.add_argument("--work-dir", type=Path, default=Path("bench_compress"),
                    help="where the trained run and the compressed copies go")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-limit", type=int, default=None, help="default: all 60,000")
    ap.add_argument("--test-limit", type=int, default=None, help="default: all 10,000")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--qat-train-limit", type=int, default=20000)
    ap.add_argument("--calib-limit", type=int, default=1000)
    ap.add_argument("--cases", default="all",
                    help=f"comma-separated case indexes (0..{len(CASES) - 1}) or 'all'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    import torch

    from edgesnn.compress import compress_run

    torch.manual_seed(args.seed)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.run_dir is None:
        base = work / "float"
        train_metrics = _train(args, base)
    else:
        base = args.run_dir
        train_file = base / "train.json"
        train_metrics = json.loads(train_file.read_text()) if train_file.is_file() else {}
    train_s = time.perf_counter() - t0
    picks = range(len(CASES)) if args.cases == "all" else [int(c) for c in args.cases.split(",")]
    rows = []
    for k in picks:
        name, kw, goal_pp, goal_size = CASES[k]
        run = work / f"case{k}"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        for f in ("model.pt", "config.json", "train.json"):
            if (base / f).is_file():
                shutil.copy2(base / f, run / f)
        t = time.perf_counter()
        s = compress_run(run, weight_bits=kw["weight_bits"], sparsity=kw["sparsity"],
                         per_channel=kw.get("per_channel", True),
                         qat_epochs=args.qat_epochs if kw["qat"] else 0,
                         train_limit=args.qat_train_limit, test_limit=args.test_limit,
                         calib_limit=args.calib_limit, data_dir=args.data_dir, seed=args.seed,
                         progress=not args.json)
        loss_pp = 100.0 * (s["float_accuracy"] - s["golden_accuracy"])
        rows.append({
            "case": name, "float_accuracy": s["float_accuracy"],
            "golden_accuracy": s["golden_accuracy"], "loss_pp": loss_pp,
            "goal_loss_pp": goal_pp,
            "accuracy_goal_met": None if goal_pp is None else loss_pp <= goal_pp,
            "agreement": s["agreement"], "sparsity": s["sparsity"],
            "esg_bytes": s["esg_bytes"], "int8_weight_bytes": s["int8_weight_bytes"],
            "ratio": s["ratio"], "goal_ratio": goal_size,
            "size_goal_met": None if goal_size is None else s["ratio"] <= goal_size,
            "storage": s["storage"], "scale_methods": s["calibration"]["methods"],
            "qat_epochs": s["qat_epochs"], "test_samples": s["test_samples"],
            "synaptic_ops_per_sample": s["synaptic_ops_per_sample"],
            "seconds": round(time.perf_counter() - t, 1),
        })
    onnx = _onnx_bytes(base, work)
    result = {
        "benchmark": "compress", "argv": sys.argv[1:] if argv is None else argv,
        "model": f"784-{args.hidden}-10 LIF, rate, T={args.steps}",
        "train": {k: train_metrics.get(k) for k in ("test_accuracy", "epochs", "train_samples",
                                                    "test_samples", "train_time_s")},
        "train_seconds": round(train_s, 1), "qat_train_limit": args.qat_train_limit,
        "rows": rows, **onnx,
        "float32_weight_bytes": 4 * rows[0]["int8_weight_bytes"] if rows else None,
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"model {result['model']}; float test accuracy from training "
          f"{train_metrics.get('test_accuracy')}")
    head = (f"{'case':32} {'float%':>7} {'golden%':>8} {'loss pp':>8} {'goal':>5} "
            f"{'agree%':>7} {'sparsity':>8} {'esg B':>8} {'x int8':>7} {'goal':>5}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ok = "" if r["accuracy_goal_met"] is None else ("ok" if r["accuracy_goal_met"] else "MISS")
        goal = "" if r["goal_loss_pp"] is None else f"{r['goal_loss_pp']:.1f}"
        size_ok = "" if r["size_goal_met"] is None else ("ok" if r["size_goal_met"] else "MISS")
        print(f"{r['case']:32} {100 * r['float_accuracy']:7.2f} {100 * r['golden_accuracy']:8.2f} "
              f"{r['loss_pp']:8.2f} {goal:>5} {ok:>4} "
              f"{100 * r['agreement']:6.2f} {100 * r['sparsity']:8.1f} {r['esg_bytes']:8d} "
              f"{r['ratio']:7.3f} {r['goal_ratio'] or '':>5} {size_ok}")
    if rows:
        print(f"raw int8 weights {rows[0]['int8_weight_bytes']} B; float32 weights "
              f"{result['float32_weight_bytes']} B; ONNX (float) {result['onnx_float_bytes']} B "
              f"[{result['onnx_source']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

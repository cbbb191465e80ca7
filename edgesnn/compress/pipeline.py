"""``compress_run``: a trained RUN_DIR -> pruned, quantized ``model.esg`` + ``compress.json``.

Steps: load the float checkpoint; PTQ with per-layer scale calibration on a training subset
(:func:`~edgesnn.compress.quantize.calibrate`); optional structured neuron pruning; optional
magnitude pruning (one shot, or an iterative schedule with QAT fine-tuning between stages);
optional QAT; write the graph atomically; evaluate the float model and the golden simulator
(on the graph read back from the written file) on the same test samples.
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesnn.atomic import write_json
from edgesnn.compress import prune as prune_mod
from edgesnn.compress.defaults import DEFAULT_PRUNE_QAT_EPOCHS, default_qat_lr
from edgesnn.compress.qat import IntegerSNN, finetune
from edgesnn.compress.quantize import FloatNet, calibrate, extract
from edgesnn.graph.ir import EncoderKind

log = logging.getLogger(__name__)

#: training images for calibration and QAT: all of them (None). Fine-tuning a 90 %-pruned
#: 784-256-10, T = 8 network one QAT epoch on all 60,000 images instead of the first 10,000
#: gives 96.57 % instead of 95.44 % golden accuracy at the same device cost
#: (benchmarks/fewer_events.py: T8-s90-q1full vs T8-s90, all 10,000 test digits).
DEFAULT_TRAIN_LIMIT: int | None = None
DEFAULT_CALIB_LIMIT = 1000
#: QAT epochs when pruning and none are asked for: pruning without fine-tuning loses
#: several points (README, Compression), one short QAT epoch recovers them.


def default_qat_epochs(sparsity: float) -> int:
    """The QAT epochs ``qat_epochs=None`` means: a short fine-tune when pruning, else 0."""
    return DEFAULT_PRUNE_QAT_EPOCHS if sparsity > 0 else 0


def _f32_b64(values: np.ndarray) -> str | float:
    """One float, or a compact exact float32 little-endian base64 string for arrays."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 1 or np.all(arr == arr[0]):
        return float(arr[0])
    return "f32le:" + base64.b64encode(arr.astype("<f4").tobytes()).decode("ascii")


def decode_f32(value: str | float) -> np.ndarray:
    """Inverse of the META encoding of scales and float thresholds."""
    if isinstance(value, str) and value.startswith("f32le:"):
        return np.frombuffer(base64.b64decode(value[6:]), dtype="<f4").astype(np.float64)
    return np.array([float(value)])


def float_predict(model: Any, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Predictions of the float SpikingMLP (deterministic encoder) on uint8 ``images``."""
    from edgesnn.snn.model import readout

    preds = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            out = model.forward_pixels(torch.from_numpy(images[start:start + batch_size]))
            preds.append(np.asarray(readout(out.counts, out.v_final)).reshape(-1))
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _graph_metadata(net: FloatNet, model: IntegerSNN,
                    quant: dict[str, Any], pruning: dict[str, Any],
                    provenance: dict[str, Any]) -> dict[str, Any]:
    from edgesnn import __version__

    layers = []
    for spec in model.specs:
        layers.append({"scale": _f32_b64(spec.scale),
                       "threshold": _f32_b64(np.asarray(spec.extra.get("threshold_float", [0]))),
                       "beta": _f32_b64(np.asarray(spec.extra.get("beta_float", [1])))})
    return {
        # no timestamp or folder name: the same model and options give the same hash
        "edgesnn_version": __version__,
        "float": {"layers": layers,
                  "input_gain": 255.0 if net.encoder == EncoderKind.DIRECT else 1.0},
        "provenance": provenance,
        "quantization": quant,
        "pruning": {k: v for k, v in pruning.items() if k != "history"},  # see compress.json
    }


def compress_run(
    run_dir: Path | str,
    *,
    sparsity: float = 0.0,
    weight_bits: int = 8,
    per_channel: bool = True,
    qat_epochs: int | None = None,
    structured: bool = False,
    train_limit: int | None = DEFAULT_TRAIN_LIMIT,
    test_limit: int | None = None,
    data_dir: Path | str | None = None,
    seed: int = 0,
    calib_limit: int = DEFAULT_CALIB_LIMIT,
    prune_scope: str = "global",
    structured_drop: float = 0.0,
    qat_lr: float | None = None,
    batch_size: int = 128,
    progress: bool = False,
) -> dict[str, Any]:
    """Compress RUN_DIR's float model into RUN_DIR/model.esg and write RUN_DIR/compress.json.

    Returns (and writes) a summary with ``float_accuracy``, ``golden_accuracy``, ``agreement``
    (float vs golden predictions), ``sparsity`` (fraction of integer weights that are 0),
    ``esg_bytes``, ``int8_weight_bytes`` (raw dense int8 weights of the *original* model),
    ``ratio`` (esg_bytes / int8_weight_bytes) and the details of every step.
    ``qat_epochs=None`` fine-tunes :data:`DEFAULT_PRUNE_QAT_EPOCHS` epoch(s) when pruning and
    none otherwise (``qat_default`` in the summary says the default was used). Raises
    :class:`~edgesnn.export.base.ExportError` for a model the format cannot express and
    ``ValueError`` for bad arguments.
    """
    from edgesnn.data import load_dataset
    from edgesnn.graph.esg import header_hash, read_esg, write_esg
    from edgesnn.graph.golden import simulate
    from edgesnn.snn.checkpoint import load

    run_dir = Path(run_dir)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity}; accepted: 0 <= sparsity < 1")
    if weight_bits not in (4, 8):
        raise ValueError(f"weight_bits={weight_bits}; accepted: 8, 4")
    qat_default = qat_epochs is None
    if qat_epochs is None:
        qat_epochs = default_qat_epochs(sparsity)
    if qat_epochs < 0:
        raise ValueError(f"qat_epochs={qat_epochs}; must be >= 0")
    for name, lim in (("train_limit", train_limit), ("test_limit", test_limit)):
        if lim is not None and lim < 1:
            raise ValueError(f"{name}={lim}; must be >= 1 (or None for all samples)")
    if calib_limit < 1:
        raise ValueError(f"calib_limit={calib_limit}; must be >= 1")
    if prune_scope not in prune_mod.SCOPES:
        raise ValueError(f"prune_scope={prune_scope!r}; accepted: {', '.join(prune_mod.SCOPES)}")
    if run_dir.is_file():
        raise ValueError(f"run_dir={str(run_dir)!r} is a file; give the run directory that "
                         f"holds it ({run_dir.parent})")
    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir / 'model.pt'} not found (train the run first)")

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    float_model, meta = load(run_dir)
    net = extract(float_model)
    meta = dict(meta or {})
    dataset = str(meta.get("dataset") or "mnist")
    train = load_dataset(dataset, "train", data_dir, limit=train_limit)
    test = load_dataset(dataset, "test", data_dir, limit=test_limit)
    calib_idx = _subset(len(train), calib_limit, seed)
    calib_x, calib_y = train.images[calib_idx], train.labels[calib_idx]

    float_pred = float_predict(float_model, test.images)
    float_acc = float(np.mean(float_pred == test.labels))
    log.info("float accuracy %.4f on %d test samples", float_acc, len(test))

    model, calib_report = calibrate(net, calib_x, calib_y, weight_bits=weight_bits,
                                    per_channel=per_channel)
    ptq_acc = calib_report["calibration_accuracy"]
    pruning: dict[str, Any] = {"target_sparsity": sparsity, "scope": prune_scope,
                               "structured": structured}
    if structured:
        model, report = prune_mod.prune_neurons(model, calib_x, drop_fraction=structured_drop)
        pruning["neurons"] = report["neurons"]

    lr = qat_lr if qat_lr is not None else default_qat_lr(weight_bits)
    qat_losses: list[float] = []

    def tune(m: IntegerSNN, epochs: int, tag: int) -> None:
        qat_losses.extend(finetune(m, train.images, train.labels, epochs=epochs, lr=lr,
                                   batch_size=batch_size, seed=seed + tag, progress=progress))

    if sparsity > 0:
        if qat_epochs > 0:
            stages = min(qat_epochs, 3)
            per_stage = [qat_epochs // stages + (1 if k < qat_epochs % stages else 0)
                         for k in range(stages)]
            pruning["history"] = prune_mod.iterative_prune(
                model, sparsity, stages=stages, scope=prune_scope,
                finetune=lambda m, k: tune(m, per_stage[k], k))
        else:
            prune_mod.prune_magnitude(model, sparsity, scope=prune_scope)
    elif qat_epochs > 0:
        tune(model, qat_epochs, 0)
    pruning["mask_sparsity"] = prune_mod.mask_sparsity(model)

    quant = {"weight_bits": weight_bits, "per_channel": per_channel,
             "scale_methods": calib_report["methods"], "qat_epochs": qat_epochs}
    provenance = {"config": net.config, "dataset": dataset,
                  "train_limit": train_limit, "calib_samples": int(len(calib_idx)),
                  "seed": seed}
    graph = model.to_graph(metadata=_graph_metadata(net, model, quant, pruning,
                                                    provenance))
    esg_path = run_dir / "model.esg"
    write_esg(graph, esg_path)  # atomic, with the usual file mode
    written = read_esg(esg_path)
    res = simulate(written, test.images)
    golden_acc = float(np.mean(res.pred == test.labels))
    agreement = float(np.mean(res.pred == float_pred))
    int8_bytes = sum(w.shape[0] * w.shape[1] for w in net.weights)
    esg_bytes = esg_path.stat().st_size
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "esg": str(esg_path),
        "float_accuracy": float_acc,
        "golden_accuracy": golden_acc,
        "ptq_calibration_accuracy": ptq_acc,
        "agreement": agreement,
        "accuracy_drop_pp": 100.0 * (float_acc - golden_acc),
        "test_samples": int(len(test)),
        "train_samples": int(len(train)),
        "sparsity": prune_mod.weight_sparsity(model),
        "sparsity_vs_original": 1.0 - sum(layer.nnz for layer in written.layers) / int8_bytes,
        "mask_sparsity": pruning["mask_sparsity"],
        "weight_bits": weight_bits,
        "per_channel": per_channel,
        "qat_epochs": qat_epochs,
        "qat_lr": lr,
        "qat_default": qat_default,
        "structured": structured,
        "layer_sizes": [written.input_size] + [layer.n_out for layer in written.layers],
        "storage": [layer.storage.name.lower() for layer in written.layers],
        "esg_bytes": int(esg_bytes),
        "int8_weight_bytes": int(int8_bytes),
        "ratio": esg_bytes / int8_bytes,
        "synaptic_ops_per_sample": float(res.ops.sum(axis=1).mean()),
        "calibration": calib_report,
        "pruning": pruning,
        "qat_losses": qat_losses,
        "model_hash": header_hash(esg_path.read_bytes()).hex(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": time.perf_counter() - t0,
    }
    write_json(run_dir / "compress.json", summary)
    return summary

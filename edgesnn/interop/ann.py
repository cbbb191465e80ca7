"""The ANN-world baseline: the SNN's topology as a bias-free ReLU MLP, int8 TFLite.

:func:`ann_baseline` trains ``input -> hidden... -> classes`` (ReLU, no bias, input
``pixels / 255``) on the run's dataset, quantizes it post-training (int8 weights per output
channel, int8 activations calibrated on training images), writes it as ``.tflite`` and
evaluates the int8 model in the TFLite interpreter, next to the SNN on the same test images,
so the report can compare accuracy and operations (ANN MACs vs SNN synaptic ops).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.interop.params import load_run
from edgesnn.interop.tflite_graph import ann_int8_model

log = logging.getLogger(__name__)

INPUT_QUANT = (1.0 / 255.0, -128)  # int8 input q = pixel - 128 represents pixel / 255


def train_ann(sizes: list[int], images: np.ndarray, labels: np.ndarray, *, epochs: int = 2,
              batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> list[np.ndarray]:
    """Train a bias-free ReLU MLP; returns float32 weights ``[n_out, n_in]`` per layer."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:],
                                                                strict=True)]
    net = torch.nn.Sequential(*[m for layer in layers[:-1] for m in (layer, torch.nn.ReLU())],
                              layers[-1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all = torch.from_numpy(images).float() / 255.0
    y_all = torch.from_numpy(np.asarray(labels)).long()
    for _ in range(epochs):
        order = torch.randperm(len(y_all), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(net(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [layer.weight.detach().numpy().astype(np.float32) for layer in layers]


def float_forward(weights: list[np.ndarray], images: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer (ReLU on all but the last) for ``images`` uint8 [B, n]."""
    h = images.astype(np.float32) / 255.0
    acts = []
    for i, w in enumerate(weights):
        h = h @ w.T
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
        acts.append(h)
    return acts


def calibrate(weights: list[np.ndarray], images: np.ndarray) -> list[tuple[float, int]]:
    """int8 (scale, zero point) of each layer's output from its range on ``images``."""
    scales = []
    acts = float_forward(weights, images)
    for i, a in enumerate(acts):
        if i < len(acts) - 1:  # ReLU output in [0, max]: zero point -128
            hi = max(float(a.max()), 1e-6)
            scales.append((hi / 255.0, -128))
        else:
            lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
            scale = max(hi - lo, 1e-6) / 255.0
            zp = int(np.clip(round(-128 - lo / scale), -128, 127))
            scales.append((scale, zp))
    return scales


def quantize_input(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.int16) - 128).astype(np.int8)


def tflite_predict(model: bytes, images: np.ndarray) -> np.ndarray:
    from edgesnn.interop.tflite_run import run_once

    outs = run_once(model, {"x": quantize_input(images)})
    return np.argmax(outs["logits"], axis=1)


def snn_ops(run_dir: Path, images: np.ndarray) -> tuple[float, float]:
    """The run's float SNN on ``images``: (predictions, mean synaptic ops per sample).

    Ops follow SPEC.md 3.4 for dense layers: every input or hidden spike adds its fan-out.
    """
    import torch

    from edgesnn.snn.checkpoint import load

    model, _ = load(run_dir)
    with torch.no_grad():
        out = model.forward_pixels(torch.from_numpy(images), record=True)
        cfg = model.config
        from edgesnn.data.encoders import encode

        x = encode(torch.from_numpy(images), cfg.encoder, cfg.steps, cfg.encoder_seed)
    sizes = cfg.layer_sizes
    if cfg.encoder == "direct":  # one MAC per nonzero pixel and hidden neuron, once
        ops = float((images > 0).sum(axis=1).mean()) * sizes[1]
    else:
        ops = float(x.sum(dim=(0, 2)).mean()) * sizes[1]
    for li, spikes in enumerate(out.layer_spikes[:-1]):
        ops += float(spikes.sum(dim=(0, 2)).mean()) * sizes[li + 2]
    return out.prediction().numpy(), ops


def ann_baseline(run_dir: Path, data_dir: Path | str | None = None, *, dataset: str = "mnist",
                 train_limit: int = 6000, test_limit: int = 1000, calib_limit: int = 500,
                 epochs: int = 2, seed: int = 0, out: Path | None = None) -> dict[str, Any]:
    """Train, quantize, export and evaluate the same-topology int8 ReLU ANN.

    Returns ``accuracy`` (int8 TFLite, on the first ``test_limit`` test images),
    ``float_accuracy`` (the float ANN), ``macs`` (per inference), ``tflite_bytes``,
    ``snn_accuracy`` / ``snn_synaptic_ops`` (the run's float SNN on the same images),
    ``interpreter`` and ``path`` (when ``out`` is given the ``.tflite`` is written there).
    """
    from edgesnn.atomic import atomic_file
    from edgesnn.data.datasets import load_dataset
    from edgesnn.interop.tflite_run import interpreter_class

    run_dir = Path(run_dir)
    snn = load_run(run_dir)
    train = load_dataset(dataset, "train", data_dir, limit=train_limit)
    test = load_dataset(dataset, "test", data_dir, limit=test_limit)
    sizes = [snn.input_size, *snn.hidden, snn.n_classes]
    weights = train_ann(sizes, train.images, train.labels, epochs=epochs, seed=seed)
    act = calibrate(weights, train.images[:calib_limit])
    model = ann_int8_model(weights, act, INPUT_QUANT)
    float_pred = np.argmax(float_forward(weights, test.images)[-1], axis=1)
    int8_pred = tflite_predict(model, test.images)
    snn_pred, sops = snn_ops(run_dir, test.images)
    labels = np.asarray(test.labels)
    _, interp = interpreter_class()
    summary: dict[str, Any] = {
        "topology": sizes,
        "accuracy": float((int8_pred == labels).mean()),
        "float_accuracy": float((float_pred == labels).mean()),
        "int8_float_agreement": float((int8_pred == float_pred).mean()),
        "macs": int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))),
        "tflite_bytes": len(model),
        "snn_accuracy": float((snn_pred == labels).mean()),
        "snn_synaptic_ops": sops,
        "test_samples": int(len(labels)),
        "interpreter": interp,
        "path": None,
    }
    if out is not None:
        with atomic_file(Path(out)) as tmp:
            tmp.write_bytes(model)
        summary["path"] = str(out)
    log.info("ANN baseline %s: int8 %.4f, float %.4f, SNN %.4f", sizes, summary["accuracy"],
             summary["float_accuracy"], summary["snn_accuracy"])
    return summary

"""int8 quantization (PTQ, QAT) and magnitude pruning of the ANN baseline, and
:func:`make_baseline`: train -> (prune + fine-tune) -> calibrate -> (QAT) -> ``model.eann``.

The integer network is :class:`edgesnn.graph.ann.AnnGraph` (semantics in its module doc and
``firmware/runtime/esnn_ann.h``). Scales, as TFLite / CMSIS-NN per-tensor int8:

* input: uint8 pixels, ``s_0 = 1/255``, zero point 0;
* weights: symmetric, ``s_w = max|W| / 127``, ``w_q = clip(round(W / s_w), -127, 127)``;
* bias: int32, ``b_q = round(b / (s_in * s_w))``;
* hidden activations: uint8 after ReLU, ``s_a`` = the ``act_percentile`` percentile of the
  float activations on calibration images / 255; requantization ``s_in * s_w / s_a`` as a
  fixed-point multiplier and shift (:func:`edgesnn.graph.ann.quantize_multiplier`);
* the last layer's int32 sums are the logits (argmax needs no requantization).

QAT (:class:`QatMLP`) runs the same arithmetic with fake quantization and straight-through
rounding, the activation scales fixed by calibration; its float forward differs from the
integer one only by the fixed-point multiplier's rounding.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgesnn.atomic import atomic_file, write_bytes, write_json
from edgesnn.data import Dataset
from edgesnn.graph import ann as gann
from edgesnn.snn.ann import AnnTrainOptions, ReluMLP, ann_predict, apply_masks, train_ann

log = logging.getLogger(__name__)

BLOB_FILE = "model.eann"
META_FILE = "ann.json"
CHECKPOINT_FILE = "ann.pt"


class AnnQuantError(ValueError):
    """Invalid quantization or pruning options."""


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    return (w.detach().abs().max() / 127.0).clamp_min(1e-12)


@torch.no_grad()
def calibrate(model: ReluMLP, images: np.ndarray, percentile: float = 99.99) -> list[float]:
    """Activation scale of every hidden layer: the ``percentile`` of its float ReLU outputs on
    ``images``, / 255."""
    if not 50.0 <= percentile <= 100.0:
        raise AnnQuantError(f"act_percentile={percentile}; accepted 50..100")
    model.eval()
    hidden, _ = model.hidden_and_logits(torch.from_numpy(np.ascontiguousarray(images)))
    scales = []
    for h in hidden:
        top = float(np.percentile(h.numpy().ravel(), percentile))
        scales.append(max(top, 1e-6) / 255.0)
    return scales


def quantize(model: ReluMLP, act_scales: list[float], storage: str = "dense",
             metadata: dict[str, Any] | None = None) -> gann.AnnGraph:
    """PTQ of ``model`` with the given hidden activation scales -> an integer graph."""
    if len(act_scales) != len(model.fcs) - 1:
        raise AnnQuantError(f"{len(act_scales)} activation scales for {len(model.fcs) - 1} "
                            "hidden layers")
    layers = []
    s_in = 1.0 / 255.0
    for li, fc in enumerate(model.fcs):
        w = fc.weight.detach().double()
        s_w = float(weight_scale(w))
        w_q = torch.clamp(torch.round(w / s_w), -127, 127).to(torch.int8).numpy().T.copy()
        bound = gann.INT32_MAX - gann.MAX_PRODUCT * w_q.shape[0]
        b_q = torch.round(fc.bias.detach().double() / (s_in * s_w)).clamp(-bound, bound)
        bias = b_q.to(torch.int64).numpy().astype(np.int32)
        if li < len(model.fcs) - 1:
            mult, shift = gann.quantize_multiplier(s_in * s_w / act_scales[li])
            s_next = act_scales[li]
        else:
            mult, shift, s_next = 0, 0, s_in
        layers.append(gann.AnnLayer(np.ascontiguousarray(w_q), bias, mult, shift, storage,
                                    name=f"fc{li}"))
        s_in = s_next
    return gann.AnnGraph(model.sizes[0], layers, dict(metadata or {})).validate()


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return torch.round(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return g


def _round(x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = _RoundSTE.apply(x)
    return out


class QatMLP(nn.Module):
    """Fake-quantized forward of :func:`quantize`'s integer network (weights re-scaled every
    step, activation scales fixed), straight-through rounding; trains ``base`` in place."""

    def __init__(self, base: ReluMLP, act_scales: list[float]) -> None:
        super().__init__()
        self.base = base
        self.act_scales = list(act_scales)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(self.base.fcs[0].weight.dtype) / 255.0
        s_in = 1.0 / 255.0
        n = len(self.base.fcs)
        for li, fc in enumerate(self.base.fcs):
            s_w = weight_scale(fc.weight)
            w_q = torch.clamp(_round(fc.weight / s_w), -127, 127) * s_w
            b_q = _round(fc.bias / (s_in * s_w)) * (s_in * s_w)
            x = nn.functional.linear(x, w_q, b_q)
            if li < n - 1:
                s_a = self.act_scales[li]
                x = torch.clamp(_round(x / s_a), 0, 255) * s_a
                s_in = s_a
        return x


def magnitude_masks(model: ReluMLP, keep: float) -> list[torch.Tensor]:
    """Per layer, 1 for the ``keep`` fraction of weights with the largest magnitude."""
    if not 0.0 < keep <= 1.0:
        raise AnnQuantError(f"keep={keep}; accepted 0 < keep <= 1")
    masks = []
    for fc in model.fcs:
        w = fc.weight.detach().abs().ravel()
        k = max(1, int(round(keep * w.numel())))
        cut = torch.topk(w, k).values.min()
        masks.append((fc.weight.detach().abs() >= cut).to(fc.weight.dtype))
    return masks


@dataclass
class AnnBaselineOptions:
    hidden: tuple[int, ...] = (256,)
    train: AnnTrainOptions = field(default_factory=AnnTrainOptions)
    keep: float = 1.0  # fraction of weights kept (gradual magnitude pruning when < 1)
    prune_epochs: int = 4  # one fine-tuning epoch per pruning stage
    qat_epochs: int = 0
    qat_lr: float = 2e-4
    calib_limit: int = 2000
    act_percentile: float = 99.99
    storage: str = "dense"
    train_limit: int | None = None
    test_limit: int | None = None

    def validate(self) -> AnnBaselineOptions:
        self.train.validate()
        if self.storage not in gann.STORAGES:
            raise AnnQuantError(f"storage {self.storage!r}; accepted: {', '.join(gann.STORAGES)}")
        if not 0.0 < self.keep <= 1.0:
            raise AnnQuantError(f"keep={self.keep}; accepted 0 < keep <= 1")
        if self.qat_epochs < 0 or self.prune_epochs < 0 or self.calib_limit < 1:
            raise AnnQuantError("qat_epochs and prune_epochs must be >= 0, calib_limit >= 1")
        return self


def make_baseline(train_data: Dataset, test_data: Dataset, opts: AnnBaselineOptions,
                  out: Path | str | None = None,
                  model: ReluMLP | None = None) -> tuple[gann.AnnGraph, dict[str, Any]]:
    """Train (unless ``model`` is given), prune, calibrate, QAT and quantize the ANN baseline;
    evaluate float and integer (numpy twin) accuracy on ``test_data``. With ``out``, writes
    ``model.eann``, ``ann.json`` (options, scales, accuracies) and ``ann.pt`` atomically."""
    opts.validate()
    t0 = time.monotonic()
    sizes = [int(train_data.images.shape[1]), *opts.hidden, int(train_data.labels.max()) + 1]
    stats: dict[str, Any] = {"sizes": sizes}
    if model is None:
        torch.manual_seed(opts.train.seed)
        model = ReluMLP(sizes)
        stats["train"] = train_ann(model, train_data, opts.train)
    stats["float_accuracy"] = _acc(ann_predict(model, test_data.images), test_data.labels)
    masks = None
    if opts.keep < 1.0:
        stats["prune_schedule"] = []
        for stage in range(1, max(1, opts.prune_epochs) + 1):
            # gradual magnitude pruning (Zhu & Gupta 2017): keep_e falls as a cubic to keep
            frac = stage / max(1, opts.prune_epochs)
            keep_e = opts.keep + (1.0 - opts.keep) * (1.0 - frac) ** 3
            masks = magnitude_masks(model, keep_e)
            apply_masks(model, masks)
            stats["prune_schedule"].append(keep_e)
            if opts.prune_epochs:
                ft = AnnTrainOptions(**{**asdict(opts.train), "epochs": 1,
                                        "lr": opts.train.lr / 2, "seed": opts.train.seed + stage})
                train_ann(model, train_data, ft, masks)
        stats["pruned_float_accuracy"] = _acc(ann_predict(model, test_data.images),
                                              test_data.labels)
    rng = np.random.default_rng(opts.train.seed)
    calib_idx = rng.choice(len(train_data), size=min(opts.calib_limit, len(train_data)),
                           replace=False)
    scales = calibrate(model, train_data.images[np.sort(calib_idx)], opts.act_percentile)
    graph = quantize(model, scales, opts.storage)
    stats["ptq_golden_accuracy"] = _acc(gann.infer(graph, test_data.images).pred,
                                        test_data.labels)
    if opts.qat_epochs:
        qat = QatMLP(model, scales)
        ft = AnnTrainOptions(**{**asdict(opts.train), "epochs": opts.qat_epochs,
                                "lr": opts.qat_lr})
        stats["qat"] = train_ann(qat, train_data, ft, masks)
        stats["qat_float_accuracy"] = _acc(ann_predict(qat, test_data.images), test_data.labels)
        graph = quantize(model, scales, opts.storage)
    golden = gann.infer(graph, test_data.images)
    stats.update({
        "golden_accuracy": _acc(golden.pred, test_data.labels),
        "quantization": "qat" if opts.qat_epochs else "ptq",
        "act_scales": scales,
        "weight_density": [layer.nnz / layer.weights.size for layer in graph.layers],
        "test_samples": len(test_data), "train_samples": len(train_data),
        "mean_macs": float(golden.macs.sum(axis=1).mean()),
        "options": {**asdict(opts), "hidden": list(opts.hidden)},
        "wall_s": time.monotonic() - t0,
    })
    graph.metadata = {"ann": {k: stats[k] for k in ("sizes", "quantization", "golden_accuracy",
                                                    "act_scales", "weight_density")}}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_bytes(out / BLOB_FILE, gann.encode(graph))
        with atomic_file(out / CHECKPOINT_FILE) as tmp:
            torch.save({"sizes": sizes, "state_dict": model.state_dict()}, tmp)
        write_json(out / META_FILE, stats)
    log.info("ANN baseline %s: float %.4f, int8 golden %.4f (%s, keep %.2f, %s)",
             "-".join(map(str, sizes)), stats["float_accuracy"], stats["golden_accuracy"],
             stats["quantization"], opts.keep, opts.storage)
    return graph, stats


def load_baseline(folder: Path | str) -> tuple[gann.AnnGraph, dict[str, Any]]:
    """The graph and statistics :func:`make_baseline` wrote to ``folder``."""
    folder = Path(folder)
    graph = gann.decode((folder / BLOB_FILE).read_bytes())
    stats = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    return graph, stats


def _acc(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(labels))) if len(labels) else 0.0

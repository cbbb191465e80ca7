"""ANN -> SNN conversion (Diehl et al., IJCNN 2015, "Fast-classifying, high-accuracy spiking
deep networks through weight and threshold balancing").

1. Train a bias-free ReLU MLP of the same topology on ``pixels / 255``.
2. Data-based normalisation: for every layer ``l`` let ``lambda_l`` be the largest (``max``)
   or the ``percentile``-th percentile (Rueckauer et al. 2017; default 99.9) ReLU activation
   over calibration images (``lambda_{-1} = 1`` for inputs in [0, 1]); scale
   ``W_l <- W_l * lambda_{l-1} / lambda_l`` so that every layer's activations stay <= 1.
3. Use the weights in a :class:`SpikingMLP` of IF neurons (``beta = 1``), threshold 1,
   subtract reset (so the spike rate of neuron ``j`` approximates its normalised ANN
   activation), with the configured encoder and ``T``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgesnn.data import load_dataset
from edgesnn.progress import progress as progress_bar
from edgesnn.snn import checkpoint
from edgesnn.snn.config import SNNConfig
from edgesnn.snn.model import SpikingMLP
from edgesnn.snn.train import TrainError, TrainOptions, evaluate, write_metrics

log = logging.getLogger(__name__)
NORMS = ("percentile", "max")


@dataclass
class ConvertOptions:
    epochs: int = 3
    lr: float = 3e-3
    batch_size: int = 64
    norm: str = "percentile"
    percentile: float = 99.9
    calib_samples: int = 2000
    steps_sweep: tuple[int, ...] = (10, 25, 50, 100)

    def validate(self) -> ConvertOptions:
        if self.norm not in NORMS:
            raise TrainError(f"norm={self.norm!r}; accepted: {', '.join(NORMS)}")
        if not 0 < self.percentile <= 100:
            raise TrainError(f"percentile={self.percentile}; accepted: (0, 100]")
        if self.epochs < 1 or self.batch_size < 1 or self.calib_samples < 1 or self.lr <= 0:
            raise TrainError("epochs, batch_size, calib_samples and lr must be positive")
        return self


def relu_mlp(sizes: list[int]) -> nn.Sequential:
    """Bias-free ``Linear -> ReLU`` stack (no ReLU after the last layer)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=False))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _linears(ann: nn.Sequential) -> list[nn.Linear]:
    return [m for m in ann if isinstance(m, nn.Linear)]


def train_ann(sizes: list[int], images: np.ndarray, labels: np.ndarray, copts: ConvertOptions,
              seed: int = 0, progress: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    ann = relu_mlp(sizes)
    opt = torch.optim.Adam(ann.parameters(), lr=copts.lr)
    x_all = torch.from_numpy(images).float() / 255.0
    y_all = torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(seed)
    total = copts.epochs * math.ceil(len(y_all) / copts.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / max(total, 1), 1.0))))
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(copts.epochs):
        order = torch.randperm(len(y_all), generator=gen)
        bar = progress_bar(range(0, len(order), copts.batch_size), enabled=progress,
                           desc=f"ANN epoch {epoch + 1}/{copts.epochs}", unit="batch")
        for i in bar:
            idx = order[i:i + copts.batch_size]
            loss = loss_fn(ann(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return ann.eval()


@torch.no_grad()
def activation_scales(ann: nn.Sequential, images: np.ndarray, norm: str = "percentile",
                      percentile: float = 99.9) -> list[float]:
    """``lambda_l`` per Linear layer: max or percentile of its (ReLU) output over ``images``."""
    x = torch.from_numpy(images).float() / 255.0
    scales = []
    for m in ann:
        x = m(x)
        if isinstance(m, nn.Linear):
            act = x.clamp_min(0).flatten()
            positive = act[act > 0]
            if positive.numel() == 0:
                scales.append(1.0)
                continue
            lam = float(positive.max()) if norm == "max" else \
                float(torch.quantile(positive.double(), percentile / 100.0)) \
                if positive.numel() <= 16_000_000 else float(np.percentile(positive.numpy(),
                                                                           percentile))
            scales.append(max(lam, 1e-6))
    return scales


def to_snn(ann: nn.Sequential, config: SNNConfig, scales: list[float]) -> SpikingMLP:
    """Normalised weights in an IF / subtract-reset / threshold-1 :class:`SpikingMLP`."""
    cfg = replace(config, neuron="if", beta=1.0, reset="subtract", threshold=1.0,
                  learn_beta=False, learn_threshold=False).validate()
    snn = SpikingMLP(cfg)
    prev = 1.0
    with torch.no_grad():
        for fc, lin, lam in zip(snn.fcs, _linears(ann), scales, strict=True):
            fc.weight.copy_(lin.weight * (prev / lam))
            prev = lam
    return snn.eval()


def accuracy_vs_steps(snn: SpikingMLP, dataset: Any, steps: tuple[int, ...]) -> dict[int, float]:
    out = {}
    for t in steps:
        m = SpikingMLP(replace(snn.config, steps=int(t)))
        m.load_state_dict(snn.state_dict())
        out[int(t)] = evaluate(m, dataset)
    return out


def convert_and_save(config: SNNConfig, opts: TrainOptions, copts: ConvertOptions,
                     out: Path | str, data_dir: Path | str | None = None) -> dict[str, Any]:
    """Train the ANN, convert it, write the run directory; returns the ``train.json`` metrics
    (``test_accuracy`` of the SNN at ``config.steps``, ``ann_accuracy``,
    ``accuracy_vs_steps``)."""
    opts.validate()
    copts.validate()
    out = Path(out)
    t0 = time.perf_counter()
    train_set = load_dataset(opts.dataset, "train", data_dir, opts.train_limit)
    test_set = load_dataset(opts.dataset, "test", data_dir, opts.test_limit)
    ann = train_ann(config.layer_sizes, train_set.images, train_set.labels, copts, opts.seed,
                    opts.progress)
    with torch.no_grad():
        ann_pred = ann(torch.from_numpy(test_set.images).float() / 255.0).argmax(1).numpy()
    ann_acc = float((ann_pred == test_set.labels).mean())
    scales = activation_scales(ann, train_set.images[:copts.calib_samples], copts.norm,
                               copts.percentile)
    snn = to_snn(ann, config, scales)
    train_time = time.perf_counter() - t0
    acc = evaluate(snn, test_set)
    sweep = accuracy_vs_steps(snn, test_set, tuple(sorted(set(copts.steps_sweep))))
    metrics: dict[str, Any] = {
        "test_accuracy": acc, "ann_accuracy": ann_acc, "method": "convert",
        "accuracy_vs_steps": {str(k): v for k, v in sweep.items()}, "scales": scales,
        "test_samples": len(test_set), "train_samples": len(train_set),
        "epochs": copts.epochs, "train_time_s": round(train_time, 3),
        "config": snn.config.to_dict(), "options": asdict(opts),
        "convert_options": {**asdict(copts), "steps_sweep": list(copts.steps_sweep)},
        "dataset": opts.dataset, "run_dir": str(out), "world_size": 1, "rank": 0,
    }
    meta = {k: copy.deepcopy(v) for k, v in metrics.items() if k not in ("config", "run_dir")}
    checkpoint.save(out, snn, meta)
    write_metrics(out, metrics)
    return metrics

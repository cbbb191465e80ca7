"""The ANN an SNN is compared against: the same topology with ReLU units, trained in float.

``ReluMLP(sizes)`` is ``Linear -> ReLU -> ... -> Linear`` (with biases) on pixels / 255, the
network :mod:`edgesnn.compress.ann` quantizes to int8 (PTQ, QAT) and prunes, and
``firmware/runtime/esnn_ann.c`` runs. :func:`train_ann` is a plain Adam / cross-entropy loop
with a per-batch cosine schedule and the SNN trainer's optional ±k px shift augmentation and
label smoothing; ``masks`` keeps pruned weights at zero during fine-tuning.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgesnn.data import Dataset
from edgesnn.snn.augment import random_shift

log = logging.getLogger(__name__)


class AnnTrainError(ValueError):
    """Invalid ANN training options."""


class ReluMLP(nn.Module):
    """``sizes = [input, hidden..., classes]``; input is uint8 pixels scaled to [0, 1]."""

    def __init__(self, sizes: list[int] | tuple[int, ...]) -> None:
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise AnnTrainError(f"layer sizes {list(sizes)}; need >= 2 sizes, each >= 1")
        self.sizes = [int(s) for s in sizes]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.sizes[:-1],
                                                                   self.sizes[1:], strict=True))

    def hidden_and_logits(self, pixels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The ReLU activations of every hidden layer and the logits."""
        x = pixels.to(self.fcs[0].weight.dtype) / 255.0
        hidden = []
        for fc in self.fcs[:-1]:
            x = torch.relu(fc(x))
            hidden.append(x)
        return hidden, self.fcs[-1](x)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.hidden_and_logits(pixels)[1]


@dataclass
class AnnTrainOptions:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0
    augment_shift: int = 0
    label_smoothing: float = 0.0

    def validate(self) -> AnnTrainOptions:
        checks = [(self.epochs >= 1, f"epochs={self.epochs}; must be >= 1"),
                  (self.batch_size >= 1, f"batch_size={self.batch_size}; must be >= 1"),
                  (self.lr > 0, f"lr={self.lr}; must be > 0"),
                  (0 <= self.augment_shift <= 8,
                   f"augment_shift={self.augment_shift}; accepted: 0..8 pixels"),
                  (0.0 <= self.label_smoothing < 1.0,
                   f"label_smoothing={self.label_smoothing}; accepted: 0 <= value < 1")]
        for ok, msg in checks:
            if not ok:
                raise AnnTrainError(msg)
        return self


def apply_masks(model: ReluMLP, masks: list[torch.Tensor] | None) -> None:
    """Zero the pruned weights (``masks[l]`` is 1 where layer ``l`` keeps a weight)."""
    if masks is None:
        return
    with torch.no_grad():
        for fc, mask in zip(model.fcs, masks, strict=True):
            fc.weight.mul_(mask)


def train_ann(model: nn.Module, data: Dataset, opts: AnnTrainOptions,
              masks: list[torch.Tensor] | None = None) -> dict[str, float]:
    """Train ``model`` (a :class:`ReluMLP` or a module with the same call signature, e.g. the
    QAT wrapper) on ``data`` in place; returns the last epoch's loss and the wall time."""
    opts.validate()
    gen = torch.Generator().manual_seed(opts.seed)
    torch.manual_seed(opts.seed)
    images = torch.from_numpy(np.ascontiguousarray(data.images))
    labels = torch.from_numpy(np.ascontiguousarray(data.labels)).long()
    n = len(labels)
    steps = opts.epochs * math.ceil(n / opts.batch_size)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    lossf = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    base = model.base if hasattr(model, "base") else model
    t0 = time.monotonic()
    loss_sum = 0.0
    model.train()
    for epoch in range(opts.epochs):
        perm = torch.randperm(n, generator=gen)
        loss_sum, batches = 0.0, 0
        for start in range(0, n, opts.batch_size):
            idx = perm[start:start + opts.batch_size]
            x = images[idx]
            if opts.augment_shift:
                x = random_shift(x, opts.augment_shift, gen)
            loss = lossf(model(x), labels[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            if isinstance(base, ReluMLP):
                apply_masks(base, masks)
            loss_sum += loss.item()
            batches += 1
        log.info("ann epoch %d/%d: loss %.4f", epoch + 1, opts.epochs, loss_sum / batches)
        loss_sum /= batches
    model.eval()
    return {"loss": loss_sum, "train_s": time.monotonic() - t0}


@torch.no_grad()
def ann_predict(model: nn.Module, images: np.ndarray, batch_size: int = 2000) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(images[k:k + batch_size]))).argmax(1)
           for k in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)

"""Surrogate-gradient training of a :class:`SpikingMLP`, and float evaluation.

Recipe: Adam, cross-entropy on the output spike counts times ``loss_scale`` (counts are
``0..T``, so the scale sets how sharp the softmax is), a per-batch cosine (or step) learning
rate schedule, fresh Bernoulli rate noise for every batch (``stochastic=True``) and the
deterministic SPEC encoder for evaluation. Optional: random ``±augment_shift`` pixel
translations of the training images (:mod:`edgesnn.snn.augment`, before encoding) and label
smoothing. ``spike_reg`` adds ``spike_reg x`` the hidden layers' firing rate (spikes per
neuron and step, averaged over the batch) to the loss: fewer hidden events, and on a device
every event costs a row of synaptic operations (:func:`hidden_rate`). Works in one process
or under ``torchrun`` (gloo, :class:`DistributedSampler`; rank 0 writes the run directory).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from edgesnn.atomic import write_json
from edgesnn.data import Dataset, load_dataset
from edgesnn.progress import progress
from edgesnn.snn import checkpoint
from edgesnn.snn.augment import AugmentError, image_side, random_shift
from edgesnn.snn.config import SCHEDULES, SPIKE_REG, SNNConfig
from edgesnn.snn.model import SpikingMLP, readout

log = logging.getLogger(__name__)

TRAIN_FILE = "train.json"


class TrainError(ValueError):
    """Invalid training options, or a run directory that cannot be resumed."""


@dataclass
class TrainOptions:
    epochs: int = 2
    batch_size: int = 128
    lr: float = 5e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    loss_scale: float = 0.5
    train_limit: int | None = None
    test_limit: int | None = None
    seed: int = 0
    dataset: str = "mnist"
    eval_batch_size: int = 1000
    resume: bool = False
    progress: bool = True
    augment_shift: int = 0
    label_smoothing: float = 0.0
    spike_reg: float = SPIKE_REG

    def validate(self) -> TrainOptions:
        checks = [
            (self.epochs >= 1, f"epochs={self.epochs}; must be >= 1"),
            (self.batch_size >= 1, f"batch_size={self.batch_size}; must be >= 1"),
            (self.lr > 0, f"lr={self.lr}; must be > 0"),
            (self.schedule in SCHEDULES,
             f"schedule={self.schedule!r}; accepted: {', '.join(SCHEDULES)}"),
            (self.loss_scale > 0, f"loss_scale={self.loss_scale}; must be > 0"),
            (self.train_limit is None or self.train_limit >= 1,
             f"train_limit={self.train_limit}; must be >= 1"),
            (self.test_limit is None or self.test_limit >= 1,
             f"test_limit={self.test_limit}; must be >= 1"),
            (0 <= self.augment_shift <= 8,
             f"augment_shift={self.augment_shift}; accepted: 0..8 pixels"),
            (0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing={self.label_smoothing}; accepted: 0 <= value < 1"),
            (math.isfinite(self.spike_reg) and self.spike_reg >= 0.0,
             f"spike_reg={self.spike_reg}; accepted: a finite value >= 0 (0 = off)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainError(msg)
        return self


def _lr_factor(schedule: str, total: int):
    def factor(step: int) -> float:
        frac = min(step / max(total, 1), 1.0)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * frac))
        if schedule == "step":
            return 1.0 if frac < 0.5 else (0.1 if frac < 0.75 else 0.01)
        return 1.0
    return factor


@torch.no_grad()
def predict(model: SpikingMLP, images: np.ndarray | torch.Tensor,
            batch_size: int = 1000) -> torch.Tensor:
    """SPEC 3.3 predictions with the deterministic encoder, in batches."""
    model.eval()
    pixels = torch.as_tensor(images)
    out = [readout(*_counts(model, pixels[i:i + batch_size]))
           for i in range(0, pixels.shape[0], batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def _counts(model: SpikingMLP, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    o = model.forward_pixels(pixels)
    return o.counts, o.v_final


@torch.no_grad()
def hidden_spike_rate(model: SpikingMLP, images: np.ndarray | torch.Tensor,
                      batch_size: int = 1000) -> float:
    """:func:`hidden_rate` of the float model with the deterministic encoder on ``images``."""
    model.eval()
    pixels = torch.as_tensor(images)
    fired = slots = 0.0
    for i in range(0, pixels.shape[0], batch_size):
        spikes = model.forward_pixels(pixels[i:i + batch_size], record=True).layer_spikes
        for s in (spikes or [])[:-1]:
            fired += float(s.sum())
            slots += s.numel()
    return fired / slots if slots else 0.0


def evaluate(model: SpikingMLP, dataset: Dataset, batch_size: int = 1000) -> float:
    """Test accuracy (fraction) with the deterministic encoder and the SPEC readout."""
    if len(dataset) == 0:
        raise TrainError(f"{dataset.name} {dataset.split}: no samples to evaluate")
    pred = predict(model, dataset.images, batch_size)
    return float((pred.numpy() == dataset.labels).mean())


def hidden_rate(layer_spikes: list[torch.Tensor]) -> torch.Tensor:
    """Firing rate of the hidden layers: their spikes over every (step, sample, neuron) slot,
    the output layer (``layer_spikes[-1]``) left out. Differentiable through the surrogate
    gradient; 0 for a network without hidden layers."""
    hidden = layer_spikes[:-1]
    if not hidden:
        return layer_spikes[-1].new_zeros(())
    fired = sum(s.sum() for s in hidden)
    slots = sum(s.numel() for s in hidden)
    return fired / slots


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _maybe_init_distributed() -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        return True
    return False


def train(config: SNNConfig, opts: TrainOptions, out: Path | str,
          data_dir: Path | str | None = None) -> dict[str, Any]:
    """Train ``config`` on ``opts.dataset``; writes ``out/model.pt``, ``config.json`` (each
    epoch) and ``train.json`` (at the end). Returns the ``train.json`` metrics."""
    opts.validate()
    config.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"out={str(out)!r} is a file; give a run directory (a new one, or an "
                         "earlier run with resume=True)")
    started_group = _maybe_init_distributed()
    try:
        return _train(config, opts, out, data_dir)
    finally:
        if started_group:
            dist.destroy_process_group()


def _train(config: SNNConfig, opts: TrainOptions, out: Path,
           data_dir: Path | str | None) -> dict[str, Any]:
    rank, world = _dist_info()
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed % 2**32)
    train_set = load_dataset(opts.dataset, "train", data_dir, opts.train_limit)
    test_set = load_dataset(opts.dataset, "test", data_dir, opts.test_limit)
    if train_set.images.shape[1] != config.input_size:
        raise TrainError(f"{opts.dataset} has {train_set.images.shape[1]} inputs but "
                         f"config.input_size={config.input_size}")
    if opts.augment_shift:
        try:
            image_side(config.input_size)
        except AugmentError as exc:
            raise TrainError(str(exc)) from exc

    model = SpikingMLP(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sampler = DistributedSampler(range(len(train_set)), num_replicas=world, rank=rank,
                                 shuffle=True, seed=opts.seed, drop_last=False)
    per_epoch = math.ceil(len(sampler) / opts.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(opts.schedule, per_epoch * opts.epochs))
    start_epoch = 0
    history: list[dict[str, Any]] = []
    if opts.resume and (out / checkpoint.MODEL_FILE).is_file():
        payload = checkpoint.load_raw(out)
        if payload["config"] != config.to_dict():
            log.warning("resuming %s with the checkpoint's config, not the one given", out)
            config = SNNConfig.from_dict(payload["config"])
            model = SpikingMLP(config)
            optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr,
                                         weight_decay=opts.weight_decay)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, _lr_factor(opts.schedule, per_epoch * opts.epochs))
        model.load_state_dict(payload["state_dict"])
        if "optimizer" in payload:
            optimizer.load_state_dict(payload["optimizer"])
        if "scheduler" in payload:
            scheduler.load_state_dict(payload["scheduler"])
        start_epoch = int(payload.get("epoch", -1)) + 1
        history = list(payload.get("meta", {}).get("history", []))
        log.info("resuming %s at epoch %d", out, start_epoch)

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    images = torch.from_numpy(train_set.images)
    labels = torch.from_numpy(train_set.labels)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    t_start = time.perf_counter()
    meta_base = {
        "dataset": opts.dataset, "train_samples": len(train_set), "test_samples": len(test_set),
        "data_source": str(train_set.source), "options": asdict(opts), "world_size": world,
        "method": "surrogate",
    }
    for epoch in range(start_epoch, opts.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.long)
        gen = torch.Generator().manual_seed(opts.seed * 1_000_003 + epoch * 7919 + rank)
        # a separate stream, so switching augmentation on leaves the rate noise unchanged
        aug_gen = torch.Generator().manual_seed(opts.seed * 1_000_033 + epoch * 7927 + rank)
        net.train()
        seen = correct = 0
        loss_sum = rate_sum = 0.0
        bar = progress(range(0, len(order), opts.batch_size), unit="batch",
                       desc=f"epoch {epoch + 1}/{opts.epochs}",
                       enabled=opts.progress and rank == 0)
        for i in bar:
            idx = order[i:i + opts.batch_size]
            x, y = images[idx], labels[idx]
            if opts.augment_shift:
                x = random_shift(x, opts.augment_shift, aug_gen)
            record = opts.spike_reg > 0
            o = model.forward_pixels(x, stochastic=True, generator=gen, record=record) \
                if world == 1 else net(_encode_for(model, x, gen), record=record)
            loss = loss_fn(o.counts * opts.loss_scale, y)
            if record:
                assert o.layer_spikes is not None  # record=True fills it
                rate = hidden_rate(o.layer_spikes)
                loss = loss + opts.spike_reg * rate
                rate_sum += float(rate.detach()) * len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                correct += int((readout(o.counts, o.v_final) == y).sum())
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        stats = torch.tensor([loss_sum, correct, seen, rate_sum], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(stats)
        history.append({"epoch": epoch + 1, "train_loss": float(stats[0] / stats[2]),
                        "train_accuracy": float(stats[1] / stats[2]),
                        **({"train_hidden_rate": float(stats[3] / stats[2])}
                           if opts.spike_reg > 0 else {}),
                        "lr": float(scheduler.get_last_lr()[0]),
                        "elapsed_s": round(time.perf_counter() - t_start, 3)})
        log.info("epoch %d: %s", epoch + 1, history[-1])
        if rank == 0:
            checkpoint.save(out, model, {**meta_base, "history": history}, optimizer=optimizer,
                            scheduler=scheduler, epoch=epoch)
    train_time = time.perf_counter() - t_start
    acc = evaluate(model, test_set, opts.eval_batch_size)
    digest = state_digest(model)
    metrics: dict[str, Any] = {
        "test_accuracy": acc, "test_samples": len(test_set), "train_samples": len(train_set),
        "epochs": opts.epochs, "train_time_s": round(train_time, 3), "history": history,
        "config": config.to_dict(), "options": asdict(opts), "world_size": world,
        "dataset": opts.dataset, "method": "surrogate", "run_dir": str(out), "rank": rank,
        "model_digest": digest,
    }
    if rank == 0:
        write_metrics(out, metrics)
    return metrics


def state_digest(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes): identifies the weights."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        arr = t.detach().cpu().contiguous().numpy()
        h.update(f"{name}|{arr.dtype}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _encode_for(model: SpikingMLP, pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    from edgesnn.data.encoders import encode

    cfg = model.config
    return encode(pixels, cfg.encoder, cfg.steps, cfg.encoder_seed, stochastic=True,
                  generator=gen)


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path:
    path = out / TRAIN_FILE
    write_json(path, metrics)
    return path

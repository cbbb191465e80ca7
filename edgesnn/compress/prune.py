"""Pruning of an :class:`~edgesnn.compress.qat.IntegerSNN`.

* **magnitude** pruning to a target sparsity, ``global`` (one magnitude cut over all layers,
  measured on the float weights ``latent * scale`` so layers with different scales compare
  fairly) or ``layer`` (every layer reaches the sparsity). Masks are buffers of the module:
  :func:`~edgesnn.compress.qat.finetune` re-applies them after every optimizer step, so pruned
  weights stay exactly 0 through QAT.
* **structured** neuron pruning: hidden neurons that never fire on calibration data (and,
  optionally, the least important fraction by ``spikes x outgoing |w|``) are removed: their row
  of layer ``l`` and their column of layer ``l + 1`` disappear.
* an **iterative** schedule (cubic, Zhu & Gupta 2017, arXiv:1710.01878) that alternates
  pruning and fine-tuning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from edgesnn.compress.qat import IntegerSNN, LayerSpec

log = logging.getLogger(__name__)

SCOPES = ("global", "layer")


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity}; accepted: 0 <= sparsity < 1")


def float_magnitudes(model: IntegerSNN) -> list[np.ndarray]:
    """|float weight| per layer, ``[n_out, n_in]``: latent times the layer's scale."""
    out = []
    for idx, spec in enumerate(model.specs):
        u = model.latent[idx].detach().numpy()
        scale = np.asarray(spec.scale, dtype=np.float64).reshape(-1)
        col = scale[:, None] if scale.size > 1 else scale.reshape(1, 1)
        out.append(np.abs(u * col))
    return out


def magnitude_masks(magnitudes: list[np.ndarray], sparsity: float, *, scope: str = "global",
                    keep: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """0/1 masks that zero the smallest ``sparsity`` fraction of weights.

    ``keep``: current masks; weights already pruned stay pruned (they count toward the
    target). Exactly ``round(sparsity * n)`` weights are pruned per scope (ties broken by
    position, so the result is deterministic).
    """
    _check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"prune scope {scope!r}; accepted: {', '.join(SCOPES)}")
    mags = [np.where(keep[i] > 0, m, -1.0) if keep is not None else m
            for i, m in enumerate(magnitudes)]

    def cut(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(-1)
        n_prune = int(round(sparsity * flat.size))
        mask = np.ones(flat.size, dtype=np.float64)
        if n_prune:
            order = np.argsort(flat, kind="stable")
            mask[order[:n_prune]] = 0.0
        return mask

    if scope == "layer":
        return [cut(m).reshape(m.shape) for m in mags]
    flat = cut(np.concatenate([m.reshape(-1) for m in mags]))
    masks, start = [], 0
    for m in mags:
        masks.append(flat[start:start + m.size].reshape(m.shape))
        start += m.size
    return masks


def prune_magnitude(model: IntegerSNN, sparsity: float, *, scope: str = "global") -> None:
    """Set ``model``'s masks so that ``sparsity`` of its weights are pruned (in place)."""
    keep = [model.mask(i).numpy() for i in range(model.n_layers)]
    masks = magnitude_masks(float_magnitudes(model), sparsity, scope=scope, keep=keep)
    for idx, m in enumerate(masks):
        model.set_mask(idx, torch.as_tensor(m))


def weight_sparsity(model: IntegerSNN) -> float:
    """Fraction of the integer weights that are exactly zero (pruned or rounded to 0)."""
    zeros = total = 0
    for idx in range(model.n_layers):
        w = model.int_weights(idx)
        zeros += int(w.size - np.count_nonzero(w))
        total += int(w.size)
    return zeros / max(total, 1)


def mask_sparsity(model: IntegerSNN) -> float:
    """Fraction of weights removed by the masks."""
    zeros = sum(int((model.mask(i) == 0).sum()) for i in range(model.n_layers))
    total = sum(model.mask(i).numel() for i in range(model.n_layers))
    return zeros / max(total, 1)


@torch.no_grad()
def neuron_spikes(model: IntegerSNN, pixels: np.ndarray, batch_size: int = 256
                  ) -> list[np.ndarray]:
    """Spikes per neuron of every layer, summed over ``pixels`` and steps."""
    totals = [np.zeros(model.latent[i].shape[0]) for i in range(model.n_layers)]
    for start in range(0, len(pixels), batch_size):
        out = model(pixels[start:start + batch_size], per_neuron=True)
        for idx, counts in enumerate(out.neuron_spikes or []):
            totals[idx] += counts.sum(dim=0).numpy()
    return totals


def _slice_spec(spec: LayerSpec, rows: np.ndarray) -> LayerSpec:
    def pick(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a).reshape(-1)
        return a if a.size == 1 else a[rows]

    extra = dict(spec.extra)
    for key in ("threshold_float", "beta_float"):
        if key in extra and len(extra[key]) > 1:
            extra[key] = list(np.asarray(extra[key])[rows])
    return LayerSpec(threshold=pick(spec.threshold), leak=pick(spec.leak),
                     scale=pick(spec.scale), neuron=spec.neuron, reset=spec.reset,
                     name=spec.name, extra=extra, fire=spec.fire,
                     bias=None if spec.bias is None else np.asarray(spec.bias)[rows],
                     syn_leak=None if spec.syn_leak is None else pick(spec.syn_leak))


def prune_neurons(model: IntegerSNN, pixels: np.ndarray, *, drop_fraction: float = 0.0
                  ) -> tuple[IntegerSNN, dict[str, Any]]:
    """Structured pruning: a new module without the hidden neurons that never fire on
    ``pixels`` and, with ``drop_fraction`` > 0, without that fraction of the remaining ones
    with the least ``spikes x sum |outgoing float weight|``. At least one neuron per layer is
    kept; the output layer is never touched."""
    if not 0.0 <= drop_fraction < 1.0:
        raise ValueError(f"drop_fraction={drop_fraction}; accepted: 0 <= f < 1")
    spikes = neuron_spikes(model, pixels)
    mags = float_magnitudes(model)
    keep_rows: list[np.ndarray] = []
    report = []
    for idx in range(model.n_layers - 1):
        fired = spikes[idx]
        importance = fired * mags[idx + 1].sum(axis=0)
        alive = np.flatnonzero(fired > 0)
        if alive.size and drop_fraction > 0:
            n_drop = int(drop_fraction * alive.size)
            order = alive[np.argsort(importance[alive], kind="stable")]
            alive = np.sort(order[n_drop:])
        if alive.size == 0:
            alive = np.array([int(np.argmax(importance))])
        keep_rows.append(alive)
        report.append({"layer": idx, "before": int(fired.size), "after": int(alive.size),
                       "silent": int((fired == 0).sum())})
    keep_rows.append(np.arange(model.latent[-1].shape[0]))
    latents, masks, specs = [], [], []
    cols = np.arange(model.input_size)
    for idx in range(model.n_layers):
        rows = keep_rows[idx]
        u = model.latent[idx].detach().numpy()[np.ix_(rows, cols)]
        m = model.mask(idx).numpy()[np.ix_(rows, cols)]
        latents.append(u)
        masks.append(m)
        specs.append(_slice_spec(model.spec(idx), rows))  # with the learned bias
        cols = rows
    new = IntegerSNN(latents, specs, input_size=model.input_size, steps=model.steps,
                     encoder=model.encoder, seed=model.seed, weight_bits=model.weight_bits,
                     masks=masks, slope=model.slope, readout=model.readout)
    for idx, r in enumerate(report):
        log.info("structured: layer %d keeps %d of %d neurons (%d silent)", idx, r["after"],
                 r["before"], r["silent"])
    return new, {"neurons": report}


def schedule(target: float, stages: int) -> list[float]:
    """Cubic sparsity ramp ``target * (1 - (1 - k/stages)**3)``, k = 1..stages."""
    _check_sparsity(target)
    stages = max(int(stages), 1)
    return [target * (1.0 - (1.0 - k / stages) ** 3) for k in range(1, stages + 1)]


def iterative_prune(model: IntegerSNN, target: float, *, stages: int, scope: str = "global",
                    finetune: Callable[[IntegerSNN, int], None] | None = None
                    ) -> list[dict[str, float]]:
    """Prune to ``target`` in ``stages`` steps of :func:`schedule`, calling
    ``finetune(model, stage)`` after each. Returns the sparsity reached at each stage."""
    history = []
    for stage, s in enumerate(schedule(target, stages)):
        prune_magnitude(model, s, scope=scope)
        if finetune is not None:
            finetune(model, stage)
        history.append({"stage": stage, "mask_sparsity": mask_sparsity(model),
                        "weight_sparsity": weight_sparsity(model)})
        log.info("prune stage %d: mask sparsity %.4f", stage, history[-1]["mask_sparsity"])
    return history

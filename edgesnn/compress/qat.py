"""Quantization-aware training: the torch twin of the integer semantics (SPEC.md section 3).

:class:`IntegerSNN` holds, per layer, a latent weight matrix in *integer units* (the float
weight divided by the layer's scale), a pruning mask, the integer thresholds and the Q0.16
leak multipliers. Its forward pass is the fixed-point LIF of SPEC.md 3.2, step by step:

* weights are ``q = round(clamp(u, -qmax - 1, qmax)) * mask`` (straight-through estimator),
* the current of a layer is its bias ``b = round(clamp(c, -BIAS_MAX, BIAS_MAX))`` (STE; a
  learned latent ``c`` in integer units, for layers that have one) plus the sum of the weights
  of the presynaptic neurons that spiked (for direct encoding, layer 0 gets
  ``I0 = sum_i p_i * q[i] + b`` at every step),
* leak then integrate: ``v = sat32(floor((v * beta_q + 32768) / 2**16) + I)``,
* fire where ``v > theta`` (strictly), reset by subtraction or to zero,
* a spike crosses every layer within the same step; the last layer's spikes are counted,
* prediction = argmax over (count, final membrane), lowest index on ties.

Every quantity is an integer held exactly: membranes in float64 (products ``v * beta_q``
stay below 2**53), spike-driven currents from a float32 matmul (sums below
``65535 * 128 < 2**24``), the direct-encoding current in float64; so predictions, counts
and final membranes equal the golden simulator's (:func:`edgesnn.graph.golden.simulate`)
bit for bit; ``tests/test_qat.py`` checks that.
Backward passes through the rounding and the leak's floor unchanged (straight-through) and
through the spike with a fast-sigmoid surrogate of ``(v - theta) / theta``.
The neuron step itself is :func:`edgesnn.graph.neurons.step` (shared with the golden
simulator); :class:`TorchInt` is its arithmetic on tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from edgesnn.graph import neurons
from edgesnn.graph.esg import weight_arrays_bytes
from edgesnn.graph.ir import (
    BIAS_MAX,
    INT32_MAX,
    INT32_MIN,
    Encoder,
    EncoderKind,
    FireRule,
    Layer,
    NeuronKind,
    Readout,
    ResetMode,
    SpikeGraph,
    Storage,
    qmax_for,
)

log = logging.getLogger(__name__)

DTYPE = torch.float64  # integers up to 2**53 are exact: v * beta_q < 2**31 * 2**16


class _SpikeFn(torch.autograd.Function):
    """Heaviside of ``x > 0`` (``x >= 0`` with ``ge``) forward; fast-sigmoid surrogate
    ``1 / (1 + k|x|)**2`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, slope: float, ge: bool) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0 if ge else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * x.abs()) ** 2, None, None


def _ste(exact: Tensor, smooth: Tensor) -> Tensor:
    """``exact`` forward, gradient of ``smooth`` backward."""
    return smooth + (exact - smooth).detach()


class TorchInt:
    """The integer arithmetic of :mod:`edgesnn.graph.neurons` on float64 tensors holding
    integers (exact below 2**53), with gradients: the leak's floor is straight-through, the
    spike is :class:`_SpikeFn` of ``(v - theta) / max(theta, 1)``."""

    def __init__(self, theta: Tensor, slope: float) -> None:
        self.norm = theta.clamp(min=1.0)
        self.slope = slope

    def leak(self, x: Tensor, q: Tensor | None) -> Tensor:
        if q is None:
            return x
        prod = x * q  # ((x * q + 32768) >> 16), exact in float64
        return _ste(torch.floor((prod + 32768.0) / 65536.0), prod / 65536.0)

    def sat32(self, x: Tensor) -> Tensor:
        return torch.clamp(x, INT32_MIN, INT32_MAX)

    def fire(self, v: Tensor, theta: Tensor, ge: bool) -> Tensor:
        return _SpikeFn.apply((v - theta) / self.norm, self.slope, ge)

    def gate(self, s: Tensor) -> Tensor:
        return s

    def zero_where(self, v: Tensor, r: Tensor) -> Tensor:
        return v * (1.0 - r)

    def times(self, r: Tensor, theta: Tensor) -> Tensor:
        return r * theta


@dataclass
class LayerSpec:
    """What :class:`IntegerSNN` needs to know about one layer besides its weights."""

    threshold: np.ndarray  # int, [1] or [n_out]
    leak: np.ndarray  # int Q0.16, [1] or [n_out]
    scale: np.ndarray  # float, [1] or [n_out]: float weight = q * scale
    neuron: NeuronKind = NeuronKind.LIF
    reset: ResetMode = ResetMode.SUBTRACT
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    bias: np.ndarray | None = None  # [n_out] in integer units (float), or None: no bias
    fire: FireRule = FireRule.GT
    syn_leak: np.ndarray | None = None  # CUBA_LIF: int Q0.16 synaptic leak, [1] or [n_out]


@dataclass
class QATOutput:
    counts: Tensor  # [B, n_classes], float64 holding integers (differentiable)
    v_final: Tensor  # [B, n_classes], last layer membranes after the last step's reset
    layer_spikes: list[Tensor]  # per layer [B]: spikes emitted over all steps and neurons
    input_spikes: Tensor  # [B]
    neuron_spikes: list[Tensor] | None = None  # per layer [B, n_out], with per_neuron=True
    readout: Readout = Readout.COUNT_MEMBRANE

    def prediction(self) -> Tensor:
        return readout(self.counts, self.v_final, self.readout)


def readout(counts: Tensor, v_final: Tensor,
            mode: Readout = Readout.COUNT_MEMBRANE) -> Tensor:
    """SPEC.md 3.3: argmax of (count, final membrane), lowest class index on ties
    (``Readout.COUNT``: argmax of the counts, lowest index on ties)."""
    if mode == Readout.COUNT:
        return torch.argmax(counts.detach(), dim=1)
    key = counts.detach().to(torch.int64) * (1 << 33) + (v_final.detach().to(torch.int64)
                                                          - INT32_MIN)
    return torch.argmax(key, dim=1)  # torch.argmax returns the first maximal index


class IntegerSNN(nn.Module):
    """The integer spike graph as a trainable torch module (see the module docstring)."""

    def __init__(
        self,
        latent: list[Tensor | np.ndarray],
        specs: list[LayerSpec],
        *,
        input_size: int,
        steps: int,
        encoder: EncoderKind,
        seed: int,
        weight_bits: int = 8,
        masks: list[Tensor | np.ndarray] | None = None,
        slope: float = 5.0,
        readout: Readout = Readout.COUNT_MEMBRANE,
    ) -> None:
        super().__init__()
        if len(latent) != len(specs) or not latent:
            raise ValueError("IntegerSNN needs one latent weight matrix per layer spec")
        self.input_size = int(input_size)
        self.steps = int(steps)
        self.encoder = EncoderKind(encoder)
        self.seed = int(seed) & 0xFFFFFFFF
        self.weight_bits = int(weight_bits)
        self.qmax = qmax_for(self.weight_bits)
        self.slope = float(slope)
        self.readout = Readout(readout)
        self.specs = specs
        self.latent = nn.ParameterList()
        self.bias_latent = nn.ParameterDict()  # str(layer index) -> [n_out], for biased layers
        prev = self.input_size
        for idx, (u, spec) in enumerate(zip(latent, specs, strict=True)):
            t = torch.as_tensor(np.asarray(u), dtype=DTYPE).clone()
            if t.ndim != 2 or t.shape[1] != prev:
                raise ValueError(f"layer {idx}: latent weights have shape {tuple(t.shape)}, "
                                 f"expected [n_out, {prev}]")
            self.latent.append(nn.Parameter(t))
            mask = (torch.ones_like(t) if masks is None or masks[idx] is None
                    else torch.as_tensor(np.asarray(masks[idx]), dtype=DTYPE).clone())
            self.register_buffer(f"mask{idx}", mask)
            self.register_buffer(f"theta{idx}", torch.as_tensor(
                np.asarray(spec.threshold, dtype=np.int64), dtype=DTYPE).reshape(-1))
            self.register_buffer(f"beta{idx}", torch.as_tensor(
                np.asarray(spec.leak, dtype=np.int64), dtype=DTYPE).reshape(-1))
            if spec.syn_leak is not None:
                self.register_buffer(f"alpha{idx}", torch.as_tensor(
                    np.asarray(spec.syn_leak, dtype=np.int64), dtype=DTYPE).reshape(-1))
            if spec.bias is not None:
                b = torch.as_tensor(np.asarray(spec.bias, dtype=np.float64), dtype=DTYPE)
                if b.shape != (t.shape[0],):
                    raise ValueError(f"layer {idx}: bias has shape {tuple(b.shape)}, expected "
                                     f"[{t.shape[0]}]")
                self.bias_latent[str(idx)] = nn.Parameter(b.clone())
            prev = t.shape[0]
        self.apply_masks()

    @classmethod
    def from_graph(cls, graph: SpikeGraph, *, slope: float = 5.0) -> IntegerSNN:
        """The module that computes ``graph`` (its integer weights become the latents; its zero
        weights become the mask, so they stay zero through fine-tuning)."""
        graph.validate()
        bits = {layer.weight_bits for layer in graph.layers}
        if len(bits) != 1:
            raise ValueError(f"IntegerSNN needs one weight width for all layers, got {bits}")
        specs = [LayerSpec(threshold=np.asarray(layer.threshold), leak=np.asarray(layer.leak),
                           scale=np.ones(1), neuron=NeuronKind(layer.neuron),
                           reset=ResetMode(layer.reset), name=layer.name,
                           fire=FireRule(layer.fire),
                           bias=None if layer.bias is None else layer.bias.astype(np.float64),
                           syn_leak=None if layer.syn_leak is None
                           else np.asarray(layer.syn_leak, dtype=np.int64))
                 for layer in graph.layers]
        latent = [layer.weights.astype(np.float64).T for layer in graph.layers]
        masks = [(layer.weights != 0).astype(np.float64).T for layer in graph.layers]
        return cls(latent, specs, input_size=graph.input_size, steps=graph.steps,
                   encoder=graph.encoder.kind, seed=int(graph.encoder.seed),
                   weight_bits=bits.pop(), masks=masks, slope=slope, readout=graph.readout)

    # -- parameters -------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.latent)

    def spec(self, idx: int) -> LayerSpec:
        """Layer ``idx``'s spec with its current (learned) bias latent."""
        key = str(idx)
        if key not in self.bias_latent:
            return self.specs[idx]
        return replace(self.specs[idx],
                       bias=self.bias_latent[key].detach().numpy().astype(np.float64))

    def mask(self, idx: int) -> Tensor:
        return getattr(self, f"mask{idx}")

    def set_mask(self, idx: int, mask: Tensor) -> None:
        self.mask(idx).copy_(mask.to(DTYPE))
        self.apply_masks()

    def theta(self, idx: int) -> Tensor:
        return getattr(self, f"theta{idx}")

    def beta(self, idx: int) -> Tensor:
        return getattr(self, f"beta{idx}")

    def alpha(self, idx: int) -> Tensor | None:
        """The synaptic leak of a CUBA_LIF layer (Q0.16 integers), else None."""
        return getattr(self, f"alpha{idx}", None)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the pruned latent weights (call after every optimizer step)."""
        for idx, u in enumerate(self.latent):
            u.mul_(self.mask(idx))

    def qweight(self, idx: int) -> Tensor:
        """Integer weights ``[n_out, n_in]`` (float64 holding integers), STE gradient."""
        u = self.latent[idx].clamp(-self.qmax - 1, self.qmax)
        return _ste(torch.round(u), u) * self.mask(idx)

    def qbias(self, idx: int) -> Tensor | None:
        """Integer bias ``[n_out]`` (float64 holding integers, STE gradient), or None."""
        key = str(idx)
        if key not in self.bias_latent:
            return None
        c = self.bias_latent[key].clamp(-BIAS_MAX, BIAS_MAX)
        return _ste(torch.round(c), c)

    def int_weights(self, idx: int) -> np.ndarray:
        """Integer weights as the IR wants them: int32 ``[n_in, n_out]``."""
        with torch.no_grad():
            return self.qweight(idx).t().contiguous().numpy().astype(np.int32)

    # -- forward ----------------------------------------------------------------------
    def input_spikes(self, pixels: Tensor) -> Tensor:
        """``[T, B, input_size]`` float64 0/1 spikes of the rate/latency encoder."""
        from edgesnn.data.encoders import encode

        kind = "rate" if self.encoder == EncoderKind.RATE else "latency"
        return encode(pixels, kind, self.steps, self.seed, stochastic=False).to(DTYPE)

    def forward(self, pixels: Tensor | np.ndarray, per_neuron: bool = False) -> QATOutput:
        """Run one batch of uint8 pixels ``[B, input_size]`` through the integer graph;
        ``per_neuron`` also returns each neuron's spike count.

        Computed layer by layer over all steps (one matmul per layer): in a feed-forward
        chain layer ``l``'s step ``t`` depends only on layer ``l-1``'s spikes up to step
        ``t``, so this is the same computation as SPEC.md 3.2's step-major order."""
        px = pixels if isinstance(pixels, Tensor) else torch.from_numpy(np.asarray(pixels))
        if px.dtype != torch.uint8:
            raise ValueError(f"pixels must be uint8 (0..255), got {px.dtype}")
        if px.ndim != 2 or px.shape[1] != self.input_size:
            raise ValueError(f"pixels must have shape [B, {self.input_size}], "
                             f"got {tuple(px.shape)}")
        batch = px.shape[0]
        direct = self.encoder == EncoderKind.DIRECT
        s_all: Tensor | None = None
        if direct:
            input_spikes = torch.zeros(batch, dtype=DTYPE)
        else:
            s_all = self.input_spikes(px)  # [T, B, n_in]
            input_spikes = s_all.sum(dim=(0, 2))
        layer_spikes: list[Tensor] = []
        per: list[Tensor] | None = [] if per_neuron else None
        v = torch.zeros(0)
        for idx in range(self.n_layers):
            w = self.qweight(idx)  # [n_out, n_in]
            qb = self.qbias(idx)
            if direct and idx == 0:  # sum of p_i * w up to 2**31: exact in float64
                i0 = px.to(DTYPE) @ w.t()
                currents = [i0 if qb is None else i0 + qb] * self.steps
            else:
                # sum of the weights of spiking inputs, [T, B, n_out]: |sum| <= n_in * 128
                # < 2**24, so the float32 matmul is exact; the bias is added in float64
                assert s_all is not None
                cur = (s_all.float() @ w.float().t()).to(DTYPE)
                currents = (cur if qb is None else cur + qb).unbind(0)
            spec = self.specs[idx]
            rule = neurons.LayerRule(kind=NeuronKind(spec.neuron), reset=ResetMode(spec.reset),
                                     ge=FireRule(spec.fire) == FireRule.GE,
                                     theta=self.theta(idx), leak=self.beta(idx),
                                     syn_leak=self.alpha(idx))
            arith = TorchInt(rule.theta, self.slope)
            st = neurons.new_state(
                rule, lambda n=w.shape[0]: torch.zeros(batch, n, dtype=DTYPE))
            out = [neurons.step(arith, rule, st, currents[t]) for t in range(self.steps)]
            v = st.v
            s_all = torch.stack(out)  # [T, B, n_out]
            layer_spikes.append(s_all.detach().sum(dim=(0, 2)))
            if per is not None:
                per.append(s_all.detach().sum(dim=0))
        assert s_all is not None
        return QATOutput(readout=self.readout, counts=s_all.sum(dim=0), v_final=v,
                         layer_spikes=layer_spikes,
                         input_spikes=input_spikes, neuron_spikes=per)

    @torch.no_grad()
    def predict(self, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
        preds = []
        for start in range(0, len(pixels), batch_size):
            preds.append(self(pixels[start:start + batch_size]).prediction().numpy())
        return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)

    # -- export -----------------------------------------------------------------------
    def to_graph(self, *, metadata: dict[str, Any] | None = None,
                 sparse: str = "auto") -> SpikeGraph:
        """The :class:`SpikeGraph` this module computes. ``sparse``: ``"auto"`` stores a
        layer sparse when that is smaller than dense (see :func:`storage_bytes`),
        ``"never"`` / ``"always"`` force it."""
        if sparse not in ("auto", "never", "always"):
            raise ValueError(f"sparse={sparse!r}; accepted: auto, never, always")
        layers = []
        for idx, spec in enumerate(self.specs):
            w = self.int_weights(idx)
            qb = self.qbias(idx)
            if sparse == "auto":
                dense_b, sparse_b = (storage_bytes(w, self.weight_bits, s)
                                     for s in (Storage.DENSE, Storage.SPARSE))
                storage = Storage.SPARSE if sparse_b < dense_b else Storage.DENSE
            else:
                storage = Storage.SPARSE if sparse == "always" else Storage.DENSE
            layers.append(Layer(
                weights=w,
                threshold=self.theta(idx).numpy().astype(np.int32),
                leak=self.beta(idx).numpy().astype(np.uint32),
                neuron=spec.neuron, reset=spec.reset, weight_bits=self.weight_bits,
                storage=storage, name=spec.name or f"fc{idx}", fire=spec.fire,
                syn_leak=None if self.alpha(idx) is None
                else self.alpha(idx).numpy().astype(np.uint32),  # type: ignore[union-attr]
                bias=None if qb is None else qb.detach().numpy().astype(np.int32)))
        graph = SpikeGraph(input_size=self.input_size, steps=self.steps, layers=layers,
                           encoder=Encoder(kind=self.encoder, seed=self.seed),
                           metadata=dict(metadata or {}), readout=self.readout)
        return graph.validate()


def storage_bytes(weights: np.ndarray, bits: int, storage: Storage) -> int:
    """Bytes of a layer's weight arrays in ``.esg`` (SPEC.md 5.4), excluding the header and
    threshold/leak arrays (identical for both storages)."""
    n_in, n_out = weights.shape
    return weight_arrays_bytes(n_in, n_out, int(np.count_nonzero(weights)), bits, storage)


# -- training -----------------------------------------------------------------------------
def qat_loss(out: QATOutput, labels: Tensor, steps: int) -> Tensor:
    """Cross-entropy on the spike counts (rate code), scaled so logits span a few units."""
    logits = out.counts * (8.0 / max(steps, 1))
    return nn.functional.cross_entropy(logits, labels)


def finetune(
    model: IntegerSNN,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 0.02,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` with the integer forward pass for ``epochs`` epochs (Adam, cosine
    learning rate); masks are re-applied after every step, so pruned weights stay 0.
    Returns the mean loss of each epoch."""
    from edgesnn.progress import progress as progress_bar

    if epochs <= 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(images)
    total_steps = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
    x_all = torch.as_tensor(images)
    y_all = torch.as_tensor(labels, dtype=torch.int64)
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        batches = range(0, n, batch_size)
        for start in progress_bar(batches, desc=f"qat epoch {epoch + 1}/{epochs}",
                                  unit="batch", enabled=progress):
            idx = order[start:start + batch_size]
            out = model(x_all[idx])
            loss = qat_loss(out, y_all[idx], model.steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            model.apply_masks()
            total += loss.item() * len(idx)
            seen += len(idx)
        losses.append(total / max(seen, 1))
        log.info("qat epoch %d/%d: loss %.4f", epoch + 1, epochs, losses[-1])
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    model.eval()
    return losses

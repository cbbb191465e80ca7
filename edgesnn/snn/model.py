"""``SpikingMLP``: a feed-forward spiking MLP, the float twin of SPEC.md 3.2-3.3.

Per time step ``t`` and layer ``l`` (in order, no synaptic delay: a spike crosses every
layer within the same step)::

    I_l[t] = W_l^T s_{l-1}[t] + b_l     (s_{-1} = the encoded input; b_l only with bias=True)
    v_l[t] = beta_l * v_l[t-1] + I_l[t]
    s_l[t] = [v_l[t] > theta_l]        (strictly greater)
    v_l[t] -= theta_l * s_l[t]         (subtract reset)   |   v_l[t] *= 1 - s_l[t]  (zero)

Since no layer feeds back, layer ``l`` can take all ``T`` spikes of layer ``l - 1`` at once:
each Linear is one ``[T*B, in] x [in, out]`` matmul, and the recurrence over ``T`` is the
fused :class:`~edgesnn.snn.lif.LIFFunction`. The result is identical to stepping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgesnn.data.encoders import encode
from edgesnn.snn.config import SNNConfig
from edgesnn.snn.lif import lif

MIN_THRESHOLD = 1e-4


@dataclass
class SNNOutput:
    """``counts [B, C]`` output spikes per class, ``v_final [B, C]`` the last layer's membrane
    after the last step's reset, ``layer_spikes`` (``record=True`` only) ``[T, B, n_l]``."""

    counts: torch.Tensor
    v_final: torch.Tensor
    layer_spikes: list[torch.Tensor] | None = None
    readout: str = "count_membrane"

    def prediction(self) -> torch.Tensor:
        return readout(self.counts, self.v_final, self.readout)


def readout(counts: torch.Tensor, v_final: torch.Tensor,
            mode: str = "count_membrane") -> torch.Tensor:
    """SPEC 3.3: argmax of ``(count, v_final)`` lexicographically; ties -> lowest index
    (``mode="count"``: argmax of the counts, ties -> lowest index, as the peers predict)."""
    if mode == "count":
        return counts.argmax(dim=1)  # torch.argmax returns the first maximal index
    best = counts.max(dim=1, keepdim=True).values
    masked = torch.where(counts == best, v_final, torch.full_like(v_final, -torch.inf))
    return masked.argmax(dim=1)  # torch.argmax returns the first maximal index


class SpikingMLP(nn.Module):
    """Fully connected layers of LIF/IF neurons (with biases when ``config.bias``); see the
    module doc."""

    def __init__(self, config: SNNConfig) -> None:
        super().__init__()
        self.config = config.validate()
        sizes = config.layer_sizes
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=bool(config.bias))
                                 for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        beta0 = 1.0 if config.neuron == "if" else config.beta
        for l, n_out in enumerate(sizes[1:]):
            shape = (n_out,) if config.per_neuron else (1,)
            beta = torch.full(shape, float(beta0))
            theta = torch.full(shape, float(config.threshold))
            if config.learn_beta and config.neuron == "lif":
                self.register_parameter(f"beta_{l}", nn.Parameter(beta))
            else:
                self.register_buffer(f"beta_{l}", beta)
            if config.learn_threshold:
                self.register_parameter(f"threshold_{l}", nn.Parameter(theta))
            else:
                self.register_buffer(f"threshold_{l}", theta)
            if config.neuron == "cuba_lif":  # the synaptic current's decay
                alpha = torch.full(shape, float(config.alpha))
                if config.learn_beta:
                    self.register_parameter(f"alpha_{l}", nn.Parameter(alpha))
                else:
                    self.register_buffer(f"alpha_{l}", alpha)

    @property
    def n_layers(self) -> int:
        return len(self.fcs)

    def beta(self, l: int) -> torch.Tensor:
        """Leak of layer ``l``, shape ``[1]`` or ``[n_out]``, clamped to ``[0, 1]``."""
        return getattr(self, f"beta_{l}").clamp(0.0, 1.0)

    def alpha(self, l: int) -> torch.Tensor | None:
        """Synaptic-current decay of layer ``l`` (neuron "cuba_lif"), clamped to ``[0, 1]``;
        None for the other neurons."""
        a = getattr(self, f"alpha_{l}", None)
        return None if a is None else a.clamp(0.0, 1.0)

    def threshold(self, l: int) -> torch.Tensor:
        """Threshold of layer ``l``, shape ``[1]`` or ``[n_out]``, kept ``> 0``."""
        return getattr(self, f"threshold_{l}").clamp_min(MIN_THRESHOLD)

    def _run(self, current0: torch.Tensor, record: bool) -> SNNOutput:
        cfg = self.config
        recorded: list[torch.Tensor] = []
        current = current0
        spikes = u = current0
        for l in range(self.n_layers):
            if l > 0:
                t, b, n = spikes.shape
                current = self.fcs[l](spikes.reshape(t * b, n)).reshape(t, b, -1)
            alpha = self.alpha(l)
            spikes, u = lif(current, self.beta(l).to(current.dtype),
                            self.threshold(l).to(current.dtype), cfg.reset, cfg.surrogate,
                            cfg.slope, cfg.detach_reset, cfg.fire,
                            None if alpha is None else alpha.to(current.dtype))
            if record:
                recorded.append(spikes)
        return SNNOutput(counts=spikes.sum(0), v_final=u, layer_spikes=recorded if record else None,
                         readout=cfg.readout)

    def forward(self, x: torch.Tensor, record: bool = False) -> SNNOutput:
        """``x [T, B, input_size]`` (spikes, or currents for direct encoding)."""
        if x.dim() != 3 or x.shape[2] != self.config.input_size:
            raise ValueError(f"expected input [T, B, {self.config.input_size}], got "
                             f"{tuple(x.shape)}")
        t, b, n = x.shape
        w = self.fcs[0].weight
        current0 = self.fcs[0](x.reshape(t * b, n).to(w.dtype)).reshape(t, b, -1)
        return self._run(current0, record)

    def forward_pixels(self, pixels: torch.Tensor, stochastic: bool = False,
                       generator: torch.Generator | None = None,
                       record: bool = False) -> SNNOutput:
        """Encode uint8 ``pixels [B, n]`` with the config's encoder and run the network."""
        cfg = self.config
        w = self.fcs[0].weight
        pixels = pixels.to(w.device)
        if cfg.encoder == "direct":  # constant current: one matmul, repeated over T
            i0 = self.fcs[0](pixels.to(w.dtype) / 255.0)
            return self._run(i0.unsqueeze(0).expand(cfg.steps, *i0.shape), record)
        x = encode(pixels, cfg.encoder, cfg.steps, cfg.encoder_seed, stochastic, generator)
        return self.forward(x, record)

    @torch.no_grad()
    def predict(self, pixels: torch.Tensor) -> torch.Tensor:
        """Deterministic-encoder predictions (SPEC 3.3 readout) for uint8 ``pixels [B, n]``."""
        return self.forward_pixels(pixels).prediction()

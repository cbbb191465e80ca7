"""Spike encoders in torch: the float twins of SPEC.md section 3.1.

Deterministic mode reproduces the integer encoders exactly (it uses
:func:`edgesnn.graph.prng.rate_table` and the same latency formula), so a model trained or
evaluated here sees the very spikes the golden simulator and the firmware see:

* ``rate``: ``s[t, b, i] = table[t, i] < p[b, i]`` with ``table = rate_table(T, n, seed)``;
  a pixel ``p`` spikes with probability ``p / 256`` per step.
* ``latency``: a nonzero pixel spikes once, at ``t = ((255 - p) * T) >> 8``.
* ``direct``: no spikes; the input is the current ``p / 255`` at every step.

``stochastic=True`` (training) draws fresh rate noise: ``s = U < p`` with ``U`` uniform on
``0..255``, i.e. Bernoulli with ``p / 256`` exactly; latency and direct are deterministic.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from edgesnn.data import ENCODERS
from edgesnn.graph.prng import rate_table

__all__ = ["ENCODERS", "encode", "uniform_bytes"]


@lru_cache(maxsize=16)
def _table(steps: int, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(rate_table(steps, n, seed))


def uniform_bytes(shape: tuple[int, ...], generator: torch.Generator,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 noise uniform on 0..255 (each byte of uniform int32 draws; ~4x cheaper than
    drawing bytes one by one; the int32 range misses one value in 2^32)."""
    count = 1
    for d in shape:
        count *= d
    words = torch.randint(-(2**31), 2**31 - 1, ((count + 3) // 4,), dtype=torch.int32,
                          generator=generator, device=device)
    return words.view(torch.uint8)[:count].view(shape)


def encode(pixels: torch.Tensor, kind: str, steps: int, seed: int, stochastic: bool = False,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode uint8 ``pixels [B, n]`` into float32 ``[T, B, n]`` (spikes 0/1, or currents)."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}; accepted: {', '.join(ENCODERS)}")
    if pixels.dtype != torch.uint8 or pixels.dim() != 2:
        raise ValueError(f"pixels must be a uint8 [B, n] tensor, got {pixels.dtype} "
                         f"{tuple(pixels.shape)}")
    if steps < 1:
        raise ValueError(f"steps={steps}; must be >= 1")
    b, n = pixels.shape
    if kind == "direct":
        return (pixels.to(torch.float32) / 255.0).unsqueeze(0).expand(steps, b, n).contiguous()
    if kind == "latency":
        p = pixels.to(torch.int64)
        t_fire = ((255 - p) * steps) >> 8
        t_fire = torch.where(p > 0, t_fire, torch.full_like(t_fire, -1))
        t = torch.arange(steps, device=pixels.device).view(steps, 1, 1)
        return (t == t_fire.unsqueeze(0)).to(torch.float32)
    if stochastic:
        if generator is None:
            generator = torch.Generator(device=pixels.device).manual_seed(seed)
        noise = uniform_bytes((steps, b, n), generator, pixels.device)
        return (noise < pixels.unsqueeze(0)).to(torch.float32)
    table = _table(steps, n, int(seed) & 0xFFFFFFFF).to(pixels.device)
    return (table.unsqueeze(1) < pixels.unsqueeze(0)).to(torch.float32)

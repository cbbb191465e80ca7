"""Surrogate gradients: the spike is the Heaviside step ``H(x) = [x > 0]`` (``x = v - theta``)
in the forward pass; the backward pass uses a smooth pseudo-derivative ``sigma'(x)`` with
slope ``k``:

* ``fast_sigmoid`` (SuperSpike, Zenke & Ganguli 2018): ``1 / (1 + k|x|)^2``
* ``arctan`` (SpikingJelly ``ATan``, snnTorch ``atan``): ``(k/2) / (1 + (pi/2 * k * x)^2)``
* ``sigmoid``: ``k * sig(kx) * (1 - sig(kx))``
* ``triangle``: ``max(0, 1 - k|x|)``
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from edgesnn.snn.config import SURROGATES


def _fast_sigmoid(x: torch.Tensor, k: float) -> torch.Tensor:
    return x.abs().mul_(k).add_(1.0).pow_(-2)


def _arctan(x: torch.Tensor, k: float) -> torch.Tensor:
    return (k / 2.0) / (1.0 + (math.pi / 2.0 * k * x).square())


def _sigmoid(x: torch.Tensor, k: float) -> torch.Tensor:
    s = torch.sigmoid(k * x)
    return k * s * (1.0 - s)


def _triangle(x: torch.Tensor, k: float) -> torch.Tensor:
    return (1.0 - k * x.abs()).clamp_min(0.0)


GRADS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "fast_sigmoid": _fast_sigmoid,
    "arctan": _arctan,
    "sigmoid": _sigmoid,
    "triangle": _triangle,
}
assert tuple(GRADS) == SURROGATES


def surrogate_grad(x: torch.Tensor, name: str, slope: float) -> torch.Tensor:
    """``sigma'(x)`` of surrogate ``name`` with slope ``slope``."""
    try:
        fn = GRADS[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; accepted: {', '.join(GRADS)}") from None
    return fn(x, slope)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, slope: float, ge: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.name, ctx.slope = name, slope
        return (x >= 0 if ge else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.name, ctx.slope), None, None, None


def spike(x: torch.Tensor, name: str = "fast_sigmoid", slope: float = 25.0,
          ge: bool = False) -> torch.Tensor:
    """``H(x) = [x > 0]`` (``[x >= 0]`` with ``ge``, SpikingJelly's rule) with the surrogate
    derivative in the backward pass."""
    if name not in GRADS:
        raise ValueError(f"unknown surrogate {name!r}; accepted: {', '.join(GRADS)}")
    return _Spike.apply(x, name, slope, ge)

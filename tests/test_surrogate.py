"""Surrogate spike functions: Heaviside forward (strict >), documented derivatives backward."""

from __future__ import annotations

import math

import pytest
import torch

from edgesnn.snn.surrogate import GRADS, spike, surrogate_grad


@pytest.mark.parametrize("name", list(GRADS))
def test_forward_is_strict_heaviside(name: str) -> None:
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0])
    assert spike(x, name, 5.0).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("name", list(GRADS))
def test_backward_uses_surrogate(name: str) -> None:
    x = torch.linspace(-1, 1, 41, dtype=torch.float64, requires_grad=True)
    spike(x, name, 4.0).sum().backward()
    assert torch.allclose(x.grad, surrogate_grad(x.detach(), name, 4.0))
    g = x.grad
    assert torch.all(g >= 0)
    assert torch.allclose(g, g.flip(0))  # symmetric around the threshold
    assert int(g.argmax()) == 20  # peak at x = 0


def test_documented_formulas() -> None:
    x = torch.tensor([0.0, 0.1, -0.3], dtype=torch.float64)
    k = 3.0
    assert torch.allclose(surrogate_grad(x, "fast_sigmoid", k), 1 / (1 + k * x.abs()) ** 2)
    assert torch.allclose(surrogate_grad(x, "arctan", k),
                          (k / 2) / (1 + (math.pi / 2 * k * x) ** 2))
    s = torch.sigmoid(k * x)
    assert torch.allclose(surrogate_grad(x, "sigmoid", k), k * s * (1 - s))
    assert torch.allclose(surrogate_grad(x, "triangle", k), (1 - k * x.abs()).clamp_min(0))
    assert surrogate_grad(torch.tensor([0.5]), "triangle", 3.0).item() == 0.0


@pytest.mark.parametrize("name", ["sigmoid", "arctan"])
def test_smooth_surrogates_match_their_primitive(name: str) -> None:
    # sigma' is the derivative of a smooth step: compare with finite differences of it
    k = 2.0
    prim = {"sigmoid": lambda x: torch.sigmoid(k * x),
            "arctan": lambda x: torch.atan(math.pi / 2 * k * x) / math.pi}[name]
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    h = 1e-6
    fd = (prim(x + h) - prim(x - h)) / (2 * h)
    assert torch.allclose(surrogate_grad(x, name, k), fd, atol=1e-6)


def test_unknown_surrogate() -> None:
    with pytest.raises(ValueError, match="accepted: fast_sigmoid"):
        spike(torch.zeros(1), "relu", 1.0)

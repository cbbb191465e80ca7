"""The LIF/IF recurrence over time: a fused autograd Function and a per-step reference.

Discrete update (the float twin of SPEC.md 3.2; one layer, step ``t = 0..T-1``, ``u = 0``
before step 0)::

    v[t] = beta * u[t-1] + I[t]                 leak then integrate
    s[t] = H(v[t] - theta)                       fire iff v > theta (strict)
    u[t] = v[t] - theta * s[t]                   reset "subtract"
    u[t] = v[t] * (1 - s[t])                     reset "zero"

and the peers' rules (SPEC.md 3.2), computed by :func:`lif_reference` with plain autograd::

    v[t] = (beta * u[t-1] + I[t]) - theta * s[t-1];  u[t] = v[t]   "subtract_delayed" (snnTorch)
    u[t] = v[t]                                                    "none"
    s[t] = H(v[t] - theta) with H(0) = 1                           fire "ge" (SpikingJelly)

Outputs are the spikes ``s [T, B, N]`` and the final membrane ``u[T-1] [B, N]`` (after the
last reset, what the readout's tie-break uses). ``beta`` and ``theta`` have shape ``[1]``
(per layer) or ``[N]`` (per neuron).

:class:`LIFFunction` runs the recurrence without building a per-step autograd graph; its
hand-written backward is, with ``g[t] = sigma'(v[t] - theta)`` the surrogate derivative and
``du[t]`` the gradient reaching ``u[t]`` (``du[T-1]`` = the gradient of the final membrane,
``du[t] = beta * dv[t+1]`` otherwise)::

    ds[t] = dL/ds[t] - [not detach] * (theta if subtract else v[t]) * du[t]
    dv[t] = du[t] * c[t] + dL/ds[t] * g[t]
    c[t]  = 1 - theta * g[t] (subtract)  or  1 - s[t] - v[t] * g[t] (zero)   [not detached]
    c[t]  = 1 (subtract)                 or  1 - s[t]                          [detached]
    dI[t] = dv[t];   dbeta = sum_t dv[t] * u[t-1]
    dtheta = -sum_t ds[t] * g[t]  - [subtract] * sum_t s[t] * du[t]

Only ``dv[t] = beta * dv[t+1] * c[t] + dL/ds[t] * g[t]`` is sequential; everything else is
computed for all steps at once.
"""

from __future__ import annotations

import torch

from edgesnn.graph import neurons
from edgesnn.snn.config import FIRES, RESETS
from edgesnn.snn.surrogate import spike, surrogate_grad


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``grad [T, B, N]`` down to a parameter of shape ``[1]`` or ``[N]``."""
    g = grad.sum(dim=tuple(range(grad.dim() - 1)))
    return g.sum().reshape(shape) if shape.numel() == 1 else g.reshape(shape)


def _surrogate_grad_(x: torch.Tensor, name: str, slope: float) -> torch.Tensor:
    """``surrogate_grad(x, name, slope)``, overwriting ``x`` where that saves a buffer (same ops,
    same bits as :func:`edgesnn.snn.surrogate.surrogate_grad`)."""
    if name == "fast_sigmoid":
        return x.abs_().mul_(slope).add_(1.0).pow_(-2)
    return surrogate_grad(x, name, slope)


class LIFFunction(torch.autograd.Function):
    """``(I [T,B,N], beta, theta) -> (spikes [T,B,N], u_final [B,N])``; see the module doc."""

    @staticmethod
    def forward(ctx, current: torch.Tensor, beta: torch.Tensor, theta: torch.Tensor,  # type: ignore[override]
                zero_reset: bool, surrogate: str, slope: float, detach_reset: bool):
        steps = current.shape[0]
        v_all = torch.empty_like(current)
        spikes = torch.empty_like(current)
        u = torch.zeros_like(current[0])
        scalar = beta.numel() == 1 and theta.numel() == 1
        # per-layer parameters as 0-dim tensors: cheaper broadcasting, same arithmetic
        b = beta.reshape(()) if scalar else beta
        th = theta.reshape(()) if scalar else theta
        # every step writes into preallocated buffers (no per-step allocation); each op gives
        # the same bits as the reference: theta * s and (1 - s) * v are exact for s in {0, 1}
        for t in range(steps):
            v, s = v_all[t], spikes[t]
            torch.mul(u, b, out=v)
            v.add_(current[t])
            torch.gt(v, th, out=s)
            if zero_reset:
                torch.mul(s, -1.0, out=u).add_(1.0).mul_(v)  # v * (1 - s), exactly
            else:
                torch.addcmul(v, s, th, value=-1.0, out=u)  # v - theta * s
        ctx.save_for_backward(v_all, beta, theta)
        ctx.cfg = (zero_reset, surrogate, slope, detach_reset)
        return spikes, u

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor | None, grad_u: torch.Tensor | None):  # type: ignore[override]
        v_all, beta, theta = ctx.saved_tensors
        zero_reset, surrogate, slope, detach_reset = ctx.cfg
        steps = v_all.shape[0]
        if grad_spikes is None:
            grad_spikes = torch.zeros_like(v_all)
        if grad_u is None:
            grad_u = torch.zeros_like(v_all[0])
        need_beta, need_theta = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        x = v_all - theta
        s = (x > 0).to(v_all.dtype) if zero_reset or need_beta or need_theta else None
        g = _surrogate_grad_(x, surrogate, slope)  # x is not used after this
        if detach_reset and not need_theta:  # g is not needed again: reuse its buffer
            gs = g.mul_(grad_spikes)
        else:
            gs = grad_spikes * g
        if zero_reset:
            c = 1.0 - s if detach_reset else 1.0 - s - v_all * g
        else:
            c = None if detach_reset else 1.0 - theta * g
        if c is None:  # dv[t] = beta * dv[t+1] + gs[t]: a linear scan, in place in gs
            b = beta.reshape(()) if beta.numel() == 1 else beta
            dv = gs
            dv[-1] += grad_u
            for t in range(steps - 2, -1, -1):
                dv[t].addcmul_(dv[t + 1], b)
        else:
            dv = torch.empty_like(v_all)
            carry = grad_u
            for t in range(steps - 1, -1, -1):
                d = dv[t]
                torch.addcmul(gs[t], carry, c[t], out=d)
                carry = d * beta
        d_beta = d_theta = None
        if need_beta or need_theta:
            du = torch.empty_like(v_all)
            du[-1] = grad_u
            if steps > 1:
                torch.mul(dv[1:], beta, out=du[:-1])
            if need_beta:
                u_all = v_all * (1.0 - s) if zero_reset else v_all - theta * s
                prod = torch.zeros_like(v_all)
                if steps > 1:
                    torch.mul(dv[1:], u_all[:-1], out=prod[1:])
                d_beta = _reduce_to(prod, beta.shape)
            if need_theta:
                ds = grad_spikes
                if not detach_reset:
                    ds = ds - (v_all if zero_reset else theta) * du
                dth = -(ds * g)
                if not zero_reset:
                    dth = dth - s * du
                d_theta = _reduce_to(dth, theta.shape)
        d_current = dv if ctx.needs_input_grad[0] else None
        return d_current, d_beta, d_theta, None, None, None, None



def lif(current: torch.Tensor, beta: torch.Tensor, theta: torch.Tensor, reset: str = "subtract",
        surrogate: str = "fast_sigmoid", slope: float = 25.0,
        detach_reset: bool = True, fire: str = "gt",
        alpha: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the recurrence (:class:`LIFFunction` for subtract/zero with ``v > theta``, else
    :func:`lif_reference`); returns ``(spikes, u_final)``. ``alpha`` (``[1]`` or ``[N]``): a
    CubaLIF layer's synaptic decay (``syn = alpha * syn + I`` integrated in place of ``I``)."""
    if reset not in RESETS:
        raise ValueError(f"reset={reset!r}; accepted: {', '.join(RESETS)}")
    if fire not in FIRES:
        raise ValueError(f"fire={fire!r}; accepted: {', '.join(FIRES)}")
    if reset in ("subtract", "zero") and fire == "gt" and alpha is None:
        return LIFFunction.apply(current, beta, theta, reset == "zero", surrogate, float(slope),
                                 bool(detach_reset))
    return lif_reference(current, beta, theta, reset, surrogate, slope, detach_reset, fire,
                         alpha)


def lif_reference(current: torch.Tensor, beta: torch.Tensor, theta: torch.Tensor,
                  reset: str = "subtract", surrogate: str = "fast_sigmoid", slope: float = 25.0,
                  detach_reset: bool = True, fire: str = "gt",
                  alpha: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence written step by step with plain autograd: the neuron step of
    :mod:`edgesnn.graph.neurons` on :class:`TorchFloat` (the only implementation of the peers'
    rules in float, and the check of :class:`LIFFunction`)."""
    if reset not in RESETS:
        raise ValueError(f"reset={reset!r}; accepted: {', '.join(RESETS)}")
    arith = TorchFloat(surrogate, slope, detach_reset)
    kind = neurons.NeuronKind.LIF if alpha is None else neurons.NeuronKind.CUBA_LIF
    rule = neurons.LayerRule(kind=kind, reset=neurons.ResetMode[reset.upper()], ge=fire == "ge",
                             theta=theta, leak=beta, syn_leak=alpha)
    st = neurons.new_state(rule, lambda: torch.zeros_like(current[0]))
    out = [neurons.step(arith, rule, st, current[t]) for t in range(current.shape[0])]
    return torch.stack(out), st.v


class TorchFloat:
    """The float arithmetic of :func:`edgesnn.graph.neurons.step`: ``leak`` is ``beta * x``
    (snnTorch's operation order), nothing saturates, the spike is the surrogate ``spike``; the
    reset sees the spikes detached when ``detach_reset``."""

    def __init__(self, surrogate: str, slope: float, detach_reset: bool) -> None:
        self.surrogate = surrogate
        self.slope = slope
        self.detach_reset = detach_reset

    def leak(self, x: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
        return x if q is None else q * x

    def sat32(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def fire(self, v: torch.Tensor, theta: torch.Tensor, ge: bool) -> torch.Tensor:
        return spike(v - theta, self.surrogate, self.slope, ge)

    def gate(self, s: torch.Tensor) -> torch.Tensor:
        return s.detach() if self.detach_reset else s

    def zero_where(self, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return v * (1.0 - r)

    def times(self, r: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return theta * r

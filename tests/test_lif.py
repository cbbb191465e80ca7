"""The fused LIF Function against the per-step autograd reference, gradcheck, the model's
step semantics (SPEC 3.2) and the readout (SPEC 3.3)."""

from __future__ import annotations

import itertools

import pytest
import torch

from edgesnn.snn import SNNConfig, SpikingMLP, readout
from edgesnn.snn.lif import lif, lif_reference  # edgesnn.snn.lif is also the module

COMBOS = list(itertools.product(["subtract", "zero"], [True, False], [False, True],
                                ["fast_sigmoid", "arctan", "sigmoid", "triangle"]))


def _inputs(per_neuron: bool, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    t, b, n = 9, 4, 7
    current = (torch.randn(t, b, n, generator=g, dtype=dtype) * 0.8).requires_grad_()
    shape = (n,) if per_neuron else (1,)
    beta = torch.rand(shape, generator=g, dtype=dtype).requires_grad_()
    theta = (torch.rand(shape, generator=g, dtype=dtype) + 0.5).requires_grad_()
    return current, beta, theta


@pytest.mark.parametrize(("reset", "detach", "per_neuron", "surrogate"), COMBOS)
def test_function_equals_reference(reset: str, detach: bool, per_neuron: bool,
                                   surrogate: str) -> None:
    current, beta, theta = _inputs(per_neuron)
    g = torch.Generator().manual_seed(1)
    gs = torch.randn(current.shape, generator=g, dtype=current.dtype)
    gu = torch.randn(current.shape[1:], generator=g, dtype=current.dtype)
    outs = []
    for fn in (lif, lif_reference):
        s, u = fn(current, beta, theta, reset, surrogate, 3.0, detach)
        grads = torch.autograd.grad((s * gs).sum() + (u * gu).sum(), (current, beta, theta))
        outs.append((s, u, *grads))
    fused, ref = outs
    assert 0 < float(fused[0].detach().mean()) < 1  # some spikes, not all
    assert torch.equal(fused[0], ref[0]) and torch.equal(fused[1], ref[1])
    for a, b in zip(fused[2:], ref[2:], strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_gradcheck_membrane_path(reset: str, per_neuron: bool) -> None:
    # With a detached reset the final membrane is a piecewise-smooth function of
    # (I, beta, theta) whose true derivative is what the Function returns (away from
    # threshold crossings, which random float64 inputs avoid), so finite differences apply.
    current, beta, theta = _inputs(per_neuron, seed=4)

    def f(i, b, th):
        return lif(i, b, th, reset, "fast_sigmoid", 5.0, True)[1]

    s = lif(current, beta, theta, reset)[0].detach()
    assert 0 < float(s.mean()) < 1
    assert torch.autograd.gradcheck(f, (current, beta, theta), eps=1e-7, atol=1e-6)


def test_float32_matches_float64_spikes_mostly() -> None:
    current, beta, theta = _inputs(False, seed=2)
    s64, _ = lif(current, beta, theta)
    s32, _ = lif(current.float(), beta.float(), theta.float())
    assert float((s64.float() - s32).detach().abs().mean()) < 0.01


def _step_reference(model: SpikingMLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SPEC 3.2 in float: step by step, every layer within the step, strict >."""
    cfg = model.config
    v = [torch.zeros(x.shape[1], fc.out_features, dtype=torch.float64) for fc in model.fcs]
    counts = torch.zeros(x.shape[1], cfg.n_classes, dtype=torch.float64)
    for t in range(x.shape[0]):
        s = x[t].double()
        for l, fc in enumerate(model.fcs):
            current = s @ fc.weight.double().T
            if fc.bias is not None:  # a constant current every step
                current = current + fc.bias.double()
            v[l] = model.beta(l).double() * v[l] + current
            s = (v[l] > model.threshold(l).double()).double()
            v[l] = v[l] - model.threshold(l).double() * s if cfg.reset == "subtract" \
                else v[l] * (1 - s)
        counts += s
    return counts, v[-1]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_model_equals_step_by_step_semantics(reset: str, neuron: str, bias: bool) -> None:
    torch.manual_seed(0)
    cfg = SNNConfig(input_size=20, hidden=[15, 12], n_classes=5, steps=8, reset=reset,
                    neuron=neuron, beta=1.0 if neuron == "if" else 0.8, per_neuron=True,
                    bias=bias)
    model = SpikingMLP(cfg).double()
    with torch.no_grad():
        for fc in model.fcs:
            fc.weight.mul_(3.0)
    x = (torch.rand(8, 6, 20) < 0.4).double()
    out = model(x, record=True)
    counts, v_last = _step_reference(model, x)
    assert torch.equal(out.counts, counts)
    assert torch.allclose(out.v_final, v_last, atol=1e-12)
    assert len(out.layer_spikes) == 3 and out.layer_spikes[2].shape == (8, 6, 5)
    assert float(out.counts.detach().sum()) > 0


def test_readout_spec_3_3() -> None:
    counts = torch.tensor([[1, 3, 3, 0], [2, 2, 2, 2], [0, 0, 0, 0], [5, 1, 5, 5]])
    v = torch.tensor([[9.0, 0.1, 0.2, 0.0], [0.5, 0.5, 0.4, 0.5], [-1.0, -2.0, -0.5, -0.5],
                      [0.3, 0.9, 0.3, 0.1]])
    assert readout(counts, v).tolist() == [2, 0, 2, 0]


def test_learnable_parameters_get_gradients() -> None:
    cfg = SNNConfig(input_size=10, hidden=[8], n_classes=3, steps=5, learn_beta=True,
                    learn_threshold=True, per_neuron=True)
    model = SpikingMLP(cfg)
    assert model.beta(0).shape == (8,) and model.threshold(1).shape == (3,)
    out = model((torch.rand(5, 4, 10) < 0.5).float())
    out.counts.sum().backward()
    names = {n for n, p in model.named_parameters() if p.grad is not None}
    assert {"beta_0", "threshold_0", "beta_1", "threshold_1", "fcs.0.weight"} <= names
    with torch.no_grad():
        model.beta_0.fill_(1.7)
        model.threshold_0.fill_(-1.0)
    assert float(model.beta(0).detach().max()) == 1.0
    assert float(model.threshold(0).detach().min()) > 0


def test_rule_names_are_the_ir_enum_names() -> None:
    """The config/CLI/interop names of the neuron rules are the integer IR's enum names."""
    from edgesnn.graph.ir import FireRule, NeuronKind, Readout, ResetMode
    from edgesnn.snn import config

    for names, enum in ((config.NEURONS, NeuronKind), (config.RESETS, ResetMode),
                        (config.FIRES, FireRule), (config.READOUTS, Readout)):
        assert names == tuple(m.name.lower() for m in enum)


@pytest.mark.parametrize("mechanism,reset", [("subtract", "subtract_delayed"), ("none", "none")])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_cuba_lif_is_snntorch_synaptic_bit_for_bit(mechanism: str, reset: str,
                                                   per_neuron: bool) -> None:
    """The float CubaLIF (the neuron step of edgesnn/graph/neurons.py on TorchFloat) equals
    snnTorch 1.0's own Synaptic, run side by side: spikes and final membranes identical."""
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(11)
    n = 9 if per_neuron else 1
    current = torch.randn(24, 5, 9, generator=g) * 0.6
    alpha = torch.rand(n, generator=g) * 0.9
    beta = torch.rand(n, generator=g) * 0.9 + 0.05
    theta = torch.rand(n, generator=g) + 0.5
    neuron = snn.Synaptic(alpha=alpha, beta=beta, threshold=theta, reset_mechanism=mechanism)
    syn, mem = neuron.init_synaptic()
    ref = []
    for t in range(current.shape[0]):
        spk, syn, mem = neuron(current[t], syn, mem)
        ref.append(spk)
    spikes, u = lif(current, beta, theta, reset, alpha=alpha)
    assert torch.equal(spikes, torch.stack(ref)) and torch.equal(u, mem)
    assert spikes.sum() > 0
    # alpha = 0 is the LIF of the same current
    s0, u0 = lif(current, beta, theta, reset, alpha=torch.zeros(n))
    s1, u1 = lif(current, beta, theta, reset)
    assert torch.equal(s0, s1) and torch.equal(u0, u1)

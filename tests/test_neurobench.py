"""NeuroBench metrics of edgesnn (``energy.neurobench``) checked against the ``neurobench``
package itself (2.3) on the same small model and data.

NeuroBench sees only torch modules, so the integer graph is wrapped: each layer is an
``nn.Linear`` holding the int8 weights (a parameter, cast to the input's dtype in forward) and a
module running the golden simulator's neuron step on the integer currents (the fused LIF the
runtime has), with its threshold and leak as registered buffers. The wrapper reproduces the
golden simulator's spikes exactly (checked), so every difference left is one of definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn import energy as en
from edgesnn.graph import neurons
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import EncoderKind, Layer, SpikeGraph
from edgesnn.graph.prng import rate_table
from edgesnn.graph.synth import random_graph, random_pixels

torch = pytest.importorskip("torch")
try:  # neurobench imports snntorch and tqdm at import time
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
except Exception as exc:  # noqa: BLE001 - any import failure means: not installed properly
    pytest.skip(f"neurobench 2.3 not importable ({type(exc).__name__}: {exc}); "
                "pip install --no-deps neurobench==2.3 snntorch==1.0.0", allow_module_level=True)

nn = torch.nn


class _IntLinear(nn.Linear):
    """An int8 weight matrix as a parameter (1 byte each, as in the .esg), used in float64:
    exact for these integer currents."""

    def __init__(self, layer: Layer) -> None:
        super().__init__(layer.n_in, layer.n_out, bias=layer.bias is not None)
        self.weight = nn.Parameter(torch.from_numpy(layer.weights.T.astype(np.int8).copy()),
                                   requires_grad=False)
        if layer.bias is not None:
            self.bias = nn.Parameter(torch.from_numpy(layer.bias.astype(np.int32)),
                                     requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias.to(x.dtype)
        return nn.functional.linear(x, self.weight.to(x.dtype), b)


class _FusedLIF(nn.Module):
    """The golden neuron step (edgesnn.graph.neurons) on one layer's integer current."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.rule = neurons.numpy_rule(layer.neuron, layer.reset, layer.fire,
                                       layer.threshold_full(), layer.leak_full(),
                                       layer.syn_leak_full())
        self.n_out = layer.n_out
        self.register_buffer("threshold", torch.from_numpy(layer.threshold.astype(np.int32)))
        self.register_buffer("leak", torch.from_numpy(layer.leak.astype(np.int32)))
        self.state: neurons.State[np.ndarray] | None = None

    def reset_state(self, batch: int) -> None:
        self.state = neurons.new_state(self.rule,
                                       lambda: np.zeros((batch, self.n_out), dtype=np.int64))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        assert self.state is not None
        cur = np.rint(current.detach().numpy()).astype(np.int64)
        fired = neurons.step(neurons.NUMPY_INT, self.rule, self.state, cur)
        return torch.from_numpy(fired.astype(np.float64))


class _GraphNet(nn.Module):
    """The spike graph as torch modules, stepping T times like the golden simulator."""

    def __init__(self, graph: SpikeGraph) -> None:
        super().__init__()
        self.graph = graph
        self.fc = nn.ModuleList(_IntLinear(layer) for layer in graph.layers)
        self.lif = nn.ModuleList(_FusedLIF(layer) for layer in graph.layers)
        self.spikes: list[np.ndarray] = []

    def forward(self, px: torch.Tensor) -> torch.Tensor:
        g, b = self.graph, px.shape[0]
        for lif in self.lif:
            lif.reset_state(b)
        spikes = np.zeros((b, len(g.layers)), dtype=np.int64)
        counts = torch.zeros(b, g.n_classes, dtype=torch.float64)
        x = px.to(torch.float64)
        direct = g.encoder.kind == EncoderKind.DIRECT
        table = (rate_table(g.steps, g.input_size, int(g.encoder.seed))
                 if g.encoder.kind == EncoderKind.RATE else None)
        i0 = self.fc[0](x) if direct else None  # direct encoding: layer 0's MACs, once
        for t in range(g.steps):
            s = None if direct else torch.from_numpy(
                (table[t][None, :] < px.numpy()).astype(np.float64))  # type: ignore[index]
            for li, (fc, lif) in enumerate(zip(self.fc, self.lif, strict=True)):
                current = i0 if (li == 0 and direct) else fc(s)
                s = lif(current)
                spikes[:, li] += s.sum(dim=1).numpy().astype(np.int64)
            counts += s
        self.spikes.append(spikes)
        return counts


def _run(graph: SpikeGraph, px: np.ndarray) -> tuple[dict, np.ndarray]:
    net = _GraphNet(graph)
    model = TorchModel(net)
    model.add_activation_module(_FusedLIF)
    data = [(torch.from_numpy(px), torch.zeros(len(px), dtype=torch.long))]
    bench = Benchmark(model, _Loader(data), [], [],  # type: ignore[arg-type]
                      [[Footprint, ConnectionSparsity],
                       [ActivationSparsity, SynapticOperations]])
    res = bench.run(quiet=True)
    return res, np.concatenate(net.spikes)


class _Loader(list):
    """A one-batch 'dataloader' (NeuroBench needs len() and .dataset)."""

    @property
    def dataset(self) -> list:
        return [0] * sum(len(x) for x, _ in self)


@pytest.mark.parametrize("encoder,density", [("rate", 0.7), ("direct", 0.6)])
def test_metrics_equal_neurobench(encoder: str, density: float) -> None:
    g = random_graph(3, input_size=24, hidden=(12,), n_classes=5, steps=6, encoder=encoder,
                     density=density)
    px = random_pixels(4, 16, g.input_size)
    px[:, :6] = 0  # some silent inputs
    sim = simulate(g, px)
    nb_ref, spikes = _run(g, px)
    assert np.array_equal(spikes, sim.spikes)  # the wrapper is the golden network
    ours = en.neurobench(g, sim.ops, sim.spikes, nonzero_ops=en.nonzero_weight_ops(g, px))
    assert ours["activation_sparsity"] == pytest.approx(nb_ref["ActivationSparsity"], abs=1e-12)
    # NeuroBench rounds connection sparsity to 4 decimals
    assert round(ours["connection_sparsity"], 4) == nb_ref["ConnectionSparsity"]
    assert ours["connection_sparsity"] > 0.2
    so, ref = ours["synaptic_operations"], nb_ref["SynapticOperations"]
    assert so["effective_acs"] == pytest.approx(float(ref["Effective_ACs"]), abs=1e-9)
    assert so["effective_macs"] == pytest.approx(float(ref["Effective_MACs"]), abs=1e-9)
    assert so["dense"] == pytest.approx(float(ref["Dense"]))
    if encoder == "direct":
        assert so["effective_macs"] > 0
    # footprint: NeuroBench's parameters + registered buffers of the wrapper
    fd = ours["footprint_detail"]
    assert fd["neurobench_parameters_bytes"] + fd["neurobench_buffers_bytes"] == \
        nb_ref["Footprint"]
    # the runtime's own op count is higher on dense rows: it touches the zero weights too
    runtime = en.neurobench(g, sim.ops, sim.spikes)["synaptic_operations"]
    assert runtime["effective_acs"] > so["effective_acs"]
    assert "runtime ops" in en.neurobench(g, sim.ops, sim.spikes)["synaptic_operations_basis"]

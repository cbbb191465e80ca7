"""The QAT forward pass is the third twin of the integer semantics: it must equal the golden
simulator bit for bit (predictions, counts, final membranes, spikes per layer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesnn.compress.qat import IntegerSNN, finetune, qat_loss
from edgesnn.compress.quantize import extract, quantize
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import Encoder, EncoderKind, Layer, NeuronKind, SpikeGraph
from edgesnn.graph.synth import random_graph, random_pixels

torch.set_num_threads(1)

CONFIGS = [
    {},
    {"encoder": "latency"},
    {"encoder": "direct"},
    {"weight_bits": 4},
    {"storage": "sparse", "density": 0.25},
    {"storage": "sparse", "density": 0.4, "weight_bits": 4, "encoder": "latency"},
    {"reset": "zero", "per_neuron": True},
    {"neuron": "if"},
    {"neuron": "if", "reset": "zero", "encoder": "direct", "weight_bits": 4},
    {"hidden": (12, 9), "per_neuron": True, "steps": 13},
    {"bias": True},
    {"bias": True, "encoder": "direct", "per_neuron": True, "reset": "zero"},
    {"bias": True, "storage": "sparse", "density": 0.3, "weight_bits": 4, "neuron": "if"},
    {"reset": "subtract_delayed", "bias": True, "per_neuron": True},
    {"reset": "none", "fire": "ge", "encoder": "latency"},
    {"reset": "zero", "fire": "ge", "encoder": "direct", "bias": True},
    {"reset": "subtract_delayed", "fire": "ge", "hidden": (10, 7)},
    {"readout": "count", "steps": 3},
    # CubaLIF (snnTorch Synaptic): the synaptic current with its own leak, every reset
    {"neuron": "cuba_lif", "reset": "subtract_delayed", "bias": True, "per_neuron": True},
    {"neuron": "cuba_lif", "reset": "zero", "encoder": "direct", "fire": "ge"},
    {"neuron": "cuba_lif", "reset": "subtract", "storage": "sparse", "density": 0.4,
     "weight_bits": 4, "hidden": (10, 7)},
    {"neuron": "cuba_lif", "reset": "none", "encoder": "latency", "bias": True},
]


def _assert_same(model: IntegerSNN, graph: SpikeGraph, pixels: np.ndarray) -> None:
    ref = simulate(graph, pixels)
    with torch.no_grad():
        out = model(pixels)
    assert np.array_equal(out.prediction().numpy(), ref.pred)
    assert np.array_equal(out.counts.numpy().astype(np.int64), ref.counts)
    assert np.array_equal(out.v_final.numpy().astype(np.int64), ref.v_final)
    spikes = torch.stack(out.layer_spikes, dim=1).numpy().astype(np.int64)
    assert np.array_equal(spikes, ref.spikes)
    assert np.array_equal(out.input_spikes.numpy().astype(np.int64), ref.input_spikes)


@pytest.mark.parametrize("kw", CONFIGS, ids=[str(c) or "default" for c in CONFIGS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qat_forward_equals_golden_on_random_graphs(kw: dict, seed: int) -> None:
    graph = random_graph(seed, **kw)
    pixels = random_pixels(seed + 100, 48, graph.input_size)
    model = IntegerSNN.from_graph(graph)
    _assert_same(model, graph, pixels)
    # the graph it exports is the one it came from
    back = model.to_graph(sparse="never")
    for a, b in zip(back.layers, graph.layers, strict=True):
        assert np.array_equal(a.weights, b.weights)
        assert np.array_equal(a.threshold_full(), b.threshold_full())
        assert np.array_equal(a.leak_full(), b.leak_full())
        assert (a.bias is None) == (b.bias is None)
        assert (a.reset, a.fire) == (b.reset, b.fire)
        assert np.array_equal(a.bias_full(), b.bias_full())
        assert a.neuron == b.neuron
        assert (a.syn_leak is None) == (b.syn_leak is None)
        assert a.syn_leak is None or np.array_equal(a.syn_leak_full(), b.syn_leak_full())
    assert back.readout == graph.readout


def test_saturation_and_negative_leak_rounding_match_golden() -> None:
    # direct input, 784 pixels of 255 times +-127: |v| passes 2**31 within ~85 steps (sat32
    # both ways); the third neuron has negative currents leaking with beta_q = 32768, where
    # the leak rounds half toward +inf (-3 -> -1).
    n = 784
    w = np.zeros((n, 3), dtype=np.int8)
    w[:, 0] = 127
    w[:, 1] = -128
    w[:, 2] = np.where(np.arange(n) % 3 == 0, 5, -3)
    graph = SpikeGraph(
        input_size=n, steps=100,
        layers=[Layer(weights=w, threshold=np.array([2**31 - 1, 0, 7], np.int32),
                      leak=np.array([65536, 65536, 32768], np.uint32))],
        encoder=Encoder(kind=EncoderKind.DIRECT, seed=1)).validate()
    pixels = np.full((3, n), 255, dtype=np.uint8)
    pixels[1, ::2] = 0
    pixels[2, :] = np.arange(n) % 256
    ref = simulate(graph, pixels)
    assert ref.v_final[:, 0].max() == 2**31 - 1 and ref.v_final[:, 1].min() == -(2**31)
    assert ref.v_final[:, 2].min() < 0
    _assert_same(IntegerSNN.from_graph(graph), graph, pixels)
    # the same currents into CubaLIF neurons: the synaptic current saturates too (no decay),
    # or decays with the membrane's rounding (alpha_q = 32768, negative currents)
    cuba = graph.layers[0]
    cuba.neuron = NeuronKind.CUBA_LIF
    cuba.syn_leak = np.array([65536, 65536, 32768], np.uint32)
    ref = simulate(graph.validate(), pixels)
    assert ref.v_final[:, 0].max() == 2**31 - 1 and ref.v_final[:, 1].min() == -(2**31)
    _assert_same(IntegerSNN.from_graph(graph), graph, pixels)


@pytest.mark.parametrize("encoder", ["rate", "latency", "direct"])
@pytest.mark.parametrize("bits,per_channel", [(8, True), (4, True), (8, False)])
def test_quantized_float_model_matches_golden_on_mnist(mnist_data_dir, encoder: str,
                                                       bits: int, per_channel: bool) -> None:
    from edgesnn.data import load_dataset
    from edgesnn.snn import SNNConfig, SpikingMLP

    torch.manual_seed(3)
    cfg = SNNConfig(input_size=784, hidden=[24], n_classes=10, steps=8, encoder=encoder,
                    per_neuron=True, threshold=0.3 if encoder != "direct" else 1.0)
    model = SpikingMLP(cfg)
    with torch.no_grad():
        model.threshold_0.uniform_(0.2, 0.6)
        model.beta_0.uniform_(0.5, 1.0)
    pixels = load_dataset("mnist", "test", mnist_data_dir, limit=64).images
    qmodel = quantize(extract(model), weight_bits=bits, per_channel=per_channel)
    graph = qmodel.to_graph()
    res = simulate(graph, pixels)
    assert res.spikes[:, 0].sum() > 0, "the hidden layer should spike"
    _assert_same(qmodel, graph, pixels)


@pytest.mark.parametrize("encoder", ["rate", "direct"])
def test_biased_float_model_quantizes_and_qat_learns_the_bias(mnist_data_dir,
                                                              encoder: str) -> None:
    """nn.Linear biases become integer biases in the layer's units (x255 for direct layer 0);
    the QAT module equals golden with them, and fine-tuning moves them."""
    from edgesnn.data import load_dataset
    from edgesnn.snn import SNNConfig, SpikingMLP

    torch.manual_seed(5)
    cfg = SNNConfig(input_size=784, hidden=[24], n_classes=10, steps=8, encoder=encoder,
                    per_neuron=True, bias=True, threshold=0.3 if encoder != "direct" else 1.0)
    model = SpikingMLP(cfg)
    with torch.no_grad():
        model.fcs[0].bias.uniform_(-0.2, 0.3)
        model.fcs[1].bias.uniform_(-0.1, 0.1)
    net = extract(model)
    qmodel = quantize(net, weight_bits=8, per_channel=True)
    graph = qmodel.to_graph()
    gain = 255.0 if encoder == "direct" else 1.0
    for k, layer in enumerate(graph.layers):
        assert layer.bias is not None and np.any(layer.bias != 0)
        scale = qmodel.specs[k].scale
        want = np.round(net.bias[k] * (gain if k == 0 else 1.0) / scale)
        assert np.array_equal(layer.bias, want.astype(np.int32))
    data = load_dataset("mnist", "train", mnist_data_dir, limit=128)
    _assert_same(qmodel, graph, data.images[:48])
    before = [qmodel.qbias(k).detach().clone() for k in range(2)]
    finetune(qmodel, data.images, data.labels, epochs=1, lr=0.5, batch_size=64, progress=False)
    assert any(not torch.equal(b, qmodel.qbias(k)) for k, b in enumerate(before))
    _assert_same(qmodel, qmodel.to_graph(), data.images[:32])


def test_gradients_reach_every_layer_and_finetune_lowers_loss(mnist_data_dir) -> None:
    from edgesnn.data import load_dataset

    graph = random_graph(4, input_size=784, hidden=(32,), n_classes=10, steps=8)
    data = load_dataset("mnist", "train", mnist_data_dir, limit=256)
    model = IntegerSNN.from_graph(graph)
    model.mask0.fill_(1.0)
    model.mask1.fill_(1.0)
    out = model(data.images[:64])
    loss = qat_loss(out, torch.as_tensor(data.labels[:64]), model.steps)
    loss.backward()
    for p in model.latent:
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    model.zero_grad()
    before = float(qat_loss(model(data.images), torch.as_tensor(data.labels), 8).detach())
    losses = finetune(model, data.images, data.labels, epochs=3, lr=1.0, batch_size=64,
                      progress=False)
    after = float(qat_loss(model(data.images), torch.as_tensor(data.labels), 8).detach())
    assert len(losses) == 3
    assert after < before
    # after training the module still is its own graph, bit for bit
    _assert_same(model, model.to_graph(), data.images[:32])


def test_bad_pixels_are_rejected() -> None:
    model = IntegerSNN.from_graph(random_graph(0))
    with pytest.raises(ValueError, match="uint8"):
        model(np.zeros((2, 20), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        model(np.zeros((2, 21), dtype=np.uint8))


@pytest.mark.parametrize("reset", ["subtract_delayed", "none"])
def test_cuba_lif_float_model_quantizes_to_golden(mnist_data_dir, reset: str) -> None:
    """A float CubaLIF model (neuron "cuba_lif", snnTorch Synaptic's rule) quantizes to CUBA_LIF
    layers with the synaptic decay in Q0.16; the QAT module equals golden on them, and the
    integer predictions follow the float model's."""
    from edgesnn.data import load_dataset
    from edgesnn.graph.ir import Q16_ONE
    from edgesnn.snn import SNNConfig, SpikingMLP

    torch.manual_seed(7)
    cfg = SNNConfig(input_size=784, hidden=[24], n_classes=10, steps=8, neuron="cuba_lif",
                    reset=reset, per_neuron=True, bias=True, threshold=0.5, alpha=0.6)
    model = SpikingMLP(cfg)
    with torch.no_grad():
        model.alpha_0.uniform_(0.3, 0.9)
    pixels = load_dataset("mnist", "test", mnist_data_dir, limit=64).images
    qmodel = quantize(extract(model), weight_bits=8, per_channel=True)
    graph = qmodel.to_graph()
    layer = graph.layers[0]
    assert layer.neuron == NeuronKind.CUBA_LIF
    want = np.round(model.alpha(0).detach().double().numpy() * Q16_ONE)
    assert np.array_equal(layer.syn_leak_full(), want)
    res = simulate(graph, pixels)
    assert res.spikes[:, 0].sum() > 0, "the hidden layer should spike"
    _assert_same(qmodel, graph, pixels)
    float_pred = model.predict(torch.from_numpy(pixels)).numpy()
    assert np.mean(float_pred == res.pred) >= 0.8

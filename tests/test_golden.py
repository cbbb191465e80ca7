"""The golden simulator (vectorised) against the per-neuron reference written from SPEC.md."""

from __future__ import annotations

import gzip
import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from edgesnn.graph.golden import (
    INT32_MAX,
    INT32_MIN,
    SimResult,
    _Prepared,
    _step_layer,
    readout,
    reference_simulate,
    simulate,
)
from edgesnn.graph.ir import (
    BIAS_MAX,
    Q16_ONE,
    Encoder,
    EncoderKind,
    FireRule,
    GraphError,
    Layer,
    NeuronKind,
    Readout,
    ResetMode,
    SpikeGraph,
    Storage,
)
from edgesnn.graph.neurons import State
from edgesnn.graph.synth import random_graph, random_pixels

FIELDS = ("pred", "counts", "v_final", "input_spikes", "spikes", "ops")


def assert_same(fast: SimResult, ref: SimResult, b: int, what: str) -> None:
    for name in FIELDS:
        got = getattr(fast, name)[b:b + 1]
        want = getattr(ref, name)
        assert got.dtype == np.int64, name
        assert np.array_equal(got, want), f"{what}: sample {b} field {name}: {got} != {want}"
    if ref.raster is not None and fast.raster is not None:
        for k, (rf, rr) in enumerate(zip(fast.raster, ref.raster, strict=True)):
            assert np.array_equal(rf[:, b:b + 1], rr), f"{what}: raster {k} sample {b}"


def check_graph(graph: SpikeGraph, pixels: np.ndarray, what: str) -> SimResult:
    fast = simulate(graph, pixels, record=True, batch_size=3)
    for b in range(pixels.shape[0]):
        assert_same(fast, reference_simulate(graph, pixels[b], record=True), b, what)
    return fast


COMBOS = list(itertools.product(
    ("rate", "latency", "direct"), ("lif", "if"), ("subtract", "zero"), (8, 4),
    ("dense", "sparse"), (False, True)))


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(map(str, c)) for c in COMBOS])
def test_fast_equals_reference_on_random_graphs(combo: tuple) -> None:
    encoder, neuron, reset, bits, storage, per_neuron = combo
    seed = COMBOS.index(combo)
    hidden = ((), (9,), (11, 7))[seed % 3]
    graph = random_graph(seed, input_size=17, hidden=hidden, n_classes=4, steps=6,
                         encoder=encoder, weight_bits=bits, storage=storage, neuron=neuron,
                         reset=reset, per_neuron=per_neuron,
                         density=0.5 if storage == "sparse" else 1.0, bias=bool(seed % 2))
    pixels = random_pixels(seed, 4, 17)
    pixels[0] = 0  # an all-black sample
    fast = check_graph(graph, pixels, str(combo))
    # graphs from random_graph must actually spike somewhere beyond the input
    assert fast.spikes[:, 0].sum() > 0


def _extreme_graph(rng: np.random.Generator, encoder: EncoderKind,
                   cuba: bool = False) -> SpikeGraph:
    n_layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 9)) for _ in range(n_layers + 1)]
    layers = []
    for li in range(n_layers):
        bits = int(rng.choice([8, 4]))
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        w = rng.choice([lo, hi, 0, -1, 1, lo // 2, hi // 2], size=(sizes[li], sizes[li + 1]))
        neuron = NeuronKind(int(rng.integers(0, 2)))
        count = sizes[li + 1] if rng.random() < 0.5 else 1
        theta = rng.choice([0, 0, 1, 2, 100, 2**31 - 1, 2**30], size=count)
        if neuron == NeuronKind.IF:
            leak = np.full(count, Q16_ONE)
        else:
            leak = rng.choice([0, 1, 32767, 32768, 32769, 65535, 65536], size=count)
        bias = None
        if rng.random() < 0.5:
            bias = rng.choice([0, 1, -1, BIAS_MAX, -BIAS_MAX, 1 << 20], size=sizes[li + 1])
        syn_leak = None
        if cuba:  # every reset, and the synaptic leak at its extremes too
            neuron = NeuronKind.CUBA_LIF
            syn_leak = rng.choice([0, 1, 32767, 32768, 32769, 65535, 65536], size=count)
        layers.append(Layer(weights=w.astype(np.int16), threshold=theta.astype(np.int64),
                            leak=leak.astype(np.int64), neuron=neuron,
                            reset=ResetMode(int(rng.integers(0, 4 if cuba else 2))),
                            weight_bits=bits,
                            storage=Storage(int(rng.integers(0, 2))), bias=bias,
                            syn_leak=syn_leak))
    return SpikeGraph(input_size=sizes[0], steps=int(rng.integers(1, 12)), layers=layers,
                      encoder=Encoder(kind=encoder, seed=int(rng.integers(0, 1 << 32))))


@pytest.mark.parametrize("encoder", list(EncoderKind))
def test_fast_equals_reference_on_extreme_values(encoder: EncoderKind) -> None:
    rng = np.random.default_rng(1000 + int(encoder))
    for k in range(40):
        graph = _extreme_graph(rng, encoder)
        pixels = rng.choice([0, 1, 127, 128, 254, 255], size=(3, graph.input_size))
        check_graph(graph, pixels.astype(np.uint8), f"extreme {encoder.name} #{k}")


@pytest.mark.parametrize("encoder", list(EncoderKind))
def test_cuba_lif_fast_equals_reference_on_extreme_values(encoder: EncoderKind) -> None:
    rng = np.random.default_rng(2000 + int(encoder))
    for k in range(40):
        graph = _extreme_graph(rng, encoder, cuba=True)
        pixels = rng.choice([0, 1, 127, 128, 254, 255], size=(3, graph.input_size))
        check_graph(graph, pixels.astype(np.uint8), f"extreme cuba {encoder.name} #{k}")


CUBA_COMBOS = list(itertools.product(
    ("rate", "latency", "direct"), tuple(ResetMode), (FireRule.GT, FireRule.GE),
    ("dense", "sparse")))


@pytest.mark.parametrize("combo", CUBA_COMBOS, ids=["-".join(map(str, c)) for c in CUBA_COMBOS])
def test_cuba_lif_fast_equals_reference(combo: tuple) -> None:
    encoder, reset, fire, storage = combo
    seed = CUBA_COMBOS.index(combo)
    graph = random_graph(seed, input_size=15, hidden=((9,), (8, 6))[seed % 2], n_classes=4,
                         steps=7, encoder=encoder, reset=reset, fire=fire, storage=storage,
                         density=0.5 if storage == "sparse" else 1.0, neuron="cuba_lif",
                         per_neuron=bool(seed % 3), bias=bool(seed % 2))
    fast = check_graph(graph, random_pixels(seed, 4, 15), str(combo))
    assert fast.spikes[:, 0].sum() > 0


def test_cuba_lif_by_hand() -> None:
    """SPEC.md 3.2 for CubaLIF, I0 = 8 every step, alpha = beta = 1/2 (Q16 32768), theta = 9,
    4 steps, written out (leak(x) = (x * 32768 + 32768) >> 16):

    syn: 8 | 4+8=12 | 6+8=14 | 7+8=15
    SUBTRACT:          v: 8 | 4+12=16 > 9 -> 7 | 4+14=18 > 9 -> 9 | 5+15=20 > 9 -> 11
                       counts 3, v_final 11
    SUBTRACT_DELAYED:  v: 8 | 4+12=16 (fires) | 8-9+14=13 (fires) | 7-9+15=13 (fires)
                       counts 3, v_final 13
    ZERO:              v: 8 | 16 -> 0 | 0+14=14 -> 0 | 15 -> 0: counts 3, v_final 0
    NONE:              v: 8 | 16 | 8+14=22 | 11+15=26: counts 3, v_final 26
    and with alpha = 0 (no synaptic memory) CubaLIF is the LIF of the same current."""
    px = np.array([[1]], dtype=np.uint8)
    for reset, counts, v_final in ((ResetMode.SUBTRACT, 3, 11),
                                   (ResetMode.SUBTRACT_DELAYED, 3, 13),
                                   (ResetMode.ZERO, 3, 0), (ResetMode.NONE, 3, 26)):
        g = _direct_single(8, 1, 9, 32768, 4, reset)
        g.layers[0].neuron = NeuronKind.CUBA_LIF
        g.layers[0].syn_leak = np.array([32768])
        res = simulate(g, px)
        assert res.counts[0].tolist() == [counts] * 2, reset
        assert res.v_final[0].tolist() == [v_final] * 2, reset
        assert_same(res, reference_simulate(g, px[0]), 0, f"cuba {reset}")
        lif = _direct_single(8, 1, 9, 32768, 4, reset)
        g.layers[0].syn_leak = np.array([0])
        assert_same(simulate(g, px), reference_simulate(lif, px[0]), 0, f"alpha 0 {reset}")


def test_cuba_lif_needs_its_synaptic_leak() -> None:
    g = _direct_single(8, 1, 9, 32768, 4)
    g.layers[0].neuron = NeuronKind.CUBA_LIF
    with pytest.raises(GraphError, match="needs syn_leak"):
        g.validate()
    g.layers[0].syn_leak = np.array([65537])
    with pytest.raises(GraphError, match="syn_leak outside"):
        g.validate()
    g.layers[0].neuron = NeuronKind.LIF
    with pytest.raises(GraphError, match="syn_leak is set but a LIF neuron"):
        g.validate()


def _direct_single(w: int, n_in: int, theta: int, leak: int, steps: int,
                   reset: ResetMode = ResetMode.SUBTRACT) -> SpikeGraph:
    neuron = NeuronKind.IF if leak == Q16_ONE else NeuronKind.LIF
    layer = Layer(weights=np.full((n_in, 2), w, dtype=np.int8),
                  threshold=np.array([theta]), leak=np.array([leak]), neuron=neuron, reset=reset)
    return SpikeGraph(input_size=n_in, steps=steps, layers=[layer],
                      encoder=Encoder(kind=EncoderKind.DIRECT))


def test_saturation_at_int32_limits() -> None:
    # I0 = 255 * 127 * 2000 = 64,770,000 per step; 40 steps would reach 2.59e9 > INT32_MAX.
    up = _direct_single(127, 2000, 2**31 - 1, Q16_ONE, 40)
    px = np.full((1, 2000), 255, dtype=np.uint8)
    res = simulate(up, px)
    assert res.v_final[0].tolist() == [INT32_MAX, INT32_MAX]  # clamped, never > theta
    assert res.counts[0].tolist() == [0, 0]
    assert res.ops[0].tolist() == [2000 * 2]  # direct: fan-out once per nonzero pixel
    assert_same(res, reference_simulate(up, px[0]), 0, "saturate up")
    down = _direct_single(-128, 2000, 0, 65535, 40)
    res = simulate(down, px)
    assert res.v_final[0].tolist() == [INT32_MIN, INT32_MIN]
    assert_same(res, reference_simulate(down, px[0]), 0, "saturate down")


def test_leak_rounds_half_up_for_negative_membranes() -> None:
    layer = Layer(weights=np.zeros((1, 6), dtype=np.int8), threshold=np.array([10**6]),
                  leak=np.array([32768]))
    p = _Prepared(layer, direct_input=False)
    st = State(v=np.array([[-3, 3, -1, 1, -2, 5]], dtype=np.int64))
    _step_layer(st, np.zeros((1, 6), dtype=np.int64), p)
    # SPEC 3.2: (v * 32768 + 32768) >> 16: -1.5 -> -1, 1.5 -> 2, -0.5 -> 0, 0.5 -> 1
    assert st.v.tolist() == [[-1, 2, 0, 1, -1, 3]]


def test_strict_threshold_and_reset_modes() -> None:
    for reset, after in ((ResetMode.SUBTRACT, 3), (ResetMode.ZERO, 0)):
        # one input always on (pixel 255 with latency fires at t=0 only), so use direct
        g = _direct_single(1, 1, 4, Q16_ONE, 1, reset)
        res = simulate(g, np.array([[4]], dtype=np.uint8))  # v = 4, not > 4
        assert res.counts[0].tolist() == [0, 0] and res.v_final[0].tolist() == [4, 4]
        res = simulate(g, np.array([[7]], dtype=np.uint8))  # v = 7 > 4: fire, reset
        assert res.counts[0].tolist() == [1, 1] and res.v_final[0].tolist() == [after, after]
    zero = _direct_single(1, 1, 0, Q16_ONE, 3)
    assert simulate(zero, np.array([[1]], dtype=np.uint8)).counts[0].tolist() == [3, 3]
    assert simulate(zero, np.array([[0]], dtype=np.uint8)).counts[0].tolist() == [0, 0]


def test_peer_reset_timing_and_fire_rule_by_hand() -> None:
    """I0 = 7 every step, theta = 4, beta = 1/2 (Q16 32768), 4 steps, written out:

    SUBTRACT (edgesnn/Norse):     v = leak(v) + 7, fire v > 4, v -= 4
        v: 7 -> 3 | 2+7=9 -> 5 | 3+7=10 -> 6 | 3+7=10 -> 6       counts 4, v_final 6
    SUBTRACT_DELAYED (snnTorch):  v = leak(v) - 4*s_prev + 7, fire v > 4, no reset now
        v: 7 | 4-4+7=7 | 4-4+7=7 | 4-4+7=7                      counts 4, v_final 7
    NONE:                         v = leak(v) + 7
        v: 7 | 11 | 13 | 14 (leak(13) = 7)                      counts 4, v_final 14
    ZERO with GE and theta = 7 (SpikingJelly hard reset): v = 7 >= 7 fires every step; with
    GT it fires every other step (7 | 4+7=11 -> 0 | 7 | 11 -> 0): counts 2."""
    leak = 32768
    cases = [(ResetMode.SUBTRACT, 4, FireRule.GT, 4, 6),
             (ResetMode.SUBTRACT_DELAYED, 4, FireRule.GT, 4, 7),
             (ResetMode.NONE, 4, FireRule.GT, 4, 14),
             (ResetMode.ZERO, 7, FireRule.GE, 4, 0), (ResetMode.ZERO, 7, FireRule.GT, 2, 0)]
    for reset, theta, fire, counts, v_final in cases:
        g = _direct_single(7, 1, theta, leak, 4, reset)
        g.layers[0].fire = fire
        res = simulate(g, np.array([[1]], dtype=np.uint8))
        assert res.counts[0].tolist() == [counts] * 2, (reset, fire)
        assert res.v_final[0].tolist() == [v_final] * 2, (reset, fire)
        assert_same(res, reference_simulate(g, np.array([1], dtype=np.uint8)), 0, str(reset))


PEER_COMBOS = list(itertools.product(
    ("rate", "direct"), (ResetMode.SUBTRACT_DELAYED, ResetMode.NONE, ResetMode.ZERO,
                         ResetMode.SUBTRACT), (FireRule.GT, FireRule.GE), (False, True)))


@pytest.mark.parametrize("combo", PEER_COMBOS, ids=["-".join(map(str, c)) for c in PEER_COMBOS])
def test_fast_equals_reference_with_peer_rules(combo: tuple) -> None:
    encoder, reset, fire, bias = combo
    seed = PEER_COMBOS.index(combo)
    graph = random_graph(seed, input_size=15, hidden=(9,), n_classes=4, steps=7,
                         encoder=encoder, reset=reset, per_neuron=bool(seed % 2), bias=bias)
    for layer in graph.layers:
        layer.fire = fire
    pixels = random_pixels(seed, 4, 15)
    fast = check_graph(graph, pixels, str(combo))
    assert fast.spikes.sum() > 0


def test_count_readout_takes_the_lowest_index_on_ties() -> None:
    """Readout 1 (the peers' argmax of the counts) differs from the membrane tie-break exactly
    on tied samples, in the fast and the reference simulator."""
    g = random_graph(31, input_size=16, hidden=(8,), n_classes=6, steps=3, readout="count")
    px = random_pixels(31, 64, 16)
    res = check_graph(g, px, "count readout")
    np.testing.assert_array_equal(res.pred, np.argmax(res.counts, axis=1))
    g.readout = Readout.COUNT_MEMBRANE
    other = simulate(g, px)
    assert np.array_equal(other.counts, res.counts)
    differ = other.pred != res.pred
    assert differ.any(), "no tie decided by the membrane: the test would be vacuous"
    tied = (res.counts == res.counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert not np.any(differ & ~tied)


def test_readout_tie_breaks() -> None:
    counts = np.array([[2, 3, 3], [1, 1, 1], [0, 0, 0]])
    v = np.array([[9, -5, -4], [7, 7, 7], [INT32_MIN, INT32_MAX, INT32_MAX]])
    assert readout(counts, v).tolist() == [2, 0, 1]


def test_same_step_propagation_and_latency_timing() -> None:
    # input pixel 255 with latency fires at t = 0; the chain of two IF layers with threshold 0
    # and weight 1 (reset to zero) must fire in the same step at every layer.
    mk = lambda: Layer(weights=np.ones((1, 1), dtype=np.int8), threshold=np.array([0]),  # noqa: E731
                       leak=np.array([Q16_ONE]), neuron=NeuronKind.IF, reset=ResetMode.ZERO)
    g = SpikeGraph(input_size=1, steps=4, layers=[mk(), mk()],
                   encoder=Encoder(kind=EncoderKind.LATENCY))
    res = simulate(g, np.array([[255], [128], [1]], dtype=np.uint8), record=True)
    assert res.raster is not None
    # t_i = ((255 - p) * 4) >> 8: 255 -> 0, 128 -> 1, 1 -> 3
    assert np.argmax(res.raster[0][:, :, 0], axis=0).tolist() == [0, 1, 3]
    assert np.array_equal(res.raster[2], res.raster[0])
    assert res.input_spikes.tolist() == [1, 1, 1] and res.ops.tolist() == [[1, 1]] * 3


def test_sparse_ops_count_nonzero_fanout() -> None:
    w = np.array([[1, 0, 2], [0, 0, 0], [3, 3, 3]], dtype=np.int8)
    dense = Layer(weights=w, threshold=np.array([10**6]), leak=np.array([Q16_ONE]),
                  neuron=NeuronKind.IF)
    sparse = Layer(weights=w, threshold=np.array([10**6]), leak=np.array([Q16_ONE]),
                   neuron=NeuronKind.IF, storage=Storage.SPARSE)
    px = np.array([[1, 1, 1]], dtype=np.uint8)
    for layer, ops in ((dense, 9), (sparse, 5)):
        g = SpikeGraph(input_size=3, steps=1, layers=[layer],
                       encoder=Encoder(kind=EncoderKind.DIRECT))
        assert simulate(g, px).ops[0].tolist() == [ops]


def test_batching_and_input_checks() -> None:
    g = random_graph(7, input_size=30, hidden=(20,), steps=10)
    px = random_pixels(7, 23, 30)
    a = simulate(g, px, batch_size=1024)
    b = simulate(g, px, batch_size=5)
    for name in FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(simulate(g, px[3]).counts, a.counts[3:4])
    with pytest.raises(GraphError, match="shape"):
        simulate(g, px[:, :29])
    with pytest.raises(GraphError, match="0..255"):
        simulate(g, px.astype(np.int32) + 300)


def _load_mnist_test(root: Path) -> np.ndarray:
    raw = gzip.open(root / "mnist" / "t10k-images-idx3-ubyte.gz").read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)


def test_full_mnist_test_set_is_fast(mnist_data_dir: Path) -> None:
    px = _load_mnist_test(mnist_data_dir)
    assert px.shape == (10000, 784)
    g = random_graph(11, input_size=784, hidden=(256,), n_classes=10, steps=25)
    start = time.perf_counter()
    res = simulate(g, px)
    elapsed = time.perf_counter() - start
    assert elapsed < 45.0, f"10,000 MNIST samples took {elapsed:.1f} s"
    assert res.pred.shape == (10000,) and res.spikes[:, 0].mean() > 0
    for b in (0, 4321):  # spot-check two real samples against the reference
        assert_same(res, reference_simulate(g, px[b]), b, "mnist")


@pytest.mark.parametrize("encoder", ["rate", "latency", "direct"])
def test_random_graph_layers_spike_at_useful_rates(encoder: str) -> None:
    g = random_graph(5, input_size=64, hidden=(32, 16), n_classes=10, steps=12, encoder=encoder,
                     per_neuron=True, storage="sparse", density=0.6)
    g2 = random_graph(5, input_size=64, hidden=(32, 16), n_classes=10, steps=12, encoder=encoder,
                      per_neuron=True, storage="sparse", density=0.6)
    assert all(np.array_equal(a.weights, b.weights) and np.array_equal(a.threshold, b.threshold)
               for a, b in zip(g.layers, g2.layers, strict=True))  # a pure function of the seed
    res = simulate(g, random_pixels(1, 32, 64))
    for li, layer in enumerate(g.layers):
        rate = res.spikes[:, li].mean() / (g.steps * layer.n_out)
        assert 0.02 < rate < 0.6, f"layer {li} spike rate {rate:.3f}"
    assert len(np.unique(res.pred)) >= 2  # the readout is not constant
    assert 0.1 < (random_pixels(3, 50, 784) > 0).mean() < 0.3  # MNIST-like sparsity

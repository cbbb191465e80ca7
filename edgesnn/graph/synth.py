"""Random spike graphs and MNIST-like pixels for bit-exactness tests (numpy only).

``random_graph`` draws int weights with a positive bias and then calibrates every layer's
threshold on :func:`random_pixels` with the golden simulator, layer by layer, so that each
layer spikes at a useful rate (roughly 5-40 % of neuron-steps) instead of being silent or
saturated. Everything is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np

from edgesnn.graph.golden import _simulate_validated
from edgesnn.graph.ir import (
    BIAS_MAX,
    INT32_MAX,
    Q16_ONE,
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

_TARGET_RATE = 0.2  # fraction of steps a typical neuron should fire
_CALIBRATION_SAMPLES = 16


def random_pixels(seed: int, n: int, input_size: int) -> np.ndarray:
    """uint8 ``[n, input_size]``: about 80 % zeros, the rest mostly bright, like MNIST digits.

    Each sample has a random "stroke" band of nonzero pixels so samples differ in support.
    """
    rng = np.random.default_rng([seed, 0x50_1C_E1])
    px = np.zeros((n, input_size), dtype=np.uint8)
    for k in range(n):
        on = rng.random(input_size) < rng.uniform(0.12, 0.28)
        vals = np.where(rng.random(input_size) < 0.6, rng.integers(200, 256, input_size),
                        rng.integers(1, 200, input_size))
        px[k] = np.where(on, vals, 0).astype(np.uint8)
    return px


def _enum(cls: type, value: object) -> object:
    if isinstance(value, str):
        return cls[value.upper()]
    return cls(value)


def random_graph(
    seed: int,
    *,
    input_size: int = 20,
    hidden: tuple[int, ...] = (16,),
    n_classes: int = 5,
    steps: int = 8,
    encoder: str | EncoderKind = "rate",
    weight_bits: int = 8,
    storage: str | Storage = "dense",
    neuron: str | NeuronKind = "lif",
    reset: str | ResetMode = "subtract",
    per_neuron: bool = False,
    density: float = 1.0,
    bias: bool = False,
    fire: str | FireRule = "gt",
    readout: str | Readout = "count_membrane",
    shared_leak: bool = False,
) -> SpikeGraph:
    """A valid :class:`SpikeGraph` ``input_size -> *hidden -> n_classes`` that actually spikes.

    ``density`` < 1 keeps about that fraction of the weights (the rest are 0, as after
    pruning); ``per_neuron`` gives every neuron its own threshold and leak (``shared_leak``:
    its own threshold, one leak per layer, as training exports them: the firmware's fast fire
    loop); ``bias`` gives every neuron a bias of up to a third of its threshold, either sign.
    Enum arguments accept names ("rate", "sparse", "if", "zero", ...) or the IntEnum values.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density={density}; accepted: (0, 1]")
    enc = _enum(EncoderKind, encoder)
    store = _enum(Storage, storage)
    nkind = _enum(NeuronKind, neuron)
    rmode = _enum(ResetMode, reset)
    frule = _enum(FireRule, fire)
    rng = np.random.default_rng([seed, 0x6E_57])
    sizes = [input_size, *hidden, n_classes]
    wmax = qmax_for(weight_bits)
    layers: list[Layer] = []
    for li in range(len(sizes) - 1):
        n_in, n_out = sizes[li], sizes[li + 1]
        w = rng.normal(0.15, 0.5, (n_in, n_out)) * wmax
        if density < 1.0:
            w *= rng.random((n_in, n_out)) < density
        w = np.clip(np.rint(w), -wmax - 1, wmax).astype(np.int8)
        count = n_out if per_neuron else 1
        n_leak = 1 if shared_leak else count
        if nkind == NeuronKind.IF:
            leak = np.full(n_leak, Q16_ONE, dtype=np.uint32)
        else:
            leak = rng.integers(49152, Q16_ONE + 1, n_leak).astype(np.uint32)
        syn_leak = None  # CUBA_LIF: a synaptic decay of 1/2 .. 15/16 per step
        if nkind == NeuronKind.CUBA_LIF:
            syn_leak = rng.integers(32768, 61441, count).astype(np.uint32)
        layers.append(Layer(weights=w, threshold=np.ones(count, dtype=np.int32), leak=leak,
                            neuron=nkind, reset=rmode, weight_bits=weight_bits, storage=store,
                            name=f"fc{li}", fire=frule, syn_leak=syn_leak))
    graph = SpikeGraph(input_size=input_size, steps=steps, layers=layers,
                       encoder=Encoder(kind=enc, seed=int(rng.integers(0, 1 << 32))),
                       metadata={"name": f"random_graph({seed})", "synth_seed": seed},
                       readout=_enum(Readout, readout))
    _calibrate(graph, rng, per_neuron)
    if bias:
        for layer in graph.layers:
            reach = np.maximum(layer.threshold_full() // 3, 1)
            layer.bias = np.clip(rng.integers(-reach, reach + 1), -BIAS_MAX, BIAS_MAX
                                 ).astype(np.int32)
    return graph.validate()


def _calibrate(graph: SpikeGraph, rng: np.random.Generator, per_neuron: bool) -> None:
    """Set thresholds layer by layer from the mean positive current each layer receives."""
    px = random_pixels(int(rng.integers(0, 1 << 31)), _CALIBRATION_SAMPLES, graph.input_size)
    for li, layer in enumerate(graph.layers):
        if li == 0 and graph.encoder.kind == EncoderKind.DIRECT:
            cur = px.astype(np.int64) @ layer.weights.astype(np.int64)  # [B, n_out]
            mean_pos = np.maximum(cur, 0).mean(axis=0)
        else:
            # later layers' thresholds do not change the spikes layer li receives
            res = _simulate_validated(graph, px, record=True)
            s = res.raster[li].astype(np.int64)  # type: ignore[index]  # input spikes of li
            cur = np.einsum("tbi,ij->tbj", s, layer.weights.astype(np.int64))
            mean_pos = np.maximum(cur, 0).mean(axis=(0, 1))
        theta = np.maximum(1, np.rint(mean_pos / _TARGET_RATE)).astype(np.int64)
        if per_neuron:
            jitter = rng.uniform(0.7, 1.3, layer.n_out)
            layer.threshold = np.clip(np.rint(theta * jitter), 0, INT32_MAX).astype(np.int32)
        else:
            layer.threshold = np.array([min(int(np.median(theta)), INT32_MAX)], dtype=np.int32)

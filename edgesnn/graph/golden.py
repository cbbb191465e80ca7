"""The golden integer simulator: the numpy twin of the C runtime (SPEC.md section 3).

:func:`simulate` is the fast, batch-vectorised implementation used everywhere (compress,
report, conformance vectors); :func:`reference_simulate` is a slow per-neuron loop written
line by line from SPEC.md that exists only to check :func:`simulate`. Both return a
:class:`SimResult` and must agree bit for bit.

Exactness of the vectorised path: the synaptic current is a float32 matmul of 0/1 spikes with
int weights (|w| <= 128). Every partial sum is an integer of magnitude <= n_in * 128, exact in
float32 while that stays below 2**24 (n_in <= 65535 always satisfies it); direct encoding
(pixels up to 255) uses float64, exact below 2**53. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgesnn.graph import neurons
from edgesnn.graph.ir import (
    INT32_MAX,
    INT32_MIN,
    Q16_ONE,
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
from edgesnn.graph.prng import latency_steps, rate_table

_F32_EXACT = 1 << 24


@dataclass
class SimResult:
    """Per-sample outputs of one batch of inferences (all numpy int64 unless stated).

    ``pred [B]``, ``counts [B, C]`` output spikes per class, ``v_final [B, C]`` last-layer
    membranes after the last step's reset, ``input_spikes [B]``, ``spikes [B, L]`` spikes per
    layer, ``ops [B, L]`` synaptic ops per layer; ``raster`` (only with ``record=True``): one
    bool ``[T, B, n]`` array for the input and for each layer.
    """

    pred: np.ndarray
    counts: np.ndarray
    v_final: np.ndarray
    input_spikes: np.ndarray
    spikes: np.ndarray
    ops: np.ndarray
    raster: list[np.ndarray] | None = field(default=None)

    def __len__(self) -> int:
        return int(self.pred.shape[0])

    def to_json(self) -> dict[str, list]:
        """JSON-able dict (lists of ints); ``raster`` is left out."""
        return {
            "pred": self.pred.tolist(),
            "counts": self.counts.tolist(),
            "v_final": self.v_final.tolist(),
            "input_spikes": self.input_spikes.tolist(),
            "spikes": self.spikes.tolist(),
            "ops": self.ops.tolist(),
        }

    @staticmethod
    def concat(parts: list[SimResult]) -> SimResult:
        if not parts:
            raise ValueError("SimResult.concat needs at least one part")
        raster = None
        if all(p.raster is not None for p in parts):
            raster = [np.concatenate([p.raster[k] for p in parts], axis=1)  # type: ignore[index]
                      for k in range(len(parts[0].raster))]  # type: ignore[arg-type]
        return SimResult(
            pred=np.concatenate([p.pred for p in parts]),
            counts=np.concatenate([p.counts for p in parts]),
            v_final=np.concatenate([p.v_final for p in parts]),
            input_spikes=np.concatenate([p.input_spikes for p in parts]),
            spikes=np.concatenate([p.spikes for p in parts]),
            ops=np.concatenate([p.ops for p in parts]),
            raster=raster,
        )


def fanout(layer: Layer) -> np.ndarray:
    """int64 ``[n_in]``: ops one presynaptic spike of each input costs (SPEC.md 3.4)."""
    if Storage(layer.storage) == Storage.SPARSE:
        return np.count_nonzero(layer.weights, axis=1).astype(np.int64)
    return np.full(layer.n_in, layer.n_out, dtype=np.int64)


def readout(counts: np.ndarray, v_final: np.ndarray,
            mode: Readout = Readout.COUNT_MEMBRANE) -> np.ndarray:
    """argmax of (count, v_last) lexicographically, lowest class on a full tie (SPEC 3.3);
    ``Readout.COUNT``: argmax of the counts, lowest class on a tie (the peers' readout)."""
    if mode == Readout.COUNT:
        return np.argmax(counts, axis=1).astype(np.int64)
    key = counts.astype(np.int64) * (1 << 32) + (v_final.astype(np.int64) - INT32_MIN)
    return np.argmax(key, axis=1).astype(np.int64)


def _check_pixels(graph: SpikeGraph, pixels: np.ndarray) -> np.ndarray:
    px = np.asarray(pixels)
    if px.ndim == 1:
        px = px.reshape(1, -1)
    if px.ndim != 2 or px.shape[1] != graph.input_size:
        raise GraphError(f"pixels must have shape [B, {graph.input_size}], got {px.shape}")
    if not np.issubdtype(px.dtype, np.integer):
        raise GraphError(f"pixels must be uint8 integers 0..255, got dtype {px.dtype}")
    if px.size and (int(px.min()) < 0 or int(px.max()) > 255):
        raise GraphError(f"pixels outside 0..255 (min {int(px.min())}, max {int(px.max())})")
    return px.astype(np.uint8, copy=False)


class _Prepared:
    """Per-layer constants computed once per :func:`simulate` call."""

    def __init__(self, layer: Layer, direct_input: bool) -> None:
        exact32 = layer.n_in * 128 < _F32_EXACT
        dtype = np.float64 if (direct_input or not exact32) else np.float32
        self.w = layer.weights.astype(dtype)
        self.fanout = fanout(layer)
        self.rule = neurons.numpy_rule(layer.neuron, layer.reset, layer.fire,
                                       layer.threshold_full(), layer.leak_full(),
                                       layer.syn_leak_full())
        self.n_out = layer.n_out
        self.bias = None if layer.bias is None else layer.bias.astype(np.int64)


def lif_step(v: np.ndarray, current: np.ndarray, beta: np.ndarray, theta: np.ndarray,
             reset: ResetMode, no_leak: bool | None = None, *, ge: bool = False,
             pending: np.ndarray | None = None) -> np.ndarray:
    """SPEC 3.2 steps 2.2-2.4 for one LIF layer, in place on ``v`` (int64 ``[B, n]``): the
    neuron step of :mod:`edgesnn.graph.neurons` on numpy. Returns the spikes. ``pending``
    (int64 ``[B, n]``, needed for SUBTRACT_DELAYED) carries the thresholds of the neurons that
    fired into the next call. The numpy users of a single-state neuron outside this simulator
    (the crossbar periphery) call this function."""
    beta = np.asarray(beta, dtype=np.int64)
    if no_leak is None:
        no_leak = bool(np.all(beta == Q16_ONE))
    rule = neurons.LayerRule(kind=NeuronKind.LIF, reset=ResetMode(reset), ge=ge,
                             theta=np.asarray(theta, dtype=np.int64),
                             leak=None if no_leak else beta)
    st = neurons.State(v=v, pending=pending)
    fired = neurons.step(neurons.NUMPY_INT, rule, st, current)
    v[...] = st.v
    if pending is not None and st.pending is not None:
        pending[...] = st.pending
    return fired


def _new_state(p: _Prepared, b: int) -> neurons.State[np.ndarray]:
    return neurons.new_state(p.rule, lambda: np.zeros((b, p.n_out), dtype=np.int64))


def _step_layer(st: neurons.State[np.ndarray], current: np.ndarray,
                p: _Prepared) -> np.ndarray:
    return neurons.step(neurons.NUMPY_INT, p.rule, st, current)


def _simulate_chunk(graph: SpikeGraph, prep: list[_Prepared], px: np.ndarray,
                    table: np.ndarray | None, record: bool) -> SimResult:
    steps, b, n_layers = graph.steps, px.shape[0], len(graph.layers)
    kind = graph.encoder.kind
    state = [_new_state(p, b) for p in prep]
    counts = np.zeros((b, graph.n_classes), dtype=np.int64)
    spikes = np.zeros((b, n_layers), dtype=np.int64)
    ops = np.zeros((b, n_layers), dtype=np.int64)
    input_spikes = np.zeros(b, dtype=np.int64)
    raster = None
    if record:
        raster = [np.zeros((steps, b, graph.input_size), dtype=bool)]
        raster += [np.zeros((steps, b, p.n_out), dtype=bool) for p in prep]

    # presynaptic spikes per input neuron over the inference; ops = counts . fan-out
    pre_counts = [np.zeros((b, layer.n_in), dtype=np.int32) for layer in graph.layers]
    i0 = None
    lat = None
    if kind == EncoderKind.DIRECT:
        i0 = np.rint(px.astype(np.float64) @ prep[0].w).astype(np.int64)
        if prep[0].bias is not None:  # I0 + b fits int32 (|b| <= BIAS_MAX)
            i0 += prep[0].bias
        ops[:, 0] = (px != 0).astype(np.int64) @ prep[0].fanout
    elif kind == EncoderKind.LATENCY:
        lat = latency_steps(px, steps)

    for t in range(steps):
        s_in: np.ndarray | None = None
        if kind == EncoderKind.RATE:
            assert table is not None
            s_in = table[t][None, :] < px
        elif kind == EncoderKind.LATENCY:
            assert lat is not None
            s_in = lat == t
        if s_in is not None:
            input_spikes += s_in.sum(axis=1)
            if raster is not None:
                raster[0][t] = s_in
        s = s_in
        for li, p in enumerate(prep):
            if li == 0 and i0 is not None:
                current = i0
            else:
                assert s is not None
                sf = s.astype(p.w.dtype)
                current = np.rint(sf @ p.w).astype(np.int64)
                if p.bias is not None:
                    current += p.bias
                pre_counts[li] += s
            s = _step_layer(state[li], current, p)
            spikes[:, li] += s.sum(axis=1)
            if raster is not None:
                raster[li + 1][t] = s
        assert s is not None
        counts += s
    for li, p in enumerate(prep):
        if not (li == 0 and i0 is not None):  # exact: < 2**53
            ops[:, li] += np.rint(pre_counts[li].astype(np.float64)
                                  @ p.fanout.astype(np.float64)).astype(np.int64)
    v_final = state[-1].v
    return SimResult(pred=readout(counts, v_final, graph.readout), counts=counts,
                     v_final=v_final,
                     input_spikes=input_spikes, spikes=spikes, ops=ops, raster=raster)


def simulate(graph: SpikeGraph, pixels: np.ndarray, *, record: bool = False,
             batch_size: int = 1024) -> SimResult:
    """Run ``pixels`` (uint8 ``[B, input_size]``) through ``graph`` exactly as SPEC.md says.

    Processes ``batch_size`` samples at a time; ``record=True`` also returns the spike rasters
    (memory ``T * B * n`` bytes per stage, so keep B small).
    """
    graph.validate()
    return _simulate_validated(graph, pixels, record=record, batch_size=batch_size)


def _simulate_validated(graph: SpikeGraph, pixels: np.ndarray, *, record: bool = False,
                        batch_size: int = 1024) -> SimResult:
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; must be >= 1")
    px = _check_pixels(graph, pixels)
    direct = graph.encoder.kind == EncoderKind.DIRECT
    prep = [_Prepared(layer, direct and i == 0) for i, layer in enumerate(graph.layers)]
    table = None
    if graph.encoder.kind == EncoderKind.RATE:
        table = rate_table(graph.steps, graph.input_size, int(graph.encoder.seed))
    if px.shape[0] == 0:
        return _simulate_chunk(graph, prep, px, table, record)
    parts = [_simulate_chunk(graph, prep, px[s:s + batch_size], table, record)
             for s in range(0, px.shape[0], batch_size)]
    return parts[0] if len(parts) == 1 else SimResult.concat(parts)


# --------------------------------------------------------------------------------------------
# The reference: one sample, plain Python integers, one neuron at a time, straight from SPEC.md.


def _ref_hash32(k: int, seed: int) -> int:
    m = 0xFFFFFFFF
    x = (k * 0x9E3779B9 + seed) & m
    x ^= x >> 16
    x = (x * 0x7FEB352D) & m
    x ^= x >> 15
    x = (x * 0x846CA68B) & m
    x ^= x >> 16
    return x


def _ref_sat32(x: int) -> int:
    return INT32_MIN if x < INT32_MIN else INT32_MAX if x > INT32_MAX else x


def reference_simulate(graph: SpikeGraph, pixels: np.ndarray, *,
                       record: bool = False) -> SimResult:
    """The slow, obviously-correct simulator for ONE sample (``pixels``: ``[input_size]``).

    Returns a :class:`SimResult` with a batch dimension of 1. Python ints are unbounded and
    ``>>`` on them is floor division by a power of two (an arithmetic shift), as SPEC.md asks.
    """
    graph.validate()
    p = [int(x) for x in np.asarray(pixels).reshape(-1)]
    n, steps, n_layers = graph.input_size, graph.steps, len(graph.layers)
    if len(p) != n:
        raise GraphError(f"pixels must have {n} values, got {len(p)}")
    kind = EncoderKind(graph.encoder.kind)
    seed = int(graph.encoder.seed)
    weights = [layer.weights.astype(np.int64).tolist() for layer in graph.layers]
    theta = [[int(x) for x in layer.threshold_full()] for layer in graph.layers]
    beta = [[int(x) for x in layer.leak_full()] for layer in graph.layers]
    sparse = [Storage(layer.storage) == Storage.SPARSE for layer in graph.layers]
    resets = [ResetMode(layer.reset) for layer in graph.layers]
    ge = [FireRule(layer.fire) == FireRule.GE for layer in graph.layers]
    bias = [[int(x) for x in layer.bias_full()] for layer in graph.layers]
    alpha = [None if layer.syn_leak is None else [int(x) for x in layer.syn_leak_full()]
             for layer in graph.layers]  # CUBA_LIF: the synaptic current's leak

    def fan(li: int, i: int) -> int:
        row = weights[li][i]
        return sum(1 for w in row if w != 0) if sparse[li] else len(row)

    v = [[0] * layer.n_out for layer in graph.layers]
    pend = [[0] * layer.n_out for layer in graph.layers]  # SUBTRACT_DELAYED: theta if fired
    syn = [[0] * layer.n_out for layer in graph.layers]  # CUBA_LIF: synaptic currents
    counts = [0] * graph.n_classes
    spikes = [0] * n_layers
    ops = [0] * n_layers
    input_spikes = 0
    raster = [np.zeros((steps, 1, n), dtype=bool)]
    raster += [np.zeros((steps, 1, layer.n_out), dtype=bool) for layer in graph.layers]

    i0: list[int] = []
    if kind == EncoderKind.DIRECT:
        n_out0 = graph.layers[0].n_out
        i0 = [sum(p[i] * weights[0][i][j] for i in range(n)) + bias[0][j]
              for j in range(n_out0)]
        for j in range(n_out0):
            if not INT32_MIN <= i0[j] <= INT32_MAX:
                raise AssertionError("SPEC.md: I0 always fits int32")
        ops[0] += sum(fan(0, i) for i in range(n) if p[i] != 0)

    for t in range(steps):
        s_in = [0] * n
        for i in range(n):
            if kind == EncoderKind.RATE:
                k = (t * n + i) & 0xFFFFFFFF
                s_in[i] = 1 if (_ref_hash32(k, seed) >> 24) < p[i] else 0
            elif kind == EncoderKind.LATENCY:
                s_in[i] = 1 if p[i] != 0 and ((255 - p[i]) * steps) >> 8 == t else 0
            input_spikes += s_in[i]
            raster[0][t, 0, i] = bool(s_in[i])
        s = s_in
        for li, layer in enumerate(graph.layers):
            n_out = layer.n_out
            if li == 0 and kind == EncoderKind.DIRECT:
                cur = list(i0)
            else:
                cur = list(bias[li])  # the constant current, then the spikes' weights
                for i in range(layer.n_in):
                    if s[i] == 1:
                        for j in range(n_out):
                            cur[j] += weights[li][i][j]
                        ops[li] += fan(li, i)
            out = [0] * n_out
            for j in range(n_out):
                vj = v[li][j]
                cj = cur[j]
                a = alpha[li]
                if a is not None:  # CUBA_LIF: I_syn = sat32(leak_alpha(I_syn) + I)
                    syn[li][j] = _ref_sat32(((syn[li][j] * a[j] + 32768) >> 16) + cj)
                    cj = syn[li][j]
                vj = _ref_sat32(((vj * beta[li][j] + 32768) >> 16) - pend[li][j] + cj)
                pend[li][j] = 0
                if vj >= theta[li][j] if ge[li] else vj > theta[li][j]:
                    out[j] = 1
                    if resets[li] == ResetMode.ZERO:
                        vj = 0
                    elif resets[li] == ResetMode.SUBTRACT:
                        vj -= theta[li][j]
                    elif resets[li] == ResetMode.SUBTRACT_DELAYED:
                        pend[li][j] = theta[li][j]
                v[li][j] = vj
                spikes[li] += out[j]
                raster[li + 1][t, 0, j] = bool(out[j])
            s = out
        for c in range(graph.n_classes):
            counts[c] += s[c]

    v_last = v[-1]
    best = 0
    for c in range(1, graph.n_classes):
        tie_break = v_last[c] > v_last[best] and graph.readout == Readout.COUNT_MEMBRANE
        if counts[c] > counts[best] or (counts[c] == counts[best] and tie_break):
            best = c
    as1 = lambda xs: np.array([xs], dtype=np.int64)  # noqa: E731
    return SimResult(pred=np.array([best], dtype=np.int64), counts=as1(counts),
                     v_final=as1(v_last), input_spikes=np.array([input_spikes], dtype=np.int64),
                     spikes=as1(spikes), ops=as1(ops), raster=raster if record else None)

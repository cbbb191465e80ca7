"""Crossbar simulator: exact equality with the golden model when ideal, exact stuck-at
placement, monotone degradation with variation, analytic energy counts, resource errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgesnn.crossbar.mapping import MappingError, arrays_needed, map_graph
from edgesnn.crossbar.profile import load_profile
from edgesnn.crossbar.sim import (
    STUCK_GMAX,
    STUCK_GMIN,
    Conditions,
    InputSpec,
    layer_stuck,
    simulate,
)
from edgesnn.graph.golden import simulate as golden
from edgesnn.graph.ir import Encoder, EncoderKind, Layer, SpikeGraph
from edgesnn.graph.synth import random_graph, random_pixels


def _spec(g: SpikeGraph) -> InputSpec:
    return InputSpec(EncoderKind(g.encoder.kind), int(g.encoder.seed), g.steps, g.input_size)


def _prof(**kw: object):
    base = {"technology.levels": 256, "array.rows": 16, "array.cols": 8}
    base.update(kw)
    return load_profile("rram-1t1r", **base)


@pytest.mark.parametrize("seed,encoder,reset,neuron,bits,bias", [
    (0, "rate", "subtract", "lif", 8, False),
    (1, "latency", "zero", "if", 8, False),
    (2, "rate", "zero", "lif", 4, False),
    (3, "rate", "subtract", "if", 8, False),
    (4, "rate", "subtract", "lif", 8, True),  # biases: a digital add after the ADC
    (5, "latency", "zero", "if", 4, True),
])
def test_ideal_crossbar_equals_golden(seed: int, encoder: str, reset: str, neuron: str,
                                      bits: int, bias: bool) -> None:
    g = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=5, steps=9,
                     encoder=encoder, reset=reset, neuron=neuron, weight_bits=bits,
                     per_neuron=seed % 2 == 1, bias=bias)
    prof = _prof()
    m = map_graph(g, prof)
    assert all(lm.row_tiles > 1 or lm.col_tiles > 1 for lm in m.layers[:2])  # really tiled
    px = random_pixels(seed + 10, 48, g.input_size)
    want = golden(g, px)
    got = simulate(m, prof, _spec(g), px, Conditions(ideal=True))
    np.testing.assert_array_equal(got.pred, want.pred)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.v_final, want.v_final)
    np.testing.assert_array_equal(got.spikes, want.spikes)
    np.testing.assert_array_equal(got.input_spikes, want.input_spikes)


def test_noiseless_nonideal_path_with_wide_adc_equals_golden() -> None:
    """The full analog path (conductances in µS, ADC at 16 bits over the full range) with
    every noise source at zero still reproduces the golden model exactly."""
    g = random_graph(5, input_size=30, hidden=(20,), n_classes=4, steps=7)
    prof = _prof(**{"adc.bits": 16, "array.wire_resistance_ohm": 0.0,
                    "noise.programming_sigma": 0.0, "noise.read_sigma": 0.0,
                    "noise.variation_sigma": 0.0, "noise.stuck_at_gmin": 0.0,
                    "noise.stuck_at_gmax": 0.0})
    m = map_graph(g, prof)
    px = random_pixels(6, 40, g.input_size)
    got = simulate(m, prof, _spec(g), px, Conditions(), seed=3)
    want = golden(g, px)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.pred, want.pred)


def test_too_few_levels_requantizes_and_is_not_exact() -> None:
    g = random_graph(7, input_size=30, hidden=(20,), n_classes=4, steps=7)
    m = map_graph(g, _prof(**{"technology.levels": 4}))
    assert not m.layers[0].exact and m.layers[0].weight_scale > 1
    assert m.layers[0].max_level <= 3


def test_stuck_map_applied_exactly_where_it_says() -> None:
    g = random_graph(11, input_size=30, hidden=(12,), n_classes=4, steps=8)
    for ly in g.layers:  # |w| <= 127 so that 128 levels are exact and stuck weights fit int8
        ly.weights = np.clip(ly.weights, -127, 127).astype(ly.weights.dtype)
    prof = _prof(**{"technology.levels": 128})
    m = map_graph(g, prof)
    top = prof.levels - 1
    stuck = np.zeros((m.arrays_used, prof.rows, prof.cols), dtype=np.int8)
    rng = np.random.default_rng(0)
    picks = rng.choice(stuck.size, size=60, replace=False)
    stuck.reshape(-1)[picks[:30]] = STUCK_GMIN
    stuck.reshape(-1)[picks[30:]] = STUCK_GMAX
    # Expected weights, computed cell by cell from the map's (array, row, col) coordinates.
    pos = [np.where(ly.weights > 0, ly.weights, 0).astype(np.int64) for ly in g.layers]
    neg = [np.where(ly.weights < 0, -ly.weights, 0).astype(np.int64) for ly in g.layers]
    touched = 0
    for a, r, c in np.argwhere(stuck > 0):
        lm = next(x for x in m.layers if x.first_array <= a < x.first_array + x.n_arrays)
        rt, ct = divmod(int(a) - lm.first_array, lm.col_tiles)
        rows_i = np.nonzero(lm.row_slot == rt * lm.rows + r)[0]
        cols_j = np.nonzero(lm.col_slot == ct * lm.pairs + c // 2)[0]
        if rows_i.size == 0 or cols_j.size == 0:
            continue  # an unused cell: no weight lives there
        i, j = int(rows_i[0]), int(cols_j[0])
        level = 0 if stuck[a, r, c] == STUCK_GMIN else top
        (pos if c % 2 == 0 else neg)[lm.index][i, j] = level
        touched += 1
    assert touched > 5
    layers = [Layer(weights=(p - n).astype(np.int8), threshold=ly.threshold, leak=ly.leak,
                    neuron=ly.neuron, reset=ly.reset, weight_bits=8)
              for p, n, ly in zip(pos, neg, g.layers, strict=True)]
    assert any(np.any(a.weights != b.weights) for a, b in zip(layers, g.layers, strict=True))
    expect_graph = SpikeGraph(input_size=g.input_size, steps=g.steps, layers=layers,
                              encoder=Encoder(g.encoder.kind, g.encoder.seed)).validate()
    px = random_pixels(12, 48, g.input_size)
    got = simulate(m, prof, _spec(g), px, Conditions(ideal=True, stuck_map=stuck))
    want = golden(expect_graph, px)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.v_final, want.v_final)
    np.testing.assert_array_equal(got.spikes, want.spikes)
    # layer_stuck is the same placement seen from the layer side
    lm0 = m.layers[0]
    st0 = layer_stuck(stuck, lm0)
    assert int(np.count_nonzero(st0)) == int(np.count_nonzero(stuck[:lm0.n_arrays]))


def test_accuracy_degrades_monotonically_with_variation() -> None:
    g = random_graph(21, input_size=60, hidden=(32,), n_classes=6, steps=10)
    prof = _prof(**{"noise.stuck_at_gmin": 0.0, "noise.stuck_at_gmax": 0.0,
                    "noise.programming_sigma": 0.0, "noise.read_sigma": 0.0})
    m = map_graph(g, prof)
    px = random_pixels(22, 96, g.input_size)
    ref = golden(g, px).pred
    means = []
    for sigma in (0.0, 0.05, 0.15, 0.4):
        agree = [np.mean(simulate(m, prof, _spec(g), px, Conditions(variation_sigma=sigma),
                                  seed=s).pred == ref) for s in range(4)]
        means.append(float(np.mean(agree)))
    assert means[0] >= 0.95
    assert all(a >= b for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] < means[0] - 0.1, means


def test_energy_counts_equal_analytic_on_hand_built_network() -> None:
    # 3 inputs -> 2 outputs (IF, threshold 1), latency encoding: pixel p spikes once at
    # t = ((255 - p) * T) >> 8.
    w = np.array([[2, -1], [1, 1], [0, 3]], dtype=np.int8)
    layer = Layer(weights=w, threshold=np.array([1], dtype=np.int32),
                  leak=np.array([65536], dtype=np.uint32), neuron=1)
    g = SpikeGraph(input_size=3, steps=4, layers=[layer],
                   encoder=Encoder(EncoderKind.LATENCY, 0)).validate()
    prof = load_profile("rram-1t1r", **{"technology.levels": 8, "array.rows": 2,
                                        "array.cols": 4})
    m = map_graph(g, prof)
    assert (m.layers[0].row_tiles, m.layers[0].col_tiles) == (2, 1)
    px = np.array([[255, 255, 0], [255, 0, 255], [0, 0, 0]], dtype=np.uint8)
    # sample 0: inputs 0,1 spike at t=0 (both in row tile 0); sample 1: input 0 (tile 0)
    # and input 2 (tile 1) at t=0; sample 2: nothing.
    res = simulate(m, prof, _spec(g), px, Conditions(ideal=True))
    np.testing.assert_array_equal(res.input_spikes, [2, 2, 0])
    np.testing.assert_array_equal(res.cell_reads, [2 * 2 * 2, 2 * 2 * 2, 0])
    np.testing.assert_array_equal(res.adc_conversions, [1 * 2, 2 * 2, 0])
    np.testing.assert_array_equal(res.digital_adds, [0, 1 * 2, 0])
    np.testing.assert_array_equal(res.neuron_updates, [4 * 2] * 3)
    v, t = 0.5, 10e-9
    g_of = prof.g_min + np.array([[2, 0, 0, 1], [1, 0, 1, 0], [0, 0, 3, 0]]) * prof.delta_g
    e0 = v * v * t * (g_of[0].sum() + g_of[1].sum()) * 1e-6 * 1e12
    e1 = v * v * t * (g_of[0].sum() + g_of[2].sum()) * 1e-6 * 1e12
    np.testing.assert_allclose(res.cell_energy_pj, [e0, e1, 0.0], rtol=1e-9)
    from edgesnn.crossbar.energy import breakdown

    b = breakdown(res, prof)
    want = (e0 + e1) / 3 + (6 / 3) * 1.56 + 8 * 3.3 + (2 / 3) * 0.1
    assert b["energy_per_inference_pj"] == pytest.approx(want, rel=1e-9)


def test_model_too_large_reports_arrays_needed() -> None:
    g = random_graph(1, input_size=40, hidden=(24,), n_classes=5, steps=4)
    prof = _prof(**{"array.arrays": 3})
    need = arrays_needed(g, prof)
    assert need > 3
    with pytest.raises(MappingError, match=f"needs {need} arrays.*{need - 3} more"):
        map_graph(g, prof)


def test_direct_encoding_rejected() -> None:
    g = random_graph(2, input_size=20, hidden=(8,), n_classes=3, steps=4, encoder="direct")
    with pytest.raises(MappingError, match="direct encoding"):
        map_graph(g, _prof())


def test_drift_degrades_and_global_compensation_recovers() -> None:
    g = random_graph(1, input_size=100, hidden=(40,), n_classes=6, steps=8, weight_bits=4)
    px = random_pixels(2, 96, g.input_size)
    ref = golden(g, px).pred
    quiet = {"technology.levels": 16, "noise.programming_sigma": 0.0, "noise.read_sigma": 0.0,
             "array.wire_resistance_ohm": 0.0, "adc.bits": 16}
    agree = {}
    for comp in (True, False):
        prof = load_profile("pcm", **quiet, **{"noise.drift_compensation": comp})
        m = map_graph(g, prof)
        for t in (20.0, 3.15e7):
            agree[comp, t] = float(np.mean([
                np.mean(simulate(m, prof, _spec(g), px, Conditions(time_s=t), seed=s).pred
                        == ref) for s in range(3)]))
    assert agree[True, 20.0] == 1.0 and agree[False, 20.0] == 1.0  # no drift at t0
    assert agree[False, 3.15e7] < 0.9
    assert agree[True, 3.15e7] > agree[False, 3.15e7] + 0.1

"""Fault-aware deployment: optimal assignment, compensation, never worse on the subset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgesnn.crossbar.mapping import map_graph
from edgesnn.crossbar.profile import load_profile
from edgesnn.crossbar.remap import (
    linear_assignment,
    naive_error,
    program_with_compensation,
    remap,
    residual,
)
from edgesnn.crossbar.sim import (
    STUCK_GMAX,
    STUCK_GMIN,
    STUCK_OK,
    Conditions,
    InputSpec,
    sample_stuck_map,
    simulate,
)
from edgesnn.graph.golden import simulate as golden
from edgesnn.graph.ir import EncoderKind
from edgesnn.graph.synth import random_graph, random_pixels


def test_linear_assignment_is_optimal() -> None:
    rng = np.random.default_rng(0)
    for n, m in ((3, 3), (4, 6), (5, 5), (2, 7)):
        for _ in range(10):
            c = rng.integers(0, 20, (n, m)).astype(float)
            a = linear_assignment(c)
            assert len(set(a.tolist())) == n
            best = min(sum(c[i, p[i]] for i in range(n))
                       for p in itertools.permutations(range(m), n))
            assert c[np.arange(n), a].sum() == pytest.approx(best)


def test_compensation_reaches_every_achievable_weight() -> None:
    top = 15
    q = np.arange(-top, top + 1)
    for sa, sb in itertools.product((STUCK_OK, STUCK_GMIN, STUCK_GMAX), repeat=2):
        a, b = np.full_like(q, sa), np.full_like(q, sb)
        p, n = program_with_compensation(q, a, b, top)
        assert p.min() >= 0 and p.max() <= top and n.min() >= 0 and n.max() <= top
        p = np.where(a == STUCK_GMIN, 0, np.where(a == STUCK_GMAX, top, p))
        n = np.where(b == STUCK_GMIN, 0, np.where(b == STUCK_GMAX, top, n))
        err = np.abs(p - n - q)
        np.testing.assert_array_equal(err, residual(q, a, b, top))
        assert np.all(err <= naive_error(q, a, b, top))
    # G+ stuck at G_max and w >= 0 is repaired exactly by programming G- = top - w
    q = np.array([0, 3, 15])
    p, n = program_with_compensation(q, np.full(3, STUCK_GMAX), np.full(3, STUCK_OK), top)
    np.testing.assert_array_equal(top - n, q)


@pytest.mark.parametrize("rate", [0.02, 0.08])
def test_remap_reduces_error_and_never_worsens_accuracy(rate: float) -> None:
    g = random_graph(4, input_size=100, hidden=(40,), n_classes=6, steps=8)
    prof = load_profile("rram-1t1r", **{"technology.levels": 128, "array.rows": 64,
                                        "array.cols": 64})
    m = map_graph(g, prof)
    spec = InputSpec(EncoderKind(g.encoder.kind), int(g.encoder.seed), g.steps, g.input_size)
    px = random_pixels(9, 96, g.input_size)
    ref = golden(g, px).pred
    stuck = sample_stuck_map(m.arrays_used, prof.rows, prof.cols, rate * 0.9, rate * 0.1,
                             np.random.default_rng(3))
    rm, reports = remap(m, stuck, prof.levels)
    for rep in reports:
        assert rep["weight_error_after"] <= rep["weight_error_before"]
        assert rep["assignment_cost_final"] <= rep["assignment_cost_identity"]
    assert sum(r["weight_error_after"] for r in reports) < \
        0.5 * sum(r["weight_error_before"] for r in reports)
    # the same logical weights are still all placed, on distinct cells
    for lm in rm.layers:
        assert len(set(lm.row_slot.tolist())) == lm.n_in
        assert len(set(lm.col_slot.tolist())) == lm.n_out
        assert np.all(lm.row_slot // lm.rows == np.arange(lm.n_in) // lm.rows)
    for cond in (Conditions(ideal=True, stuck_map=stuck),
                 Conditions(stuck_map=stuck, variation_sigma=0.02)):
        before = np.mean(simulate(m, prof, spec, px, cond, seed=1).pred == ref)
        after = np.mean(simulate(rm, prof, spec, px, cond, seed=1).pred == ref)
        assert after >= before, (before, after)
    ideal_after = np.mean(simulate(rm, prof, spec, px, Conditions(ideal=True, stuck_map=stuck))
                          .pred == ref)
    assert ideal_after >= 0.9


def test_no_faults_is_identity() -> None:
    g = random_graph(8, input_size=40, hidden=(16,), n_classes=4, steps=5)
    prof = load_profile("rram-1t1r", **{"array.rows": 16, "array.cols": 16})
    m = map_graph(g, prof)
    stuck = np.zeros((m.arrays_used, 16, 16), dtype=np.int8)
    rm, reports = remap(m, stuck, prof.levels)
    for a, b in zip(m.layers, rm.layers, strict=True):
        np.testing.assert_array_equal(a.cells, b.cells)
        np.testing.assert_array_equal(a.row_slot, b.row_slot)
    assert all(r["weight_error_before"] == 0 == r["weight_error_after"] for r in reports)


def test_remap_moves_a_dead_column_onto_a_spare_pair() -> None:
    from edgesnn.graph.ir import Encoder, Layer, SpikeGraph

    w = np.full((8, 3), 5, dtype=np.int8)
    g = SpikeGraph(input_size=8, steps=3, encoder=Encoder(EncoderKind.RATE, 1),
                   layers=[Layer(weights=w, threshold=np.array([4], dtype=np.int32),
                                 leak=np.array([65536], dtype=np.uint32), neuron=1)]).validate()
    prof = load_profile("rram-1t1r", **{"array.rows": 8, "array.cols": 8,
                                        "array.spare_cols": 2})
    m = map_graph(g, prof)
    lm = m.layers[0]
    assert lm.usable_pairs == 3 and 3 not in lm.col_slot.tolist()
    stuck = np.zeros((1, 8, 8), dtype=np.int8)
    stuck[0, :, 0] = STUCK_GMIN  # the G+ column of pair 0 is dead
    rm, (rep,) = remap(m, stuck, prof.levels)
    assert rep["weight_error_before"] == 8 * 5 and rep["weight_error_after"] == 0
    assert 3 in rm.layers[0].col_slot.tolist() and 0 not in rm.layers[0].col_slot.tolist()

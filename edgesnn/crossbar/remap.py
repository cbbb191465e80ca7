"""Fault-aware deployment: place and program a mapping around known stuck-at cells.

Given the stuck-at map of the real arrays, three things are done per layer:

1. **Row permutation** inside each row tile (logical inputs onto physical rows, including the
   free rows of a partly filled tile), by an optimal assignment (Hungarian algorithm);
2. **Column permutation** of logical outputs onto any physical column pair of the layer's
   arrays, spare and unused pairs included, by the same assignment;
3. **Differential compensation** (re-quantization of the healthy partner): when one device of
   a pair is stuck at level ``s``, the other is programmed so that the pair's difference is as
   close as possible to the target weight (e.g. ``G+`` stuck at ``G_max`` and ``w >= 0``:
   ``G- = L - w`` makes the pair exact).

The assignment cost of putting weight ``q`` on a pair with states ``(a, b)`` is the residual
``|q - clip(q, lo, hi)|`` of the achievable range ``[lo, hi]`` after compensation, summed over
the row (or column), weighted by each input's activity. Rows and columns alternate a few
times; each step is optimal given the other, so the residual never increases.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from edgesnn.crossbar.mapping import CrossbarMapping, LayerMapping
from edgesnn.crossbar.sim import STUCK_GMAX, STUCK_GMIN, STUCK_OK, layer_stuck

log = logging.getLogger(__name__)


def linear_assignment(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment of each row to a distinct column (``n_rows <= n_cols``).

    Shortest augmenting path (Hungarian / Jonker-Volgenant, O(n^2 m)), vectorised over the
    columns. Returns ``col[i]`` for every row ``i``.
    """
    c = np.asarray(cost, dtype=np.float64)
    n, m = c.shape
    if n > m:
        raise ValueError(f"assignment needs rows <= cols, got {n}x{m}")
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = c[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    out = np.empty(n, dtype=np.int64)
    js = np.nonzero(p[1:])[0]
    out[p[1:][js] - 1] = js
    return out


def _bounds(a: np.ndarray, b: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Achievable signed level range of a pair whose devices are in states ``a``, ``b``."""
    def lvl(s: np.ndarray, free_val: int) -> np.ndarray:
        return np.where(s == STUCK_GMIN, 0, np.where(s == STUCK_GMAX, top, free_val))

    lo = lvl(a, 0) - lvl(b, top)
    hi = lvl(a, top) - lvl(b, 0)
    return lo, hi


def residual(q: np.ndarray, a: np.ndarray, b: np.ndarray, top: int) -> np.ndarray:
    lo, hi = _bounds(a, b, top)
    return np.maximum(lo - q, 0) + np.maximum(q - hi, 0)


def naive_error(q: np.ndarray, a: np.ndarray, b: np.ndarray, top: int) -> np.ndarray:
    """|error| of a weight programmed without compensation on a pair in states (a, b)."""
    p = np.where(q > 0, q, 0)
    n = np.where(q < 0, -q, 0)
    p = np.where(a == STUCK_GMIN, 0, np.where(a == STUCK_GMAX, top, p))
    n = np.where(b == STUCK_GMIN, 0, np.where(b == STUCK_GMAX, top, n))
    return np.abs(p - n - q)


_COMBOS = [(a, b) for a in (STUCK_OK, STUCK_GMIN, STUCK_GMAX)
           for b in (STUCK_OK, STUCK_GMIN, STUCK_GMAX) if (a, b) != (STUCK_OK, STUCK_OK)]


def _pair_states(st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return st[:, 0::2], st[:, 1::2]


def _row_cost(q: np.ndarray, act: np.ndarray, sa: np.ndarray, sb: np.ndarray,
              top: int) -> np.ndarray:
    """cost[i, r]: logical rows ``q [n, n_out]`` on physical rows with pair states
    ``sa, sb [rows, n_out]`` (already gathered at the column placement)."""
    cost = np.zeros((q.shape[0], sa.shape[0]))
    for a, b in _COMBOS:
        ind = ((sa == a) & (sb == b)).astype(np.float64)  # [rows, n_out]
        if not ind.any():
            continue
        f = residual(q, np.full_like(q, a), np.full_like(q, b), top) * act[:, None]
        cost += f @ ind.T
    return cost


def _col_cost(q: np.ndarray, act: np.ndarray, sa: np.ndarray, sb: np.ndarray,
              top: int) -> np.ndarray:
    """cost[j, slot]: logical columns on physical pairs, ``sa, sb [n_in, slots]`` gathered at
    the row placement."""
    cost = np.zeros((q.shape[1], sa.shape[1]))
    for a, b in _COMBOS:
        ind = ((sa == a) & (sb == b)).astype(np.float64)  # [n_in, slots]
        if not ind.any():
            continue
        f = residual(q, np.full_like(q, a), np.full_like(q, b), top) * act[:, None]
        cost += f.T @ ind
    return cost


def program_with_compensation(q: np.ndarray, a: np.ndarray, b: np.ndarray,
                              top: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels (G+, G-) that bring each pair closest to ``q`` given its stuck devices."""
    p = np.where(q > 0, q, 0)
    n = np.where(q < 0, -q, 0)
    sp = np.where(a == STUCK_GMIN, 0, top)
    sn = np.where(b == STUCK_GMIN, 0, top)
    a_stuck, b_stuck = a != STUCK_OK, b != STUCK_OK
    only_a = a_stuck & ~b_stuck
    only_b = b_stuck & ~a_stuck
    n = np.where(only_a, np.clip(sp - q, 0, top), n)
    p = np.where(only_a, sp, p)
    p = np.where(only_b, np.clip(q + sn, 0, top), p)
    n = np.where(only_b, sn, n)
    p = np.where(a_stuck & b_stuck, sp, p)
    n = np.where(a_stuck & b_stuck, sn, n)
    return p, n


def _effective(lm: LayerMapping, st: np.ndarray, top: int) -> np.ndarray:
    """Signed levels the arrays actually hold, read through the placement ``[n_in, n_out]``."""
    cells = lm.cells.astype(np.int64).copy()
    cells[st == STUCK_GMIN] = 0
    cells[st == STUCK_GMAX] = top
    d = cells[:, 0::2] - cells[:, 1::2]
    return d[np.ix_(lm.row_slot, lm.col_slot)]


def remap_layer(lm: LayerMapping, st: np.ndarray, top: int, cols_per_adc: int,
                act: np.ndarray | None = None,
                iterations: int = 3, permute: bool = True) -> tuple[LayerMapping, dict]:
    q = lm.logical_levels()
    act = np.ones(lm.n_in) if act is None else np.asarray(act, dtype=np.float64)
    sa_all, sb_all = _pair_states(st)  # [phys_rows, phys_pairs]
    row_slot, col_slot = lm.row_slot.copy(), lm.col_slot.copy()

    def total(rs: np.ndarray, cs: np.ndarray) -> float:
        return float((residual(q, sa_all[np.ix_(rs, cs)], sb_all[np.ix_(rs, cs)], top)
                      * act[:, None]).sum())

    best = total(row_slot, col_slot)
    start = best
    if permute and np.any(st):
        for _ in range(iterations):
            new_rows = row_slot.copy()
            for rt in range(lm.row_tiles):
                idx = np.nonzero(row_slot // lm.rows == rt)[0]
                if idx.size == 0:
                    continue
                phys = np.arange(rt * lm.rows, (rt + 1) * lm.rows)
                sa = sa_all[np.ix_(phys, col_slot)]
                sb = sb_all[np.ix_(phys, col_slot)]
                cost = _row_cost(q[idx], act[idx], sa, sb, top)
                new_rows[idx] = phys[linear_assignment(cost)]
            cost = _col_cost(q, act, sa_all[new_rows], sb_all[new_rows], top)
            new_cols = linear_assignment(cost)
            val = total(new_rows, new_cols)
            if val < best - 1e-9:
                best, row_slot, col_slot = val, new_rows, new_cols
            else:
                break
    # Program the (possibly moved) weights with differential compensation.
    a = sa_all[np.ix_(row_slot, col_slot)]
    b = sb_all[np.ix_(row_slot, col_slot)]
    p, n = program_with_compensation(q, a, b, top)
    cells = np.zeros_like(lm.cells)
    cells[row_slot[:, None], 2 * col_slot[None, :]] = p
    cells[row_slot[:, None], 2 * col_slot[None, :] + 1] = n
    # ADC ranges travel with their logical columns (rows stay inside their row tile).
    old_group = (lm.col_slot % lm.pairs) // cols_per_adc
    old_ct = lm.col_slot // lm.pairs
    carried = lm.adc_range[:, old_ct, old_group]  # [RT, n_out]
    new_range = np.ones_like(lm.adc_range)
    new_ct = col_slot // lm.pairs
    new_group = (col_slot % lm.pairs) // cols_per_adc
    for j in range(lm.n_out):
        cur = new_range[:, new_ct[j], new_group[j]]
        new_range[:, new_ct[j], new_group[j]] = np.maximum(cur, carried[:, j])
    out = dataclasses.replace(lm, cells=cells, row_slot=row_slot, col_slot=col_slot,
                              adc_range=new_range)
    before = naive_error(q, sa_all[np.ix_(lm.row_slot, lm.col_slot)],
                         sb_all[np.ix_(lm.row_slot, lm.col_slot)], top)
    after = np.abs(_effective(out, st, top) - q)
    report = {"layer": lm.index,
              "faulty_cells": int(np.count_nonzero(st)),
              "weight_error_before": float(before.sum() * lm.weight_scale),
              "weight_error_after": float(after.sum() * lm.weight_scale),
              "weights_wrong_before": int(np.count_nonzero(before)),
              "weights_wrong_after": int(np.count_nonzero(after)),
              "assignment_cost_identity": start, "assignment_cost_final": best}
    return out, report


def remap(mapping: CrossbarMapping, stuck: np.ndarray, levels: int, *,
          activity: list[np.ndarray] | None = None, permute: bool = True,
          iterations: int = 3) -> tuple[CrossbarMapping, list[dict[str, Any]]]:
    """A new mapping placed and programmed around ``stuck`` (``[arrays, rows, cols]``)."""
    top = levels - 1
    layers, reports = [], []
    for k, lm in enumerate(mapping.layers):
        st = layer_stuck(stuck, lm)
        new, rep = remap_layer(lm, st, top, mapping.cols_per_adc,
                               None if activity is None else activity[k],
                               iterations=iterations, permute=permute)
        layers.append(new)
        reports.append(rep)
        log.info("remap layer %d: weight error %.0f -> %.0f", k, rep["weight_error_before"],
                 rep["weight_error_after"])
    return dataclasses.replace(mapping, layers=layers), reports

"""Map an integer spike graph onto crossbar arrays (numpy only).

Conventions (also in ``exporters/crossbar/MAPPING.md``):

* **Differential pairs.** Logical output column ``j`` of a layer occupies one physical column
  *pair* ``p`` of an array: ``G+`` on physical column ``2p`` and ``G-`` on ``2p + 1``. A weight
  ``w`` is stored as levels ``(w+, w-) = (q, 0)`` for ``w > 0`` and ``(0, q)`` for ``w < 0``
  with ``q = round(|w| / weight_scale)``; unused cells stay at level 0 (``G_min``).
  Conductance of level ``k``: ``G_min + k * (G_max - G_min) / (levels - 1)`` µS.
* **Tiling.** A layer ``[n_in, n_out]`` is split into ``row_tiles x col_tiles`` arrays
  (``ceil(n_in / rows)`` by ``ceil(n_out / usable_pairs)``). Every array digitises its own
  partial column currents (ADC per column group of ``cols_per_adc`` pairs); the digital
  periphery adds the row tiles' partial sums, multiplies by ``weight_scale`` and feeds the
  integer LIF neurons of SPEC.md.
* **Placement.** ``row_slot[i]`` is the physical row (``rt * rows + r``) that input ``i``
  drives in every array of its row tile; ``col_slot[j]`` the physical pair (``ct * pairs +
  p``) that holds output ``j``. The default is the identity; fault-aware remapping permutes
  them (see :mod:`edgesnn.crossbar.remap`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from edgesnn.crossbar.profile import CrossbarProfile
from edgesnn.graph.ir import EncoderKind, FireRule, ResetMode, SpikeGraph
from edgesnn.graph.neurons import model as neuron_model

log = logging.getLogger(__name__)


class MappingError(ValueError):
    """A model the crossbar resources cannot hold or express; says what and by how much."""


@dataclass
class LayerMapping:
    """One layer on its arrays. ``cells`` is every physical cell's target level."""

    index: int
    n_in: int
    n_out: int
    rows: int  # physical rows per array
    cols: int  # physical columns per array
    row_tiles: int
    col_tiles: int
    usable_pairs: int  # pairs per array used by the default placement (cols - spares) / 2
    first_array: int
    weight_scale: float  # integer weight units per conductance level
    max_level: int
    cells: np.ndarray  # int16 [row_tiles*rows, col_tiles*cols]
    row_slot: np.ndarray  # int64 [n_in]
    col_slot: np.ndarray  # int64 [n_out]
    adc_range: np.ndarray  # float64 [row_tiles, col_tiles, adc_groups], level units
    threshold: np.ndarray  # int64 [n_out]
    leak: np.ndarray  # int64 [n_out] Q0.16
    zero_reset: bool
    exact: bool  # every weight is an exact multiple of weight_scale levels (scale == 1)
    # int64 [n_out] or None: the layer's bias, realised as a digital add in the neuron
    # periphery after the ADC (no bias row: the conductances hold only the weights)
    bias: np.ndarray | None = None

    @property
    def pairs(self) -> int:
        return self.cols // 2

    @property
    def n_arrays(self) -> int:
        return self.row_tiles * self.col_tiles

    @property
    def phys_rows(self) -> int:
        return self.row_tiles * self.rows

    @property
    def phys_pairs(self) -> int:
        return self.col_tiles * self.pairs

    def levels_pos(self) -> np.ndarray:
        """Levels of the G+ devices ``[phys_rows, phys_pairs]``."""
        return self.cells[:, 0::2]

    def levels_neg(self) -> np.ndarray:
        return self.cells[:, 1::2]

    def logical_levels(self) -> np.ndarray:
        """Signed level matrix ``[n_in, n_out]`` read back through the placement."""
        d = self.levels_pos().astype(np.int64) - self.levels_neg().astype(np.int64)
        return d[np.ix_(self.row_slot, self.col_slot)]

    def array_index(self, rt: int, ct: int) -> int:
        return self.first_array + rt * self.col_tiles + ct


@dataclass
class CrossbarMapping:
    layers: list[LayerMapping]
    arrays_available: int
    adc_bits: int
    cols_per_adc: int
    notes: list[str] = field(default_factory=list)

    @property
    def arrays_used(self) -> int:
        return sum(lm.n_arrays for lm in self.layers)


def tiles_for(n_in: int, n_out: int, profile: CrossbarProfile) -> tuple[int, int]:
    return math.ceil(n_in / profile.rows), math.ceil(n_out / profile.pairs_per_array)


def arrays_needed(graph: SpikeGraph, profile: CrossbarProfile) -> int:
    return sum(math.prod(tiles_for(ly.n_in, ly.n_out, profile)) for ly in graph.layers)


def quantize_layer(weights: np.ndarray, levels: int) -> tuple[np.ndarray, float, bool]:
    """Signed levels ``[n_in, n_out]``, ``weight_scale`` and whether the mapping is exact."""
    w = weights.astype(np.int64)
    max_abs = max(1, int(np.abs(w).max()) if w.size else 1)
    top = levels - 1
    if max_abs <= top:
        return w, 1.0, True
    scale = max_abs / top
    q = np.rint(np.abs(w) / scale).astype(np.int64)
    return np.sign(w) * q, float(scale), False


def full_scale_range(lm: LayerMapping, cols_per_adc: int) -> np.ndarray:
    """Worst-case |partial sum| per ADC group (all rows of the tile spiking), level units."""
    pos = lm.levels_pos().astype(np.int64).reshape(lm.row_tiles, lm.rows, lm.col_tiles,
                                                   lm.pairs).sum(axis=1)
    neg = lm.levels_neg().astype(np.int64).reshape(lm.row_tiles, lm.rows, lm.col_tiles,
                                                   lm.pairs).sum(axis=1)
    worst = np.maximum(pos, neg)  # [RT, CT, P]
    return group_max(worst, cols_per_adc)


def group_max(per_pair: np.ndarray, cols_per_adc: int) -> np.ndarray:
    """Max over each ADC group of ``cols_per_adc`` consecutive pairs: ``[RT, CT, groups]``."""
    rt, ct, p = per_pair.shape
    groups = math.ceil(p / cols_per_adc)
    padded = np.zeros((rt, ct, groups * cols_per_adc), dtype=np.float64)
    padded[:, :, :p] = per_pair
    out = padded.reshape(rt, ct, groups, cols_per_adc).max(axis=3)
    return np.maximum(out, 1.0)


def place_cells(signed: np.ndarray, row_slot: np.ndarray, col_slot: np.ndarray,
                phys_rows: int, phys_pairs: int) -> np.ndarray:
    """Physical level matrix ``[phys_rows, 2 * phys_pairs]`` for a signed level matrix."""
    cells = np.zeros((phys_rows, 2 * phys_pairs), dtype=np.int16)
    pos = np.where(signed > 0, signed, 0)
    neg = np.where(signed < 0, -signed, 0)
    r = row_slot[:, None]
    cells[r, 2 * col_slot[None, :]] = pos
    cells[r, 2 * col_slot[None, :] + 1] = neg
    return cells


def map_graph(graph: SpikeGraph, profile: CrossbarProfile) -> CrossbarMapping:
    """Tile, quantize and place every layer (ADC ranges start at full scale)."""
    graph.validate()
    if EncoderKind(graph.encoder.kind) == EncoderKind.DIRECT:
        raise MappingError("direct encoding drives layer 0 with multi-bit pixel currents; the "
                           "crossbar target has 1-bit (spike) row drivers; accepted encoders: "
                           "rate, latency")
    for i, ly in enumerate(graph.layers):
        if len(neuron_model(ly.neuron).states) > 1:  # the periphery holds one membrane/column
            raise MappingError(f"layer {i}: a {ly.neuron.name} neuron has states "
                               f"{', '.join(neuron_model(ly.neuron).states)}; the crossbar's "
                               "neuron periphery holds one membrane per column (LIF, IF)")
        if ly.reset not in (ResetMode.SUBTRACT, ResetMode.ZERO) or ly.fire != FireRule.GT:
            raise MappingError(f"layer {i}: reset {ly.reset.name.lower()} with fire rule "
                               f"{ly.fire.name.lower()} is not built into the crossbar's neuron "
                               "periphery; accepted: reset subtract or zero, fire gt (v > theta)")
    need = arrays_needed(graph, profile)
    have = int(profile["array.arrays"])
    if need > have:
        detail = ", ".join(f"layer {i}: {math.prod(tiles_for(ly.n_in, ly.n_out, profile))}"
                           for i, ly in enumerate(graph.layers))
        raise MappingError(f"model needs {need} arrays of {profile.rows}x{profile.cols} "
                           f"({detail}) but profile {profile.name} has {have}; "
                           f"{need - have} more arrays needed")
    cols_per_adc = int(profile["adc.cols_per_adc"])
    layers: list[LayerMapping] = []
    notes: list[str] = []
    first = 0
    for i, ly in enumerate(graph.layers):
        rt, ct = tiles_for(ly.n_in, ly.n_out, profile)
        signed, scale, exact = quantize_layer(ly.weights, profile.levels)
        if not exact:
            notes.append(f"layer {i}: max |w| exceeds levels-1={profile.levels - 1}; weights "
                         f"re-quantized with {scale:.4g} integer units per level")
            log.warning(notes[-1])
        usable = profile.pairs_per_array
        pairs = profile.cols // 2
        row_slot = np.arange(ly.n_in, dtype=np.int64)
        j = np.arange(ly.n_out, dtype=np.int64)
        col_slot = (j // usable) * pairs + (j % usable)
        cells = place_cells(signed, row_slot, col_slot, rt * profile.rows, ct * pairs)
        lm = LayerMapping(
            index=i, n_in=ly.n_in, n_out=ly.n_out, rows=profile.rows, cols=profile.cols,
            row_tiles=rt, col_tiles=ct, usable_pairs=usable, first_array=first,
            weight_scale=scale, max_level=int(np.abs(signed).max()) if signed.size else 0,
            cells=cells, row_slot=row_slot, col_slot=col_slot,
            adc_range=np.zeros((rt, ct, 1)), threshold=ly.threshold_full().astype(np.int64),
            leak=ly.leak_full().astype(np.int64), zero_reset=int(ly.reset) == 1, exact=exact,
            bias=None if ly.bias is None else ly.bias.astype(np.int64))
        lm.adc_range = full_scale_range(lm, cols_per_adc)
        layers.append(lm)
        first += rt * ct
    return CrossbarMapping(layers=layers, arrays_available=have,
                           adc_bits=int(profile["adc.bits"]), cols_per_adc=cols_per_adc,
                           notes=notes)

"""The integer spike-graph IR: what a deployed model is, independent of its file format.

Semantics are defined in ``exporters/spikegraph/SPEC.md``; the golden simulator
(:mod:`edgesnn.graph.golden`), the C runtime and the QAT forward pass implement it.
numpy only: this module imports no torch and no serial code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from edgesnn.graph.ann import AnnGraph
from edgesnn.graph.ann import encode as ann_encode
from edgesnn.graph.neurons import (  # the neuron enums live with the neuron models
    ALL_PARAMS,
    INT32_MAX,
    INT32_MIN,
    Q16_ONE,
    FireRule,
    NeuronKind,
    ResetMode,
    state_words,
)
from edgesnn.graph.neurons import model as neuron_model

__all__ = ["BIAS_MAX", "INT32_MAX", "INT32_MIN", "Q16_ONE", "Encoder", "EncoderKind",
           "ExportError", "FireRule", "GraphError", "Layer", "NeuronKind", "Readout",
           "ResetMode", "SpikeGraph", "Storage"]

#: |bias| limit: a bias plus a layer's largest current (< 2**23) stays below 2**24, and the
#: direct encoder's I0 + bias stays inside int32 (SPEC.md 3.2)
BIAS_MAX = (1 << 23) - 1


class GraphError(ValueError):
    """A spike graph that violates SPEC.md; the message names the layer and field."""


class ExportError(ValueError):
    """A model that the spike graph, a target or a device cannot express or hold; names what
    and why. Defined with the IR so that compression (which builds the IR) raises it without
    importing :mod:`edgesnn.export`, which re-exports it."""


class EncoderKind(IntEnum):
    RATE = 0
    LATENCY = 1
    DIRECT = 2


class Readout(IntEnum):
    """How the prediction is read from the last layer (SPEC.md 3.3)."""

    COUNT_MEMBRANE = 0  # most spikes, then larger final membrane, then lowest index
    COUNT = 1  # most spikes, then lowest index (the peers' argmax of the spike counts)


class Storage(IntEnum):
    DENSE = 0
    SPARSE = 1


@dataclass
class Encoder:
    kind: EncoderKind = EncoderKind.RATE
    seed: int = 0x1234ABCD  # uint32, used by the rate encoder's counter hash

    def validate(self) -> None:
        if not isinstance(self.kind, EncoderKind):
            self.kind = EncoderKind(self.kind)
        if not 0 <= int(self.seed) <= 0xFFFFFFFF:
            raise GraphError(f"encoder.seed={self.seed} is not a uint32")


def qmax_for(bits: int) -> int:
    """Largest magnitude of a symmetric ``bits``-bit weight (127 for int8, 7 for int4); the
    stored range is ``[-qmax - 1, qmax]``."""
    if bits not in (4, 8):
        raise ValueError(f"weight_bits={bits}; accepted: 8, 4")
    return (1 << (bits - 1)) - 1


def _same_or_none(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None) == (b is None) and (a is None or np.array_equal(a, b))


@dataclass
class Layer:
    """One fully connected spiking layer.

    ``weights`` is the logical dense int matrix of shape ``[n_in, n_out]`` (row = presynaptic
    neuron, i.e. its fan-out), values within the signed range of ``weight_bits``. ``storage``
    only says how it is laid out in ``.esg`` and therefore how synaptic ops are counted:
    dense rows count ``n_out`` ops per input spike, sparse rows count their stored entries
    (the nonzero weights).
    """

    weights: np.ndarray
    threshold: np.ndarray  # int32, shape [1] or [n_out], each >= 0
    leak: np.ndarray  # uint32 Q0.16 multiplier, shape [1] or [n_out], each in [0, 65536]
    neuron: NeuronKind = NeuronKind.LIF
    reset: ResetMode = ResetMode.SUBTRACT
    weight_bits: int = 8
    storage: Storage = Storage.DENSE
    name: str = ""
    bias: np.ndarray | None = None  # int32 [n_out], |b| <= BIAS_MAX, added every step; or None
    fire: FireRule = FireRule.GT
    #: CUBA_LIF only: uint32 Q0.16 synaptic-current leak, shape [1] or [n_out]; else None
    syn_leak: np.ndarray | None = None

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[1])

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.weights))

    def threshold_full(self) -> np.ndarray:
        return np.broadcast_to(self.threshold.astype(np.int64), (self.n_out,))

    def leak_full(self) -> np.ndarray:
        return np.broadcast_to(self.leak.astype(np.int64), (self.n_out,))

    def syn_leak_full(self) -> np.ndarray | None:
        """int64 ``[n_out]`` synaptic leak of a CUBA_LIF layer, else None."""
        if self.syn_leak is None:
            return None
        return np.broadcast_to(self.syn_leak.astype(np.int64), (self.n_out,))

    def bias_full(self) -> np.ndarray:
        """int64 ``[n_out]``: the bias, zeros for a layer without one."""
        if self.bias is None:
            return np.zeros(self.n_out, dtype=np.int64)
        return self.bias.astype(np.int64)

    def __eq__(self, other: object) -> bool:
        """Value equality (array contents, not dtypes); dataclass ``==`` fails on arrays."""
        if not isinstance(other, Layer):
            return NotImplemented
        return (np.array_equal(self.weights, other.weights)
                and np.array_equal(self.threshold, other.threshold)
                and np.array_equal(self.leak, other.leak)
                and int(self.neuron) == int(other.neuron) and int(self.reset) == int(other.reset)
                and int(self.fire) == int(other.fire)
                and self.weight_bits == other.weight_bits
                and int(self.storage) == int(other.storage) and self.name == other.name
                and (self.bias is None) == (other.bias is None)
                and (self.bias is None or np.array_equal(self.bias, other.bias))
                and all(_same_or_none(getattr(self, p.name), getattr(other, p.name))
                        for p in ALL_PARAMS if p.name not in ("threshold", "leak")))

    def validate(self, index: int) -> None:
        where = f"layer {index}" + (f" ({self.name})" if self.name else "")
        self.neuron = NeuronKind(self.neuron)
        self.reset = ResetMode(self.reset)
        self.fire = FireRule(self.fire)
        self.storage = Storage(self.storage)
        w = self.weights
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise GraphError(f"{where}: weights must be a non-empty 2-D [n_in, n_out] array, "
                             f"got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.integer):
            raise GraphError(f"{where}: weights must be integers, got dtype {w.dtype}")
        if self.weight_bits not in (4, 8):
            raise GraphError(f"{where}: weight_bits={self.weight_bits}; accepted: 8, 4")
        hi = qmax_for(self.weight_bits)
        lo = -hi - 1
        if w.size and (int(w.min()) < lo or int(w.max()) > hi):
            raise GraphError(f"{where}: weights outside int{self.weight_bits} range [{lo}, {hi}] "
                             f"(min {int(w.min())}, max {int(w.max())})")
        if self.n_in > 65535 or self.n_out > 65535:
            raise GraphError(f"{where}: {self.n_in}x{self.n_out} exceeds 65535 neurons per side")
        nm = neuron_model(self.neuron)
        for fname in {p.name for p in ALL_PARAMS} - {p.name for p in nm.params}:
            if getattr(self, fname) is not None:
                raise GraphError(f"{where}: {fname} is set but a {nm.kind.name} neuron has no "
                                 f"such parameter")
        for param in nm.params:
            fname, arr, amin, amax = param.name, getattr(self, param.name), param.lo, param.hi
            if arr is None:
                raise GraphError(f"{where}: a {nm.kind.name} neuron needs {fname}")
            if arr.ndim != 1 or arr.shape[0] not in (1, self.n_out):
                raise GraphError(f"{where}: {fname} must have shape [1] or [{self.n_out}], "
                                 f"got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.integer):
                raise GraphError(f"{where}: {fname} must be integers, got dtype {arr.dtype}")
            if int(arr.min()) < amin or int(arr.max()) > amax:
                raise GraphError(f"{where}: {fname} outside [{amin}, {amax}] "
                                 f"(min {int(arr.min())}, max {int(arr.max())})")
        problem = nm.check(self.leak)
        if problem:
            raise GraphError(f"{where}: {problem}")
        if self.bias is not None:
            b = self.bias
            if b.shape != (self.n_out,) or not np.issubdtype(b.dtype, np.integer):
                raise GraphError(f"{where}: bias must be integers of shape [{self.n_out}], got "
                                 f"{b.dtype} {b.shape}")
            if b.size and int(np.abs(b.astype(np.int64)).max()) > BIAS_MAX:
                raise GraphError(f"{where}: bias outside [-{BIAS_MAX}, {BIAS_MAX}] (min "
                                 f"{int(b.min())}, max {int(b.max())})")


@dataclass
class SpikeGraph:
    """A feed-forward integer SNN: input (pixels 0..255) -> encoder -> layers -> readout."""

    input_size: int
    steps: int
    layers: list[Layer]
    encoder: Encoder = field(default_factory=Encoder)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: optional int8 ANN baseline stored with the SNN (.esg ANN section, SPEC.md 5.6)
    ann: AnnGraph | None = None
    readout: Readout = Readout.COUNT_MEMBRANE

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpikeGraph):
            return NotImplemented
        return (self.input_size == other.input_size and self.steps == other.steps
                and int(self.encoder.kind) == int(other.encoder.kind)
                and int(self.encoder.seed) == int(other.encoder.seed)
                and self.metadata == other.metadata and self.layers == other.layers
                and int(self.readout) == int(other.readout)
                and (self.ann is None) == (other.ann is None)
                and (self.ann is None or other.ann is None
                     or ann_encode(self.ann) == ann_encode(other.ann)))

    def validate(self) -> SpikeGraph:
        self.encoder.validate()
        self.readout = Readout(self.readout)
        if not 1 <= self.input_size <= 65535:
            raise GraphError(f"input_size={self.input_size} outside [1, 65535]")
        if not 1 <= self.steps <= 65535:
            raise GraphError(f"steps={self.steps} outside [1, 65535]")
        if not 1 <= len(self.layers) <= 255:
            raise GraphError(f"{len(self.layers)} layers; accepted: 1..255")
        prev = self.input_size
        for i, layer in enumerate(self.layers):
            layer.validate(i)
            if layer.n_in != prev:
                raise GraphError(f"layer {i}: n_in={layer.n_in} but the previous stage "
                                 f"produces {prev}")
            prev = layer.n_out
        if self.n_classes > 255:
            raise GraphError(f"{self.n_classes} classes; the readout supports at most 255")
        if self.ann is not None:
            self.ann.validate()
            if (self.ann.input_size, self.ann.n_classes) != (self.input_size, self.n_classes):
                raise GraphError(f"ANN baseline {self.ann.input_size} inputs / "
                                 f"{self.ann.n_classes} classes; the SNN has "
                                 f"{self.input_size} / {self.n_classes}")
        return self

    def arena_bytes(self) -> int:
        """RAM the C runtime needs (SPEC.md, 'Arena')."""
        def a8(x: int) -> int:
            return (x + 7) & ~7

        total = a8(4 * sum(layer.n_out for layer in self.layers))
        # the further states of multi-state neurons (CUBA_LIF's synaptic current)
        total += a8(4 * sum((state_words(layer.neuron) - 1) * layer.n_out
                            for layer in self.layers))
        if self.encoder.kind == EncoderKind.DIRECT:
            total += a8(4 * self.layers[0].n_out)
        total += 2 * a8(2 * self.input_size)
        total += sum(a8(2 * layer.n_out) for layer in self.layers)
        return total

    def weight_bytes_int8(self) -> int:
        """Raw int8 dense weight bytes (the size reference for ``.esg`` targets)."""
        return sum(layer.n_in * layer.n_out for layer in self.layers)

"""The integer spike graph: IR, ``.esg`` reader/writer and golden simulator (numpy only).

Semantics and byte layout: ``exporters/spikegraph/SPEC.md``.
"""

from __future__ import annotations

from edgesnn.graph.esg import (
    EsgError,
    decode,
    describe,
    encode,
    model_hash,
    read_esg,
    write_esg,
)
from edgesnn.graph.golden import SimResult, reference_simulate, simulate
from edgesnn.graph.ir import (
    Q16_ONE,
    Encoder,
    EncoderKind,
    GraphError,
    Layer,
    NeuronKind,
    ResetMode,
    SpikeGraph,
    Storage,
)

__all__ = [
    "Q16_ONE",
    "Encoder",
    "EncoderKind",
    "EsgError",
    "GraphError",
    "Layer",
    "NeuronKind",
    "ResetMode",
    "SimResult",
    "SpikeGraph",
    "Storage",
    "decode",
    "describe",
    "encode",
    "model_hash",
    "read_esg",
    "reference_simulate",
    "simulate",
    "write_esg",
]

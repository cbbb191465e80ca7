"""Property tests: a mutated .esg is rejected with EsgError or decodes to a stable graph.

Two kinds of mutation: raw byte damage (flip / insert / delete / truncate / overwrite; caught
mostly by the CRCs and the header checks) and field edits followed by recomputing every CRC
and the model hash (so the deeper validators of SPEC.md section 6 are the ones exercised).
Never another exception, a hang, or an allocation far beyond the file size.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesnn.graph.esg import EsgError, decode, encode, refresh_checksums
from edgesnn.graph.synth import random_graph

_GRAPHS = [
    random_graph(1, input_size=10, hidden=(6,), n_classes=3, steps=4),
    random_graph(2, input_size=9, hidden=(5,), n_classes=2, steps=3, storage="sparse",
                 density=0.5, weight_bits=4, per_neuron=True, neuron="if"),
    random_graph(3, input_size=8, hidden=(), n_classes=4, steps=2, encoder="direct",
                 weight_bits=4, reset="zero"),
    random_graph(4, input_size=7, hidden=(4, 3), n_classes=2, steps=5, encoder="latency",
                 storage="sparse", density=0.6, per_neuron=True),
]
BASES = [encode(g) for g in _GRAPHS]
ALLOC_LIMIT = 8 << 20  # bytes; every file here is < 1 KB

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def check(blob: bytes) -> str:
    """Decode under an allocation watch; return the outcome ('ok' or the error class)."""
    tracemalloc.start()
    try:
        graph = decode(blob)
    except EsgError as exc:
        outcome = exc.category
        graph = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < ALLOC_LIMIT, f"decode allocated {peak} bytes for a {len(blob)}-byte file"
    if graph is not None:
        again = decode(encode(graph))
        assert again == graph
        outcome = "ok"
    return outcome


_raw_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2000), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 2000), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 2000), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 2000), st.just(0)),
    st.tuples(st.just("write"), st.integers(0, 2000), st.binary(min_size=1, max_size=8)),
)


def apply_raw(data: bytes, op: tuple) -> bytes:
    kind, pos, arg = op
    pos = pos % (len(data) + 1)
    buf = bytearray(data)
    if kind == "flip" and pos < len(buf):
        buf[pos] ^= 1 << arg
    elif kind == "insert":
        buf[pos:pos] = arg
    elif kind == "delete":
        del buf[pos:pos + arg]
    elif kind == "truncate":
        del buf[pos:]
    elif kind == "write":
        buf[pos:pos + len(arg)] = arg
    return bytes(buf)


@SETTINGS
@given(base=st.sampled_from(range(len(BASES))), ops=st.lists(_raw_op, min_size=1, max_size=3),
       refresh=st.booleans())
def test_raw_byte_damage(base: int, ops: list, refresh: bool) -> None:
    blob = BASES[base]
    for op in ops:
        blob = apply_raw(blob, op)
    if refresh:
        blob = refresh_checksums(blob)
    check(blob)


_INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 47, 48, 64, 127, 128, 255, 256, 65535, 65536,
                65537, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def _field_positions(data: bytes) -> list[int]:
    """Offsets of every structured field: header, table, GRAPH, layer headers + arrays."""
    count = struct.unpack_from("<I", data, 16)[0]
    pos = list(range(0, 64, 2)) + list(range(64, 64 + 16 * count, 4))
    for k in range(count):
        kind, off, size, _ = struct.unpack_from("<IIII", data, 64 + 16 * k)
        if kind == 1:
            pos += [off + r for r in (0, 4, 6, 8, 9, 10, 12, 16, 20)]
        elif kind == 2:
            pos += [off + r for r in list(range(0, 16)) + list(range(16, 48, 4))]
            pos += list(range(off + 48, off + size, 1))
        else:
            pos += [off, off + size - 1]
    return pos


_POSITIONS = [_field_positions(b) for b in BASES]


@SETTINGS
@given(base=st.sampled_from(range(len(BASES))), which=st.integers(0, 10**6),
       width=st.sampled_from([1, 2, 4]),
       value=st.one_of(st.sampled_from(_INTERESTING), st.integers(0, 0xFFFFFFFF)),
       second=st.booleans())
def test_field_edits_with_checksums_recomputed(base: int, which: int, width: int, value: int,
                                               second: bool) -> None:
    blob = bytearray(BASES[base])
    positions = _POSITIONS[base]
    edits = [(positions[which % len(positions)], value)]
    if second:
        edits.append((positions[(which * 7919) % len(positions)], value ^ 1))
    for pos, val in edits:
        fmt = {1: "<B", 2: "<H", 4: "<I"}[width]
        if pos + width <= len(blob):
            struct.pack_into(fmt, blob, pos, val & ((1 << (8 * width)) - 1))
    check(refresh_checksums(bytes(blob)))


def test_field_edits_reach_every_validator() -> None:
    """Deterministic sweep: field edits must hit accepted files and many fault classes."""
    rng = np.random.default_rng(0)
    outcomes: Counter[str] = Counter()
    for _ in range(600):
        b = int(rng.integers(0, len(BASES)))
        blob = bytearray(BASES[b])
        pos = _POSITIONS[b][int(rng.integers(0, len(_POSITIONS[b])))]
        val = int(rng.choice(_INTERESTING)) if rng.random() < 0.6 else int(rng.integers(0, 256))
        blob[pos] = val & 0xFF
        outcomes[check(refresh_checksums(bytes(blob)))] += 1
    assert outcomes["ok"] > 20, outcomes  # weights, seeds, thresholds: still valid graphs
    assert {"bounds", "shape", "enum", "value"} <= set(outcomes), outcomes

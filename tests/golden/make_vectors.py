"""Regenerate the spike-graph conformance vectors and the PRNG reference values.

    .venv/bin/python tests/golden/make_vectors.py

Writes (deterministically, from fixed seeds):

* ``firmware/runtime/esnn_layout.h`` — the C offsets and enums of the ``.esg`` layout table
  (:func:`edgesnn.graph.esg.c_layout_header`).
* ``tests/golden/prng_vectors.json`` — ``hash32(k, seed)`` reference values, computed twice
  (numpy :func:`edgesnn.graph.prng.hash32` and the pure-Python reference in
  :mod:`edgesnn.graph.golden`) and written only if both agree.
* ``exporters/spikegraph/vectors/valid/NAME.esg`` + ``NAME.json`` — small graphs from
  :func:`edgesnn.graph.synth.random_graph`, pixels, and the golden :class:`SimResult`
  (checked against :func:`reference_simulate` before writing).
* ``exporters/spikegraph/vectors/invalid/NNN_<reason>.esg`` + ``index.json`` — single-fault
  mutations of a valid file (the field is changed, then every CRC and the hash are recomputed
  unless the fault is the checksum itself), each with the fault class ``decode`` reports.

The mutation helpers below are also used by ``tests/test_esg.py``.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edgesnn.graph import golden, prng  # noqa: E402
from edgesnn.graph.esg import (  # noqa: E402
    C_LAYOUT_FILE,
    LAYER,
    LAYER_EXT,
    EsgError,
    c_layout_header,
    crc32,
    decode,
    encode,
    refresh_checksums,
)
from edgesnn.graph.golden import reference_simulate, simulate  # noqa: E402
from edgesnn.graph.ir import NeuronKind, SpikeGraph  # noqa: E402
from edgesnn.graph.synth import random_graph, random_pixels  # noqa: E402

VECTORS = ROOT / "exporters" / "spikegraph" / "vectors"
C_LAYOUT = ROOT / "firmware" / "runtime" / C_LAYOUT_FILE
PRNG_JSON = ROOT / "tests" / "golden" / "prng_vectors.json"

# ------------------------------------------------------------------------- mutation helpers


def section(data: bytes, k: int) -> tuple[int, int, int, int]:
    """(kind, offset, size, crc) of table entry ``k``."""
    return struct.unpack_from("<IIII", data, 64 + 16 * k)


def layer_at(data: bytes, i: int) -> int:
    """File offset of layer ``i``'s payload."""
    return section(data, 1 + i)[1]


def put(data: bytes, offset: int, fmt: str, value: int | bytes) -> bytes:
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, offset, value)
    return bytes(buf)


def fix_header_crc(data: bytes) -> bytes:
    return put(data, 60, "I", crc32(data[:60]))


def fix_table(data: bytes) -> bytes:
    """Recompute the table CRC and the header CRC only (not the sections, not the hash)."""
    count = struct.unpack_from("<I", data, 16)[0]
    data = put(data, 48, "I", crc32(data[64:64 + 16 * count]))
    return fix_header_crc(data)


def layer_field(data: bytes, i: int, rel: int, fmt: str, value: int) -> bytes:
    return refresh_checksums(put(data, layer_at(data, i) + rel, fmt, value))


def layer_array(data: bytes, i: int, which: str) -> int:
    """File offset of an array of layer ``i`` (threshold, leak, rowptr, index, weights)."""
    rel = LAYER.offset(f"off_{which}")
    base = layer_at(data, i)
    return base + struct.unpack_from("<I", data, base + rel)[0]


def syn_field(data: bytes, i: int, name: str, fmt: str, value: int) -> bytes:
    """Set a field of layer ``i``'s LAYER_EXT extension (a CubaLIF layer), checksums fixed."""
    return layer_field(data, i, LAYER.size + LAYER_EXT.offset(name), fmt, value)


def syn_leak_at(data: bytes, i: int) -> int:
    """File offset of the synaptic leak array of CubaLIF layer ``i``."""
    base = layer_at(data, i)
    rel = LAYER.size + LAYER_EXT.offset("off_syn_leak")
    return base + struct.unpack_from("<I", data, base + rel)[0]


def padding_at(data: bytes) -> int:
    """Offset of the first padding byte after a payload."""
    count = struct.unpack_from("<I", data, 16)[0]
    for k in range(count):
        _, off, size, _ = section(data, k)
        if size % 8:
            return off + size
    raise ValueError("no padded payload in this file")


def repeat_index(data: bytes) -> bytes:
    """Layer 0 (sparse, 8-bit index): copy a row's first index onto its second entry."""
    n_in = struct.unpack_from("<I", data, layer_at(data, 0))[0]
    rowptr = struct.unpack_from(f"<{n_in + 1}I", data, layer_array(data, 0, "rowptr"))
    idx = layer_array(data, 0, "index")
    for i in range(n_in):
        if rowptr[i + 1] - rowptr[i] >= 2:
            return put(data, idx + rowptr[i] + 1, "B", data[idx + rowptr[i]])
    raise ValueError("no row with two entries")


Mutation = tuple[str, str, Callable[[bytes], bytes]]  # (name, expected reason, mutate)


def base_graphs() -> dict[str, SpikeGraph]:
    """The graphs the invalid vectors are derived from (small on purpose)."""
    return {
        "dense": random_graph(101, input_size=12, hidden=(6,), n_classes=3, steps=4,
                              neuron="if", per_neuron=True),
        "sparse": random_graph(102, input_size=12, hidden=(6,), n_classes=3, steps=4,
                               storage="sparse", density=0.5, weight_bits=4),
        "bias": random_graph(103, input_size=12, hidden=(6,), n_classes=3, steps=4, bias=True),
        "cuba": random_graph(104, input_size=12, hidden=(6,), n_classes=3, steps=4,
                             neuron="cuba_lif", per_neuron=True),
    }


def targeted_mutations() -> list[tuple[str, Mutation]]:
    """(base graph name, mutation) pairs, one fault each."""
    rc = refresh_checksums

    def graph_off(d: bytes) -> int:
        return section(d, 0)[1]

    muts: list[tuple[str, Mutation]] = [
        ("dense", ("truncated_header", "bounds", lambda d: d[:40])),
        ("dense", ("magic", "magic", lambda d: rc(b"ESNX" + d[4:]))),
        ("dense", ("version_major", "version", lambda d: rc(put(d, 4, "H", 2)))),
        ("dense", ("header_crc", "header_crc", lambda d: put(d, 33, "B", d[33] ^ 0x40))),
        ("dense", ("table_crc", "table_crc",
                   lambda d: fix_header_crc(put(d, 64 + 12, "I", 0x12345678)))),
        ("dense", ("section_crc", "section_crc",
                   lambda d: put(d, layer_at(d, 0) + 60, "B", d[layer_at(d, 0) + 60] ^ 1))),
        ("dense", ("header_size", "bounds", lambda d: rc(put(d, 8, "I", 72)))),
        ("dense", ("file_size", "bounds", lambda d: rc(put(d + bytes(8), 12, "I", len(d))))),
        ("dense", ("trailing_bytes", "bounds",
                   lambda d: rc(put(d + bytes(8), 12, "I", len(d) + 8)))),
        ("dense", ("flags", "value", lambda d: rc(put(d, 24, "I", 1)))),
        ("dense", ("section_count", "shape", lambda d: rc(put(d, 16, "I", 1)))),
        ("dense", ("table_past_end", "bounds", lambda d: rc(put(d, 16, "I", 200)))),
        ("dense", ("section_kind", "enum", lambda d: rc(put(d, 64 + 16, "I", 9)))),
        ("dense", ("section_order", "shape", lambda d: rc(put(d, 64, "I", 2)))),
        ("dense", ("section_misaligned", "bounds",
                   lambda d: rc(put(d, 64 + 16 + 4, "I", section(d, 1)[1] + 4)))),
        ("dense", ("section_past_end", "bounds",
                   lambda d: rc(put(d, 64 + 16 + 8, "I", len(d))))),
        ("dense", ("padding_nonzero", "bounds", lambda d: rc(put(d, padding_at(d), "B", 7)))),
        ("dense", ("graph_input_size_zero", "value", lambda d: rc(put(d, graph_off(d), "I", 0)))),
        ("dense", ("graph_steps_zero", "value", lambda d: rc(put(d, graph_off(d) + 6, "H", 0)))),
        ("dense", ("graph_encoder", "enum", lambda d: rc(put(d, graph_off(d) + 8, "B", 3)))),
        ("dense", ("graph_readout", "enum", lambda d: rc(put(d, graph_off(d) + 9, "B", 2)))),
        ("dense", ("graph_n_layers", "shape", lambda d: rc(put(d, graph_off(d) + 4, "H", 3)))),
        ("dense", ("graph_n_classes", "shape", lambda d: rc(put(d, graph_off(d) + 10, "H", 4)))),
        ("dense", ("graph_reserved", "value", lambda d: rc(put(d, graph_off(d) + 24, "I", 5)))),
        ("dense", ("arena_bytes", "value",
                   lambda d: rc(put(d, graph_off(d) + 16, "I",
                                    struct.unpack_from("<I", d, graph_off(d) + 16)[0] + 8)))),
        ("dense", ("layer_n_in_chain", "shape", lambda d: layer_field(d, 0, 0, "I", 13))),
        ("dense", ("layer_n_out_zero", "value", lambda d: layer_field(d, 0, 4, "I", 0))),
        ("dense", ("layer_neuron", "enum", lambda d: layer_field(d, 0, 8, "B", len(NeuronKind)))),
        ("dense", ("layer_reset", "enum", lambda d: layer_field(d, 0, 9, "B", 4))),
        ("dense", ("layer_weight_bits", "enum", lambda d: layer_field(d, 0, 10, "B", 5))),
        ("dense", ("layer_storage", "enum", lambda d: layer_field(d, 0, 11, "B", 2))),
        ("dense", ("layer_index_bits_dense", "enum", lambda d: layer_field(d, 0, 12, "B", 8))),
        ("dense", ("layer_count_flag", "enum", lambda d: layer_field(d, 0, 13, "B", 2))),
        ("dense", ("layer_fire", "enum", lambda d: layer_field(d, 0, 15, "B", 2))),
        ("dense", ("layer_nnz_dense", "shape", lambda d: layer_field(d, 0, 16, "I", 71))),
        ("dense", ("layer_weights_bytes", "shape", lambda d: layer_field(d, 0, 40, "I", 71))),
        ("dense", ("array_misaligned", "bounds", lambda d: layer_field(d, 0, 36, "I",
                   struct.unpack_from("<I", d, layer_at(d, 0) + 36)[0] + 1))),
        ("dense", ("array_outside_payload", "bounds", lambda d: layer_field(d, 0, 36, "I",
                   struct.unpack_from("<I", d, layer_at(d, 0) + 36)[0] + 64))),
        ("dense", ("arrays_overlap", "bounds", lambda d: layer_field(d, 0, 24, "I",
                   struct.unpack_from("<I", d, layer_at(d, 0) + 20)[0]))),
        ("dense", ("array_in_header", "bounds", lambda d: layer_field(d, 0, 20, "I", 16))),
        ("dense", ("dense_rowptr_offset", "bounds", lambda d: layer_field(d, 0, 28, "I", 48))),
        ("dense", ("threshold_negative", "value",
                   lambda d: rc(put(d, layer_array(d, 0, "threshold"), "i", -1)))),
        ("dense", ("if_leak", "value", lambda d: rc(put(d, layer_array(d, 0, "leak"), "I",
                                                       65535)))),
        ("dense", ("leak_too_big", "value",
                   lambda d: rc(put(layer_field(d, 0, 8, "B", 0), layer_array(d, 0, "leak"),
                                    "I", 65537)))),
        ("dense", ("meta_not_json", "value", lambda d: rc(put(d, section(d, 3)[1], "B",
                                                             ord("["))))),
        ("dense", ("model_hash", "hash", lambda d: fix_header_crc(put(d, 40, "B", d[40] ^ 1)))),
        # a threshold array 2- but not 4-aligned, inside the payload and overlapping nothing
        # (one shared threshold at 50 of a per-neuron layer): readers require 4-alignment
        ("dense", ("array_2_aligned", "bounds", lambda d: layer_field(
            put(d, layer_at(d, 0) + LAYER.offset("threshold_count_flag"), "B", 0), 0,
            LAYER.offset("off_threshold"), "I", LAYER.size + 2))),
        ("bias", ("bias_too_big", "value",
                  lambda d: rc(put(d, layer_array(d, 0, "bias"), "i", -(1 << 23))))),
        ("bias", ("bias_outside_payload", "bounds", lambda d: layer_field(
            d, 0, LAYER.offset("off_bias"), "I", section(d, 1)[2] - 8))),
        ("sparse", ("sparse_nnz_too_big", "shape", lambda d: layer_field(d, 0, 16, "I", 73))),
        ("sparse", ("sparse_index_bits", "enum", lambda d: layer_field(d, 0, 12, "B", 4))),
        ("sparse", ("rowptr_start", "value", lambda d: rc(put(d, layer_array(d, 0, "rowptr"),
                                                             "I", 1)))),
        ("sparse", ("rowptr_decreasing", "value",
                    lambda d: rc(put(d, layer_array(d, 0, "rowptr") + 4, "I", 0xFFFF)))),
        ("sparse", ("index_out_of_range", "value",
                    lambda d: rc(put(d, layer_array(d, 0, "index"), "B", 6)))),
        ("sparse", ("index_not_increasing", "value", lambda d: rc(repeat_index(d)))),
        ("sparse", ("sparse_zero_weight", "value",
                    lambda d: rc(put(d, layer_array(d, 0, "weights"), "B",
                                     d[layer_array(d, 0, "weights")] & 0xF0)))),
        # the LAYER_EXT extension of a CubaLIF layer (SPEC 5.4.1, version 1.4)
        ("cuba", ("syn_leak_count_flag", "enum",
                  lambda d: syn_field(d, 0, "syn_leak_count_flag", "B", 2))),
        ("cuba", ("syn_reserved", "value", lambda d: syn_field(d, 0, "reserved", "B", 1))),
        ("cuba", ("syn_leak_in_header", "bounds",
                  lambda d: syn_field(d, 0, "off_syn_leak", "I", LAYER.size))),
        ("cuba", ("syn_leak_misaligned", "bounds", lambda d: syn_field(
            d, 0, "off_syn_leak", "I", syn_leak_at(d, 0) - layer_at(d, 0) + 2))),
        ("cuba", ("syn_leak_too_big", "value",
                  lambda d: rc(put(d, syn_leak_at(d, 0) + 4, "I", 65537)))),
    ]
    return muts


def random_flips(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    """Single-byte flips at random positions, no checksum repair."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        pos = int(rng.integers(0, len(data)))
        buf = bytearray(data)
        buf[pos] ^= 1 << int(rng.integers(0, 8))
        out.append((f"flip{k}_at{pos}", bytes(buf)))
    return out


# ----------------------------------------------------------------------------------- writers


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def make_prng() -> None:
    seeds = [0, 1, 0x1234ABCD, 0xFFFFFFFF, 0x9E3779B9]
    ks = [0, 1, 2, 3, 255, 256, 783, 784, 19599, 65535, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
    rows = []
    for seed in seeds:
        fast = prng.hash32(np.array(ks, dtype=np.uint64), seed).tolist()
        ref = [golden._ref_hash32(k, seed) for k in ks]
        if fast != ref:
            raise SystemExit(f"hash32 numpy/reference disagree for seed {seed}")
        rows += [{"k": k, "seed": seed, "hash32": h} for k, h in zip(ks, ref, strict=True)]
    table = prng.rate_table(3, 5, 0x1234ABCD)
    _write_json(PRNG_JSON, {
        "about": "esnn_hash32 / edgesnn.graph.prng.hash32 reference values (SPEC.md 3.1); "
                 "made by tests/golden/make_vectors.py",
        "hash32": rows,
        "rate_table": {"steps": 3, "input_size": 5, "seed": 0x1234ABCD,
                       "table": table.astype(int).tolist()},
    })


VALID_SPECS: dict[str, dict] = {
    "rate_dense_int8_lif": dict(input_size=24, hidden=(16,), n_classes=4, steps=10),
    "latency_sparse_int4_if_zero": dict(input_size=24, hidden=(12,), n_classes=5, steps=9,
                                        encoder="latency", storage="sparse", weight_bits=4,
                                        neuron="if", reset="zero", density=0.5),
    "direct_dense_int4_perneuron": dict(input_size=20, hidden=(10, 8), n_classes=3, steps=6,
                                        encoder="direct", weight_bits=4, per_neuron=True),
    "rate_sparse_int8_idx16": dict(input_size=16, hidden=(300,), n_classes=6, steps=5,
                                   storage="sparse", density=0.1, per_neuron=True),
    # version 1.1: every layer with a bias (the four above are 1.0 files)
    "direct_sparse_int8_bias": dict(input_size=20, hidden=(12,), n_classes=4, steps=6,
                                    encoder="direct", storage="sparse", density=0.5, bias=True),
    "rate_dense_int4_bias_zero": dict(input_size=24, hidden=(16, 8), n_classes=5, steps=8,
                                      weight_bits=4, reset="zero", per_neuron=True, bias=True),
    # version 1.3: the peers' rules (snnTorch's delayed subtract, no reset, SpikingJelly's >=)
    "rate_sparse_int8_subtract_delayed": dict(input_size=24, hidden=(14,), n_classes=5, steps=9,
                                              storage="sparse", density=0.5, bias=True,
                                              reset="subtract_delayed", per_neuron=True),
    "latency_dense_int8_none_ge": dict(input_size=20, hidden=(10,), n_classes=4, steps=7,
                                       encoder="latency", reset="none", fire="ge"),
    "direct_dense_int4_zero_ge": dict(input_size=20, hidden=(10,), n_classes=4, steps=7,
                                      encoder="direct", weight_bits=4, reset="zero", fire="ge"),
    "rate_dense_int8_readout_count": dict(input_size=16, hidden=(8,), n_classes=6, steps=3,
                                          readout="count", bias=True),
    # version 1.4: CubaLIF (snnTorch Synaptic's default delayed subtract; zero with >=)
    "rate_dense_int8_cuba_lif": dict(input_size=20, hidden=(12,), n_classes=4, steps=8,
                                     neuron="cuba_lif", reset="subtract_delayed", bias=True),
    "direct_sparse_int4_cuba_lif_zero_ge": dict(input_size=20, hidden=(10,), n_classes=4,
                                                steps=7, encoder="direct", storage="sparse",
                                                density=0.5, weight_bits=4, neuron="cuba_lif",
                                                per_neuron=True, reset="zero", fire="ge"),
}


def make_valid() -> None:
    out = VECTORS / "valid"
    out.mkdir(parents=True, exist_ok=True)
    for seed, (name, kw) in enumerate(VALID_SPECS.items(), start=200):
        graph = random_graph(seed, **kw)
        data = encode(graph)
        if decode(data) != graph:
            raise SystemExit(f"{name}: decode(encode(g)) != g")
        px = random_pixels(seed, 8, graph.input_size)
        px[0] = 0
        res = simulate(graph, px)
        for b in range(px.shape[0]):
            ref = reference_simulate(graph, px[b])
            for f in ("pred", "counts", "v_final", "input_spikes", "spikes", "ops"):
                if not np.array_equal(getattr(res, f)[b:b + 1], getattr(ref, f)):
                    raise SystemExit(f"{name}: golden and reference disagree on {f}")
        (out / f"{name}.esg").write_bytes(data)
        _write_json(out / f"{name}.json", {
            "esg": f"{name}.esg", "bytes": len(data), "graph_seed": seed, "random_graph": {
                k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
            "pixels": px.astype(int).tolist(), "expected": res.to_json()})


def make_invalid() -> None:
    out = VECTORS / "invalid"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.esg"):
        old.unlink()
    bases = {k: encode(g) for k, g in base_graphs().items()}
    cases: list[tuple[str, str, bytes]] = []
    for base, (name, reason, mutate) in targeted_mutations():
        cases.append((name, reason, mutate(bases[base])))
    for name, blob in random_flips(bases["dense"], 6, seed=7):
        cases.append((name, "", blob))
    index = []
    for n, (name, reason, blob) in enumerate(cases):
        try:
            decode(blob)
        except EsgError as exc:
            got, msg = exc.category, str(exc)
        else:
            raise SystemExit(f"mutation {name} was accepted")
        if reason and got != reason:
            raise SystemExit(f"mutation {name}: expected {reason}, decode says {got}: {msg}")
        fname = f"{n:03d}_{name}.esg"
        (out / fname).write_bytes(blob)
        index.append({"file": fname, "reason": got, "message": msg,
                      "host_only": got == "hash" or name == "meta_not_json"})
    _write_json(out / "index.json", {
        "about": "files every .esg reader must reject; reason = fault class of SPEC.md 6.1 "
                 "(host_only: the C runtime does not check it). Made by "
                 "tests/golden/make_vectors.py",
        "vectors": index})


def main() -> None:
    C_LAYOUT.write_text(c_layout_header())
    make_prng()
    make_valid()
    make_invalid()
    print(f"wrote {C_LAYOUT.relative_to(ROOT)}, {PRNG_JSON.relative_to(ROOT)} and "
          f"{VECTORS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()

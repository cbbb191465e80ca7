"""The ``.esg`` spike-graph file: writer, validating reader, hash and summary (SPEC.md 5-6).

``decode`` checks everything SPEC.md section 6 lists, in the order given there, and raises
:class:`EsgError` naming the section, layer and field. Every size it allocates is first
checked against the file length, so a hostile file cannot make it allocate more than a small
multiple of its own size (the one exception, expanding a sparse layer into the dense IR
matrix, is capped at :data:`MAX_DENSE_ELEMENTS`). numpy + stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn import atomic
from edgesnn.graph import ann as ann_mod
from edgesnn.graph.ir import (
    BIAS_MAX,
    Q16_ONE,
    Encoder,
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
from edgesnn.graph.neurons import EXT_PARAMS, ext_params
from edgesnn.graph.neurons import c_defines as neuron_c_defines

MAGIC = b"ESNG"
VERSION_MAJOR = 1
VERSION_MINOR = 4  # 1.1 biases, 1.2 the ANN section, 1.3 fire rule >= and delayed/no reset,
#                   1.4 CubaLIF (the LAYER_EXT extension)
MAX_SECTIONS = 1 + 255 + 1
MAX_DENSE_ELEMENTS = 1 << 26  # a sparse layer the Python IR would expand beyond 64 Mi weights
LAYER_NAMES_KEY = "esg_layer_names"  # META key holding the IR's layer names

#: reason categories of :class:`EsgError` (the conformance vectors use the same words)
CATEGORIES = ("bounds", "magic", "version", "header_crc", "table_crc", "section_crc", "hash",
              "shape", "enum", "value")


# ------------------------------------------------------------------------------ the layout
# The one table of the byte layout (SPEC.md 5.1-5.4). The Python reader and writer take their
# struct formats and field offsets from it, and ``c_layout_header`` writes the same numbers as
# ``firmware/runtime/esnn_layout.h`` for the C runtime (tests/test_esg_layout.py checks that
# the committed header is what this table gives). A new field or record goes here only.


class Record:
    """One fixed-size little-endian record of the file: ``fields`` are (name, struct code) in
    byte order; ``c_prefix`` names its offsets in C (``ESNN_<prefix>_<FIELD>``)."""

    def __init__(self, c_prefix: str, spec: str, fields: tuple[tuple[str, str], ...]) -> None:
        self.c_prefix = c_prefix
        self.spec = spec
        self.fields = fields
        self.struct = struct.Struct("<" + "".join(code for _, code in fields))
        self.size = self.struct.size
        self.offsets: dict[str, int] = {}
        pos = 0
        for name, code in fields:
            self.offsets[name] = pos
            pos += struct.calcsize("<" + code)

    def offset(self, name: str) -> int:
        return self.offsets[name]

    def unpack(self, data: bytes | bytearray | memoryview, base: int = 0) -> dict[str, Any]:
        return dict(zip((n for n, _ in self.fields), self.struct.unpack_from(data, base),
                        strict=True))


HEADER = Record("HDR", "5.1", (
    ("magic", "4s"), ("version_major", "H"), ("version_minor", "H"), ("header_size", "I"),
    ("file_size", "I"), ("section_count", "I"), ("section_table_offset", "I"), ("flags", "I"),
    ("reserved0", "I"), ("model_hash", "16s"), ("table_crc", "I"), ("reserved1", "8s"),
    ("header_crc", "I")))
ENTRY = Record("SEC", "5.2", (("kind", "I"), ("offset", "I"), ("size", "I"), ("crc", "I")))
GRAPH = Record("GRAPH", "5.3", (
    ("input_size", "I"), ("n_layers", "H"), ("steps", "H"), ("encoder", "B"), ("readout", "B"),
    ("n_classes", "H"), ("seed", "I"), ("arena_bytes", "I"), ("reserved", "12s")))
LAYER = Record("LAYER", "5.4", (
    ("n_in", "I"), ("n_out", "I"), ("neuron", "B"), ("reset", "B"), ("weight_bits", "B"),
    ("storage", "B"), ("index_bits", "B"), ("threshold_count_flag", "B"),
    ("leak_count_flag", "B"), ("fire", "B"), ("nnz", "I"), ("off_threshold", "I"),
    ("off_leak", "I"), ("off_rowptr", "I"), ("off_index", "I"), ("off_weights", "I"),
    ("weights_bytes", "I"), ("off_bias", "I")))


def _ext_fields() -> tuple[tuple[str, str], ...]:
    """The LAYER_EXT record, from the neuron models' table: an array offset per parameter
    beyond the LAYER record, then its count flag, zero-padded to a multiple of 8 bytes."""
    fields = [(p.esg_offset, "I") for p in EXT_PARAMS]
    fields += [(p.count_flag, "B") for p in EXT_PARAMS]
    pad = -5 * len(EXT_PARAMS) % 8
    return tuple(fields + ([("reserved", f"{pad}s")] if pad else []))


#: after the LAYER header of a neuron model with parameters beyond it (CUBA_LIF, version 1.4)
LAYER_EXT = Record("LAYER_EXT", "5.4.1", _ext_fields())
RECORDS = (HEADER, ENTRY, GRAPH, LAYER, LAYER_EXT)


class SectionKind(IntEnum):
    GRAPH = 1
    LAYER = 2
    META = 3
    ANN = 4  # the int8 ANN baseline: an EANN blob (SPEC.md 5.6, firmware/runtime/esnn_ann.h)


#: the enums of the file, with their C prefix (``ESNN_<prefix>_<MEMBER>``)
ENUMS: tuple[tuple[str, type[IntEnum]], ...] = (
    ("SECTION", SectionKind), ("ENC", EncoderKind), ("READOUT", Readout),
    ("NEURON", NeuronKind), ("RESET", ResetMode), ("FIRE", FireRule), ("STORAGE", Storage))

HEADER_SIZE = HEADER.size
ENTRY_SIZE = ENTRY.size
GRAPH_SIZE = GRAPH.size
LAYER_HEADER_SIZE = LAYER.size
KIND_GRAPH, KIND_LAYER, KIND_META, KIND_ANN = (int(k) for k in SectionKind)
KIND_NAMES = {int(k): k.name for k in SectionKind}
_HASH = slice(HEADER.offset("model_hash"), HEADER.offset("model_hash") + 16)
_HEADER_CRC = HEADER.offset("header_crc")


class EsgError(ValueError):
    """A malformed ``.esg`` file. ``category`` is one of :data:`CATEGORIES`."""

    def __init__(self, message: str, category: str = "value") -> None:
        super().__init__(message)
        self.category = category


def _a8(x: int) -> int:
    return (x + 7) & ~7


def _a4(x: int) -> int:
    return (x + 3) & ~3


def crc32(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def model_hash(data: bytes) -> bytes:
    """The 16-byte model hash: first 16 bytes of SHA-256 of ``data[64:]`` (SPEC.md 5.1)."""
    return hashlib.sha256(bytes(data[HEADER_SIZE:])).digest()[:16]


def header_hash(data: bytes | bytearray | memoryview) -> bytes:
    """The 16-byte model hash stored in the header (what a device announces, SPEC.md 5.1);
    ``data`` needs only its first 64 bytes. :func:`model_hash` recomputes it."""
    if len(data) < HEADER_SIZE:
        raise EsgError(f"header: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
                       "header", "bounds")
    return bytes(data[_HASH])


def header_field(data: bytes | bytearray | memoryview, name: str) -> Any:
    """One field of the 64-byte header, by its SPEC.md 5.1 name (no validation)."""
    return HEADER.unpack(data)[name]


# ------------------------------------------------------------------------ array sizes (5.4)


def index_bits_for(n_out: int, storage: Storage) -> int:
    """The index width a writer uses: 0 for dense, 8 for sparse with n_out <= 256, else 16."""
    if Storage(storage) == Storage.DENSE:
        return 0
    return 8 if n_out <= 256 else 16


def weights_bytes(n_in: int, n_out: int, nnz: int, bits: int, storage: Storage) -> int:
    """Length of a layer's weight array: dense int8 ``n_in*n_out``, dense int4 rows of
    ``ceil(n_out/2)`` bytes, sparse ``nnz`` bytes (int8) or ``ceil(nnz/2)`` (int4)."""
    if Storage(storage) == Storage.SPARSE:
        return nnz if bits == 8 else (nnz + 1) // 2
    return n_in * (n_out if bits == 8 else (n_out + 1) // 2)


def rowptr_bytes(n_in: int) -> int:
    return 4 * (n_in + 1)


def weight_arrays_bytes(n_in: int, n_out: int, nnz: int, bits: int, storage: Storage) -> int:
    """Bytes a layer's weight storage takes in its payload: the weight array, plus rowptr and
    index for sparse storage, each padded to 4 (threshold/leak arrays and the header are the
    same for both storages and not counted)."""
    total = _a4(weights_bytes(n_in, n_out, nnz, bits, storage))
    if Storage(storage) == Storage.SPARSE:
        total += _a4(rowptr_bytes(n_in)) + _a4(nnz * index_bits_for(n_out, storage) // 8)
    return total


# ----------------------------------------------------------------------------------- writing


def _pack_int4(values: np.ndarray) -> bytes:
    """Two's-complement nibbles, element k in byte k >> 1, low nibble for even k."""
    v = values.astype(np.int64).reshape(-1)
    if v.size % 2:
        v = np.append(v, 0)
    nib = (v & 0xF).astype(np.uint8)
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8).tobytes()


def layer_header_size(neuron: int) -> int:
    """Bytes of a LAYER payload's header for a layer of ``neuron``: 48, or 56 with the
    LAYER_EXT extension of a model with parameters beyond the LAYER record (SPEC.md 5.4)."""
    return LAYER_HEADER_SIZE + (LAYER_EXT.size if ext_params(neuron) else 0)


def _layer_payload(layer: Layer) -> bytes:
    n_in, n_out = layer.n_in, layer.n_out
    w = layer.weights.astype(np.int64)
    sparse = Storage(layer.storage) == Storage.SPARSE
    thr = np.asarray(layer.threshold, dtype=np.int64).astype("<i4").tobytes()
    leak = np.asarray(layer.leak, dtype=np.int64).astype("<u4").tobytes()
    parts: list[tuple[str, bytes]] = [("threshold", thr), ("leak", leak)]
    for p in ext_params(layer.neuron):  # the model's parameters beyond the LAYER record
        parts.append((p.name, np.asarray(getattr(layer, p.name), dtype=np.int64)
                      .astype(p.dtype).tobytes()))
    if layer.bias is not None:
        parts.append(("bias", np.asarray(layer.bias, dtype=np.int64).astype("<i4").tobytes()))
    if sparse:
        rows, cols = np.nonzero(w)  # row-major: columns increase within a row
        nnz = int(rows.size)
        rowptr = np.zeros(n_in + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_in), out=rowptr[1:])
        index_bits = index_bits_for(n_out, Storage.SPARSE)
        index = cols.astype("<u1" if index_bits == 8 else "<u2").tobytes()
        vals = w[rows, cols]
        wbytes = vals.astype(np.int8).tobytes() if layer.weight_bits == 8 else _pack_int4(vals)
        parts += [("rowptr", rowptr.astype("<u4").tobytes()), ("index", index)]
    else:
        nnz, index_bits = n_in * n_out, 0
        if layer.weight_bits == 8:
            wbytes = w.astype(np.int8).tobytes()
        else:
            wbytes = _pack_int4(np.pad(w, ((0, 0), (0, n_out % 2))))  # rows start on a byte
    parts.append(("weights", wbytes))
    offsets: dict[str, int] = {}
    body = bytearray()
    hsize = layer_header_size(layer.neuron)
    pos = hsize
    for name, blob in parts:
        pos = _a4(pos)
        body += b"\0" * (pos - hsize - len(body))
        offsets[name] = pos
        body += blob
        pos += len(blob)
    header = LAYER.struct.pack(
        n_in, n_out, int(layer.neuron), int(layer.reset), layer.weight_bits,
        int(Storage(layer.storage)), index_bits,
        1 if layer.threshold.shape[0] > 1 else 0, 1 if layer.leak.shape[0] > 1 else 0,
        int(layer.fire), nnz, offsets["threshold"], offsets["leak"], offsets.get("rowptr", 0),
        offsets.get("index", 0), offsets["weights"], len(wbytes), offsets.get("bias", 0))
    if hsize > LAYER_HEADER_SIZE:  # LAYER_EXT: 0 for the parameters the model does not have
        ext = {p.esg_offset: offsets[p.name] for p in ext_params(layer.neuron)}
        ext |= {p.count_flag: 1 if getattr(layer, p.name).shape[0] > 1 else 0
                for p in ext_params(layer.neuron)}
        header += LAYER_EXT.struct.pack(*(b"" if code.endswith("s") else ext.get(name, 0)
                                          for name, code in LAYER_EXT.fields))  # b"": zeros
    return header + bytes(body)


def _meta_payload(graph: SpikeGraph) -> bytes | None:
    meta = dict(graph.metadata)
    names = [layer.name for layer in graph.layers]
    if any(names):
        meta[LAYER_NAMES_KEY] = names
    if not meta:
        return None
    try:
        return json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False,
                          ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise GraphError(f"graph.metadata is not JSON-serialisable: {exc}") from exc


def encode(graph: SpikeGraph) -> bytes:
    """Serialise a (validated) graph into ``.esg`` bytes, deterministic for equal graphs."""
    graph.validate()
    graph_payload = GRAPH.struct.pack(graph.input_size, len(graph.layers), graph.steps,
                                int(graph.encoder.kind), int(graph.readout), graph.n_classes,
                                int(graph.encoder.seed), graph.arena_bytes(), b"\0" * 12)
    payloads = [(KIND_GRAPH, graph_payload)]
    payloads += [(KIND_LAYER, _layer_payload(layer)) for layer in graph.layers]
    if graph.ann is not None:
        payloads.append((KIND_ANN, ann_mod.encode(graph.ann)))
    meta = _meta_payload(graph)
    if meta is not None:
        payloads.append((KIND_META, meta))
    table = bytearray()
    body = bytearray()
    pos = _a8(HEADER_SIZE + ENTRY_SIZE * len(payloads))
    for kind, blob in payloads:
        table += ENTRY.struct.pack(kind, pos, len(blob), crc32(blob))
        body += blob + b"\0" * (_a8(len(blob)) - len(blob))
        pos += _a8(len(blob))
    gap = _a8(HEADER_SIZE + len(table)) - HEADER_SIZE - len(table)
    after_header = bytes(table) + b"\0" * gap + bytes(body)
    file_size = HEADER_SIZE + len(after_header)
    minor = _minor_version(graph)
    return _finish_header(file_size, len(payloads), crc32(bytes(table)), after_header, minor)


def _minor_version(graph: SpikeGraph) -> int:
    """The lowest minor version that holds ``graph``: 1.4 added CubaLIF, 1.3 the fire rule >=, the
    delayed / no reset and readout 1 (count, lowest index), 1.2 the ANN section, 1.1 biases;
    a file using none of them is 1.0."""
    layers = graph.layers
    if any(ext_params(lay.neuron) for lay in layers):
        return 4
    if graph.readout != Readout.COUNT_MEMBRANE or any(
            lay.fire != FireRule.GT or lay.reset in (ResetMode.SUBTRACT_DELAYED, ResetMode.NONE)
            for lay in layers):
        return 3
    if graph.ann is not None:
        return 2
    return 1 if any(lay.bias is not None for lay in layers) else 0


def _finish_header(file_size: int, count: int, table_crc: int, after_header: bytes,
                   minor: int) -> bytes:
    digest = hashlib.sha256(after_header).digest()[:16]
    head = HEADER.struct.pack(MAGIC, VERSION_MAJOR, minor, HEADER_SIZE, file_size,
                              count, HEADER_SIZE, 0, 0, digest, table_crc, b"\0" * 8, 0)
    head = head[:_HEADER_CRC] + struct.pack("<I", crc32(head[:_HEADER_CRC]))
    return head + after_header


def refresh_checksums(data: bytes) -> bytes:
    """Recompute every section CRC, the table CRC, the model hash and the header CRC of
    ``data`` as far as its table can be read (used to build targeted invalid files)."""
    buf = bytearray(data)
    if len(buf) < HEADER_SIZE:
        return bytes(buf)
    count = header_field(buf, "section_count")
    tab = header_field(buf, "section_table_offset")
    if tab + ENTRY_SIZE * count <= len(buf) and count <= MAX_SECTIONS:
        for k in range(count):
            _, off, size, _ = ENTRY.struct.unpack_from(buf, tab + ENTRY_SIZE * k)
            if off + size <= len(buf):
                struct.pack_into("<I", buf, tab + ENTRY_SIZE * k + ENTRY.offset("crc"),
                                 crc32(bytes(buf[off:off + size])))
        struct.pack_into("<I", buf, HEADER.offset("table_crc"),
                         crc32(bytes(buf[tab:tab + ENTRY_SIZE * count])))
    buf[_HASH] = model_hash(bytes(buf))
    struct.pack_into("<I", buf, _HEADER_CRC, crc32(bytes(buf[:_HEADER_CRC])))
    return bytes(buf)


# ----------------------------------------------------------------------------------- reading


def _unpack_int4(raw: np.ndarray, count: int) -> np.ndarray:
    raw = raw.reshape(-1)
    nib = np.empty(raw.size * 2, dtype=np.int16)
    nib[0::2] = raw & 0xF
    nib[1::2] = raw >> 4
    return ((nib[:count] ^ 8) - 8).astype(np.int8)


class _Reader:
    def __init__(self, data: bytes, check_hash: bool) -> None:
        self.data = bytes(data)
        self.check_hash = check_hash

    def fail(self, where: str, message: str, category: str) -> EsgError:
        return EsgError(f"{where}: {message}", category)

    def enum(self, where: str, enum: type[IntEnum], value: int) -> None:
        if value not in {int(m) for m in enum}:
            names = ", ".join(f"{int(m)} {m.name.lower()}" for m in enum)
            raise self.fail(where, f"{value}; accepted: {names}", "enum")

    # -- header, table, placement, checksums ------------------------------------------------
    def header(self) -> tuple[int, int]:
        d = self.data
        if len(d) < HEADER_SIZE:
            raise self.fail("header", f"file is {len(d)} bytes, shorter than the 64-byte "
                            "header", "bounds")
        (magic, major, minor, header_size, file_size, count, table_off, flags, res0, _digest,
         table_crc, res1, header_crc) = HEADER.struct.unpack_from(d, 0)
        if magic != MAGIC:
            raise self.fail("header.magic", f"{magic!r} is not b'ESNG' (not a .esg file)",
                            "magic")
        if major != VERSION_MAJOR:
            raise self.fail("header.version_major", f"version {major}.{minor}; this reader "
                            f"accepts {VERSION_MAJOR}.x", "version")
        if crc32(d[:_HEADER_CRC]) != header_crc:
            raise self.fail("header.header_crc", f"CRC-32 of bytes [0, {_HEADER_CRC}) is "
                            f"0x{crc32(d[:_HEADER_CRC]):08x}, header says "
                            f"0x{header_crc:08x}",
                            "header_crc")
        if header_size != HEADER_SIZE:
            raise self.fail("header.header_size", f"{header_size}; accepted: 64", "bounds")
        if file_size != len(d):
            raise self.fail("header.file_size", f"{file_size} but the file has {len(d)} "
                            "bytes (truncated or extended)", "bounds")
        if file_size % 8:
            raise self.fail("header.file_size", f"{file_size} is not a multiple of 8",
                            "bounds")
        if flags != 0 or res0 != 0 or res1 != b"\0" * 8:
            raise self.fail("header.flags/reserved", "must be 0", "value")
        if table_off != HEADER_SIZE:
            raise self.fail("header.section_table_offset", f"{table_off}; accepted: 64",
                            "bounds")
        if not 2 <= count <= MAX_SECTIONS:
            raise self.fail("header.section_count", f"{count}; accepted: 2..{MAX_SECTIONS} "
                            "(GRAPH + 1..255 LAYER + optional META)", "shape")
        table_end = HEADER_SIZE + ENTRY_SIZE * count
        if table_end > len(d):
            raise self.fail("section table", f"{count} entries end at byte {table_end}, past "
                            f"the end of the {len(d)}-byte file", "bounds")
        if crc32(d[HEADER_SIZE:table_end]) != table_crc:
            raise self.fail("header.table_crc", "CRC-32 of the section table does not match",
                            "table_crc")
        return count, table_end

    def sections(self, count: int, table_end: int) -> list[tuple[int, int, int]]:
        d = self.data
        out: list[tuple[int, int, int]] = []
        crcs: list[int] = []
        expect = _a8(table_end)
        if any(d[table_end:expect]):
            raise self.fail("section table", "padding after the table is not zero", "bounds")
        for k in range(count):
            kind, off, size, crc = ENTRY.struct.unpack_from(d, HEADER_SIZE + ENTRY_SIZE * k)
            where = f"section {k}"
            self.enum(f"{where}.kind", SectionKind, kind)
            where += f" ({KIND_NAMES[kind]})"
            prev = out[-1][0] if out else None
            if not (kind == KIND_GRAPH if k == 0 else
                    (kind == KIND_LAYER and prev in (KIND_GRAPH, KIND_LAYER))
                    or (kind == KIND_ANN and prev == KIND_LAYER)
                    or (kind == KIND_META and k == count - 1 and prev in (KIND_LAYER, KIND_ANN))):
                raise self.fail(f"{where}.kind", "out of order; expected GRAPH first, then "
                                "LAYER sections, then at most one ANN, then at most one META "
                                "last", "shape")
            if off % 8:
                raise self.fail(f"{where}.offset", f"{off} is not a multiple of 8", "bounds")
            if off != expect:
                raise self.fail(f"{where}.offset", f"{off}; payloads must follow each other "
                                f"in order, this one at {expect}", "bounds")
            if off + size > len(d):
                raise self.fail(f"{where}", f"payload [{off}, {off + size}) extends past the "
                                f"end of the {len(d)}-byte file", "bounds")
            end = off + size
            expect = _a8(end)
            if expect > len(d) or any(d[end:expect]):
                raise self.fail(f"{where}", "padding after the payload is missing or not zero",
                                "bounds")
            out.append((kind, off, size))
            crcs.append(crc)
        if expect != len(d):
            raise self.fail("file", f"{len(d) - expect} bytes follow the last payload",
                            "bounds")
        for k, ((kind, off, size), crc) in enumerate(zip(out, crcs, strict=True)):
            if crc32(d[off:off + size]) != crc:
                raise self.fail(f"section {k} ({KIND_NAMES[kind]}).crc",
                                "CRC-32 of the payload does not match", "section_crc")
        if self.check_hash and model_hash(d) != header_hash(d):
            raise self.fail("header.model_hash", f"stored {header_hash(d).hex()} but the content "
                            f"hashes to {model_hash(d).hex()}", "hash")
        return out

    # -- payloads -----------------------------------------------------------------------------
    def graph(self, off: int, size: int, n_layer_sections: int) -> dict[str, int]:
        if size != GRAPH_SIZE:
            raise self.fail("GRAPH", f"payload is {size} bytes; accepted: 32", "shape")
        (input_size, n_layers, steps, enc, readout, n_classes, seed, arena,
         reserved) = GRAPH.struct.unpack_from(self.data, off)
        if not 1 <= input_size <= 65535:
            raise self.fail("GRAPH.input_size", f"{input_size}; accepted: 1..65535", "value")
        if not 1 <= n_layers <= 255:
            raise self.fail("GRAPH.n_layers", f"{n_layers}; accepted: 1..255", "value")
        if steps < 1:
            raise self.fail("GRAPH.steps", f"{steps}; accepted: 1..65535", "value")
        self.enum("GRAPH.encoder", EncoderKind, enc)
        self.enum("GRAPH.readout", Readout, readout)
        if not 1 <= n_classes <= 255:
            raise self.fail("GRAPH.n_classes", f"{n_classes}; accepted: 1..255", "value")
        if reserved != b"\0" * 12:
            raise self.fail("GRAPH.reserved", "must be 0", "value")
        if n_layers != n_layer_sections:
            raise self.fail("GRAPH.n_layers", f"{n_layers} but the file has "
                            f"{n_layer_sections} LAYER sections", "shape")
        return {"input_size": input_size, "n_layers": n_layers, "steps": steps,
                "encoder": enc, "n_classes": n_classes, "seed": seed, "arena": arena,
                "readout": readout}

    def layer(self, index: int, off: int, size: int, n_in_expected: int) -> Layer:
        d = self.data
        w = f"layer {index}"
        if size < LAYER_HEADER_SIZE:
            raise self.fail(w, f"payload is {size} bytes, shorter than the "
                            f"{LAYER_HEADER_SIZE}-byte layer "
                            "header", "shape")
        (n_in, n_out, neuron, reset, bits, storage, index_bits, tflag, lflag, fire, nnz,
         o_thr, o_leak, o_rowptr, o_index, o_w, w_bytes, o_bias) = LAYER.struct.unpack_from(d, off)
        if not 1 <= n_in <= 65535:
            raise self.fail(f"{w}.n_in", f"{n_in}; accepted: 1..65535", "value")
        if not 1 <= n_out <= 65535:
            raise self.fail(f"{w}.n_out", f"{n_out}; accepted: 1..65535", "value")
        self.enum(f"{w}.neuron", NeuronKind, neuron)
        self.enum(f"{w}.reset", ResetMode, reset)
        self.enum(f"{w}.storage", Storage, storage)
        self.enum(f"{w}.fire", FireRule, fire)
        for field, val in (("threshold_count_flag", tflag), ("leak_count_flag", lflag)):
            if val > 1:
                raise self.fail(f"{w}.{field}", f"{val}; accepted: 0, 1", "enum")
        if bits not in (8, 4):
            raise self.fail(f"{w}.weight_bits", f"{bits}; accepted: 8, 4", "enum")
        sparse = storage == 1
        ok_index = ((8, 16) if n_out <= 256 else (16,)) if sparse else (0,)
        if index_bits not in ok_index:
            raise self.fail(f"{w}.index_bits", f"{index_bits} for "
                            f"{'sparse' if sparse else 'dense'} storage with n_out={n_out}; "
                            f"accepted: {', '.join(map(str, ok_index))}", "enum")
        hsize = layer_header_size(neuron)
        ext: dict[str, tuple[int, int]] = {}  # parameter -> (offset, count) via LAYER_EXT
        if hsize > LAYER_HEADER_SIZE:  # the LAYER_EXT extension (CUBA_LIF, version 1.4)
            if size < hsize:
                raise self.fail(w, f"payload is {size} bytes, shorter than the {hsize}-byte "
                                f"header of a {NeuronKind(neuron).name} layer", "shape")
            fields = LAYER_EXT.unpack(d, off + LAYER_HEADER_SIZE)
            for p in EXT_PARAMS:
                if fields[p.count_flag] > 1:
                    raise self.fail(f"{w}.{p.count_flag}", f"{fields[p.count_flag]}; "
                                    "accepted: 0, 1", "enum")
            if any(fields.get("reserved", b"")):
                raise self.fail(f"{w}.reserved", "must be 0", "value")
            for p in EXT_PARAMS:
                if p in ext_params(neuron):
                    ext[p.name] = (fields[p.esg_offset], n_out if fields[p.count_flag] else 1)
                elif fields[p.esg_offset] or fields[p.count_flag]:
                    raise self.fail(f"{w}.{p.esg_offset}", f"must be 0: a "
                                    f"{NeuronKind(neuron).name} layer has no {p.name}", "value")
        if n_in != n_in_expected:
            raise self.fail(f"{w}.n_in", f"{n_in} but the previous stage produces "
                            f"{n_in_expected}", "shape")
        if sparse and nnz > n_in * n_out:
            raise self.fail(f"{w}.nnz", f"{nnz} > n_in*n_out = {n_in * n_out}", "shape")
        if not sparse and nnz != n_in * n_out:
            raise self.fail(f"{w}.nnz", f"{nnz} for dense {n_in}x{n_out}; must be "
                            f"{n_in * n_out}", "shape")
        want_wb = weights_bytes(n_in, n_out, nnz, bits, Storage(storage))
        if w_bytes != want_wb:
            raise self.fail(f"{w}.weights_bytes", f"{w_bytes}; {n_in}x{n_out} "
                            f"{'sparse' if sparse else 'dense'} int{bits} with nnz={nnz} "
                            f"needs {want_wb}", "shape")
        n_thr = n_out if tflag else 1
        n_leak = n_out if lflag else 1
        arrays = [("threshold", o_thr, 4 * n_thr), ("leak", o_leak, 4 * n_leak),
                  ("weights", o_w, w_bytes)]
        if sparse:
            arrays += [("rowptr", o_rowptr, rowptr_bytes(n_in)),
                       ("index", o_index, (index_bits // 8) * nnz)]
        elif o_rowptr != 0 or o_index != 0:
            raise self.fail(f"{w}.off_rowptr/off_index", "must be 0 for dense storage",
                            "bounds")
        if o_bias:  # 0: the layer has no bias (every 1.0 file)
            arrays.append(("bias", o_bias, 4 * n_out))
        arrays += [(name, o, 4 * n) for name, (o, n) in ext.items()]
        spans = []
        for name, o, n in arrays:
            if o % 4:
                raise self.fail(f"{w}.off_{name}", f"{o} is not a multiple of 4", "bounds")
            if o < hsize or o + n > size:
                raise self.fail(f"{w}.off_{name}", f"array [{o}, {o + n}) is outside the "
                                f"payload [{hsize}, {size})", "bounds")
            spans.append((o, o + n, name))
        spans.sort()
        for (_, e1, a), (s2, _, b) in zip(spans, spans[1:], strict=False):
            if s2 < e1:
                raise self.fail(w, f"arrays {a} and {b} overlap", "bounds")
        thr = np.frombuffer(d, "<i4", n_thr, off + o_thr).astype(np.int32)
        leak = np.frombuffer(d, "<u4", n_leak, off + o_leak).astype(np.uint32)
        if thr.min() < 0:
            raise self.fail(f"{w}.threshold", f"{int(thr.min())} < 0", "value")
        if leak.max() > Q16_ONE:
            raise self.fail(f"{w}.leak", f"{int(leak.max())} > 65536", "value")
        if neuron == NeuronKind.IF and np.any(leak != Q16_ONE):
            raise self.fail(f"{w}.leak", "an IF neuron needs every leak == 65536", "value")
        ext_arrays: dict[str, np.ndarray] = {}
        for p in ext_params(neuron):
            o, n = ext[p.name]
            arr = np.frombuffer(d, p.dtype, n, off + o).astype(np.dtype(p.dtype).newbyteorder("="))
            if int(arr.min()) < p.lo or int(arr.max()) > p.hi:
                raise self.fail(f"{w}.{p.name}", f"{int(arr.min())}..{int(arr.max())} outside "
                                f"[{p.lo}, {p.hi}]", "value")
            ext_arrays[p.name] = arr
        raw = np.frombuffer(d, np.uint8, w_bytes, off + o_w)
        if sparse:
            weights = self._sparse(w, d, off, n_in, n_out, nnz, o_rowptr, o_index,
                                   index_bits, bits, raw)
        else:
            if bits == 8:
                weights = raw.view(np.int8).reshape(n_in, n_out).copy()
            else:
                stride = (n_out + 1) // 2
                rows = raw.reshape(n_in, stride)
                if n_out % 2 and np.any(rows[:, -1] >> 4):
                    raise self.fail(f"{w}.weights", "unused high nibble at the end of a row "
                                    "is not 0", "value")
                weights = _unpack_int4(rows, rows.size * 2).reshape(n_in, 2 * stride)
                weights = np.ascontiguousarray(weights[:, :n_out])
        bias = None
        if o_bias:
            bias = np.frombuffer(d, "<i4", n_out, off + o_bias).astype(np.int32)
            if int(np.abs(bias.astype(np.int64)).max()) > BIAS_MAX:
                raise self.fail(f"{w}.bias", f"{int(bias.min())}..{int(bias.max())} outside "
                                f"[-{BIAS_MAX}, {BIAS_MAX}]", "value")
        return Layer(weights=weights, threshold=thr, leak=leak, neuron=NeuronKind(neuron),
                     reset=ResetMode(reset), weight_bits=bits, storage=Storage(storage),
                     bias=bias, fire=FireRule(fire), **ext_arrays)

    def _sparse(self, w: str, d: bytes, off: int, n_in: int, n_out: int, nnz: int,
                o_rowptr: int, o_index: int, index_bits: int, bits: int,
                raw: np.ndarray) -> np.ndarray:
        rowptr = np.frombuffer(d, "<u4", n_in + 1, off + o_rowptr).astype(np.int64)
        if rowptr[0] != 0 or rowptr[-1] != nnz:
            raise self.fail(f"{w}.rowptr", f"must start at 0 and end at nnz={nnz} (got "
                            f"{int(rowptr[0])}..{int(rowptr[-1])})", "value")
        if np.any(np.diff(rowptr) < 0):
            raise self.fail(f"{w}.rowptr", "is not non-decreasing", "value")
        index = np.frombuffer(d, "<u1" if index_bits == 8 else "<u2", nnz,
                              off + o_index).astype(np.int64)
        if nnz and index.max() >= n_out:
            raise self.fail(f"{w}.index", f"{int(index.max())} >= n_out={n_out}", "value")
        row_of = np.repeat(np.arange(n_in), np.diff(rowptr))
        same_row = row_of[1:] == row_of[:-1]
        if np.any(same_row & (index[1:] <= index[:-1])):
            raise self.fail(f"{w}.index", "not strictly increasing within a row", "value")
        vals = raw.view(np.int8) if bits == 8 else _unpack_int4(raw, nnz)
        if bits == 4 and nnz % 2 and raw.size and raw[-1] >> 4:
            raise self.fail(f"{w}.weights", "unused high nibble after the last entry is not 0",
                            "value")
        if np.any(vals[:nnz] == 0):
            raise self.fail(f"{w}.weights", "a sparse entry stores a zero weight", "value")
        if n_in * n_out > MAX_DENSE_ELEMENTS:
            raise self.fail(w, f"{n_in}x{n_out} is more than the {MAX_DENSE_ELEMENTS} weights "
                            "the Python IR expands a sparse layer to", "bounds")
        weights = np.zeros((n_in, n_out), dtype=np.int8)
        weights[row_of, index] = vals[:nnz]
        return weights

    def meta(self, off: int, size: int) -> dict[str, Any]:
        try:
            obj = json.loads(self.data[off:off + size].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise self.fail("META", f"not UTF-8 JSON: {exc}", "value") from exc
        if not isinstance(obj, dict):
            raise self.fail("META", f"must be a JSON object, got {type(obj).__name__}",
                            "value")
        return obj


def decode(data: bytes, *, check_hash: bool = True) -> SpikeGraph:
    """Parse and fully validate ``.esg`` bytes (SPEC.md section 6, in its order).

    ``check_hash`` also verifies the model hash (a host-only check; the C runtime trusts the
    CRCs). Raises :class:`EsgError` with the field and a ``category``.
    """
    r = _Reader(data, check_hash)
    count, table_end = r.header()
    sections = r.sections(count, table_end)
    layer_secs = [(o, s) for k, o, s in sections if k == KIND_LAYER]
    g = r.graph(sections[0][1], sections[0][2], len(layer_secs))
    layers = []
    prev = g["input_size"]
    for i, (o, s) in enumerate(layer_secs):
        layer = r.layer(i, o, s, prev)
        layers.append(layer)
        prev = layer.n_out
    if g["n_classes"] != prev:
        raise EsgError(f"GRAPH.n_classes: {g['n_classes']} but the last layer has {prev} "
                       "outputs", "shape")
    baseline = None
    for kind, o, s in sections:
        if kind == KIND_ANN:
            try:
                baseline = ann_mod.decode(bytes(data[o:o + s]))
            except ann_mod.AnnError as exc:
                raise EsgError(f"ANN: {exc}", "value") from exc
            if (baseline.input_size, baseline.n_classes) != (g["input_size"], g["n_classes"]):
                raise EsgError(f"ANN: {baseline.input_size} inputs / {baseline.n_classes} "
                               f"classes; the graph has {g['input_size']} / "
                               f"{g['n_classes']}", "shape")
    meta: dict[str, Any] = {}
    if sections[-1][0] == KIND_META:
        meta = r.meta(sections[-1][1], sections[-1][2])
    names = meta.pop(LAYER_NAMES_KEY, None)
    if names is not None:
        if not (isinstance(names, list) and len(names) == len(layers)
                and all(isinstance(n, str) for n in names)):
            raise EsgError(f"META.{LAYER_NAMES_KEY}: must be a list of {len(layers)} strings",
                           "value")
        for layer, name in zip(layers, names, strict=True):
            layer.name = name
    graph = SpikeGraph(input_size=g["input_size"], steps=g["steps"], layers=layers,
                       encoder=Encoder(kind=EncoderKind(g["encoder"]), seed=g["seed"]),
                       metadata=meta, ann=baseline, readout=Readout(g["readout"]))
    try:
        graph.validate()
    except GraphError as exc:  # every rule is checked above; this is a second line of defence
        raise EsgError(f"graph: {exc}", "value") from exc
    if g["arena"] != graph.arena_bytes():
        raise EsgError(f"GRAPH.arena_bytes: {g['arena']}; SPEC.md section 4 gives "
                       f"{graph.arena_bytes()}", "value")
    return graph


def write_esg(graph: SpikeGraph, path: str | os.PathLike[str]) -> bytes:
    """Encode ``graph`` and write it atomically (:mod:`edgesnn.atomic`); returns bytes."""
    data = encode(graph)
    atomic.write_bytes(path, data, fsync=True)
    return data


def read_esg(path: str | os.PathLike[str]) -> SpikeGraph:
    """Read and validate a ``.esg`` file; errors name the file."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return decode(data)
    except EsgError as exc:
        raise EsgError(f"{p}: {exc}", exc.category) from exc


def describe(data: bytes) -> dict[str, Any]:
    """A JSON-able summary of validated ``.esg`` bytes (what ``edgesnn inspect`` shows)."""
    graph = decode(data)
    count = header_field(data, "section_count")
    sections = []
    for k in range(count):
        kind, off, size, crc = ENTRY.struct.unpack_from(data, HEADER_SIZE + ENTRY_SIZE * k)
        sections.append({"kind": KIND_NAMES[kind], "offset": off, "bytes": size,
                         "crc32": f"{crc:08x}"})
    layer_secs = [s for s in sections if s["kind"] == "LAYER"]
    layers = []
    for i, (layer, sec) in enumerate(zip(graph.layers, layer_secs, strict=True)):
        total = layer.n_in * layer.n_out
        layers.append({
            "index": i, "name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out,
            "neuron": NeuronKind(layer.neuron).name, "reset": ResetMode(layer.reset).name,
            "fire": "v >= threshold" if layer.fire == FireRule.GE else "v > threshold",
            "weight_bits": layer.weight_bits, "storage": Storage(layer.storage).name,
            "index_bits": int(data[sec["offset"] + LAYER.offset("index_bits")]),
            "nnz": layer.nnz, "sparsity": round(1.0 - layer.nnz / total, 6),
            "threshold": ("per-neuron" if layer.threshold.shape[0] > 1
                          else int(layer.threshold[0])),
            "threshold_range": [int(layer.threshold.min()), int(layer.threshold.max())],
            "leak": "per-neuron" if layer.leak.shape[0] > 1 else int(layer.leak[0]),
            "leak_range": [int(layer.leak.min()), int(layer.leak.max())],
            **{f"{p.name}_range": (None if getattr(layer, p.name) is None else [
                int(getattr(layer, p.name).min()), int(getattr(layer, p.name).max())])
               for p in EXT_PARAMS},
            "bias_range": (None if layer.bias is None
                           else [int(layer.bias.min()), int(layer.bias.max())]),
            "bytes": sec["bytes"],
        })
    major, minor = header_field(data, "version_major"), header_field(data, "version_minor")
    return {
        "format": "esg", "version": f"{major}.{minor}", "file_bytes": len(data),
        "model_hash": header_hash(data).hex(), "input_size": graph.input_size,
        "steps": graph.steps, "n_classes": graph.n_classes,
        "encoder": EncoderKind(graph.encoder.kind).name.lower(),
        "encoder_seed": int(graph.encoder.seed),
        "readout": ("count, membrane tie-break" if graph.readout == Readout.COUNT_MEMBRANE
                    else "count, lowest index on ties"),
        "arena_bytes": graph.arena_bytes(),
        "weights": sum(layer.n_in * layer.n_out for layer in graph.layers),
        "nonzero_weights": sum(layer.nnz for layer in graph.layers),
        "layers": layers, "sections": sections, "metadata": graph.metadata,
    }


# ----------------------------------------------------------------------- the C layout header

C_LAYOUT_FILE = "esnn_layout.h"  # in firmware/runtime/


def c_layout_header() -> str:
    """``firmware/runtime/esnn_layout.h``: the layout table above as C constants (record sizes,
    field offsets, enums), so the C runtime reads no raw offset or bare enum number."""
    magic = struct.unpack("<I", MAGIC)[0]
    lines = [
        "/* The .esg byte layout (exporters/spikegraph/SPEC.md section 5) for the C runtime.",
        " * GENERATED from the one layout table in edgesnn/graph/esg.py: do not edit; run",
        " * `.venv/bin/python tests/golden/make_vectors.py` after changing the table",
        " * (tests/test_esg_layout.py fails while this file and the table differ). */",
        "#ifndef ESNN_LAYOUT_H",
        "#define ESNN_LAYOUT_H",
        "",
        f"#define ESNN_ESG_MAGIC 0x{magic:08X}u /* {MAGIC.decode()} as a little-endian u32 */",
        f"#define ESNN_ESG_VERSION_MAJOR {VERSION_MAJOR}u",
        f"#define ESNN_ESG_VERSION_MINOR {VERSION_MINOR}u",
        f"#define ESNN_ESG_MAX_SECTIONS {MAX_SECTIONS}u",
        "#define ESNN_ESG_SECTION_ALIGN 8u /* payload offsets */",
        "#define ESNN_ESG_ARRAY_ALIGN 4u /* layer array offsets, and the blob itself */",
        f"#define ESNN_Q16_ONE {Q16_ONE}u /* leak multiplier 1.0 (no leak) */",
        f"#define ESNN_BIAS_MAX {BIAS_MAX} /* |bias| limit (SPEC.md 3.2) */",
    ]
    for rec in RECORDS:
        lines += ["", f"/* SPEC.md {rec.spec}: {rec.size}-byte record, field offsets */",
                  f"#define ESNN_{rec.c_prefix}_BYTES {rec.size}u"]
        lines += [f"#define ESNN_{rec.c_prefix}_{name.upper()} {rec.offset(name)}u"
                  for name, _ in rec.fields]
    lines += [""] + neuron_c_defines()
    for prefix, enum in ENUMS:
        members = ", ".join(f"ESNN_{prefix}_{m.name} = {int(m)}" for m in enum)
        lines += ["", f"enum {{ {members} }};",
                  f"#define ESNN_{prefix}_MAX {max(int(m) for m in enum)}u"]
    lines += ["", "#endif /* ESNN_LAYOUT_H */", ""]
    return "\n".join(lines)

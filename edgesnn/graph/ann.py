"""The int8 ANN baseline: integer graph, ``EANN`` blob and the numpy twin of
``firmware/runtime/esnn_ann.c`` (bit for bit).

The same-topology ReLU network an SNN is compared against, quantized the way CMSIS-NN /
TFLite run it: uint8 inputs (pixels, zero point 0), int8 weights (symmetric, per tensor),
int32 bias and accumulation, per-tensor requantization with a fixed-point multiplier ``M``
and right shift ``s`` (single rounding)::

    acc[j] = bias[j] + sum_i x[i] * W[i][j]                         int32, exact
    hidden: h[j] = clamp((acc[j] * M + 2**(s - 1)) >> s, 0, 255)   64-bit, >> floors
    last:   logits[j] = acc[j];  prediction = first index of the largest logit

Storage: ``dense`` (4-row blocks the C kernel reads with SMLAD / MLA), ``dense-skip`` (the
same blocks; runs of groups of 4 inputs that are all zero are skipped) or ``sparse``
(event-driven fan-out lists: only nonzero inputs visit their nonzero weights). The blob layout
is written down in ``firmware/runtime/esnn_ann.h``; :func:`encode` / :func:`decode` implement
it. numpy only.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"EANN"
VERSION = 1
HEADER_BYTES = 16
LAYER_BYTES = 40
STORAGES = ("dense", "sparse", "dense-skip")  # byte values 0, 1, 2
MAX_PRODUCT = 255 * 128  # the largest |x * w|
INT32_MAX = 2**31 - 1


class AnnError(ValueError):
    """A malformed ANN graph or blob; the message names the field."""


def a4(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class AnnLayer:
    """``weights`` int8 ``[n_in, n_out]`` (row ``i`` = fan-out of input ``i``, as the spike
    graph), ``bias`` int32 ``[n_out]``; ``multiplier`` / ``shift`` requantize a hidden
    layer's accumulators to uint8 (0 / 0 for the last layer, whose int32 sums are the
    logits)."""

    weights: np.ndarray
    bias: np.ndarray
    multiplier: int = 0
    shift: int = 0
    storage: str = "dense"
    name: str = ""

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[1])

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.weights))


@dataclass
class AnnGraph:
    input_size: int
    layers: list[AnnLayer]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    def validate(self) -> AnnGraph:
        if not self.layers:
            raise AnnError("an ANN graph needs at least one layer")
        if len(self.layers) > 255:
            raise AnnError(f"{len(self.layers)} layers; at most 255")
        prev = self.input_size
        for li, layer in enumerate(self.layers):
            w = np.asarray(layer.weights)
            last = li == len(self.layers) - 1
            if w.ndim != 2 or w.dtype != np.int8:
                raise AnnError(f"layer {li}: weights must be int8 [n_in, n_out], got "
                               f"{w.dtype} {w.shape}")
            if not (1 <= layer.n_in <= 65535 and 1 <= layer.n_out <= 65535):
                raise AnnError(f"layer {li}: shape {w.shape}; n_in, n_out must be 1..65535")
            if layer.n_in != prev:
                raise AnnError(f"layer {li}: n_in {layer.n_in} != {prev} (previous stage)")
            if layer.storage not in STORAGES:
                raise AnnError(f"layer {li}: storage {layer.storage!r}; accepted: "
                               f"{', '.join(STORAGES)}")
            b = np.asarray(layer.bias)
            if b.shape != (layer.n_out,) or b.dtype != np.int32:
                raise AnnError(f"layer {li}: bias must be int32 [{layer.n_out}], got "
                               f"{b.dtype} {b.shape}")
            bound = INT32_MAX - MAX_PRODUCT * layer.n_in
            if b.size and int(np.abs(b.astype(np.int64)).max()) > bound:
                raise AnnError(f"layer {li}: |bias| exceeds {bound} (2^31 - 1 - 32640 * n_in: "
                               "the accumulator could overflow)")
            if last:
                if layer.n_out > 255:
                    raise AnnError(f"layer {li}: {layer.n_out} classes; at most 255")
                if layer.multiplier != 0 or layer.shift != 0:
                    raise AnnError(f"layer {li}: the last layer's multiplier/shift must be 0 "
                                   "(its int32 sums are the logits)")
            elif not (1 <= layer.multiplier <= INT32_MAX and 1 <= layer.shift <= 62):
                raise AnnError(f"layer {li}: multiplier {layer.multiplier} / shift "
                               f"{layer.shift}; accepted 1..2^31-1 / 1..62")
            prev = layer.n_out
        return self

    def macs_dense(self) -> int:
        return sum(layer.n_in * layer.n_out for layer in self.layers)

    def arena_bytes(self) -> int:
        """esnn_ann_init's arena_bytes (firmware/runtime/esnn_ann.h, "Arena")."""
        hidden = [layer.n_out for layer in self.layers[:-1]]
        runs = [a4(la.n_in) for la in self.layers if la.storage == "dense-skip"]
        acc = max(4 * a4(max(layer.n_out for layer in self.layers)), max(runs, default=0))
        return acc + 2 * a4(max(hidden, default=0))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` (> 0) as ``M / 2**s`` with ``M`` in ``[2**30, 2**31)`` (TFLite's
    QuantizeMultiplier, as one right shift); ``s`` is kept in 1..62."""
    if not (real > 0 and math.isfinite(real)):
        raise AnnError(f"requantization scale {real}; must be a finite number > 0")
    mant, exp = math.frexp(real)  # real = mant * 2**exp, mant in [0.5, 1)
    m = int(round(mant * 2**31))
    if m == 2**31:
        m //= 2
        exp += 1
    shift = 31 - exp
    while shift > 62:
        m = (m + 1) >> 1
        shift -= 1
    if shift < 1:
        raise AnnError(f"requantization scale {real} too large (shift {shift} < 1)")
    return max(1, m), shift


def requantize(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """``clamp((acc * M + 2**(s-1)) >> s, 0, 255)`` in int64, as uint8."""
    a = np.asarray(acc, dtype=np.int64)
    r = (a * np.int64(multiplier) + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    return np.clip(r, 0, 255).astype(np.uint8)


@dataclass
class AnnResult:
    pred: np.ndarray  # [B]
    logits: np.ndarray  # [B, C] int32 sums of the last layer
    macs: np.ndarray  # [B, L] multiply-accumulates (dense: n_in * n_out; sparse: visited)
    active: np.ndarray  # [B, L] inputs visited (dense: n_in; sparse: nonzero inputs)
    hidden: list[np.ndarray]  # uint8 activations of each hidden layer, [B, n_out]


def infer(graph: AnnGraph, pixels: np.ndarray) -> AnnResult:
    """Run the integer network on uint8 ``pixels [B, input_size]`` (the C runtime's twin)."""
    px = np.asarray(pixels)
    if px.ndim == 1:
        px = px[None, :]
    if px.ndim != 2 or px.shape[1] != graph.input_size:
        raise AnnError(f"pixels shape {px.shape}; expected [B, {graph.input_size}]")
    if px.dtype != np.uint8:
        raise AnnError(f"pixels dtype {px.dtype}; expected uint8")
    x = px.astype(np.int64)
    n, n_layers = len(px), len(graph.layers)
    macs = np.zeros((n, n_layers), np.int64)
    active = np.zeros((n, n_layers), np.int64)
    hidden: list[np.ndarray] = []
    acc = np.zeros((n, 0), np.int64)
    for li, layer in enumerate(graph.layers):
        w = layer.weights.astype(np.int64)
        acc = x @ w + layer.bias.astype(np.int64)
        if layer.storage == "dense":
            macs[:, li] = layer.n_in * layer.n_out
            active[:, li] = layer.n_in
        elif layer.storage == "dense-skip":  # groups of 4 (and the last 1..3) with a nonzero
            full = layer.n_in // 4
            groups = (x[:, :4 * full].reshape(n, full, 4) != 0).any(axis=2).sum(axis=1)
            tail = (x[:, 4 * full:] != 0).any(axis=1) * (layer.n_in - 4 * full)
            active[:, li] = 4 * groups + tail
            macs[:, li] = active[:, li] * layer.n_out
        else:
            nz = x != 0
            active[:, li] = nz.sum(axis=1)
            macs[:, li] = nz.astype(np.int64) @ np.count_nonzero(layer.weights, axis=1)
        if li < n_layers - 1:
            h = requantize(acc, layer.multiplier, layer.shift)
            hidden.append(h)
            x = h.astype(np.int64)
    logits = acc.astype(np.int32)
    return AnnResult(np.argmax(logits, axis=1), logits, macs, active, hidden)


# ------------------------------------------------------------------------------------------
# dense block layout


def block_positions(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For every byte of the dense block layout, its (input, output) position."""
    n_in4, n_out4 = a4(n_in), a4(n_out)
    t = np.arange(n_in4 * n_out4)
    b, t_in = t // (n_in4 * 4), t % (n_in4 * 4)
    u = t_in % 16
    i = (t_in // 16) * 4 + ((u >> 3) & 1) + ((u >> 1) & 1) * 2
    j = 4 * b + ((u >> 2) & 1) * 2 + (u & 1)
    return i, j


def pack_dense(weights: np.ndarray) -> np.ndarray:
    """int8 ``[n_in, n_out]`` -> the blocked byte order of esnn_ann.h (zero padded)."""
    n_in, n_out = weights.shape
    i, j = block_positions(n_in, n_out)
    pad = np.zeros((a4(n_in), a4(n_out)), np.int8)
    pad[:n_in, :n_out] = weights
    return pad[i, j]


def unpack_dense(blocked: np.ndarray, n_in: int, n_out: int) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_dense`; also says whether every padding byte is zero."""
    i, j = block_positions(n_in, n_out)
    pad = np.zeros((a4(n_in), a4(n_out)), np.int8)
    pad[i, j] = blocked
    clean = not pad[n_in:, :].any() and not pad[:, n_out:].any()
    return pad[:n_in, :n_out].copy(), clean


def _sparse_arrays(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """CSR by input: rowptr ``u32[n_in + 1]``, index ``u8/u16[nnz]``, weights ``int8[nnz]``."""
    n_in, n_out = weights.shape
    rows, cols = np.nonzero(weights)  # row-major: rows ascending, cols ascending per row
    rowptr = np.zeros(n_in + 1, np.uint32)
    np.cumsum(np.bincount(rows, minlength=n_in), out=rowptr[1:])
    bits = 8 if n_out <= 256 else 16
    index = cols.astype(np.uint8 if bits == 8 else "<u2")
    return rowptr, index, weights[rows, cols].astype(np.int8), bits


# ------------------------------------------------------------------------------------------
# the EANN blob


def encode(graph: AnnGraph) -> bytes:
    """The ``EANN`` blob of ``graph`` (layout: firmware/runtime/esnn_ann.h)."""
    graph.validate()
    n_layers = len(graph.layers)
    data = bytearray()
    base = HEADER_BYTES + LAYER_BYTES * n_layers
    headers = bytearray()

    def put(arr: bytes) -> int:
        off = base + len(data)
        data.extend(arr)
        data.extend(b"\0" * (a4(len(data)) - len(data)))
        return off

    for li, layer in enumerate(graph.layers):
        last = li == n_layers - 1
        off_bias = put(layer.bias.astype("<i4").tobytes())
        if layer.storage != "sparse":
            blocked = pack_dense(layer.weights)
            off_w, off_rp, off_idx = put(blocked.tobytes()), 0, 0
            nnz, idx_bits = blocked.size, 0
        else:
            rowptr, index, vals, idx_bits = _sparse_arrays(layer.weights)
            off_w = put(vals.tobytes())
            off_rp = put(rowptr.astype("<u4").tobytes())
            off_idx = put(index.tobytes())
            nnz = int(rowptr[-1])
        headers += struct.pack("<IIBBBBIiIIIII", layer.n_in, layer.n_out,
                               STORAGES.index(layer.storage), 1 if last else 0, idx_bits, 0,
                               nnz, layer.multiplier, layer.shift, off_bias, off_w, off_rp,
                               off_idx)
    body = bytes(headers) + bytes(data)
    size = HEADER_BYTES + len(body)
    head = MAGIC + struct.pack("<HHII", VERSION, n_layers, size, zlib.crc32(body))
    return head + body


def decode(blob: bytes) -> AnnGraph:
    """Read and validate an ``EANN`` blob (the checks of ``esnn_ann_init``)."""
    buf = bytes(blob)
    if len(buf) < HEADER_BYTES:
        raise AnnError(f"blob of {len(buf)} bytes is shorter than the {HEADER_BYTES}-byte header")
    if buf[:4] != MAGIC:
        raise AnnError(f"magic {buf[:4]!r}; expected {MAGIC!r}")
    version, n_layers, size, crc = struct.unpack_from("<HHII", buf, 4)
    if version != VERSION:
        raise AnnError(f"version {version}; this reader accepts {VERSION}")
    if size != len(buf) or size % 4:
        raise AnnError(f"size field {size} != blob length {len(buf)} (or not a multiple of 4)")
    if zlib.crc32(buf[16:]) != crc:
        raise AnnError("CRC-32 of bytes [16, size) does not match")
    if n_layers < 1:
        raise AnnError("n_layers is 0")
    base = HEADER_BYTES + LAYER_BYTES * n_layers
    if base > size:
        raise AnnError(f"{n_layers} layer headers extend past the blob")
    spans: list[tuple[int, int]] = []

    def array(li: int, what: str, off: int, nbytes: int) -> bytes:
        if off % 4:
            raise AnnError(f"layer {li}: {what} offset {off} not a multiple of 4")
        if off < base or off + nbytes > size:
            raise AnnError(f"layer {li}: {what} [{off}, {off + nbytes}) outside the blob's "
                           f"arrays [{base}, {size})")
        for a, b in spans:
            if nbytes and off < b and a < off + nbytes:
                raise AnnError(f"layer {li}: {what} overlaps another array")
        spans.append((off, off + nbytes))
        return buf[off:off + nbytes]

    layers = []
    for li in range(n_layers):
        (n_in, n_out, storage, output, idx_bits, res, nnz, mult, shift, off_bias, off_w,
         off_rp, off_idx) = struct.unpack_from("<IIBBBBIiIIIII", buf,
                                               HEADER_BYTES + LAYER_BYTES * li)
        last = li == n_layers - 1
        if res:
            raise AnnError(f"layer {li}: reserved fields not zero")
        if storage > 2:
            raise AnnError(f"layer {li}: storage {storage}; accepted 0 (dense), 1 (sparse), "
                           "2 (dense-skip)")
        if output != (1 if last else 0):
            raise AnnError(f"layer {li}: output kind {output}; the last layer is 1 (int32), "
                           "the others 0 (ReLU uint8)")
        if not (1 <= n_in <= 65535 and 1 <= n_out <= 65535):
            raise AnnError(f"layer {li}: n_in {n_in} / n_out {n_out} outside 1..65535")
        bias = np.frombuffer(array(li, "bias", off_bias, 4 * n_out), "<i4").astype(np.int32)
        if storage != 1:
            if idx_bits != 0 or off_rp != 0 or off_idx != 0:
                raise AnnError(f"layer {li}: dense storage with index_bits/rowptr/index set")
            if nnz != a4(n_in) * a4(n_out):
                raise AnnError(f"layer {li}: nnz {nnz} != A4(n_out) * A4(n_in)")
            blocked = np.frombuffer(array(li, "weights", off_w, nnz), np.int8)
            weights, clean = unpack_dense(blocked, n_in, n_out)
            if not clean:
                raise AnnError(f"layer {li}: nonzero dense padding weight")
        else:
            if idx_bits not in (8, 16) or (idx_bits == 8 and n_out > 256):
                raise AnnError(f"layer {li}: index_bits {idx_bits} for n_out {n_out}")
            if nnz > n_in * n_out:
                raise AnnError(f"layer {li}: nnz {nnz} > n_in * n_out")
            w = np.frombuffer(array(li, "weights", off_w, nnz), np.int8)
            rowptr = np.frombuffer(array(li, "rowptr", off_rp, 4 * (n_in + 1)), "<u4")
            if rowptr[0] != 0 or rowptr[-1] != nnz or np.any(np.diff(rowptr.astype(np.int64)) < 0):
                raise AnnError(f"layer {li}: rowptr not starting at 0, monotone and ending at nnz")
            idx = np.frombuffer(array(li, "index", off_idx, nnz * idx_bits // 8),
                                np.uint8 if idx_bits == 8 else "<u2").astype(np.int64)
            rows = np.repeat(np.arange(n_in), np.diff(rowptr.astype(np.int64)))
            if np.any(idx >= n_out):
                raise AnnError(f"layer {li}: sparse index >= n_out")
            same = rows[1:] == rows[:-1]
            if np.any(same & (idx[1:] <= idx[:-1])):
                raise AnnError(f"layer {li}: indices not strictly increasing within a row")
            if np.any(w == 0):
                raise AnnError(f"layer {li}: stored zero weight")
            weights = np.zeros((n_in, n_out), np.int8)
            weights[rows, idx] = w
        layers.append(AnnLayer(weights, bias, int(mult), int(shift), STORAGES[storage]))
    return AnnGraph(layers[0].n_in, layers).validate()


def random_ann(seed: int, input_size: int = 40, hidden: tuple[int, ...] = (24,),
               n_classes: int = 6, storage: str = "dense", density: float = 1.0) -> AnnGraph:
    """A random integer ANN whose requantization keeps hidden activity mid-range on random
    pixels (for tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    sizes = [input_size, *hidden, n_classes]
    layers = []
    for li, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = rng.integers(-128, 128, size=(a, b)).astype(np.int8)
        if density < 1.0:
            w[rng.random((a, b)) >= density] = 0
        bias = rng.integers(-2000, 2000, size=b).astype(np.int32)
        last = li == len(sizes) - 2
        mult, shift = (0, 0) if last else quantize_multiplier(
            255.0 / (40.0 * 127 * math.sqrt(a * max(density, 1e-3))))
        layers.append(AnnLayer(w, bias, mult, shift, storage))
    return AnnGraph(input_size, layers).validate()

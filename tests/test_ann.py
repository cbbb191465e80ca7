"""The int8 ANN baseline: the C runtime (firmware/runtime/esnn_ann.c, compiled on the host)
equals its numpy twin (edgesnn.graph.ann) bit for bit, and both readers reject the same
malformed blobs."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgesnn.build import SANITIZE_FLAGS, STRICT_CFLAGS, firmware_dir, runtime_sources
from edgesnn.graph import ann

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
FIELDS = ("pred", "logits", "macs", "active")


def build_tool(out: Path, sanitize: bool) -> Path:
    rt = firmware_dir() / "runtime"
    exe = out / ("ann_check_asan" if sanitize else "ann_check")
    srcs = sorted(map(str, {*runtime_sources(), rt / "esnn_ann.c"}))  # .esg reader too
    cmd = ["gcc", *STRICT_CFLAGS, "-O2", f"-I{rt}", "-DESNN_MAX_CLASSES=255",
           "-DESNN_MAX_LAYERS=8", "-DESNN_ANN_MAX_LAYERS=8",
           *(SANITIZE_FLAGS if sanitize else ()), *srcs,
           str(firmware_dir() / "ports" / "host" / "bench" / "ann_check.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return exe


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tool(tmp_path_factory.mktemp("ann"), sanitize=True)


def run_c(tool: Path, blob: bytes, pixels: np.ndarray, tmp: Path) -> dict[str, np.ndarray]:
    (tmp / "m.ann").write_bytes(blob)
    np.ascontiguousarray(pixels, dtype=np.uint8).tofile(tmp / "px.bin")
    proc = subprocess.run([str(tool), "infer", str(tmp / "m.ann"), str(tmp / "px.bin")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(pixels)
    return {k: np.array([r[k] for r in rows], dtype=np.int64) for k in FIELDS}


def c_init(tool: Path, blob: bytes, tmp: Path) -> str:
    (tmp / "m.ann").write_bytes(blob)
    proc = subprocess.run([str(tool), "init", str(tmp / "m.ann")], capture_output=True,
                          text=True, timeout=60, check=False)
    return proc.stdout.strip()


def sparse_pixels(seed: int, n: int, size: int, zero: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, size=(n, size)).astype(np.uint8)
    px[rng.random(px.shape) < zero] = 0
    px[0] = 0  # an all-zero input: every hidden accumulator is its bias
    px[1] = 255
    return px


SHAPES = [  # input_size, hidden, classes: remainders mod 4 of n_in and n_out, idx16, depth
    (40, (24,), 6), (37, (13, 7), 10), (33, (300,), 4), (9, (3,), 2), (5, (5, 6, 2), 3),
    (784, (256,), 10),
]


@pytest.mark.parametrize("storage", ["dense", "sparse", "dense-skip"])
@pytest.mark.parametrize("shape", SHAPES, ids=["-".join(map(str, [s[0], *s[1], s[2]]))
                                               for s in SHAPES])
def test_c_equals_twin(tool: Path, tmp_path: Path, storage: str,
                       shape: tuple[int, tuple[int, ...], int]) -> None:
    n_in, hidden, classes = shape
    saturated = zeros = 0
    for seed in range(3):
        graph = ann.random_ann(seed, n_in, hidden, classes, storage,
                               0.3 if storage == "sparse" else 1.0)
        pixels = sparse_pixels(100 + seed, 16, n_in)
        ref = ann.infer(graph, pixels)
        c = run_c(tool, ann.encode(graph), pixels, tmp_path)
        for k in FIELDS:
            assert np.array_equal(c[k], getattr(ref, k)), f"seed {seed}: {k} differs"
        saturated += sum(int((h == 255).sum()) for h in ref.hidden)
        zeros += sum(int((h == 0).sum()) for h in ref.hidden)
        if storage != "dense":  # sample 0 is all zero: nothing of layer 0 is visited
            assert ref.active[0, 0] == 0 and ref.macs[0, 0] == 0
            assert ref.active[1, 0] == n_in  # sample 1 is all 255
    assert saturated > 0 and zeros > 0, "requantization never clamped: a vacuous comparison"


def test_twin_independent_of_storage() -> None:
    """Dense and sparse storage of the same weights give the same logits; only the MACs
    differ (sparse: nonzero inputs times their stored fan-out)."""
    graph = ann.random_ann(5, 50, (30,), 7, "dense", 0.25)
    pixels = sparse_pixels(5, 10, 50)
    dense = ann.infer(graph, pixels)
    for layer in graph.layers:
        layer.storage = "sparse"
    sparse = ann.infer(graph, pixels)
    assert np.array_equal(dense.logits, sparse.logits)
    graph.layers[0].storage = "dense-skip"
    skip = ann.infer(graph, pixels)
    assert np.array_equal(dense.logits, skip.logits)
    groups = (pixels[:, :48].reshape(-1, 12, 4) != 0).any(axis=2).sum(axis=1)
    want_active = 4 * groups + 2 * (pixels[:, 48:] != 0).any(axis=1)
    assert np.array_equal(skip.active[:, 0], want_active)
    assert np.array_equal(skip.macs[:, 0], want_active * 30)
    x0 = pixels.astype(np.int64) != 0
    want = x0 @ np.count_nonzero(graph.layers[0].weights, axis=1)
    assert np.array_equal(sparse.macs[:, 0], want)
    assert np.all(dense.macs[:, 0] == 50 * 30)


def test_requantize_rounding_and_clamp() -> None:
    """(acc * M + 2^(s-1)) >> s: ties go up, negatives floor, clamp to 0..255."""
    m, s = 1 << 30, 31  # x 0.5
    acc = np.array([1, 2, 3, 5, -1, -3, 510, 511, 100000], np.int64)
    assert ann.requantize(acc, m, s).tolist() == [1, 1, 2, 3, 0, 0, 255, 255, 255]
    for real in (1e-5, 0.0123, 0.37, 0.5, 0.999, 1.0, 3.5):
        mult, shift = ann.quantize_multiplier(real)
        assert 1 <= shift <= 62 and 2**30 <= mult < 2**31
        assert abs(mult / 2.0**shift - real) <= real * 2.0**-30
    with pytest.raises(ann.AnnError, match="scale"):
        ann.quantize_multiplier(0.0)


def test_encode_decode_roundtrip() -> None:
    for storage in ("dense", "sparse"):
        graph = ann.random_ann(3, 33, (300, 5), 4, storage, 0.4)
        back = ann.decode(ann.encode(graph))
        for a, b in zip(graph.layers, back.layers, strict=True):
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
            assert (a.multiplier, a.shift, a.storage) == (b.multiplier, b.shift, b.storage)


def _patch(blob: bytes, off: int, fmt: str, value: int, fix_crc: bool = True) -> bytes:
    buf = bytearray(blob)
    struct.pack_into(fmt, buf, off, value)
    if fix_crc:
        struct.pack_into("<I", buf, 12, zlib.crc32(bytes(buf[16:])))
    return bytes(buf)


def _layer_field(blob: bytes, layer: int, off: int) -> int:
    return 16 + 40 * layer + off


def test_malformed_blobs_rejected_by_both(tool: Path, tmp_path: Path) -> None:
    dense = ann.encode(ann.random_ann(1, 10, (6,), 3, "dense"))
    sparse = ann.encode(ann.random_ann(2, 10, (6,), 3, "sparse", 0.5))
    h_off = _layer_field(dense, 0, 24)
    (off_bias,) = struct.unpack_from("<I", dense, h_off)
    (off_w_dense,) = struct.unpack_from("<I", dense, _layer_field(dense, 0, 28))
    (off_w_sparse,) = struct.unpack_from("<I", sparse, _layer_field(sparse, 0, 28))
    (off_rp,) = struct.unpack_from("<I", sparse, _layer_field(sparse, 0, 32))
    (off_idx,) = struct.unpack_from("<I", sparse, _layer_field(sparse, 0, 36))
    cases = {
        "MAGIC": _patch(dense, 0, "<B", ord("X")),
        "VERSION": _patch(dense, 4, "<H", 2),
        "FILE_SIZE": dense + b"\0\0\0\0",
        "SECTION_CRC": _patch(dense, 40, "<B", 1, fix_crc=False),
        "RANGE": _patch(dense, _layer_field(dense, 0, 20), "<I", 63),  # shift > 62
        "ENUM": _patch(dense, _layer_field(dense, 0, 8), "<B", 3),  # storage
        "SHAPE": _patch(dense, _layer_field(dense, 1, 0), "<I", 5),  # n_in != previous n_out
        "SIZE": _patch(dense, _layer_field(dense, 0, 12), "<I", 12),
        "ALIGN": _patch(dense, h_off, "<I", off_bias + 2),
        "ARRAY_BOUNDS": _patch(dense, h_off, "<I", len(dense)),
        "OVERLAP": _patch(dense, h_off, "<I", off_w_dense),
        "RESERVED": _patch(dense, _layer_field(dense, 0, 11), "<B", 1),
        "SIZE/index": _patch(dense, _layer_field(dense, 0, 36), "<I", off_bias),
        # a nonzero padding weight: block 1 (48 bytes in) holds rows 4..7 and rows 6, 7 are
        # padding for n_out = 6; byte 5 of a group is row ((5 >> 2) & 1) * 2 + (5 & 1) = 3
        "RANGE/padding": _patch(dense, off_w_dense + 12 * 4 * 1 + 0 * 16 + 5, "<b", 3),
        "ROWPTR": _patch(sparse, off_rp + 4, "<I", 10**6),
        "INDEX": _patch(sparse, off_idx, "<B", 200),
        "INDEX/order": _patch(sparse, off_idx + 1, "<B", 0),
        "RANGE/zero": _patch(sparse, off_w_sparse + 1, "<b", 0),
        "RANGE/bias": _patch(dense, off_bias, "<i", 2**31 - 1),
    }
    for name, blob in cases.items():
        want = "ERR_" + name.split("/")[0]
        got = c_init(tool, blob, tmp_path)
        assert got == want, f"{name}: C says {got}"
        with pytest.raises(ann.AnnError):
            ann.decode(blob)
    assert c_init(tool, dense, tmp_path) == "OK" and c_init(tool, sparse, tmp_path) == "OK"


def test_graph_validation_names_the_field() -> None:
    graph = ann.random_ann(0, 8, (4,), 3)
    graph.layers[0].bias = graph.layers[0].bias.astype(np.int64)
    with pytest.raises(ann.AnnError, match="bias must be int32"):
        graph.validate()
    graph = ann.random_ann(0, 8, (4,), 3)
    graph.layers[1].multiplier = 5
    with pytest.raises(ann.AnnError, match="last layer"):
        graph.validate()
    with pytest.raises(ann.AnnError, match="pixels dtype"):
        ann.infer(ann.random_ann(0, 8, (4,), 3), np.zeros((1, 8), np.int32))

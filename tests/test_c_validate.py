"""The C validator (esnn_model_init) against the conformance vectors and targeted mutations.

* every file of exporters/spikegraph/vectors/invalid/ is rejected with a status whose
  EsgError category (the comment on its line of esnn_status.def) is the vector's reason;
* every valid vector is accepted and its recorded golden outputs are reproduced;
* targeted mutations of freshly encoded graphs get the exact status expected, and the Python
  reader rejects the same files in the same category;
* the libFuzzer corpus replays cleanly through a gcc AddressSanitizer/UBSan build.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgesnn._resources import exporters_dir, firmware_dir
from edgesnn.build import SANITIZE_FLAGS, STRICT_CFLAGS, build_check_tool, runtime_sources
from edgesnn.graph import esg
from edgesnn.graph.synth import random_graph

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

VECTORS = exporters_dir() / "spikegraph" / "vectors"
STATUS_DEF = firmware_dir() / "runtime" / "esnn_status.def"
_LINE = re.compile(r'^ESNN_STATUS\((\w+), (\d+), "[^"]*"\)(?: /\* (\w+) \*/)?$')

def _status_table() -> tuple[dict[str, int], dict[int, str | None]]:
    names: dict[str, int] = {}
    category: dict[int, str | None] = {}
    for line in STATUS_DEF.read_text().splitlines():
        if line.startswith("ESNN_STATUS("):
            m = _LINE.match(line)
            assert m, f"esnn_status.def line not in the one-line format: {line}"
            name, num, cat = m.group(1), int(m.group(2)), m.group(3)
            assert name not in names and num not in category, f"duplicate status {line}"
            names[name] = num
            category[num] = cat
    return names, category


STATUS, CATEGORY = _status_table()


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_check_tool(tmp_path_factory.mktemp("esnn_check"))


def validate(tool: Path, paths: list[Path]) -> dict[str, int]:
    proc = subprocess.run([str(tool), "validate", *map(str, paths)], capture_output=True,
                          text=True, timeout=60, check=True)
    out = {}
    for line in proc.stdout.splitlines():
        code, _name, path = line.split(" ", 2)
        out[Path(path).name] = int(code)
    return out


def test_status_def_is_one_consistent_list() -> None:
    assert STATUS["OK"] == 0
    assert sorted(CATEGORY) == list(range(len(CATEGORY))), "status numbers must be 0..N-1"
    for num, cat in CATEGORY.items():
        assert cat is None or cat in esg.CATEGORIES, f"status {num}: unknown category {cat}"
    for needed in ("ERR_FRAME_CRC", "ERR_INPUT_SIZE", "ERR_UNKNOWN_TYPE"):  # PROTOCOL.md
        assert needed in STATUS


def test_invalid_vectors_rejected_with_their_category(tool: Path) -> None:
    index = json.loads((VECTORS / "invalid" / "index.json").read_text())["vectors"]
    assert len(index) >= 40
    got = validate(tool, [VECTORS / "invalid" / v["file"] for v in index])
    checked = 0
    for v in index:
        status = got[v["file"]]
        if v["host_only"]:
            assert status == 0 or CATEGORY[status] == v["reason"], v["file"]
            continue
        assert status != 0, f"{v['file']} ({v['reason']}: {v['message']}) was accepted"
        assert CATEGORY[status] == v["reason"], (
            f"{v['file']}: C status {status} is category {CATEGORY[status]}, "
            f"vector reason {v['reason']} ({v['message']})")
        checked += 1
    host_only = {v["file"] for v in index if v["host_only"]}
    by_name = {v["file"].split("_", 1)[1]: v["file"] for v in index}
    assert by_name["meta_not_json.esg"] in host_only  # SPEC 5.5: the C runtime does not parse META
    # SPEC 5.4: every reader rejects a stored zero, and a 2- but not 4-aligned array
    assert by_name["sparse_zero_weight.esg"] not in host_only
    assert by_name["array_2_aligned.esg"] not in host_only
    assert checked == len(index) - len(host_only) and checked >= len(index) - 3


def test_valid_vectors_accepted_and_reproduced(tool: Path, tmp_path: Path) -> None:
    files = sorted((VECTORS / "valid").glob("*.esg"))
    assert files
    assert set(validate(tool, files).values()) == {0}
    for path in files:
        meta = json.loads(path.with_suffix(".json").read_text())
        px = tmp_path / "px.bin"
        np.asarray(meta["pixels"], dtype=np.uint8).tofile(px)
        proc = subprocess.run([str(tool), "infer", str(path), str(px)], capture_output=True,
                              text=True, timeout=60, check=True)
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        for key, want in meta["expected"].items():
            assert [r[key] for r in rows] == want, f"{path.name}: {key}"


# ---------------------------------------------------------------------------------- mutations


def _u32(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", buf, off, value & 0xFFFFFFFF)


def _section(buf: bytearray, k: int) -> tuple[int, int]:
    _, off, size, _ = struct.unpack_from("<IIII", buf, 64 + 16 * k)
    return off, size


def _layer_field(k: int, field_off: int, value: int, width: int = 4) -> Callable[[bytearray], None]:
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        struct.pack_into({1: "<B", 2: "<H", 4: "<I"}[width], buf, off + field_off, value)
    return mutate


def _graph_field(field_off: int, value: int, width: int = 4) -> Callable[[bytearray], None]:
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 0)
        struct.pack_into({1: "<B", 2: "<H", 4: "<I"}[width], buf, off + field_off, value)
    return mutate


def _layer_array(k: int, field_off: int, value: int, index: int = 0) -> Callable[[bytearray], None]:
    """Set element ``index`` (u32) of the array whose offset is at ``field_off``."""
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        arr = struct.unpack_from("<I", buf, off + field_off)[0]
        _u32(buf, off + arr + 4 * index, value)
    return mutate


def _layer_offset_to(k: int, field_off: int, other_off: int) -> Callable[[bytearray], None]:
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        _u32(buf, off + field_off, struct.unpack_from("<I", buf, off + other_off)[0])
    return mutate


def _sparse_index(k: int, entry: int, value: int) -> Callable[[bytearray], None]:
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        bits = buf[off + 12]
        o_index = struct.unpack_from("<I", buf, off + 32)[0]
        struct.pack_into("<B" if bits == 8 else "<H", buf, off + o_index + entry * bits // 8,
                         value)
    return mutate


def _copy_index(k: int, dst: int, src: int) -> Callable[[bytearray], None]:
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        o_index = struct.unpack_from("<I", buf, off + 32)[0]
        buf[off + o_index + dst] = buf[off + o_index + src]
    return mutate


def _sparse_weight(k: int, entry: int, value: int) -> Callable[[bytearray], None]:
    """Set the stored weight of sparse entry ``entry`` (int8 byte or int4 nibble; negative
    counts from the last entry)."""
    def mutate(buf: bytearray) -> None:
        off, _ = _section(buf, 1 + k)
        o_w = off + struct.unpack_from("<I", buf, off + 36)[0]
        entry_k = entry % struct.unpack_from("<I", buf, off + 16)[0]
        if buf[off + 10] == 8:
            buf[o_w + entry_k] = value & 0xFF
        else:
            shift = 4 * (entry_k & 1)
            byte = buf[o_w + entry_k // 2] & ~(0xF << shift)
            buf[o_w + entry_k // 2] = byte | ((value & 0xF) << shift)
    return mutate


def _dense_nibble(buf: bytearray) -> None:
    off, _ = _section(buf, 1)
    o_w = struct.unpack_from("<I", buf, off + 36)[0]
    n_out = struct.unpack_from("<I", buf, off + 4)[0]
    buf[off + o_w + (n_out + 1) // 2 - 1] |= 0x80  # high nibble of row 0's last byte


def _padding(buf: bytearray) -> None:
    count = struct.unpack_from("<I", buf, 16)[0]
    for k in range(count):
        off, size = _section(buf, k)
        if size % 8:
            buf[off + size] = 1
            return
    raise AssertionError("no padding byte in this file")


# name -> (graph kind, mutation, expected C status, refresh CRCs)
MUTATIONS: dict[str, tuple[str, Callable[[bytearray], None], str, bool]] = {
    "graph_arena_bytes": ("dense8", _graph_field(16, 8), "ERR_ARENA_BYTES", True),
    "graph_n_layers_255": ("dense8", _graph_field(4, 255, 2), "ERR_SHAPE", True),
    "graph_seed_is_free": ("dense8", _graph_field(12, 0xDEADBEEF), "OK", True),
    "layer_n_in": ("dense8", _layer_field(0, 0, 21), "ERR_SHAPE", True),
    "layer_n_out_big": ("dense8", _layer_field(0, 4, 70000), "ERR_RANGE", True),
    "layer_index_bits_8": ("dense8", _layer_field(0, 12, 8, 1), "ERR_ENUM", True),
    "layer_thr_flag_2": ("dense8", _layer_field(0, 13, 2, 1), "ERR_ENUM", True),
    "layer_thr_align": ("dense8", _layer_field(0, 20, 50), "ERR_ALIGN", True),
    "layer_thr_past_end": ("dense8", _layer_field(0, 20, 1 << 20), "ERR_ARRAY_BOUNDS", True),
    "layer_leak_on_weights": ("dense8", _layer_offset_to(0, 24, 36), "ERR_OVERLAP", True),
    "layer_weights_bytes": ("dense8", _layer_field(1, 40, 1), "ERR_SIZE", True),
    "threshold_negative": ("dense8", _layer_array(1, 20, 0x80000000), "ERR_THRESHOLD", True),
    "leak_65537": ("dense8", _layer_array(0, 24, 65537), "ERR_LEAK", True),
    "if_leak_65535": ("if", _layer_array(0, 24, 65535), "ERR_LEAK", True),
    "rowptr_start": ("sparse4", _layer_array(0, 28, 3, 0), "ERR_ROWPTR", True),
    "index_out_of_range": ("sparse4", _sparse_index(0, 0, 200), "ERR_INDEX", True),
    "index_repeated": ("sparse4", _copy_index(0, 1, 0), "ERR_INDEX", True),
    "dense_int4_nibble": ("dense4", _dense_nibble, "ERR_NIBBLE", True),
    "sparse4_zero_low_nibble": ("sparse4", _sparse_weight(0, 0, 0), "ERR_RANGE", True),
    "sparse4_zero_high_nibble": ("sparse4", _sparse_weight(0, 1, 0), "ERR_RANGE", True),
    "sparse8_zero_last": ("sparse8", _sparse_weight(0, -1, 0), "ERR_RANGE", True),
    "sparse8_weight_minus_128": ("sparse8", _sparse_weight(0, 3, -128), "OK", True),
    "padding": ("dense4", _padding, "ERR_PADDING", True),
    "payload_crc": ("dense8", lambda b: b.__setitem__(_section(b, 1)[0] + 60,
                                                      b[_section(b, 1)[0] + 60] ^ 1),
                    "ERR_SECTION_CRC", False),
    "count_1": ("dense8", lambda b: _u32(b, 16, 1), "ERR_SECTION_COUNT", True),
    "table_offset": ("dense8", lambda b: _u32(b, 20, 72), "ERR_HEADER_SIZE", True),
    "version_minor_7": ("dense8", lambda b: struct.pack_into("<H", b, 6, 7), "OK", True),
    # biases (version 1.1): off_bias at 44, int32[n_out] within +-(2^23 - 1)
    "bias_max": ("bias8", _layer_array(0, 44, (1 << 23) - 1, 2), "OK", True),
    "bias_min": ("bias8", _layer_array(0, 44, 1 - (1 << 23), 1), "OK", True),
    "bias_too_big": ("bias8", _layer_array(0, 44, 1 << 23, 2), "ERR_RANGE", True),
    "bias_too_small": ("bias8", _layer_array(1, 44, -(1 << 23), 0), "ERR_RANGE", True),
    "bias_misaligned": ("bias8", lambda b: _layer_field(0, 44, struct.unpack_from(
        "<I", b, _section(b, 1)[0] + 44)[0] + 2)(b), "ERR_ALIGN", True),
    "bias_on_weights": ("bias8", _layer_offset_to(0, 44, 36), "ERR_OVERLAP", True),
    "bias_in_header": ("bias8", _layer_field(0, 44, 40), "ERR_ARRAY_BOUNDS", True),
    # the peers' rules (version 1.3): reset 0..3, fire 0 (>) or 1 (>=) at byte 15
    "reset_delayed": ("dense8", _layer_field(0, 9, 2, 1), "OK", True),
    "reset_none": ("dense8", _layer_field(0, 9, 3, 1), "OK", True),
    "reset_4": ("dense8", _layer_field(0, 9, 4, 1), "ERR_ENUM", True),
    "fire_ge": ("dense8", _layer_field(1, 15, 1, 1), "OK", True),
    "fire_2": ("dense8", _layer_field(1, 15, 2, 1), "ERR_ENUM", True),
}


def _graph(kind: str) -> bytes:
    common = {"input_size": 20, "hidden": (11,), "n_classes": 5, "steps": 4}
    if kind == "dense8":
        g = random_graph(1, **common)
    elif kind == "dense4":
        g = random_graph(2, weight_bits=4, **common)
    elif kind == "sparse8":
        g = random_graph(5, storage="sparse", density=0.5, **common)
    elif kind == "bias8":
        g = random_graph(6, bias=True, **common)
    elif kind == "if":
        g = random_graph(3, neuron="if", **common)
    else:
        g = random_graph(4, storage="sparse", weight_bits=4, density=0.5, **common)
    return esg.encode(g)


def test_targeted_mutations(tool: Path, tmp_path: Path) -> None:
    paths = []
    for name, (kind, mutate, _status, refresh) in MUTATIONS.items():
        buf = bytearray(_graph(kind))
        mutate(buf)
        data = esg.refresh_checksums(bytes(buf)) if refresh else bytes(buf)
        path = tmp_path / f"{name}.esg"
        path.write_bytes(data)
        paths.append(path)
    got = validate(tool, paths)
    for name, (_kind, _mutate, status, _refresh) in MUTATIONS.items():
        assert got[f"{name}.esg"] == STATUS[status], f"{name}: got {got[f'{name}.esg']}"
        data = (tmp_path / f"{name}.esg").read_bytes()
        if status == "OK":
            esg.decode(data)
        else:
            with pytest.raises(esg.EsgError) as exc:
                esg.decode(data)
            assert exc.value.category == CATEGORY[STATUS[status]], name


def test_every_truncation_rejected(tool: Path, tmp_path: Path) -> None:
    data = _graph("sparse4")
    paths = []
    for n in range(0, len(data), 8):
        p = tmp_path / f"cut{n:05d}.esg"
        p.write_bytes(data[:n])
        paths.append(p)
    got = validate(tool, paths)
    assert all(code != 0 for code in got.values())


def test_fuzz_corpus_replays_clean_under_asan(tmp_path: Path) -> None:
    corpus = sorted((firmware_dir() / "fuzz" / "corpus").iterdir())
    assert len(corpus) >= 10, "firmware/fuzz/corpus is missing its seeds"
    exe = tmp_path / "fuzz_replay"
    rt = firmware_dir() / "runtime"
    subprocess.run(["gcc", *STRICT_CFLAGS, "-O1", *SANITIZE_FLAGS, "-DESNN_FUZZ_REPLAY",
                    "-DESNN_MAX_LAYERS=255", "-DESNN_MAX_CLASSES=255", f"-I{rt}",
                    *map(str, runtime_sources()), str(firmware_dir() / "fuzz" / "fuzz_esg.c"),
                    "-o", str(exe)], check=True, timeout=120, capture_output=True)
    proc = subprocess.run([str(exe), *map(str, corpus)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"replayed {len(corpus)} files" in proc.stdout

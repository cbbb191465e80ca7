"""The int8 ANN baseline stored in a .esg (SPEC.md 5.6, section kind 4 ANN, version 1.2):
the Python reader/writer round-trip it, both readers enforce its place in the section order,
and the C runtime hands its payload to esnn_ann_init (inference equal to the numpy twin)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesnn.graph import ann, esg
from edgesnn.graph.ir import GraphError
from edgesnn.graph.synth import random_graph
from tests.test_ann import build_tool, sparse_pixels


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tool(tmp_path_factory.mktemp("ann_esg"), sanitize=True)


def graph_with_ann(storage: str = "sparse") -> esg.SpikeGraph:
    graph = random_graph(4, input_size=40, hidden=(16,), n_classes=5, steps=6)
    graph.ann = ann.random_ann(4, 40, (24,), 5, storage, 0.4)
    graph.metadata = {"name": "with-ann"}
    return graph.validate()


def sections(data: bytes) -> list[tuple[int, bytes]]:
    count = esg.header_field(data, "section_count")
    out = []
    for k in range(count):
        kind, off, size, _ = esg.ENTRY.struct.unpack_from(
            data, esg.HEADER_SIZE + esg.ENTRY_SIZE * k)
        out.append((kind, data[off:off + size]))
    return out


def rebuild(parts: list[tuple[int, bytes]], minor: int = 2) -> bytes:
    """A well-formed container (CRCs, hash, placement) around ``parts`` in the given order."""
    table, body = bytearray(), bytearray()
    pos = esg._a8(esg.HEADER_SIZE + esg.ENTRY_SIZE * len(parts))
    for kind, blob in parts:
        table += esg.ENTRY.struct.pack(kind, pos, len(blob), esg.crc32(blob))
        body += blob + b"\0" * (esg._a8(len(blob)) - len(blob))
        pos += esg._a8(len(blob))
    gap = esg._a8(esg.HEADER_SIZE + len(table)) - esg.HEADER_SIZE - len(table)
    after = bytes(table) + b"\0" * gap + bytes(body)
    return esg._finish_header(esg.HEADER_SIZE + len(after), len(parts), esg.crc32(bytes(table)),
                              after, minor)


def c_run(tool: Path, cmd: str, data: bytes, pixels: np.ndarray,
          tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "m.bin").write_bytes(data)
    np.ascontiguousarray(pixels, dtype=np.uint8).tofile(tmp / "px.bin")
    return subprocess.run([str(tool), cmd, str(tmp / "m.bin"), str(tmp / "px.bin")],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("storage", ["dense", "sparse"])
def test_roundtrip_and_c_runs_the_section(tool: Path, tmp_path: Path, storage: str) -> None:
    graph = graph_with_ann(storage)
    data = esg.encode(graph)
    assert esg.header_field(data, "version_minor") == 2
    kinds = [k for k, _ in sections(data)]
    assert kinds == [esg.KIND_GRAPH, esg.KIND_LAYER, esg.KIND_LAYER, esg.KIND_ANN, esg.KIND_META]
    assert dict(sections(data))[esg.KIND_ANN] == ann.encode(graph.ann)
    back = esg.decode(data)
    assert back == graph and back.ann is not None
    pixels = sparse_pixels(7, 9, 40)
    proc = c_run(tool, "esg", data, pixels, tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    ref = ann.infer(graph.ann, pixels)
    for key in ("pred", "logits", "macs", "active"):
        assert np.array_equal(np.array([r[key] for r in rows]), getattr(ref, key)), key
    # without a baseline nothing changes: no ANN section, and the minor stays 0
    graph.ann = None
    plain = esg.encode(graph)
    assert esg.header_field(plain, "version_minor") == 0
    assert esg.KIND_ANN not in [k for k, _ in sections(plain)]
    assert "no ANN section" in c_run(tool, "esg", plain, pixels, tmp_path).stderr


def test_section_order_enforced_by_both(tool: Path, tmp_path: Path) -> None:
    parts = sections(esg.encode(graph_with_ann()))
    graph_p, l0, l1, ann_p, meta = parts
    pixels = sparse_pixels(1, 2, 40)
    for label, order in (("ANN before a LAYER", [graph_p, l0, ann_p, l1, meta]),
                         ("ANN right after GRAPH", [graph_p, ann_p, l0, l1, meta]),
                         ("two ANN sections", [graph_p, l0, l1, ann_p, ann_p, meta]),
                         ("ANN after META", [graph_p, l0, l1, meta, ann_p])):
        data = rebuild(order)
        with pytest.raises(esg.EsgError) as info:
            esg.decode(data)
        assert info.value.category == "shape", label
        proc = c_run(tool, "esg", data, pixels, tmp_path)
        assert proc.returncode != 0 and "not GRAPH, LAYER" in proc.stderr, label
    ok = rebuild([graph_p, l0, l1, ann_p])  # without META
    assert esg.decode(ok).ann is not None
    assert c_run(tool, "esg", ok, pixels, tmp_path).returncode == 0


def test_bad_ann_payload(tool: Path, tmp_path: Path) -> None:
    graph_p, l0, l1, ann_p, meta = sections(esg.encode(graph_with_ann()))
    bad = bytearray(ann_p[1])
    bad[0] = ord("X")  # the section CRC is recomputed: only the EANN magic is wrong
    data = rebuild([graph_p, l0, l1, (esg.KIND_ANN, bytes(bad)), meta])
    with pytest.raises(esg.EsgError, match="ANN: magic") as info:
        esg.decode(data)
    assert info.value.category == "value"
    proc = c_run(tool, "esg", data, sparse_pixels(1, 2, 40), tmp_path)
    assert proc.returncode != 0 and "magic" in proc.stderr
    other = ann.encode(ann.random_ann(4, 40, (24,), 6))  # 6 classes, the graph has 5
    with pytest.raises(esg.EsgError, match="6 classes") as info:
        esg.decode(rebuild([graph_p, l0, l1, (esg.KIND_ANN, other), meta]))
    assert info.value.category == "shape"
    g = graph_with_ann()
    g.ann = ann.random_ann(4, 41, (24,), 5)
    with pytest.raises(GraphError, match="ANN baseline"):
        g.validate()

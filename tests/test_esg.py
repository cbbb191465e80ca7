"""The .esg writer/reader: exact round trips, every SPEC.md section 6 rejection, vectors."""

from __future__ import annotations

import importlib.util
import itertools
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgesnn.graph import (
    EsgError,
    GraphError,
    decode,
    describe,
    encode,
    model_hash,
    read_esg,
    simulate,
    write_esg,
)
from edgesnn.graph.esg import CATEGORIES, refresh_checksums
from edgesnn.graph.synth import random_graph

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "exporters" / "spikegraph" / "vectors"


def _load_make_vectors():  # tests/golden is not a package
    spec = importlib.util.spec_from_file_location("make_vectors",
                                                  ROOT / "tests" / "golden" / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


mv = _load_make_vectors()

COMBOS = list(itertools.product(("rate", "latency", "direct"), ("lif", "if"),
                                ("subtract", "zero"), (8, 4), ("dense", "sparse"),
                                (False, True)))


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(map(str, c)) for c in COMBOS])
def test_roundtrip_is_exact(combo: tuple) -> None:
    encoder, neuron, reset, bits, storage, per_neuron = combo
    seed = COMBOS.index(combo)
    hidden = [(), (7,), (300, 9), (5, 6)][seed % 4]  # 300 > 256 -> 16-bit sparse indices
    g = random_graph(seed, input_size=13 + seed % 3, hidden=hidden, n_classes=3 + seed % 2,
                     encoder=encoder, neuron=neuron, reset=reset, weight_bits=bits,
                     storage=storage, per_neuron=per_neuron, density=0.4)
    if seed % 2:
        g.layers[0].name = f"fc_{seed}"
    data = encode(g)
    assert len(data) % 8 == 0 and data[:4] == b"ESNG"
    back = decode(data)
    assert back == g
    assert encode(back) == data  # canonical: same graph, same bytes
    assert model_hash(data) == data[32:48]


def test_equal_graphs_differ_only_where_they_should() -> None:
    g = random_graph(3, storage="sparse", density=0.5)
    h = decode(encode(g))
    h.layers[-1].weights[0, 0] += 1 if h.layers[-1].weights[0, 0] < 0 else -1
    assert h != g
    assert model_hash(encode(h)) != model_hash(encode(g))


def test_index_bits_follow_n_out() -> None:
    small = random_graph(1, hidden=(256,), storage="sparse", density=0.2)
    big = random_graph(1, hidden=(257,), storage="sparse", density=0.2)
    assert [lay["index_bits"] for lay in describe(encode(small))["layers"]] == [8, 8]
    assert [lay["index_bits"] for lay in describe(encode(big))["layers"]] == [16, 8]
    raw = encode(big)
    assert raw[mv.layer_at(raw, 0) + 12] == 16 and raw[mv.layer_at(raw, 1) + 12] == 8


@pytest.mark.parametrize("case", mv.targeted_mutations(), ids=lambda c: c[1][0])
def test_each_fault_is_rejected_with_its_class(case: tuple) -> None:
    base, (name, reason, mutate) = case
    data = encode(mv.base_graphs()[base])
    decode(data)  # the base is valid
    bad = mutate(data)
    with pytest.raises(EsgError) as info:
        decode(bad)
    assert info.value.category == reason, str(info.value)
    assert isinstance(info.value, ValueError)
    assert len(str(info.value).splitlines()) == 1
    if name.startswith(("layer_", "array", "threshold", "if_leak", "rowptr", "index",
                        "sparse_")):
        assert "layer 0" in str(info.value)


def test_hash_check_is_host_only_and_optional() -> None:
    data = encode(random_graph(4))
    bad = mv.fix_header_crc(mv.put(data, 40, "B", data[40] ^ 1))
    with pytest.raises(EsgError, match="model_hash"):
        decode(bad)
    assert decode(bad, check_hash=False) == decode(data)


def test_huge_counts_are_rejected_before_allocating() -> None:
    data = encode(random_graph(5, storage="sparse", density=0.3))
    for rel, value in ((0, 65535), (4, 65535), (16, 0xFFFFFFFF), (40, 0xFFFFFFF0)):
        bad = mv.layer_field(data, 0, rel, "I", value)
        start = time.perf_counter()
        with pytest.raises(EsgError):
            decode(bad)
        assert time.perf_counter() - start < 0.5
    bad = refresh_checksums(mv.put(data, 16, "I", 0xFFFFFFFF))  # section_count
    with pytest.raises(EsgError, match="section_count"):
        decode(bad)


def test_write_is_atomic_and_read_names_the_file(tmp_path: Path) -> None:
    g = random_graph(6)
    path = tmp_path / "m.esg"
    data = write_esg(g, path)
    assert path.read_bytes() == data and read_esg(path) == g
    broken = random_graph(7)
    broken.layers[0].threshold = np.array([-5])
    with pytest.raises(GraphError):
        write_esg(broken, path)
    assert path.read_bytes() == data  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.esg"]  # no temp file left
    (tmp_path / "bad.esg").write_bytes(data[:-8])
    with pytest.raises(EsgError, match="bad.esg"):
        read_esg(tmp_path / "bad.esg")


def test_describe_reports_what_inspect_needs() -> None:
    g = random_graph(8, input_size=30, hidden=(20,), n_classes=4, storage="sparse",
                     density=0.5, weight_bits=4)
    g.metadata["name"] = "demo"
    data = encode(g)
    info = describe(data)
    json.dumps(info)  # JSON-able
    assert info["arena_bytes"] == g.arena_bytes() == struct.unpack_from(
        "<I", data, mv.section(data, 0)[1] + 16)[0]
    assert info["model_hash"] == model_hash(data).hex() and info["file_bytes"] == len(data)
    assert [s["kind"] for s in info["sections"]] == ["GRAPH", "LAYER", "LAYER", "META"]
    lay = info["layers"][0]
    assert (lay["n_in"], lay["n_out"], lay["weight_bits"], lay["storage"]) == (30, 20, 4,
                                                                              "SPARSE")
    assert lay["nnz"] == int(np.count_nonzero(g.layers[0].weights))
    assert 0.3 < lay["sparsity"] < 0.7
    assert info["metadata"]["name"] == "demo"


def test_valid_vectors_reproduce() -> None:
    files = sorted((VECTORS / "valid").glob("*.esg"))
    assert len(files) >= 4
    for esg in files:
        data = esg.read_bytes()
        assert len(data) < 50_000
        spec = json.loads(esg.with_suffix(".json").read_text())
        g = decode(data)
        assert encode(g) == data
        res = simulate(g, np.array(spec["pixels"], dtype=np.uint8))
        assert res.to_json() == spec["expected"], esg.name
        assert g == random_graph(spec["graph_seed"], **{
            k: tuple(v) if isinstance(v, list) else v for k, v in spec["random_graph"].items()})


def test_invalid_vectors_are_rejected_as_indexed() -> None:
    index = json.loads((VECTORS / "invalid" / "index.json").read_text())["vectors"]
    assert len(index) >= 40
    assert {v["reason"] for v in index} >= set(CATEGORIES)
    for v in index:
        blob = (VECTORS / "invalid" / v["file"]).read_bytes()
        with pytest.raises(EsgError) as info:
            decode(blob)
        assert info.value.category == v["reason"], v["file"]


def _cli(argv: list[str]) -> int:
    """Run one command the way ``edgesnn.cli.main`` does, without importing every command
    (the training commands import torch, which takes seconds on a loaded machine)."""
    import argparse

    from edgesnn.cli import CliError
    from edgesnn.commands import export as export_cmd
    from edgesnn.commands import inspect as inspect_cmd

    parser = argparse.ArgumentParser(prog="edgesnn")
    sub = parser.add_subparsers(dest="command")
    inspect_cmd.register(sub)
    export_cmd.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edgesnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


def test_inspect_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = random_graph(9, hidden=(12,), storage="sparse", density=0.5)
    path = tmp_path / "m.esg"
    data = write_esg(g, path)
    assert _cli(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_hash"] == data[32:48].hex()
    assert [lay["n_out"] for lay in info["layers"]] == [12, 5]
    assert _cli(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "arena" in out and "12" in out and data[32:48].hex() in out
    (tmp_path / "bad.esg").write_bytes(b"ESNG" + data[4:100])
    assert _cli(["inspect", str(tmp_path / "bad.esg")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "file_size" in err


def test_export_esg_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert _cli(["export", str(run), "--target", "esg", "--out", str(tmp_path / "o.esg")]) == 2
    assert "edgesnn compress" in capsys.readouterr().err
    data = write_esg(random_graph(10), run / "model.esg")
    out = tmp_path / "deploy" / "o.esg"
    assert _cli(["export", str(run), "--target", "esg", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.read_bytes() == data and summary["bytes"] == len(data)
    assert summary["target"] == "esg" and summary["model_hash"] == data[32:48].hex()
    (run / "model.esg").write_bytes(data[:64] + bytes(len(data) - 64))
    assert _cli(["export", str(run), "--target", "esg", "--out", str(out)]) == 2
    assert out.read_bytes() == data  # a failed export leaves the old artefact alone


# ------------------------------------------------------------------------- biases (1.1)


def test_bias_round_trip_and_version() -> None:
    """A layer with a bias makes a 1.1 file that reads back equal; a graph without biases is
    still written as 1.0, byte for byte what 1.0 writers produced (the committed vectors)."""
    from edgesnn.graph.esg import header_field

    g = random_graph(5, input_size=14, hidden=(9,), n_classes=4, steps=3, bias=True)
    data = encode(g)
    assert header_field(data, "version_minor") == 1
    back = decode(data)
    assert back == g and all(lay.bias is not None for lay in back.layers)
    assert describe(data)["layers"][0]["bias_range"] == [int(g.layers[0].bias.min()),
                                                         int(g.layers[0].bias.max())]
    g.layers[1].bias = None  # one layer with, one without
    back = decode(encode(g))
    assert back == g and back.layers[1].bias is None
    for layer in g.layers:
        layer.bias = None
    assert header_field(encode(g), "version_minor") == 0
    old = [VECTORS / "valid" / f"{name}.esg" for name in (  # written by edgesnn 1.0
        "rate_dense_int8_lif", "latency_sparse_int4_if_zero", "direct_dense_int4_perneuron",
        "rate_sparse_int8_idx16")]
    for path in old:  # files of version 1.0 still load, and re-encode to the same bytes
        data = path.read_bytes()
        assert header_field(data, "version_minor") == 0
        assert encode(decode(data)) == data


def test_peer_rules_round_trip_as_version_1_3() -> None:
    from edgesnn.graph.esg import header_field
    from edgesnn.graph.ir import FireRule, ResetMode

    for reset, fire in ((ResetMode.SUBTRACT_DELAYED, FireRule.GT), (ResetMode.NONE, FireRule.GT),
                        (ResetMode.ZERO, FireRule.GE)):
        g = random_graph(8, input_size=10, hidden=(5,), n_classes=3, steps=3, reset=reset,
                         fire=fire)
        data = encode(g)
        assert header_field(data, "version_minor") == 3
        back = decode(data)
        assert back == g and back.layers[0].reset == reset and back.layers[1].fire == fire
        assert describe(data)["layers"][0]["fire"] == ("v >= threshold" if fire == FireRule.GE
                                                       else "v > threshold")


def test_bias_range_is_checked() -> None:
    from edgesnn.graph.ir import BIAS_MAX

    g = random_graph(6, input_size=10, hidden=(), n_classes=3, steps=2)
    g.layers[0].bias = np.array([BIAS_MAX, -BIAS_MAX, 0], np.int32)
    assert decode(encode(g)).layers[0].bias.tolist() == [BIAS_MAX, -BIAS_MAX, 0]
    g.layers[0].bias = np.array([BIAS_MAX + 1, 0, 0], np.int64)
    with pytest.raises(GraphError, match="bias outside"):
        encode(g)
    g.layers[0].bias = np.array([1, 2], np.int32)
    with pytest.raises(GraphError, match=r"bias must be integers of shape \[3\]"):
        encode(g)


def test_cuba_lif_round_trip_as_version_1_4() -> None:
    """A CubaLIF layer carries the LAYER_EXT extension (8 bytes after the 48-byte header) with
    its synaptic leak array; the file is 1.4 only when a layer uses it."""
    from edgesnn.graph.esg import LAYER_EXT, LAYER_HEADER_SIZE, header_field, layer_header_size
    from edgesnn.graph.ir import NeuronKind

    assert layer_header_size(NeuronKind.CUBA_LIF) == LAYER_HEADER_SIZE + LAYER_EXT.size == 56
    assert layer_header_size(NeuronKind.LIF) == LAYER_HEADER_SIZE
    for per_neuron, storage in ((False, "dense"), (True, "sparse")):
        g = random_graph(9, input_size=10, hidden=(5,), n_classes=3, steps=3,
                         neuron="cuba_lif", per_neuron=per_neuron, storage=storage,
                         density=0.5 if storage == "sparse" else 1.0, bias=True)
        data = encode(g)
        assert header_field(data, "version_minor") == 4
        back = decode(data)
        assert back == g and back.layers[1].neuron == NeuronKind.CUBA_LIF
        assert back.layers[0].syn_leak.shape == ((5,) if per_neuron else (1,))
        assert describe(data)["layers"][0]["syn_leak_range"] == [
            int(g.layers[0].syn_leak.min()), int(g.layers[0].syn_leak.max())]
        # the synaptic currents: one more int32 per neuron, A(4 * (5 + 3)) bytes (SPEC.md 4)
        plain = random_graph(9, input_size=10, hidden=(5,), n_classes=3, steps=3)
        assert g.arena_bytes() - plain.arena_bytes() == 32
    assert header_field(encode(random_graph(9, input_size=10, hidden=(5,), n_classes=3,
                                            steps=3)), "version_minor") == 0


def test_cuba_lif_extension_faults() -> None:
    """Each fault of the LAYER_EXT extension is rejected with its class (SPEC.md 6.1)."""
    from edgesnn.graph.esg import LAYER_EXT, LAYER_HEADER_SIZE, EsgError

    g = random_graph(9, input_size=10, hidden=(), n_classes=3, steps=3, neuron="cuba_lif")
    data = encode(g)
    lay = struct.unpack_from("<I", data, 64 + 16 + 4)[0]  # layer 0's payload offset
    ext = lay + LAYER_HEADER_SIZE
    o_syn = struct.unpack_from("<I", data, ext + LAYER_EXT.offset("off_syn_leak"))[0]

    def mutate(at: int, fmt: str, value: int | bytes) -> bytes:
        d = bytearray(data)
        struct.pack_into(fmt, d, at, value)
        return refresh_checksums(bytes(d))

    cases = [(mutate(ext + LAYER_EXT.offset("syn_leak_count_flag"), "<B", 2), "enum",
              "syn_leak_count_flag"),
             (mutate(ext + LAYER_EXT.offset("reserved"), "<B", 1), "value", "reserved"),
             (mutate(ext, "<I", 52), "bounds", "off_syn_leak"),
             (mutate(ext, "<I", 2), "bounds", "off_syn_leak"),
             (mutate(lay + o_syn, "<I", 65537), "value", "syn_leak")]
    for blob, category, field in cases:
        with pytest.raises(EsgError, match=field) as exc:
            decode(blob)
        assert exc.value.category == category, str(exc.value)

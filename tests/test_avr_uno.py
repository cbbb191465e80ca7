"""Arduino Uno (ATmega328P: 32 KB flash, 2 KB RAM): the 784-input SNN in 2,048 bytes of RAM.

The profile builds the runtime with ``ESNN_INPUT_BLOCK`` (``memory.input_block``): the input
is walked in blocks of nonzero pixels instead of SPEC 4's two input-sized lists, so the arena
of a 784-64-10 model is 512 B instead of 3,584 B; DATA chunks of 64 bytes; the model in flash.
Checked here: the block path equals golden on the host (ASan, arena exactly
``esnn_arena_bytes``) for every encoder and kernel; the Uno firmware answers MNIST digits
bit-exactly in simavr, by INFER and by chunked DATA, and ``.data + .bss`` plus the deepest
stack simavr saw (``ESNN_SIMAVR_STACK``) fit 2,048 B. Skipped (with the reason) without
avr-gcc / libsimavr.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgesnn.build import build_check_tool, build_project
from edgesnn.devices import load_device
from edgesnn.export.base import ExportError
from edgesnn.export.c import TARGET as C_TARGET
from edgesnn.export.c import device_arena_bytes
from edgesnn.graph import esg
from edgesnn.graph.esg import header_hash
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import BIAS_MAX, Encoder, EncoderKind, Layer, NeuronKind, SpikeGraph
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host import protocol as proto
from edgesnn.host.launch import launch
from tests.test_avr import _need_avr, _sections
from tests.test_c_runtime import assert_equal_to_golden, run_c
from tests.test_qemu import Link, check_bit_exact

DEVICE = "arduino-uno"
RAM = 2048


def uno_graph(seed: int = 5) -> object:
    """784-64-10, 91 % pruned, int4, per-neuron thresholds: the size of the benchmark's model."""
    return random_graph(seed, input_size=784, hidden=(64,), n_classes=10, steps=8,
                        storage="sparse", density=0.09, weight_bits=4, per_neuron=True)


def test_profile_and_arena() -> None:
    profile = load_device(DEVICE)
    assert (profile.memory.ram_bytes, profile.memory.input_block) == (RAM, 32)
    graph = uno_graph()
    # SPEC 4 with one 32-entry list for the two 784-entry ones
    assert graph.arena_bytes() == 3584  # type: ignore[attr-defined]
    assert device_arena_bytes(graph, profile) == 3584 - 2 * 1568 + 64  # type: ignore[arg-type]
    assert device_arena_bytes(graph, load_device("arduino-mega2560")) == 3584  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_input_blocks_equal_golden_on_the_host(tmp_path: Path) -> None:
    """ESNN_INPUT_BLOCK=3 (many blocks, a remainder) under ASan with the arena malloc'd at
    exactly esnn_arena_bytes: every encoder, storage and weight width equals golden."""
    # build_check_tool's `opt` is one compiler argument: here the block size (-O0)
    tool = build_check_tool(tmp_path / "tool", sanitize=True, opt="-DESNN_INPUT_BLOCK=3")
    for enc, storage, bits in itertools.product(("rate", "latency", "direct"),
                                                ("dense", "sparse"), (8, 4)):
        for seed in range(2):
            graph = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=6, steps=7,
                                 encoder=enc, storage=storage, weight_bits=bits,
                                 per_neuron=seed == 1, bias=seed == 1)
            px = random_pixels(seed, 6, 40)
            assert_equal_to_golden(run_c(tool, graph, px, tmp_path), graph, px,
                                   f"{enc}-{storage}-int{bits}-{seed}")
    # layer 0 on the flagged (saturating) path: a bias of +-(2^23 - 1) reaches +-2^31
    w = np.zeros((6, 3), np.int8)
    w[:, 1] = 127
    for sign in (1, -1):
        bias = np.array([sign * BIAS_MAX, sign * (BIAS_MAX - 5), -sign * 3], np.int32)
        graph = SpikeGraph(6, 300, [
            Layer(w, np.array([2**31 - 1], np.int32), np.array([65536], np.uint32),
                  NeuronKind.IF, bias=bias)], Encoder(EncoderKind.RATE, 5)).validate()
        px = random_pixels(3, 4, 6)
        c = run_c(tool, graph, px, tmp_path)
        assert c["v_final"][0, 0] == (2**31 - 1 if sign > 0 else -(2**31))
        assert_equal_to_golden(c, graph, px, f"bias saturation {sign}")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_no_direct_build(tmp_path: Path) -> None:
    """-DESNN_NO_DIRECT (model_config.h of a rate- or latency-coded graph): those graphs still
    equal golden, a direct-encoded graph is refused as an unknown enum."""
    tool = build_check_tool(tmp_path / "tool", opt="-DESNN_NO_DIRECT")  # one argument: -O0
    for encoder in ("rate", "latency"):
        graph = random_graph(6, input_size=30, hidden=(12,), n_classes=4, encoder=encoder,
                             storage="sparse", density=0.5, per_neuron=True, shared_leak=True)
        px = random_pixels(6, 5, 30)
        assert_equal_to_golden(run_c(tool, graph, px, tmp_path), graph, px, encoder)
    direct = random_graph(6, input_size=30, hidden=(12,), n_classes=4, encoder="direct")
    with pytest.raises(AssertionError, match="enum field out of range"):
        run_c(tool, direct, random_pixels(6, 2, 30), tmp_path)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_no_cubalif_build(tmp_path: Path) -> None:
    """-DESNN_NO_CUBALIF (model_config.h of a graph without CubaLIF layers; 1,672 B of the Uno's
    flash): LIF/IF graphs still equal golden, a CubaLIF graph is refused as an unknown enum."""
    tool = build_check_tool(tmp_path / "tool", opt="-DESNN_NO_CUBALIF")  # one argument: -O0
    for neuron in ("lif", "if"):
        graph = random_graph(4, input_size=30, hidden=(12,), n_classes=4, neuron=neuron,
                             storage="sparse", density=0.5, per_neuron=True)
        px = random_pixels(5, 5, 30)
        assert_equal_to_golden(run_c(tool, graph, px, tmp_path), graph, px, neuron)
    cuba = random_graph(4, input_size=30, hidden=(12,), n_classes=4, neuron="cuba_lif")
    with pytest.raises(AssertionError, match="enum field out of range"):
        run_c(tool, cuba, random_pixels(5, 2, 30), tmp_path)


def test_uno_refuses_a_model_over_its_flash(tmp_path: Path) -> None:
    graph = random_graph(3, input_size=784, hidden=(32,), n_classes=10, steps=4,
                         weight_bits=4)  # dense int4: 12.5 KB of weights + 20 KB of code
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.esg").write_bytes(esg.encode(graph))
    with pytest.raises(ExportError, match=r"device 'arduino-uno': flash needs [\d,]+ B .* "
                                          r"over by [\d,]+ B"):
        C_TARGET.export(run_dir, tmp_path / "fw", device=DEVICE)


def _chunked(link: Link, pixels: np.ndarray, chunk_max: int) -> proto.Message:
    """One input as DATA chunks of <= chunk_max bytes (zero runs or raw, whichever is
    shorter), the last flagged ANSWER: the device answers RESULT once it holds them all."""
    seq = link.seq % 0xFFFE + 1  # the seq link.request takes next
    req = proto.ChunkedRequest(seq, bytes(np.asarray(pixels, dtype=np.uint8)),
                               chunk_max=chunk_max)
    *head, last = req.frames()
    for frame in head:
        link.port.write(frame.encode())
    return link.request(lambda _seq: last)


@pytest.mark.qemu
def test_uno_bit_exact_in_2k_of_ram(tmp_path: Path, mnist_data_dir: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _need_avr()
    from edgesnn.data import load_dataset

    graph = uno_graph()
    blob = esg.encode(graph)  # type: ignore[arg-type]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.esg").write_bytes(blob)
    summary = C_TARGET.export(run_dir, tmp_path / "fw", device=DEVICE)
    assert summary["arena_bytes"] == 512 and summary["fit"]["fits"]
    res = build_project(tmp_path / "fw")
    sec = _sections(res.elf)
    profile = load_device(DEVICE)
    static = sec[".data"] + sec[".bss"]
    assert static - 512 <= profile.memory.static_bytes, sec  # the fit check's figure holds
    code = sec[".text"] + sec[".data"] - len(blob)
    assert 0 < code <= profile.memory.code_bytes, code
    assert sec[".text"] + sec[".data"] <= profile.memory.flash_bytes, sec

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=40)
    stack_file = tmp_path / "stack.txt"
    monkeypatch.setenv("ESNN_SIMAVR_STACK", str(stack_file))  # the runner's stack report
    with launch(profile, res.elf) as session:
        link = Link(session.url, timeout=60.0)
        try:
            hello = link.hello()
            assert (hello.board, hello.model_hash, hello.chunk_max) == (DEVICE,
                                                                        header_hash(blob), 64)
            assert hello.arena_bytes == graph.arena_bytes()  # type: ignore[attr-defined]
            cycles = check_bit_exact(link, graph, data.images[:30])  # type: ignore[arg-type]
            gold = simulate(graph, data.images[30:])  # type: ignore[arg-type]
            for k, px in enumerate(data.images[30:]):  # the same through DATA chunks
                r = _chunked(link, px, hello.chunk_max)
                assert isinstance(r, proto.InferResult), r
                assert (r.prediction, list(r.counts), list(r.ops), list(r.spikes),
                        r.input_spikes) == (
                    int(gold.pred[k]), gold.counts[k].tolist(), gold.ops[k].tolist(),
                    gold.spikes[k].tolist(), int(gold.input_spikes[k])), k
        finally:
            link.close()
    ramend, sp_min, peak = (int(x) for x in stack_file.read_text().split()[:3])
    assert (ramend, ramend - sp_min) == (0x8FF, peak)
    assert 100 < peak <= profile.memory.stack_bytes, peak
    assert static + peak <= RAM, (static, peak)  # .data + .bss + the deepest stack
    assert min(cycles) > 10_000 and len(set(cycles)) > 1

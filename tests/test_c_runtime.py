"""The C runtime, compiled on the host, equals the golden simulator bit for bit.

Every configuration of SPEC.md (dense/sparse, int8/int4, rate/latency/direct, LIF/IF,
subtract/zero reset, per-layer/per-neuron constants) on several seeds of random_graph:
prediction, counts, final membranes, input spikes, spikes and ops per layer must be equal.
Plus the saturation corner (membranes driven to +-2^31) and the arena bound (the tool's arena
is exactly arena_bytes; the ASan build would catch any access past it).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesnn.build import build_check_tool
from edgesnn.graph import esg, golden
from edgesnn.graph.ir import (
    BIAS_MAX,
    Encoder,
    EncoderKind,
    FireRule,
    Layer,
    NeuronKind,
    ResetMode,
    SpikeGraph,
)
from edgesnn.graph.synth import random_graph, random_pixels

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

FIELDS = ("pred", "counts", "v_final", "input_spikes", "spikes", "ops")


@pytest.fixture(scope="module")
def check_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_check_tool(tmp_path_factory.mktemp("esnn_check"))


@pytest.fixture(scope="module")
def check_tool_asan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_check_tool(tmp_path_factory.mktemp("esnn_check_asan"), sanitize=True)


def run_c(tool: Path, graph: SpikeGraph, pixels: np.ndarray, tmp: Path) -> dict[str, np.ndarray]:
    model, px = tmp / "m.esg", tmp / "px.bin"
    model.write_bytes(esg.encode(graph))
    np.ascontiguousarray(pixels, dtype=np.uint8).tofile(px)
    proc = subprocess.run([str(tool), "infer", str(model), str(px)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(pixels)
    return {k: np.array([r[k] for r in rows], dtype=np.int64) for k in FIELDS}


def assert_equal_to_golden(c: dict[str, np.ndarray], graph: SpikeGraph,
                           pixels: np.ndarray, label: str) -> None:
    ref = golden.simulate(graph, pixels)
    for k in FIELDS:
        assert np.array_equal(c[k], getattr(ref, k)), f"{label}: {k} differs from golden"


CONFIGS = list(itertools.product(("rate", "latency", "direct"), ("dense", "sparse"), (8, 4),
                                 ("lif", "if"), ("subtract", "zero")))


@pytest.mark.parametrize(("encoder", "storage", "bits", "neuron", "reset"), CONFIGS,
                         ids=["-".join(map(str, c)) for c in CONFIGS])
def test_c_equals_golden(check_tool: Path, tmp_path: Path, encoder: str, storage: str,
                         bits: int, neuron: str, reset: str) -> None:
    spiking = 0
    for seed in range(3):
        graph = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=6, steps=7,
                             encoder=encoder, storage=storage, weight_bits=bits, neuron=neuron,
                             reset=reset, per_neuron=bool(seed % 2),
                             density=0.4 if storage == "sparse" else 1.0)
        pixels = random_pixels(100 + seed, 12, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"seed {seed}")
        spiking += int(c["spikes"].sum())
    assert spiking > 0, "the random graphs never spiked: the comparison would be vacuous"


def test_one_layer_and_many_classes(check_tool: Path, tmp_path: Path) -> None:
    graph = random_graph(7, input_size=300, hidden=(), n_classes=255, steps=5,
                         storage="sparse", density=0.3)
    pixels = random_pixels(7, 6, 300)
    assert_equal_to_golden(run_c(check_tool, graph, pixels, tmp_path), graph, pixels, "1x255")


def test_sparse_int8_index_bits_16(check_tool: Path, tmp_path: Path) -> None:
    """n_out > 256 forces 16-bit sparse indices."""
    graph = random_graph(3, input_size=30, hidden=(300,), n_classes=4, steps=4,
                         storage="sparse", density=0.2)
    pixels = random_pixels(3, 5, 30)
    assert_equal_to_golden(run_c(check_tool, graph, pixels, tmp_path), graph, pixels, "idx16")


def test_per_neuron_leak_with_first_leak_one(check_tool: Path, tmp_path: Path) -> None:
    """Per-neuron leaks where neuron 0 does not leak but the others do (and the reverse), per
    layer thresholds: the no-leak shortcut of the fire pass must not apply to the layer."""
    for first, rest in ((65536, 40000), (40000, 65536)):
        graph = random_graph(9, input_size=30, hidden=(12,), n_classes=4, steps=9,
                             per_neuron=True)
        for layer in graph.layers:
            layer.threshold = layer.threshold[:1].copy()
            layer.leak = np.full(layer.n_out, rest, np.uint32)
            layer.leak[0] = first
        graph.validate()
        pixels = random_pixels(9, 8, 30)
        assert_equal_to_golden(run_c(check_tool, graph, pixels, tmp_path), graph, pixels,
                               f"leak[0]={first}")


@pytest.mark.parametrize("leak", [0, 1, 20000, 32767, 32768, 49151])
def test_strong_leaks(check_tool: Path, tmp_path: Path, leak: int) -> None:
    """beta < 1/2 (and the boundary 2^15) takes the general leak arithmetic: equal to golden,
    per-layer (one leak) and per-neuron (leak, leak + 1, ...) alike."""
    for per_neuron in (False, True):
        graph = random_graph(13, input_size=30, hidden=(12,), n_classes=4, steps=9,
                             per_neuron=per_neuron, reset="zero" if per_neuron else "subtract")
        for layer in graph.layers:
            layer.threshold = (layer.threshold // 3).astype(np.int32)
            layer.leak = np.minimum(leak + np.arange(layer.leak.size), 65536).astype(np.uint32)
        graph.validate()
        pixels = random_pixels(13, 8, 30)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"leak {leak}, per-neuron {per_neuron}")
        assert int(c["spikes"].sum()) > 0


@pytest.mark.parametrize("leak", [65536, 65535])
def test_saturation_at_int32_limits(check_tool: Path, tmp_path: Path, leak: int) -> None:
    """Membranes pushed to +-2^31 saturate exactly as sat32 (the wrapping-accumulator path of
    a spike-driven layer: 4000 presynaptic spikes of +-127/-128 per step)."""
    w0 = np.full((8, 4000), 127, np.int8)
    w1 = np.zeros((4000, 3), np.int8)
    w1[:, 0], w1[:, 1] = 127, -128
    w1[::2, 2], w1[1::2, 2] = 127, -128
    neuron = NeuronKind.IF if leak == 65536 else NeuronKind.LIF
    graph = SpikeGraph(8, 5000, [
        Layer(w0, np.array([0], np.int32), np.array([65536], np.uint32), NeuronKind.IF),
        Layer(w1, np.array([2**31 - 1], np.int32), np.array([leak], np.uint32), neuron),
    ], Encoder(EncoderKind.DIRECT, 7)).validate()
    pixels = np.full((2, 8), 255, np.uint8)
    pixels[1, ::3] = 0
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert c["v_final"][0, 0] == 2**31 - 1 and c["v_final"][0, 1] == -(2**31)
    assert_equal_to_golden(c, graph, pixels, "saturation")


@pytest.mark.parametrize("leak", [65536, 65535])
def test_direct_current_saturates(check_tool: Path, tmp_path: Path, leak: int) -> None:
    """The direct encoder's constant current drives layer 0 past +-2^31 in a few steps: the
    membranes stay at the limits (sat32 of leak(v) + I0), also for the readout."""
    w = np.zeros((8192, 3), np.int8)
    w[:, 0], w[:, 1], w[::2, 2], w[1::2, 2] = 127, -128, 127, -127
    neuron = NeuronKind.IF if leak == 65536 else NeuronKind.LIF
    graph = SpikeGraph(8192, 12, [
        Layer(w, np.array([2**31 - 1], np.int32), np.array([leak], np.uint32), neuron),
    ], Encoder(EncoderKind.DIRECT, 3)).validate()
    pixels = np.full((2, 8192), 255, np.uint8)
    pixels[1, ::5] = 0
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert c["v_final"][0, 0] == 2**31 - 1 and c["v_final"][0, 1] == -(2**31)
    assert_equal_to_golden(c, graph, pixels, "direct saturation")


BIAS_CONFIGS = list(itertools.product(("rate", "latency", "direct"), ("dense", "sparse"), (8, 4)))


@pytest.mark.parametrize(("encoder", "storage", "bits"), BIAS_CONFIGS,
                         ids=["-".join(map(str, c)) for c in BIAS_CONFIGS])
def test_bias_c_equals_golden(check_tool: Path, tmp_path: Path, encoder: str, storage: str,
                              bits: int) -> None:
    """Layers with a bias (SPEC 3.2, .esg 1.1): every kernel adds it every step, the direct
    encoder's I0 once; and the bias changes what the network does."""
    changed = 0
    for seed in range(2):
        graph = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=6, steps=7,
                             encoder=encoder, storage=storage, weight_bits=bits,
                             per_neuron=bool(seed), reset="zero" if seed else "subtract",
                             density=0.4 if storage == "sparse" else 1.0, bias=True)
        assert esg.header_field(esg.encode(graph), "version_minor") == 1
        pixels = random_pixels(200 + seed, 12, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"bias seed {seed}")
        for layer in graph.layers:
            layer.bias = None
        changed += int(np.any(golden.simulate(graph, pixels).spikes != c["spikes"]))
    assert changed, "the biases never changed a spike count: the test would be vacuous"


FAST_CONFIGS = list(itertools.product(("rate", "latency", "direct"), ("dense", "sparse"), (8, 4),
                                      (False, True)))


@pytest.mark.parametrize(("encoder", "storage", "bits", "bias"), FAST_CONFIGS,
                         ids=["-".join(map(str, c)) for c in FAST_CONFIGS])
def test_fast_fire_loop_c_equals_golden(check_tool: Path, tmp_path: Path, encoder: str,
                                        storage: str, bits: int, bias: bool) -> None:
    """What training exports (per-neuron thresholds, one leak per layer): the fire pass's fast
    loop, which for the direct encoder also adds layer 0's current I0 (+ bias) itself."""
    spiking = 0
    for seed in range(2):
        graph = random_graph(30 + seed, input_size=60, hidden=(40,), n_classes=8, steps=6,
                             encoder=encoder, storage=storage, weight_bits=bits,
                             per_neuron=True, shared_leak=True, bias=bias,
                             reset="zero" if seed else "subtract",
                             density=0.3 if storage == "sparse" else 1.0)
        assert all(len(layer.leak) == 1 and len(layer.threshold) > 1 for layer in graph.layers)
        pixels = random_pixels(300 + seed, 12, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"fast loop seed {seed}")
        spiking += int(c["spikes"][:, 0].sum())
    assert spiking > 0, "layer 0 never spiked: the comparison would be vacuous"


def test_direct_skips_only_neurons_that_cannot_fire(check_tool: Path, tmp_path: Path) -> None:
    """The direct encoder's hidden layer 0 visits only neurons with a positive current I0 + b,
    except under fire ge with threshold 0, where a current of 0 fires every step: such
    neurons (columns of zeros, threshold 0) must spike in C exactly as in golden."""
    for fire in ("gt", "ge"):
        graph = random_graph(41, input_size=50, hidden=(30,), n_classes=5, steps=5,
                             encoder="direct", per_neuron=True, shared_leak=True, fire=fire)
        layer = graph.layers[0]
        layer.weights[:, :6] = 0  # I0 = 0 for neurons 0..5
        layer.weights[:, 6:10] = -np.abs(layer.weights[:, 6:10])  # I0 <= 0 for 6..9
        layer.threshold[:10] = 0
        graph.validate()
        pixels = random_pixels(41, 10, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"fire {fire}")
        fired = golden.simulate(graph, pixels, record=True).raster[1][:, :, :10].any()
        assert bool(fired) == (fire == "ge")


PEER_CONFIGS = list(itertools.product(("rate", "direct"), ("dense", "sparse"),
                                      ("subtract_delayed", "none", "zero", "subtract"),
                                      ("gt", "ge")))


@pytest.mark.parametrize(("encoder", "storage", "reset", "fire"), PEER_CONFIGS,
                         ids=["-".join(c) for c in PEER_CONFIGS])
def test_peer_rules_c_equals_golden(check_tool: Path, tmp_path: Path, encoder: str,
                                    storage: str, reset: str, fire: str) -> None:
    """snnTorch's delayed subtract, no reset, SpikingJelly's >= (SPEC 3.2, .esg 1.3), with
    biases and per-layer or per-neuron constants, in the general fire loop."""
    for seed in range(2):
        graph = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=6, steps=8,
                             encoder=encoder, storage=storage, reset=reset, fire=fire,
                             per_neuron=bool(seed), bias=bool(seed),
                             density=0.4 if storage == "sparse" else 1.0)
        pixels = random_pixels(300 + seed, 12, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"{reset}/{fire} seed {seed}")
        assert int(c["spikes"].sum()) > 0


CUBA_CONFIGS = list(itertools.product(("rate", "latency", "direct"), ("dense", "sparse"), (8, 4),
                                      ("subtract_delayed", "subtract", "zero", "none")))


@pytest.mark.parametrize(("encoder", "storage", "bits", "reset"), CUBA_CONFIGS,
                         ids=["-".join(map(str, c)) for c in CUBA_CONFIGS])
def test_cuba_lif_c_equals_golden(check_tool: Path, tmp_path: Path, encoder: str, storage: str,
                                  bits: int, reset: str) -> None:
    """CubaLIF (SPEC 3.2, .esg 1.4): the synaptic currents in the arena's first block, the
    membranes in the second; CubaLIF layers beside a LIF layer, per-layer or per-neuron
    constants, biases, both fire rules."""
    for seed in range(2):
        graph = random_graph(seed, input_size=40, hidden=(24, 12), n_classes=6, steps=8,
                             encoder=encoder, storage=storage, weight_bits=bits,
                             neuron="cuba_lif", reset=reset, fire=("gt", "ge")[seed],
                             per_neuron=bool(seed), bias=bool(seed),
                             density=0.4 if storage == "sparse" else 1.0)
        if seed:  # a plain LIF layer between CubaLIF ones: the two state blocks stay aligned
            mid = graph.layers[1]
            mid.neuron, mid.syn_leak = NeuronKind.LIF, None
        pixels = random_pixels(400 + seed, 12, graph.input_size)
        c = run_c(check_tool, graph, pixels, tmp_path)
        assert_equal_to_golden(c, graph, pixels, f"cuba {reset} seed {seed}")
        assert int(c["spikes"].sum()) > 0


@pytest.mark.parametrize("alpha", [65536, 65535, 32768, 0])
def test_cuba_lif_at_the_int32_limits(check_tool: Path, tmp_path: Path, alpha: int) -> None:
    """Synaptic currents and membranes near +-2^31 (biases of +-(2^23 - 1) over 300 steps):
    the flagged saturation of the synaptic current and the saturating membrane add."""
    w = np.zeros((6, 4), np.int8)
    w[:, 1] = 127
    w[:, 3] = -128
    bias = np.array([BIAS_MAX, -BIAS_MAX, 7, -BIAS_MAX], np.int32)
    graph = SpikeGraph(6, 300, [
        Layer(w, np.array([2**31 - 2, 0, 5, 2**31 - 1], np.int32), np.array([65536], np.uint32),
              NeuronKind.CUBA_LIF, reset=ResetMode.SUBTRACT_DELAYED, bias=bias,
              syn_leak=np.array([alpha], np.uint32))],
        Encoder(EncoderKind.RATE, 5)).validate()
    pixels = random_pixels(4, 4, 6)
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert_equal_to_golden(c, graph, pixels, f"cuba saturation alpha {alpha}")
    if alpha >= 65535:
        assert c["v_final"][0, 3] == -(2**31)


def test_count_readout(check_tool: Path, tmp_path: Path) -> None:
    """Readout 1 (argmax of the counts, lowest index): C = golden on tie-heavy samples."""
    graph = random_graph(31, input_size=16, hidden=(8,), n_classes=6, steps=3, readout="count")
    pixels = random_pixels(31, 64, 16)
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert_equal_to_golden(c, graph, pixels, "count readout")
    np.testing.assert_array_equal(c["pred"], np.argmax(c["counts"], axis=1))


@pytest.mark.parametrize("reset", ["subtract_delayed", "none"])
def test_peer_resets_at_the_int32_limits(check_tool: Path, tmp_path: Path, reset: str) -> None:
    """Delayed subtraction and no reset near +-2^31: the exact-saturation path."""
    w = np.zeros((6, 3), np.int8)
    w[:, 1] = 127
    bias = np.array([BIAS_MAX, -BIAS_MAX, 7], np.int32)
    graph = SpikeGraph(6, 300, [
        Layer(w, np.array([2**31 - 2, 0, 5], np.int32), np.array([65536], np.uint32),
              NeuronKind.IF, reset=ResetMode[reset.upper()], bias=bias, fire=FireRule.GE)],
        Encoder(EncoderKind.RATE, 5)).validate()
    pixels = random_pixels(4, 4, 6)
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert_equal_to_golden(c, graph, pixels, f"{reset} saturation")
    assert int(c["counts"][:, 0].sum()) > 0


@pytest.mark.parametrize("sign", [1, -1])
def test_bias_drives_membranes_to_the_int32_limits(check_tool: Path, tmp_path: Path,
                                                   sign: int) -> None:
    """A bias of +-(2^23 - 1) on a small layer reaches +-2^31 after 256 steps: the runtime must
    take the exact-saturation path because of the bias alone (T * 128 * n_in is small)."""
    n_in = 6
    w = np.zeros((n_in, 3), np.int8)
    w[:, 1] = 127
    bias = np.array([sign * BIAS_MAX, sign * (BIAS_MAX - 5), -sign * 3], np.int32)
    graph = SpikeGraph(n_in, 300, [
        Layer(w, np.array([2**31 - 1], np.int32), np.array([65536], np.uint32), NeuronKind.IF,
              bias=bias)], Encoder(EncoderKind.RATE, 5)).validate()
    pixels = random_pixels(3, 4, n_in)
    c = run_c(check_tool, graph, pixels, tmp_path)
    assert c["v_final"][0, 0] == (2**31 - 1 if sign > 0 else -(2**31))
    assert_equal_to_golden(c, graph, pixels, "bias saturation")


def test_asan_build_equals_golden(check_tool_asan: Path, tmp_path: Path) -> None:
    """The sanitizer build (exact-size heap arena) runs every encoder/storage cleanly."""
    for k, (enc, storage, bits) in enumerate(itertools.product(
            ("rate", "latency", "direct"), ("dense", "sparse"), (8, 4))):
        graph = random_graph(k, input_size=33, hidden=(9,), n_classes=5, steps=5,
                             encoder=enc, storage=storage, weight_bits=bits,
                             density=0.5 if storage == "sparse" else 1.0, bias=bool(k % 2))
        pixels = random_pixels(k, 4, 33)
        assert_equal_to_golden(run_c(check_tool_asan, graph, pixels, tmp_path), graph, pixels,
                               f"asan {enc}/{storage}/int{bits}")


@pytest.mark.qemu
@pytest.mark.parametrize("no_asm", [False, True], ids=["thumb2-asm", "c-fallback"])
def test_cortex_m3_kernels_equal_golden(tmp_path: Path, no_asm: bool) -> None:
    """The Cortex-M3 build (the Thumb-2 assembly of the dense int8 and sparse int8 / 8-bit
    index kernels, and with ESNN_NO_ASM their C versions) equals golden on rows of every
    length. Sparse: 64 -> 200 (idx8, about 24 entries a row, every remainder mod 8),
    200 -> 300 (idx16), 300 -> 10 (idx8, mostly empty or 1-3 entries), per-neuron constants,
    zero reset. Dense: direct encoding (rows scaled by the pixel value) 50 -> 13 -> 8 -> 7."""
    from edgesnn.build import build_project
    from edgesnn.export.c import TARGET
    from edgesnn.host.launch import launch
    from tests.test_qemu import Link, check_bit_exact, load_profile, need_arm_toolchain

    need_arm_toolchain()
    sparse = random_graph(21, input_size=64, hidden=(200, 300), n_classes=10, steps=8,
                          storage="sparse", density=0.12, per_neuron=True, reset="zero")
    fanout = np.count_nonzero(sparse.layers[0].weights, axis=1)
    assert set(range(8)) <= set((fanout % 8).tolist()) and fanout.max() > 16
    assert np.count_nonzero(sparse.layers[2].weights, axis=1).min() == 0
    dense = random_graph(23, input_size=50, hidden=(13, 8), n_classes=7, steps=6,
                         encoder="direct", bias=True)
    biased = random_graph(24, input_size=64, hidden=(200,), n_classes=10, steps=8,
                          storage="sparse", density=0.12, per_neuron=True, bias=True,
                          reset="subtract_delayed")
    peer = random_graph(25, input_size=50, hidden=(20,), n_classes=7, steps=8, fire="ge",
                        reset="none", bias=True)
    cuba = random_graph(26, input_size=64, hidden=(40,), n_classes=10, steps=8,
                        storage="sparse", density=0.3, per_neuron=True, bias=True,
                        neuron="cuba_lif", reset="subtract_delayed")
    extra = ("EXTRA_CFLAGS=-DESNN_NO_ASM",) if no_asm else ()
    for name, graph in (("sparse", sparse), ("dense", dense), ("biased", biased),
                        ("peer", peer), ("cuba", cuba)):
        run_dir = tmp_path / name / "run"
        run_dir.mkdir(parents=True)
        (run_dir / "model.esg").write_bytes(esg.encode(graph))
        TARGET.export(run_dir, tmp_path / name / "project", device="lm3s6965evb")
        elf = build_project(tmp_path / name / "project", make_args=extra).elf
        pixels = random_pixels(22, 10, graph.input_size)
        with launch(load_profile("lm3s6965evb"), elf) as session:
            link = Link(session.url, timeout=60)
            try:
                check_bit_exact(link, graph, pixels)
            finally:
                link.close()
        assert int(golden.simulate(graph, pixels).spikes.sum()) > 0, name

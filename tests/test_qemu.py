"""The Cortex-M ports running for real under QEMU.

* the cycle counters count instructions exactly (-icount; SysTick at 6.4 ticks per
  instruction on lm3s6965evb at 50 MHz, 1.6 on mps2-an386 at 25 MHz, 1.28 on mps2-an505 at
  20 MHz, 2.048 on mps3-an547 at 32 MHz; nRF51 TIMER0 at 1.024 on microbit at 16 MHz),
* generated firmware for every emulated core — Cortex-M0 (microbit), M3 (lm3s6965evb), M4F
  (mps2-an386), M33 (mps2-an505), M55 (mps3-an547) — answers PING with the right HELLO and
  every INFER with a RESULT equal to the golden simulator bit for bit (200 MNIST digits on
  the three newer cores),
* the instruction count of an inference is deterministic.

Skipped (with the reason) only when qemu-system-arm or arm-none-eabi-gcc is missing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesnn.graph import esg
from edgesnn.graph.golden import simulate
from edgesnn.graph.ir import SpikeGraph
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host import protocol as proto
from edgesnn.host.launch import launch

ROOT = Path(__file__).resolve().parents[1]
SELFTEST_DIR = ROOT / "firmware" / "ports" / "cortexm_common" / "selftest"
# 2^shift ns per instruction / SysTick period: 128 ns / 20 ns (50 MHz), 64 ns / 40 ns (25 MHz);
# the firmware takes its ratio from esnn_board.h, generated from the same profile fields
TICKS_PER_INSTRUCTION = {"lm3s6965evb": 6.4, "mps2-an386": 1.6, "mps2-an505": 1.28,
                         "mps3-an547": 2.048, "microbit": 1.024}


# ------------------------------------------------------------------------------------------
# helpers (also used by tests/test_launch.py)


def need_arm_toolchain() -> None:
    missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc", "make")
               if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: qemu-system-arm, "
                    "gcc-arm-none-eabi, libnewlib-arm-none-eabi, make)")


def load_profile(name: str) -> Any:
    from edgesnn.devices import load_device

    return load_device(name)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def build_selftest(device: str, out: Path) -> Path:
    """Build the port self-test firmware (no model) for ``device`` into ``out``, with the
    ``device.mk`` and ``esnn_board.h`` generated from its profile."""
    from edgesnn.devices import write_board_files

    profile = load_profile(device)
    write_board_files(profile, out)
    subprocess.run(["make", "-s", "-C", str(SELFTEST_DIR), f"PORT={profile.build.port}",
                    f"OUT={out}"], check=True, capture_output=True, timeout=120)
    return out / f"selftest-{profile.build.port}.elf"


def selftest_exchange(url: str, k: int, timeout: float = 10.0) -> tuple[int, int, int]:
    """Send byte ``k`` to the self-test firmware; return (cycle unit, n, measured count)."""
    import serial

    port = serial.serial_for_url(url, timeout=timeout)
    try:
        port.write(bytes([k]))
        data = port.read(12)
    finally:
        port.close()
    if len(data) != 12:
        raise TimeoutError(f"self-test answered {len(data)} of 12 bytes")
    unit, n, count = struct.unpack("<III", data)
    return unit, n, count


class Link:
    """Minimal request/response client over the shared frame codec."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        import serial

        self.port = serial.serial_for_url(url, timeout=0.005)
        self.timeout = timeout
        self.decoder = proto.FrameDecoder()
        self.seq = 0

    def close(self) -> None:
        self.port.close()

    def request(self, frame_for_seq: Any) -> proto.Message:
        self.seq = self.seq % 0xFFFE + 1
        self.port.write(frame_for_seq(self.seq).encode())
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for item in self.decoder.feed(self.port.read(4096)):
                if isinstance(item, proto.Frame) and item.seq == self.seq:
                    msg = proto.decode_message(item)
                    assert msg is not None
                    return msg
        raise TimeoutError(f"no reply to seq {self.seq} within {self.timeout} s")

    def hello(self) -> proto.Hello:
        msg = self.request(proto.ping)
        assert isinstance(msg, proto.Hello), msg
        return msg

    def infer(self, pixels: np.ndarray) -> proto.InferResult:
        msg = self.request(lambda seq: proto.infer(seq, pixels.astype(np.uint8).tobytes()))
        assert isinstance(msg, proto.InferResult), msg
        return msg


def build_model_firmware(graph: SpikeGraph, device: str, work: Path) -> tuple[Path, bytes]:
    """Write ``graph`` as a RUN_DIR, generate its C project for ``device`` and build it.
    Returns the ELF and the ``.esg`` bytes."""
    from edgesnn.build import build_project
    from edgesnn.export.c import TARGET

    run_dir = work / "run"
    run_dir.mkdir(parents=True)
    blob = esg.encode(graph)
    (run_dir / "model.esg").write_bytes(blob)
    project = work / "project"
    TARGET.export(run_dir, project, device=device)
    elf = build_project(project).elf
    assert elf.is_file()
    return elf, blob


def check_bit_exact(link: Link, graph: SpikeGraph, pixels: np.ndarray) -> list[int]:
    """INFER every sample; assert RESULT == golden bit for bit; return the cycle counts."""
    gold = simulate(graph, pixels)
    cycles = []
    for k in range(len(pixels)):
        r = link.infer(pixels[k])
        got = (r.prediction, list(r.counts), list(r.ops), list(r.spikes), r.input_spikes)
        want = (int(gold.pred[k]), gold.counts[k].tolist(), gold.ops[k].tolist(),
                gold.spikes[k].tolist(), int(gold.input_spikes[k]))
        assert got == want, f"sample {k}: device {got} != golden {want}"
        cycles.append(r.cycles)
    return cycles


def run_bit_exact(graph: SpikeGraph, device: str, tmp_path: Path, pixels: np.ndarray,
                  repeat: tuple[int, ...] = ()) -> list[int]:
    """Build ``graph``'s firmware for ``device``, launch it, check HELLO and that every RESULT
    equals golden; samples in ``repeat`` run once more and must cost the same count. Returns
    the counts."""
    elf, blob = build_model_firmware(graph, device, tmp_path)
    with launch(load_profile(device), elf) as session:
        link = Link(session.url)
        try:
            check_hello(link.hello(), graph, blob, device)
            cycles = check_bit_exact(link, graph, pixels)
            for k in repeat:  # deterministic to the instruction
                assert link.infer(pixels[k]).cycles == cycles[k]
        finally:
            link.close()
    return cycles


def check_hello(hello: proto.Hello, graph: SpikeGraph, blob: bytes, board: str) -> None:
    assert hello.board == board
    assert hello.model_hash == blob[32:48]
    assert hello.cycle_unit == proto.CycleUnit.INSTRUCTIONS
    assert (hello.input_size, hello.n_classes, hello.steps, hello.n_layers) == (
        graph.input_size, graph.n_classes, graph.steps, len(graph.layers))
    assert hello.arena_bytes == graph.arena_bytes()


# ------------------------------------------------------------------------------------------
# tests


@pytest.mark.qemu
@pytest.mark.parametrize("device", sorted(TICKS_PER_INSTRUCTION))
def test_systick_counts_instructions(device: str, tmp_path: Path) -> None:
    """A loop of n iterations of (subs, bne) must read 2 n instructions (+ a constant), also
    across many wraps of the 24-bit SysTick (n = 10^7: 2 * 10^7 instructions)."""
    need_arm_toolchain()
    elf = build_selftest(device, tmp_path)
    with launch(load_profile(device), elf) as session:
        runs = {k: selftest_exchange(session.url, k) for k in (0, 1, 3, 4)}
        again = selftest_exchange(session.url, 4)
    assert all(unit == 1 for unit, _, _ in runs.values()), "expected instructions (unit 1)"
    c0 = runs[0][2]
    ticks_per_insn = TICKS_PER_INSTRUCTION[device]
    assert float(load_profile(device).ticks_per_unit) == ticks_per_insn
    for k, n in ((1, 10_000), (3, 1_000_000), (4, 10_000_000)):
        assert runs[k][1] == n
        # each wrap of the 24-bit counter runs SysTick_Handler (a handful of instructions)
        wraps = int(2 * n * ticks_per_insn) >> 24
        extra = (runs[k][2] - c0) - 2 * (n - 1000)
        assert -1 <= extra <= 1 + 8 * wraps, (k, c0, runs[k][2], wraps)
    assert again == runs[4], "instruction count differs between two identical runs"


@pytest.mark.qemu
def test_lm3s6965evb_random_graphs_bit_exact(tmp_path: Path) -> None:
    need_arm_toolchain()
    graph = random_graph(11, input_size=96, hidden=(24,), n_classes=10, steps=12,
                         storage="sparse", density=0.5, per_neuron=True)
    pixels = random_pixels(12, 24, graph.input_size)
    cycles = run_bit_exact(graph, "lm3s6965evb", tmp_path, pixels, repeat=(0, 5))
    assert min(cycles) > 0
    assert len(set(cycles)) > 1  # the count follows the work, it is not a constant


@pytest.mark.qemu
def test_lm3s6965evb_mnist_784_32_10_bit_exact(tmp_path: Path, mnist_data_dir: Path) -> None:
    need_arm_toolchain()
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=32)
    graph = random_graph(7, input_size=784, hidden=(32,), n_classes=10, steps=10)
    run_bit_exact(graph, "lm3s6965evb", tmp_path, data.images, repeat=(3,))
    # real digits drive real spikes: a few hundred input spikes per sample at T = 10
    assert int(simulate(graph, data.images).input_spikes.min()) > 100


@pytest.mark.qemu
def test_mps2_an386_bit_exact(tmp_path: Path, mnist_data_dir: Path) -> None:
    need_arm_toolchain()
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=8)
    graph = random_graph(5, input_size=784, hidden=(32,), n_classes=10, steps=8,
                         weight_bits=4, neuron="if", reset="zero")
    run_bit_exact(graph, "mps2-an386", tmp_path, data.images, repeat=(0,))


@pytest.mark.qemu
@pytest.mark.parametrize("device", ["lm3s6965evb", "mps2-an386"])
def test_direct_encoder_fast_paths_bit_exact(device: str, tmp_path: Path,
                                             mnist_data_dir: Path) -> None:
    """The direct encoder on Thumb-2 as training exports it (sparse int8, per-neuron
    thresholds, one leak, biases; subtract reset on the M3, zero on the M4): layer 0's current
    I0 by the assembly multiply-add rows, then added by the assembly fire loop every step to
    the neurons whose current is positive (the others cannot fire); every counter equals
    golden on 64 digits."""
    need_arm_toolchain()
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=64)
    graph = random_graph(17, input_size=784, hidden=(96,), n_classes=10, steps=6,
                         encoder="direct", storage="sparse", density=0.1, per_neuron=True,
                         shared_leak=True, bias=True,
                         reset="zero" if device == "mps2-an386" else "subtract")
    cycles = run_bit_exact(graph, device, tmp_path, data.images)
    ref = simulate(graph, data.images)
    assert int(ref.spikes[:, 0].min()) > 0 and int(ref.ops[:, 0].min()) > 0
    assert len(set(cycles)) > 1


@pytest.mark.qemu
@pytest.mark.parametrize("device", ["microbit", "mps2-an505", "mps3-an547"])
def test_more_cores_bit_exact_on_200_digits(device: str, tmp_path: Path,
                                            mnist_data_dir: Path) -> None:
    """Cortex-M0 (Thumb-1, no divide), M33 and M55: the same sparse int8 model agrees with
    the golden simulator on every counter of 200 real MNIST digits."""
    need_arm_toolchain()
    from edgesnn.data import load_dataset

    data = load_dataset("mnist", "test", data_dir=mnist_data_dir, limit=200)
    graph = random_graph(13, input_size=784, hidden=(48,), n_classes=10, steps=8,
                         storage="sparse", density=0.25, per_neuron=True)
    cycles = run_bit_exact(graph, device, tmp_path, data.images, repeat=(7,))
    assert len(set(cycles)) > 1 and min(cycles) > 0

"""The int8 ANN kernels on Cortex-M under QEMU: the Thumb-2 assembly (MLA on the M3, SMLAD
on the M4) and the C fallback equal the numpy twin bit for bit, and the dense kernel's cost
per MAC for 784-256-10 is within 1.10x of Arm CMSIS-NN's arm_fully_connected_s8 as measured
on the same QEMU boards (``benchmarks/ann_device.py`` ``CMSIS_NN``: 690,411 instructions on
the M3 at -Ofast, 394,506 on the M4 with DSP; 203,264 MACs)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgesnn.graph import ann
from tests.test_ann import sparse_pixels
from tests.test_qemu import need_arm_toolchain

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ann_device  # noqa: E402

pytestmark = pytest.mark.qemu
CMSIS_PER_MAC = ann_device.CMSIS_NN


@pytest.mark.parametrize("port", ann_device.PORTS)
def test_dense_kernel_cost_and_bit_exact(tmp_path: Path, port: str) -> None:
    need_arm_toolchain()
    graph = ann.random_ann(11, 784, (256,), 10, "dense")
    pixels = sparse_pixels(11, 6, 784, zero=0.8)
    elf = ann_device.build(graph, tmp_path, port)
    run = ann_device.run(graph, elf, port, pixels)  # raises on any difference from the twin
    assert run.unit == 1, "QEMU instructions expected (SysTick under -icount)"
    per_mac = float(run.cycles.max()) / graph.macs_dense()
    assert per_mac <= 1.10 * CMSIS_PER_MAC[port], f"{port}: {per_mac:.2f} instructions/MAC"
    # dense cost does not depend on the data beyond the requantization branch
    assert run.cycles.max() - run.cycles.min() < 0.01 * run.cycles.mean()


@pytest.mark.parametrize("port", ann_device.PORTS)
@pytest.mark.parametrize("no_asm", [False, True], ids=["asm", "c"])
def test_kernels_equal_twin_on_odd_shapes(tmp_path: Path, port: str, no_asm: bool) -> None:
    """Remainders of n_in and n_out mod 4, two hidden layers, 16-bit sparse indices."""
    need_arm_toolchain()
    extra = "-DESNN_NO_ASM" if no_asm else ""
    graph = ann.random_ann(12, 61, (30, 300), 7, "dense-skip")
    graph.layers[1].storage = "sparse"
    graph.layers[2].storage = "dense"
    graph.layers[1].weights[np.random.default_rng(1).random((30, 300)) < 0.7] = 0
    pixels = sparse_pixels(12, 6, 61)
    elf = ann_device.build(graph, tmp_path / "m", port, extra_cflags=extra)
    run = ann_device.run(graph, elf, port, pixels)
    assert run.active[:, 1].min() < 30  # zero activations were skipped
    assert run.active[:, 0].min() < 61 and run.active[0, 0] == 0  # and zero pixel groups

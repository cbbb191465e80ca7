"""Op counts, NeuroBench metrics and energy models against hand-computed values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from edgesnn import energy as en
from edgesnn._resources import devices_dir
from edgesnn.devices import Energy, parse_device
from edgesnn.graph.ir import Encoder, EncoderKind, Layer, SpikeGraph, Storage


def _graph(storage=Storage.DENSE, leak=65536, encoder=EncoderKind.RATE) -> SpikeGraph:
    w0 = np.array([[1, 0, 2], [0, 0, 3], [4, 5, 6], [0, 1, 0]], dtype=np.int8)  # 4x3, 5 zeros
    w1 = np.array([[1, -1], [2, 0], [0, 3]], dtype=np.int8)  # 3x2
    mk = lambda w: Layer(weights=w, threshold=np.array([10], np.int32),  # noqa: E731
                         leak=np.array([leak], np.uint32), storage=storage)
    return SpikeGraph(input_size=4, steps=5, layers=[mk(w0), mk(w1)],
                      encoder=Encoder(kind=encoder)).validate()


def test_operations_and_rates() -> None:
    g = _graph()
    ops = np.array([[30, 8], [18, 4]])  # per sample, per layer
    spikes = np.array([[4, 2], [2, 0]])
    inp = np.array([10, 6])
    o = en.operations(g, ops, spikes, inp)
    assert o["sops"] == pytest.approx(24 + 6)
    assert o["ann_macs"] == 12 + 6
    assert o["input_spike_rate"] == pytest.approx(8 / (4 * 5))
    assert o["layers"][0]["spike_rate"] == pytest.approx(3 / (3 * 5))
    assert o["layers"][1]["input_spikes"] == pytest.approx(3)
    assert o["layers"][1]["input_rate"] == pytest.approx(3 / (3 * 5))


def test_neurobench_metrics() -> None:
    g = _graph()
    nb = en.neurobench(g, np.array([[30, 8]]), np.array([[4, 2]]))
    assert nb["connection_sparsity"] == pytest.approx((5 + 2) / 18)
    assert nb["activation_sparsity"] == pytest.approx(1 - 6 / (5 * 5))
    assert nb["synaptic_operations"] == {"dense": 5 * 18, "effective_macs": 0.0,
                                         "effective_acs": 38.0}
    # int8 dense weights + 4-byte threshold and leak per layer + the arena
    assert nb["footprint"] == 18 + 2 * 8 + g.arena_bytes()
    direct = en.neurobench(_graph(encoder=EncoderKind.DIRECT), np.array([[9, 8]]),
                           np.array([[4, 2]]))
    assert direct["synaptic_operations"]["effective_macs"] == 9.0
    assert direct["synaptic_operations"]["dense"] == 12 + 5 * 6


def test_naive_energy_by_hand() -> None:
    g = _graph(leak=60000)
    o = en.operations(g, np.array([[30, 8]]), np.array([[4, 2]]), np.array([10]))
    e = en.naive_energy(g, o)
    add, mul = 0.1, 3.1
    snn = (30 + 5 * 3) * add + 4 * add + 15 * mul + (8 + 5 * 2) * add + 2 * add + 10 * mul
    assert e["snn_pj"] == pytest.approx(snn)
    assert e["ann_int8_pj"] == pytest.approx(18 * (0.2 + 0.1))
    assert e["ann_fp32_pj"] == pytest.approx(18 * 4.6)
    # no leak: no multiplies
    g2 = _graph()
    e2 = en.naive_energy(g2, en.operations(g2, np.array([[30, 8]]), np.array([[4, 2]]),
                                           np.array([10])))
    assert e2["snn_pj"] == pytest.approx(snn - 25 * mul)


def test_memory_energy_uses_lemaire_fit() -> None:
    assert en.e_ram(1000, 8) == pytest.approx(1.09e-5 * 8000 + 13.2)
    g = _graph()
    o = en.operations(g, np.array([[30, 8]]), np.array([[4, 2]]), np.array([10]))
    m = en.memory_energy(g, o)
    l0 = m["snn_layers"][0]
    assert l0["memory_pj"] == pytest.approx(30 * en.e_ram(12, 8) + 2 * (30 + 15) * en.e_ram(3, 32))
    a0 = m["ann_layers"][0]
    assert a0["memory_pj"] == pytest.approx(4 * en.e_ram(4, 8) + 12 * en.e_ram(12, 8)
                                            + 3 * en.e_ram(3, 8))


def test_device_energy_and_break_even() -> None:
    prof = Energy(voltage_v=3.0, current_ua_per_mhz=166.7, energy_per_cycle_nj=0.5,
                  sources=("x",))
    d = en.device_energy(np.array([1000.0, 3000.0]), "cycles", prof)
    assert d["available"] and d["uj_per_inference"] == pytest.approx(1.0)
    assert d["sources"] == ["x"]
    assert not en.device_energy(np.array([1.0]), "nanoseconds", prof)["available"]
    assert not en.device_energy(np.array([1.0]), "cycles", None)["available"]
    # the profile loader derives nJ/cycle once; energy.py uses what it derived
    raw = tomllib.loads((devices_dir() / "lm3s6965evb.toml").read_text())
    del raw["energy"]["energy_per_cycle_nj"]
    raw["energy"]["current_ua_per_mhz"] = 100.0
    derived = parse_device(raw, Path("x.toml")).energy
    assert en.device_energy(np.array([1000.0]), "cycles", derived)["energy_per_cycle_nj"] == \
        pytest.approx(0.3)
    g = _graph()
    o = en.operations(g, np.array([[30, 8]]), np.array([[4, 2]]), np.array([10]))
    # a device whose cost is exactly 5 + 1 cycle per SOP; dense int8 costs 18 MACs * 1.5
    tot = np.array([10.0, 20.0, 40.0, 80.0])
    be = en.break_even(g, o, cycles=5 + 1 * tot, total_ops=tot, unit="cycles")
    mcu = be["mcu"]
    assert mcu["cycles_fixed"] == pytest.approx(5) and mcu["cycles_per_sop"] == pytest.approx(1)
    assert mcu["rate"] == pytest.approx((18 * 1.5 - 5) / (1 * 5 * 18))
    slow = en.break_even(g, o, cycles=100 + 2 * tot, total_ops=tot, unit="cycles")
    assert slow["mcu"]["rate"] == 0.0  # the fixed cost alone exceeds the dense network
    assert "mcu" not in en.break_even(g, o, cycles=tot, total_ops=tot, unit="nanoseconds")
    assert be["measured_rate"] == pytest.approx(38 / (5 * 18))
    # naive energy break-even: r*T*full*add + fixed == ann
    fixed = 5 * 5 * 0.1
    assert be["energy_naive_rate"] == pytest.approx(max(0.0, (18 * 0.3 - fixed) / (5 * 18 * 0.1)))


def test_energy_sources_cite_originals_not_project_notes() -> None:
    """Every source a report prints names a paper, datasheet or results page a user can
    open, never this project's own notes (shared/reference/FACTS.md)."""
    from edgesnn.devices import list_devices, load_device

    cited = [en.HOROWITZ, en.LEMAIRE, en.CMSIS_NN]
    for name in list_devices():
        cited += load_device(name).energy.sources
    cited += [p.read_text() for p in devices_dir().glob("*.toml")]  # crossbar ones too
    for text in cited:
        assert "FACTS" not in text and "shared/reference" not in text, text[:200]
    assert "doi:10.1109/ISSCC.2014.6757323" in en.HOROWITZ
    assert "arXiv:2210.13107" in en.LEMAIRE

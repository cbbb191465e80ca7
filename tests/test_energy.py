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


def _graph(storage=Storage.DENSE, leak=65536, encoder=EncoderKind.RATE,
           steps: int = 5) -> SpikeGraph:
    w0 = np.array([[1, 0, 2], [0, 0, 3], [4, 5, 6], [0, 1, 0]], dtype=np.int8)  # 4x3, 5 zeros
    w1 = np.array([[1, -1], [2, 0], [0, 3]], dtype=np.int8)  # 3x2
    mk = lambda w: Layer(weights=w, threshold=np.array([10], np.int32),  # noqa: E731
                         leak=np.array([leak], np.uint32), storage=storage)
    return SpikeGraph(input_size=4, steps=steps, layers=[mk(w0), mk(w1)],
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
    # naive energy break-even, by hand: at rate r every layer does r*T*fanout SOPs and
    # r*T*n_out spikes (one reset add each); T = 5, fanouts 12 + 6, neurons 3 + 2:
    # SNN(r) = (5*18*r + 5*5 + 5*5*r) * 0.1 = 2.5 + 11.5 r;  ANN = 18 MACs * 0.3 = 5.4
    # r = (5.4 - 2.5) / 11.5 = 0.25217391...
    assert be["energy_naive_rate"] == pytest.approx(0.2521739130434783, rel=1e-12)


def test_memory_aware_by_hand() -> None:
    """Lemaire's model on the toy graph, every term written out (T = 5, int8 weights):
    e_ram(N, b) = 1.09e-5*N*b + 13.2 pJ, so
      e_ram(12, 8) = e_ram(3, 32) = 13.2 + 0.0010464 = 13.2010464  (96 bits)
      e_ram(6, 8) = 13.2005232 (48 bits), e_ram(2, 32) = 13.2006976 (64 bits)
      e_ram(4, 8) = 13.2003488, e_ram(3, 8) = 13.2002616, e_ram(2, 8) = 13.2001744
    layer 0: 30 SOPs, 3 neurons x 5 steps = 15 neuron-steps, 4 spikes
      weights 30 * 13.2010464 = 396.031392; membrane 2 * (30 + 15) * 13.2010464 = 1188.094176
      ops (30 + 15 + 4) int32 adds * 0.1 = 4.9
    layer 1: 8 SOPs, 10 neuron-steps, 2 spikes
      weights 8 * 13.2005232 = 105.6041856; membrane 2 * 18 * 13.2006976 = 475.2251136
      ops (8 + 10 + 2) * 0.1 = 2.0
    SNN = 2171.8548672 pJ
    ANN layer 0: 4*13.2003488 + 12*13.2010464 + 3*13.2002616 = 250.8147368, 12 MACs*0.3 = 3.6
    ANN layer 1: 3*13.2002616 + 6*13.2005232 + 2*13.2001744 = 145.2042728, 6 MACs*0.3 = 1.8
    ANN = 401.4190096 pJ"""
    g = _graph()
    o = en.operations(g, np.array([[30, 8]]), np.array([[4, 2]]), np.array([10]))
    m = en.memory_energy(g, o)
    l0, l1 = m["snn_layers"]
    assert l0["weights_pj"] == pytest.approx(396.031392, rel=1e-12)
    assert l0["membrane_pj"] == pytest.approx(1188.094176, rel=1e-12)
    assert l0["ops_pj"] == pytest.approx(4.9, rel=1e-12)
    assert l1["weights_pj"] == pytest.approx(105.6041856, rel=1e-12)
    assert l1["membrane_pj"] == pytest.approx(475.2251136, rel=1e-12)
    assert l1["ops_pj"] == pytest.approx(2.0, rel=1e-12)
    assert m["snn_pj"] == pytest.approx(2171.8548672, rel=1e-12)
    assert m["ann_int8_pj"] == pytest.approx(401.4190096, rel=1e-12)
    assert m["membrane_pj"] == pytest.approx(1188.094176 + 475.2251136, rel=1e-12)
    assert "13.2 pJ" in m["assumptions"] and "membrane" in m["assumptions"]
    assert f"{(1188.094176 + 475.2251136) / 2171.8548672:.0%}" in m["assumptions"]


def test_memory_break_even_by_hand() -> None:
    """T = 1 so the fixed membrane traffic is below the ANN's cost. At rate r:
    layer 0: 12r SOPs, 3r spikes, 3 neuron-steps; layer 1: 6r SOPs, 2r spikes, 2 neuron-steps
    SNN(r) = 12r*13.2010464 + 2*(12r + 3)*13.2010464 + (12r + 3 + 3r)*0.1
           + 6r*13.2005232 + 2*(6r + 2)*13.2006976 + (6r + 2 + 2r)*0.1
      constant: 6*13.2010464 + 0.3 + 4*13.2006976 + 0.2 = 132.5090688
      slope: 36*13.2010464 + 1.5 + 6*13.2005232 + 12*13.2006976 + 0.8 = 715.1491808
    ANN = 401.4190096 (test_memory_aware_by_hand; it has no T)
    r = (401.4190096 - 132.5090688) / 715.1491808 = 0.37601936...
    The old formula (no membrane traffic, mean weight-read cost, no ANN input/output traffic)
    gave (18*(0.3 + 13.2007848) - 0.5) / (18*13.3007848) = 1.0129..."""
    g = _graph(steps=1)
    o = en.operations(g, np.array([[12, 6]]), np.array([[3, 2]]), np.array([4]))
    be = en.break_even(g, o)
    assert be["energy_memory_rate"] == pytest.approx(268.9099408 / 715.1491808, rel=1e-12)
    # the rate really is where the pricing function meets the ANN's cost
    at = en.operations_at_rate(g, o, be["energy_memory_rate"])
    assert en.memory_energy(g, at)["snn_pj"] == pytest.approx(401.4190096, rel=1e-12)
    sram = be["energy_memory_sram_rate"]
    at = en.operations_at_rate(g, o, sram)
    priced = en.memory_energy(g, at, "horowitz_sram")
    assert priced["snn_pj"] == pytest.approx(priced["ann_int8_pj"], rel=1e-12)
    assert be["measured_rate"] == pytest.approx(18 / 18)


def test_direct_encoding_prices_layer0_as_macs() -> None:
    """Direct encoding: layer 0's 9 ops are MACs (uint8 pixel x int8 weight), done once.
    naive: layer 0 9*(0.2 + 0.1) + 15 neuron-step adds*0.1 + 4 resets*0.1 = 4.6;
           layer 1 (8 + 10 + 2)*0.1 = 2.0; SNN = 6.6 pJ
    fp32 figure: 9 MACs * (3.7 + 0.9) + 8 ACs * 0.9 = 41.4 + 7.2 = 48.6 pJ
    (rate coding, 38 ACs: 38 * 0.9 = 34.2 pJ)
    naive break-even: layer 0 fixed 2.7 + 1.5, spikes 15r*0.1; layer 1 30r*0.1 + 1.0 + 10r*0.1
      SNN(r) = 5.2 + 5.5 r = 5.4 -> r = 0.2/5.5 = 0.0363636...; measured: 8 / (5*6)"""
    g = _graph(encoder=EncoderKind.DIRECT)
    o = en.operations(g, np.array([[9, 8]]), np.array([[4, 2]]), np.array([0]))
    e = en.naive_energy(g, o)
    assert e["snn_pj"] == pytest.approx(6.6, rel=1e-12)
    assert e["snn_fp32_ac_pj"] == pytest.approx(48.6, rel=1e-12)
    assert (e["snn_macs"], e["snn_acs"]) == (9.0, 8.0)
    m = en.memory_energy(g, o)
    assert m["snn_layers"][0]["ops_pj"] == pytest.approx(4.6, rel=1e-12)
    be = en.break_even(g, o)
    assert be["energy_naive_rate"] == pytest.approx(0.2 / 5.5, rel=1e-9)
    assert be["measured_rate"] == pytest.approx(8 / 30)
    gr = _graph()
    rate = en.naive_energy(gr, en.operations(gr, np.array([[30, 8]]), np.array([[4, 2]]),
                                             np.array([10])))
    assert rate["snn_fp32_ac_pj"] == pytest.approx(34.2, rel=1e-12)


def test_horowitz_sram_access_model() -> None:
    """Horowitz's 64-bit SRAM reads: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; power law between,
    the end segments' exponents outside: 2 KB -> 10 * sqrt(2/8) = 5 pJ; 128 KB ->
    20 * 4**(ln 5 / ln 32) = 20 * 1.903653... = 38.07306 pJ."""
    assert en.e_sram_horowitz(8192, 8) == pytest.approx(10.0)
    assert en.e_sram_horowitz(8192, 32) == pytest.approx(20.0)
    assert en.e_sram_horowitz(1024 * 1024, 8) == pytest.approx(100.0)
    assert en.e_sram_horowitz(512, 32) == pytest.approx(5.0)
    assert en.e_sram_horowitz(128 * 1024, 8) == pytest.approx(38.07306, rel=1e-6)
    g = _graph()
    o = en.operations(g, np.array([[30, 8]]), np.array([[4, 2]]), np.array([10]))
    m = en.memory_energy(g, o, "horowitz_sram")
    # layer 0 weights: 12 bytes -> 10 * sqrt(12/8192) = 0.38273277 pJ per read, 30 reads
    assert m["snn_layers"][0]["weights_pj"] == pytest.approx(30 * 0.38273277, rel=1e-7)
    assert "sram_8kb" in m["constants"] and m["model"] == "horowitz_sram"


def test_energy_sources_cite_originals_not_project_notes() -> None:
    """Every source a report prints names a paper, datasheet or results page a user can
    open, never this project's own notes (shared/reference/FACTS.md)."""
    from edgesnn.devices import list_devices, load_device

    cited = [en.HOROWITZ, en.LEMAIRE, en.CMSIS_NN, en.HOROWITZ_SRAM_SOURCE]
    for name in list_devices():
        cited += load_device(name).energy.sources
    cited += [p.read_text() for p in devices_dir().glob("*.toml")]  # crossbar ones too
    for text in cited:
        assert "FACTS" not in text and "shared/reference" not in text, text[:200]
    assert "doi:10.1109/ISSCC.2014.6757323" in en.HOROWITZ
    assert "arXiv:2210.13107" in en.LEMAIRE


def test_neurobench_footprint_split_and_nonzero_weight_ops() -> None:
    """NeuroBench's footprint of a torch module holding the toy graph: 12 + 6 int8 weights
    = 18 parameter bytes; threshold + leak (int32) per layer as buffers = 2 * 8 = 16.
    Direct encoding, pixels [255, 0, 7, 0]: layer 0 does one MAC per non-zero pixel and
    weight; rows 0 and 2 hold 2 and 3 non-zero weights -> 5 (the runtime's dense rows: 3 + 3)."""
    g = _graph(encoder=EncoderKind.DIRECT)
    nb = en.neurobench(g, np.array([[6, 0]]), np.array([[0, 0]]))
    fd = nb["footprint_detail"]
    assert (fd["neurobench_parameters_bytes"], fd["neurobench_buffers_bytes"]) == (18, 16)
    assert "runtime ops" in nb["synaptic_operations_basis"]
    px = np.array([[255, 0, 7, 0]], dtype=np.uint8)
    nz = en.nonzero_weight_ops(g, px)
    assert nz[0, 0] == 5
    from edgesnn.graph.golden import simulate
    sim = simulate(g, px)
    assert sim.ops[0, 0] == 6
    fixed = en.neurobench(g, sim.ops, sim.spikes, nonzero_ops=nz)
    assert fixed["synaptic_operations"]["effective_macs"] == 5.0
    assert fixed["synaptic_operations_basis"].startswith("NeuroBench")

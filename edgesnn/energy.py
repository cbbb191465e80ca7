"""Operation counts and energy estimates for a spike graph, from measured per-sample counters.

Three models, each constant with the paper or datasheet it comes from:

* **naive per-op** — Horowitz, ISSCC 2014 (45 nm, 0.9 V) energy per arithmetic op;
* **memory-aware** — Lemaire et al., ICONIP 2022: ops + SRAM accesses, where one access to a
  memory of N elements of b bits costs ``1.09e-5 * N * b + 13.2`` pJ;
* **device** — measured cycles × the device profile's energy per cycle.

Also: SOPs vs the equivalent ANN's MACs, spike rates per layer, the NeuroBench metrics
(footprint, connection_sparsity, activation_sparsity, synaptic_operations) and the input spike
rate at which this SNN breaks even with a dense int8 network (energy model, and on the MCU
from a cycles-vs-ops fit). numpy only; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesnn.graph.ir import Q16_ONE, EncoderKind, SpikeGraph, Storage

if TYPE_CHECKING:
    from edgesnn.devices import Energy

HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
            "IEEE ISSCC 2014, pp. 10-14, doi:10.1109/ISSCC.2014.6757323 (45 nm, 0.9 V)")
LEMAIRE = ("E. Lemaire et al., 'An analytical estimation of spiking neural networks energy "
           "efficiency', ICONIP 2022, arXiv:2210.13107: E_ram = 1.09e-5 * N * b + 13.2 pJ "
           "per access")
CMSIS_NN = ("L. Lai, N. Suda, V. Chandra, 'CMSIS-NN: Efficient Neural Network Kernels for Arm "
            "Cortex-M CPUs', arXiv:1801.06601 (2018), int8 fully connected with SMLAD (two "
            "16-bit MACs per cycle, Arm Cortex-M4 Technical Reference Manual): 1.25-1.5 "
            "cycles/MAC; 1.5 used, an optimistic figure for a Cortex-M3 without SIMD")


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "source": self.source}


# Horowitz ISSCC 2014, 45 nm, table of energy per operation.
PJ = {
    "int8_add": Constant(0.03, "pJ", HOROWITZ),
    "int16_add": Constant(0.05, "pJ", HOROWITZ),
    "int32_add": Constant(0.1, "pJ", HOROWITZ),
    "int8_mult": Constant(0.2, "pJ", HOROWITZ),
    "int32_mult": Constant(3.1, "pJ", HOROWITZ),
    "fp32_add": Constant(0.9, "pJ", HOROWITZ),
    "fp32_mult": Constant(3.7, "pJ", HOROWITZ),
}
RAM_SLOPE = Constant(1.09e-5, "pJ per bit of array size", LEMAIRE)
RAM_OFFSET = Constant(13.2, "pJ", LEMAIRE)
CYCLES_PER_MAC = Constant(1.5, "cycles/MAC", CMSIS_NN)


def e_ram(n_elements: int, bits: int) -> float:
    """pJ for one access to a memory of ``n_elements`` × ``bits`` (Lemaire et al.)."""
    return RAM_SLOPE.value * n_elements * bits + RAM_OFFSET.value


def _leaky(graph: SpikeGraph, li: int) -> bool:
    return bool(np.any(graph.layers[li].leak != Q16_ONE))


def _fanout_total(graph: SpikeGraph, li: int) -> int:
    """Σ_i fanout(i): ops if every input of layer li spiked once."""
    layer = graph.layers[li]
    if Storage(layer.storage) == Storage.SPARSE:
        return layer.nnz
    return layer.n_in * layer.n_out


def _stored_weights(graph: SpikeGraph, li: int) -> int:
    layer = graph.layers[li]
    return layer.nnz if Storage(layer.storage) == Storage.SPARSE else layer.n_in * layer.n_out


def layer_inputs(graph: SpikeGraph, input_spikes: float, spikes: np.ndarray) -> list[float]:
    """Mean presynaptic spikes each layer receives per inference."""
    return [float(input_spikes)] + [float(s) for s in spikes[:-1]]


def operations(graph: SpikeGraph, ops: np.ndarray, spikes: np.ndarray,
               input_spikes: np.ndarray) -> dict[str, Any]:
    """Mean per-inference op counts from per-sample counters ``ops``/``spikes`` ``[N, L]``."""
    ops_m = ops.mean(axis=0) if len(ops) else np.zeros(len(graph.layers))
    spk_m = spikes.mean(axis=0) if len(spikes) else np.zeros(len(graph.layers))
    in_m = float(input_spikes.mean()) if len(input_spikes) else 0.0
    T = graph.steps
    macs = [layer.n_in * layer.n_out for layer in graph.layers]
    sizes_in = [graph.input_size] + [layer.n_out for layer in graph.layers[:-1]]
    layers = []
    for li, layer in enumerate(graph.layers):
        layers.append({
            "name": layer.name or f"layer{li}", "n_in": layer.n_in, "n_out": layer.n_out,
            "storage": Storage(layer.storage).name.lower(), "weight_bits": layer.weight_bits,
            "nnz": layer.nnz, "sops": float(ops_m[li]), "ann_macs": macs[li],
            "spikes": float(spk_m[li]), "spike_rate": float(spk_m[li]) / (layer.n_out * T),
            "input_spikes": layer_inputs(graph, in_m, spk_m)[li],
            "input_rate": layer_inputs(graph, in_m, spk_m)[li] / (sizes_in[li] * T),
        })
    total_sops = float(ops_m.sum())
    return {
        "steps": T, "layers": layers, "sops": total_sops, "ann_macs": int(sum(macs)),
        "sops_per_ann_mac": total_sops / sum(macs) if sum(macs) else None,
        "input_spike_rate": in_m / (graph.input_size * T),
        "input_spikes": in_m,
    }


def neurobench(graph: SpikeGraph, ops: np.ndarray, spikes: np.ndarray,
               esg_bytes: int | None = None) -> dict[str, Any]:
    """NeuroBench v2 metric names, averaged per sample (Yik et al., 'NeuroBench: A Framework
    for Benchmarking Neuromorphic Computing Algorithms and Systems', arXiv:2304.04640)."""
    T = graph.steps
    params = 0
    zeros = total = 0
    for li, layer in enumerate(graph.layers):
        n_w = _stored_weights(graph, li)
        params += (n_w * layer.weight_bits + 7) // 8
        if Storage(layer.storage) == Storage.SPARSE:
            params += n_w * (1 if layer.n_out <= 256 else 2) + 4 * (layer.n_in + 1)
        params += 4 * (layer.threshold.size + layer.leak.size)
        zeros += layer.n_in * layer.n_out - layer.nnz
        total += layer.n_in * layer.n_out
    buffers = graph.arena_bytes()
    neurons = sum(layer.n_out for layer in graph.layers)
    mean_spikes = float(spikes.sum(axis=1).mean()) if len(spikes) else 0.0
    direct = graph.encoder.kind == EncoderKind.DIRECT
    ops_m = ops.mean(axis=0) if len(ops) else np.zeros(len(graph.layers))
    dense = sum(layer.n_in * layer.n_out * (1 if direct and li == 0 else T)
                for li, layer in enumerate(graph.layers))
    eff_macs = float(ops_m[0]) if direct else 0.0
    eff_acs = float(ops_m.sum()) - eff_macs
    return {
        "footprint": params + buffers,
        "footprint_detail": {"parameters_bytes": params, "buffers_bytes": buffers,
                             "esg_file_bytes": esg_bytes},
        "connection_sparsity": zeros / total if total else 0.0,
        "activation_sparsity": 1.0 - mean_spikes / (neurons * T) if neurons else 0.0,
        "synaptic_operations": {"dense": dense, "effective_macs": eff_macs,
                                "effective_acs": eff_acs},
    }


def naive_energy(graph: SpikeGraph, ops: dict[str, Any]) -> dict[str, Any]:
    """pJ per inference, Horowitz per-op energies; ANN = same layer sizes, one dense pass."""
    T = graph.steps
    add32, mul32 = PJ["int32_add"].value, PJ["int32_mult"].value
    snn = 0.0
    for li, lay in enumerate(ops["layers"]):
        n_out = lay["n_out"]
        snn += (lay["sops"] + T * n_out) * add32  # synaptic adds + one add of I per step
        snn += lay["spikes"] * add32  # subtractive reset (or a store for zero reset)
        if _leaky(graph, li):
            snn += T * n_out * mul32
    macs = ops["ann_macs"]
    ann_int8 = macs * (PJ["int8_mult"].value + add32)
    ann_fp32 = macs * (PJ["fp32_mult"].value + PJ["fp32_add"].value)
    snn_fp32_ac = ops["sops"] * PJ["fp32_add"].value  # the usual SNN-paper figure (E_AC)
    return {
        "snn_pj": snn, "ann_int8_pj": ann_int8, "ann_fp32_pj": ann_fp32,
        "snn_fp32_ac_pj": snn_fp32_ac,
        "snn_vs_ann_int8": snn / ann_int8 if ann_int8 else None,
        "constants": {k: v.to_json() for k, v in PJ.items()},
        "assumptions": "SNN: one int32 add per SOP and per neuron-step, one int32 mult per "
                       "neuron-step for a leak, one int32 add per reset; ANN int8: one int8 "
                       "mult + int32 add per MAC; ANN fp32: fp32 mult + add per MAC.",
    }


def memory_energy(graph: SpikeGraph, ops: dict[str, Any]) -> dict[str, Any]:
    """pJ per inference, Lemaire et al. (ops + SRAM accesses with a size-dependent cost)."""
    T = graph.steps
    add32, mul32 = PJ["int32_add"].value, PJ["int32_mult"].value
    snn_layers, ann_layers = [], []
    for li, (layer, lay) in enumerate(zip(graph.layers, ops["layers"], strict=True)):
        n_w = _stored_weights(graph, li)
        e_w = e_ram(n_w, layer.weight_bits)
        e_v = e_ram(layer.n_out, 32)
        sops, n_out = lay["sops"], layer.n_out
        mem_rw = sops + T * n_out  # membrane reads (and as many writes)
        e_mem = sops * e_w + 2 * mem_rw * e_v
        e_ops = (sops + T * n_out + lay["spikes"]) * add32
        if _leaky(graph, li):
            e_ops += T * n_out * mul32
        snn_layers.append({"name": lay["name"], "memory_pj": e_mem, "ops_pj": e_ops})
        macs = layer.n_in * layer.n_out
        a_mem = (layer.n_in * e_ram(layer.n_in, 8) + macs * e_ram(macs, 8)
                 + layer.n_out * e_ram(layer.n_out, 8))
        a_ops = macs * (PJ["int8_mult"].value + add32)
        ann_layers.append({"name": lay["name"], "memory_pj": a_mem, "ops_pj": a_ops})
    snn = sum(x["memory_pj"] + x["ops_pj"] for x in snn_layers)
    ann = sum(x["memory_pj"] + x["ops_pj"] for x in ann_layers)
    return {
        "snn_pj": snn, "ann_int8_pj": ann, "snn_vs_ann_int8": snn / ann if ann else None,
        "snn_layers": snn_layers, "ann_layers": ann_layers,
        "constants": {"ram_slope": RAM_SLOPE.to_json(), "ram_offset": RAM_OFFSET.to_json(),
                      "int32_add": PJ["int32_add"].to_json(),
                      "int32_mult": PJ["int32_mult"].to_json(),
                      "int8_mult": PJ["int8_mult"].to_json()},
        "assumptions": "SNN layer: one weight read per SOP, membrane read+write per SOP and "
                       "per neuron-step, adds per SOP, neuron-step and reset, a leak mult per "
                       "neuron-step; ANN int8 layer: reads n_in inputs and n_in*n_out weights, "
                       "n_in*n_out MACs, writes n_out outputs (8-bit activations); no "
                       "addressing overhead for sparse rows.",
    }


def device_energy(cycles: np.ndarray, unit: str, energy: Energy | None) -> dict[str, Any]:
    """Mean cycles × the profile's energy per cycle (``DeviceProfile.energy``, whose loader
    derives nJ per cycle from µA/MHz and volts when only those are given)."""
    if unit == "nanoseconds":
        return {"available": False,
                "reason": "the host build reports nanoseconds, not cycles; no energy per cycle"}
    if energy is None or not len(cycles):
        return {"available": False, "reason": "no device profile with [energy]"
                if energy is None else "no device samples"}
    per_cycle = energy.energy_per_cycle_nj
    mean = float(np.mean(cycles))
    return {
        "available": True, "cycles_mean": mean, "unit": unit,
        "energy_per_cycle_nj": per_cycle, "uj_per_inference": mean * per_cycle / 1000.0,
        "pj_per_inference": mean * per_cycle * 1000.0,
        "sources": list(energy.sources),
        "note": "instructions (QEMU -icount) taken as cycles" if unit == "instructions" else "",
    }


def _fit_cycles(cycles: np.ndarray, total_ops: np.ndarray) -> tuple[float, float] | None:
    if len(cycles) < 3 or np.ptp(total_ops) == 0:
        return None
    slope, intercept = np.polyfit(total_ops.astype(np.float64), cycles.astype(np.float64), 1)
    return float(intercept), float(slope)


def break_even(graph: SpikeGraph, ops: dict[str, Any], *, cycles: np.ndarray | None = None,
               total_ops: np.ndarray | None = None, unit: str = "") -> dict[str, Any]:
    """Input spike rate (spikes per input neuron per step, same in every layer) at which this
    SNN costs as much as a dense int8 network of the same layer sizes."""
    T = graph.steps
    full = sum(_fanout_total(graph, li) for li in range(len(graph.layers)))
    neuron_steps = T * sum(layer.n_out for layer in graph.layers)
    leak_steps = T * sum(layer.n_out for li, layer in enumerate(graph.layers)
                         if _leaky(graph, li))
    add32, mul32 = PJ["int32_add"].value, PJ["int32_mult"].value
    macs = ops["ann_macs"]
    measured = ops["sops"] / (T * full) if full else None
    out: dict[str, Any] = {"measured_rate": measured}
    # energy, Horowitz: E(r) = r*T*full*add32 + neuron_steps*add32 + leak_steps*mul32
    ann = macs * (PJ["int8_mult"].value + add32)
    fixed = neuron_steps * add32 + leak_steps * mul32
    out["energy_naive_rate"] = max(0.0, (ann - fixed) / (T * full * add32))
    # memory-aware: each SOP also reads a weight; each MAC reads one too
    e_w = float(np.mean([e_ram(_stored_weights(graph, li), lay.weight_bits)
                         for li, lay in enumerate(graph.layers)]))
    ann_m = macs * (PJ["int8_mult"].value + add32 + e_w)
    out["energy_memory_rate"] = max(0.0, (ann_m - fixed) / (T * full * (add32 + e_w)))
    if cycles is not None and total_ops is not None and unit in ("cycles", "instructions"):
        fit = _fit_cycles(cycles, total_ops)
        if fit is not None:
            c0, c1 = fit
            dense_cycles = macs * CYCLES_PER_MAC.value
            out["mcu"] = {
                "cycles_fixed": c0, "cycles_per_sop": c1, "unit": unit,
                "dense_int8_cycles": dense_cycles,
                "rate": max(0.0, (dense_cycles - c0) / (c1 * T * full)) if c1 > 0 else None,
                "cycles_per_mac": CYCLES_PER_MAC.to_json(),
            }
    out["sources"] = [HOROWITZ, LEMAIRE, CMSIS_NN]
    return out

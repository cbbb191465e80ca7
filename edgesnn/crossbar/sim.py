"""Run a spiking network through mapped crossbar arrays (numpy, vectorised over samples).

One inference, per time step ``t`` and layer ``l`` (SPEC.md 3.2 with the synaptic current
computed by the arrays):

1. the layer's input spikes drive their physical rows with one ``V_read`` pulse (1-bit DAC);
   rows without a spike are not driven;
2. every array produces differential column currents ``I = V * sum_i s_i (G+_ij - G-_ij)``
   (expressed here in conductance *levels*, i.e. divided by ``V * dG``) with the conductances of
   this Monte-Carlo trial: quantized levels, programming noise, device-to-device variation,
   stuck-at cells, drift to ``time_s``, a first-order wire-resistance (IR-drop) attenuation and
   per-read noise;
3. each column group's ADC digitises its array's partial current with ``bits`` over its range
   ``[-R, R)`` (clipping outside it);
4. the digital periphery multiplies by ``weight_scale`` (and the global drift-compensation
   factor), adds the row tiles' partial sums and rounds to an integer current, then runs the
   integer LIF neuron of SPEC.md (leak, integrate, fire ``v > theta``, reset).

With ``ideal`` every non-ideality is off (the ADC is a perfect converter) and only the
level quantization remains, so a mapping with enough levels reproduces the golden simulator
bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgesnn.crossbar.mapping import CrossbarMapping, LayerMapping
from edgesnn.crossbar.profile import CrossbarProfile
from edgesnn.graph.golden import lif_step, readout
from edgesnn.graph.ir import EncoderKind, ResetMode
from edgesnn.graph.prng import latency_spikes, rate_spikes

STUCK_OK, STUCK_GMIN, STUCK_GMAX = 0, 1, 2


@dataclass
class Conditions:
    """What one simulation run models. ``None`` fields take the profile's value."""

    ideal: bool = False
    programming_sigma: float | None = None
    variation_sigma: float | None = None
    read_sigma: float | None = None
    stuck_at_gmin: float | None = None
    stuck_at_gmax: float | None = None
    stuck_map: np.ndarray | None = None  # int8 [arrays, rows, cols]; replaces random faults
    time_s: float | None = None  # seconds after programming; None = drift reference time t0
    wire: bool = True
    adc: bool = True

    def value(self, name: str, profile: CrossbarProfile) -> float:
        own = getattr(self, name)
        return float(profile[f"noise.{name}"]) if own is None else float(own)


@dataclass
class InputSpec:
    encoder: EncoderKind
    seed: int
    steps: int
    input_size: int


@dataclass
class XbarResult:
    """Per-sample outputs (numpy int64 unless stated)."""

    pred: np.ndarray
    counts: np.ndarray
    v_final: np.ndarray
    input_spikes: np.ndarray
    spikes: np.ndarray  # [B, L]
    cell_reads: np.ndarray  # [B]
    adc_conversions: np.ndarray  # [B]
    neuron_updates: np.ndarray  # [B]
    digital_adds: np.ndarray  # [B]
    cell_energy_pj: np.ndarray  # float64 [B]: V^2 * t * sum of G over the driven cells


@dataclass
class PhysLayer:
    """One trial's realised arrays for one layer."""

    d: np.ndarray  # float32 [RT, rows, CT*P]: (G+ - G-) / dG
    var: np.ndarray | None  # float32 [RT, rows, CT*P]: per-read current variance / dG^2
    row_g_us: np.ndarray  # float64 [phys_rows]: sum of G over mapped cells of each row
    adc_range: np.ndarray  # float32 [RT, 1, CT*P] per pair (level units)


def sample_stuck_map(n_arrays: int, rows: int, cols: int, p_gmin: float, p_gmax: float,
                     rng: np.random.Generator) -> np.ndarray:
    u = rng.random((n_arrays, rows, cols))
    out = np.zeros((n_arrays, rows, cols), dtype=np.int8)
    out[u < p_gmin] = STUCK_GMIN
    out[(u >= p_gmin) & (u < p_gmin + p_gmax)] = STUCK_GMAX
    return out


def layer_stuck(stuck_map: np.ndarray, lm: LayerMapping) -> np.ndarray:
    """The stuck states under one layer's cells: ``[phys_rows, col_tiles * cols]``."""
    blk = stuck_map[lm.first_array:lm.first_array + lm.n_arrays]
    blk = blk.reshape(lm.row_tiles, lm.col_tiles, lm.rows, lm.cols)
    return blk.transpose(0, 2, 1, 3).reshape(lm.phys_rows, lm.col_tiles * lm.cols)


def mapped_pair_mask(lm: LayerMapping) -> np.ndarray:
    m = np.zeros(lm.phys_pairs, dtype=bool)
    m[lm.col_slot] = True
    return m


def realize(mapping: CrossbarMapping, profile: CrossbarProfile, cond: Conditions,
            rng: np.random.Generator) -> tuple[list[PhysLayer], float]:
    """Draw one trial's conductances; returns the layers and the drift-compensation factor."""
    g_min, g_max, dg = profile.g_min, profile.g_max, profile.delta_g
    stuck_map = cond.stuck_map
    n_arrays = mapping.arrays_used
    if stuck_map is None and not cond.ideal:
        p0, p1 = cond.value("stuck_at_gmin", profile), cond.value("stuck_at_gmax", profile)
        if p0 > 0 or p1 > 0:
            stuck_map = sample_stuck_map(n_arrays, profile.rows, profile.cols, p0, p1, rng)
    if stuck_map is not None:
        want = (n_arrays, profile.rows, profile.cols)
        if stuck_map.ndim != 3 or stuck_map.shape[0] < n_arrays or stuck_map.shape[1:] != want[1:]:
            raise ValueError(f"stuck map has shape {stuck_map.shape}; this mapping needs at "
                             f"least {want} (arrays, rows, cols)")
    t0 = float(profile["noise.drift_t0_s"])
    t = t0 if cond.time_s is None else float(cond.time_s)
    nu_mean, nu_sig = float(profile["noise.drift_nu"]), float(profile["noise.drift_nu_sigma"])
    drifting = (not cond.ideal) and t > t0 and (nu_mean > 0 or nu_sig > 0)
    comp = 1.0
    if drifting and bool(profile["noise.drift_compensation"]):
        comp = (t / t0) ** nu_mean
    sig_p = 0.0 if cond.ideal else cond.value("programming_sigma", profile)
    sig_v = 0.0 if cond.ideal else cond.value("variation_sigma", profile)
    sig_r = 0.0 if cond.ideal else cond.value("read_sigma", profile)
    r_wire = 0.0 if (cond.ideal or not cond.wire) else float(profile["array.wire_resistance_ohm"])
    out: list[PhysLayer] = []
    for lm in mapping.layers:
        g = g_min + lm.cells.astype(np.float64) * dg  # [R, CT*cols] µS
        if sig_p > 0:
            g = g + sig_p * (g_max - g_min) * rng.standard_normal(g.shape)
        if sig_v > 0:
            g = g * (1.0 + sig_v * rng.standard_normal(g.shape))
        np.maximum(g, 0.0, out=g)
        if stuck_map is not None:
            st = layer_stuck(stuck_map, lm)
            g[st == STUCK_GMIN] = g_min
            g[st == STUCK_GMAX] = g_max
        if drifting:
            nu = np.maximum(nu_mean + nu_sig * rng.standard_normal(g.shape), 0.0)
            g = g * (t / t0) ** (-nu)
        if r_wire > 0:
            r = np.arange(lm.phys_rows) % lm.rows
            c = np.arange(lm.col_tiles * lm.cols) % lm.cols
            seg = (c[None, :] + 1) + (lm.rows - r[:, None])
            g = g / (1.0 + g * 1e-6 * r_wire * seg)
        gp, gn = g[:, 0::2], g[:, 1::2]
        mask = mapped_pair_mask(lm)
        row_g = (gp[:, mask] + gn[:, mask]).sum(axis=1)
        if cond.ideal and cond.stuck_map is None:
            d = (lm.levels_pos().astype(np.float64) - lm.levels_neg().astype(np.float64))
        else:
            d = (gp - gn) / dg
        shape = (lm.row_tiles, lm.rows, lm.phys_pairs)
        var = None
        if sig_r > 0:
            var = ((sig_r / dg) ** 2 * (gp * gp + gn * gn)).astype(np.float32).reshape(shape)
        per_pair = _range_per_pair(lm, mapping.cols_per_adc, lm.adc_range)
        out.append(PhysLayer(d=d.astype(np.float32).reshape(shape), var=var, row_g_us=row_g,
                             adc_range=per_pair))
    return out, comp


def _range_per_pair(lm: LayerMapping, cols_per_adc: int, groups: np.ndarray) -> np.ndarray:
    p = np.arange(lm.pairs) // cols_per_adc  # group of each pair inside an array
    per = groups[:, :, p]  # [RT, CT, P]
    return per.reshape(lm.row_tiles, 1, lm.phys_pairs).astype(np.float32)


def encode(spec: InputSpec, pixels: np.ndarray) -> np.ndarray:
    """bool ``[T, B, input_size]`` input spikes (SPEC.md 3.1, via edgesnn.graph.prng)."""
    if spec.encoder == EncoderKind.RATE:
        return rate_spikes(pixels, spec.steps, spec.seed)
    if spec.encoder == EncoderKind.LATENCY:
        return latency_spikes(pixels, spec.steps)
    raise ValueError("the crossbar simulator supports rate and latency encoders only")


def run_chunk(mapping: CrossbarMapping, spec: InputSpec, phys: list[PhysLayer], comp: float,
              pixels: np.ndarray, cond: Conditions, rng: np.random.Generator,
              record_partials: list[np.ndarray] | None = None,
              read_v: float = 0.0, read_t: float = 0.0) -> XbarResult:
    b = pixels.shape[0]
    s_all = encode(spec, pixels)
    n_layers = len(mapping.layers)
    v = [np.zeros((b, lm.n_out), dtype=np.int64) for lm in mapping.layers]
    counts = np.zeros((b, mapping.layers[-1].n_out), dtype=np.int64)
    spikes = np.zeros((b, n_layers), dtype=np.int64)
    input_spikes = np.zeros(b, dtype=np.int64)
    cell_reads = np.zeros(b, dtype=np.int64)
    conversions = np.zeros(b, dtype=np.int64)
    adds = np.zeros(b, dtype=np.int64)
    cell_e = np.zeros(b, dtype=np.float64)
    use_adc = cond.adc and not cond.ideal
    half = float(1 << (mapping.adc_bits - 1))
    for t in range(spec.steps):
        s = s_all[t]
        input_spikes += s.sum(axis=1)
        for li, (lm, ph) in enumerate(zip(mapping.layers, phys, strict=True)):
            x = np.zeros((b, lm.phys_rows), dtype=np.float32)
            x[:, lm.row_slot] = s
            xt = x.reshape(b, lm.row_tiles, lm.rows).transpose(1, 0, 2)  # [RT, B, rows]
            part = np.matmul(xt, ph.d)  # [RT, B, CT*P]
            if ph.var is not None:
                sd = np.sqrt(np.matmul(xt, ph.var))
                part += sd * rng.standard_normal(part.shape, dtype=np.float32)
            if record_partials is not None:
                np.maximum(record_partials[li], np.abs(part).max(axis=1), out=record_partials[li])
            if use_adc:
                step = ph.adc_range / half
                code = np.clip(np.rint(part / step), -half, half - 1)
                part = code * step
            total = part.sum(axis=0, dtype=np.float64)[:, lm.col_slot]
            current = np.rint(total * (lm.weight_scale * comp)).astype(np.int64)
            if lm.bias is not None:  # the periphery's digital add (no bias row)
                current += lm.bias
            active_rows = s.sum(axis=1).astype(np.int64)
            active_tiles = (xt.max(axis=2) > 0).sum(axis=0).astype(np.int64)  # [B]
            cell_reads += 2 * active_rows * lm.n_out
            conversions += active_tiles * lm.n_out
            adds += np.maximum(active_tiles - 1, 0) * lm.n_out
            cell_e += x.astype(np.float64) @ ph.row_g_us
            s = lif_step(v[li], current, lm.leak, lm.threshold,
                         ResetMode.ZERO if lm.zero_reset else ResetMode.SUBTRACT)
            spikes[:, li] += s.sum(axis=1)
        counts += s
    n_upd = spec.steps * sum(lm.n_out for lm in mapping.layers)
    return XbarResult(
        pred=readout(counts, v[-1]), counts=counts, v_final=v[-1], input_spikes=input_spikes,
        spikes=spikes, cell_reads=cell_reads, adc_conversions=conversions,
        neuron_updates=np.full(b, n_upd, dtype=np.int64), digital_adds=adds,
        cell_energy_pj=cell_e * 1e-6 * read_v * read_v * read_t * 1e12)


def simulate(mapping: CrossbarMapping, profile: CrossbarProfile, spec: InputSpec,
             pixels: np.ndarray, cond: Conditions | None = None, *, seed: int = 0,
             batch_size: int = 256,
             record_partials: list[np.ndarray] | None = None) -> XbarResult:
    """One Monte-Carlo trial (one draw of the arrays) over all ``pixels``."""
    cond = cond or Conditions()
    px = np.asarray(pixels)
    if px.ndim != 2 or px.shape[1] != spec.input_size:
        raise ValueError(f"pixels must have shape [B, {spec.input_size}], got {px.shape}")
    rng = np.random.default_rng(seed)
    phys, comp = realize(mapping, profile, cond, rng)
    parts = [run_chunk(mapping, spec, phys, comp, px[i:i + batch_size], cond, rng,
                       record_partials, float(profile["technology.read_voltage_v"]),
                       float(profile["technology.read_pulse_s"]))
             for i in range(0, max(px.shape[0], 1), batch_size)]
    return XbarResult(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in XbarResult.__dataclass_fields__))


def calibrate_adc(mapping: CrossbarMapping, profile: CrossbarProfile, spec: InputSpec,
                  pixels: np.ndarray, margin: float = 1.0) -> None:
    """Set every ADC group's range to ``margin`` x the largest |partial current| the ideal
    arrays produce on ``pixels`` (never above the full-scale worst case), in place."""
    from edgesnn.crossbar.mapping import full_scale_range, group_max

    rec = [np.zeros((lm.row_tiles, lm.phys_pairs), dtype=np.float32) for lm in mapping.layers]
    simulate(mapping, profile, spec, pixels, Conditions(ideal=True), record_partials=rec)
    for lm, r in zip(mapping.layers, rec, strict=True):
        per_pair = r.reshape(lm.row_tiles, lm.col_tiles, lm.pairs).astype(np.float64)
        groups = group_max(np.ceil(per_pair * margin), mapping.cols_per_adc)
        lm.adc_range = np.minimum(groups, full_scale_range(lm, mapping.cols_per_adc))


def latency_s(mapping: CrossbarMapping, profile: CrossbarProfile, steps: int) -> float:
    """Worst-case latency of one inference: per step and layer one read pulse, the ADC's
    multiplexed conversions and one neuron-update cycle (arrays of a layer run in parallel)."""
    t_read = float(profile["technology.read_pulse_s"])
    t_conv = float(profile["adc.conversion_s"])
    t_neu = float(profile["energy.neuron_update_s"])
    per_step = 0.0
    for lm in mapping.layers:
        used = min(lm.n_out, lm.usable_pairs)
        per_step += t_read + min(mapping.cols_per_adc, used) * t_conv + t_neu
    return steps * per_step


def expected_drift_factor(profile: CrossbarProfile, time_s: float) -> float:
    t0 = float(profile["noise.drift_t0_s"])
    return 1.0 if time_s <= t0 else math.pow(time_s / t0, -float(profile["noise.drift_nu"]))

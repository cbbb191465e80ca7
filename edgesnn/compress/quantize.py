"""Post-training quantization: a float :class:`~edgesnn.snn.model.SpikingMLP` -> integer graph.

Symmetric weights, int8 or int4, one scale per layer or per output neuron (``float weight ~=
q * scale``). A neuron's membrane is then held in units of its scale, so its threshold becomes
``theta_q = round(theta / scale)`` (one per neuron as soon as the scales or the thresholds are
per neuron); with direct encoding layer 0 sees ``p / 255`` in float and ``p`` in integers, so
``theta_q = round(theta * 255 / scale)``. A bias is a current in the same units:
``b_q = round(b / scale)`` (``* 255`` for direct layer 0). Leaks become Q0.16:
``beta_q = round(beta * 65536)``.

How each layer's scale is chosen (``method``):

* ``maxabs``: the largest |w| maps to qmax;
* ``p99.9`` / ``p99.99``: that percentile of |w| maps to qmax (outliers clip);
* ``mse``: the clip (a fraction of max |w|, grid of 40) with the least squared weight error.

:func:`calibrate` tries the methods layer by layer and keeps the one with the best golden
simulator accuracy on a calibration subset of the training data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesnn.compress.qat import IntegerSNN, LayerSpec
from edgesnn.graph.ir import (
    BIAS_MAX,
    INT32_MAX,
    Q16_ONE,
    EncoderKind,
    ExportError,
    FireRule,
    NeuronKind,
    Readout,
    ResetMode,
    qmax_for,
)

log = logging.getLogger(__name__)

METHODS = ("maxabs", "p99.99", "p99.9", "mse")
_ENCODERS = {"rate": EncoderKind.RATE, "latency": EncoderKind.LATENCY,
             "direct": EncoderKind.DIRECT}
# the config's rule names are the IR enums' member names in lower case (snn/config.py)
_NEURONS = {m.name.lower(): m for m in NeuronKind}
_RESETS = {m.name.lower(): m for m in ResetMode}
_FIRES = {m.name.lower(): m for m in FireRule}
_READOUTS = {m.name.lower(): m for m in Readout}


@dataclass
class FloatNet:
    """The float parameters of a trained SNN, in the orientation of ``nn.Linear``."""

    weights: list[np.ndarray]  # [n_out, n_in] float64 per layer
    beta: list[np.ndarray]  # [1] or [n_out]
    threshold: list[np.ndarray]  # [1] or [n_out]
    input_size: int
    steps: int
    encoder: EncoderKind
    seed: int
    neuron: NeuronKind
    reset: ResetMode
    config: dict[str, Any] = field(default_factory=dict)
    bias: list[np.ndarray | None] = field(default_factory=list)  # [n_out] per layer, or None
    fire: FireRule = FireRule.GT
    readout: Readout = Readout.COUNT_MEMBRANE
    alpha: list[np.ndarray | None] = field(default_factory=list)  # CUBA_LIF: synaptic decay


def _cfg_dict(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    return dict(vars(cfg))


def extract(model: Any) -> FloatNet:
    """Read a :class:`SpikingMLP`'s parameters; raise :class:`ExportError` naming the layer and
    the reason for anything the spike-graph format cannot express."""
    cfg = model.config
    conf = _cfg_dict(cfg)
    encoder = _ENCODERS.get(str(cfg.encoder))
    if encoder is None:
        raise ExportError(f"encoder {cfg.encoder!r} cannot be exported; accepted: "
                          f"{', '.join(_ENCODERS)}")
    neuron = _NEURONS.get(str(cfg.neuron))
    if neuron is None:
        raise ExportError(f"neuron {cfg.neuron!r} cannot be exported; accepted: lif, if")
    reset = _RESETS.get(str(cfg.reset))
    if reset is None:
        raise ExportError(f"reset {cfg.reset!r} cannot be exported; accepted: "
                          f"{', '.join(_RESETS)}")
    fire = _FIRES.get(str(getattr(cfg, "fire", "gt")))
    if fire is None:
        raise ExportError(f"fire {cfg.fire!r} cannot be exported; accepted: {', '.join(_FIRES)}")
    mode = _READOUTS.get(str(getattr(cfg, "readout", "count_membrane")))
    if mode is None:
        raise ExportError(f"readout {cfg.readout!r} cannot be exported; accepted: "
                          f"{', '.join(_READOUTS)}")
    if not 0 <= int(cfg.encoder_seed) <= 0xFFFFFFFF:
        raise ExportError(f"encoder_seed={cfg.encoder_seed} is not a uint32")
    if not 1 <= int(cfg.steps) <= 65535:
        raise ExportError(f"steps={cfg.steps} outside [1, 65535]")
    weights, betas, thetas = [], [], []
    biases: list[np.ndarray | None] = []
    alphas: list[np.ndarray | None] = []
    prev = int(cfg.input_size)
    for idx, fc in enumerate(model.fcs):
        where = f"layer {idx} (fc{idx})"
        w = fc.weight.detach().double().cpu().numpy()
        if w.ndim != 2 or w.shape[1] != prev:
            raise ExportError(f"{where}: weight shape {w.shape} does not chain from {prev}")
        if w.shape[0] > 65535 or w.shape[1] > 65535:
            raise ExportError(f"{where}: {w.shape[1]}x{w.shape[0]} exceeds 65535 neurons")
        if not np.all(np.isfinite(w)):
            raise ExportError(f"{where}: weights contain NaN or inf")
        beta = np.atleast_1d(model.beta(idx).detach().double().cpu().numpy()).reshape(-1)
        theta = np.atleast_1d(model.threshold(idx).detach().double().cpu().numpy()).reshape(-1)
        for name, arr in (("beta", beta), ("threshold", theta)):
            if arr.shape[0] not in (1, w.shape[0]):
                raise ExportError(f"{where}: {name} has {arr.shape[0]} values; accepted: 1 or "
                                  f"{w.shape[0]}")
            if not np.all(np.isfinite(arr)):
                raise ExportError(f"{where}: {name} contains NaN or inf")
        if np.any(theta < 0):
            raise ExportError(f"{where}: negative threshold (min {theta.min():.4g}); the "
                              "format needs threshold >= 0")
        if np.any(beta < 0) or np.any(beta > 1):
            raise ExportError(f"{where}: beta outside [0, 1] (min {beta.min():.4g}, max "
                              f"{beta.max():.4g}); the leak is a Q0.16 multiplier <= 1")
        if neuron == NeuronKind.IF and np.any(beta != 1.0):
            raise ExportError(f"{where}: IF neuron with beta != 1")
        bias = None
        if getattr(fc, "bias", None) is not None:
            bias = fc.bias.detach().double().cpu().numpy().reshape(-1)
            if not np.all(np.isfinite(bias)):
                raise ExportError(f"{where}: bias contains NaN or inf")
        alpha_t = model.alpha(idx) if hasattr(model, "alpha") else None
        alpha = None
        if alpha_t is not None:
            alpha = np.atleast_1d(alpha_t.detach().double().cpu().numpy()).reshape(-1)
            if not np.all(np.isfinite(alpha)) or alpha.shape[0] not in (1, w.shape[0]):
                raise ExportError(f"{where}: alpha must be 1 or {w.shape[0]} finite values")
        alphas.append(alpha)
        weights.append(w)
        biases.append(bias)
        betas.append(beta)
        thetas.append(theta)
        prev = w.shape[0]
    if prev > 255:
        raise ExportError(f"{prev} classes; the readout supports at most 255")
    return FloatNet(weights=weights, beta=betas, threshold=thetas, input_size=int(cfg.input_size),
                    steps=int(cfg.steps), encoder=encoder, seed=int(cfg.encoder_seed),
                    neuron=neuron, reset=reset, config=conf, bias=biases, fire=fire,
                    readout=mode, alpha=alphas)


def choose_scale(w: np.ndarray, bits: int, per_channel: bool, method: str) -> np.ndarray:
    """Scale(s) for the float weights ``w [n_out, n_in]``: ``[n_out]`` or ``[1]``."""
    qmax = qmax_for(bits)
    rows = np.abs(w) if per_channel else np.abs(w).reshape(1, -1)
    if method == "maxabs":
        clip = rows.max(axis=1)
    elif method in ("p99.9", "p99.99"):
        clip = np.percentile(rows, float(method[1:]), axis=1)
    elif method == "mse":
        top = rows.max(axis=1)
        best_err = np.full(rows.shape[0], np.inf)
        clip = top.copy()
        for frac in np.linspace(0.3, 1.0, 40):
            c = top * frac
            s = np.where(c > 0, c / qmax, 1.0)[:, None]
            err = ((np.clip(np.round(rows / s), 0, qmax) * s - rows) ** 2).sum(axis=1)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            clip = np.where(better, c, clip)
    else:
        raise ValueError(f"scale method {method!r}; accepted: {', '.join(METHODS)}")
    fallback = float(np.abs(w).max()) if np.abs(w).max() > 0 else 1.0
    clip = np.where(clip > 0, clip, fallback)  # an all-zero row: any scale, keep it finite
    return (clip / qmax).astype(np.float64)


def layer_spec(net: FloatNet, idx: int, scale: np.ndarray) -> LayerSpec:
    """Integer threshold and leak of layer ``idx`` for the weight scale(s) ``scale``."""
    where = f"layer {idx} (fc{idx})"
    gain = 255.0 if (idx == 0 and net.encoder == EncoderKind.DIRECT) else 1.0
    theta_q = np.round(net.threshold[idx] * gain / scale)
    if theta_q.size > 1 and np.all(theta_q == theta_q[0]):
        theta_q = theta_q[:1]
    if np.any(theta_q > INT32_MAX):
        raise ExportError(f"{where}: quantized threshold {theta_q.max():.0f} exceeds int32; "
                          "the weights are too small for the threshold")
    bias_q = None
    bias = net.bias[idx] if idx < len(net.bias) else None
    if bias is not None:
        bias_q = np.round(bias * gain / scale)
        worst = float(np.abs(bias_q).max())
        if worst > BIAS_MAX:
            raise ExportError(f"{where}: quantized bias {worst:.0f} exceeds the format's "
                              f"+-{BIAS_MAX} by {worst / BIAS_MAX:.2f}x; the weights are too "
                              "small for the bias")
    if net.neuron == NeuronKind.IF:
        leak = np.full(1, Q16_ONE, dtype=np.int64)
    else:
        leak = np.round(net.beta[idx] * Q16_ONE).astype(np.int64)
    alpha = net.alpha[idx] if idx < len(net.alpha) else None
    syn_leak = None  # CUBA_LIF: alpha in Q0.16, the synaptic current in the weights' units
    if net.neuron == NeuronKind.CUBA_LIF:
        if alpha is None:
            raise ExportError(f"{where}: a cuba_lif layer needs its synaptic decay alpha")
        syn_leak = np.round(np.clip(alpha, 0.0, 1.0) * Q16_ONE).astype(np.int64)
    return LayerSpec(threshold=theta_q.astype(np.int64), leak=leak, scale=scale,
                     neuron=net.neuron, reset=net.reset, name=f"fc{idx}", bias=bias_q,
                     fire=net.fire, syn_leak=syn_leak,
                     extra={"threshold_float": net.threshold[idx].tolist(),
                            "beta_float": net.beta[idx].tolist()})


def quantize(net: FloatNet, *, weight_bits: int = 8, per_channel: bool = True,
             methods: Sequence[str] | str = "maxabs",
             masks: Sequence[np.ndarray | None] | None = None) -> IntegerSNN:
    """The integer twin of ``net``. ``methods``: one scale method for all layers or one per
    layer; ``masks`` (``[n_out, n_in]`` 0/1, optional) are applied before quantization."""
    qmax_for(weight_bits)
    n = len(net.weights)
    per_layer = [methods] * n if isinstance(methods, str) else list(methods)
    if len(per_layer) != n:
        raise ValueError(f"{len(per_layer)} scale methods for {n} layers")
    latents, specs, mask_list = [], [], []
    for idx, w in enumerate(net.weights):
        m = None if masks is None or masks[idx] is None else np.asarray(masks[idx], np.float64)
        wm = w if m is None else w * m
        scale = choose_scale(wm, weight_bits, per_channel, per_layer[idx])
        col = scale[:, None] if scale.size > 1 else scale.reshape(1, 1)
        latents.append(wm / col)
        specs.append(layer_spec(net, idx, scale))
        specs[-1].extra["scale_method"] = per_layer[idx]
        mask_list.append(m)
    return IntegerSNN(latents, specs, input_size=net.input_size, steps=net.steps,
                      encoder=net.encoder, seed=net.seed, weight_bits=weight_bits,
                      masks=mask_list, readout=net.readout)


def graph_accuracy(model: IntegerSNN, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the golden simulator on ``model``'s graph."""
    from edgesnn.graph.golden import simulate

    res = simulate(model.to_graph(sparse="never"), images)
    return float(np.mean(res.pred == labels))


def calibrate(net: FloatNet, images: np.ndarray, labels: np.ndarray, *, weight_bits: int = 8,
              per_channel: bool = True, masks: Sequence[np.ndarray | None] | None = None,
              methods: Sequence[str] = METHODS) -> tuple[IntegerSNN, dict[str, Any]]:
    """PTQ: choose each layer's scale method greedily (layer 0 first, the others fixed at the
    best so far) by golden-simulator accuracy on ``images``/``labels``. Ties keep the earlier
    method in ``methods``. Returns the model and a report of every trial."""
    chosen = [methods[0]] * len(net.weights)
    trials: list[dict[str, Any]] = []
    best_acc = -1.0
    for idx in range(len(net.weights)):
        best_method = chosen[idx]
        for method in methods:
            trial = list(chosen)
            trial[idx] = method
            if idx > 0 and method == chosen[idx] and best_acc >= 0:
                acc = best_acc  # this combination was already measured
            else:
                acc = graph_accuracy(quantize(net, weight_bits=weight_bits,
                                              per_channel=per_channel, methods=trial,
                                              masks=masks), images, labels)
            trials.append({"layer": idx, "method": method, "accuracy": acc})
            log.info("calibrate layer %d %s: golden accuracy %.4f", idx, method, acc)
            if acc > best_acc:
                best_acc, best_method = acc, method
        chosen[idx] = best_method
    model = quantize(net, weight_bits=weight_bits, per_channel=per_channel, methods=chosen,
                     masks=masks)
    return model, {"methods": chosen, "calibration_accuracy": best_acc, "trials": trials,
                   "calibration_samples": int(len(images))}

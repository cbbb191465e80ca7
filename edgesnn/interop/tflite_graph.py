"""TFLite models of an edgesnn SNN, built with :mod:`edgesnn.interop.tflite_flatbuffer`.

Builtin operators only: FULLY_CONNECTED, MUL, ADD, SUB, GREATER, CAST, UNPACK, DEQUANTIZE.

* ``mode="step"``: ``x [B, n_in]`` + ``v0..v{L-1}`` -> ``spikes [B, C]`` + ``v0_out..``.
* ``mode="unrolled"``: ``x [T, B, n_in]`` -> ``counts [B, C]``, ``v_final [B, C]``.
* ``quant="float"``: float32 weights; ``quant="int8"``: weights stored int8 with per-output-
  channel scales and DEQUANTIZE'd to float32 before FULLY_CONNECTED (the membrane arithmetic
  stays float32, so it is the float SNN with int8-rounded weights — see
  ``exporters/tflite/README.md``; :func:`int8_weight_snn` gives that reference model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesnn.interop.params import FloatLayer, FloatSNN, InteropError
from edgesnn.interop.tflite_flatbuffer import (
    OP,
    TfliteBuilder,
    add_options,
    fc_options,
    mul_options,
    sub_options,
    unpack_options,
)

MODES = ("step", "unrolled")
QUANTS = ("float", "int8")


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``w ~ q * scale[:, None]``; returns (q int8, scale float32)."""
    amax = np.abs(w).max(axis=1).astype(np.float32)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def int8_weight_snn(snn: FloatSNN) -> FloatSNN:
    """The float SNN whose weights are exactly what ``quant="int8"`` dequantizes."""
    layers = []
    for layer in snn.layers:
        q, scale = quantize_rows(layer.weight)
        layers.append(FloatLayer(weight=(q.astype(np.float32) * scale[:, None]),
                                 beta=layer.beta, threshold=layer.threshold, bias=layer.bias))
    return FloatSNN(layers=layers, steps=snn.steps, encoder=snn.encoder,
                    encoder_seed=snn.encoder_seed, neuron=snn.neuron, reset=snn.reset,
                    extra=snn.extra, fire=snn.fire)


def _weights(tb: TfliteBuilder, i: int, layer: FloatLayer, quant: str) -> int:
    if quant == "float":
        return tb.const(f"W{i}", layer.weight.astype(np.float32))
    q, scale = quantize_rows(layer.weight)
    wq = tb.const(f"W{i}_int8", q, quant=(scale.tolist(), [0] * len(scale), 0))
    wf = tb.tensor(f"W{i}", list(q.shape), np.float32)
    tb.op(OP.DEQUANTIZE, [wq], [wf])
    return wf


def _step(tb: TfliteBuilder, snn: FloatSNN, params: list[tuple[int, int, int, int]], x: int,
          vs: list[int | None], tag: str, out_names: list[str] | None = None
          ) -> tuple[int, list[int]]:
    s = x
    new_vs = []
    one = None
    for i, (w, beta, theta, bias) in enumerate(params):
        n = snn.layers[i].n_out

        def t(name: str, dtype: Any = np.float32, _n: int = n, _i: int = i) -> int:
            return tb.tensor(f"{name}_{_i}_{tag}", [1, _n], dtype, batch_axis=0)

        cur = t("current")
        tb.op(OP.FULLY_CONNECTED, [s, w, bias], [cur], fc_options())  # bias -1: none
        if vs[i] is None:  # first step: v = beta * 0 + I = I exactly
            v = cur
        else:
            leaked = t("leaked")
            tb.op(OP.MUL, [vs[i], beta], [leaked], mul_options())
            v = t("v_pre")
            tb.op(OP.ADD, [leaked, cur], [v], add_options())
        fired = t("fired", np.bool_)
        tb.op(OP.GREATER, [v, theta], [fired])
        s = t("spikes")
        tb.op(OP.CAST, [fired], [s])
        if out_names and out_names[i]:
            v_new = tb.tensor(out_names[i], [1, n], np.float32, batch_axis=0)
        else:
            v_new = t("v")
        if snn.reset == "subtract":
            ts = t("theta_s")
            tb.op(OP.MUL, [s, theta], [ts], mul_options())
            tb.op(OP.SUB, [v, ts], [v_new], sub_options())
        else:
            if one is None:
                one = tb.const(f"one_{tag}", np.ones(1, np.float32))
            keep = t("keep")
            tb.op(OP.SUB, [one, s], [keep], sub_options())
            tb.op(OP.MUL, [v, keep], [v_new], mul_options())
        new_vs.append(v_new)
    return s, new_vs


def _meta(snn: FloatSNN, mode: str, quant: str) -> dict[str, Any]:
    return {"format": "edgesnn-float", "mode": mode, "quant": quant, "steps": snn.steps,
            "encoder": snn.encoder, "encoder_seed": snn.encoder_seed, "neuron": snn.neuron,
            "reset": snn.reset, "input_size": snn.input_size, "hidden": snn.hidden,
            "n_classes": snn.n_classes}


def snn_model(snn: FloatSNN, mode: str = "step", quant: str = "float") -> bytes:
    """The ``.tflite`` bytes of ``snn`` (see the module doc for inputs and outputs)."""
    snn.validate()
    if snn.neuron == "cuba_lif":
        raise InteropError("neuron 'cuba_lif' (a synaptic-current state besides the membrane) "
                           "has no TFLite graph here; use --target onnx (mode=unrolled or "
                           "integer=true) or --target nir")
    if snn.reset not in ("subtract", "zero") or snn.fire != "gt":
        raise InteropError(f"reset {snn.reset!r} with fire {snn.fire!r} has no TFLite graph "
                           "here; accepted: reset subtract or zero with fire gt (use "
                           "--target onnx for the peers' rules)")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; accepted: {', '.join(MODES)}")
    if quant not in QUANTS:
        raise ValueError(f"quant={quant!r}; accepted: {', '.join(QUANTS)}")
    tb = TfliteBuilder()
    params = []
    for i, layer in enumerate(snn.layers):
        params.append((_weights(tb, i, layer, quant),
                       tb.const(f"beta{i}", layer.beta.astype(np.float32)),
                       tb.const(f"theta{i}", layer.threshold.astype(np.float32)),
                       -1 if layer.bias is None
                       else tb.const(f"b{i}", layer.bias.astype(np.float32))))
    n_layers = len(snn.layers)
    if mode == "step":
        x = tb.tensor("x", [1, snn.input_size], np.float32, batch_axis=0)
        vs: list[int | None] = [tb.tensor(f"v{i}", [1, layer.n_out], np.float32, batch_axis=0)
                                for i, layer in enumerate(snn.layers)]
        s, new_vs = _step(tb, snn, params, x, vs, "s",
                          [f"v{i}_out" for i in range(n_layers)])
        spikes = tb.tensor("spikes", [1, snn.n_classes], np.float32, batch_axis=0)
        tb.op(OP.MUL, [s, tb.const("unit", np.ones(1, np.float32))], [spikes], mul_options())
        inputs, outputs = [x, *vs], [spikes, *new_vs]
    else:
        x = tb.tensor("x", [snn.steps, 1, snn.input_size], np.float32, batch_axis=1)
        xs = [tb.tensor(f"x_{t}", [1, snn.input_size], np.float32, batch_axis=0)
              for t in range(snn.steps)]
        tb.op(OP.UNPACK, [x], xs, unpack_options(snn.steps, 0))
        vs = [None] * n_layers
        counts = -1
        for t in range(snn.steps):
            last = t == snn.steps - 1
            names = [""] * (n_layers - 1) + ["v_final"] if last else None
            s, vs = _step(tb, snn, params, xs[t], vs, str(t), names)  # type: ignore[assignment]
            if t == 0:
                counts = s
            else:
                total = tb.tensor("counts" if last else f"counts_{t}", [1, snn.n_classes],
                                  np.float32, batch_axis=0)
                tb.op(OP.ADD, [counts, s], [total], add_options())
                counts = total
        if snn.steps == 1:
            total = tb.tensor("counts", [1, snn.n_classes], np.float32, batch_axis=0)
            tb.op(OP.ADD, [counts, tb.const("zero", np.zeros(1, np.float32))], [total],
                  add_options())
            counts = total
        inputs, outputs = [x], [counts, vs[-1]]
    return tb.finish(inputs, outputs, f"edgesnn SNN ({mode}, {quant})",
                     _meta(snn, mode, quant))


def ann_int8_model(weights: list[np.ndarray], act_scales: list[tuple[float, int]],
                   input_scale: tuple[float, int]) -> bytes:
    """An int8 bias-free ReLU MLP: ``x int8 [B, n_in]`` -> ``logits int8 [B, C]``.

    ``weights[l]`` float32 [n_out, n_in] (quantized per output channel here);
    ``act_scales[l]`` the (scale, zero point) of layer ``l``'s int8 output; ``input_scale``
    that of the input (pixels / 255 with scale 1/255, zero point -128).
    """
    tb = TfliteBuilder()
    s_in, zp_in = input_scale
    x = tb.tensor("x", [1, weights[0].shape[1]], np.int8, quant=([s_in], [zp_in], 0),
                  batch_axis=0)
    cur, cur_scale = x, s_in
    for i, w in enumerate(weights):
        q, scale = quantize_rows(w)
        wt = tb.const(f"W{i}", q, quant=(scale.tolist(), [0] * len(scale), 0))
        # FULLY_CONNECTED per-channel int8 wants an int32 bias with scale s_in * s_w
        bias = tb.const(f"b{i}", np.zeros(q.shape[0], np.int32),
                        quant=((cur_scale * scale).tolist(), [0] * len(scale), 0))
        last = i == len(weights) - 1
        s_out, zp_out = act_scales[i]
        out = tb.tensor("logits" if last else f"h{i}", [1, q.shape[0]], np.int8,
                        quant=([s_out], [zp_out], 0), batch_axis=0)
        tb.op(OP.FULLY_CONNECTED, [cur, wt, bias], [out], fc_options(relu=not last))
        cur, cur_scale = out, s_out
    return tb.finish([x], [cur], "edgesnn ANN baseline (int8)", {"format": "edgesnn-ann-int8"})


__all__ = ["MODES", "QUANTS", "ann_int8_model", "int8_weight_snn",
           "quantize_rows", "snn_model"]

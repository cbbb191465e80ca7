"""Build ONNX graphs of an edgesnn SNN with the ``onnx.helper`` API.

Three graphs (``exporters/onnx/README.md`` lists their inputs and outputs):

* :func:`float_step_model` — one time step with explicit state: ``x`` [B, n_in] plus
  ``v0..v{L-1}`` in, ``spikes`` [B, C] plus ``v0_out..`` out, so any runtime can stream it.
* :func:`float_unrolled_model` — all ``T`` steps: ``x`` [T, B, n_in] -> ``counts``, ``v_final``.
* :func:`integer_model` — the integer spike graph (SPEC.md 3), encoder included: ``pixels``
  uint8 [B, n_in] -> ``counts`` int32 [B, C], ``v_final`` int32 [B, C]; int64 arithmetic,
  the leak's arithmetic shift as an offset + unsigned ``BitShift`` (exact, see below).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesnn.graph import neurons
from edgesnn.graph.ir import INT32_MAX, INT32_MIN, EncoderKind, FireRule, SpikeGraph
from edgesnn.graph.prng import rate_table
from edgesnn.interop.params import FloatSNN, InteropError

OPSET = 17
PRODUCER = "edgesnn"


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: dict[tuple[str, bytes], str] = {}

    def const(self, name: str, value: np.ndarray) -> str:
        key = (str(value.dtype) + str(value.shape), value.tobytes())
        if not name and key in self._consts:
            return self._consts[key]
        if not name:
            self._n += 1
            name = f"c{self._n}"
        self.inits.append(numpy_helper.from_array(value, name))
        self._consts.setdefault(key, name)
        return name

    def zeros(self, like: str, batch_axis: int, n: int, dtype: int) -> str:
        """A zero tensor [B, n] whose batch size B is dimension ``batch_axis`` of ``like``."""
        batch = self.op("Gather", [self.op("Shape", [like]),
                                   self.const("", np.array([batch_axis], np.int64))], axis=0)
        shape = self.op("Concat", [batch, self.const("", np.array([n], np.int64))], axis=0)
        return self.op("ConstantOfShape", [shape],
                       value=helper.make_tensor("zero", dtype, [1], [0]))

    def op(self, op_type: str, inputs: list[str], out: str = "", **attrs: Any) -> str:
        if not out:
            self._n += 1
            out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


class _Sym:
    """An ONNX tensor name with the ``+`` / ``-`` that :func:`edgesnn.graph.neurons.step`
    uses: the neuron step, executed on these, writes its own ONNX nodes."""

    def __init__(self, b: _Builder, name: str) -> None:
        self.b = b
        self.name = name

    def __add__(self, other: _Sym) -> _Sym:
        return _Sym(self.b, self.b.op("Add", [self.name, other.name]))

    def __sub__(self, other: _Sym) -> _Sym:
        return _Sym(self.b, self.b.op("Sub", [self.name, other.name]))


class _OnnxArith:
    """The arithmetic of :mod:`edgesnn.graph.neurons` as ONNX nodes: ``integer`` in int64 (the
    leak's arithmetic shift as an offset + unsigned ``BitShift``, exact: ``|v * beta_q +
    32768| < 2^47 + 2^15 < 2^48``; saturation by ``Min``/``Max``), else float32 (``beta * v``,
    no saturation; the peers' operation order)."""

    def __init__(self, b: _Builder, integer: bool) -> None:
        self.b = b
        self.integer = integer
        self.dtype = TensorProto.INT64 if integer else TensorProto.FLOAT
        if integer:
            self.half = b.const("", np.array(32768, np.int64))
            self.offset = b.const("", np.array(1 << 48, np.int64))
            self.unoffset = b.const("", np.array(1 << 32, np.int64))  # (1 << 48) >> 16
            self.shift = b.const("", np.array(16, np.uint64))
            self.lo = b.const("", np.array(INT32_MIN, np.int64))
            self.hi = b.const("", np.array(INT32_MAX, np.int64))

    def sym(self, name: str) -> _Sym:
        return _Sym(self.b, name)

    def leak(self, x: _Sym, q: _Sym | None) -> _Sym:
        b = self.b
        if q is None:
            return x
        if not self.integer:
            return self.sym(b.op("Mul", [q.name, x.name]))
        prod = b.op("Add", [b.op("Add", [b.op("Mul", [x.name, q.name]), self.half]),
                            self.offset])
        shifted = b.op("BitShift", [b.op("Cast", [prod], to=TensorProto.UINT64), self.shift],
                       direction="RIGHT")
        return self.sym(b.op("Sub", [b.op("Cast", [shifted], to=TensorProto.INT64),
                                     self.unoffset]))

    def sat32(self, x: _Sym) -> _Sym:
        if not self.integer:
            return x
        return self.sym(self.b.op("Min", [self.b.op("Max", [x.name, self.lo]), self.hi]))

    def fire(self, v: _Sym, theta: _Sym, ge: bool) -> _Sym:
        fired = self.b.op("GreaterOrEqual" if ge else "Greater", [v.name, theta.name])
        return self.sym(self.b.op("Cast", [fired], to=self.dtype))

    def gate(self, s: _Sym) -> _Sym:
        return s

    def zero_where(self, v: _Sym, r: _Sym) -> _Sym:
        one = self.b.const("", np.array(1, np.int64) if self.integer
                           else np.array([1.0], np.float32))
        return self.sym(self.b.op("Mul", [v.name, self.b.op("Sub", [one, r.name])]))

    def times(self, r: _Sym, theta: _Sym) -> _Sym:
        return self.sym(self.b.op("Mul", [theta.name, r.name]))


def _metadata(model: onnx.ModelProto, meta: dict[str, Any]) -> None:
    entry = model.metadata_props.add()
    entry.key = "edgesnn"
    entry.value = json.dumps(meta, sort_keys=True)


def _finish(b: _Builder, name: str, inputs: list[onnx.ValueInfoProto],
            outputs: list[onnx.ValueInfoProto], meta: dict[str, Any]) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, inputs, outputs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER)
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    _metadata(model, meta)
    onnx.checker.check_model(model)
    return model


def _float_meta(snn: FloatSNN, mode: str) -> dict[str, Any]:
    return {"format": "edgesnn-float", "mode": mode, "steps": snn.steps,
            "encoder": snn.encoder, "encoder_seed": snn.encoder_seed, "neuron": snn.neuron,
            "reset": snn.reset, "fire": snn.fire, "readout": snn.readout,
            "input_size": snn.input_size,
            "hidden": snn.hidden,
            "n_classes": snn.n_classes,
            "layers": [{"weight": f"W{i}", "beta": f"beta{i}", "threshold": f"theta{i}",
                        "bias": None if layer.bias is None else f"b{i}"}
                       for i, layer in enumerate(snn.layers)]}


def _float_params(b: _Builder, snn: FloatSNN) -> list[tuple[str, str, str, str]]:
    names = []
    for i, layer in enumerate(snn.layers):
        w = b.const(f"W{i}", np.ascontiguousarray(layer.weight.T.astype(np.float32)))
        beta = b.const(f"beta{i}", layer.beta.astype(np.float32))
        theta = b.const(f"theta{i}", layer.threshold.astype(np.float32))
        bias = "" if layer.bias is None else b.const(f"b{i}", layer.bias.astype(np.float32))
        names.append((w, beta, theta, bias))
    return names


def _float_rules(b: _Builder, snn: FloatSNN, params: list[tuple[str, str, str, str]]
                 ) -> list[neurons.LayerRule[_Sym]]:
    return [neurons.LayerRule(kind=neurons.NeuronKind[snn.neuron.upper()],
                              reset=neurons.ResetMode[snn.reset.upper()], ge=snn.fire == "ge",
                              theta=_Sym(b, theta), leak=_Sym(b, beta),
                              syn_leak=None if layer.alpha is None else _Sym(b, b.const(
                                  "", layer.alpha.astype(np.float32))))  # one const per value
            for (_, beta, theta, _), layer in zip(params, snn.layers, strict=True)]


def _float_step(b: _Builder, snn: FloatSNN, params: list[tuple[str, str, str, str]], x: str,
                vs: list[str], outs: list[str] | None = None, prev: list[str] | None = None,
                prev_outs: list[str] | None = None, syns: list[str] | None = None
                ) -> tuple[str, list[str], list[str]]:
    """One step of every layer (:func:`edgesnn.graph.neurons.step` on ONNX nodes); returns
    (output spikes, new membranes, every layer's spikes). ``prev``: every layer's spikes of the
    previous step (reset "subtract_delayed" only); ``syns``: neuron "cuba_lif"'s synaptic
    currents, replaced in place by the new ones."""
    arith = _OnnxArith(b, integer=False)
    s = x
    new_vs: list[str] = []
    new_s: list[str] = []
    for i, ((w, _, theta, bias), rule) in enumerate(zip(params, _float_rules(b, snn, params),
                                                          strict=True)):
        cur = b.op("MatMul", [s, w])
        if bias:  # W s + b, in that order (as nn.Linear)
            cur = b.op("Add", [cur, bias])
        pending = None
        if prev is not None:  # subtract_delayed: theta * the previous step's spikes
            pending = _Sym(b, b.op("Mul", [theta, prev[i]]))
        st = neurons.State(v=_Sym(b, vs[i]), pending=pending,
                           syn=None if syns is None else _Sym(b, syns[i]))
        s = neurons.step(arith, rule, st, _Sym(b, cur)).name
        if syns is not None and st.syn is not None:
            syns[i] = st.syn.name
        if prev_outs:
            s = b.op("Identity", [s], prev_outs[i])
        v = st.v.name
        if outs and outs[i]:
            v = b.op("Identity", [v], outs[i])
        new_s.append(s)
        new_vs.append(v)
    return s, new_vs, new_s


def float_step_model(snn: FloatSNN) -> onnx.ModelProto:
    snn.validate()
    if snn.neuron == "cuba_lif":
        raise InteropError("the float step graph streams one membrane per layer; neuron "
                           "'cuba_lif' also carries a synaptic current: use the unrolled float "
                           "graph (--option mode=unrolled) or the integer one (--option "
                           "integer=true)")
    b = _Builder()
    params = _float_params(b, snn)
    vs = [f"v{i}" for i in range(len(snn.layers))]
    delayed = snn.reset == "subtract_delayed"  # then each layer's last spikes are state too
    rs = [f"r{i}" for i in range(len(snn.layers))] if delayed else []
    s, _, _ = _float_step(b, snn, params, "x", vs, [f"{v}_out" for v in vs],
                          rs or None, [f"{r}_out" for r in rs] or None)
    b.op("Identity", [s], "spikes")
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f32, ["B", snn.input_size])]
    inputs += [helper.make_tensor_value_info(v, f32, ["B", layer.n_out])
               for v, layer in zip(vs + rs, snn.layers * 2, strict=False)]
    outputs = [helper.make_tensor_value_info("spikes", f32, ["B", snn.n_classes])]
    outputs += [helper.make_tensor_value_info(f"{v}_out", f32, ["B", layer.n_out])
                for v, layer in zip(vs + rs, snn.layers * 2, strict=False)]
    return _finish(b, "edgesnn_snn_step", inputs, outputs, _float_meta(snn, "step"))


def float_unrolled_model(snn: FloatSNN) -> onnx.ModelProto:
    snn.validate()
    b = _Builder()
    params = _float_params(b, snn)
    x0 = b.op("Gather", ["x", b.const("", np.array(0, np.int64))], axis=0)
    vs = [b.zeros("x", 1, layer.n_out, TensorProto.FLOAT) for layer in snn.layers]
    prev = list(vs) if snn.reset == "subtract_delayed" else None
    syns = list(vs) if snn.neuron == "cuba_lif" else None  # synaptic currents, from 0
    counts = ""
    for t in range(snn.steps):
        xt = x0 if t == 0 else b.op("Gather", ["x", b.const("", np.array(t, np.int64))], axis=0)
        last = t == snn.steps - 1
        outs = [""] * (len(vs) - 1) + ["v_final"] if last else None
        s, vs, spikes = _float_step(b, snn, params, xt, vs, outs, prev, syns=syns)
        prev = spikes if prev is not None else None
        counts = s if t == 0 else b.op("Add", [counts, s])
    b.op("Identity", [counts], "counts")
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f32, [snn.steps, "B", snn.input_size])]
    outputs = [helper.make_tensor_value_info("counts", f32, ["B", snn.n_classes]),
               helper.make_tensor_value_info("v_final", f32, ["B", snn.n_classes])]
    return _finish(b, "edgesnn_snn_unrolled", inputs, outputs, _float_meta(snn, "unrolled"))


def integer_model(graph: SpikeGraph) -> onnx.ModelProto:
    """The integer graph of SPEC.md 3 with ONNX integer ops (int64 MatMul/Mul/Add, BitShift)."""
    graph.validate()
    b = _Builder()
    i64 = TensorProto.INT64
    px = b.op("Cast", ["pixels"], to=i64)  # [B, n]
    kind = graph.encoder.kind
    if kind == EncoderKind.RATE:
        table = b.const("rate_table", rate_table(graph.steps, graph.input_size,
                                                 graph.encoder.seed))  # uint8
    elif kind == EncoderKind.LATENCY:
        # t_i = ((255 - p) * T) >> 8 for p > 0 (non-negative: Div == floor), -1 for p == 0
        raw = b.op("Div", [b.op("Mul", [b.op("Sub", [b.const("", np.array(255, np.int64)), px]),
                                         b.const("", np.array(graph.steps, np.int64))]),
                           b.const("", np.array(256, np.int64))])
        nz = b.op("Greater", [px, b.const("", np.array(0, np.int64))])
        t_fire = b.op("Where", [nz, raw, b.const("", np.array(-1, np.int64))])
    ws, ths, leaks, biases = [], [], [], []
    for i, layer in enumerate(graph.layers):
        biases.append("" if layer.bias is None
                      else b.const(f"bias{i}", layer.bias.astype(np.int64)))
        # stored as int8 (int4 values fit too), widened once: [n_in, n_out]
        ws.append(b.op("Cast", [b.const(f"W{i}", layer.weights.astype(np.int8))], to=i64))
        ths.append(b.const(f"theta{i}", layer.threshold.astype(np.int64)))
        leaks.append(b.const(f"leak{i}", layer.leak.astype(np.int64)))
    arith = _OnnxArith(b, integer=True)
    rules = [neurons.LayerRule(kind=layer.neuron, reset=layer.reset,
                               ge=layer.fire == FireRule.GE, theta=_Sym(b, ths[li]),
                               leak=_Sym(b, leaks[li]),
                               syn_leak=None if layer.syn_leak is None else _Sym(b, b.const(
                                   f"syn_leak{li}", layer.syn_leak.astype(np.int64))))
             for li, layer in enumerate(graph.layers)]
    states = [neurons.new_state(rule, lambda n=layer.n_out: _Sym(b, b.zeros("pixels", 0, n, i64)))
              for rule, layer in zip(rules, graph.layers, strict=True)]
    if kind == EncoderKind.DIRECT:
        i0 = b.op("MatMul", [px, ws[0]])
        if biases[0]:
            i0 = b.op("Add", [i0, biases[0]])
    counts = ""
    for t in range(graph.steps):
        if kind == EncoderKind.RATE:
            row = b.op("Cast", [b.op("Gather", [table, b.const("", np.array(t, np.int64))],
                                     axis=0)], to=i64)  # [n]
            s = b.op("Cast", [b.op("Less", [row, px])], to=i64)
        elif kind == EncoderKind.LATENCY:
            s = b.op("Cast", [b.op("Equal", [t_fire, b.const("", np.array(t, np.int64))])],
                     to=i64)
        for li, _layer in enumerate(graph.layers):
            if li == 0 and kind == EncoderKind.DIRECT:
                cur = i0
            else:
                cur = b.op("MatMul", [s, ws[li]])
                if biases[li]:
                    cur = b.op("Add", [cur, biases[li]])
            s = neurons.step(arith, rules[li], states[li], _Sym(b, cur)).name
        counts = s if t == 0 else b.op("Add", [counts, s])
    b.op("Cast", [counts], "counts", to=TensorProto.INT32)
    b.op("Cast", [states[-1].v.name], "v_final", to=TensorProto.INT32)
    inputs = [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["B", graph.input_size])]
    outputs = [helper.make_tensor_value_info("counts", TensorProto.INT32, ["B", graph.n_classes]),
               helper.make_tensor_value_info("v_final", TensorProto.INT32, ["B", graph.n_classes])]
    meta = {"format": "edgesnn-integer", "steps": graph.steps, "encoder": kind.name.lower(),
            "readout": graph.readout.name.lower(),
            "encoder_seed": int(graph.encoder.seed), "input_size": graph.input_size,
            "n_classes": graph.n_classes,
            "layers": [{"neuron": layer.neuron.name.lower(), "reset": layer.reset.name.lower(),
                        "fire": layer.fire.name.lower(), "weight_bits": layer.weight_bits,
                        "bias": layer.bias is not None}
                       for layer in graph.layers]}
    return _finish(b, "edgesnn_snn_integer", inputs, outputs, meta)


def save(model: onnx.ModelProto, path: Any) -> int:
    data = model.SerializeToString()
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)

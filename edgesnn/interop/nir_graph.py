"""edgesnn <-> NIR (Neuromorphic Intermediate Representation), see ``exporters/nir/MAPPING.md``.

Export writes ``Input -> Linear|Affine -> LIF|IF -> ... -> LIF|IF -> Output`` (Affine for a
layer with a bias) with
``tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0`` (snnTorch's own convention, so its
importer reads our files the same way) and an ``edgesnn`` metadata block (JSON string) that
carries dt, reset mode, steps, encoder and, for integer graphs, the integer scales.

Import inverts NIR's forward-Euler step of ``tau dv/dt = (v_leak - v) + R I``::

    v[t+1] = (1 - dt/tau) v[t] + (R dt / tau) I[t] + (dt / tau) v_leak

so ``beta = 1 - dt/tau`` and the input scale ``R dt / tau`` is folded into the incoming
weights and bias (IF: ``dv/dt = R I``, scale ``R dt``); an Affine's bias is the layer's bias.
``v_leak`` must be 0 (edgesnn membranes rest at 0). A CubaLIF's synaptic input is read
as NIR's forward-Euler step, ``I += (dt/tau_syn) w_in S`` (``cuba_input="euler"``, what
snnTorch writes), or as a jump ``I += w_in S`` (``cuba_input="jump"``, what Norse's
``LIFCell`` computes and its exporter leaves as ``w_in = 1``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.interop.params import FIRES, READOUTS, RESETS, FloatLayer, FloatSNN, InteropError

log = logging.getLogger(__name__)

DEFAULT_DT = 1e-4  # snnTorch's export_to_nir uses dt = 1e-4 (snntorch/export_nir.py)
SUPPORTED_NODES = ("Input", "Output", "Flatten", "Linear", "Affine", "LIF", "IF", "CubaLIF")
META_KEY = "edgesnn"
_UNIT = 1e-6  # an input scale this close to 1 is 1 (float32 round trips of tau and r)


R_STYLES = ("unit_scale", "unit_r")
#: how a CubaLIF node's synaptic current takes its input S each step (MAPPING.md): "euler" is
#: NIR's forward-Euler step I += (dt/tau_syn) w_in S (snnTorch 1.0 writes w_in = tau_syn/dt);
#: "jump" is I += w_in S (Norse 1.1's LIFCell, whose to_nir writes w_in = 1)
CUBA_INPUTS = ("euler", "jump")


def to_nir(snn: FloatSNN, *, dt: float = DEFAULT_DT, integer: dict[str, Any] | None = None,
           name: str = "edgesnn", r_style: str = "unit_scale") -> Any:
    """A ``nir.NIRGraph`` of ``snn``; ``integer`` (optional) is stored in the metadata.

    ``r_style`` picks one of two NIR-equivalent parameterisations of a LIF layer:
    ``unit_scale`` writes ``r = tau/dt`` (input scale ``r*dt/tau`` = 1, the weights as they
    are: what snnTorch's importer requires), ``unit_r`` writes ``r = 1`` and the weights and
    bias divided by ``1 - beta`` (what Norse's importer needs: it ignores ``r``)."""
    if r_style not in R_STYLES:
        raise InteropError(f"r_style={r_style!r}; accepted: {', '.join(R_STYLES)}")
    import nir

    snn.validate()
    if not dt > 0:
        raise InteropError(f"dt={dt}; must be > 0")
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array([snn.input_size]))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for i, layer in enumerate(snn.layers):
        n = layer.n_out
        thr = layer.threshold_full().astype(np.float64)
        beta = layer.beta_full().astype(np.float64)
        cuba = snn.neuron == "cuba_lif"
        lif = cuba or not (snn.neuron == "if" or np.all(beta == 1.0))
        w, b = layer.weight.astype(np.float64), layer.bias
        if lif and r_style == "unit_r":
            if np.any(beta >= 1.0):
                raise InteropError(f"layer {i}: beta = 1 has no r = 1 form (input scale "
                                   "1 - beta = 0); use r_style unit_scale")
            w = w / (1.0 - beta)[:, None]
            b = None if b is None else b / (1.0 - beta)
        if b is None:
            nodes[f"fc{i}"] = nir.Linear(weight=w.astype(np.float32))
        else:
            nodes[f"fc{i}"] = nir.Affine(weight=w.astype(np.float32),
                                         bias=np.asarray(b).astype(np.float32))
        if cuba:  # snnTorch's Synaptic export: tau_syn = dt/(1-alpha), w_in = tau_syn/dt
            assert layer.alpha is not None  # validated
            alpha = np.broadcast_to(layer.alpha.astype(np.float64), (n,))
            with np.errstate(divide="ignore"):
                tau = np.where(beta < 1.0, dt / (1.0 - beta), np.inf)
                tau_syn = np.where(alpha < 1.0, dt / (1.0 - alpha), np.inf)
            nodes[f"lif{i}"] = nir.CubaLIF(
                tau_syn=tau_syn, tau_mem=tau, r=tau / dt if r_style == "unit_scale"
                else np.ones(n), v_leak=np.zeros(n), v_threshold=thr, v_reset=np.zeros(n),
                w_in=np.where(np.isinf(tau_syn), 1.0, tau_syn / dt))
        elif not lif:
            nodes[f"lif{i}"] = nir.IF(r=np.full(n, 1.0 / dt), v_threshold=thr,
                                      v_reset=np.zeros(n))
        else:
            with np.errstate(divide="ignore"):
                tau = np.where(beta < 1.0, dt / (1.0 - beta), np.inf)
            # r = tau / dt makes R dt / tau = 1; for beta == 1 both are inf (see MAPPING.md)
            nodes[f"lif{i}"] = nir.LIF(tau=tau, r=tau / dt if r_style == "unit_scale"
                                       else np.ones(n), v_leak=np.zeros(n),
                                       v_threshold=thr, v_reset=np.zeros(n))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([snn.n_classes]))
    edges.append((prev, "output"))
    meta = {"format": "edgesnn-nir", "version": 1, "name": name, "dt": dt, "reset": snn.reset,
            "fire": snn.fire,
            "neuron": snn.neuron, "steps": snn.steps, "encoder": snn.encoder,
            "encoder_seed": snn.encoder_seed, "readout": snn.readout}
    if integer is not None:
        meta["integer"] = integer
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META_KEY: json.dumps(meta)})


def write(graph: Any, path: Path) -> None:
    import nir

    nir.write(str(path), graph)


def read(path: Path) -> Any:
    import nir

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:  # shapes are checked by from_nir, which names the node
        return nir.read(str(path), type_check=False)
    except Exception as exc:  # h5py / nir raise many kinds on malformed files
        raise InteropError(f"{path}: not a readable NIR file ({type(exc).__name__}: "
                           f"{exc}); a node may be missing a parameter") from exc


def edgesnn_metadata(graph: Any) -> dict[str, Any]:
    raw = (getattr(graph, "metadata", None) or {}).get(META_KEY)
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        meta = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise InteropError(f"metadata '{META_KEY}' is not a JSON object: {exc}") from exc
    return meta if isinstance(meta, dict) else {}


def _chain(graph: Any) -> list[str]:
    """Node names from the single Input to the single Output, refusing anything else."""
    import nir

    nodes = graph.nodes
    unsupported = sorted({f"{name} ({type(node).__name__})" for name, node in nodes.items()
                          if type(node).__name__ not in SUPPORTED_NODES})
    if unsupported:
        raise InteropError(f"unsupported NIR node(s): {', '.join(unsupported)}; supported: "
                           f"{', '.join(SUPPORTED_NODES)}")
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise InteropError(f"expected exactly one Input node, found {len(inputs)}")
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        for end in (a, b):
            if end not in nodes:
                raise InteropError(f"edge ({a!r}, {b!r}) names unknown node {end!r}")
        succ.setdefault(a, []).append(b)
    order = [inputs[0]]
    while not isinstance(nodes[order[-1]], nir.Output):
        nxt = succ.get(order[-1], [])
        if len(nxt) != 1:
            raise InteropError(f"node {order[-1]!r} has {len(nxt)} successors; only a "
                               "feed-forward chain Input -> ... -> Output can be imported "
                               "(no recurrence, no branches)")
        if nxt[0] in order:
            raise InteropError(f"node {nxt[0]!r} closes a cycle; recurrent graphs cannot be "
                               "imported")
        order.append(nxt[0])
    return order


def _param(node_name: str, node: Any, field: str, n: int) -> np.ndarray:
    value = getattr(node, field, None)
    if value is None:
        raise InteropError(f"node {node_name!r}: missing parameter {field!r}")
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.full(n, arr[0])
    if arr.shape != (n,):
        raise InteropError(f"node {node_name!r}: {field} has {arr.size} values but the layer "
                           f"has {n} neurons")
    if np.any(np.isnan(arr)):
        raise InteropError(f"node {node_name!r}: {field} contains NaN")
    return arr


def _neuron(name: str, node: Any, n: int, dt: float, reset: str, cuba_input: str = "euler"
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(beta, input scale, threshold, alpha) of one neuron node, each float64 [n]; alpha (the
    synaptic decay, CubaLIF) is 0 for LIF and IF nodes."""
    kind = type(node).__name__
    thr = _param(name, node, "v_threshold", n)
    if not np.all(np.isfinite(thr)):
        raise InteropError(f"node {name!r}: v_threshold contains Inf")
    if reset == "zero":
        v_reset = _param(name, node, "v_reset", n) if getattr(node, "v_reset", None) is not None \
            else np.zeros(n)
        if np.any(v_reset != 0):
            raise InteropError(f"node {name!r}: v_reset != 0 is not expressible (edgesnn "
                               "resets to 0 or subtracts the threshold)")
    alpha = np.zeros(n)
    if kind == "IF":
        r = _param(name, node, "r", n)
        return np.ones(n), r * dt, thr, alpha
    if kind == "CubaLIF":
        # tau_syn dI/dt = -I + w_in S, one Euler step: I = alpha I + (dt/tau_syn) w_in S; the
        # membrane integrates R dt/tau_mem I: our synaptic current is that, so its input scale
        # is w_in (dt/tau_syn) (R dt/tau_mem) (snnTorch writes w_in = tau_syn/dt: scale 1);
        # cuba_input "jump": I = alpha I + w_in S (Norse's LIFCell), scale w_in (R dt/tau_mem)
        tau_syn = _param(name, node, "tau_syn", n)
        if np.any(tau_syn < dt):
            raise InteropError(f"node {name!r}: tau_syn < dt gives alpha = 1 - dt/tau_syn < 0 "
                               f"(dt={dt}); pass a smaller --dt")
        with np.errstate(divide="ignore"):
            alpha = np.where(np.isinf(tau_syn), 1.0, 1.0 - dt / tau_syn)
        alpha = np.where(np.abs(alpha) < 1e-9, 0.0, alpha)  # tau_syn == dt: no synaptic memory
        w_in = _param(name, node, "w_in", n)
        if cuba_input == "euler":
            w_in = w_in * np.where(np.isinf(tau_syn), 1.0, dt / tau_syn)
        tau = _param(name, node, "tau_mem", n)
    else:
        w_in = np.ones(n)
        tau = _param(name, node, "tau", n)
    r = _param(name, node, "r", n)
    v_leak = _param(name, node, "v_leak", n)
    if np.any(v_leak != 0):
        raise InteropError(f"node {name!r}: v_leak != 0 (a resting potential away from 0) "
                           "is not expressible: edgesnn membranes start and rest at 0")
    if np.any(tau <= 0):
        raise InteropError(f"node {name!r}: tau must be > 0")
    inf = np.isinf(tau)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(inf, 1.0, 1.0 - dt / tau)
        # tau = r = inf is the limit of r = tau / dt (beta = 1), written by to_nir
        scale = np.where(inf & np.isinf(r), 1.0, r * dt / tau) * w_in
    if np.any(beta < 0):
        raise InteropError(f"node {name!r}: tau < dt gives beta = 1 - dt/tau < 0 "
                           f"(dt={dt}); pass a smaller --dt")
    if not np.all(np.isfinite(scale)):
        raise InteropError(f"node {name!r}: input scale R*dt/tau is not finite")
    return beta, scale, thr, alpha


def from_nir(graph: Any, *, dt: float | None = None, reset: str | None = None,
             steps: int | None = None, encoder: str | None = None,
             encoder_seed: int | None = None, fire: str | None = None,
             readout: str | None = None, cuba_input: str | None = None
             ) -> tuple[FloatSNN, dict[str, Any]]:
    """A :class:`FloatSNN` from a NIR graph; returns it and a summary of what was assumed.

    Missing ``dt`` / ``reset`` / ``steps`` / ``encoder`` come from the ``edgesnn`` metadata
    block, else defaults (dt 1e-4 as snnTorch writes, reset "zero" as NIR defines it).
    ``cuba_input`` (:data:`CUBA_INPUTS`, default "euler") says how CubaLIF nodes take their
    synaptic input; "jump" reads Norse 1.1's ``LIFCell`` export (MAPPING.md).
    """
    import nir

    meta = edgesnn_metadata(graph)
    dt = float(dt if dt is not None else meta.get("dt", DEFAULT_DT))
    reset = reset or meta.get("reset", "zero")
    fire = fire or meta.get("fire", "gt")
    # a peer's file: the peers predict with the argmax of the spike counts (SPEC.md 3.3)
    readout = readout or (meta.get("readout") if meta.get("readout") in READOUTS else "count")
    if not dt > 0:
        raise InteropError(f"dt={dt}; must be > 0")
    if reset not in RESETS:
        raise InteropError(f"reset={reset!r}; accepted: {', '.join(RESETS)}")
    if fire not in FIRES:
        raise InteropError(f"fire={fire!r}; accepted: {', '.join(FIRES)}")
    cuba_input = cuba_input or "euler"
    if cuba_input not in CUBA_INPUTS:
        raise InteropError(f"cuba_input={cuba_input!r}; accepted: {', '.join(CUBA_INPUTS)}")
    order = _chain(graph)
    nodes = graph.nodes
    layers: list[FloatLayer] = []
    pending: tuple[str, np.ndarray, np.ndarray | None] | None = None
    kinds: list[str] = []
    size: int | None = None
    for name in order:
        node = nodes[name]
        if isinstance(node, nir.Input):
            shape = np.asarray(node.input_type["input"]).reshape(-1)
            size = int(np.prod(shape)) if shape.size else None
            continue
        if isinstance(node, (nir.Output, nir.Flatten)):
            if isinstance(node, nir.Output) and pending is not None:
                raise InteropError(f"node {pending[0]!r}: a Linear/Affine must be followed by "
                                   "a neuron node (LIF/IF/CubaLIF) before the Output")
            continue
        if isinstance(node, (nir.Linear, nir.Affine)):
            if pending is not None:
                raise InteropError(f"node {name!r}: two weight nodes in a row ({pending[0]!r}"
                                   f", {name!r}); each must be followed by a neuron node")
            w = np.asarray(node.weight)
            if w.ndim != 2:
                raise InteropError(f"node {name!r}: weight must be 2-D [n_out, n_in], got "
                                   f"shape {w.shape}")
            if not np.all(np.isfinite(w)):
                raise InteropError(f"node {name!r}: weight contains NaN or Inf")
            bias = None
            if isinstance(node, nir.Affine):
                bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
                if not np.all(np.isfinite(bias)):
                    raise InteropError(f"node {name!r}: bias contains NaN or Inf")
                if bias.shape != (w.shape[0],):
                    raise InteropError(f"node {name!r}: bias has {bias.size} values but the "
                                       f"weight has {w.shape[0]} outputs")
            expect = layers[-1].n_out if layers else size
            if expect is not None and w.shape[1] != expect:
                raise InteropError(f"node {name!r}: weight has {w.shape[1]} inputs but the "
                                   f"previous stage produces {expect}")
            pending = (name, w.astype(np.float64), bias)
            continue
        # a neuron node
        if pending is None:
            raise InteropError(f"node {name!r}: a neuron node must follow a Linear/Affine")
        n = pending[1].shape[0]
        beta, scale, thr, alpha = _neuron(name, node, n, dt, reset, cuba_input)
        w, bias = pending[1], pending[2]
        if np.any(np.abs(scale - 1.0) > _UNIT):  # the input scale multiplies W x + b
            w = w * scale[:, None]
            bias = None if bias is None else bias * scale
        if np.any(thr < 0):
            raise InteropError(f"node {name!r}: v_threshold must be >= 0")
        layers.append(FloatLayer(
            weight=w.astype(np.float32),
            beta=(beta[:1] if np.all(beta == beta[0]) else beta).astype(np.float32),
            threshold=(thr[:1] if np.all(thr == thr[0]) else thr).astype(np.float32),
            bias=None if bias is None else bias.astype(np.float32),
            alpha=(alpha[:1] if np.all(alpha == alpha[0]) else alpha).astype(np.float32)))
        kinds.append(type(node).__name__)
        pending = None
    if not layers:
        raise InteropError("the graph has no Linear/Affine -> neuron layer")
    neuron = "if" if all(k == "IF" for k in kinds) else "lif"
    if any(np.any(layer.alpha != 0) for layer in layers):  # type: ignore[operator]
        # a synaptic current somewhere: every layer is CubaLIF (alpha = 0 is exactly LIF/IF)
        neuron = "cuba_lif"
    else:
        for layer in layers:
            layer.alpha = None
    snn = FloatSNN(layers=layers,
                   steps=int(steps if steps is not None else meta.get("steps", 25)),
                   encoder=str(encoder or meta.get("encoder", "rate")),
                   encoder_seed=int(encoder_seed if encoder_seed is not None
                                    else meta.get("encoder_seed", 0x1234ABCD)),
                   neuron=neuron, reset=reset, fire=fire, readout=readout)
    snn.validate("NIR graph")
    summary = {"dt": dt, "reset": reset, "fire": fire, "readout": readout, "neuron": neuron,
               "nodes": order, **({"cuba_input": cuba_input} if "CubaLIF" in kinds else {}),
               "neuron_nodes": kinds, "edgesnn_metadata": bool(meta)}
    return snn, summary

"""``edgesnn import``: turn a NIR or ONNX file into an edgesnn RUN_DIR (model.pt + config).

NIR: any feed-forward chain of the nodes :data:`edgesnn.interop.nir_graph.SUPPORTED_NODES`
(snnTorch's ``export_to_nir`` output included). ONNX: the float graphs ``edgesnn export
--target onnx`` writes (step or unrolled), recognised by their ``edgesnn`` metadata.
The run folder is written into a temporary folder and renamed, so a failure leaves nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.atomic import atomic_dir
from edgesnn.interop.params import FloatLayer, FloatSNN, InteropError, save_run

log = logging.getLogger(__name__)

FORMATS = {".nir": "nir", ".onnx": "onnx"}
ONNX_OPS = ("MatMul", "Mul", "Add", "Sub", "Greater", "GreaterOrEqual", "Cast", "Identity",
            "Gather", "Shape", "Concat", "ConstantOfShape")


def read_onnx(path: Path, *, steps: int | None = None, encoder: str | None = None,
              encoder_seed: int | None = None, reset: str | None = None
              ) -> tuple[FloatSNN, dict[str, Any]]:
    """A :class:`FloatSNN` from a float ONNX graph written by edgesnn."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others on foreign bytes
        raise InteropError(f"{path}: not a readable ONNX file ({type(exc).__name__}: "
                           f"{exc})") from exc
    props = {p.key: p.value for p in model.metadata_props}
    bad = sorted({f"{n.name or n.output[0]} ({n.op_type})" for n in model.graph.node
                  if n.op_type not in ONNX_OPS})
    if "edgesnn" not in props:
        raise InteropError(f"{path}: no 'edgesnn' metadata; only float graphs written by "
                           "`edgesnn export --target onnx` can be imported"
                           + (f" (unsupported ops here: {', '.join(bad[:8])}; supported: "
                              f"{', '.join(ONNX_OPS)})" if bad else ""))
    try:
        meta = json.loads(props["edgesnn"])
    except json.JSONDecodeError as exc:
        raise InteropError(f"{path}: metadata 'edgesnn' is not JSON ({exc})") from exc
    if meta.get("format") != "edgesnn-float":
        raise InteropError(f"{path}: format {meta.get('format')!r} cannot be imported; "
                           "accepted: 'edgesnn-float' (the integer graph lives in model.esg)")
    if bad:
        raise InteropError(f"{path}: unsupported ONNX node(s) {', '.join(bad[:8])}; "
                           f"supported: {', '.join(ONNX_OPS)}")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    layers = []
    for i, names in enumerate(meta.get("layers", [])):
        arrays = []
        keys = ["weight", "beta", "threshold"] + (["bias"] if names.get("bias") else [])
        for key in keys:
            name = names.get(key)
            if name not in inits:
                raise InteropError(f"{path}: layer {i}: missing initializer {name!r} ({key})")
            arr = np.asarray(inits[name], dtype=np.float32)
            if not np.all(np.isfinite(arr)):
                raise InteropError(f"{path}: initializer {name!r} contains NaN or Inf")
            arrays.append(arr)
        w, beta, theta = arrays[:3]
        bias = arrays[3].reshape(-1) if len(arrays) > 3 else None
        if w.ndim != 2:
            raise InteropError(f"{path}: initializer {names['weight']!r} must be 2-D, got "
                               f"shape {w.shape}")
        layers.append(FloatLayer(weight=np.ascontiguousarray(w.T), beta=beta.reshape(-1),
                                 threshold=theta.reshape(-1), bias=bias))
    if not layers:
        raise InteropError(f"{path}: metadata lists no layers")
    snn = FloatSNN(layers=layers, steps=int(steps or meta["steps"]),
                   encoder=encoder or meta["encoder"],
                   encoder_seed=int(encoder_seed if encoder_seed is not None
                                    else meta["encoder_seed"]),
                   neuron=meta["neuron"], reset=reset or meta["reset"],
                   fire=str(meta.get("fire", "gt")),
                   readout=str(meta.get("readout", "count_membrane")))
    snn.validate(str(path))
    return snn, {"mode": meta.get("mode"), "reset": snn.reset, "neuron": snn.neuron}


def read_any(path: Path, *, dt: float | None = None, reset: str | None = None,
             steps: int | None = None, encoder: str | None = None,
             encoder_seed: int | None = None, fire: str | None = None,
             readout: str | None = None, cuba_input: str | None = None
             ) -> tuple[FloatSNN, dict[str, Any]]:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InteropError(f"{path}: unknown file type {path.suffix!r}; accepted: "
                           f"{', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if fmt == "nir":
        from edgesnn.interop import nir_graph

        graph = nir_graph.read(path)
        snn, summary = nir_graph.from_nir(graph, dt=dt, reset=reset, steps=steps,
                                          encoder=encoder, encoder_seed=encoder_seed, fire=fire,
                                          readout=readout, cuba_input=cuba_input)
    else:
        if dt is not None:
            log.info("--dt is ignored for ONNX (its graph is already discrete)")
        if cuba_input is not None:
            log.info("cuba_input is ignored for ONNX (NIR CubaLIF nodes only)")
        snn, summary = read_onnx(path, steps=steps, encoder=encoder,
                                 encoder_seed=encoder_seed, reset=reset)
    return snn, {"format": fmt, **summary}


def import_file(path: Path, out: Path, **options: Any) -> dict[str, Any]:
    """Import ``path`` (``.nir`` / ``.onnx``) into a new RUN_DIR ``out``; returns a summary."""
    path, out = Path(path), Path(out)
    snn, summary = read_any(path, **options)
    info = {"source": str(path), **summary, "input_size": snn.input_size, "hidden": snn.hidden,
            "n_classes": snn.n_classes, "steps": snn.steps, "encoder": snn.encoder,
            "encoder_seed": snn.encoder_seed}
    with atomic_dir(out) as tmp:
        save_run(snn, tmp, {"imported": info})
        (tmp / "import.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return {"run_dir": str(out), **info}

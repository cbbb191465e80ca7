"""``--target nir``: the SNN as a NIR graph (``exporters/nir/MAPPING.md``).

Options: ``dt`` (seconds, default 1e-4 as snnTorch uses); ``source=float`` (default, the
trained float model) or ``source=integer`` (the integer graph of ``model.esg`` in integer units:
weights and thresholds as integers, beta = leak / 65536, with the scales in the metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.atomic import atomic_file
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.interop.params import FloatLayer, FloatSNN, InteropError, load_graph, load_run

SOURCES = ("float", "integer")


def integer_as_float(graph: Any) -> tuple[FloatSNN, dict[str, Any]]:
    """The integer graph in integer units as a float model, plus its integer description."""
    from edgesnn.graph.ir import EncoderKind, NeuronKind

    layers, info = [], []
    for i, layer in enumerate(graph.layers):
        if layer.syn_leak is not None:
            raise InteropError(f"layer {i}: {layer.neuron.name} neurons are not exported to "
                               "NIR from the integer graph (source=integer); export the float "
                               "model")
        layers.append(FloatLayer(weight=np.ascontiguousarray(layer.weights.T.astype(np.float32)),
                                 beta=(layer.leak.astype(np.float64) / 65536).astype(np.float32),
                                 threshold=layer.threshold.astype(np.float32),
                                 bias=None if layer.bias is None
                                 else layer.bias.astype(np.float32)))
        info.append({"weight_bits": layer.weight_bits, "threshold": layer.threshold.tolist(),
                     "bias": None if layer.bias is None else layer.bias.tolist(),
                     "leak_q16": layer.leak.tolist(), "neuron": layer.neuron.name.lower(),
                     "reset": layer.reset.name.lower(), "storage": layer.storage.name.lower()})
    resets = {layer.reset for layer in graph.layers}
    if len(resets) != 1:
        raise InteropError("layers mix reset modes; NIR export needs one reset mode")
    scales = graph.metadata.get("float", {}) if isinstance(graph.metadata, dict) else {}
    snn = FloatSNN(layers=layers, steps=graph.steps,
                   encoder=EncoderKind(graph.encoder.kind).name.lower(),
                   encoder_seed=int(graph.encoder.seed),
                   neuron="if" if all(la.neuron == NeuronKind.IF for la in graph.layers)
                   else "lif", reset=graph.layers[0].reset.name.lower())
    return snn, {"units": "integer", "leak": "beta = leak_q16 / 65536; the integer leak "
                 "rounds (SPEC.md 3.2)", "layers": info, "float_scales": scales}


class NirTarget(ExportTarget):
    name = "nir"
    summary = "NIR graph (Input, Linear, LIF/IF, Output) with an edgesnn metadata block"

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        from edgesnn.interop import nir_graph

        source = str(options.pop("source", "float"))
        r_style = str(options.pop("r", "unit_scale"))
        try:
            dt = float(options.pop("dt", nir_graph.DEFAULT_DT))
        except (TypeError, ValueError) as exc:
            raise ExportError(f"option dt: {exc}; give seconds, e.g. dt=1e-3") from exc
        if options:
            raise ExportError(f"unknown nir option(s) {', '.join(sorted(options))}; accepted: "
                              "dt=SECONDS, source=float|integer, r=unit_scale|unit_r")
        if source not in SOURCES:
            raise ExportError(f"option source={source!r}; accepted: {', '.join(SOURCES)}")
        try:
            if source == "integer":
                snn, integer = integer_as_float(load_graph(Path(run_dir)))
                graph = nir_graph.to_nir(snn, dt=dt, integer=integer, r_style=r_style)
            else:
                snn = load_run(Path(run_dir))
                graph = nir_graph.to_nir(snn, dt=dt, r_style=r_style)
        except InteropError as exc:
            raise ExportError(str(exc)) from exc
        with atomic_file(Path(out)) as tmp:
            nir_graph.write(graph, tmp)
            size = tmp.stat().st_size
        return {"target": self.name, "path": str(out), "bytes": size, "source": source,
                "dt": dt, "nodes": list(graph.nodes), "reset": snn.reset}


TARGET = NirTarget()

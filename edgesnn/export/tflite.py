"""``--target tflite``: TFLite flatbuffers written without TensorFlow (exporters/tflite/README.md).

Options: ``mode=step|unrolled`` (default step: one time step with membrane state in/out),
``quant=float|int8`` (int8: weights stored int8 per output channel, DEQUANTIZE'd; membrane
arithmetic float32), ``model=snn|ann`` (ann: train the same-topology bias-free ReLU MLP and
write it fully int8 — needs MNIST via ``$EDGESNN_DATA``; ``train_limit``, ``test_limit``,
``epochs``, ``seed`` tune it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesnn.atomic import atomic_file
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.interop.params import InteropError, load_run

_ANN_KEYS = {"train_limit": int, "test_limit": int, "epochs": int, "seed": int}


class TfliteTarget(ExportTarget):
    name = "tflite"
    summary = "TFLite flatbuffer: float / int8-weight SNN (step or unrolled), or int8 ANN baseline"

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        from edgesnn.interop import tflite_graph

        kind = str(options.pop("model", "snn"))
        if kind == "ann":
            try:
                ann_opts = {k: cast(options.pop(k)) for k, cast in _ANN_KEYS.items()
                            if k in options}
            except (TypeError, ValueError) as exc:
                raise ExportError(f"bad ann option: {exc}") from exc
            if options:
                raise ExportError(f"unknown tflite option(s) {', '.join(sorted(options))} for "
                                  f"model=ann; accepted: {', '.join(_ANN_KEYS)}")
            from edgesnn.interop.ann import ann_baseline

            summary = ann_baseline(Path(run_dir), None, out=Path(out), **ann_opts)
            return {"target": self.name, "bytes": summary["tflite_bytes"], "model": "ann",
                    "quant": "int8", **summary}
        if kind != "snn":
            raise ExportError(f"option model={kind!r}; accepted: snn, ann")
        mode = str(options.pop("mode", "step"))
        quant = str(options.pop("quant", "float"))
        if options:
            raise ExportError(f"unknown tflite option(s) {', '.join(sorted(options))}; "
                              "accepted: mode=step|unrolled, quant=float|int8, model=snn|ann")
        if mode not in tflite_graph.MODES:
            raise ExportError(f"option mode={mode!r}; accepted: {', '.join(tflite_graph.MODES)}")
        if quant not in tflite_graph.QUANTS:
            raise ExportError(f"option quant={quant!r}; accepted: "
                              f"{', '.join(tflite_graph.QUANTS)}")
        try:
            data = tflite_graph.snn_model(load_run(Path(run_dir)), mode, quant)
        except InteropError as exc:
            raise ExportError(str(exc)) from exc
        with atomic_file(Path(out)) as tmp:
            tmp.write_bytes(data)
        return {"target": self.name, "path": str(out), "bytes": len(data), "model": "snn",
                "mode": mode, "quant": quant}


TARGET = TfliteTarget()

"""``--target onnx``: the SNN as an ONNX graph (see ``exporters/onnx/README.md``).

Options: ``mode=step`` (default: one time step with explicit membrane state in and out) or
``mode=unrolled`` (all T steps, ``x [T,B,n] -> counts, v_final``); ``integer=true`` exports
the integer graph of ``model.esg`` instead (``pixels uint8 [B,n] -> counts, v_final``, int64
ops, bit-exact with the golden simulator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesnn.atomic import atomic_file
from edgesnn.export.base import ExportError, ExportTarget
from edgesnn.interop.params import InteropError, load_graph, load_run

MODES = ("step", "unrolled")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes"):
        return True
    if str(value).lower() in ("0", "false", "no"):
        return False
    raise ExportError(f"option {name}={value!r}; accepted: true, false")


class OnnxTarget(ExportTarget):
    name = "onnx"
    summary = "ONNX graph: float single step (streamable state) or unrolled, or the integer model"

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        from edgesnn.interop import onnx_graph

        mode = str(options.pop("mode", "step"))
        integer = _flag(options.pop("integer", False), "integer")
        if options:
            raise ExportError(f"unknown onnx option(s) {', '.join(sorted(options))}; accepted: "
                              "mode=step|unrolled, integer=true|false")
        if mode not in MODES:
            raise ExportError(f"option mode={mode!r}; accepted: {', '.join(MODES)}")
        try:
            if integer:
                mode = "unrolled"  # the integer graph always runs all T steps, encoder included
                model = onnx_graph.integer_model(load_graph(Path(run_dir)))
            else:
                snn = load_run(Path(run_dir))
                model = (onnx_graph.float_step_model(snn) if mode == "step"
                         else onnx_graph.float_unrolled_model(snn))
        except InteropError as exc:
            raise ExportError(str(exc)) from exc
        with atomic_file(Path(out)) as tmp:
            size = onnx_graph.save(model, tmp)
        return {"target": self.name, "path": str(out), "bytes": size, "mode": mode,
                "integer": integer, "opset": onnx_graph.OPSET,
                "inputs": [i.name for i in model.graph.input],
                "outputs": [o.name for o in model.graph.output],
                "nodes": len(model.graph.node)}


TARGET = OnnxTarget()

"""Run ``.tflite`` files on the host: ai-edge-litert, else tflite_runtime."""

from __future__ import annotations

from typing import Any

import numpy as np


def interpreter_class() -> tuple[Any, str]:
    """``(Interpreter, package name)``; ImportError naming both packages if neither imports."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter, "tflite_runtime"
    except ImportError as exc:
        raise ImportError("no TFLite interpreter: install ai-edge-litert (or tflite-runtime)"
                          ) from exc


def _open(model: bytes, shapes: dict[str, list[int]]) -> Any:
    cls, _ = interpreter_class()
    it = cls(model_content=model, num_threads=1)
    for d in it.get_input_details():
        if d["name"] in shapes:
            it.resize_tensor_input(d["index"], shapes[d["name"]])
    it.allocate_tensors()
    return it


def run_once(model: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Invoke ``model`` once on ``feeds`` (by input name); returns outputs by name."""
    it = _open(model, {k: list(v.shape) for k, v in feeds.items()})
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]].astype(d["dtype"], copy=False))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def stream_steps(model: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a step-mode SNN over ``x [T, B, n]``, carrying the state; (counts, v_final)."""
    batch = x.shape[1]
    it = None
    details: list[dict[str, Any]] = []
    state: dict[str, np.ndarray] = {}
    counts = None
    for t in range(x.shape[0]):
        if it is None:
            cls, _ = interpreter_class()
            it = cls(model_content=model, num_threads=1)
            details = it.get_input_details()
            for d in details:
                it.resize_tensor_input(d["index"], [batch, int(d["shape"][1])])
            it.allocate_tensors()
            details = it.get_input_details()
            state = {d["name"]: np.zeros((batch, int(d["shape"][1])), np.float32)
                     for d in details[1:]}
        it.set_tensor(details[0]["index"], x[t].astype(np.float32))
        for d in details[1:]:
            it.set_tensor(d["index"], state[d["name"]])
        it.invoke()
        outs = {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}
        counts = outs["spikes"] if counts is None else counts + outs["spikes"]
        state = {name: outs[f"{name}_out"] for name in state}
    last = f"v{len(state) - 1}"
    return counts, state[last]  # type: ignore[return-value]

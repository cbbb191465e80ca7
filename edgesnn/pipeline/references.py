"""What a device's answers are compared with: the golden integer simulator and the float model,
on the same samples, plus the golden spike raster of one sample for the report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class References:
    labels: np.ndarray
    golden: Any  # edgesnn.graph.golden.SimResult
    float_pred: np.ndarray | None
    # [N, L] synaptic ops on non-zero weights (NeuroBench's effective ops; energy.py)
    synops: np.ndarray | None = None

    def golden_answer(self, pos: int) -> dict[str, Any]:
        g = self.golden
        ans = {"pred": int(g.pred[pos]), "counts": g.counts[pos].tolist(),
               "ops": g.ops[pos].tolist(), "spikes": g.spikes[pos].tolist(),
               "input_spikes": int(g.input_spikes[pos])}
        if self.synops is not None:
            ans["synops"] = self.synops[pos].tolist()
        return ans

    def float_answer(self, pos: int) -> int | None:
        return None if self.float_pred is None else int(self.float_pred[pos])


def float_predictions(run_dir: Path, images: np.ndarray) -> np.ndarray | None:
    """Predictions of the float (torch) model of ``run_dir``; None if it has no model.pt or
    torch is not installed."""
    if not (Path(run_dir) / "model.pt").exists():
        return None
    try:
        from edgesnn.compress.pipeline import float_predict
        from edgesnn.snn.checkpoint import load
    except ImportError as exc:
        log.warning("float model unavailable (%s); float accuracy left out", exc)
        return None
    model, _meta = load(Path(run_dir))
    return np.asarray(float_predict(model, np.ascontiguousarray(images)), dtype=np.int64)


def load_references(run_dir: Path, graph: Any, images: np.ndarray,
                    labels: np.ndarray) -> References:
    from edgesnn.energy import nonzero_weight_ops
    from edgesnn.graph.golden import simulate
    from edgesnn.graph.ir import Storage

    golden = simulate(graph, images)
    dense = any(Storage(layer.storage) == Storage.DENSE for layer in graph.layers)
    return References(labels=labels, golden=golden,
                      float_pred=float_predictions(run_dir, images),
                      synops=nonzero_weight_ops(graph, images) if dense else golden.ops)


def golden_raster(graph: Any, pixels: np.ndarray, index: int) -> dict[str, Any]:
    """The spike raster of one sample through the golden simulator, as the report draws it:
    for the input and each layer, the ``[step, neuron]`` of every spike."""
    from edgesnn.graph.golden import simulate

    res = simulate(graph, np.asarray(pixels, dtype=np.uint8).reshape(1, -1), record=True)
    names = ["input"] + [lay.name or f"layer{i}" for i, lay in enumerate(graph.layers)]
    stages = []
    for name, r in zip(names, res.raster or [], strict=False):
        grid = r[:, 0, :]
        stages.append({"name": name, "steps": int(grid.shape[0]), "neurons": int(grid.shape[1]),
                       "spikes": np.argwhere(grid).tolist()})
    return {"index": index, "stages": stages}

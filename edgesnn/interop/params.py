"""The framework-neutral float SNN every exporter reads and every importer writes.

:class:`FloatSNN` holds exactly what the float forward pass of
:class:`edgesnn.snn.model.SpikingMLP` needs, as numpy arrays, so ONNX / TFLite / NIR code
imports no torch. Per step ``t`` and layer ``l`` (the float twin of SPEC.md 3.2)::

    v = beta * v + W @ s + b      # W: [n_out, n_in], s: spikes of the layer below, b: bias
    s = (v > theta)               # strictly greater
    subtract: v = v - theta * s   # zero: v = v * (1 - s)

Readout: most output spikes, ties by larger final membrane, then lowest index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.data import ENCODERS
from edgesnn.snn.config import FIRES, NEURONS, READOUTS, RESETS


class InteropError(ValueError):
    """A model that cannot be exported / a file that cannot be imported; names the culprit."""


@dataclass
class FloatLayer:
    weight: np.ndarray  # float32 [n_out, n_in] (torch nn.Linear layout)
    beta: np.ndarray  # float32 [1] or [n_out]; 1.0 for IF
    threshold: np.ndarray  # float32 [1] or [n_out]
    bias: np.ndarray | None = None  # float32 [n_out]: a current added every step; or None
    alpha: np.ndarray | None = None  # float32 [1] or [n_out]: neuron "cuba_lif"'s synaptic decay

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    def beta_full(self) -> np.ndarray:
        return np.broadcast_to(self.beta, (self.n_out,)).astype(np.float32)

    def threshold_full(self) -> np.ndarray:
        return np.broadcast_to(self.threshold, (self.n_out,)).astype(np.float32)


@dataclass
class FloatSNN:
    """A feed-forward float SNN: ``layers[l]`` maps ``n_in`` spikes to ``n_out`` neurons."""

    layers: list[FloatLayer]
    steps: int = 25
    encoder: str = "rate"
    encoder_seed: int = 0x1234ABCD
    neuron: str = "lif"
    reset: str = "subtract"
    extra: dict[str, Any] = field(default_factory=dict)  # other SNNConfig fields, kept as-is
    fire: str = "gt"
    readout: str = "count_membrane"

    @property
    def input_size(self) -> int:
        return self.layers[0].n_in

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    @property
    def hidden(self) -> list[int]:
        return [layer.n_out for layer in self.layers[:-1]]

    def validate(self, where: str = "model") -> FloatSNN:
        if self.neuron not in NEURONS:
            raise InteropError(f"{where}: neuron {self.neuron!r}; accepted: {', '.join(NEURONS)}")
        if self.reset not in RESETS:
            raise InteropError(f"{where}: reset {self.reset!r}; accepted: {', '.join(RESETS)}")
        if self.fire not in FIRES:
            raise InteropError(f"{where}: fire {self.fire!r}; accepted: {', '.join(FIRES)}")
        if self.readout not in READOUTS:
            raise InteropError(f"{where}: readout {self.readout!r}; accepted: "
                               f"{', '.join(READOUTS)}")
        if self.encoder not in ENCODERS:
            raise InteropError(f"{where}: encoder {self.encoder!r}; accepted: "
                               f"{', '.join(ENCODERS)}")
        if not 1 <= int(self.steps) <= 65535:
            raise InteropError(f"{where}: steps={self.steps} outside [1, 65535]")
        if not self.layers:
            raise InteropError(f"{where}: no layers")
        prev = self.layers[0].n_in
        for i, layer in enumerate(self.layers):
            name = f"{where}: layer {i}"
            if layer.weight.ndim != 2:
                raise InteropError(f"{name}: weight must be 2-D [n_out, n_in], "
                                   f"got shape {layer.weight.shape}")
            if layer.n_in != prev:
                raise InteropError(f"{name}: weight has n_in={layer.n_in} but the previous "
                                   f"stage produces {prev}")
            if layer.bias is not None and layer.bias.shape != (layer.n_out,):
                raise InteropError(f"{name}: bias must have shape [{layer.n_out}], got "
                                   f"{layer.bias.shape}")
            arrays = [("weight", layer.weight), ("beta", layer.beta),
                      ("threshold", layer.threshold)]
            if layer.bias is not None:
                arrays.append(("bias", layer.bias))
            for pname, arr in arrays:
                if not np.all(np.isfinite(arr)):
                    raise InteropError(f"{name}: {pname} contains NaN or Inf")
            if (layer.alpha is not None) != (self.neuron == "cuba_lif"):
                raise InteropError(f"{name}: a synaptic decay alpha is needed by, and only by, "
                                   f"neuron 'cuba_lif' (neuron {self.neuron!r})")
            shaped = [("beta", layer.beta), ("threshold", layer.threshold)]
            if layer.alpha is not None:
                shaped.append(("alpha", layer.alpha))
                if not np.all(np.isfinite(layer.alpha)) or np.any(layer.alpha < 0) or np.any(
                        layer.alpha > 1):
                    raise InteropError(f"{name}: alpha must lie in [0, 1]")
            for pname, arr in shaped:
                if arr.ndim != 1 or arr.shape[0] not in (1, layer.n_out):
                    raise InteropError(f"{name}: {pname} must have shape [1] or "
                                       f"[{layer.n_out}], got {arr.shape}")
            if np.any(layer.threshold < 0):
                raise InteropError(f"{name}: threshold must be >= 0")
            if np.any(layer.beta < 0) or np.any(layer.beta > 1):
                raise InteropError(f"{name}: beta must lie in [0, 1] (got "
                                   f"{float(layer.beta.min())}..{float(layer.beta.max())})")
            prev = layer.n_out
        return self


def _arr(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.atleast_1d(np.asarray(value, dtype=np.float32)).reshape(-1).copy()


def from_model(model: Any) -> FloatSNN:
    """Read a :class:`edgesnn.snn.model.SpikingMLP` (``.config``, ``.fcs``, ``.beta(l)``,
    ``.threshold(l)``) into a :class:`FloatSNN`."""
    cfg = model.config
    cfg_dict = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
    layers = []
    for i, fc in enumerate(model.fcs):
        bias = getattr(fc, "bias", None)
        alpha = model.alpha(i) if hasattr(model, "alpha") else None
        layers.append(FloatLayer(weight=_arr(fc.weight).reshape(fc.weight.shape),
                                 beta=_arr(model.beta(i)), threshold=_arr(model.threshold(i)),
                                 bias=None if bias is None else _arr(bias),
                                 alpha=None if alpha is None else _arr(alpha)))
    known = {"steps", "encoder", "encoder_seed", "neuron", "reset", "bias", "fire", "readout"}
    snn = FloatSNN(layers=layers, steps=int(cfg_dict["steps"]),
                   encoder=str(cfg_dict["encoder"]), encoder_seed=int(cfg_dict["encoder_seed"]),
                   neuron=str(cfg_dict["neuron"]), reset=str(cfg_dict["reset"]),
                   fire=str(cfg_dict.get("fire", "gt")),
                   readout=str(cfg_dict.get("readout", "count_membrane")),
                   extra={k: v for k, v in cfg_dict.items() if k not in known})
    return snn.validate("model.pt")


def load_run(run_dir: Path) -> FloatSNN:
    """The float model of ``RUN_DIR/model.pt`` (via :func:`edgesnn.snn.checkpoint.load`)."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir / 'model.pt'} not found; train the run first")
    from edgesnn.snn.checkpoint import load

    try:
        model, _ = load(run_dir)
    except ValueError as exc:  # CheckpointError: foreign, corrupt or too new
        raise InteropError(str(exc)) from exc
    return from_model(model)


def readout(counts: np.ndarray, v_final: np.ndarray, mode: str = "count_membrane") -> np.ndarray:
    """Most spikes, ties by larger final membrane, then lowest index (SPEC.md 3.3);
    ``mode="count"``: most spikes, ties to the lowest index (the peers' readout)."""
    counts = np.asarray(counts, dtype=np.float64)
    if mode == "count":
        return np.argmax(counts, axis=1)
    v = np.asarray(v_final, dtype=np.float64)
    best = counts == counts.max(axis=1, keepdims=True)
    vm = np.where(best, v, -np.inf)
    return np.argmax(vm, axis=1)


def to_model(snn: FloatSNN) -> Any:
    """A :class:`edgesnn.snn.model.SpikingMLP` holding exactly ``snn``'s parameters."""
    import torch

    from edgesnn.snn.config import SNNConfig
    from edgesnn.snn.model import MIN_THRESHOLD, SpikingMLP

    snn.validate()
    per_neuron = any(layer.beta.shape[0] > 1 or layer.threshold.shape[0] > 1
                     or (layer.alpha is not None and layer.alpha.shape[0] > 1)
                     for layer in snn.layers)
    for i, layer in enumerate(snn.layers):
        if np.any(layer.threshold < MIN_THRESHOLD):
            raise InteropError(f"layer {i}: threshold {float(layer.threshold.min())} is below "
                               f"edgesnn's minimum {MIN_THRESHOLD}")
        if snn.neuron == "if" and np.any(layer.beta != 1.0):
            raise InteropError(f"layer {i}: neuron 'if' needs beta == 1")
    known = {"input_size", "hidden", "n_classes", "steps", "encoder", "encoder_seed", "neuron",
             "reset", "beta", "threshold", "per_neuron", "learn_beta", "learn_threshold",
             "bias", "fire", "readout", "alpha"}
    bias = any(layer.bias is not None for layer in snn.layers)
    kept = {k: v for k, v in snn.extra.items() if k in {"surrogate", "slope", "detach_reset"}}
    config = SNNConfig(input_size=snn.input_size, hidden=snn.hidden, n_classes=snn.n_classes,
                       steps=int(snn.steps), encoder=snn.encoder,
                       encoder_seed=int(snn.encoder_seed), neuron=snn.neuron, reset=snn.reset,
                       beta=float(snn.layers[0].beta[0]),
                       threshold=float(snn.layers[0].threshold[0]), per_neuron=per_neuron,
                       bias=bias, fire=snn.fire, readout=snn.readout,
                       alpha=float(snn.layers[0].alpha[0]) if snn.layers[0].alpha is not None
                       else 0.5,
                       **{k: v for k, v in kept.items() if k not in known})
    model = SpikingMLP(config)
    state = model.state_dict()
    for i, layer in enumerate(snn.layers):
        state[f"fcs.{i}.weight"] = torch.from_numpy(layer.weight.astype(np.float32))
        if bias:  # a layer without one gets zeros: the same float computation
            b = layer.bias if layer.bias is not None else np.zeros(layer.n_out, np.float32)
            state[f"fcs.{i}.bias"] = torch.from_numpy(b.astype(np.float32))
        shape = (layer.n_out,) if per_neuron else (1,)
        state[f"beta_{i}"] = torch.from_numpy(np.broadcast_to(layer.beta, shape).copy())
        state[f"threshold_{i}"] = torch.from_numpy(
            np.broadcast_to(layer.threshold, shape).copy())
        if layer.alpha is not None:
            state[f"alpha_{i}"] = torch.from_numpy(np.broadcast_to(layer.alpha, shape).copy())
    model.load_state_dict(state)
    model.eval()
    return model


def save_run(snn: FloatSNN, out_dir: Path, meta: dict[str, Any]) -> Path:
    """Write ``out_dir/model.pt`` + ``config.json`` (checkpoint format of edgesnn.snn)."""
    from edgesnn.snn.checkpoint import save

    return save(out_dir, to_model(snn), meta)


def load_graph(run_dir: Path) -> Any:
    """The integer :class:`edgesnn.graph.ir.SpikeGraph` of ``RUN_DIR/model.esg``."""
    path = Path(run_dir) / "model.esg"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `edgesnn compress {run_dir}` first")
    from edgesnn.graph.esg import read_esg

    try:
        return read_esg(path)
    except ValueError as exc:  # EsgError / GraphError name the bad field
        raise InteropError(f"{path}: {exc}") from exc

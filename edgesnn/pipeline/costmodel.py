"""A per-device linear model of the instructions (or cycles) one inference costs, calibrated
from counts measured on the device (``edgesnn tune``).

    cost ≈ a + Σ_k b_k · synaptic ops on layers of storage kind k (dense8, sparse8, dense4,
           sparse4) + Σ_k e_k · presynaptic spikes into layers of kind k (a row lookup each)
           + c · neuron-steps (T × neurons) + Σ_e p_e · pixel-steps (T × inputs, for the
           model's encoder e) + d · output spikes

The features of one sample come from the golden simulator (whose op and spike counts the
firmware reproduces bit for bit), so a trial's cost is predicted without building anything.
Calibration measures small synthetic graphs (:func:`edgesnn.graph.synth.random_graph`) on the
device through the ordinary ``eval`` path, fits the coefficients by least squares on two thirds
of the measured samples and reports the error on the held-out third.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: every storage kind a layer can have: (storage name, weight bits)
KINDS = ("dense8", "sparse8", "dense4", "sparse4")
#: the encoders whose per-pixel, per-step work the model prices (``pixel_steps_<encoder>``)
ENCODERS = ("rate", "latency")
BASE_FEATURES = ("intercept", "neuron_steps", *(f"pixel_steps_{e}" for e in ENCODERS),
                 "output_spikes", *(f"pre_{k}" for k in KINDS))


def layer_kinds(graph: Any) -> list[str]:
    """The storage kind (``dense8`` …) of each layer of ``graph``."""
    return [f"{layer.storage.name.lower()}{layer.weight_bits}" for layer in graph.layers]


def features(graph: Any, ops: np.ndarray, spikes: np.ndarray,
             input_spikes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample features (float64 ``[B]`` each) from golden counts ``ops [B, L]``,
    ``spikes [B, L]`` and ``input_spikes [B]``."""
    ops = np.asarray(ops, dtype=np.float64).reshape(len(input_spikes), -1)
    spikes = np.asarray(spikes, dtype=np.float64).reshape(len(input_spikes), -1)
    b = len(input_spikes)
    out = {name: np.zeros(b) for name in (*BASE_FEATURES, *KINDS)}
    out["intercept"] += 1.0
    out["neuron_steps"] += float(graph.steps * sum(layer.n_out for layer in graph.layers))
    enc = graph.encoder.kind.name.lower()
    if enc not in ENCODERS:
        raise ValueError(f"encoder {enc!r}: the cost model prices {', '.join(ENCODERS)}")
    out[f"pixel_steps_{enc}"] += float(graph.steps * graph.input_size)
    out["output_spikes"] += spikes[:, -1]
    for li, kind in enumerate(layer_kinds(graph)):
        out[kind] += ops[:, li]
        pre = np.asarray(input_spikes, dtype=np.float64) if li == 0 else spikes[:, li - 1]
        out[f"pre_{kind}"] += pre
    return out


@dataclass
class CostModel:
    """Coefficients per feature name; ``unit`` is the device's cycle unit."""

    device: str
    unit: str
    coef: dict[str, float]
    calibration: dict[str, Any] = field(default_factory=dict)

    def predict(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        """Predicted cost per sample. A storage kind the calibration never saw is priced at
        the mean of the calibrated kinds' per-op coefficients."""
        total = np.zeros_like(feats["intercept"])
        for name, values in feats.items():
            if not values.any():
                continue
            if name in self.coef:
                coef = self.coef[name]
            else:  # an uncalibrated kind: the mean over the calibrated ones
                group = [k for k in self.coef if k.startswith("pre_") == name.startswith("pre_")
                         and (k in KINDS or k[4:] in KINDS)]
                coef = float(np.mean([self.coef[k] for k in group])) if group else 0.0
            total = total + coef * values
        return total

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "unit": self.unit, "coef": self.coef,
                "calibration": self.calibration}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CostModel:
        return cls(device=d["device"], unit=d["unit"],
                   coef={k: float(v) for k, v in d["coef"].items()},
                   calibration=dict(d.get("calibration", {})))


def fit(device: str, unit: str, rows: list[tuple[dict[str, np.ndarray], np.ndarray]],
        holdout_every: int = 3) -> CostModel:
    """Least-squares fit on ``rows`` (features, measured cost) of every measured model; every
    ``holdout_every``-th sample of each model is held out and the model's error on those is
    stored in ``calibration`` (mean absolute % error, max % error)."""
    names = [n for n in (*BASE_FEATURES, *KINDS)
             if any(f[n].any() for f, _ in rows)]
    xs, ys, train = [], [], []
    for feats, cost in rows:
        xs.append(np.stack([feats[n] for n in names], axis=1))
        ys.append(np.asarray(cost, dtype=np.float64))
        idx = np.arange(len(cost))
        train.append(idx % holdout_every != holdout_every - 1)
    x, y, keep = np.concatenate(xs), np.concatenate(ys), np.concatenate(train)
    if keep.sum() < len(names):
        raise ValueError(f"cost-model calibration: {int(keep.sum())} training samples for "
                         f"{len(names)} coefficients; measure more samples or models")
    coef, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
    pred = x @ coef
    rel = np.abs(pred - y) / np.maximum(y, 1.0) * 100.0
    held = ~keep
    model = CostModel(device, unit, {n: float(c) for n, c in zip(names, coef, strict=True)})
    model.calibration = {
        "models": len(rows), "samples": int(len(y)), "held_out": int(held.sum()),
        "train_mape_pct": float(rel[keep].mean()),
        "held_out_mape_pct": float(rel[held].mean()) if held.any() else None,
        "held_out_max_pct": float(rel[held].max()) if held.any() else None,
    }
    return model


def measure(model_dir: Path, device: str, samples: int, *,
            data_dir: Path | None = None) -> dict[str, Any]:
    """Run ``model_dir/model.esg`` on ``device`` (export, build, launch) for the first
    ``samples`` MNIST test digits through the ``eval`` path, every answer checked against
    golden; returns the per-sample ``cost`` (the device's cycle unit), golden counts and
    device accuracy."""
    from edgesnn.graph.esg import read_esg
    from edgesnn.pipeline.evaluation import EvalOptions, evaluate_devices
    from edgesnn.results import device_dirname, read_records

    summary = evaluate_devices(model_dir, [device],
                               EvalOptions(samples=samples, progress=False, data_dir=data_dir))
    recs = read_records(model_dir / "eval" / device_dirname(device) / "samples.jsonl")
    ok = [r for r in recs if r["status"] == "ok"]
    if len(ok) != samples:
        raise RuntimeError(f"{model_dir} on {device}: {len(ok)} of {samples} samples answered")
    for r in ok:
        if (r["device_pred"], r["ops"], r["spikes"], r["input_spikes"]) != (
                r["golden"]["pred"], r["golden"]["ops"], r["golden"]["spikes"],
                r["golden"]["input_spikes"]):
            raise RuntimeError(f"{model_dir} on {device}: sample {r['index']} differs from "
                               "golden")
    ok.sort(key=lambda r: r["index"])
    graph = read_esg(model_dir / "model.esg")
    feats = features(graph, np.array([r["ops"] for r in ok]), np.array([r["spikes"] for r in ok]),
                     np.array([r["input_spikes"] for r in ok]))
    return {"cost": np.array([r["cycles"] for r in ok], dtype=np.float64), "features": feats,
            "device_accuracy": float(np.mean([r["device_pred"] == r["label"] for r in ok])),
            "summary": summary}


#: calibration graphs: (hidden, steps, density, weight bits, storage) — spreads synaptic ops,
#: neuron-steps, pixel-steps and events, one graph per storage kind in the first four; the
#: encoders of the search take turns
CALIBRATION_SET = (
    (64, 8, 1.0, 8, "dense"),
    (128, 4, 0.2, 8, "sparse"),
    (96, 6, 1.0, 4, "dense"),
    (48, 10, 0.3, 4, "sparse"),
    (32, 12, 0.5, 8, "sparse"),
    (160, 3, 1.0, 8, "dense"),
    (80, 5, 0.6, 4, "sparse"),
    (24, 16, 1.0, 4, "dense"),
)


def calibrate(device: str, work: Path, *, models: int = 6, samples: int = 12, seed: int = 0,
              encoders: tuple[str, ...] = ENCODERS,
              data_dir: Path | None = None) -> CostModel:
    """Measure ``models`` synthetic 784-h-10 graphs (:data:`CALIBRATION_SET`, graph i with
    encoder ``encoders[i % len(encoders)]``) on ``device`` for ``samples`` digits each and
    fit :class:`CostModel`."""
    from edgesnn.devices import load_device
    from edgesnn.graph.esg import write_esg
    from edgesnn.graph.synth import random_graph

    if not 1 <= models <= len(CALIBRATION_SET):
        raise ValueError(f"calibration models={models}; accepted: 1..{len(CALIBRATION_SET)}")
    if samples < 3:
        raise ValueError(f"calibration samples={samples}; must be >= 3 (one in three is "
                         "held out)")
    if not encoders or not set(encoders) <= set(ENCODERS):
        raise ValueError(f"calibration encoders {list(encoders)}; accepted: {list(ENCODERS)}")
    unit = load_device(device).run.cycle_unit
    rows = []
    per_model = []
    for i, (hidden, steps, density, bits, storage) in enumerate(CALIBRATION_SET[:models]):
        d = Path(work) / f"calib{i}"
        d.mkdir(parents=True, exist_ok=True)
        graph = random_graph(seed + i, input_size=784, hidden=(hidden,), n_classes=10,
                             steps=steps, weight_bits=bits, storage=storage, density=density,
                             encoder=encoders[i % len(encoders)], per_neuron=True)
        write_esg(graph, d / "model.esg")
        log.info("calibration model %d: 784-%d-10 T=%d density %.1f %s%d %s", i, hidden,
                 steps, density, storage, bits, encoders[i % len(encoders)])
        m = measure(d, device, samples, data_dir=data_dir)
        rows.append((m["features"], m["cost"]))
        per_model.append({"hidden": hidden, "steps": steps, "density": density,
                          "encoder": encoders[i % len(encoders)],
                          "weight_bits": bits, "storage": storage,
                          "mean_cost": float(m["cost"].mean())})
    model = fit(device, unit, rows)
    model.calibration["graphs"] = per_model
    return model

"""Monte-Carlo evaluation of a crossbar description: accuracy mean ± std over trials, agreement
with the golden integer model, energy and latency per inference, sweeps and fault remapping."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from edgesnn.crossbar.description import XbarModel
from edgesnn.crossbar.energy import breakdown
from edgesnn.crossbar.mapping import CrossbarMapping
from edgesnn.crossbar.remap import remap
from edgesnn.crossbar.sim import Conditions, XbarResult, latency_s, sample_stuck_map, simulate

log = logging.getLogger(__name__)

SWEEP_PARAMS = {
    "variation": "variation_sigma",
    "programming": "programming_sigma",
    "read": "read_sigma",
    "stuck": "stuck_rate",
    "time": "time_s",
}


def _mean_breakdowns(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    out["energy_per_inference_pj"] = float(np.mean([p["energy_per_inference_pj"] for p in parts]))
    for key in ("energy_breakdown", "counts_per_inference"):
        out[key] = {k: float(np.mean([p[key][k] for p in parts])) for k in parts[0][key]}
    return out


def stuck_split(model: XbarModel, rate: float) -> tuple[float, float]:
    """Split a total stuck-at rate into (G_min, G_max) in the profile's proportion (MNSIM's
    9:1 when the profile has none)."""
    p0 = float(model.profile["noise.stuck_at_gmin"])
    p1 = float(model.profile["noise.stuck_at_gmax"])
    if p0 + p1 <= 0:
        p0, p1 = 0.09, 0.01
    return rate * p0 / (p0 + p1), rate * p1 / (p0 + p1)


def evaluate(model: XbarModel, pixels: np.ndarray, labels: np.ndarray | None, *,
             trials: int = 5, cond: Conditions | None = None, seed: int = 0,
             remap_faults: bool = False, golden_pred: np.ndarray | None = None,
             mapping: CrossbarMapping | None = None) -> dict[str, Any]:
    """Run ``trials`` independent draws of the arrays over ``pixels``.

    With ``remap_faults`` every trial's stuck-at map (``cond.stuck_map``, or one sampled from
    the stuck-at rates with the trial's seed) is also deployed fault-aware (remap +
    compensation) and evaluated with the same conductance draw; the result then has
    ``remap`` with the before/after accuracies.
    """
    from edgesnn.graph.golden import simulate as golden_simulate

    cond = cond or Conditions()
    mapping = mapping or model.mapping
    if golden_pred is None:
        golden_pred = golden_simulate(model.graph, pixels).pred
    ideal_trials = 1 if cond.ideal and cond.stuck_map is None else trials
    accs, agrees, parts = [], [], []
    r_accs, r_agrees, r_parts, r_reports = [], [], [], []
    results: list[XbarResult] = []
    prof = model.profile
    for k in range(ideal_trials):
        tseed = seed * 1_000_003 + k
        tcond = cond
        if remap_faults and cond.stuck_map is None and not cond.ideal:
            p0, p1 = cond.value("stuck_at_gmin", prof), cond.value("stuck_at_gmax", prof)
            rng = np.random.default_rng([tseed, 0x57C])
            sm = sample_stuck_map(mapping.arrays_used, prof.rows, prof.cols, p0, p1, rng)
            tcond = dataclasses.replace(cond, stuck_map=sm)
        res = simulate(mapping, prof, model.spec, pixels, tcond, seed=tseed)
        results.append(res)
        parts.append(breakdown(res, prof))
        agrees.append(float(np.mean(res.pred == golden_pred)))
        if labels is not None:
            accs.append(float(np.mean(res.pred == labels)))
        if remap_faults and tcond.stuck_map is not None:
            rmap, reports = remap(mapping, tcond.stuck_map, prof.levels)
            rres = simulate(rmap, prof, model.spec, pixels, tcond, seed=tseed)
            r_parts.append(breakdown(rres, prof))
            r_agrees.append(float(np.mean(rres.pred == golden_pred)))
            if labels is not None:
                r_accs.append(float(np.mean(rres.pred == labels)))
            r_reports.append(reports)
    energy = _mean_breakdowns(parts)
    out: dict[str, Any] = {
        "samples": int(len(pixels)),
        "trials": ideal_trials,
        "accuracy": float(np.mean(accs)) if accs else None,
        "accuracy_std": float(np.std(accs)) if accs else None,
        "accuracy_trials": accs,
        "golden_accuracy": (float(np.mean(golden_pred == labels)) if labels is not None
                            else None),
        "agreement_with_golden": float(np.mean(agrees)),
        "agreement_std": float(np.std(agrees)),
        "latency_per_inference_s": latency_s(mapping, prof, model.spec.steps),
        **energy,
    }
    if r_agrees:
        out["remap"] = {
            "accuracy_before": out["accuracy"], "accuracy_before_std": out["accuracy_std"],
            "accuracy_after": float(np.mean(r_accs)) if r_accs else None,
            "accuracy_after_std": float(np.std(r_accs)) if r_accs else None,
            "agreement_before": out["agreement_with_golden"],
            "agreement_after": float(np.mean(r_agrees)),
            "energy_after_pj": float(np.mean([p["energy_per_inference_pj"] for p in r_parts])),
            "layers_last_trial": r_reports[-1],
        }
    return out


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``name=start:stop:step`` (stop inclusive) or ``name=v1,v2,...``."""
    if "=" not in text:
        raise ValueError(f"--sweep {text!r}: expected NAME=START:STOP:STEP or NAME=V1,V2,...")
    name, spec = text.split("=", 1)
    name = name.strip()
    if name not in SWEEP_PARAMS:
        raise ValueError(f"--sweep {name!r}; accepted: {', '.join(SWEEP_PARAMS)}")
    try:
        if ":" in spec:
            a, b, c = (float(x) for x in spec.split(":"))
            if c <= 0 or b < a:
                raise ValueError("need STEP > 0 and STOP >= START")
            n = int(np.floor((b - a) / c + 1e-9)) + 1
            values = [round(a + i * c, 12) for i in range(n)]
        else:
            values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"--sweep {text!r}: {exc}") from exc
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--sweep {text!r}: values must be >= 0")
    return name, values


def sweep(model: XbarModel, pixels: np.ndarray, labels: np.ndarray | None, name: str,
          values: list[float], *, trials: int, base: Conditions, seed: int = 0,
          remap_faults: bool = False) -> list[dict[str, Any]]:
    from edgesnn.graph.golden import simulate as golden_simulate

    golden_pred = golden_simulate(model.graph, pixels).pred
    rows = []
    for v in values:
        if name == "stuck":
            p0, p1 = stuck_split(model, v)
            cond = dataclasses.replace(base, stuck_at_gmin=p0, stuck_at_gmax=p1)
        elif name == "time":
            cond = dataclasses.replace(base, time_s=v)
        else:
            cond = dataclasses.replace(base, **{SWEEP_PARAMS[name]: v})
        r = evaluate(model, pixels, labels, trials=trials, cond=cond, seed=seed,
                     remap_faults=remap_faults, golden_pred=golden_pred)
        r["value"] = v
        rows.append(r)
        log.info("sweep %s=%g: accuracy %s agreement %.4f", name, v, r["accuracy"],
                 r["agreement_with_golden"])
    return rows


def plot_sweep(rows: list[dict[str, Any]], name: str, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["value"] for r in rows]
    key, std = ("accuracy", "accuracy_std") if rows[0]["accuracy"] is not None else (
        "agreement_with_golden", "agreement_std")
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.errorbar(xs, [r[key] for r in rows], yerr=[r[std] for r in rows], marker="o",
                capsize=3, label="crossbar")
    if rows[0].get("remap"):
        ax.errorbar(xs, [r["remap"]["accuracy_after"] for r in rows],
                    yerr=[r["remap"]["accuracy_after_std"] for r in rows], marker="s",
                    capsize=3, label="fault-aware remap")
    if rows[0].get("golden_accuracy") is not None:
        ax.axhline(rows[0]["golden_accuracy"], color="gray", ls="--", label="golden integer")
    ax.set_xlabel({"variation": "device-to-device variation sigma",
                   "stuck": "stuck-at rate", "programming": "programming noise sigma",
                   "read": "read noise sigma", "time": "time after programming (s)"}[name])
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

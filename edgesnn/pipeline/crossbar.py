"""``edgesnn crossbar-sim``: a crossbar description's SNN through its mapped arrays with device
non-idealities, Monte-Carlo over trials, against the golden integer model and the float model
(when the description's source run still has its ``model.pt``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _float_accuracy(source: str, pixels: np.ndarray, labels: np.ndarray) -> float | None:
    run_dir = Path(source) if source else None
    if run_dir is None or not (run_dir / "model.pt").is_file():
        return None
    try:
        from edgesnn.compress.pipeline import float_predict
        from edgesnn.snn.checkpoint import load

        model, _ = load(run_dir)
        return float(np.mean(float_predict(model, pixels) == labels))
    except Exception as exc:  # noqa: BLE001 - the float model is optional extra information
        log.warning("float accuracy unavailable (%s)", exc)
        return None


def crossbar_sim(description: Path, *, samples: int = 500, trials: int = 5, ideal: bool = False,
                 sweep: str | None = None, variation: float | None = None,
                 stuck_rate: float | None = None, stuck_map: Path | str | None = None,
                 remap: bool = False, time_s: float | None = None, seed: int = 0,
                 data_dir: Path | str | None = None,
                 plot_dir: Path | str | None = None) -> dict[str, Any]:
    """Simulate ``description`` on ``samples`` test images over ``trials`` Monte-Carlo trials
    (``sweep="NAME=A:B:STEP"`` varies one non-ideality and plots accuracy against it);
    returns what ``crossbar-sim --json`` prints. Bad options and files raise ``ValueError``
    naming them."""
    from edgesnn.crossbar.description import read_description
    from edgesnn.crossbar.evaluate import evaluate, parse_sweep, plot_sweep, stuck_split
    from edgesnn.crossbar.evaluate import sweep as run_sweep
    from edgesnn.crossbar.faults import fit_to, load_stuck_map
    from edgesnn.crossbar.sim import Conditions
    from edgesnn.data import load_dataset

    if samples < 1 or trials < 1:
        raise ValueError("--samples and --trials must be >= 1")
    description = Path(description)
    model = read_description(description)
    dataset = model.doc["provenance"].get("dataset") or "mnist"
    try:
        ds = load_dataset(dataset, "test", data_dir, limit=samples)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load {dataset} test images: {exc}") from exc
    if ds.images.shape[1] != model.spec.input_size:
        raise ValueError(f"{dataset} images have {ds.images.shape[1]} pixels; the model takes "
                         f"{model.spec.input_size}")
    pixels, labels = ds.images, ds.labels
    cond = Conditions(ideal=ideal, time_s=time_s)
    if variation is not None:
        cond = dataclasses.replace(cond, variation_sigma=variation)
    if stuck_rate is not None:
        p0, p1 = stuck_split(model, stuck_rate)
        cond = dataclasses.replace(cond, stuck_at_gmin=p0, stuck_at_gmax=p1)
    stuck = model.fault_map
    if stuck_map is not None:
        stuck = load_stuck_map(Path(stuck_map))
    if stuck is not None:
        stuck = fit_to(stuck, model.mapping.arrays_used, model.profile.rows, model.profile.cols,
                       str(stuck_map or "of the description"))
        cond = dataclasses.replace(cond, stuck_map=stuck)
    out: dict[str, Any] = {"description": str(description), "device": model.profile.name,
                           "model_hash": model.doc["provenance"]["model_hash"],
                           "dataset": dataset, "ideal": ideal, "time_s": time_s}
    if sweep:
        name, values = parse_sweep(sweep)
        rows = run_sweep(model, pixels, labels, name, values, trials=trials, base=cond,
                         seed=seed, remap_faults=remap)
        folder = Path(plot_dir) if plot_dir is not None else description.parent
        folder.mkdir(parents=True, exist_ok=True)
        png = folder / f"{description.stem}.sweep-{name}.png"
        plot_sweep(rows, name, str(png), f"{model.profile.name}: accuracy vs {name} "
                   f"({len(pixels)} samples x {trials} trials)")
        base = rows[0]
        out.update({k: base[k] for k in ("accuracy", "accuracy_std", "golden_accuracy",
                                          "agreement_with_golden", "energy_per_inference_pj",
                                          "energy_breakdown", "latency_per_inference_s")})
        out["sweep"] = {"param": name, "plot": str(png),
                        "points": [{k: r.get(k) for k in (
                            "value", "accuracy", "accuracy_std", "agreement_with_golden",
                            "energy_per_inference_pj", "remap")} for r in rows]}
    else:
        out.update(evaluate(model, pixels, labels, trials=trials, cond=cond, seed=seed,
                            remap_faults=remap))
    out["float_accuracy"] = _float_accuracy(model.doc["provenance"].get("source", ""),
                                            pixels, labels)
    return out

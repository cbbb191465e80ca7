"""``edgesnn tune``: a device-aware architecture search with Optuna.

Each trial trains a small SNN (hidden size, T, encoder, spike-regularizer strength), compresses
it (sparsity, weight bits) and scores it on two objectives: golden integer accuracy (up) and
the device cost per inference (down) predicted by the device's calibrated linear cost model
(:mod:`edgesnn.pipeline.costmodel`) from the golden simulator's op counts. The device
profile's flash and RAM are constraints: a trial whose ``.esg`` + code or arena + stack +
runtime buffers does not fit is infeasible (Optuna's constrained NSGA-II keeps it off the
front). At the end the Pareto candidates are measured on the device and the predicted cost is
compared with the measured one.

Trials run in ``workers`` processes on this machine, and on other machines through the same
Optuna storage (``storage``: a journal file, the default ``OUT/journal.log``, or an RDB URL
such as ``postgresql://user@host/db``): ``edgesnn tune OUT --device D --storage URL --worker``
on each extra machine. The cost model lives in the study (a study attribute), so every
worker prices trials with the same calibration; each trial stores its ``.esg`` in the study
so the coordinator can measure a candidate trained on another machine.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import multiprocessing
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_HIDDEN = (32, 64, 128, 256)
DEFAULT_STEPS = (4, 8, 16)
DEFAULT_ENCODERS = ("rate", "latency")
DEFAULT_SPARSITY = (0.0, 0.5, 0.8, 0.9)
DEFAULT_BITS = (4, 8)
SPIKE_REG_RANGE = (1e-4, 1e-1)  # log-uniform
COSTMODEL_ATTR = "edgesnn_costmodel"
CONFIG_ATTR = "edgesnn_tune"


@dataclass
class TuneOptions:
    """The options of ``edgesnn tune`` (same names as the CLI's)."""

    out: Path
    device: str
    trials: int = 20
    workers: int = 1
    storage: str | None = None
    study_name: str = "edgesnn-tune"
    worker: bool = False  # only run trials (another process calibrates and measures)
    measure: int = 3
    measure_samples: int = 50
    calibrate_models: int = 6
    calibrate_samples: int = 12
    train_limit: int = 2000
    test_limit: int = 500
    epochs: int = 1
    qat_epochs: int = 0
    seed: int = 0
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    steps: tuple[int, ...] = DEFAULT_STEPS
    encoders: tuple[str, ...] = DEFAULT_ENCODERS
    sparsity: tuple[float, ...] = DEFAULT_SPARSITY
    weight_bits: tuple[int, ...] = DEFAULT_BITS
    spike_reg: tuple[float, float] = SPIKE_REG_RANGE
    data_dir: Path | None = None
    wait_s: float = 600.0  # how long a --worker waits for the cost model / the coordinator
    plot: bool = True

    def check(self) -> None:
        from edgesnn.devices import load_device

        checks = [
            (self.trials >= 1, f"--trials {self.trials}: must be >= 1"),
            (self.workers >= 1, f"--workers {self.workers}: must be >= 1"),
            (self.measure >= 0, f"--measure {self.measure}: must be >= 0"),
            (self.measure_samples >= 1, f"--measure-samples {self.measure_samples}: must be "
             ">= 1"),
            (self.train_limit >= 1, f"--train-limit {self.train_limit}: must be >= 1"),
            (self.test_limit >= 1, f"--test-limit {self.test_limit}: must be >= 1"),
            (self.epochs >= 1, f"--epochs {self.epochs}: must be >= 1"),
            (self.qat_epochs >= 0, f"--qat-epochs {self.qat_epochs}: must be >= 0"),
            (bool(self.hidden) and all(h >= 1 for h in self.hidden),
             f"--hidden {list(self.hidden)}: sizes >= 1"),
            (bool(self.steps) and all(t >= 1 for t in self.steps),
             f"--steps {list(self.steps)}: values >= 1"),
            (bool(self.encoders) and set(self.encoders) <= set(DEFAULT_ENCODERS),
             f"--encoders {list(self.encoders)}: accepted rate, latency (the cost model is "
             "calibrated on spike-encoded inputs)"),
            (bool(self.sparsity) and all(0.0 <= s < 1.0 for s in self.sparsity),
             f"--sparsity {list(self.sparsity)}: values in [0, 1)"),
            (bool(self.weight_bits) and set(self.weight_bits) <= {4, 8},
             f"--weight-bits {list(self.weight_bits)}: accepted 4, 8"),
            (0.0 < self.spike_reg[0] <= self.spike_reg[1],
             f"--spike-reg {list(self.spike_reg)}: LOW HIGH with 0 < LOW <= HIGH"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        try:
            load_device(self.device)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise ValueError(f"--device {self.device}: {exc}") from exc

    def storage_url(self) -> str:
        return self.storage or str(Path(self.out) / "journal.log")


def open_storage(url: str) -> Any:
    """An Optuna storage: an RDB URL (``postgresql://``, ``mysql://``, ``sqlite:///``) or,
    for anything else, a journal file at that path (Optuna's ``JournalFileBackend``, safe for
    several processes on one file system)."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if "://" in url:
        return RDBStorage(url)
    Path(url).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return JournalStorage(JournalFileBackend(url))


def _constraints(trial: Any) -> list[float]:
    return list(trial.user_attrs.get("constraints", [math.inf, math.inf]))


def _study(opts: TuneOptions, create: bool) -> Any:
    import optuna

    # one process: reproducible from --seed; several: each its own stream
    seed = opts.seed if opts.workers == 1 and not opts.worker else opts.seed + os.getpid()
    with warnings.catch_warnings():  # optuna 5 prefers Trial.set_constraint; 4 has only this
        warnings.simplefilter("ignore", FutureWarning)
        sampler = optuna.samplers.NSGAIISampler(
            seed=seed, population_size=max(4, min(50, opts.trials // 3)),
            constraints_func=_constraints)
    storage = open_storage(opts.storage_url())
    if create:
        return optuna.create_study(storage=storage, study_name=opts.study_name,
                                   directions=["maximize", "minimize"], sampler=sampler,
                                   load_if_exists=True)
    return optuna.load_study(storage=storage, study_name=opts.study_name, sampler=sampler)


# ------------------------------------------------------------------------------------------
# one trial


def _predict(graph: Any, model: Any, images: np.ndarray) -> tuple[float, dict[str, float]]:
    from edgesnn.graph.golden import simulate
    from edgesnn.pipeline.costmodel import features

    sim = simulate(graph, images)
    feats = features(graph, sim.ops, sim.spikes, sim.input_spikes)
    cost = model.predict(feats)
    return float(cost.mean()), {k: float(v.mean()) for k, v in feats.items()}


def run_trial(trial: Any, opts: TuneOptions, model: Any) -> tuple[float, float]:
    """Train, compress and score one trial (see the module docstring)."""
    from edgesnn.data import load_dataset
    from edgesnn.devices import load_device
    from edgesnn.export.c import device_arena_bytes, fit_report
    from edgesnn.graph.esg import read_esg
    from edgesnn.pipeline import compress, train

    params = {
        "hidden": trial.suggest_categorical("hidden", list(opts.hidden)),
        "steps": trial.suggest_categorical("steps", list(opts.steps)),
        "encoder": trial.suggest_categorical("encoder", list(opts.encoders)),
        "sparsity": trial.suggest_categorical("sparsity", list(opts.sparsity)),
        "weight_bits": trial.suggest_categorical("weight_bits", list(opts.weight_bits)),
        "spike_reg": trial.suggest_float("spike_reg", *opts.spike_reg, log=True),
    }
    run_dir = Path(opts.out) / "trials" / f"{trial.number:05d}"
    run_dir.mkdir(parents=True, exist_ok=False)  # a trial number is run once, or this fails
    trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
    trial.set_user_attr("run_dir", str(run_dir))
    t0 = time.perf_counter()
    train(run_dir, data_dir=opts.data_dir, hidden=[params["hidden"]], steps=params["steps"],
          encoder=params["encoder"], spike_reg=params["spike_reg"], epochs=opts.epochs,
          train_limit=opts.train_limit, test_limit=opts.test_limit, seed=opts.seed,
          progress=False)
    summary = compress(run_dir, sparsity=params["sparsity"], weight_bits=params["weight_bits"],
                       qat_epochs=opts.qat_epochs, train_limit=opts.train_limit,
                       test_limit=opts.test_limit, data_dir=opts.data_dir, seed=opts.seed)
    blob = (run_dir / "model.esg").read_bytes()
    graph = read_esg(run_dir / "model.esg")
    profile = load_device(opts.device)
    fit = fit_report(profile, len(blob), device_arena_bytes(graph, profile))
    test = load_dataset("mnist", "test", opts.data_dir, opts.test_limit)
    cost, feats = _predict(graph, model, np.asarray(test.images, dtype=np.uint8))
    acc = float(summary["golden_accuracy"])
    trial.set_user_attr("constraints", [float(fit["flash_needed"] - fit["flash_available"]),
                                        float(fit["ram_needed"] - fit["ram_available"])])
    trial.set_user_attr("feasible", bool(fit["fits"]))
    trial.set_user_attr("fit", {k: fit[k] for k in ("flash_needed", "flash_available",
                                                    "ram_needed", "ram_available")})
    trial.set_user_attr("features", feats)
    trial.set_user_attr("float_accuracy", float(summary["float_accuracy"]))
    trial.set_user_attr("esg_bytes", len(blob))
    trial.set_user_attr("esg_b64", base64.b64encode(blob).decode("ascii"))
    trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
    log.info("trial %d %s: golden %.4f, predicted %.0f, %s", trial.number, params, acc, cost,
             "fits" if fit["fits"] else "does not fit")
    return acc, cost


def _n_trials(study: Any) -> int:
    return len(study.get_trials(deepcopy=False))


def _wait_costmodel(study: Any, wait_s: float) -> dict[str, Any]:
    t_end = time.monotonic() + wait_s
    while True:
        attrs = study.user_attrs
        if COSTMODEL_ATTR in attrs:
            return attrs[COSTMODEL_ATTR]
        if time.monotonic() > t_end:
            raise RuntimeError(f"no cost model in study after {wait_s:.0f} s: start the "
                               "coordinator (edgesnn tune without --worker) first")
        time.sleep(1.0)


def work(opts: TuneOptions) -> int:
    """Run trials until the study holds ``opts.trials`` of them; returns how many ran here.
    Every process (local ``--workers`` or ``--worker`` on another machine) runs this."""
    import optuna

    from edgesnn.pipeline.costmodel import CostModel

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - train() names what is missing
        pass
    study = _study(opts, create=False)
    model = CostModel.from_json(_wait_costmodel(study, opts.wait_s))
    done = 0
    while _n_trials(study) < opts.trials:
        trial = study.ask()
        if trial.number >= opts.trials:  # another worker took the last slot meanwhile
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        try:
            values = run_trial(trial, opts, model)
        except Exception as exc:  # noqa: BLE001 - a trial that fails is recorded as failed
            log.warning("trial %d failed: %s", trial.number, exc)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, list(values))
        done += 1
    return done


def _work_entry(opts_json: str) -> None:  # the target of a --workers process
    logging.basicConfig(level=logging.WARNING)
    work(_opts_from_json(opts_json))


def _opts_to_json(opts: TuneOptions) -> str:
    d = asdict(opts)
    d["out"] = str(opts.out)
    d["data_dir"] = None if opts.data_dir is None else str(opts.data_dir)
    return json.dumps(d)


def _opts_from_json(s: str) -> TuneOptions:
    d = json.loads(s)
    d["out"] = Path(d["out"])
    d["data_dir"] = None if d["data_dir"] is None else Path(d["data_dir"])
    for k in ("hidden", "steps", "encoders", "sparsity", "weight_bits", "spike_reg"):
        d[k] = tuple(d[k])
    return TuneOptions(**d)


# ------------------------------------------------------------------------------------------
# the front


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points among (accuracy ↑, cost ↓), in cost order."""
    front = []
    for i, (a, c) in enumerate(points):
        dominated = any((a2 >= a and c2 <= c) and (a2 > a or c2 < c)
                        for j, (a2, c2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][1], -points[i][0]))


def _trial_json(t: Any) -> dict[str, Any]:
    attrs = {k: v for k, v in t.user_attrs.items() if k != "esg_b64"}
    return {"number": t.number, "state": t.state.name, "params": t.params,
            "golden_accuracy": t.values[0] if t.values else None,
            "predicted_cost": t.values[1] if t.values else None,
            "feasible": attrs.pop("feasible", None), **attrs}


def _plot(path: Path, trials: list[dict[str, Any]], front: list[dict[str, Any]],
          unit: str, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ok = [t for t in trials if t["state"] == "COMPLETE"]
    feas = [t for t in ok if t["feasible"]]
    infeas = [t for t in ok if not t["feasible"]]
    ax.scatter([t["predicted_cost"] for t in feas], [100 * t["golden_accuracy"] for t in feas],
               c="tab:blue", s=18, label="feasible trials")
    if infeas:
        ax.scatter([t["predicted_cost"] for t in infeas],
                   [100 * t["golden_accuracy"] for t in infeas], c="tab:gray", marker="x",
                   s=18, label="does not fit flash/RAM")
    ax.step([t["predicted_cost"] for t in front], [100 * t["golden_accuracy"] for t in front],
            where="post", c="tab:red", label="Pareto front (predicted)")
    meas = [t for t in front if t.get("measured_cost") is not None]
    if meas:
        ax.scatter([t["measured_cost"] for t in meas],
                   [100 * t["golden_accuracy"] for t in meas], facecolors="none",
                   edgecolors="tab:red", s=60, label="measured on device")
    ax.set_xlabel(f"{unit} per inference on {device}")
    ax.set_ylabel("golden accuracy (%)")
    ax.set_title("edgesnn tune: accuracy vs device cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _wait_finished(study: Any, opts: TuneOptions) -> None:
    import optuna

    t_end = time.monotonic() + opts.wait_s
    while True:
        trials = [t for t in study.get_trials(deepcopy=False) if t.number < opts.trials]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if len(trials) >= opts.trials and not running:
            return
        if time.monotonic() > t_end:
            raise RuntimeError(f"{len(running)} trial(s) still running after {opts.wait_s:.0f} s")
        time.sleep(1.0)


def tune(out: Path | str, *, device: str, **options: Any) -> dict[str, Any]:
    """``edgesnn tune OUT --device NAME``: keyword options are :class:`TuneOptions` fields
    (``trials``, ``workers``, ``storage``, ``measure``, ``train_limit``, ``epochs``,
    ``hidden``…, the CLI's names). Returns what ``tune --json`` prints."""
    from dataclasses import fields

    names = {f.name for f in fields(TuneOptions)} - {"out", "device"}
    unknown = set(options) - names
    if unknown:
        raise TypeError(f"unknown tune option(s) {sorted(unknown)}; accepted: {sorted(names)}")
    for key in ("hidden", "steps", "encoders", "sparsity", "weight_bits", "spike_reg"):
        if key in options:
            options[key] = tuple(options[key])
    if "data_dir" in options and options["data_dir"] is not None:
        options["data_dir"] = Path(options["data_dir"])
    return run_tune(TuneOptions(out=Path(out), device=device, **options))


def run_tune(opts: TuneOptions) -> dict[str, Any]:
    """The coordinator: calibrate (once per study), run the trials, measure the front; with
    ``opts.worker`` only run trials."""
    from edgesnn.atomic import write_json
    from edgesnn.pipeline.costmodel import CostModel, calibrate, measure

    opts.check()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    if opts.worker:
        _study(opts, create=True)
        return {"worker": True, "trials_run": work(opts), "study": opts.study_name,
                "storage": opts.storage_url()}
    study = _study(opts, create=True)
    attrs = study.user_attrs
    if COSTMODEL_ATTR in attrs:
        model = CostModel.from_json(attrs[COSTMODEL_ATTR])
        if model.device != opts.device:
            raise ValueError(f"study {opts.study_name!r} was calibrated for {model.device}, "
                             f"not {opts.device}; use another --study-name or --storage")
    else:
        log.info("calibrating the cost model of %s", opts.device)
        model = calibrate(opts.device, out / "calibration", models=opts.calibrate_models,
                          samples=opts.calibrate_samples, seed=opts.seed,
                          encoders=opts.encoders, data_dir=opts.data_dir)
        study.set_user_attr(COSTMODEL_ATTR, model.to_json())
        study.set_user_attr(CONFIG_ATTR, json.loads(_opts_to_json(opts)))
    write_json(out / "costmodel.json", model.to_json())
    if opts.workers == 1:
        work(opts)
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_work_entry, args=(_opts_to_json(opts),))
                 for _ in range(opts.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode != 0]
        if bad:
            raise RuntimeError(f"{len(bad)} worker process(es) exited with {bad}")
    _wait_finished(study, opts)
    all_trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    trials = [t for t in all_trials if t.number < opts.trials]
    tj = [_trial_json(t) for t in trials]
    ok = [(t, j) for t, j in zip(trials, tj, strict=True)
          if j["state"] == "COMPLETE" and j["feasible"]]
    front_idx = pareto_front([(j["golden_accuracy"], j["predicted_cost"]) for _, j in ok])
    front = [ok[i][1] for i in front_idx]
    measured = []
    for t, j in [ok[i] for i in front_idx][:opts.measure]:
        d = out / "pareto" / f"{t.number:05d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.esg").write_bytes(base64.b64decode(t.user_attrs["esg_b64"]))
        m = measure(d, opts.device, opts.measure_samples, data_dir=opts.data_dir)
        pred = float(model.predict(m["features"]).mean())
        got = float(m["cost"].mean())
        j.update(measured_cost=got, measured_samples=opts.measure_samples,
                 predicted_cost_same_samples=pred, error_pct=100.0 * (pred - got) / got,
                 device_accuracy_measured=m["device_accuracy"])
        measured.append(abs(j["error_pct"]))
    result: dict[str, Any] = {
        "device": opts.device, "unit": model.unit, "study": opts.study_name,
        "storage": opts.storage_url(), "trials": tj,
        "n_complete": sum(j["state"] == "COMPLETE" for j in tj),
        "n_infeasible": sum(j["state"] == "COMPLETE" and not j["feasible"] for j in tj),
        "n_failed": sum(j["state"] == "FAIL" for j in tj),
        "cost_model": model.to_json(), "pareto": front,
        "measured_error": {"candidates": len(measured),
                           "mape_pct": float(np.mean(measured)) if measured else None,
                           "max_pct": float(np.max(measured)) if measured else None},
    }
    if opts.plot:
        _plot(out / "pareto.png", tj, front, model.unit, opts.device)
        result["plot"] = str(out / "pareto.png")
    write_json(out / "tune.json", result)
    return result

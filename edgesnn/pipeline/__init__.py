"""The pipeline layer: the one place that chains stages (train → compress → export → build →
eval → report), called by both the CLI (:mod:`edgesnn.commands`) and the Python API
(:mod:`edgesnn.api`, which re-exports these functions).

Each function takes the options its CLI command takes, under the same names (``--make-arg``
is ``make_arg``, ``--no-html`` is ``html=False``), checks them before any work and raises
``ValueError`` naming the bad option and what it accepts; it returns what the command prints
with ``--json``. Stage code lives below this layer and never imports it; everything here
imports lazily, so importing the package loads neither torch nor serial code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build", "compress", "crossbar_sim", "eval", "evaluate", "export", "import_",
           "inspect", "launch", "report", "run", "train"]


def train(out: Path | str, *, data_dir: Path | str | None = None, **options: Any) -> dict:
    """``edgesnn train``: keyword options are :class:`edgesnn.snn.SNNConfig` fields
    (``hidden`` — one size or a list —, ``steps``, ``encoder``, ``neuron``, ``reset``,
    ``beta``, ``surrogate``…) and :class:`edgesnn.snn.train.TrainOptions` fields (``epochs``,
    ``lr``, ``train_limit``…). Returns the metrics written to ``OUT/train.json``."""
    from dataclasses import fields

    from edgesnn.snn.config import SNNConfig
    from edgesnn.snn.train import TrainOptions
    from edgesnn.snn.train import train as _train

    cfg_names = {f.name for f in fields(SNNConfig)}
    opt_names = {f.name for f in fields(TrainOptions)}
    unknown = set(options) - cfg_names - opt_names
    if unknown:
        raise TypeError(f"unknown train option(s) {sorted(unknown)}; accepted: "
                        f"{sorted((cfg_names | opt_names) - {'version'})}")
    cfg = SNNConfig(**{k: v for k, v in options.items() if k in cfg_names}).validate()
    opts = TrainOptions(**{k: v for k, v in options.items() if k in opt_names})
    return _train(cfg, opts, Path(out), data_dir=data_dir)


def evaluate(run_dir: Path | str, *, test_limit: int | None = None,
             data_dir: Path | str | None = None, dataset: str | None = None,
             batch_size: int = 1000, predictions: Path | str | None = None) -> dict[str, Any]:
    """``edgesnn evaluate``: float test accuracy of a trained run (deterministic encoder,
    SPEC 3.3 readout); returns what ``evaluate --json`` prints. ``predictions``: also write
    the predicted labels there, a JSON list in test-set order (``--predictions FILE.json``),
    to compare with the model in the library it came from."""
    import time

    from edgesnn import atomic
    from edgesnn.data import load_dataset
    from edgesnn.snn.checkpoint import load
    from edgesnn.snn.train import predict

    if test_limit is not None and test_limit < 1:
        raise ValueError(f"--test-limit {test_limit}: must be >= 1")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be >= 1")
    if predictions is not None:
        predictions = Path(predictions)
        if predictions.is_dir():
            raise ValueError(f"--predictions {predictions}: is a folder; give a file name "
                             "(FILE.json)")
        if not predictions.parent.is_dir():
            raise ValueError(f"--predictions {predictions}: folder {predictions.parent} "
                             "does not exist")
    run_dir = Path(run_dir)
    model, meta = load(run_dir)
    name = dataset or meta.get("dataset", "mnist")
    data = load_dataset(name, "test", data_dir, test_limit)
    if len(data) == 0:
        raise ValueError(f"{name} test split: no samples to evaluate")
    t0 = time.perf_counter()
    pred = predict(model, data.images, batch_size).numpy()
    result = {"test_accuracy": float((pred == data.labels).mean()), "test_samples": len(data),
              "dataset": name, "run_dir": str(run_dir), "steps": model.config.steps,
              "encoder": model.config.encoder,
              "eval_time_s": round(time.perf_counter() - t0, 3)}
    if predictions is not None:
        atomic.write_text(predictions, json.dumps([int(p) for p in pred]) + "\n")
        result["predictions"] = str(predictions)
    return result


def compress(run_dir: Path | str, **options: Any) -> dict:
    """``edgesnn compress``: see :func:`edgesnn.compress.compress_run` for the options."""
    from edgesnn.compress import compress_run

    return compress_run(Path(run_dir), **options)


def export(run_dir: Path | str, target: str, out: Path | str, *, device: str | None = None,
           **options: Any) -> dict:
    """``edgesnn export``: ``target`` is one of :func:`edgesnn.export.available_targets`."""
    from edgesnn.export import get_target

    chosen = get_target(target)
    chosen.check_out(Path(out))  # a folder for a file target, or the reverse: before any work
    return chosen.export(Path(run_dir), Path(out), device=device, **options)


def inspect(path: Path | str) -> dict:
    """``edgesnn inspect``: validate a ``.esg`` file (or a run directory's ``model.esg``, as
    the CLI takes) and describe it."""
    from edgesnn.graph.esg import describe

    path = Path(path)
    return describe((path / "model.esg" if path.is_dir() else path).read_bytes())


def build(project: Path | str, *, clean: bool = False, make_arg: Sequence[str] = ()) -> dict:
    """``edgesnn build DIR [--clean] [--make-arg VAR=VALUE ...]``: compile a generated
    firmware project; returns what ``build --json`` prints (image path and sizes)."""
    from edgesnn.build import build_project

    if isinstance(make_arg, str):
        make_arg = [make_arg]
    for arg in make_arg:
        if "=" not in arg:
            raise ValueError(f"--make-arg expects VAR=VALUE, got {arg!r}")
    if not Path(project).is_dir():
        raise ValueError(f"project folder {project} does not exist")
    return build_project(Path(project), make_args=tuple(make_arg), clean=clean).to_json()


def launch(device: str, firmware: Path | str) -> Any:
    """Start an emulated or host device running ``firmware``: a context manager with
    ``.url`` (what ``edgesnn flash`` does for such devices)."""
    from edgesnn.host.launch import launch as _launch

    return _launch(device, Path(firmware))


def eval(run_dir: Path | str, devices: Sequence[str] | str, *, samples: int | None = None,  # noqa: A001
         resume: bool = False, window: int = 8, timeout: float = 5.0,
         retries: int | None = None, budget: float = 60.0, chunks: bool = True,
         data_dir: Path | str | None = None, report: bool = True, html: bool = True,
         progress: bool = False, baseline: str | None = None) -> dict[str, Any]:
    """``edgesnn eval``: stream test samples to ``devices`` (profile names, URLs,
    ``PROFILE@URL`` or ``sim``) and compare with golden and float. Returns the report, what
    ``eval --json`` prints; with ``report=False`` (``--no-report``) the evaluation summary.
    ``baseline`` (``ann`` | ``ann-sparse``) also runs that int8 ANN on the same device and
    samples (:mod:`edgesnn.pipeline.baseline`; trained first when the run has none)."""
    from edgesnn.pipeline.evaluation import EvalOptions, evaluate_devices

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    opts = EvalOptions(samples=samples, resume=resume, window=window, timeout=timeout,
                       retries=retries, budget=budget, chunks=chunks,
                       data_dir=None if data_dir is None else Path(data_dir), progress=progress,
                       baseline=baseline)
    opts.check()
    summary = evaluate_devices(run_dir, [devices] if isinstance(devices, str) else devices,
                               opts)
    if not report:
        return summary
    from edgesnn.pipeline.reporting import write_reports

    return write_reports(run_dir, html=html)


def report(run_dir: Path | str, *, html: bool = True) -> dict[str, Any]:
    """``edgesnn report``: rebuild ``report.json`` (and ``report.html``) from saved results,
    without touching a device; returns the report (what ``report --json`` prints)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    from edgesnn.pipeline.reporting import write_reports

    return write_reports(run_dir, html=html)


def run(out: Path | str = "runs/default", **options: Any) -> dict[str, Any]:
    """``edgesnn run``: the whole pipeline; see :class:`edgesnn.pipeline.chain.RunOptions`
    for the options. Returns the report."""
    from edgesnn.pipeline.chain import RunOptions, run_pipeline

    return run_pipeline(RunOptions(out=Path(out), **options))


def crossbar_sim(description: Path | str, **options: Any) -> dict[str, Any]:
    """``edgesnn crossbar-sim FILE.json``: see :func:`edgesnn.pipeline.crossbar.crossbar_sim`
    for the options; returns what ``crossbar-sim --json`` prints."""
    from edgesnn.pipeline.crossbar import crossbar_sim as _sim

    return _sim(Path(description), **options)


def import_(file: Path | str, out: Path | str, *, dt: float | None = None,
            reset: str | None = None, steps: int | None = None, encoder: str | None = None,
            encoder_seed: int | None = None, fire: str | None = None,
            readout: str | None = None, cuba_input: str | None = None) -> dict[str, Any]:
    """``edgesnn import FILE --out RUN_DIR``: a NIR or ONNX model into a new run directory;
    returns what ``import --json`` prints."""
    from edgesnn.interop.importers import import_file

    return import_file(Path(file), Path(out), dt=dt, reset=reset, steps=steps, encoder=encoder,
                       encoder_seed=encoder_seed, fire=fire, readout=readout,
                       cuba_input=cuba_input)

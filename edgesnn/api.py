"""The Python API: one function per CLI command, taking the same options.

``import edgesnn`` exposes these lazily (torch and serial code load only when used)::

    import edgesnn
    metrics = edgesnn.train("runs/a", hidden=[256], steps=25, epochs=2)
    summary = edgesnn.compress("runs/a", sparsity=0.9, weight_bits=4, qat_epochs=1)
    edgesnn.export("runs/a", "c", "fw/", device="lm3s6965evb")
    image = edgesnn.build("fw/")
    report = edgesnn.eval("runs/a", ["lm3s6965evb"], samples=500)
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any


def train(out: Path | str, *, data_dir: Path | str | None = None, **options: Any) -> dict:
    """``edgesnn train``: keyword options are :class:`edgesnn.snn.SNNConfig` fields
    (``hidden``, ``steps``, ``encoder``, ``neuron``, ``reset``, ``beta``, ``surrogate``…) and
    :class:`edgesnn.snn.train.TrainOptions` fields (``epochs``, ``lr``, ``train_limit``…).
    Returns the metrics written to ``OUT/train.json``."""
    from edgesnn.snn.config import SNNConfig
    from edgesnn.snn.train import TrainOptions
    from edgesnn.snn.train import train as _train

    cfg_names = {f.name for f in fields(SNNConfig)}
    opt_names = {f.name for f in fields(TrainOptions)}
    unknown = set(options) - cfg_names - opt_names
    if unknown:
        raise TypeError(f"unknown train option(s) {sorted(unknown)}; accepted: "
                        f"{sorted((cfg_names | opt_names) - {'version'})}")
    cfg = SNNConfig(**{k: v for k, v in options.items() if k in cfg_names})
    opts = TrainOptions(**{k: v for k, v in options.items() if k in opt_names})
    return _train(cfg, opts, Path(out), data_dir=data_dir)


def evaluate(run_dir: Path | str, *, test_limit: int | None = None,
             data_dir: Path | str | None = None, dataset: str = "mnist") -> float:
    """``edgesnn evaluate``: float test accuracy of a trained run."""
    from edgesnn.data import load_dataset
    from edgesnn.snn.checkpoint import load
    from edgesnn.snn.train import evaluate as _evaluate

    model, _ = load(Path(run_dir))
    return _evaluate(model, load_dataset(dataset, "test", data_dir=data_dir, limit=test_limit))


def compress(run_dir: Path | str, **options: Any) -> dict:
    """``edgesnn compress``: see :func:`edgesnn.compress.compress_run` for the options."""
    from edgesnn.compress import compress_run

    return compress_run(Path(run_dir), **options)


def export(run_dir: Path | str, target: str, out: Path | str, *, device: str | None = None,
           **options: Any) -> dict:
    """``edgesnn export``: ``target`` is one of :func:`edgesnn.export.available_targets`."""
    from edgesnn.export import get_target

    return get_target(target).export(Path(run_dir), Path(out), device=device, **options)


def inspect(path: Path | str) -> dict:
    """``edgesnn inspect``: validate a ``.esg`` file and describe it."""
    from edgesnn.graph.esg import describe

    return describe(Path(path).read_bytes())


def build(project_dir: Path | str) -> Any:
    """``edgesnn build``: compile a generated firmware project; returns a ``BuildResult``."""
    from edgesnn.build import build_project

    return build_project(Path(project_dir))


def launch(device: str, firmware: Path | str) -> Any:
    """``edgesnn flash`` for emulated/host devices: a context manager with ``.url``."""
    from edgesnn.host.launch import launch as _launch

    return _launch(device, Path(firmware))


def eval(run_dir: Path | str, devices: list[str], **options: Any) -> dict:
    """``edgesnn eval``: options are :class:`edgesnn.host.runner.EvalOptions` fields."""
    from edgesnn.host.runner import EvalOptions
    from edgesnn.host.runner import evaluate as _evaluate

    options.setdefault("progress", False)
    return _evaluate(Path(run_dir), list(devices), EvalOptions(**options))


def report(run_dir: Path | str, *, html: bool = True) -> dict:
    """``edgesnn report``: rebuild ``report.json`` (and ``report.html``) from saved results."""
    from edgesnn.report import build_report, write_report

    rep = build_report(Path(run_dir))
    write_report(Path(run_dir), rep, html=html)
    return rep


def run(out: Path | str = "runs/default", **options: Any) -> dict:
    """``edgesnn run``: the whole pipeline; returns the report."""
    from edgesnn.commands.run import run_pipeline

    return run_pipeline(out, **options)

"""``--baseline ann|ann-sparse``: the same-topology int8 ANN on the same device and samples.

:func:`prepare_baseline` finds ``RUN_DIR/baselines/<kind>/model.eann`` (from
:func:`edgesnn.compress.ann.make_baseline`) or, when there is none for the current
``model.esg``, trains and quantizes one with the run's own data and options (said on the log
and recorded in ``baseline.json``: ``trained_here``). It then writes
``RUN_DIR/baselines/<kind>/model.esg``: the run's SNN with the ANN as its ANN section, the
model the firmware for the comparison is built from (one image runs both, firmware/PROTOCOL.md
"ANN baseline"). :func:`run_baseline` streams the samples to the device flagged ANN and writes
one record per sample to ``RUN_DIR/eval/<device>/baseline-<kind>.jsonl`` next to the numpy
twin's answer (:func:`edgesnn.graph.ann.infer`), which the device must equal bit for bit.

Kinds: ``ann`` is the dense int8 kernel (every weight kept), ``ann-sparse`` the event-driven
sparse kernel with the SNN's own weight density (magnitude pruning to the same fraction of
nonzero weights). Torch is imported only when a baseline has to be trained.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.results import BASELINE_INFO, baseline_file, make_baseline_record

log = logging.getLogger(__name__)

#: --baseline value -> storage of every ANN layer
KINDS = {"ann": "dense", "ann-sparse": "sparse"}


class BaselineError(ValueError):
    """The baseline cannot be prepared or run; the message says why."""


@dataclass
class Baseline:
    kind: str
    dir: Path  # RUN_DIR/baselines/<kind>: model.eann, ann.json, baseline.json, model.esg
    graph: Any  # edgesnn.graph.ann.AnnGraph
    info: dict[str, Any]


def baseline_dir(run_dir: Path, kind: str) -> Path:
    return Path(run_dir) / "baselines" / kind


def _snn_density(graph: Any) -> float:
    total = sum(int(layer.weights.size) for layer in graph.layers)
    return sum(layer.nnz for layer in graph.layers) / total if total else 1.0


def _train(run_dir: Path, kind: str, snn: Any, out: Path, data_dir: Path | None,
           say: Callable[[str], None]) -> None:
    from edgesnn.compress.ann import AnnBaselineOptions, make_baseline
    from edgesnn.data import load_dataset
    from edgesnn.snn.ann import AnnTrainOptions

    train_json = Path(run_dir) / "train.json"
    topts = json.loads(train_json.read_text()).get("options", {}) if train_json.exists() else {}
    hidden = tuple(int(layer.n_out) for layer in snn.layers[:-1])
    keep = 1.0 if KINDS[kind] == "dense" else round(_snn_density(snn), 4)
    limit = topts.get("train_limit")
    opts = AnnBaselineOptions(
        hidden=hidden, storage=KINDS[kind], keep=keep,
        prune_epochs=0 if keep >= 1.0 else 1, train_limit=limit, test_limit=1000,
        train=AnnTrainOptions(epochs=int(topts.get("epochs", 1)),
                              batch_size=int(topts.get("batch_size", 128)),
                              seed=int(topts.get("seed", 0))))
    sizes = "-".join(map(str, [snn.input_size, *hidden, snn.n_classes]))
    say(f"no {kind} baseline for this model yet: training one with the run's data and "
        f"options ({sizes} ReLU, {opts.train.epochs} epoch(s), "
        f"{'all' if limit is None else f'{limit:,}'} training images, int8 PTQ, "
        f"{KINDS[kind]} kernel, {keep:.0%} of weights kept)")
    train_set = load_dataset("mnist", "train", data_dir, limit)
    test_set = load_dataset("mnist", "test", data_dir, 1000)
    make_baseline(train_set, test_set, opts, out)


def prepare_baseline(run_dir: Path, kind: str, *, data_dir: Path | None = None,
                     say: Callable[[str], None] | None = None) -> Baseline:
    """The ``kind`` baseline of ``run_dir`` and its combined ``model.esg`` (trained first when
    missing or made for another ``model.esg``)."""
    from edgesnn.atomic import write_json
    from edgesnn.graph import ann as gann
    from edgesnn.graph.esg import header_hash, read_esg, write_esg

    if kind not in KINDS:
        raise BaselineError(f"--baseline {kind!r}; accepted: {', '.join(KINDS)}")
    tell = say or log.warning
    run_dir = Path(run_dir)
    esg_path = run_dir / "model.esg"
    snn_hash = header_hash(esg_path.read_bytes()).hex()
    snn = read_esg(esg_path)
    folder = baseline_dir(run_dir, kind)
    info_path = folder / BASELINE_INFO
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    blob = folder / "model.eann"
    if not blob.exists() or info.get("snn_model_hash") != snn_hash:
        _train(run_dir, kind, snn, folder, data_dir, tell)
        ann_stats = json.loads((folder / "ann.json").read_text())
        info = {"kind": kind, "snn_model_hash": snn_hash, "trained_here": True,
                "trained_by": "edgesnn eval --baseline (no baseline existed for this run)",
                "sizes": ann_stats.get("sizes"), "quantization": ann_stats.get("quantization"),
                "float_accuracy": ann_stats.get("float_accuracy"),
                "twin_accuracy_1000": ann_stats.get("golden_accuracy"),
                "options": ann_stats.get("options"), "train_samples":
                ann_stats.get("train_samples"), "wall_s": ann_stats.get("wall_s")}
        write_json(info_path, info)
    graph = gann.decode(blob.read_bytes())
    if graph.input_size != snn.input_size or graph.n_classes != snn.n_classes:
        raise BaselineError(f"{blob}: {graph.input_size} inputs / {graph.n_classes} classes, "
                            f"the SNN has {snn.input_size} / {snn.n_classes}")
    snn.ann = graph
    combined = folder / "model.esg"
    write_esg(snn, combined)
    info = {**info, "blob_bytes": blob.stat().st_size, "arena_bytes": graph.arena_bytes(),
            "esg_bytes": combined.stat().st_size}
    write_json(info_path, info)
    return Baseline(kind, folder, graph, info)


def run_baseline(run_dir: Path, base: Baseline, devices: Sequence[tuple[str, Any]],
                 images: np.ndarray, labels: np.ndarray, *, timeout_s: float = 5.0,
                 resume: bool = False, progress: bool = False) -> dict[str, Any]:
    """Every sample through the ANN of the first device of ``devices`` (``(dirname,
    DeviceLink)``) that offers it (the next one takes over if a device drops out); records
    beside the twin's answers. Returns counts of the run."""
    from edgesnn.graph import ann as gann
    from edgesnn.host.baseline import AnnOutcome, stream_ann
    from edgesnn.host.link import LinkError
    from edgesnn.results import JsonlWriter, read_records

    twin = gann.infer(base.graph, np.asarray(images, dtype=np.uint8))
    if not resume:  # a fresh evaluation: this kind's earlier records go
        name = baseline_file(Path(run_dir), "-", base.kind).name
        for old in (Path(run_dir) / "eval").glob(f"*/{name}"):
            old.unlink()
    todo = list(range(len(images)))
    done_all: set[int] = set()
    mismatches = failed = 0
    errors: list[str] = []
    for dirname, link in devices:
        if not todo:
            break
        path = baseline_file(Path(run_dir), dirname, base.kind)
        done = {int(r["index"]) for r in read_records(path)} if resume else set()
        todo = [i for i in todo if i not in done]
        writer = JsonlWriter(path, append=resume)

        def on_result(o: AnnOutcome, dirname: str = dirname, writer: Any = writer) -> None:
            nonlocal mismatches, failed
            i = o.index
            rec = make_baseline_record(
                i, int(labels[i]), dirname, o.to_json(),
                {"pred": int(twin.pred[i]), "logits": twin.logits[i].tolist(),
                 "macs": twin.macs[i].tolist(), "active": twin.active[i].tolist()})
            mismatches += rec["status"] == "ok" and not rec["agree"]
            failed += rec["status"] != "ok"
            done_all.add(i)
            writer.write(rec)

        try:
            stream_ann(link, ((i, images[i].tobytes()) for i in todo), on_result,
                       timeout_s=timeout_s)
        except LinkError as exc:
            errors.append(str(exc))
            log.error("%s", exc)
        finally:
            writer.close()
        todo = [i for i in todo if i not in done_all]
    if todo:
        raise BaselineError(f"--baseline {base.kind}: {len(todo)} samples not run "
                            f"({'; '.join(errors) or 'no device offers the ANN'})")
    return {"kind": base.kind, "samples": len(images), "failed": failed,
            "mismatches": mismatches}

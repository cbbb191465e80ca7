"""Evaluation results on disk: the per-sample record, its JSONL files, and the results object
the report renders.

Layout of ``RUN_DIR/eval/``::

    <device>/samples.jsonl   one record per sample (below), fsync'd in batches; a torn last
                             line (a crash mid-write) is ignored and cut off on resume
    <device>/device.json     what the device announced (HELLO), its link statistics, build
                             sizes, injected-fault counters
    raster.json              the golden spike raster of one sample, for the report's plot
    <device>/baseline-<kind>.jsonl
                             --baseline ann|ann-sparse: the int8 ANN's answer per sample
                             beside its numpy twin's (:func:`make_baseline_record`); the
                             baseline itself is in RUN_DIR/baselines/<kind>/ (baseline.json)

A record (:func:`make_record`) holds the sample ``index`` and ``label``, the ``device`` folder,
``status`` (``ok`` | ``failed``) and the ``reason`` of a failure, what the device answered
(``device_pred``, ``counts``, ``ops``, ``spikes``, ``input_spikes``, ``cycles``, host round
trip ``rtt_s``, ``attempts``), the golden simulator's answer (``golden_pred`` and ``golden``:
``pred``, ``counts``, ``ops``, ``spikes``, ``input_spikes``) and the float model's
``float_pred`` (null without a ``model.pt``).

:func:`load_results` reads all of it (and ``model.esg``, ``train.json``, ``compress.json``)
into one :class:`Results`; :mod:`edgesnn.report` summarises that object and the terminal and
HTML renderers draw it, without reading anything else or running any model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
DEVICE_FILE = "device.json"
RASTER_FILE = "raster.json"
BASELINE_PREFIX = "baseline-"  # <device>/baseline-<kind>.jsonl (edgesnn.pipeline.baseline)
BASELINE_INFO = "baseline.json"  # RUN_DIR/baselines/<kind>/baseline.json


class ResultsError(ValueError):
    """Nothing to report, or unreadable results; names the file."""


def device_dirname(spec: str) -> str:
    """A folder name for a device spec (profile name, ``sim`` or a URL)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")
    return name or "device"


def make_record(index: int, label: int, device: str, answer: dict[str, Any],
                golden: dict[str, Any], float_pred: int | None) -> dict[str, Any]:
    """One line of ``samples.jsonl``. ``answer`` holds ``status``, ``reason``, ``attempts`` and,
    for an ``ok`` sample, the device's ``prediction``, ``counts``, ``ops``, ``spikes``,
    ``input_spikes``, ``cycles`` and ``rtt_s``; ``golden`` the golden simulator's ``pred``,
    ``counts``, ``ops``, ``spikes`` and ``input_spikes``."""
    rtt = answer.get("rtt_s")
    return {
        "index": index, "label": label, "device": device, "status": answer["status"],
        "reason": answer.get("reason", ""), "device_pred": answer.get("prediction"),
        "golden_pred": golden["pred"], "float_pred": float_pred,
        "counts": answer.get("counts"), "ops": answer.get("ops"),
        "spikes": answer.get("spikes"), "input_spikes": answer.get("input_spikes"),
        "cycles": answer.get("cycles"), "rtt_s": None if rtt is None else round(rtt, 6),
        "attempts": answer.get("attempts", 0), "golden": golden,
    }


def baseline_file(run_dir: Path, device: str, kind: str) -> Path:
    """``RUN_DIR/eval/<device>/baseline-<kind>.jsonl``: the ANN baseline's records."""
    return Path(run_dir) / "eval" / device / f"{BASELINE_PREFIX}{kind}.jsonl"


def make_baseline_record(index: int, label: int, device: str, answer: dict[str, Any],
                         twin: dict[str, Any]) -> dict[str, Any]:
    """One line of ``baseline-<kind>.jsonl``: the device's ANN answer (``status``, ``reason``,
    ``prediction``, ``logits``, ``macs``, ``active``, ``cycles``, ``attempts``) beside the numpy
    twin's (``pred``, ``logits``, ``macs``, ``active``); ``agree``: all four equal."""
    agree = (answer["status"] == "ok" and answer.get("prediction") == twin["pred"]
             and all(answer.get(k) == twin[k] for k in ("logits", "macs", "active")))
    return {
        "index": index, "label": label, "device": device, "status": answer["status"],
        "reason": answer.get("reason", ""), "device_pred": answer.get("prediction"),
        "twin_pred": twin["pred"], "logits": answer.get("logits"), "macs": answer.get("macs"),
        "active": answer.get("active"), "cycles": answer.get("cycles"),
        "attempts": answer.get("attempts", 0), "agree": agree, "twin": twin,
    }


class JsonlWriter:
    """Appends one JSON object per line; flushes each line, fsyncs every ``fsync_every``.

    Thread-safe; a write after :meth:`close` raises :class:`ResultsError` instead of an I/O
    error on a closed file."""

    def __init__(self, path: Path, *, append: bool, fsync_every: int = 64) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if append and path.exists():
            _truncate_partial_line(path)
        self.path = path
        self._f = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        self._since = 0
        self.fsync_every = fsync_every
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._f.closed:
                raise ResultsError(f"{self.path} is closed; record {record.get('index')} "
                                   "not written")
            self._f.write(line)
            self._f.flush()
            self._since += 1
            if self._since >= self.fsync_every:
                os.fsync(self._f.fileno())
                self._since = 0

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.flush()
                os.fsync(self._f.fileno())
                self._f.close()


def _truncate_partial_line(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(keep)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete JSON lines of a samples file (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def load_all_records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``{device_dir: records}`` for every device evaluated in ``run_dir``."""
    base = Path(run_dir) / "eval"
    if not base.is_dir():
        return {}
    return {d.name: read_records(d / SAMPLES_FILE)
            for d in sorted(base.iterdir()) if (d / SAMPLES_FILE).exists()}


@dataclass
class Results:
    """Everything an evaluation left in a run directory, read once.

    ``records``: one per sample index (the last word on a sample wins: resume, fleet), sorted;
    ``devices``: ``device.json`` of each device folder that has records; ``raster``: the golden
    raster of one sample (``{"index", "stages": [{"name", "steps", "neurons", "spikes":
    [[t, n], ...]}]}``) or None; ``extras``: ``train.json`` / ``compress.json`` by stem.
    """

    run_dir: Path
    graph: Any  # edgesnn.graph.ir.SpikeGraph
    esg_bytes: int
    model_hash: str
    records: list[dict[str, Any]]
    devices: dict[str, dict[str, Any]]
    raster: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: ``{kind: {"records": [...], "info": baselines/<kind>/baseline.json}}`` (--baseline)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)


def _json_or_none(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("%s is not valid JSON; left out of the report", path)
        return None


def load_results(run_dir: Path) -> Results:
    """Read ``RUN_DIR/model.esg`` and ``RUN_DIR/eval``; :class:`ResultsError` if either is
    missing or no sample was evaluated."""
    from edgesnn.graph.esg import header_hash, read_esg

    run_dir = Path(run_dir)
    esg_path = run_dir / "model.esg"
    if not esg_path.exists():
        raise ResultsError(f"{esg_path} not found")
    per_dev = load_all_records(run_dir)
    if not any(per_dev.values()):
        raise ResultsError(f"no results under {run_dir / 'eval'}; run `edgesnn eval {run_dir} "
                           "--device NAME` first")
    merged: dict[int, dict[str, Any]] = {}
    for recs in per_dev.values():
        for r in recs:
            merged[int(r["index"])] = r
    esg = esg_path.read_bytes()
    extras = {name: _json_or_none(run_dir / f"{name}.json") for name in ("train", "compress")}
    return Results(
        run_dir=run_dir, graph=read_esg(esg_path), esg_bytes=len(esg),
        model_hash=header_hash(esg).hex(), records=[merged[k] for k in sorted(merged)],
        devices={name: _json_or_none(run_dir / "eval" / name / DEVICE_FILE) or {}
                 for name in per_dev},
        raster=_json_or_none(run_dir / "eval" / RASTER_FILE),
        extras={k: v for k, v in extras.items() if v is not None},
        baselines=_load_baselines(run_dir))


def _load_baselines(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The ANN baselines' records (one per sample index, the last word wins) and info."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((run_dir / "eval").glob(f"*/{BASELINE_PREFIX}*.jsonl")):
        kind = path.stem[len(BASELINE_PREFIX):]
        entry = out.setdefault(kind, {"records": {}, "info": _json_or_none(
            run_dir / "baselines" / kind / BASELINE_INFO) or {}})
        for r in read_records(path):
            entry["records"][int(r["index"])] = r
    for entry in out.values():
        entry["records"] = [entry["records"][k] for k in sorted(entry["records"])]
    return dict(sorted(out.items()))  # ann before ann-sparse

"""``--target crossbar``: a versioned JSON description of the model mapped onto a crossbar.

Options (``--option key=value``): ``stuck_map=FILE`` (fault-aware deployment on a measured
array: remap + compensate, and ship the map with the description), ``adc_range=calibrated|full``
(default calibrated on ``calib_samples`` training images, 256), ``seed``, ``dataset``, and any
profile override as ``section.key=value`` (e.g. ``technology.levels=256``) or the shortcuts
``levels``, ``adc_bits``, ``rows``, ``cols``, ``arrays``, ``spare_cols``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.export.base import ExportError, ExportTarget

log = logging.getLogger(__name__)

_SHORTCUTS = {"levels": "technology.levels", "adc_bits": "adc.bits", "rows": "array.rows",
              "cols": "array.cols", "arrays": "array.arrays", "spare_cols": "array.spare_cols",
              "cols_per_adc": "adc.cols_per_adc"}
_OWN = {"stuck_map", "adc_range", "calib_samples", "seed", "dataset", "data_dir", "remap"}


def run_dataset(run_dir: Path) -> str:
    cfg = run_dir / "config.json"
    if cfg.is_file():
        try:
            doc = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return "mnist"
        for d in (doc, doc.get("train", {}) if isinstance(doc, dict) else {},
                  doc.get("meta", {}) if isinstance(doc, dict) else {}):
            if isinstance(d, dict) and isinstance(d.get("dataset"), str):
                return d["dataset"]
    return "mnist"


def calibration_pixels(input_size: int, dataset: str, n: int, seed: int,
                       data_dir: str | None) -> tuple[np.ndarray, str]:
    """Training images of ``dataset`` when they fit the model, else synthetic pixels."""
    if input_size == 784:
        try:
            from edgesnn.data import load_dataset

            ds = load_dataset(dataset, "train", data_dir, limit=None)
            idx = np.random.default_rng(seed).choice(len(ds), size=min(n, len(ds)),
                                                     replace=False)
            return ds.images[np.sort(idx)], f"{dataset} train ({len(idx)} images)"
        except (ImportError, OSError, ValueError) as exc:
            log.warning("ADC calibration: cannot load %s (%s); using synthetic pixels",
                        dataset, exc)
    from edgesnn.graph.synth import random_pixels

    return random_pixels(seed, n, input_size), f"synthetic pixels ({n}, seed {seed})"


def export_crossbar(esg_path: Path, out: Path, device: str, *, source: str = "",
                    dataset: str | None = None, **options: Any) -> dict[str, Any]:
    """Library entry: map ``esg_path`` onto profile ``device`` and write the description."""
    from edgesnn.crossbar.description import build_document, sha256_bytes, write_description
    from edgesnn.crossbar.faults import FaultMapError, fit_to, load_stuck_map
    from edgesnn.crossbar.mapping import MappingError, map_graph
    from edgesnn.crossbar.profile import ProfileError, load_profile
    from edgesnn.crossbar.remap import remap
    from edgesnn.crossbar.sim import InputSpec, calibrate_adc
    from edgesnn.graph.esg import EsgError, decode

    overrides: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, value in options.items():
        if key in _OWN:
            own[key] = value
        elif key in _SHORTCUTS:
            overrides[_SHORTCUTS[key]] = value
        elif "." in key:
            overrides[key] = value
        else:
            raise ExportError(f"unknown crossbar option {key!r}; accepted: "
                              + ", ".join(sorted(_OWN | set(_SHORTCUTS)))
                              + ", or a profile field section.key")
    if out.suffix != ".json":
        raise ExportError(f"--out {out}: the crossbar description is a .json file")
    try:
        profile = load_profile(device, **overrides)
    except ProfileError as exc:
        raise ExportError(str(exc)) from exc
    esg = esg_path.read_bytes()
    try:
        graph = decode(esg)
    except EsgError as exc:
        raise ExportError(f"{esg_path}: {exc}") from exc
    try:
        mapping = map_graph(graph, profile)
    except MappingError as exc:
        raise ExportError(str(exc)) from exc
    seed = int(own.get("seed", 0))
    mode = str(own.get("adc_range", "calibrated"))
    if mode not in ("calibrated", "full"):
        raise ExportError(f"adc_range={mode!r}; accepted: calibrated, full")
    ds_name = str(own.get("dataset") or dataset or "mnist")
    notes = []
    spec = InputSpec(encoder=graph.encoder.kind, seed=int(graph.encoder.seed),
                     steps=graph.steps, input_size=graph.input_size)
    if mode == "calibrated":
        n = int(own.get("calib_samples", 256))
        if n < 1:
            raise ExportError(f"calib_samples={n}; must be >= 1")
        px, what = calibration_pixels(graph.input_size, ds_name, n, seed, own.get("data_dir"))
        calibrate_adc(mapping, profile, spec, px)
        notes.append(f"ADC ranges calibrated on {what}")
    fault_block = None
    extra: dict[str, bytes] = {}
    if own.get("stuck_map"):
        sm_path = Path(str(own["stuck_map"]))
        try:
            stuck = fit_to(load_stuck_map(sm_path), mapping.arrays_used, profile.rows,
                           profile.cols, str(sm_path))
        except FaultMapError as exc:
            raise ExportError(str(exc)) from exc
        do_remap = bool(own.get("remap", True))
        if do_remap:
            mapping, reports = remap(mapping, stuck, profile.levels)
            for r in reports:
                notes.append(f"fault-aware remap layer {r['layer']}: weight error "
                             f"{r['weight_error_before']:.0f} -> {r['weight_error_after']:.0f}"
                             f" (weights wrong {r['weights_wrong_before']} -> "
                             f"{r['weights_wrong_after']})")
        name = f"{out.stem}.stuck.npy"
        import io

        buf = io.BytesIO()
        np.save(buf, stuck.astype(np.int8))
        extra[name] = buf.getvalue()
        fault_block = {"file": name, "sha256": sha256_bytes(extra[name]), "remapped": do_remap}
    mapping.notes.extend(notes)
    doc = build_document(graph, mapping, profile, esg_bytes=esg, stem=out.stem, seed=seed,
                         source=source, adc_range_mode=mode, dataset=ds_name,
                         fault_map=fault_block)
    size = write_description(out, doc, mapping, esg, extra)
    return {"target": "crossbar", "path": str(out), "bytes": size, "device": profile.name,
            "arrays_used": mapping.arrays_used, "arrays_available": mapping.arrays_available,
            "model_hash": doc["provenance"]["model_hash"],
            "files": [doc["mapping"]["cells_file"], doc["provenance"]["esg_file"], *extra],
            "notes": mapping.notes}


class CrossbarTarget(ExportTarget):
    name = "crossbar"
    summary = "memristor-crossbar description (JSON + cell levels) for edgesnn crossbar-sim"
    needs_device = True

    def export(self, run_dir: Path, out: Path, *, device: str | None = None,
               **options: Any) -> dict[str, Any]:
        if not device:
            raise ExportError("--target crossbar needs --device NAME (a crossbar profile)")
        esg = run_dir / "model.esg"
        if not esg.is_file():
            raise ExportError(f"{esg} not found; run `edgesnn compress {run_dir}` first")
        return export_crossbar(esg, out, device, source=str(run_dir.resolve()),
                               dataset=run_dataset(run_dir), **options)


TARGET = CrossbarTarget()

"""The comparison report: float (torch) vs golden (integer) vs device, on the same samples.

:func:`build_report` summarises a :class:`edgesnn.results.Results` (what an evaluation saved,
read once by :func:`edgesnn.results.load_results`) into one JSON-able dict: accuracies,
agreement, latency, operations and the energy models' estimates. It reads no file, touches no
device and runs no model. :func:`write_report` writes ``RUN_DIR/report.json``;
:func:`print_report` prints a rich table; :mod:`edgesnn.report_html` draws the HTML page.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn import energy as en
from edgesnn.atomic import write_json
from edgesnn.devices import DeviceProfile, find_device
from edgesnn.results import Results

log = logging.getLogger(__name__)

MAX_LISTED_MISMATCHES = 50


def _percentile(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if len(x) else None


def _to_us(cycles: np.ndarray, unit: str, clock_hz: int) -> np.ndarray | None:
    if unit == "nanoseconds":
        return cycles / 1000.0
    if clock_hz:
        return cycles / clock_hz * 1e6
    return None


def _latency(recs: list[dict[str, Any]], info: dict[str, Any],
             profile: DeviceProfile | None) -> dict[str, Any]:
    ok = [r for r in recs if r["status"] == "ok"]
    hello = info.get("hello") or {}
    unit = hello.get("cycle_unit", "cycles")
    label = hello.get("cycle_unit_label", unit)
    clock = int(hello.get("clock_hz") or 0) or (profile.core.clock_hz if profile else 0)
    cyc = np.array([r["cycles"] for r in ok], dtype=np.float64)
    rtt = np.array([r["rtt_s"] for r in ok if r.get("rtt_s") is not None], dtype=np.float64)
    us = _to_us(cyc, unit, clock)
    link = info.get("link") or {}
    out = {
        "unit": unit, "unit_label": label, "clock_hz": clock or None,
        "cycles_mean": float(cyc.mean()) if len(cyc) else None,
        "cycles_p50": _percentile(cyc, 50), "cycles_p95": _percentile(cyc, 95),
        "us_mean": float(us.mean()) if us is not None and len(us) else None,
        "us_p50": _percentile(us, 50) if us is not None else None,
        "us_p95": _percentile(us, 95) if us is not None else None,
        "us_basis": ("ns measured on the host" if unit == "nanoseconds" else
                     f"{label} / profile clock {clock} Hz" if clock else "no clock known"),
        "rtt_p50_ms": None if not len(rtt) else _percentile(rtt, 50) * 1e3,  # type: ignore[operator]
        "rtt_p95_ms": None if not len(rtt) else _percentile(rtt, 95) * 1e3,  # type: ignore[operator]
        "samples_per_s": link.get("samples_per_s"),
        "link_efficiency": link.get("link_efficiency"),
    }
    return out


def cost_per_inference(cycles: np.ndarray, unit: str) -> dict[str, Any]:
    """Cycles (instructions on QEMU, ns on the host build) per inference: mean, p50, p99,
    max, in ``unit`` = ``instructions`` | ``cycles`` | ``ns``."""
    c = np.asarray(cycles, dtype=np.float64)
    return {"unit": "ns" if unit == "nanoseconds" else unit,
            "mean": float(c.mean()) if len(c) else None, "p50": _percentile(c, 50),
            "p99": _percentile(c, 99), "max": float(c.max()) if len(c) else None}


def _baselines(results: Results, devices: dict[str, Any]) -> dict[str, Any]:
    """The int8 ANN baselines run on the same device and samples (``--baseline``): device
    vs numpy twin, cost, energy and memory, beside the SNN's."""
    out: dict[str, Any] = {}
    for kind, entry in results.baselines.items():
        info, recs = entry["info"], entry["records"]
        if info.get("snn_model_hash") not in (None, results.model_hash):
            log.warning("baseline %s was made for another model.esg; left out", kind)
            continue
        n = len(recs)
        ok = [r for r in recs if r["status"] == "ok"]
        dev = next((r["device"] for r in ok), None)
        d_info = results.devices.get(dev or "", {})
        profile = find_device(d_info.get("profile"))
        unit = (d_info.get("hello") or {}).get("cycle_unit", "cycles")
        cyc = np.array([r["cycles"] for r in ok], dtype=np.float64)
        labels = np.array([r["label"] for r in recs], dtype=np.int64)
        twin = np.array([r["twin_pred"] for r in recs], dtype=np.int64)
        devp = np.array([r["device_pred"] if r["status"] == "ok" else -1 for r in recs],
                        dtype=np.int64)
        mism = [{"index": r["index"], "device_pred": r["device_pred"],
                 "twin_pred": r["twin_pred"]} for r in ok if not r["agree"]]
        build = (devices.get(dev or "") or {}).get("build") or {}
        out[kind] = {
            "samples": n, "ok": len(ok), "failed": n - len(ok), "device": dev,
            "device_accuracy": float((devp == labels).mean()) if n else None,
            "golden_accuracy": float((twin == labels).mean()) if n else None,
            "agreement": (len(ok) - len(mism)) / n if n else 0.0,
            "agreement_rule": "prediction, logits, MACs and visited inputs equal the numpy "
                              "twin (edgesnn/graph/ann.py)",
            "mismatch_count": len(mism), "mismatches": mism[:MAX_LISTED_MISMATCHES],
            "cost_per_inference": cost_per_inference(cyc, unit),
            "macs_mean": float(np.mean([sum(r["macs"]) for r in ok])) if ok else None,
            "energy": en.device_energy(cyc, unit, profile.energy if profile else None),
            "memory": {"model_bytes": info.get("blob_bytes"),
                       "arena_bytes": info.get("arena_bytes"),
                       "image_flash_bytes": build.get("flash_bytes"),
                       "image_ram_bytes": build.get("ram_bytes")},
            "model": {k: info.get(k) for k in ("sizes", "quantization", "float_accuracy")},
            "trained_here": bool(info.get("trained_here")), "trained_by": info.get("trained_by"),
        }
    return out


def side_by_side(report: dict[str, Any]) -> list[list[str]]:
    """The SNN and its int8 ANN baselines as table rows (header first): accuracy, device =
    reference, cost per inference (mean / p50 / p99 / max), energy, model bytes and arena.
    Formats what :func:`build_report` computed; empty without baselines."""
    bases = report.get("baselines") or {}
    if not bases:
        return []
    cost = report.get("cost_per_inference") or {}
    dev_e = report["energy"]["device"]
    cols = [("SNN", {"device_accuracy": report["device_accuracy"],
                     "golden_accuracy": report["golden_accuracy"],
                     "agreement": report["agreement"], "cost_per_inference": cost,
                     "energy": dev_e,
                     "memory": {"model_bytes": report["model"]["esg_bytes"],
                                "arena_bytes": report["model"]["arena_bytes"]}})]
    cols += [(f"int8 {k}" + (" (trained here)" if b.get("trained_here") else ""), b)
             for k, b in bases.items()]
    unit = cost.get("unit", "")

    def c(b: dict[str, Any], key: str) -> str:
        return fmt((b.get("cost_per_inference") or {}).get(key), ",.0f")

    def energy(b: dict[str, Any]) -> str:
        e = b.get("energy") or {}
        return fmt(e.get("uj_per_inference"), ".3f") if e.get("available") else "n/a"

    rows = [["", *(name for name, _ in cols)]]
    rows.append(["device accuracy", *(fmt(b["device_accuracy"]) for _, b in cols)])
    rows.append(["reference accuracy (golden / twin)",
                 *(fmt(b["golden_accuracy"]) for _, b in cols)])
    rows.append(["device = reference", *(fmt(b["agreement"]) for _, b in cols)])
    for key in ("mean", "p50", "p99", "max"):
        rows.append([f"{unit} per inference, {key}", *(c(b, key) for _, b in cols)])
    rows.append(["energy on device (µJ)", *(energy(b) for _, b in cols)])
    rows.append(["model bytes (flash)",
                 *(str((b.get("memory") or {}).get("model_bytes")) for _, b in cols)])
    rows.append(["arena bytes (RAM)",
                 *(str((b.get("memory") or {}).get("arena_bytes")) for _, b in cols)])
    return rows


def _confusion(labels: np.ndarray, preds: np.ndarray, n: int) -> list[list[int]]:
    m = np.zeros((n, n), dtype=np.int64)
    valid = preds >= 0
    np.add.at(m, (labels[valid], preds[valid]), 1)
    return m.tolist()


def _same(r: dict[str, Any]) -> dict[str, bool]:
    g = r["golden"]
    return {"prediction": r["device_pred"] == g["pred"], "counts": r["counts"] == g["counts"],
            "ops": r["ops"] == g["ops"], "spikes": r["spikes"] == g["spikes"],
            "input_spikes": r["input_spikes"] == g["input_spikes"]}


def failure_reasons(failed: list[dict[str, Any]]) -> dict[str, int]:
    """How many samples failed for each kind of reason (the reason up to its details: "time
    budget of 60 s spent", "device error ESNN_ERR_INPUT_SIZE", ...), most frequent first."""
    kinds = Counter(re.split(r" \(|;", r["reason"] or "no reason given", maxsplit=1)[0]
                    for r in failed)
    return dict(kinds.most_common())


def build_report(results: Results) -> dict[str, Any]:
    """Everything the report shows, as one JSON-able dict (see the module docstring)."""
    graph, recs, infos = results.graph, results.records, results.devices
    n = len(recs)
    labels = np.array([r["label"] for r in recs], dtype=np.int64)
    golden = np.array([r["golden_pred"] for r in recs], dtype=np.int64)
    fl = [r.get("float_pred") for r in recs]
    has_float = all(x is not None for x in fl) and n > 0
    floatp = np.array(fl if has_float else [-1] * n, dtype=np.int64)
    ok = [r for r in recs if r["status"] == "ok"]
    failed = [r for r in recs if r["status"] != "ok"]
    devp = np.array([r["device_pred"] if r["status"] == "ok" else -1 for r in recs],
                    dtype=np.int64)

    mismatches = []
    field_mis = {"prediction": 0, "counts": 0, "ops": 0, "spikes": 0, "input_spikes": 0}
    for r in ok:
        same = _same(r)
        for k, v in same.items():
            field_mis[k] += not v
        if not all(same.values()):
            mismatches.append({"index": r["index"], "device": r.get("device"),
                               "fields": [k for k, v in same.items() if not v],
                               "device_pred": r["device_pred"], "golden_pred": r["golden_pred"]})
    agreement = (len(ok) - len(mismatches)) / n if n else 0.0

    # operations and energy from the golden counters of every sample (device == golden where
    # they agree; the golden counters exist for failed samples too)
    g_ops = np.array([r["golden"]["ops"] for r in recs], dtype=np.int64)
    g_spk = np.array([r["golden"]["spikes"] for r in recs], dtype=np.int64)
    g_in = np.array([r["golden"]["input_spikes"] for r in recs], dtype=np.int64)
    ops = en.operations(graph, g_ops, g_spk, g_in)
    syn = [r["golden"].get("synops") for r in recs]  # absent in runs made before it existed
    g_syn = np.array(syn, dtype=np.int64) if syn and None not in syn else None
    nb = en.neurobench(graph, g_ops, g_spk, results.esg_bytes, nonzero_ops=g_syn)

    devices = {}
    for name, info in infos.items():
        profile = find_device(info.get("profile"))
        d_recs = [r for r in recs if r.get("device") == name]
        d_ok = [r for r in d_recs if r["status"] == "ok"]
        lat = _latency(d_recs, info, profile)
        cyc = np.array([r["cycles"] for r in d_ok], dtype=np.float64)
        tot = np.array([sum(r["ops"]) for r in d_ok], dtype=np.float64)
        devices[name] = {
            "spec": info.get("spec", name), "profile": info.get("profile"),
            "hello": info.get("hello"), "samples": len(d_recs), "ok": len(d_ok),
            "accuracy": (sum(r["device_pred"] == r["label"] for r in d_ok) / len(d_recs)
                         if d_recs else None),
            "latency": lat, "link": info.get("link"), "faults": info.get("faults"),
            "build": info.get("build") or {},
            "energy": en.device_energy(cyc, lat["unit"], profile.energy if profile else None),
            "break_even": en.break_even(graph, ops, cycles=cyc, total_ops=tot,
                                        unit=lat["unit"]),
        }
    primary = next(iter(devices.values()), None) if devices else None
    device_energy = primary["energy"] if primary else {"available": False}
    report: dict[str, Any] = {
        "run_dir": str(results.run_dir), "samples": n,
        "device": ",".join(d["spec"] for d in devices.values()),
        "float_accuracy": float((floatp == labels).mean()) if has_float else None,
        "golden_accuracy": float((golden == labels).mean()) if n else None,
        "device_accuracy": float((devp == labels).mean()) if n else None,
        "agreement": agreement,
        "agreement_detail": {
            "golden_device_full": agreement, "compared": len(ok), "failed": len(failed),
            "prediction_agreement": ((len(ok) - field_mis["prediction"]) / n) if n else 0.0,
            "field_mismatches": field_mis, "mismatches": mismatches[:MAX_LISTED_MISMATCHES],
            "mismatch_count": len(mismatches),
            "rule": "prediction, counts, ops, spikes and input_spikes must all match",
        },
        "float_golden_agreement": float((floatp == golden).mean()) if has_float else None,
        "failures": [{"index": r["index"], "device": r.get("device"), "reason": r["reason"]}
                     for r in failed[:MAX_LISTED_MISMATCHES]],
        "failure_count": len(failed),
        "failure_reasons": failure_reasons(failed),
        "confusion": {"source": "device" if ok else "golden",
                      "matrix": _confusion(labels, devp if ok else golden, graph.n_classes)},
        "latency": primary["latency"] if primary else {},
        "operations": ops,
        "neurobench": nb,
        "energy": {
            "naive": en.naive_energy(graph, ops), "memory_aware": en.memory_energy(graph, ops),
            "memory_aware_sram": en.memory_energy(graph, ops, "horowitz_sram"),
            "device": device_energy,
            "break_even": primary["break_even"] if primary else en.break_even(graph, ops),
        },
        "devices": devices,
        "model": {"input_size": graph.input_size, "steps": graph.steps,
                  "layers": [f"{lay.n_in}x{lay.n_out}" for lay in graph.layers],
                  "encoder": graph.encoder.kind.name.lower(),
                  "esg_bytes": results.esg_bytes, "arena_bytes": graph.arena_bytes(),
                  "model_hash": results.model_hash},
        "memory": {"flash_bytes": (primary or {}).get("build", {}).get("flash_bytes"),
                   "ram_bytes": (primary or {}).get("build", {}).get("ram_bytes")},
        "cost_per_inference": cost_per_inference(
            np.array([r["cycles"] for r in ok], dtype=np.float64),
            primary["latency"]["unit"] if primary else "cycles"),
    }
    if results.baselines:
        report["baselines"] = _baselines(results, devices)
    report.update(results.extras)
    return report


def write_report(run_dir: Path, report: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/report.json`` (atomically) and return its path."""
    out = Path(run_dir) / "report.json"
    write_json(out, report, sort_keys=False, default=_json_default)
    return out


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def fmt(x: Any, spec: str = ".4f") -> str:
    """A number for a table cell: ``n/a`` for None, ``str(x)`` when ``spec`` does not apply."""
    if x is None:
        return "n/a"
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def print_report(report: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"edgesnn report: {report['run_dir']} ({report['samples']} samples)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("note")
    ad = report["agreement_detail"]
    rows = [
        ("float accuracy (torch)", fmt(report["float_accuracy"]), ""),
        ("golden accuracy (integer)", fmt(report["golden_accuracy"]), ""),
        ("device accuracy", fmt(report["device_accuracy"]), report["device"]),
        ("golden = device (all counters)", fmt(report["agreement"]),
         f"{ad['mismatch_count']} mismatches, {report['failure_count']} failed"),
        ("float = golden (prediction)", fmt(report["float_golden_agreement"]), ""),
    ]
    lat = report.get("latency") or {}
    if lat:
        rows += [
            (f"device latency ({lat['unit_label']})", fmt(lat["cycles_p50"], ".0f"),
             f"p50; p95 {fmt(lat['cycles_p95'], '.0f')}"),
            ("device latency (µs)", fmt(lat["us_p50"], ".1f"), lat["us_basis"]),
            ("host round trip (ms)", fmt(lat["rtt_p50_ms"], ".2f"),
             f"p50; p95 {fmt(lat['rtt_p95_ms'], '.2f')}"),
            ("samples/s", fmt(lat["samples_per_s"], ".1f"), ""),
        ]
    ops = report["operations"]
    rows += [
        ("SOPs per inference", fmt(ops["sops"], ".0f"),
         f"ANN MACs {ops['ann_macs']}; ratio {fmt(ops['sops_per_ann_mac'], '.3f')}"),
        ("spike rate per layer", ", ".join(fmt(x["spike_rate"], ".3f") for x in ops["layers"]),
         f"input {fmt(ops['input_spike_rate'], '.3f')}"),
    ]
    nb = report["neurobench"]
    rows += [
        ("footprint (B)", str(nb["footprint"]),
         "NeuroBench; parameters {} + buffers (C arena) {}".format(
             nb["footprint_detail"]["parameters_bytes"], nb["footprint_detail"]["buffers_bytes"])),
        ("connection / activation sparsity",
         f"{fmt(nb['connection_sparsity'], '.3f')} / {fmt(nb['activation_sparsity'], '.3f')}",
         "NeuroBench"),
    ]
    e = report["energy"]
    rows += [
        ("energy naive SNN / ANN int8 (nJ)",
         f"{e['naive']['snn_pj'] / 1e3:.2f} / {e['naive']['ann_int8_pj'] / 1e3:.2f}",
         "Horowitz ISSCC 2014, 45 nm"),
        ("energy memory-aware SNN / ANN (nJ)",
         f"{e['memory_aware']['snn_pj'] / 1e3:.2f} / {e['memory_aware']['ann_int8_pj'] / 1e3:.2f}",
         "Lemaire et al. ICONIP 2022; membrane traffic "
         f"{fmt(e['memory_aware'].get('membrane_share'), '.0%')} of the SNN's"),
    ]
    sram = e.get("memory_aware_sram")
    if sram:
        rows.append(("energy memory-aware, SRAM reads SNN / ANN (nJ)",
                     f"{sram['snn_pj'] / 1e3:.2f} / {sram['ann_int8_pj'] / 1e3:.2f}",
                     f"Horowitz ISSCC 2014 SRAM; ratio {fmt(sram['snn_vs_ann_int8'], '.2f')}"))
    dev = e["device"]
    rows.append(("energy on device (µJ)",
                 fmt(dev.get("uj_per_inference"), ".2f") if dev.get("available") else "n/a",
                 "; ".join(dev.get("sources", [])) or dev.get("reason", "")))
    be = e["break_even"]
    mcu = be.get("mcu") or {}
    rows.append(("break-even input spike rate", fmt(mcu.get("rate") if mcu else
                                                     be.get("energy_naive_rate"), ".3f"),
                 f"{'MCU cycles fit' if mcu else 'naive energy'}; measured "
                 f"{fmt(be.get('measured_rate'), '.3f')}; memory-aware "
                 f"{fmt(be.get('energy_memory_rate'), '.3f')} (Lemaire), "
                 f"{fmt(be.get('energy_memory_sram_rate'), '.3f')} (SRAM reads)"))
    mem = report.get("memory") or {}
    if mem.get("flash_bytes"):
        rows.append(("flash / RAM (B)", f"{mem['flash_bytes']} / {mem['ram_bytes']}", ""))
    for r in rows:
        t.add_row(*r)
    console.print(t)
    sbs = side_by_side(report)
    if sbs:
        t2 = Table(title="SNN vs int8 ANN on the same device and samples")
        for i, head in enumerate(sbs[0]):
            t2.add_column(head, justify="left" if i == 0 else "right")
        for r in sbs[1:]:
            t2.add_row(*r)
        console.print(t2)
        for kind, b in report["baselines"].items():
            if b.get("trained_here"):
                console.print(f"baseline {kind}: {b.get('trained_by')}")
    for reason, count in report.get("failure_reasons", {}).items():
        console.print(f"[red]failed:[/red] {count} sample(s): {reason}")
    if ad["mismatches"]:
        console.print(f"[red]golden/device mismatches (first {len(ad['mismatches'])}):[/red] "
                      + ", ".join(f"#{m['index']} {'+'.join(m['fields'])}"
                                  for m in ad["mismatches"][:10]))

"""The self-contained HTML report: PNG plots embedded as base64 data URIs, no external
resources, no scripts. Plots: accuracy (float / integer / device), confusion matrix, latency
histograms, energy breakdown, per-layer spike rates, and the spike raster of one sample
(recorded by the golden simulator at evaluation time). It draws a report dict and the
:class:`~edgesnn.results.Results` it was built from; it reads no file and runs no model."""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.atomic import write_text
from edgesnn.report import fmt, side_by_side
from edgesnn.results import Results

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:.9em}th{background:#f3f3f3}.num{text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}img{max-width:100%}
.bad{color:#b00}.good{color:#070}small{color:#666}
"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(src: str, caption: str) -> str:
    return (f'<figure><img src="{src}" alt="{html.escape(caption)}">'
            f"<figcaption><small>{html.escape(caption)}</small></figcaption></figure>")


def _plots(results: Results, report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: list[tuple[str, str]] = []
    # accuracy
    fig, ax = plt.subplots(figsize=(4.2, 3))
    names = ["float (torch)", "integer (golden)", "device"]
    vals = [report["float_accuracy"], report["golden_accuracy"], report["device_accuracy"]]
    ax.bar(names, [v if v is not None else 0 for v in vals], color=["#888", "#36c", "#c63"])
    for i, v in enumerate(vals):
        ax.text(i, (v or 0) + 0.01, "n/a" if v is None else f"{v:.3f}", ha="center")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Accuracy on {report['samples']} samples")
    figs.append((_png(fig), "accuracy: float, integer, device"))
    # confusion
    cm = np.array(report["confusion"]["matrix"])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    ax.set_title(f"Confusion matrix ({report['confusion']['source']})")
    figs.append((_png(fig), "confusion matrix"))
    # latency
    ok = [r for r in results.records if r["status"] == "ok"]
    lat = report.get("latency") or {}
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    cyc = np.array([r["cycles"] for r in ok], dtype=float)
    if len(cyc):
        axes[0].hist(cyc, bins=30, color="#36c")
    axes[0].set_xlabel(lat.get("unit_label", "cycles"))
    axes[0].set_title("device latency")
    rtt = np.array([r["rtt_s"] * 1e3 for r in ok if r.get("rtt_s") is not None])
    if len(rtt):
        axes[1].hist(rtt, bins=30, color="#c63")
    axes[1].set_xlabel("ms")
    axes[1].set_title("host round trip")
    figs.append((_png(fig), "latency histograms"))
    # energy
    e = report["energy"]
    bars = [("SNN naive", e["naive"]["snn_pj"]), ("ANN int8 naive", e["naive"]["ann_int8_pj"]),
            ("ANN fp32 naive", e["naive"]["ann_fp32_pj"]),
            ("SNN memory-aware", e["memory_aware"]["snn_pj"]),
            ("ANN int8 memory-aware", e["memory_aware"]["ann_int8_pj"])]
    if e["device"].get("available"):
        bars.append(("device (cycles x E/cycle)", e["device"]["pj_per_inference"]))
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.barh([b[0] for b in bars], [b[1] / 1e3 for b in bars], color="#5a5")
    ax.set_xscale("log")
    ax.set_xlabel("nJ per inference (log)")
    ax.set_title("Energy estimates")
    figs.append((_png(fig), "energy breakdown"))
    # spike rates
    layers = report["operations"]["layers"]
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    ax.bar(["input"] + [x["name"] for x in layers],
           [report["operations"]["input_spike_rate"]] + [x["spike_rate"] for x in layers],
           color="#a5c")
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title("Spike rate per layer")
    figs.append((_png(fig), "per-layer spike rates"))
    raster = results.raster
    if raster is not None and raster.get("stages"):
        stages, index = raster["stages"], raster["index"]
        fig, axes = plt.subplots(len(stages), 1, figsize=(8, 1.3 * len(stages) + 0.6),
                                 sharex=True, squeeze=False)
        for k, stage in enumerate(stages):
            tn = np.asarray(stage["spikes"], dtype=np.int64).reshape(-1, 2)
            axes[k][0].scatter(tn[:, 0], tn[:, 1], s=6, marker="s", color="k", linewidths=0)
            axes[k][0].set_ylabel(f"{stage['name']}\n({len(tn)} spikes)", fontsize=7)
            axes[k][0].set_xlim(-0.5, stage["steps"] - 0.5)
            axes[k][0].set_ylim(-0.5, stage["neurons"] - 0.5)
        axes[-1][0].set_xlabel("time step")
        axes[0][0].set_title(f"Spike raster, sample {index} (golden simulator)")
        figs.append((_png(fig), f"spike raster of sample {index}"))
    return figs


def _row(*cells: Any, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def write_html(results: Results, report: dict[str, Any]) -> Path:
    """Write the self-contained ``RUN_DIR/report.html`` (atomically) and return its path."""
    out = Path(results.run_dir) / "report.html"
    write_text(out, render_html(results, report))
    return out


def render_html(results: Results, report: dict[str, Any]) -> str:
    run_dir = Path(results.run_dir)
    figs = _plots(results, report)
    ad = report["agreement_detail"]
    lat = report.get("latency") or {}
    e = report["energy"]
    ops = report["operations"]
    nb = report["neurobench"]
    ok_cls = "good" if report["agreement"] == 1.0 else "bad"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>edgesnn report — {html.escape(str(run_dir.name))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>edgesnn report: {html.escape(str(run_dir))}</h1>",
        f"<p>{report['samples']} samples on <b>{html.escape(report['device'])}</b>; model "
        f"{html.escape(' → '.join(report['model']['layers']))}, T = {report['model']['steps']}, "
        f"{html.escape(report['model']['encoder'])} encoder, hash "
        f"<code>{report['model']['model_hash']}</code>.</p>",
        "<h2>Accuracy and agreement</h2><table>",
        _row("metric", "value", head=True),
        _row("float accuracy (torch)", fmt(report["float_accuracy"])),
        _row("integer accuracy (golden simulator)", fmt(report["golden_accuracy"])),
        _row("device accuracy", fmt(report["device_accuracy"])),
        f"<tr><td>golden = device (prediction, counts, ops, spikes)</td><td class='{ok_cls}'>"
        f"{fmt(report['agreement'])}</td></tr>",
        _row("float = integer (prediction)", fmt(report["float_golden_agreement"])),
        _row("failed samples", report["failure_count"]),
        "</table>",
    ]
    reasons = report.get("failure_reasons") or {}
    if reasons:
        parts.append("<p class='bad'>Failed samples: " + html.escape("; ".join(
            f"{n} × {why}" for why, n in reasons.items())) + "</p>")
    if ad["mismatches"]:
        parts.append("<p class='bad'>Mismatches: " + html.escape(", ".join(
            f"#{m['index']} ({'+'.join(m['fields'])})" for m in ad["mismatches"])) + "</p>")
    parts += ["<div class='grid'>"] + [_figure(*f) for f in figs[:2]] + ["</div>"]
    parts += [
        "<h2>Latency</h2><table>", _row("metric", "p50", "p95", head=True),
        _row(f"device ({lat.get('unit_label', 'n/a')})", fmt(lat.get("cycles_p50"), ".0f"),
             fmt(lat.get("cycles_p95"), ".0f")),
        _row(f"device µs ({lat.get('us_basis', '')})", fmt(lat.get("us_p50"), ".1f"),
             fmt(lat.get("us_p95"), ".1f")),
        _row("host round trip (ms)", fmt(lat.get("rtt_p50_ms"), ".2f"),
             fmt(lat.get("rtt_p95_ms"), ".2f")),
        _row("samples/s", fmt(lat.get("samples_per_s"), ".1f"), ""),
        _row("link efficiency (payload / wire bytes)", fmt(lat.get("link_efficiency"), ".3f"), ""),
        "</table>", _figure(*figs[2]),
        "<h2>Operations</h2><table>",
        _row("layer", "n_in×n_out", "storage", "SOPs", "ANN MACs", "spike rate", head=True),
    ]
    for x in ops["layers"]:
        parts.append(_row(x["name"], f"{x['n_in']}×{x['n_out']}", x["storage"],
                          fmt(x["sops"], ".0f"), x["ann_macs"], fmt(x["spike_rate"], ".4f")))
    parts += [
        _row("total", "", "", fmt(ops["sops"], ".0f"), ops["ann_macs"],
             f"input {fmt(ops['input_spike_rate'], '.4f')}"),
        "</table><table>", _row("NeuroBench metric", "value", head=True),
        _row("footprint (bytes)", nb["footprint"]),
        _row("footprint: parameters / buffers (C arena)",
             f"{nb['footprint_detail']['parameters_bytes']} / "
             f"{nb['footprint_detail']['buffers_bytes']}"),
        _row("connection_sparsity", fmt(nb["connection_sparsity"])),
        _row("activation_sparsity", fmt(nb["activation_sparsity"])),
        _row("synaptic_operations dense", nb["synaptic_operations"]["dense"]),
        _row("synaptic_operations effective_macs",
             fmt(nb["synaptic_operations"]["effective_macs"], ".0f")),
        _row("synaptic_operations effective_acs",
             fmt(nb["synaptic_operations"]["effective_acs"], ".0f")),
        "</table>", _figure(*figs[4]),
        "<h2>Energy (per inference)</h2><table>",
        _row("model", "SNN", "ANN int8", "source", head=True),
        _row("naive per-op", f"{e['naive']['snn_pj'] / 1e3:.3f} nJ",
             f"{e['naive']['ann_int8_pj'] / 1e3:.3f} nJ", "Horowitz ISSCC 2014, 45 nm"),
        _row("memory-aware", f"{e['memory_aware']['snn_pj'] / 1e3:.3f} nJ",
             f"{e['memory_aware']['ann_int8_pj'] / 1e3:.3f} nJ", "Lemaire et al. ICONIP 2022"),
    ]
    sram = e.get("memory_aware_sram")
    if sram:
        parts.append(_row("memory-aware, SRAM reads", f"{sram['snn_pj'] / 1e3:.3f} nJ",
                          f"{sram['ann_int8_pj'] / 1e3:.3f} nJ", "Horowitz ISSCC 2014 SRAM"))
    dev = e["device"]
    if dev.get("available"):
        parts.append(_row("device: cycles × energy/cycle",
                          f"{dev['uj_per_inference']:.3f} µJ", "",
                          "; ".join(dev.get("sources", []))))
    else:
        parts.append(_row("device", "n/a", "", dev.get("reason", "")))
    be = e["break_even"]
    mcu = be.get("mcu") or {}
    parts += [
        "</table><table>", _row("break-even input spike rate vs dense int8", "rate", head=True),
        _row("measured (this SNN)", fmt(be.get("measured_rate"))),
        _row("naive energy model", fmt(be.get("energy_naive_rate"))),
        _row("memory-aware energy model", fmt(be.get("energy_memory_rate"))),
        _row("memory-aware, SRAM reads", fmt(be.get("energy_memory_sram_rate"))),
    ]
    if mcu:
        parts.append(_row(f"MCU: {mcu['cycles_fixed']:.0f} + {mcu['cycles_per_sop']:.2f}·SOP "
                          f"{mcu['unit']} vs {mcu['dense_int8_cycles']:.0f} for dense int8",
                          fmt(mcu.get("rate"))))
    parts += ["</table>", _figure(*figs[3]), "<p><small>Constants: "]
    consts = {**e["naive"]["constants"], **e["memory_aware"]["constants"],
              **(e.get("memory_aware_sram") or {}).get("constants", {})}
    parts.append(html.escape("; ".join(f"{k} = {v['value']} {v['unit']}"
                                       for k, v in consts.items())))
    if e["memory_aware"].get("assumptions"):
        parts.append("<br>Memory-aware model: " + html.escape(e["memory_aware"]["assumptions"]))
    parts.append("<br>Sources: " + html.escape(" | ".join(be.get("sources", []))) +
                 "</small></p>")
    if len(figs) > 5:
        parts += ["<h2>Spike raster</h2>", _figure(*figs[5])]
    mem = report.get("memory") or {}
    if mem.get("flash_bytes"):
        parts.append(f"<h2>Memory</h2><p>flash {mem['flash_bytes']} B, RAM "
                     f"{mem['ram_bytes']} B; model arena {report['model']['arena_bytes']} B."
                     "</p>")
    sbs = side_by_side(report)
    if sbs:
        parts += ["<h2>SNN vs int8 ANN</h2>", "<p>The same-topology int8 ANN run by the same "
                  "firmware on the same device and samples; its device answers are checked "
                  "against the numpy twin (edgesnn/graph/ann.py) bit for bit.</p>", "<table>",
                  _row(*sbs[0], head=True), *(_row(*r) for r in sbs[1:]), "</table>"]
        for kind, b in report["baselines"].items():
            if b.get("trained_here"):
                parts.append(f"<p><small>{html.escape(kind)}: "
                             f"{html.escape(str(b.get('trained_by')))}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts)

"""Serial-link benchmark: efficiency, throughput and fault tolerance of the eval protocol.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/serial_link.py \
        --run-dir runs/default [--qemu lm3s6965evb] [--json]

RUN_DIR must hold a compressed model (``edgesnn run --out RUN_DIR`` makes one). Measures:

1. link efficiency = payload bytes / wire bytes over a real run (goal >= 0.9);
2. samples/s on the host build (pseudo-terminal) and on QEMU Cortex-M3 for a few window
   sizes, the Python emulator on a pseudo-terminal as the link-only reference, and the link
   bound (raw pseudo-terminal throughput measured here / wire bytes per sample);
3. the 10,000-sample fault-injection run: 1 % frame corruption + 1 % frame loss in both
   directions + one device reset per 1,000 host frames, on the Python emulator; lost,
   failed and misattributed samples counted against the golden simulator;
4. the same corruption and loss (no resets) against the real host firmware.

With ``--v2-only``, protocol version 2 (chunked, compact input) side by side with today's raw
784-byte INFER (``chunked=False``), with the runner's default options:

5. samples/s through an 8N1 UART at 115,200 and 921,600 baud (``BaudLimitedTransport`` to the
   golden emulator, device = golden), link efficiency, host bytes per sample;
6. byte faults (``ByteFaultyTransport``: 1e-3 flip + 1e-3 drop + 5e-4 duplicate per byte in
   each direction) on the host build (``--byte-fault-samples``, 10,000) and QEMU
   (``--qemu-fault-samples``, 1,000), and 1e-2 of each on the host build
   (``--heavy-samples``): completed, failed, lost and misattributed samples against golden.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.data import load_dataset
from edgesnn.graph.esg import header_hash, read_esg
from edgesnn.graph.golden import simulate
from edgesnn.host.faults import ByteFaults, ByteFaultyTransport, FaultConfig, FaultyTransport
from edgesnn.host.link import DeviceLink, SampleOutcome, stream_samples
from edgesnn.host.protocol import wire_size
from edgesnn.host.simdevice import SimDevice, SimDeviceTransport, serve_pty
from edgesnn.host.transport import BaudLimitedTransport, open_transport
from edgesnn.pipeline.evaluation import open_device


def _stream(link: DeviceLink, px: np.ndarray, window: int = 8, timeout_s: float = 10.0,
            expected: bytes | None = None, **options: Any) -> tuple[dict[int, SampleOutcome],
                                                                    float]:
    """Stream ``px``; every sample must come back exactly once. ``options`` go to
    :func:`stream_samples` (default: eight attempts; ``chunked``...)."""
    out: dict[int, SampleOutcome] = {}
    calls: list[int] = []

    def on(o: SampleOutcome) -> None:
        calls.append(o.index)
        out[o.index] = o

    t0 = time.perf_counter()
    stream_samples(link, ((i, px[i].tobytes()) for i in range(len(px))), on, window=window,
                   timeout_s=timeout_s, expected_hash=expected,
                   **{"max_attempts": 8, **options})
    dt = time.perf_counter() - t0
    if sorted(calls) != list(range(len(px))):
        raise SystemExit("accounting broken: a sample was reported twice or never")
    return out, len(px) / dt


def _check(out: dict[int, SampleOutcome], golden: Any) -> dict[str, int]:
    mis = failed = 0
    for i, o in out.items():
        if o.status != "ok":
            failed += 1
            continue
        same = (o.prediction == golden.pred[i] and o.counts == golden.counts[i].tolist()
                and o.ops == golden.ops[i].tolist() and o.spikes == golden.spikes[i].tolist())
        mis += not same
    return {"samples": len(out), "failed": failed, "misattributed": mis}


def pty_bound(nbytes: int = 4 << 20) -> float:
    """Raw bytes/s through a pseudo-terminal pair (writer thread -> reader)."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    chunk = b"\x55" * 4096
    got = 0

    def writer() -> None:
        sent = 0
        while sent < nbytes:
            sent += os.write(master, chunk)

    t = threading.Thread(target=writer, daemon=True)
    t0 = time.perf_counter()
    t.start()
    while got < nbytes:
        got += len(os.read(slave, 65536))
    dt = time.perf_counter() - t0
    t.join()
    os.close(master)
    os.close(slave)
    return nbytes / dt


def _byte_faults(spec: str, run_dir: Path, px: np.ndarray, golden: Any, rate: float,
                 expected: bytes, *, chunked: bool, seed: int = 11,
                 dup: float | None = None) -> dict[str, Any]:
    """``rate`` flip + ``rate`` drop + ``dup`` (default ``rate / 2``) duplicate per byte, each
    direction, on ``spec`` (``sim`` or a device profile), default runner options."""
    dup = rate / 2 if dup is None else dup
    faults = ByteFaults(flip=rate, drop=rate, dup=dup)
    if spec == "sim":
        dev = None
        inner: Any = SimDeviceTransport(SimDevice(read_esg(run_dir / "model.esg"), expected))
    else:
        dev = open_device(spec, run_dir)
        inner = dev.transport
    try:
        ft = ByteFaultyTransport(inner, faults, seed=seed)
        link = DeviceLink(ft, name=f"{spec}+bytefaults", poll_s=0.002)
        link.handshake(attempts=200, timeout_s=0.5)
        # the runner's defaults (timeout, time budget, adaptive retries), not the 8 attempts
        out, sps = _stream(link, px, expected=expected, timeout_s=5.0, max_attempts=None,
                           chunked=chunked)
    finally:
        if dev is not None:
            dev.close()
    res = _check(out, golden)
    return {"device": spec, "rate": rate, "dup": dup, "chunked": chunked, **res,
            "lost": len(px) - len(out),
            "completed_pct": 100.0 * (res["samples"] - res["failed"]) / len(px),
            "samples_per_s": sps, "injected": ft.stats.to_json(),
            "link": link.stats.to_json()}


def _baud(run_dir: Path, px: np.ndarray, golden: Any, baud: int, expected: bytes, *,
          chunked: bool, rate: float = 0.0) -> dict[str, Any]:
    """Samples/s through an 8N1 UART at ``baud`` to the golden emulator (device = golden),
    with ``rate`` flip + drop + ``rate / 2`` duplicate byte faults each way on the line."""
    sim = SimDevice(read_esg(run_dir / "model.esg"), expected)
    line: Any = SimDeviceTransport(sim)
    if rate:
        line = ByteFaultyTransport(line, ByteFaults(flip=rate, drop=rate, dup=rate / 2),
                                   seed=13)
    link = DeviceLink(BaudLimitedTransport(line, baud), poll_s=0.005)
    link.handshake(attempts=50, timeout_s=1.0)
    out, sps = _stream(link, px, expected=expected, timeout_s=5.0, max_attempts=None,
                       chunked=chunked)
    st = link.stats.to_json()
    return {"baud": baud, "chunked": chunked, "fault_rate": rate, "samples_per_s": sps,
            "link_efficiency": st["link_efficiency"],
            "wire_bytes_tx_per_sample": st["wire_bytes_tx"] / len(px), **_check(out, golden)}


def _say(row: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """Print one result row as soon as it is measured (a later failure keeps it)."""
    if quiet:
        return row
    how = "chunked" if row["chunked"] else "raw INFER"
    if "baud" in row:
        noise = f" with {row['fault_rate']:g} byte faults" if row["fault_rate"] else ""
        print(f"{row['baud']} baud{noise}, {how}: {row['samples_per_s']:.1f} samples/s, link "
              f"efficiency {row['link_efficiency']:.3f}, {row['wire_bytes_tx_per_sample']:.0f} "
              f"host bytes/sample, failed {row['failed']}, misattributed "
              f"{row['misattributed']}", flush=True)
    else:
        r = row["rate"]
        print(f"{row['device']} byte faults {r:g} flip + {r:g} drop + {row['dup']:g} dup, {how}: "
              f"{row['samples']} samples, completed {row['completed_pct']:.2f} %, failed "
              f"{row['failed']}, lost {row['lost']}, misattributed {row['misattributed']}, "
              f"{row['samples_per_s']:.1f} samples/s, link efficiency "
              f"{row['link']['link_efficiency']:.3f}", flush=True)
    return row


def link_v2(args: argparse.Namespace, px: np.ndarray, golden: Any, expected: bytes) -> dict:
    """Protocol v2 (chunked, compact) side by side with today's raw INFER."""
    res: dict[str, Any] = {"baud": [], "byte_faults": []}
    nb = min(args.baud_samples, len(px))
    for baud, rate in ((115_200, 0.0), (921_600, 0.0), (115_200, 1e-3)):
        for chunked in (False, True):
            res["baud"].append(_say(_baud(args.run_dir, px[:nb], golden, baud, expected,
                                          chunked=chunked, rate=rate), args.json))
    # the cases: 1e-3 flip + 1e-3 drop + 5e-4 duplicate, and 1e-2 of each
    for spec, n, rate, dup in ((("host", args.byte_fault_samples, 1e-3, 5e-4),
                                (args.qemu, args.qemu_fault_samples, 1e-3, 5e-4),
                                ("host", args.heavy_samples, 1e-2, 1e-2))):
        if not spec or n <= 0:
            continue
        for chunked in (False, True):
            if not chunked and rate > 1e-3:
                continue  # raw 800-byte frames at 3 % per byte: ~1e-11 get through
            res["byte_faults"].append(_say(_byte_faults(spec, args.run_dir, px[:n], golden,
                                                        rate, expected, chunked=chunked,
                                                        dup=dup), args.json))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    ap.add_argument("--host-samples", type=int, default=500)
    ap.add_argument("--qemu", default="lm3s6965evb", help="QEMU profile ('' to skip)")
    ap.add_argument("--qemu-samples", type=int, default=60)
    ap.add_argument("--fault-samples", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--v2-only", action="store_true",
                    help="only the protocol-v2 comparison (baud-limited and byte faults)")
    ap.add_argument("--baud-samples", type=int, default=300)
    ap.add_argument("--byte-fault-samples", type=int, default=10_000)
    ap.add_argument("--qemu-fault-samples", type=int, default=1_000)
    ap.add_argument("--heavy-samples", type=int, default=1_000)
    args = ap.parse_args(argv)
    esg = args.run_dir / "model.esg"
    if not esg.exists():
        raise SystemExit(f"{esg} not found: run `edgesnn run --out {args.run_dir}` first")
    graph = read_esg(esg)
    expected = header_hash(esg.read_bytes())
    n_max = max(args.host_samples, args.qemu_samples, args.fault_samples, args.baud_samples,
                args.byte_fault_samples, args.qemu_fault_samples, args.heavy_samples)
    ds = load_dataset("mnist", "test", limit=n_max)
    px = np.asarray(ds.images, dtype=np.uint8)
    golden = simulate(graph, px)
    res: dict[str, Any] = {"model": [f"{la.n_in}x{la.n_out}" for la in graph.layers],
                           "steps": graph.steps}
    if args.v2_only:
        res["v2"] = link_v2(args, px, golden, expected)
        if args.json:
            print(json.dumps(res, default=float))
        return 0

    # link bound on a pseudo-terminal
    per_sample = wire_size(graph.input_size)
    bound = pty_bound()
    res["pty_bytes_per_s"] = bound
    res["infer_wire_bytes"] = per_sample
    res["pty_link_bound_samples_per_s"] = bound / per_sample

    # Python emulator behind a pseudo-terminal: link + Python framing only
    with serve_pty(SimDevice(graph, expected)) as server:
        t = open_transport(server.url)
        link = DeviceLink(t, name="sim-pty")
        link.handshake()
        out, sps = _stream(link, px[:args.host_samples], 8, expected=expected)
        t.close()
    res["sim_pty"] = {"window": 8, "samples_per_s": sps, **_check(out, golden)}

    # the host build of the firmware
    res["host"] = {}
    for window in (1, 8, 32):
        dev = open_device("host", args.run_dir)
        try:
            link = DeviceLink(dev.transport, name="host")
            link.handshake()
            out, sps = _stream(link, px[:args.host_samples], window, expected=expected)
            st = link.stats.to_json()
        finally:
            dev.close()
        res["host"][f"window_{window}"] = {"samples_per_s": sps,
                                           "link_efficiency": st["link_efficiency"],
                                           **_check(out, golden)}
    res["link_efficiency"] = res["host"]["window_8"]["link_efficiency"]

    if args.qemu:
        res["qemu"] = {"device": args.qemu}
        for window in (1, 4):
            dev = open_device(args.qemu, args.run_dir)
            try:
                link = DeviceLink(dev.transport, name=args.qemu)
                link.handshake(timeout_s=10)
                out, sps = _stream(link, px[:args.qemu_samples], window, timeout_s=20,
                                   expected=expected)
                st = link.stats.to_json()
                ok = [o for o in out.values() if o.status == "ok"]
                instr = float(np.mean([o.cycles for o in ok])) if ok else None
            finally:
                dev.close()
            res["qemu"][f"window_{window}"] = {"samples_per_s": sps,
                                               "link_efficiency": st["link_efficiency"],
                                               "instructions_mean": instr,
                                               **_check(out, golden)}
        # FACTS.md ("QEMU on this machine"): lm3s6965evb serial ~105 KB/s
        res["qemu"]["link_bound_samples_per_s_from_facts"] = 105_000 / per_sample

    # 10,000 samples through 1 % corruption + 1 % loss + one reset per 1,000 frames
    n = args.fault_samples
    cfg = FaultConfig(corrupt=0.01, loss=0.01, reset_every=1000, seed=2026)
    sim = SimDevice(graph, expected)
    ft = FaultyTransport(SimDeviceTransport(sim), cfg)
    link = DeviceLink(ft, name="sim+faults", poll_s=0.002)
    link.handshake(attempts=20, timeout_s=0.5)
    out, sps = _stream(link, px[:n], 8, timeout_s=0.5, expected=expected)
    res["faults_sim"] = {"config": "1% corrupt + 1% loss (both directions), reset every 1000 "
                         "host frames", "samples_per_s": sps, **_check(out, golden),
                         "lost": n - len(out), "injected": ft.stats.to_json(),
                         "link": link.stats.to_json()}

    # the same corruption and loss against the real host firmware (no resets)
    nh = min(args.host_samples * 2, n)
    dev = open_device("host", args.run_dir)
    try:
        ft = FaultyTransport(dev.transport, FaultConfig(corrupt=0.01, loss=0.01, seed=7))
        link = DeviceLink(ft, name="host+faults")
        link.handshake(attempts=20, timeout_s=1.0)
        out, sps = _stream(link, px[:nh], 8, timeout_s=1.0, expected=expected)
        res["faults_host"] = {"samples_per_s": sps, **_check(out, golden), "lost": nh - len(out),
                              "injected": ft.stats.to_json(), "link": link.stats.to_json()}
    finally:
        dev.close()

    if args.json:
        print(json.dumps(res, default=float))
        return 0
    print(f"model {res['model']} T={res['steps']}; INFER frame {per_sample} wire bytes")
    print(f"link efficiency (payload/wire, host run): {res['link_efficiency']:.3f}  (goal >= 0.9)")
    print(f"pty raw throughput {bound / 1e6:.1f} MB/s -> link bound "
          f"{res['pty_link_bound_samples_per_s']:.0f} samples/s")
    print(f"python emulator on pty, window 8: {res['sim_pty']['samples_per_s']:.0f} samples/s")
    for k, v in res["host"].items():
        print(f"host firmware {k}: {v['samples_per_s']:.0f} samples/s, failed {v['failed']}, "
              f"misattributed {v['misattributed']}")
    if "qemu" in res:
        for k, v in res["qemu"].items():
            if isinstance(v, dict):
                print(f"QEMU {args.qemu} {k}: {v['samples_per_s']:.1f} samples/s, "
                      f"{v['instructions_mean']:.0f} instructions/inference, misattributed "
                      f"{v['misattributed']}")
        print(f"QEMU link bound (105 KB/s, FACTS.md): "
              f"{res['qemu']['link_bound_samples_per_s_from_facts']:.0f} samples/s")
    for key in ("faults_sim", "faults_host"):
        f = res[key]
        print(f"{key}: {f['samples']} samples, lost {f['lost']}, failed {f['failed']}, "
              f"misattributed {f['misattributed']}; injected {f['injected']}; resent "
              f"{f['link']['resent']}, resets seen {f['link']['resets']}; "
              f"{f['samples_per_s']:.0f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

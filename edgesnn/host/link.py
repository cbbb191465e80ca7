"""Stream samples to a device over the serial protocol and account for every one of them.

Two layers:

* :func:`stream_samples` drives ONE link: bounded window of requests in flight, replies
  matched by seq, a timeout on every read, retries of corrupted or lost requests, device
  resets (an unexpected HELLO) answered by re-sending everything in flight. Each sample ends
  in exactly one ``on_result`` call, ``ok`` or ``failed`` with a reason; never dropped, never
  attributed to another sample (every seq ever issued for a sample maps back to that sample
  until it completes; replies to unknown seqs are counted as stale and ignored).
* :func:`evaluate` is ``edgesnn eval``: loads the run's ``model.esg``, the MNIST test split,
  the golden and float references, opens one or more devices (a fleet shares one work queue),
  checks each device's model hash, streams, and writes one JSON line per sample to
  ``RUN_DIR/eval/<device>/samples.jsonl`` (fsync'd in batches; ``resume`` continues after the
  last complete line).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.host.protocol import (
    SEQ_UNKNOWN,
    DeviceError,
    Frame,
    FrameDecoder,
    FrameError,
    Hello,
    InferResult,
    MsgType,
    ProtocolError,
    infer,
    ping,
    status_name,
    wire_size,
)
from edgesnn.host.transport import Transport, TransportError, is_url

log = logging.getLogger(__name__)

# Device statuses after which re-sending the same request can succeed.
_TRANSIENT = ("CRC", "FRAME", "BUSY", "OVERFLOW", "TIMEOUT")


class EvalError(RuntimeError):
    """Evaluation cannot go on; the message names the device and the reason."""


class ModelMismatch(EvalError):
    """The device runs a different model than RUN_DIR/model.esg."""


class LinkError(EvalError):
    """The device stopped answering or the link broke."""


@dataclass
class LinkStats:
    requests: int = 0
    resent: int = 0
    timeouts: int = 0
    device_crc_errors: int = 0
    bad_frames_rx: int = 0
    stale_replies: int = 0
    duplicate_replies: int = 0
    resets: int = 0
    ok: int = 0
    failed: int = 0
    payload_bytes_tx: int = 0
    wire_bytes_tx: int = 0
    payload_bytes_rx: int = 0
    wire_bytes_rx: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_per_s"] = (self.ok + self.failed) / self.elapsed_s if self.elapsed_s else None
        total_p = self.payload_bytes_tx + self.payload_bytes_rx
        total_w = self.wire_bytes_tx + self.wire_bytes_rx
        d["link_efficiency"] = total_p / total_w if total_w else None
        return d


@dataclass
class SampleOutcome:
    """What the device said about one sample (or why it said nothing)."""

    index: int
    status: str  # "ok" | "failed"
    reason: str = ""
    prediction: int | None = None
    counts: list[int] | None = None
    ops: list[int] | None = None
    spikes: list[int] | None = None
    input_spikes: int | None = None
    cycles: int | None = None
    rtt_s: float | None = None
    attempts: int = 0


@dataclass
class _InFlight:
    index: int
    pixels: bytes
    attempts: int = 0
    seqs: list[int] = field(default_factory=list)


class DeviceLink:
    """A transport plus the frame decoder and seq allocator of one device."""

    def __init__(self, transport: Transport, *, name: str | None = None,
                 poll_s: float = 0.02) -> None:
        self.transport = transport
        self.name = name or getattr(transport, "url", "device")
        self.decoder = FrameDecoder()
        self.poll_s = poll_s
        self._seq = 0
        self.hello: Hello | None = None
        self.stats = LinkStats()

    def next_seq(self, busy: dict[int, Any] | None = None) -> int:
        for _ in range(0xFFFF):
            self._seq = self._seq % 0xFFFE + 1  # 1..0xFFFE; 0 is a reset HELLO, 0xFFFF unknown
            if busy is None or self._seq not in busy:
                return self._seq
        raise LinkError(f"{self.name}: no free sequence number")

    def send(self, frame: Frame) -> None:
        wire = frame.encode()
        self.transport.write(wire)
        self.stats.payload_bytes_tx += len(frame.payload)
        self.stats.wire_bytes_tx += len(wire)

    def poll(self, timeout: float | None = None) -> list[Frame | FrameError]:
        data = self.transport.read(4096, self.poll_s if timeout is None else timeout)
        if not data:
            return []
        items = self.decoder.feed(data)
        self.stats.wire_bytes_rx += len(data)
        for it in items:
            if isinstance(it, Frame):
                self.stats.payload_bytes_rx += len(it.payload)
            else:
                self.stats.bad_frames_rx += 1
        return items

    def handshake(self, *, attempts: int = 5, timeout_s: float = 2.0) -> Hello:
        """PING until a HELLO answers (the host speaks first); returns and keeps it."""
        last = "no reply"
        for _ in range(attempts):
            seq = self.next_seq()
            self.send(ping(seq))
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for item in self.poll():
                    if isinstance(item, FrameError):
                        last = f"bad frame ({item.reason})"
                        continue
                    if item.type != MsgType.HELLO:
                        continue
                    try:
                        hello = Hello.decode(item.payload)
                    except ProtocolError as exc:
                        last = str(exc)
                        continue
                    if item.seq in (seq, 0):
                        self.hello = hello
                        return hello
        raise LinkError(f"{self.name}: no HELLO after {attempts} PINGs ({last})")


def check_model(hello: Hello, expected_hash: bytes, device: str) -> None:
    if hello.model_hash != expected_hash:
        raise ModelMismatch(
            f"device {device} runs model {hello.model_hash.hex()} but RUN_DIR/model.esg is "
            f"{expected_hash.hex()}; re-flash the device (edgesnn eval --device PROFILE builds "
            f"and launches the current model)")


def stream_samples(link: DeviceLink, samples: Iterator[tuple[int, bytes]],
                   on_result: Callable[[SampleOutcome], None], *, window: int = 8,
                   timeout_s: float = 3.0, max_attempts: int = 6,
                   expected_hash: bytes | None = None,
                   n_classes: int | None = None, n_layers: int | None = None) -> LinkStats:
    """Send every ``(index, pixels)`` of ``samples``; call ``on_result`` once per sample.

    Raises :class:`LinkError` (with ``.unfinished``: the samples taken but not finished) if the
    transport breaks, and :class:`ModelMismatch` if a reset device comes back with another
    model.
    """
    if window < 1:
        raise ValueError(f"window={window}; must be >= 1")
    stats = link.stats
    t0 = time.monotonic()
    inflight: dict[int, _InFlight] = {}  # index -> entry
    owner: dict[int, int] = {}  # seq -> index, for every seq of an unfinished sample
    sent_at: dict[int, float] = {}  # seq -> send time
    order: dict[int, int] = {}  # seq -> send order
    counter = 0
    exhausted = False
    last_rx = time.monotonic()

    def send(entry: _InFlight) -> None:
        nonlocal counter
        seq = link.next_seq(owner)
        entry.attempts += 1
        entry.seqs.append(seq)
        owner[seq] = entry.index
        counter += 1
        order[seq] = counter
        sent_at[seq] = time.monotonic()
        stats.requests += 1
        link.send(infer(seq, entry.pixels))

    def finish(entry: _InFlight, outcome: SampleOutcome) -> None:
        del inflight[entry.index]
        for s in entry.seqs:
            owner.pop(s, None)
            sent_at.pop(s, None)
            order.pop(s, None)
        outcome.attempts = entry.attempts
        if outcome.status == "ok":
            stats.ok += 1
        else:
            stats.failed += 1
        on_result(outcome)

    def retry(entry: _InFlight, reason: str) -> None:
        if entry.attempts >= max_attempts:
            finish(entry, SampleOutcome(entry.index, "failed",
                                        f"{reason}; gave up after {entry.attempts} attempts"))
            return
        stats.resent += 1
        send(entry)

    def last_seq(entry: _InFlight) -> int:
        return entry.seqs[-1]

    try:
        while True:
            while len(inflight) < window and not exhausted:
                try:
                    index, pixels = next(samples)
                except StopIteration:
                    exhausted = True
                    break
                entry = _InFlight(index, bytes(pixels))
                inflight[index] = entry
                send(entry)
            if not inflight and exhausted:
                break

            items = link.poll()
            if items:
                last_rx = time.monotonic()
            for item in items:
                if isinstance(item, FrameError):
                    continue  # the request's timeout or a later reply's order recovers it
                if not item.from_device:
                    continue  # an echo (loop://) or noise that happened to decode
                if item.type == MsgType.HELLO:
                    if item.seq != 0 and item.seq not in owner:
                        continue  # a late answer to our own PING
                    try:
                        hello = Hello.decode(item.payload)
                    except ProtocolError:
                        continue
                    stats.resets += 1
                    log.info("%s: device reset (unsolicited HELLO); re-sending %d in flight",
                             link.name, len(inflight))
                    if expected_hash is not None:
                        check_model(hello, expected_hash, link.name)
                    link.hello = hello
                    for entry in list(inflight.values()):
                        retry(entry, "device reset")
                    continue
                idx = owner.get(item.seq)
                if idx is None:
                    if item.seq != SEQ_UNKNOWN:
                        stats.stale_replies += 1
                    continue
                entry = inflight[idx]
                if item.type == MsgType.ERROR:
                    try:
                        err = DeviceError.decode(item.payload)
                    except ProtocolError:
                        continue
                    name = status_name(err.status)
                    if any(k in name for k in _TRANSIENT):
                        stats.device_crc_errors += 1
                        if item.seq == last_seq(entry):
                            retry(entry, f"device reported {name}")
                    else:
                        finish(entry, SampleOutcome(idx, "failed", f"device error {name}"))
                    continue
                if item.type != MsgType.RESULT:
                    continue
                try:
                    res = InferResult.decode(item.payload)
                except ProtocolError:
                    continue
                if (n_classes is not None and len(res.counts) != n_classes) or (
                        n_layers is not None and len(res.ops) != n_layers):
                    finish(entry, SampleOutcome(idx, "failed",
                                                f"RESULT shape {len(res.counts)} classes / "
                                                f"{len(res.ops)} layers does not match the "
                                                "model"))
                    continue
                answered = order[item.seq]
                rtt = time.monotonic() - sent_at[item.seq]
                finish(entry, SampleOutcome(
                    idx, "ok", prediction=res.prediction, counts=list(res.counts),
                    ops=list(res.ops), spikes=list(res.spikes), input_spikes=res.input_spikes,
                    cycles=res.cycles, rtt_s=rtt))
                # One request at a time, in order: anything sent before the answered request
                # and still unanswered was lost on the way (or its reply was).
                for other in list(inflight.values()):
                    if order[last_seq(other)] < answered:
                        retry(other, "request or reply lost")

            # A request times out when it is older than timeout_s AND the device has said
            # nothing for timeout_s: a busy device working through a deep queue is not dead.
            now = time.monotonic()
            for entry in list(inflight.values()):
                if now - max(sent_at[last_seq(entry)], last_rx) > timeout_s:
                    stats.timeouts += 1
                    retry(entry, f"no reply within {timeout_s:g} s")
    except (TransportError, OSError) as exc:
        err = LinkError(f"{link.name}: link broke: {exc}")
        err.unfinished = [(e.index, e.pixels) for e in inflight.values()]  # type: ignore[attr-defined]
        raise err from exc
    except Exception as exc:
        # whatever went wrong, the caller learns which samples are still open
        exc.unfinished = [(e.index, e.pixels) for e in inflight.values()]  # type: ignore[attr-defined]
        raise
    finally:
        stats.elapsed_s += time.monotonic() - t0
    return stats


# ------------------------------------------------------------------------------------------
# Sample records on disk


def device_dirname(spec: str) -> str:
    """A folder name for a device spec (profile name, ``sim`` or a URL)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")
    return name or "device"


class JsonlWriter:
    """Appends one JSON object per line; flushes each line, fsyncs every ``fsync_every``."""

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
    return {d.name: read_records(d / "samples.jsonl")
            for d in sorted(base.iterdir()) if (d / "samples.jsonl").exists()}


# ------------------------------------------------------------------------------------------
# References: golden (integer) and float (torch)


@dataclass
class References:
    labels: np.ndarray
    golden: Any  # edgesnn.graph.golden.SimResult
    float_pred: np.ndarray | None


def float_predictions(run_dir: Path, images: np.ndarray, batch: int = 500) -> np.ndarray | None:
    """Predictions of the float (torch) model of ``run_dir``; None if it has no model.pt."""
    if not (Path(run_dir) / "model.pt").exists():
        return None
    try:
        import torch

        from edgesnn.snn.checkpoint import load
        from edgesnn.snn.model import readout
    except ImportError as exc:
        log.warning("float model unavailable (%s); float accuracy left out", exc)
        return None
    model, _meta = load(run_dir)
    model.eval()
    preds = []
    with torch.no_grad():
        for s in range(0, len(images), batch):
            out = model.forward_pixels(torch.from_numpy(np.ascontiguousarray(images[s:s + batch])))
            preds.append(np.asarray(readout(out.counts, out.v_final)).reshape(-1))
    return np.concatenate(preds).astype(np.int64) if preds else np.zeros(0, dtype=np.int64)


def make_record(index: int, label: int, outcome: SampleOutcome, refs: References,
                pos: int, device: str) -> dict[str, Any]:
    g = refs.golden
    golden = {"pred": int(g.pred[pos]), "counts": g.counts[pos].tolist(),
              "ops": g.ops[pos].tolist(), "spikes": g.spikes[pos].tolist(),
              "input_spikes": int(g.input_spikes[pos])}
    return {
        "index": index, "label": label, "device": device, "status": outcome.status,
        "reason": outcome.reason, "device_pred": outcome.prediction,
        "golden_pred": golden["pred"],
        "float_pred": None if refs.float_pred is None else int(refs.float_pred[pos]),
        "counts": outcome.counts, "ops": outcome.ops, "spikes": outcome.spikes,
        "input_spikes": outcome.input_spikes, "cycles": outcome.cycles,
        "rtt_s": None if outcome.rtt_s is None else round(outcome.rtt_s, 6),
        "attempts": outcome.attempts, "golden": golden,
    }


# ------------------------------------------------------------------------------------------
# Opening devices


@dataclass
class OpenDevice:
    spec: str
    dirname: str
    transport: Transport
    profile: Any = None  # edgesnn.devices.DeviceProfile when opened by profile name
    closers: list[Callable[[], None]] = field(default_factory=list)
    build: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception:  # noqa: BLE001 - keep closing the rest
                log.debug("closing %s failed", self.spec, exc_info=True)


def firmware_inputs_digest(run_dir: Path, device: str) -> str:
    """SHA-256 over everything a generated firmware depends on: the model, the device
    profile, the runtime and the port sources, and the edgesnn version (so an upgrade or an
    edited runtime rebuilds instead of reusing a stale image)."""
    import hashlib

    from edgesnn import __version__
    from edgesnn._resources import devices_dir, exporters_dir, firmware_dir
    from edgesnn.devices import load_device

    profile = load_device(device)
    h = hashlib.sha256(__version__.encode())
    roots = [firmware_dir() / "runtime", firmware_dir() / "ports" / profile.build.port,
             exporters_dir() / "c"]
    files = [Path(run_dir) / "model.esg"]
    candidate = devices_dir() / f"{device}.toml"
    files.append(candidate if candidate.exists() else Path(device))
    for root in roots:
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def firmware_for(run_dir: Path, device: str, *, progress: bool = False) -> tuple[Path, dict]:
    """Export the C project for ``device`` and build it, unless an image built from exactly
    the same inputs (:func:`firmware_inputs_digest`) is already there."""
    from edgesnn.build import build_project
    from edgesnn.export.base import get_target

    out = Path(run_dir) / "firmware" / device
    stamp = out / ".edgesnn-build.json"
    digest = firmware_inputs_digest(run_dir, device)
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("inputs") == digest and Path(info["elf"]).exists():
            return Path(info["elf"]), info
    get_target("c").export(Path(run_dir), out, device=device)
    res = build_project(out)
    info = {"elf": str(res.elf), "flash_bytes": getattr(res, "flash_bytes", None),
            "ram_bytes": getattr(res, "ram_bytes", None), "inputs": digest}
    stamp.write_text(json.dumps(info))
    return Path(res.elf), info


def open_device(spec: str, run_dir: Path, *, timeout: float = 0.02,
                faults: Any = None) -> OpenDevice:
    """``sim`` (Python emulator on the golden simulator), a pyserial URL / device path, a
    device profile name (exported, built and launched via :mod:`edgesnn.host.launch`), or
    ``PROFILE@URL``: an already-flashed board reached at URL, with PROFILE's clock and energy
    constants used for the report (e.g. ``nucleo-l4r5zi@/dev/ttyACM0``)."""
    profile = None
    closers: list[Callable[[], None]] = []
    build: dict[str, Any] = {}
    name, sep, url = spec.partition("@")
    if sep and name and url and "/" not in name and ":" not in name:
        from edgesnn.devices import load_device
        from edgesnn.host.transport import open_transport

        try:
            profile = load_device(name)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise EvalError(f"--device {spec!r}: {name!r} is not a device profile ({exc})") \
                from exc
        transport = open_transport(url, timeout=timeout)
        closers.append(transport.close)
    elif spec == "sim":
        from edgesnn.host.simdevice import SimDevice, SimDeviceTransport

        transport: Transport = SimDeviceTransport(SimDevice.from_esg(Path(run_dir) / "model.esg"))
    elif is_url(spec):
        from edgesnn.host.transport import open_transport

        transport = open_transport(spec, timeout=timeout)
        closers.append(transport.close)
    else:
        from edgesnn.devices import load_device
        from edgesnn.host.launch import launch
        from edgesnn.host.transport import open_transport

        try:
            profile = load_device(spec)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise EvalError(f"--device {spec!r}: not a URL and not a device profile ({exc})") \
                from exc
        try:
            elf, build = firmware_for(run_dir, spec)
        except Exception as exc:  # noqa: BLE001 - export/build errors of any stage
            raise EvalError(f"--device {spec}: building the firmware failed: {exc}") from exc
        try:
            session = launch(profile, elf)
        except Exception as exc:  # noqa: BLE001
            raise EvalError(f"--device {spec}: launching {elf} failed: {exc}") from exc
        closers.append(session.close)
        try:
            transport = open_transport(session.url, timeout=timeout)
        except TransportError:
            session.close()
            raise
        closers.append(transport.close)
    if faults is not None:
        from edgesnn.host.faults import FaultyTransport

        transport = FaultyTransport(transport, faults)
    return OpenDevice(spec, device_dirname(spec), transport, profile, closers, build)


# ------------------------------------------------------------------------------------------
# The evaluation


@dataclass
class EvalOptions:
    samples: int | None = None
    resume: bool = False
    window: int = 8
    timeout_s: float = 5.0
    max_attempts: int = 6
    data_dir: Path | None = None
    progress: bool = True
    fsync_every: int = 64


def load_references(run_dir: Path, images: np.ndarray, labels: np.ndarray) -> References:
    from edgesnn.graph.esg import read_esg
    from edgesnn.graph.golden import simulate

    graph = read_esg(Path(run_dir) / "model.esg")
    golden = simulate(graph, images)
    return References(labels=labels, golden=golden,
                      float_pred=float_predictions(run_dir, images))


def evaluate(run_dir: Path, devices: Sequence[str], opts: EvalOptions | None = None, *,
             images: np.ndarray | None = None, labels: np.ndarray | None = None,
             opened: Sequence[OpenDevice] | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir``'s model on every device; returns a summary (also in device.json).

    ``images``/``labels`` default to the MNIST test split (first ``opts.samples``);
    ``opened`` lets tests hand in ready transports (e.g. a faulty in-memory simdevice).
    """
    opts = opts or EvalOptions()
    run_dir = Path(run_dir)
    esg = run_dir / "model.esg"
    if not esg.exists():
        raise EvalError(f"{esg} not found; run `edgesnn compress {run_dir}` first")
    expected_hash = esg.read_bytes()[32:48]
    if images is None or labels is None:
        from edgesnn.data import load_dataset

        ds = load_dataset("mnist", "test", data_dir=opts.data_dir, limit=opts.samples)
        images, labels = np.asarray(ds.images, dtype=np.uint8), np.asarray(ds.labels)
    elif opts.samples is not None:
        images, labels = images[:opts.samples], labels[:opts.samples]
    n = len(images)
    if n == 0:
        raise EvalError("no samples to evaluate (--samples must be >= 1)")
    log.info("computing golden and float references for %d samples", n)
    refs = load_references(run_dir, images, labels)
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    (run_dir / "eval" / "raster_sample.json").write_text(
        json.dumps({"index": 0, "pixels": images[0].tolist()}))

    devs: list[OpenDevice] = list(opened) if opened is not None else []
    try:
        if opened is None:
            for spec in devices:
                devs.append(open_device(spec, run_dir))
        if not devs:
            raise EvalError("no device given; use --device NAME|URL|sim")
        links = []
        for d in devs:
            link = DeviceLink(d.transport, name=d.spec)
            hello = link.handshake(timeout_s=max(opts.timeout_s, 2.0))
            check_model(hello, expected_hash, d.spec)
            links.append(link)
        return _run_fleet(run_dir, devs, links, refs, images, expected_hash, opts)
    finally:
        if opened is None:
            for d in devs:
                d.close()


def _run_fleet(run_dir: Path, devs: list[OpenDevice], links: list[DeviceLink], refs: References,
               images: np.ndarray, expected_hash: bytes, opts: EvalOptions) -> dict[str, Any]:
    n = len(images)
    done: set[int] = set()
    base = run_dir / "eval"
    if opts.resume:
        for old in base.glob("*/samples.jsonl"):
            done.update(int(r["index"]) for r in read_records(old))
    elif base.is_dir():
        # a fresh evaluation: forget every earlier device's samples, so the report is one run
        for old in base.glob("*/samples.jsonl"):
            old.unlink()
    writers = [JsonlWriter(base / d.dirname / "samples.jsonl", append=opts.resume,
                           fsync_every=opts.fsync_every) for d in devs]

    work: queue.Queue[int] = queue.Queue()
    for pos in range(n):
        if pos not in done:
            work.put(pos)
    todo = work.qsize()
    n_classes = int(refs.golden.counts.shape[1])
    n_layers = int(refs.golden.ops.shape[1])
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=n - todo, desc="eval", unit="sample", leave=False)
    lock = threading.Lock()
    alive = [True] * len(devs)
    errors: list[BaseException] = []

    stop = threading.Event()

    def pull() -> Iterator[tuple[int, bytes]]:
        while not stop.is_set():
            try:
                pos = work.get_nowait()
            except queue.Empty:
                return
            yield pos, images[pos].tobytes()

    def worker(k: int) -> None:
        d, link, writer = devs[k], links[k], writers[k]

        def on_result(o: SampleOutcome) -> None:
            writer.write(make_record(o.index, int(refs.labels[o.index]), o, refs, o.index,
                                     d.dirname))
            if bar is not None:
                with lock:
                    bar.update(1)

        try:
            stream_samples(link, pull(), on_result, window=opts.window,
                           timeout_s=opts.timeout_s, max_attempts=opts.max_attempts,
                           expected_hash=expected_hash, n_classes=n_classes, n_layers=n_layers)
        except Exception as exc:  # noqa: BLE001 - every sample must still be accounted for
            unfinished = getattr(exc, "unfinished", [])
            with lock:
                alive[k] = False
                others = any(alive)
                errors.append(exc)
            log.error("%s", exc)
            for pos, _px in unfinished:
                if others:
                    work.put(pos)  # another device of the fleet takes it
                else:
                    on_result(SampleOutcome(pos, "failed", f"device lost: {exc}"))
            if not others:
                while True:  # nobody left to take the rest: explicit failures
                    try:
                        pos = work.get_nowait()
                    except queue.Empty:
                        break
                    on_result(SampleOutcome(pos, "failed", f"no device left: {exc}"))

    threads = [threading.Thread(target=worker, args=(k,), name=f"eval-{devs[k].dirname}",
                                daemon=True) for k in range(len(devs))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stop.set()  # take no new samples; what is in flight finishes or is left for --resume
        for t in threads:
            t.join(10)
        raise
    finally:
        for w in writers:
            w.close()
        if bar is not None:
            bar.close()
    summary: dict[str, Any] = {"samples": n, "devices": {}}
    for d, link in zip(devs, links, strict=True):
        info = {
            "spec": d.spec, "hello": link.hello.to_json() if link.hello else None,
            "profile": getattr(d.profile, "name", None), "link": link.stats.to_json(),
            "build": d.build, "wire_bytes_per_infer": wire_size(len(images[0])) if n else None,
        }
        faults = getattr(d.transport, "stats", None)
        if faults is not None and hasattr(faults, "to_json"):
            info["faults"] = faults.to_json()
        (run_dir / "eval" / d.dirname).mkdir(parents=True, exist_ok=True)
        (run_dir / "eval" / d.dirname / "device.json").write_text(json.dumps(info, indent=2))
        summary["devices"][d.dirname] = info
    if errors and all(isinstance(e, ModelMismatch) for e in errors) and not any(alive):
        raise errors[0]
    return summary

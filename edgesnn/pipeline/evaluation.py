"""``edgesnn eval``: open the devices, check their model, stream the test samples, and write one
record per sample next to the golden and float answers.

A fleet of devices shares one work queue; a device that drops out hands its unfinished samples
back to the queue (or, when none is left, records them as failed with the reason). Records go
to ``RUN_DIR/eval/<device>/samples.jsonl`` (:mod:`edgesnn.results`); ``resume`` continues
after the last complete line. Ctrl-C stops the workers first (no new samples; what is in
flight gets a short grace period), keeps every completed line and re-raises
``KeyboardInterrupt``; resuming gives the same records as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.host.link import DeviceLink, ModelMismatch, SampleOutcome, check_model
from edgesnn.host.transport import Transport, TransportError, is_url
from edgesnn.pipeline.references import References, golden_raster, load_references
from edgesnn.results import (
    DEVICE_FILE,
    RASTER_FILE,
    SAMPLES_FILE,
    JsonlWriter,
    device_dirname,
    make_record,
    read_records,
)

log = logging.getLogger(__name__)

#: most requests in flight per device (sequence numbers and the device's queue are finite)
MAX_WINDOW = 64


class EvalError(RuntimeError):
    """Evaluation cannot start or go on; the message names the device and the reason."""


@dataclass
class EvalOptions:
    """The options of ``edgesnn eval`` (same names as the CLI's, ``timeout`` in seconds)."""

    samples: int | None = None
    resume: bool = False
    window: int = 8
    timeout: float = 5.0  # ceiling of the adaptive reply timeout
    retries: int | None = None  # whole sends per sample at most; None: the budget decides
    budget: float = 60.0  # seconds a sample may take from its first send
    chunks: bool = True  # DATA chunks when the device offers them (else one INFER frame)
    data_dir: Path | None = None
    progress: bool = True
    fsync_every: int = 64
    drain_s: float = 2.0  # on Ctrl-C: how long in-flight samples may still finish
    baseline: str | None = None  # "ann" | "ann-sparse": also run that int8 ANN (pipeline.baseline)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad option and what it accepts."""
        if self.samples is not None and self.samples < 1:
            raise ValueError(f"--samples {self.samples}: must be >= 1")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"--window {self.window}: must be 1..{MAX_WINDOW}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"--timeout {self.timeout:g}: must be a positive number of "
                             "seconds")
        if not (math.isfinite(self.budget) and self.budget >= self.timeout):
            raise ValueError(f"--budget {self.budget:g}: must be a number of seconds >= "
                             f"--timeout ({self.timeout:g})")
        if self.baseline is not None and self.baseline not in ("ann", "ann-sparse"):
            raise ValueError(f"--baseline {self.baseline}: accepted ann, ann-sparse")
        if self.retries is not None and self.retries < 1:
            raise ValueError(f"--retries {self.retries}: must be >= 1 (whole sends per "
                             "sample)")


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


def _profile(spec: str, what: str) -> Any:
    from edgesnn.devices import load_device

    try:
        return load_device(spec)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise EvalError(f"--device {what}: {exc}") from exc


def open_device(spec: str, run_dir: Path, *, timeout: float = 0.02,
                faults: Any = None) -> OpenDevice:
    """``sim`` (Python emulator on the golden simulator), a pyserial URL / device path, a
    device profile name (exported, built and launched), or ``PROFILE@URL``: an
    already-flashed board reached at URL, with PROFILE's clock and energy constants used for
    the report (e.g. ``nucleo-l4r5zi@/dev/ttyACM0``)."""
    from edgesnn.host.transport import open_transport

    profile = None
    closers: list[Callable[[], None]] = []
    build: dict[str, Any] = {}
    transport: Transport
    name, sep, url = spec.partition("@")
    if sep and name and url and "/" not in name and ":" not in name:
        try:
            profile = _profile(name, repr(spec))
        except EvalError as exc:
            raise EvalError(f"--device {spec!r}: {name!r} is not a device profile "
                            f"({exc.__cause__})") from exc
        transport = open_transport(url, timeout=timeout)
        closers.append(transport.close)
    elif spec == "sim":
        from edgesnn.host.simdevice import SimDevice, SimDeviceTransport

        transport = SimDeviceTransport(SimDevice.from_esg(Path(run_dir) / "model.esg"))
    elif is_url(spec):
        transport = open_transport(spec, timeout=timeout)
        closers.append(transport.close)
    else:
        from edgesnn.host.launch import launch
        from edgesnn.pipeline.firmware import firmware_for

        try:
            profile = _profile(spec, repr(spec))
        except EvalError as exc:
            raise EvalError(f"--device {spec!r}: not a URL and not a device profile "
                            f"({exc.__cause__})") from exc
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


def _test_split(opts: EvalOptions) -> tuple[np.ndarray, np.ndarray]:
    from edgesnn.data import load_dataset

    ds = load_dataset("mnist", "test", data_dir=opts.data_dir)
    if opts.samples is not None and opts.samples > len(ds.labels):
        raise ValueError(f"--samples {opts.samples}: the MNIST test split has "
                         f"{len(ds.labels):,} samples")
    n = len(ds.labels) if opts.samples is None else opts.samples
    return np.asarray(ds.images[:n], dtype=np.uint8), np.asarray(ds.labels[:n])


def evaluate_devices(run_dir: Path, devices: Sequence[str], opts: EvalOptions | None = None, *,
             images: np.ndarray | None = None, labels: np.ndarray | None = None,
             opened: Sequence[OpenDevice] | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir``'s model on every device; returns a summary (also in device.json).

    ``images``/``labels`` default to the MNIST test split (first ``opts.samples``);
    ``opened`` lets tests hand in ready transports (e.g. a faulty in-memory simdevice).
    """
    from edgesnn.graph.esg import header_hash, read_esg

    opts = opts or EvalOptions()
    opts.check()
    run_dir = Path(run_dir)
    esg = run_dir / "model.esg"
    if not esg.exists():
        raise EvalError(f"{esg} not found; run `edgesnn compress {run_dir}` first")
    base = None
    model_dir = run_dir  # where the device's model.esg (and its firmware) lives
    if opts.baseline is not None:
        if "sim" in devices:
            raise EvalError("--baseline runs the ANN in the firmware; --device sim has none "
                            "(use a device profile such as host)")
        from edgesnn.pipeline.baseline import prepare_baseline

        base = prepare_baseline(run_dir, opts.baseline, data_dir=opts.data_dir)
        model_dir = base.dir
        esg = model_dir / "model.esg"
    expected_hash = header_hash(esg.read_bytes())
    graph = read_esg(esg)
    if images is None or labels is None:
        images, labels = _test_split(opts)
    elif opts.samples is not None:
        images, labels = images[:opts.samples], labels[:opts.samples]
    if len(images) == 0:
        raise EvalError("no samples to evaluate (--samples must be >= 1)")
    log.info("computing golden and float references for %d samples", len(images))
    refs = load_references(run_dir, graph, images, labels)
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    (run_dir / "eval" / RASTER_FILE).write_text(json.dumps(golden_raster(graph, images[0], 0)))

    devs: list[OpenDevice] = list(opened) if opened is not None else []
    try:
        if opened is None:
            for spec in devices:
                devs.append(open_device(spec, model_dir))
        if not devs:
            raise EvalError("no device given; use --device NAME|URL|sim")
        links = []
        for d in devs:
            link = DeviceLink(d.transport, name=d.spec)
            hello = link.handshake(timeout_s=max(opts.timeout, 2.0))
            check_model(hello, expected_hash, d.spec)
            links.append(link)
        summary = _Fleet(run_dir, devs, links, refs, images, expected_hash, opts).run()
        if base is not None:
            from edgesnn.pipeline.baseline import run_baseline

            log.info("running the %s baseline on the same %d samples", base.kind, len(images))
            summary["baseline"] = run_baseline(
                run_dir, base, [(d.dirname, link) for d, link in zip(devs, links, strict=True)],
                images, np.asarray(labels), timeout_s=opts.timeout, resume=opts.resume)
        return summary
    finally:
        if opened is None:
            for d in devs:
                d.close()


class _Fleet:
    """Devices sharing one queue of sample positions; one worker thread per device."""

    def __init__(self, run_dir: Path, devs: list[OpenDevice], links: list[DeviceLink],
                 refs: References, images: np.ndarray, expected_hash: bytes,
                 opts: EvalOptions) -> None:
        self.run_dir, self.devs, self.links, self.refs = run_dir, devs, links, refs
        self.images, self.expected_hash, self.opts = images, expected_hash, opts
        self.work: queue.Queue[int] = queue.Queue()
        self.lock = threading.Lock()
        self.alive = [True] * len(devs)
        self.errors: list[BaseException] = []
        self.stop = threading.Event()  # Ctrl-C: take no new samples
        self.abort = threading.Event()  # grace period over: leave in-flight samples open
        # set by each worker as it ends: Thread.join() interrupted by Ctrl-C can mark a
        # running thread stopped (CPython), so the fleet waits on these instead
        self.done = [threading.Event() for _ in devs]
        self.bar: Any = None

    def _prepare(self) -> list[JsonlWriter]:
        base = self.run_dir / "eval"
        done: set[int] = set()
        if self.opts.resume:
            for old in base.glob(f"*/{SAMPLES_FILE}"):
                done.update(int(r["index"]) for r in read_records(old))
        else:
            # a fresh evaluation: forget every earlier device's samples, so the report is one run
            for old in base.glob(f"*/{SAMPLES_FILE}"):
                old.unlink()
        for pos in range(len(self.images)):
            if pos not in done:
                self.work.put(pos)
        if self.opts.progress:
            from edgesnn.progress import progress

            n = len(self.images)
            self.bar = progress(total=n, initial=n - self.work.qsize(), desc="eval",
                                unit="sample")
        return [JsonlWriter(base / d.dirname / SAMPLES_FILE, append=self.opts.resume,
                            fsync_every=self.opts.fsync_every) for d in self.devs]

    def _pull(self) -> Iterator[tuple[int, bytes]]:
        while not self.stop.is_set():
            try:
                pos = self.work.get_nowait()
            except queue.Empty:
                return
            yield pos, self.images[pos].tobytes()

    def _worker(self, k: int, writer: JsonlWriter) -> None:
        try:
            self._stream(k, writer)
        finally:
            self.done[k].set()

    def _stream(self, k: int, writer: JsonlWriter) -> None:
        from edgesnn.host.link import stream_samples

        d, link, refs = self.devs[k], self.links[k], self.refs

        def on_result(o: SampleOutcome) -> None:
            writer.write(make_record(o.index, int(refs.labels[o.index]), d.dirname, o.to_json(),
                                     refs.golden_answer(o.index), refs.float_answer(o.index)))
            if self.bar is not None:
                with self.lock:
                    self.bar.update(1)

        golden = self.refs.golden
        try:
            stream_samples(link, self._pull(), on_result, window=self.opts.window,
                           timeout_s=self.opts.timeout, max_attempts=self.opts.retries,
                           budget_s=self.opts.budget, chunked=self.opts.chunks,
                           expected_hash=self.expected_hash,
                           n_classes=int(golden.counts.shape[1]),
                           n_layers=int(golden.ops.shape[1]), abort=self.abort)
        except Exception as exc:  # noqa: BLE001 - every sample must still be accounted for
            self._lost(k, exc, on_result)

    def _lost(self, k: int, exc: Exception, on_result: Callable[[SampleOutcome], None]) -> None:
        """Device ``k`` dropped out: its open samples go to another device, or fail."""
        unfinished = getattr(exc, "unfinished", [])
        with self.lock:
            self.alive[k] = False
            others = any(self.alive)
            self.errors.append(exc)
        log.error("%s", exc)
        for pos, _px in unfinished:
            if others:
                self.work.put(pos)  # another device of the fleet takes it
            else:
                on_result(SampleOutcome(pos, "failed", f"device lost: {exc}"))
        if others:
            return
        while True:  # nobody left to take the rest: explicit failures
            try:
                pos = self.work.get_nowait()
            except queue.Empty:
                break
            on_result(SampleOutcome(pos, "failed", f"no device left: {exc}"))

    def run(self) -> dict[str, Any]:
        writers = self._prepare()
        threads = [threading.Thread(target=self._worker, args=(k, writers[k]),
                                    name=f"eval-{d.dirname}", daemon=True)
                   for k, d in enumerate(self.devs)]
        try:
            for t in threads:
                t.start()
            for ev in self.done:
                while not ev.wait(0.2):
                    pass
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            for w in writers:
                w.close()
            if self.bar is not None:
                self.bar.close()
        return self._summary()

    def _interrupt(self) -> None:
        """Stop the workers before the files close: no new samples, in-flight ones get
        ``drain_s`` to finish, then the workers leave them open for ``--resume``."""
        self.stop.set()
        deadline = time.monotonic() + self.opts.drain_s
        for ev in self.done:
            ev.wait(max(0.0, deadline - time.monotonic()))
        self.abort.set()
        for ev in self.done:
            ev.wait()

    def _summary(self) -> dict[str, Any]:
        from edgesnn.host.protocol import wire_size

        n = len(self.images)
        summary: dict[str, Any] = {"samples": n, "devices": {}}
        for d, link in zip(self.devs, self.links, strict=True):
            info = {
                "spec": d.spec, "hello": link.hello.to_json() if link.hello else None,
                "profile": getattr(d.profile, "name", None), "link": link.stats.to_json(),
                "build": d.build, "wire_bytes_per_infer": wire_size(len(self.images[0])),
            }
            faults = getattr(d.transport, "stats", None)
            if faults is not None and hasattr(faults, "to_json"):
                info["faults"] = faults.to_json()
            (self.run_dir / "eval" / d.dirname).mkdir(parents=True, exist_ok=True)
            (self.run_dir / "eval" / d.dirname / DEVICE_FILE).write_text(
                json.dumps(info, indent=2))
            summary["devices"][d.dirname] = info
        errors = self.errors
        if errors and all(isinstance(e, ModelMismatch) for e in errors) and not any(self.alive):
            raise errors[0]
        return summary

"""The evaluation runner against the Python device emulator: records, resume, hash check,
fleets, and the real pyserial transport over a pseudo-terminal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesnn.graph.esg import write_esg
from edgesnn.graph.synth import random_graph, random_pixels
from edgesnn.host.faults import FaultConfig, FaultyTransport
from edgesnn.host.link import DeviceLink, ModelMismatch, stream_samples
from edgesnn.host.simdevice import SimDevice, SimDeviceTransport, model_hash_of, serve_pty
from edgesnn.host.transport import open_transport
from edgesnn.pipeline.evaluation import EvalOptions, OpenDevice
from edgesnn.pipeline.evaluation import evaluate_devices as evaluate
from edgesnn.report import build_report as _build_report
from edgesnn.results import load_results, read_records

N = 120
pytestmark = pytest.mark.timeout(120)  # a hang fails the test instead of stalling the suite


def build_report(run_dir: Path) -> dict:
    return _build_report(load_results(run_dir))


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    graph = random_graph(21, input_size=49, hidden=(20,), n_classes=10, steps=5)
    write_esg(graph, tmp_path / "model.esg")
    return tmp_path


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    px = random_pixels(8, N, 49)
    labels = np.random.default_rng(0).integers(0, 10, N)
    return px, labels


def _sim(run_dir: Path, name: str = "sim", faults: FaultConfig | None = None,
         esg: Path | None = None) -> OpenDevice:
    dev = SimDevice.from_esg(esg or run_dir / "model.esg", board=name)
    t = SimDeviceTransport(dev)
    transport = FaultyTransport(t, faults) if faults else t
    return OpenDevice(name, name, transport)


def _opts(**kw) -> EvalOptions:
    return EvalOptions(progress=False, timeout=0.1, **kw)


def test_records_one_line_per_sample(run_dir, data) -> None:
    px, labels = data
    summary = evaluate(run_dir, [], _opts(), images=px, labels=labels, opened=[_sim(run_dir)])
    recs = read_records(run_dir / "eval" / "sim" / "samples.jsonl")
    assert sorted(r["index"] for r in recs) == list(range(N))
    r = recs[0]
    for key in ("index", "label", "device_pred", "golden_pred", "float_pred", "counts", "ops",
                "spikes", "cycles", "rtt_s", "status"):
        assert key in r
    assert all(r["status"] == "ok" and r["device_pred"] == r["golden_pred"] for r in recs)
    assert summary["devices"]["sim"]["link"]["ok"] == N
    info = json.loads((run_dir / "eval" / "sim" / "device.json").read_text())
    assert info["hello"]["board"] == "sim" and info["hello"]["cycle_unit"] == "nanoseconds"


def test_model_hash_mismatch_is_refused(run_dir, data, tmp_path_factory) -> None:
    px, labels = data
    other = tmp_path_factory.mktemp("other") / "model.esg"
    write_esg(random_graph(99, input_size=49, hidden=(20,), n_classes=10, steps=5), other)
    assert model_hash_of(other.read_bytes()) != model_hash_of((run_dir / "model.esg").read_bytes())
    with pytest.raises(ModelMismatch, match="re-flash"):
        evaluate(run_dir, [], _opts(), images=px, labels=labels,
                 opened=[_sim(run_dir, esg=other)])
    assert not (run_dir / "eval" / "sim" / "samples.jsonl").exists(), "nothing was run"


def _strip(report: dict) -> dict:
    """The report without what legitimately differs between two runs (timings)."""
    r = json.loads(json.dumps(report))
    for d in r["devices"].values():
        d.pop("link", None)
        d.pop("latency", None)
        d.pop("break_even", None)
    r["energy"].pop("break_even", None)
    r.pop("latency", None)
    r.pop("run_dir", None)
    return r


def test_resume_after_interruption_gives_the_same_report(run_dir, data, tmp_path) -> None:
    px, labels = data
    full_dir = tmp_path / "full"
    full_dir.mkdir()
    (full_dir / "model.esg").write_bytes((run_dir / "model.esg").read_bytes())
    evaluate(full_dir, [], _opts(), images=px, labels=labels, opened=[_sim(full_dir)])
    full = build_report(full_dir)

    # interrupted: 70 samples done, then a torn half-written line
    evaluate(run_dir, [], _opts(samples=70), images=px, labels=labels, opened=[_sim(run_dir)])
    path = run_dir / "eval" / "sim" / "samples.jsonl"
    with open(path, "a") as f:
        f.write('{"index": 70, "label": 3, "sta')
    summary = evaluate(run_dir, [], _opts(resume=True), images=px, labels=labels,
                       opened=[_sim(run_dir)])
    assert summary["devices"]["sim"]["link"]["ok"] == N - 70, "only the rest was sent"
    recs = read_records(path)
    assert [r["index"] for r in recs] == sorted(r["index"] for r in recs)
    assert len(recs) == N and len({r["index"] for r in recs}) == N
    assert _strip(build_report(run_dir)) == _strip(full)


def test_fleet_shares_samples_and_merges(run_dir, data) -> None:
    px, labels = data
    faults = FaultConfig(corrupt=0.02, loss=0.02, reset_every=40, seed=5)
    evaluate(run_dir, [], _opts(), images=px, labels=labels,
             opened=[_sim(run_dir, "a"), _sim(run_dir, "b", faults)])
    a = read_records(run_dir / "eval" / "a" / "samples.jsonl")
    b = read_records(run_dir / "eval" / "b" / "samples.jsonl")
    assert a and b
    idx = [r["index"] for r in a + b]
    assert sorted(idx) == list(range(N)), "each sample exactly once across the fleet"
    rep = build_report(run_dir)
    assert rep["samples"] == N and rep["agreement"] == 1.0
    assert set(rep["devices"]) == {"a", "b"}


def test_pty_transport_with_real_pyserial(run_dir, data) -> None:
    px, _ = data
    dev = SimDevice.from_esg(run_dir / "model.esg")
    with serve_pty(dev) as server:
        assert server.url.startswith("/dev/pts/")
        t = open_transport(server.url, timeout=0.05)
        try:
            link = DeviceLink(t)
            hello = link.handshake(timeout_s=1.0)
            assert hello.model_hash == model_hash_of((run_dir / "model.esg").read_bytes())
            out: list = []
            stream_samples(link, ((i, px[i].tobytes()) for i in range(20)), out.append,
                           window=4, timeout_s=1.0, chunked=False)
            raw_tx = (link.stats.payload_bytes_tx, link.stats.wire_bytes_tx)
            stream_samples(link, ((i, px[i].tobytes()) for i in range(20, 40)), out.append,
                           window=4, timeout_s=1.0)
        finally:
            t.close()
    assert sorted(o.index for o in out) == list(range(40))
    assert all(o.status == "ok" for o in out)
    # PING (empty) + 20 INFERs of 49 bytes: 10 bytes header/CRC, 1 COBS code, 1 delimiter
    assert raw_tx == (20 * 49, 12 + 20 * (49 + 12))
    # the same samples as DATA chunks in the smaller encoding: never more on the wire
    assert link.stats.wire_bytes_tx - raw_tx[1] <= 20 * (49 + 12 + 5) + 12 * link.stats.polls


def test_eval_cli_json_and_hash_refusal(tmp_path: Path, mnist_data_dir: Path, capsys) -> None:
    from edgesnn.cli import main

    graph = random_graph(5, input_size=784, hidden=(16,), n_classes=10, steps=4)
    write_esg(graph, tmp_path / "model.esg")
    argv = ["eval", str(tmp_path), "--device", "sim", "--samples", "30",
            "--data-dir", str(mnist_data_dir), "--json"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    rep = json.loads(out[0])
    assert rep["samples"] == 30 and rep["agreement"] == 1.0 and rep["device"] == "sim"
    assert (tmp_path / "report.html").exists()

    # a device on a pseudo-terminal running another model: refused before any sample is sent
    other = random_graph(6, input_size=784, hidden=(16,), n_classes=10, steps=4)
    dev = SimDevice(other, bytes(16))
    with serve_pty(dev) as server:
        rc = main(["eval", str(tmp_path), "--device", server.url, "--samples", "5",
                   "--data-dir", str(mnist_data_dir)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "runs model 00000000" in err and "re-flash" in err
    assert dev.requests == 1, "only the PING reached the device"
    assert main(["eval", str(tmp_path), "--device", "sim", "--samples", "0"]) == 2


def test_profile_at_url_attaches_the_profile_to_a_flashed_board(run_dir, data) -> None:
    """``PROFILE@URL``: a board reached by URL, reported with the profile's clock/energy."""
    from edgesnn.pipeline.evaluation import EvalError, open_device

    dev = SimDevice.from_esg(run_dir / "model.esg")
    with serve_pty(dev) as server:
        opened = open_device(f"nucleo-l4r5zi@{server.url}", run_dir, timeout=0.05)
        try:
            assert opened.profile is not None and opened.profile.name == "nucleo-l4r5zi"
            assert opened.profile.core.clock_hz == 120_000_000
            hello = DeviceLink(opened.transport).handshake(timeout_s=1.0)
            assert hello.model_hash == model_hash_of((run_dir / "model.esg").read_bytes())
        finally:
            for close in opened.closers:
                close()
    with pytest.raises(EvalError, match="not a device profile"):
        open_device("no-such-board@loop://", run_dir)


def test_firmware_is_rebuilt_only_when_its_inputs_change(tmp_path: Path) -> None:
    """A stale image (other model, runtime, port or profile) is never reused."""
    import shutil

    from edgesnn.pipeline.firmware import firmware_for

    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed")
    write_esg(random_graph(1, input_size=49, hidden=(8,), n_classes=10, steps=4),
              tmp_path / "model.esg")
    elf, info = firmware_for(tmp_path, "host")
    built = elf.stat().st_mtime_ns
    elf2, info2 = firmware_for(tmp_path, "host")
    assert elf2 == elf and elf.stat().st_mtime_ns == built and info2["inputs"] == info["inputs"]
    write_esg(random_graph(2, input_size=49, hidden=(8,), n_classes=10, steps=4),
              tmp_path / "model.esg")
    _, info3 = firmware_for(tmp_path, "host")
    assert info3["inputs"] != info["inputs"]
    assert elf.stat().st_mtime_ns != built, "a new model must rebuild the image"


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_ctrl_c_stops_cleanly_and_resume_is_identical(tmp_path: Path, mnist_data_dir: Path,
                                                      capsys) -> None:
    """Ctrl-C in the middle of `edgesnn eval`: the workers stop before the files close, every
    completed line stays, no traceback, exit 130; --resume then gives the report of an
    uninterrupted run."""
    import _thread
    import threading
    import time

    from edgesnn.cli import main

    graph = random_graph(7, input_size=784, hidden=(16,), n_classes=10, steps=4)
    runs = [tmp_path / "cut", tmp_path / "full"]
    for r in runs:
        r.mkdir()
        write_esg(graph, r / "model.esg")
    argv = ["--device", "sim", "--samples", "2000", "--data-dir", str(mnist_data_dir),
            "--json", "--window", "2"]
    samples = runs[0] / "eval" / "sim" / "samples.jsonl"

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if samples.exists() and samples.stat().st_size > 20_000:
                _thread.interrupt_main()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=interrupt_when_running, daemon=True)
    watcher.start()
    assert main(["eval", str(runs[0]), *argv]) == 130
    watcher.join()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
    lines = samples.read_text().splitlines(keepends=True)
    kept = read_records(samples)
    assert len(kept) == len(lines) and all(ln.endswith("\n") for ln in lines), "no torn line"
    assert 0 < len(kept) < 2000 and len({r["index"] for r in kept}) == len(kept)

    assert main(["eval", str(runs[0]), *argv, "--resume"]) == 0
    assert main(["eval", str(runs[1]), *argv]) == 0
    capsys.readouterr()
    assert _strip(build_report(runs[0])) == _strip(build_report(runs[1]))


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_interrupt_stops_the_workers_before_the_files_close(run_dir, data) -> None:
    """A device that goes silent after Ctrl-C: its in-flight samples get drain_s, then the
    worker leaves them open for --resume and has ended before the files close (it never
    writes to a closed file)."""
    import _thread
    import threading
    import time

    from tests.test_faults import Scripted

    px, labels = data
    silent = threading.Event()
    device = Scripted(SimDevice.from_esg(run_dir / "model.esg"),
                      lambda frame, reply: b"" if silent.is_set() else reply, service_s=0.002)
    samples = run_dir / "eval" / "sim" / "samples.jsonl"
    crashed: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)  # type: ignore

    def interrupt() -> None:
        while not (samples.exists() and samples.read_text().count("\n") >= 20):
            time.sleep(0.002)
        silent.set()
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(run_dir, [], EvalOptions(progress=False, timeout=1.0, drain_s=0.2),
                     images=px, labels=labels,
                     opened=[OpenDevice("sim", "sim", device)])
    finally:
        threading.excepthook = old_hook
    assert not crashed
    kept = read_records(samples)
    assert 20 <= len(kept) < N and samples.read_text().count("\n") == len(kept)


@pytest.mark.parametrize(("option", "message"), [
    (["--timeout", "-1"], "--timeout -1: must be a positive number of seconds"),
    (["--retries", "0"], "--retries 0: must be >= 1"),
    (["--budget", "0.5", "--timeout", "1"], "--budget 0.5: must be a number of seconds >= "),
    (["--window", "0"], "--window 0: must be 1..64"),
    (["--samples", "99999999"], "--samples 99999999: the MNIST test split has 10,000 samples"),
])
def test_eval_options_are_checked_before_any_work(tmp_path: Path, mnist_data_dir: Path, capsys,
                                                  option: list[str], message: str) -> None:
    from edgesnn.cli import main

    write_esg(random_graph(5, input_size=784, hidden=(16,), n_classes=10, steps=4),
              tmp_path / "model.esg")
    rc = main(["eval", str(tmp_path), "--device", "sim", "--data-dir", str(mnist_data_dir),
               *option])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "eval").exists(), "refused before any work"

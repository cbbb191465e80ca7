"""``edgesnn eval --baseline ann|ann-sparse`` on the host build: the int8 ANN in the run's own
firmware (the .esg's ANN section, requests flagged ANN, firmware/PROTOCOL.md) on the same
samples as the SNN; every device answer equals the numpy twin and the report carries both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgesnn.cli import main as cli_main
from edgesnn.graph import ann as gann
from edgesnn.host import protocol as P
from edgesnn.host.baseline import AnnInferResult, stream_ann
from edgesnn.host.link import DeviceLink, LinkError
from edgesnn.pipeline.baseline import prepare_baseline
from edgesnn.results import read_records

pytestmark = pytest.mark.timeout(600)
N = 40


def _images(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from edgesnn.data import load_dataset

    ds = load_dataset("mnist", "test", data_dir=data_dir)
    return np.asarray(ds.images[:n], np.uint8), np.asarray(ds.labels[:n])


@pytest.fixture()
def run(tiny_esg_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(tiny_esg_run, out, ignore=shutil.ignore_patterns("eval", "firmware",
                                                                     "baselines"))
    return out


def _eval(run: Path, data_dir: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> dict:
    argv = ["eval", str(run), "--device", "host", "--samples", str(N), "--baseline", kind,
            "--data-dir", str(data_dir), "--json"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_eval_baseline_ann_and_sparse_on_host(run: Path, mnist_data_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = _images(mnist_data_dir, N)
    reports = {}
    for kind in ("ann", "ann-sparse"):
        reports[kind] = rep = _eval(run, mnist_data_dir, kind, capsys)
        # the SNN still runs and agrees with golden from the combined firmware
        assert rep["samples"] == N and rep["failure_count"] == 0
        assert rep["agreement"] == 1.0
        cost = rep["cost_per_inference"]
        assert cost["unit"] == "ns" and 0 < cost["p50"] <= cost["p99"] <= cost["max"]
        b = rep["baselines"][kind]
        assert b["samples"] == N and b["failed"] == 0 and b["agreement"] == 1.0
        assert b["device_accuracy"] == b["golden_accuracy"]
        assert b["trained_here"] is True
        # the twin, recomputed here from the stored blob, equals every device answer
        graph = gann.decode((run / "baselines" / kind / "model.eann").read_bytes())
        assert {la.storage for la in graph.layers} == {"dense" if kind == "ann" else "sparse"}
        twin = gann.infer(graph, images)
        recs = read_records(run / "eval" / "host" / f"baseline-{kind}.jsonl")
        assert [r["index"] for r in recs] == list(range(N))
        for r in recs:
            i = r["index"]
            assert r["status"] == "ok" and r["label"] == int(labels[i])
            assert r["device_pred"] == int(twin.pred[i])
            assert r["logits"] == twin.logits[i].tolist()
            assert r["macs"] == twin.macs[i].tolist()
            assert r["active"] == twin.active[i].tolist()
        assert b["golden_accuracy"] == pytest.approx(float(np.mean(twin.pred == labels)))
        assert b["golden_accuracy"] > 0.5  # a trained network, not chance
        assert b["cost_per_inference"]["max"] >= b["cost_per_inference"]["mean"] > 0
        assert b["memory"]["model_bytes"] == (run / "baselines" / kind / "model.eann"
                                              ).stat().st_size
    # the second evaluation keeps the first one's baseline: the report shows both
    both = reports["ann-sparse"]["baselines"]
    assert set(both) == {"ann", "ann-sparse"}
    # the sparse kernel skips zero pixels: fewer MACs than the dense one on MNIST
    assert both["ann-sparse"]["macs_mean"] < both["ann"]["macs_mean"]
    html = (run / "report.html").read_text()
    assert "SNN vs int8 ANN" in html and "ann-sparse" in html


def test_ann_requests_on_the_wire(run: Path, mnist_data_dir: Path) -> None:
    """INFER, DATA chunks and POLL flagged ANN; a firmware without an ANN section refuses."""
    from edgesnn.devices import load_device
    from edgesnn.host.launch import launch
    from edgesnn.host.transport import open_transport
    from edgesnn.pipeline.firmware import firmware_for

    images, _ = _images(mnist_data_dir, 3)
    base = prepare_baseline(run, "ann", data_dir=mnist_data_dir)
    twin = gann.infer(base.graph, images)
    for model_dir, has_ann in ((base.dir, True), (run, False)):
        elf, _ = firmware_for(model_dir, "host")
        session = launch(load_device("host"), elf)
        transport = open_transport(session.url, timeout=0.02)
        try:
            link = DeviceLink(transport)
            hello = link.handshake()
            assert hello.ann is has_ann
            if not has_ann:
                with pytest.raises(LinkError, match="no ANN"):
                    stream_ann(link, iter([(0, images[0].tobytes())]), lambda o: None)
                seq = link.next_seq()
                link.send(P.Frame(P.MsgType.INFER, seq, images[0].tobytes(), P.FLAG_ANN))
                ans = _wait(link, seq)
                assert ans.type == P.MsgType.ERROR
                assert P.DeviceError.decode(ans.payload).name == "ESNN_ERR_FRAME"
                continue
            # DATA chunks flagged ANN assemble and run the ANN
            seq = link.next_seq()
            req = P.ChunkedRequest(seq, images[1].tobytes(), chunk_max=hello.chunk_max)
            link.send(*(P.Frame(f.type, f.seq, f.payload, f.flags | P.FLAG_ANN)
                        for f in req.frames()))
            ans = _wait(link, seq)
            assert ans.type == P.MsgType.ANN_RESULT
            r = AnnInferResult.decode(ans.payload)
            assert list(r.logits) == twin.logits[1].tolist()
            assert list(r.macs) == twin.macs[1].tolist() and r.prediction == twin.pred[1]
            # a POLL flagged ANN gets the same answer again, without a second inference
            link.send(P.Frame(P.MsgType.POLL, seq, b"", P.FLAG_ANN))
            again = _wait(link, seq)
            assert again.type == P.MsgType.ANN_RESULT and again.payload == ans.payload
            # an SNN request right after still answers RESULT
            seq = link.next_seq()
            link.send(P.infer(seq, images[2].tobytes()))
            assert _wait(link, seq).type == P.MsgType.RESULT
        finally:
            transport.close()
            session.close()


def _wait(link: DeviceLink, seq: int) -> P.Frame:
    import time

    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        for item in link.poll():
            if isinstance(item, P.Frame) and item.from_device and item.seq == seq:
                return item
    raise AssertionError(f"no answer to seq {seq}")


@pytest.mark.qemu
def test_eval_baseline_on_qemu_cortex_m3(run: Path, mnist_data_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The combined firmware on lm3s6965evb: SNN = golden and ANN = twin on a few samples,
    costs in QEMU instructions, energy from the profile's energy per cycle."""
    from tests.test_qemu import need_arm_toolchain

    need_arm_toolchain()
    argv = ["eval", str(run), "--device", "lm3s6965evb", "--samples", "5", "--baseline", "ann",
            "--data-dir", str(mnist_data_dir), "--json"]
    assert cli_main(argv) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["agreement"] == 1.0 and rep["failure_count"] == 0
    b = rep["baselines"]["ann"]
    assert b["agreement"] == 1.0 and b["failed"] == 0
    assert b["cost_per_inference"]["unit"] == "instructions"
    assert rep["cost_per_inference"]["unit"] == "instructions"
    if b["energy"]["available"]:
        assert b["energy"]["uj_per_inference"] == pytest.approx(
            b["cost_per_inference"]["mean"] * b["energy"]["energy_per_cycle_nj"] / 1000.0)
    recs = read_records(run / "eval" / "lm3s6965evb" / "baseline-ann.jsonl")
    assert len(recs) == 5 and all(r["agree"] for r in recs)


def test_baseline_needs_firmware(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Python emulator runs no ANN: refused with the reason, before any training."""
    assert cli_main(["eval", str(run), "--device", "sim", "--samples", "3",
                     "--baseline", "ann"]) != 0
    assert "--device sim has none" in capsys.readouterr().err
    assert not (run / "baselines").exists()


def test_eval_with_an_existing_baseline_loads_no_torch(run: Path, mnist_data_dir: Path,
                                                       tmp_path: Path) -> None:
    """Training happens once; evaluating against a baseline that exists imports no torch
    (a run without model.pt, so the float reference does not need it either)."""
    from tests.test_fast_start import _probe

    prepare_baseline(run, "ann-sparse", data_dir=mnist_data_dir)  # trains (torch, here)
    (run / "model.pt").unlink()
    rc, heavy, err = _probe("eval", str(run), "--device", "host", "--samples", "5",
                            "--baseline", "ann-sparse", "--data-dir", str(mnist_data_dir),
                            "--json")
    assert rc == 0, err[-1500:]
    assert "torch" not in heavy
    rep = json.loads((run / "report.json").read_text())
    assert rep["baselines"]["ann-sparse"]["agreement"] == 1.0
    assert rep["baselines"]["ann-sparse"]["trained_here"] is True


def test_run_with_baseline(tmp_path: Path, mnist_data_dir: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """``edgesnn run --baseline ann``: the firmware stage builds the SNN + ANN image; a second
    run skips every producing stage and keeps the baseline."""
    argv = ["run", "--out", str(tmp_path / "r"), "--samples", "20", "--epochs", "1",
            "--train-limit", "1000", "--hidden", "16", "--steps", "4", "--baseline", "ann",
            "--data-dir", str(mnist_data_dir), "--json"]
    for again in (False, True):
        assert cli_main(argv) == 0
        rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert rep["agreement"] == 1.0 and rep["samples"] == 20
        b = rep["baselines"]["ann"]
        assert b["agreement"] == 1.0 and b["samples"] == 20
        assert b["device_accuracy"] == b["golden_accuracy"]
        skipped = [k for k, s in rep["stages"].items() if s["skipped"]]
        assert skipped == (["train", "compress", "export+build", "launch+eval"] if again
                           else [])

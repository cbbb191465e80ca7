"""ONNX export (float step / unrolled, integer) checked with onnxruntime against torch and the
golden simulator; ONNX import round trip; bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesnn.cli import main
from edgesnn.data.datasets import load_dataset
from edgesnn.data.encoders import encode
from edgesnn.graph import golden, synth
from edgesnn.graph.ir import SpikeGraph
from edgesnn.interop import onnx_graph
from edgesnn.interop.importers import import_file
from edgesnn.interop.params import InteropError, from_model, readout
from edgesnn.snn.checkpoint import load

ort = pytest.importorskip("onnxruntime")
N_SAMPLES = 64


@pytest.fixture(scope="module")
def float_run(tiny_run: Path) -> Path:
    return Path(tiny_run)


@pytest.fixture(scope="module")
def samples(mnist_data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("mnist", "test", mnist_data_dir, limit=N_SAMPLES)
    return ds.images, ds.labels


def _session(path: Path):  # noqa: ANN202
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _torch_reference(run: Path, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model, _ = load(run)
    cfg = model.config
    x = encode(torch.from_numpy(pixels), cfg.encoder, cfg.steps, cfg.encoder_seed)
    with torch.no_grad():
        out = model(x)
    return x.numpy(), out.counts.numpy(), out.v_final.numpy()


def test_float_step_and_unrolled_match_torch(float_run: Path, samples, tmp_path: Path,
                                             record_property) -> None:
    pixels, labels = samples
    x, counts_t, v_t = _torch_reference(float_run, pixels)
    pred_t = readout(counts_t, v_t)
    assert counts_t.sum() > 0, "the reference model never spikes; the comparison would be empty"

    step_path, unrolled_path = tmp_path / "step.onnx", tmp_path / "unrolled.onnx"
    assert main(["export", str(float_run), "--target", "onnx", "--out", str(step_path)]) == 0
    assert main(["export", str(float_run), "--target", "onnx", "--out", str(unrolled_path),
                 "--option", "mode=unrolled"]) == 0

    counts_u, v_u = _session(unrolled_path).run(None, {"x": x})
    step = _session(step_path)
    names = [i.name for i in step.get_inputs()]
    assert names[0] == "x" and all(n.startswith("v") for n in names[1:])
    state = {i.name: np.zeros((x.shape[1], i.shape[1]), np.float32) for i in step.get_inputs()[1:]}
    counts_s = np.zeros_like(counts_t)
    for t in range(x.shape[0]):
        outs = step.run(None, {"x": x[t], **state})
        counts_s += outs[0]
        state = dict(zip(state, outs[1:], strict=True))
    v_s = outs[-1]

    diff_u, diff_s = float(np.abs(v_u - v_t).max()), float(np.abs(v_s - v_t).max())
    record_property("max_abs_v_diff_unrolled", diff_u)
    record_property("max_abs_v_diff_step", diff_s)
    print(f"onnx vs torch on {len(labels)} MNIST samples: max |v| diff unrolled {diff_u:.3g}, "
          f"step {diff_s:.3g}")
    np.testing.assert_array_equal(readout(counts_u, v_u), pred_t)
    np.testing.assert_array_equal(readout(counts_s, v_s), pred_t)
    np.testing.assert_array_equal(counts_u, counts_t)
    np.testing.assert_array_equal(counts_s, counts_t)
    assert diff_u < 1e-3 and diff_s < 1e-3


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("encoder", ["rate", "latency", "direct"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_integer_onnx_equals_golden(encoder: str, reset: str, bias: bool,
                                    tmp_path: Path) -> None:
    graph = synth.random_graph(7, input_size=40, hidden=(24,), n_classes=6, steps=12,
                               encoder=encoder, reset=reset, per_neuron=(reset == "zero"),
                               density=0.6, bias=bias)
    _check_integer_onnx(graph, synth.random_pixels(3, 32, 40), tmp_path)


def _check_integer_onnx(graph: SpikeGraph, pixels: np.ndarray, tmp_path: Path) -> None:
    """The integer ONNX graph of ``graph`` equals the golden simulator on ``pixels``."""
    path = tmp_path / "int.onnx"
    onnx_graph.save(onnx_graph.integer_model(graph), path)
    counts, v_final = _session(path).run(None, {"pixels": pixels})
    ref = golden.simulate(graph, pixels)
    assert ref.counts.sum() > 0
    np.testing.assert_array_equal(counts, ref.counts)
    np.testing.assert_array_equal(v_final, ref.v_final)
    np.testing.assert_array_equal(readout(counts, v_final), ref.pred)


@pytest.mark.parametrize(("reset", "fire"), [("subtract_delayed", "gt"), ("none", "ge"),
                                             ("zero", "ge"), ("subtract_delayed", "ge")])
def test_integer_onnx_peer_rules_equal_golden(reset: str, fire: str, tmp_path: Path) -> None:
    graph = synth.random_graph(8, input_size=40, hidden=(24,), n_classes=6, steps=12,
                               reset=reset, fire=fire, bias=True, per_neuron=True)
    _check_integer_onnx(graph, synth.random_pixels(4, 32, 40), tmp_path)


def test_integer_onnx_of_compressed_run(tiny_esg_run: Path, samples, tmp_path: Path) -> None:
    run = Path(tiny_esg_run)
    pixels, _ = samples
    out = tmp_path / "int.onnx"
    assert main(["export", str(run), "--target", "onnx", "--out", str(out),
                 "--option", "integer=true"]) == 0
    counts, v_final = _session(out).run(None, {"pixels": pixels})
    from edgesnn.graph.esg import read_esg

    ref = golden.simulate(read_esg(run / "model.esg"), pixels)
    np.testing.assert_array_equal(counts, ref.counts)
    np.testing.assert_array_equal(v_final, ref.v_final)
    np.testing.assert_array_equal(readout(counts, v_final), ref.pred)


def test_onnx_import_round_trip(float_run: Path, samples, tmp_path: Path) -> None:
    pixels, _ = samples
    path = tmp_path / "m.onnx"
    main(["export", str(float_run), "--target", "onnx", "--out", str(path)])
    out = tmp_path / "imported"
    summary = import_file(path, out)
    assert summary["format"] == "onnx"
    a, _ = load(float_run)
    b, _ = load(out)
    px = torch.from_numpy(pixels)
    with torch.no_grad():
        np.testing.assert_array_equal(a.predict(px).numpy(), b.predict(px).numpy())
    fa, fb = from_model(a), from_model(b)
    for la, lb in zip(fa.layers, fb.layers, strict=True):
        np.testing.assert_array_equal(la.weight, lb.weight)


def test_onnx_export_options_and_bad_files(float_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.onnx"
    assert main(["export", str(float_run), "--target", "onnx", "--out", str(out),
                 "--option", "mode=sideways"]) == 2
    assert "mode='sideways'" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(float_run), "--target", "onnx", "--out", str(out), "--json",
                 "--option", "mode=unrolled"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == out.stat().st_size and summary["mode"] == "unrolled"

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not a protobuf at all" * 10)
    with pytest.raises(InteropError):
        import_file(junk, tmp_path / "r1")
    assert not (tmp_path / "r1").exists()

    # NaN weight -> one error naming the initializer, nothing written
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(out))
    w0 = next(t for t in model.graph.initializer if t.name == "W0")
    arr = numpy_helper.to_array(w0).copy()
    arr[0, 0] = np.nan
    w0.CopyFrom(numpy_helper.from_array(arr, "W0"))
    bad = tmp_path / "nan.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(InteropError, match="W0"):
        import_file(bad, tmp_path / "r2")
    assert not (tmp_path / "r2").exists()


VARIANTS = [("lif", "zero", "rate", True, False), ("if", "subtract", "latency", False, False),
            ("lif", "subtract", "direct", True, False), ("if", "zero", "direct", False, False),
            ("lif", "subtract", "rate", False, True), ("lif", "zero", "direct", True, True)]


@pytest.mark.parametrize(("neuron", "reset", "encoder", "per_neuron", "bias"), VARIANTS)
def test_float_variants(neuron: str, reset: str, encoder: str, per_neuron: bool, bias: bool,
                        samples, tmp_path: Path) -> None:
    from edgesnn.interop.params import save_run
    from edgesnn.interop.synth import random_float_snn

    snn = random_float_snn(5, hidden=(24, 16), neuron=neuron, reset=reset, encoder=encoder,
                           per_neuron=per_neuron, bias=bias)
    run = tmp_path / "run"
    save_run(snn, run, {})
    model, _ = load(run)
    assert model.config.per_neuron == per_neuron and model.config.neuron == neuron
    assert model.config.bias == bias
    pixels, _ = samples
    with torch.no_grad():
        ref = model.forward_pixels(torch.from_numpy(pixels))
    assert ref.counts.sum() > 0
    x = encode(torch.from_numpy(pixels), encoder, snn.steps, snn.encoder_seed).numpy()
    path = tmp_path / "u.onnx"
    assert main(["export", str(run), "--target", "onnx", "--out", str(path),
                 "--option", "mode=unrolled"]) == 0
    counts, v_final = _session(path).run(None, {"x": x})
    np.testing.assert_array_equal(counts, ref.counts.numpy())
    np.testing.assert_allclose(v_final, ref.v_final.numpy(), atol=1e-4)
    np.testing.assert_array_equal(readout(counts, v_final), ref.prediction().numpy())


def test_export_refuses_broken_runs(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "m.onnx"
    assert main(["export", str(run), "--target", "onnx", "--out", str(out)]) == 2
    assert "model.pt" in capsys.readouterr().err
    (run / "model.pt").write_bytes(b"garbage")
    assert main(["export", str(run), "--target", "onnx", "--out", str(out)]) == 2
    assert "not an edgesnn checkpoint" in capsys.readouterr().err
    assert main(["export", str(run), "--target", "onnx", "--out", str(out),
                 "--option", "integer=true"]) == 2
    assert "model.esg" in capsys.readouterr().err
    (run / "model.esg").write_bytes(b"ESNG" + bytes(60))
    assert main(["export", str(run), "--target", "onnx", "--out", str(out),
                 "--option", "integer=true"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("reset", "fire"), [("subtract_delayed", "gt"), ("none", "ge"),
                                             ("subtract_delayed", "ge")])
def test_float_peer_rules_step_and_unrolled(reset: str, fire: str, samples,
                                            tmp_path: Path) -> None:
    """The float graphs of the peers' rules (snnTorch's delayed subtract, no reset, >=):
    unrolled, and streamed step by step with each layer's last spikes as extra state."""
    from edgesnn.interop.params import save_run
    from edgesnn.interop.synth import random_float_snn

    snn = random_float_snn(6, hidden=(24,), reset=reset, bias=True, per_neuron=True)
    snn.fire = fire
    run = tmp_path / "run"
    save_run(snn, run, {})
    pixels, _ = samples
    x, counts_t, v_t = _torch_reference(run, pixels)
    assert counts_t.sum() > 0
    paths = {m: tmp_path / f"{m}.onnx" for m in ("step", "unrolled")}
    for mode, path in paths.items():
        assert main(["export", str(run), "--target", "onnx", "--out", str(path),
                     "--option", f"mode={mode}"]) == 0
    counts_u, v_u = _session(paths["unrolled"]).run(None, {"x": x})
    step = _session(paths["step"])
    state = {i.name: np.zeros((x.shape[1], i.shape[1]), np.float32)
             for i in step.get_inputs()[1:]}
    assert any(n.startswith("r") for n in state) == (reset == "subtract_delayed")
    counts_s = np.zeros_like(counts_t)
    for t in range(x.shape[0]):
        outs = step.run(None, {"x": x[t], **state})
        counts_s += outs[0]
        state = dict(zip(state, outs[1:], strict=True))
    np.testing.assert_array_equal(counts_u, counts_t)
    np.testing.assert_array_equal(counts_s, counts_t)
    np.testing.assert_allclose(v_u, v_t, atol=1e-4)


def test_integer_onnx_of_cuba_lif_equals_golden(tmp_path: Path) -> None:
    """The integer ONNX graph runs the neuron step of edgesnn/graph/neurons.py, CubaLIF's
    synaptic current included."""
    for seed, reset in enumerate(("subtract_delayed", "zero", "none")):
        graph = synth.random_graph(seed, input_size=20, hidden=(9,), n_classes=4, steps=6,
                                   neuron="cuba_lif", reset=reset, bias=True, per_neuron=True)
        _check_integer_onnx(graph, synth.random_pixels(seed, 32, 20), tmp_path)


def test_float_unrolled_onnx_of_cuba_lif_equals_torch(tmp_path: Path) -> None:
    """The float unrolled graph carries CubaLIF's synaptic current across the steps (the neuron
    step of edgesnn/graph/neurons.py on ONNX nodes, snnTorch's operation order): counts equal
    the torch model's; the streaming step graph, whose I/O has one state per layer, refuses."""
    from edgesnn.data.encoders import encode
    from edgesnn.interop.params import InteropError, to_model
    from edgesnn.interop.synth import random_float_snn

    snn = random_float_snn(6, hidden=(16,), reset="subtract_delayed", bias=True,
                           neuron="cuba_lif", per_neuron=True)
    pixels = synth.random_pixels(6, 24, 784)
    x = encode(torch.from_numpy(pixels), "rate", snn.steps, snn.encoder_seed)
    with torch.no_grad():
        ref = to_model(snn)(x)
    path = tmp_path / "cuba.onnx"
    onnx_graph.save(onnx_graph.float_unrolled_model(snn), path)
    counts, v_final = _session(path).run(None, {"x": x.numpy()})
    assert float(ref.counts.sum()) > 0
    np.testing.assert_array_equal(counts, ref.counts.numpy())
    np.testing.assert_allclose(v_final, ref.v_final.numpy(), rtol=0, atol=1e-5)
    with pytest.raises(InteropError, match="cuba_lif"):
        onnx_graph.float_step_model(snn)

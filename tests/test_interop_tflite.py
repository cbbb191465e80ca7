"""TFLite export (no TensorFlow): float / int8-weight SNN vs torch and numpy references in the
TFLite interpreter, and the int8 ReLU ANN baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesnn.cli import main
from edgesnn.data.datasets import load_dataset
from edgesnn.data.encoders import encode
from edgesnn.interop import tflite_graph
from edgesnn.interop.params import from_model, readout, to_model
from edgesnn.snn.checkpoint import load

try:
    from edgesnn.interop.tflite_run import interpreter_class, run_once, stream_steps

    interpreter_class()
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"no TFLite interpreter importable ({exc}); install ai-edge-litert",
                allow_module_level=True)


@pytest.fixture(scope="module")
def encoded(tiny_run: Path, mnist_data_dir: Path):  # noqa: ANN201
    ds = load_dataset("mnist", "test", mnist_data_dir, limit=64)
    model, _ = load(tiny_run)
    cfg = model.config
    x = encode(torch.from_numpy(ds.images), cfg.encoder, cfg.steps, cfg.encoder_seed)
    with torch.no_grad():
        out = model(x)
    return x.numpy(), out.counts.numpy(), out.v_final.numpy(), ds.labels


def _export(run: Path, out: Path, *opts: str) -> bytes:
    args = ["export", str(run), "--target", "tflite", "--out", str(out)]
    for o in opts:
        args += ["--option", o]
    assert main(args) == 0
    return out.read_bytes()


def test_float_tflite_matches_torch(tiny_run: Path, encoded, tmp_path: Path,
                                    record_property) -> None:
    x, counts_t, v_t, _ = encoded
    unrolled = _export(tiny_run, tmp_path / "u.tflite", "mode=unrolled")
    step = _export(tiny_run, tmp_path / "s.tflite")
    outs = run_once(unrolled, {"x": x})
    counts_s, v_s = stream_steps(step, x)
    diff = max(float(np.abs(outs["v_final"] - v_t).max()), float(np.abs(v_s - v_t).max()))
    record_property("tflite_float_max_abs_v_diff", diff)
    print(f"tflite float vs torch on {x.shape[1]} samples: max |v| diff {diff:.3g}")
    assert counts_t.sum() > 0
    np.testing.assert_array_equal(outs["counts"], counts_t)
    np.testing.assert_array_equal(counts_s, counts_t)
    np.testing.assert_array_equal(readout(outs["counts"], outs["v_final"]),
                                  readout(counts_t, v_t))
    assert diff < 1e-3


def test_int8_weight_tflite(tiny_run: Path, encoded, tmp_path: Path, record_property) -> None:
    x, counts_t, v_t, labels = encoded
    data = _export(tiny_run, tmp_path / "q.tflite", "mode=unrolled", "quant=int8")
    float_bytes = len(_export(tiny_run, tmp_path / "f.tflite", "mode=unrolled"))
    assert len(data) < 0.4 * float_bytes  # int8 weights: about a quarter of the float file
    outs = run_once(data, {"x": x})
    ref = tflite_graph.int8_weight_snn(from_model(load(tiny_run)[0]))
    with torch.no_grad():  # the torch model holding exactly the int8-rounded weights
        out_r = to_model(ref)(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    counts_r, v_r = out_r.counts.numpy(), out_r.v_final.numpy()
    np.testing.assert_array_equal(outs["counts"], counts_r)
    np.testing.assert_allclose(outs["v_final"], v_r, atol=1e-3)
    agree = float((readout(outs["counts"], outs["v_final"]) == readout(counts_t, v_t)).mean())
    record_property("tflite_int8_weight_vs_float_agreement", agree)
    assert agree >= 0.9


def test_flatbuffer_uses_builtin_ops_only(tiny_run: Path, tmp_path: Path) -> None:
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    data = _export(tiny_run, tmp_path / "s.tflite", "quant=int8")
    model = tflite.Model.GetRootAs(data, 0)
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    ops = {names[model.OperatorCodes(i).BuiltinCode()] for i in range(model.OperatorCodesLength())}
    assert ops == {"FULLY_CONNECTED", "MUL", "ADD", "SUB", "GREATER", "CAST", "DEQUANTIZE"}
    meta = model.Metadata(0)
    assert meta.Name() == b"edgesnn"
    info = json.loads(model.Buffers(meta.Buffer()).DataAsNumpy().tobytes())
    assert info["reset"] == "subtract" and info["quant"] == "int8"


def test_ann_baseline(tiny_run: Path, mnist_data_dir: Path, tmp_path: Path,
                      record_property) -> None:
    from edgesnn.interop.ann import ann_baseline

    out = tmp_path / "ann.tflite"
    r = ann_baseline(tiny_run, mnist_data_dir, train_limit=3000, test_limit=500, epochs=2,
                     out=out)
    for key in ("accuracy", "float_accuracy", "snn_accuracy", "macs", "snn_synaptic_ops"):
        record_property(f"ann_{key}", r[key])
    print("ANN baseline:", json.dumps(r))
    assert r["tflite_bytes"] == out.stat().st_size
    assert r["macs"] == 784 * 64 + 64 * 10
    assert r["accuracy"] > 0.8 and abs(r["accuracy"] - r["float_accuracy"]) <= 0.03
    assert r["snn_synaptic_ops"] > 0


def test_bad_options(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.tflite"
    for opt in ("quant=int4", "mode=both", "model=cnn", "colour=blue"):
        assert main(["export", str(tiny_run), "--target", "tflite", "--out", str(out),
                     "--option", opt]) == 2
        err = capsys.readouterr().err
        assert "accepted" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("neuron", "reset", "encoder", "per_neuron", "bias"),
                         [("lif", "zero", "rate", True, False),
                          ("if", "subtract", "direct", False, False),
                          ("lif", "subtract", "rate", False, True),
                          ("lif", "zero", "direct", True, True)])
def test_float_variants(neuron: str, reset: str, encoder: str, per_neuron: bool, bias: bool,
                        mnist_data_dir: Path, tmp_path: Path) -> None:
    from edgesnn.interop.params import save_run
    from edgesnn.interop.synth import random_float_snn

    snn = random_float_snn(3, hidden=(24,), neuron=neuron, reset=reset, encoder=encoder,
                           per_neuron=per_neuron, bias=bias)
    run = tmp_path / "run"
    save_run(snn, run, {})
    pixels = load_dataset("mnist", "test", mnist_data_dir, limit=48).images
    model, _ = load(run)
    with torch.no_grad():
        ref = model.forward_pixels(torch.from_numpy(pixels))
    assert ref.counts.sum() > 0
    x = encode(torch.from_numpy(pixels), encoder, snn.steps, snn.encoder_seed).numpy()
    counts, v_final = stream_steps(_export(run, tmp_path / "s.tflite"), x)
    np.testing.assert_array_equal(counts, ref.counts.numpy())
    np.testing.assert_allclose(v_final, ref.v_final.numpy(), atol=1e-4)

"""What does a spiking 784-256-10 network cost on a Cortex-M3, against a plain dense int8 MLP?

Runs on QEMU ``lm3s6965evb`` with ``-icount shift=7`` (SysTick counts instructions; the
figures are *instructions*, not cycles) and measures, per inference:

* the edgesnn firmware (``edgesnn export --target c`` + ``make``) for the network stored
  dense int8, and the same network pruned to 10 % of its weights and stored sparse,
  on real MNIST test digits at several input intensities (to spread the spike rate);
  every RESULT is checked bit for bit against the golden simulator;
* the same network as a straightforward dense int8 fully connected kernel
  (784 -> 256 ReLU -> 10, int32 accumulate; ``firmware/ports/lm3s6965evb/bench/dense_ref.c``)
  built with the same port, startup and flags (-Os), checked against its numpy twin;

and prints the SNN / dense ratio, a least-squares fit ``instructions = a + b * rate`` and
the spike rate at which the SNN breaks even with the dense kernel, plus the footprint:
runtime code bytes at -Os (``arm-none-eabi-size`` of the runtime objects) and RAM = arena +
stack.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/device_cost.py
        [--run-dir RUN [--sparse-run-dir RUN2]] [--samples 12] [--steps 25] [--opt Os|O2]
        [--json]
    ... benchmarks/device_cost.py --boards all [--board-samples 1000] [--sparse-run-dir RUN]

``--boards`` runs the sparse model instead on each emulated board (Cortex-M0 ``microbit``,
M3 ``lm3s6965evb``, M4F ``mps2-an386``, M33 ``mps2-an505``, M55 ``mps3-an547``), checks every
result against golden, and prints one flash / RAM / instructions-per-inference table.

``--opt`` builds the edgesnn firmware *and* the dense reference with that optimisation level
(default -Os, the firmware's own); the footprint is given for the whole runtime and for its
core (validation + inference + CRC-32, what a deployed model needs besides the link).

Without ``--run-dir`` the network is ``edgesnn.graph.synth.random_graph`` (thresholds
calibrated for ~20 % hidden activity). Spike rate = (input spikes + hidden spikes) /
(T * (784 + 256)): the fraction of presynaptic (neuron, step) slots that fire.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgesnn.build import build_project  # noqa: E402
from edgesnn.devices import load_device, write_board_files  # noqa: E402
from edgesnn.export.base import ExportError  # noqa: E402
from edgesnn.export.c import RUNTIME_SRCS  # noqa: E402
from edgesnn.graph import esg  # noqa: E402
from edgesnn.graph.golden import simulate  # noqa: E402
from edgesnn.graph.ir import SpikeGraph, Storage  # noqa: E402
from edgesnn.graph.synth import random_graph  # noqa: E402
from edgesnn.host import protocol as proto  # noqa: E402
from edgesnn.host.launch import launch  # noqa: E402

log = logging.getLogger("device_cost")
DEVICE = "lm3s6965evb"
BENCH_DIR = ROOT / "firmware" / "ports" / DEVICE / "bench"
RUNTIME_DIR = ROOT / "firmware" / "runtime"
PROFILE = load_device(DEVICE)
# the profile's core flags (its -O level comes from --opt) for the per-object footprint
M3_FLAGS = [f for f in PROFILE.build.cflags if not f.startswith("-O")] + [
    "-ffreestanding", "-std=c99"]
CORE = ("esnn_model.c", "esnn_infer.c", "esnn_crc.c")  # validation + inference + CRC-32
STACK_BYTES = PROFILE.memory.stack_bytes  # reserved at the top of RAM by the linker script
SCALES = (1.0, 0.5, 0.25)  # input intensity multipliers that spread the spike rate
#: every emulated MCU profile, smallest core first (``--boards all``): AVR in simavr (exact
#: CPU cycles), the Cortex-M cores in QEMU (instructions, -icount)
BOARDS = ("arduino-mega2560", "microbit", "lm3s6965evb", "mps2-an386", "mps2-an505",
          "mps3-an547")


# ------------------------------------------------------------------------------------------
# the networks


def load_graph(run_dir: Path | None, steps: int, seed: int) -> SpikeGraph:
    if run_dir is not None:
        graph = esg.read_esg(run_dir / "model.esg")
        shapes = [(layer.n_in, layer.n_out) for layer in graph.layers]
        if len(shapes) != 2:
            raise SystemExit(f"{run_dir}/model.esg has layers {shapes}; this benchmark needs "
                             "one hidden layer (e.g. 784-256-10)")
        for layer in graph.layers:
            layer.storage = Storage.DENSE
            layer.weight_bits = 8
        return graph.validate()
    return random_graph(seed, input_size=784, hidden=(256,), n_classes=10, steps=steps)


def prune(graph: SpikeGraph, keep: float) -> SpikeGraph:
    """Magnitude-prune every layer to ``keep`` of its weights and store it sparse."""
    layers = []
    for layer in graph.layers:
        w = layer.weights.astype(np.int16)
        k = max(1, int(round(keep * w.size)))
        cut = np.partition(np.abs(w).ravel(), w.size - k)[w.size - k]
        pruned = np.where(np.abs(w) >= cut, w, 0).astype(np.int8)
        layers.append(type(layer)(weights=pruned, threshold=layer.threshold.copy(),
                                  leak=layer.leak.copy(), neuron=layer.neuron,
                                  reset=layer.reset, weight_bits=8, storage=Storage.SPARSE,
                                  name=layer.name))
    return SpikeGraph(input_size=graph.input_size, steps=graph.steps, layers=layers,
                      encoder=graph.encoder, metadata=dict(graph.metadata)).validate()


def rescale_thresholds(sparse: SpikeGraph, dense: SpikeGraph, pixels: np.ndarray) -> None:
    """Scale the pruned net's thresholds (bisection on one factor per layer) so that each
    layer fires at the dense net's rate on ``pixels``: pruning removes most of the current,
    and without this the pruned layers would fall nearly silent."""
    want = simulate(dense, pixels).spikes.mean(axis=0)
    for li, layer in enumerate(sparse.layers):
        orig = layer.threshold.astype(np.float64)
        lo, hi = -8.0, 3.0  # log2 of the factor
        for _ in range(16):
            mid = (lo + hi) / 2
            layer.threshold = np.maximum(1, np.rint(orig * 2.0 ** mid)).astype(np.int32)
            have = simulate(sparse, pixels).spikes[:, li].mean()
            if have > want[li]:
                lo = mid  # too many spikes: raise the threshold
            else:
                hi = mid
        layer.threshold = np.maximum(1, np.rint(orig * 2.0 ** hi)).astype(np.int32)


# ------------------------------------------------------------------------------------------
# devices


class Link:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import serial

        self.port = serial.serial_for_url(url, timeout=0.005)
        self.timeout = timeout
        self.decoder = proto.FrameDecoder()
        self.seq = 0

    def request(self, make: Any) -> proto.Message:
        self.seq = self.seq % 0xFFFE + 1
        self.port.write(make(self.seq).encode())
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for item in self.decoder.feed(self.port.read(4096)):
                if isinstance(item, proto.Frame) and item.seq == self.seq:
                    msg = proto.decode_message(item)
                    if isinstance(msg, proto.DeviceError):
                        raise RuntimeError(f"device error {msg.name}")
                    assert msg is not None
                    return msg
        raise TimeoutError(f"no reply to seq {self.seq}")

    def hello(self, tries: int = 10) -> proto.Hello:
        """PING until HELLO (a PING sent while QEMU is still starting can go unanswered)."""
        timeout, self.timeout = self.timeout, 5.0
        try:
            for _ in range(tries - 1):
                try:
                    msg = self.request(proto.ping)
                except TimeoutError:
                    continue
                assert isinstance(msg, proto.Hello)
                return msg
        finally:
            self.timeout = timeout
        msg = self.request(proto.ping)
        assert isinstance(msg, proto.Hello)
        return msg

    def close(self) -> None:
        self.port.close()


@dataclass
class SnnRun:
    name: str
    cycles: np.ndarray  # instructions per inference
    rate: np.ndarray  # presynaptic spike rate per inference
    input_rate: np.ndarray
    hidden_rate: np.ndarray
    ops: np.ndarray  # synaptic ops per inference
    text_bytes: int
    esg_bytes: int
    arena_bytes: int
    bss_bytes: int
    data_bytes: int


def run_snn(name: str, graph: SpikeGraph, pixels: np.ndarray, work: Path,
            opt: str = "-Os", device: str = DEVICE) -> SnnRun:
    from edgesnn.export.c import TARGET

    run_dir = work / f"{name}-run"
    run_dir.mkdir()
    blob = esg.encode(graph)
    (run_dir / "model.esg").write_bytes(blob)
    project = work / f"{name}-project"
    TARGET.export(run_dir, project, device=device)
    built = build_project(project, make_args=(f"EXTRA_CFLAGS={opt}",))
    gold = simulate(graph, pixels)
    cycles = []
    with launch(device, built.elf) as session:
        link = Link(session.url)
        try:
            hello = link.hello()
            assert hello.model_hash == esg.header_hash(blob)
            want_unit = proto.CycleUnit(load_device(device).cycle_unit_code)
            if hello.cycle_unit != want_unit:
                raise RuntimeError(f"cycle unit {hello.cycle_unit.name}; the profile says "
                                   f"{want_unit.name}")
            for k in range(len(pixels)):
                r = link.request(lambda s, k=k: proto.infer(s, pixels[k].tobytes()))
                assert isinstance(r, proto.InferResult)
                got = (r.prediction, list(r.counts), list(r.ops), list(r.spikes),
                       r.input_spikes)
                want = (int(gold.pred[k]), gold.counts[k].tolist(), gold.ops[k].tolist(),
                        gold.spikes[k].tolist(), int(gold.input_spikes[k]))
                if got != want:
                    raise RuntimeError(f"{name} sample {k}: device {got} != golden {want}")
                cycles.append(r.cycles)
            again = link.request(lambda s: proto.infer(s, pixels[0].tobytes()))
            assert isinstance(again, proto.InferResult)
            if again.cycles != cycles[0]:
                raise RuntimeError(f"{name}: instruction count not repeatable "
                                   f"({again.cycles} != {cycles[0]})")
        finally:
            link.close()
    t = graph.steps
    n_hid = graph.layers[0].n_out
    input_rate = gold.input_spikes / (t * graph.input_size)
    hidden_rate = gold.spikes[:, 0] / (t * n_hid)
    rate = (gold.input_spikes + gold.spikes[:, 0]) / (t * (graph.input_size + n_hid))
    return SnnRun(name, np.array(cycles, dtype=np.int64), rate, input_rate, hidden_rate,
                  gold.ops.sum(axis=1), built.text, len(blob), graph.arena_bytes(), built.bss,
                  built.data)


def ref_shift(graph: SpikeGraph, pixels: np.ndarray) -> int:
    """Requantization shift so the hidden activations of these pixels fit uint8."""
    acc = pixels.astype(np.int64) @ graph.layers[0].weights.astype(np.int64)
    top = float(np.percentile(np.maximum(acc, 0), 99)) or 1.0
    return max(0, int(np.ceil(np.log2(top / 255.0))))


def ref_twin(graph: SpikeGraph, shift: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    acc = pixels.astype(np.int64) @ graph.layers[0].weights.astype(np.int64)
    h = np.minimum(255, np.maximum(acc, 0) >> shift)
    y = h @ graph.layers[1].weights.astype(np.int64)
    return y, np.argmax(y, axis=1)


def write_ref_header(graph: SpikeGraph, shift: int, path: Path) -> None:
    w0 = graph.layers[0].weights.T.astype(np.int8)  # [n_hid][n_in]
    w1 = graph.layers[1].weights.T.astype(np.int8)  # [n_out][n_hid]

    def arr(name: str, w: np.ndarray) -> str:
        body = ",".join(str(int(v)) for v in w.ravel())
        return f"static const int8_t {name}[{w.size}] = {{{body}}};\n"

    path.write_text(
        "/* generated by benchmarks/device_cost.py */\n#include <stdint.h>\n"
        f"#define REF_N_IN {graph.input_size}u\n#define REF_N_HID {w0.shape[0]}u\n"
        f"#define REF_N_OUT {w1.shape[0]}u\n#define REF_SHIFT0 {shift}\n"
        + arr("ref_w0", w0) + arr("ref_w1", w1))


def run_ref(graph: SpikeGraph, pixels: np.ndarray, work: Path, opt: str = "-Os") -> dict[str, Any]:
    out = work / "ref"
    out.mkdir()
    shift = ref_shift(graph, pixels)
    write_ref_header(graph, shift, out / "ref_weights.h")
    write_board_files(PROFILE, out)
    subprocess.run(["make", "-s", "-C", str(BENCH_DIR), f"OUT={out}", f"OPT={opt}"], check=True,
                   capture_output=True, timeout=300)
    elf = out / "dense_ref.elf"
    want_y, want_pred = ref_twin(graph, shift, pixels)
    n_out = graph.layers[1].n_out
    cycles = []
    import serial

    with launch(DEVICE, elf) as session:
        port = serial.serial_for_url(session.url, timeout=30)
        try:
            for k in range(len(pixels)):
                port.write(pixels[k].tobytes())
                data = port.read(6 + 4 * n_out)
                if len(data) != 6 + 4 * n_out:
                    raise TimeoutError(f"dense reference answered {len(data)} bytes")
                cyc, unit, pred = struct.unpack_from("<IBB", data)
                y = np.array(struct.unpack_from(f"<{n_out}i", data, 6))
                if unit != 1 or pred != want_pred[k] or not np.array_equal(y, want_y[k]):
                    raise RuntimeError(f"dense reference sample {k}: device ({pred}, {y}) != "
                                       f"numpy twin ({want_pred[k]}, {want_y[k]})")
                cycles.append(cyc)
        finally:
            port.close()
    size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                          check=True).stdout.splitlines()[1].split()
    return {"instructions": int(np.median(cycles)), "min": int(min(cycles)),
            "max": int(max(cycles)), "shift": shift, "text_bytes": int(size[0]),
            "macs": int(graph.input_size * graph.layers[0].n_out
                        + graph.layers[0].n_out * n_out)}


def runtime_footprint(work: Path, opt: str = "-Os") -> dict[str, Any]:
    """Code bytes of each runtime object for the Cortex-M3 (arm-none-eabi-size)."""
    out = work / f"objs{opt}"
    out.mkdir()
    objs = {}
    for src in sorted(RUNTIME_DIR / name for name in RUNTIME_SRCS):  # what the firmware links
        obj = out / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *M3_FLAGS, opt, f"-I{RUNTIME_DIR}",
                        "-DESNN_MAX_LAYERS=2", "-DESNN_MAX_CLASSES=10", "-c", str(src),
                        "-o", str(obj)], check=True, capture_output=True)
        cols = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()
        objs[src.name] = {"text": int(cols[0]), "data": int(cols[1]), "bss": int(cols[2])}
    return {"opt": opt, "objects": objs, "text_total": sum(o["text"] for o in objs.values()),
            "data_total": sum(o["data"] for o in objs.values()),
            "core_text": sum(objs[n]["text"] for n in CORE if n in objs)}


# ------------------------------------------------------------------------------------------


def fit(run: SnnRun, ref_instr: int) -> dict[str, Any]:
    a_mat = np.stack([np.ones_like(run.rate), run.rate], axis=1)
    (a, b), *_ = np.linalg.lstsq(a_mat, run.cycles.astype(np.float64), rcond=None)
    pred = a + b * run.rate
    ss_res = float(((run.cycles - pred) ** 2).sum())
    ss_tot = float(((run.cycles - run.cycles.mean()) ** 2).sum()) or 1.0
    even = (ref_instr - a) / b if b > 0 else float("nan")
    return {"a": float(a), "b_per_unit_rate": float(b), "r2": 1 - ss_res / ss_tot,
            "break_even_rate": float(even)}


def summarize(run: SnnRun, ref: dict[str, Any], at_scale1: np.ndarray) -> dict[str, Any]:
    med = float(np.median(run.cycles[at_scale1]))
    return {
        "instructions_median": med,
        "instructions_min": int(run.cycles.min()), "instructions_max": int(run.cycles.max()),
        "ratio_vs_dense_ref": med / ref["instructions"],
        "spike_rate_median": float(np.median(run.rate[at_scale1])),
        "input_rate_median": float(np.median(run.input_rate[at_scale1])),
        "hidden_rate_median": float(np.median(run.hidden_rate[at_scale1])),
        "synaptic_ops_median": float(np.median(run.ops[at_scale1])),
        "instructions_per_op": med / max(1.0, float(np.median(run.ops[at_scale1]))),
        "fit": fit(run, ref["instructions"]),
        "image_text_bytes": run.text_bytes, "esg_bytes": run.esg_bytes,
        "code_bytes_excl_model": run.text_bytes - run.esg_bytes,
        "arena_bytes": run.arena_bytes, "static_ram_bytes": run.data_bytes + run.bss_bytes,
        "ram_arena_plus_stack": run.arena_bytes + STACK_BYTES,
    }


def run_boards(graph: SpikeGraph, pixels: np.ndarray, work: Path, opt: str,
               boards: list[str]) -> dict[str, Any]:
    """The same model on every board: bit-exact on every sample, flash / RAM of the image
    (``size``), instructions (QEMU) or CPU cycles (simavr) per inference, in ``unit``, and
    evaluation speed over the emulated link."""
    out: dict[str, Any] = {}
    for board in boards:
        log.info("%s: %d inferences ...", board, len(pixels))
        t0 = time.monotonic()
        try:
            run = run_snn(board, graph, pixels, work, opt, device=board)
        except ExportError as exc:  # the model does not fit this board: say why
            out[board] = {"skipped": str(exc)}
            continue
        wall = time.monotonic() - t0
        profile = load_device(board)
        out[board] = {
            "core": profile.core.arch, "clock_hz": profile.core.clock_hz,
            "unit": profile.run.cycle_unit,
            "flash_bytes": run.text_bytes + run.data_bytes,
            "flash_available": profile.memory.flash_bytes,
            "ram_bytes": run.data_bytes + run.bss_bytes,
            "ram_available": profile.memory.ram_bytes,
            "stack_bytes": profile.memory.stack_bytes, "esg_bytes": run.esg_bytes,
            "arena_bytes": run.arena_bytes,
            "median": float(np.median(run.cycles)),
            "mean": float(run.cycles.mean()),
            "min": int(run.cycles.min()), "max": int(run.cycles.max()),
            "per_synaptic_op": float(run.cycles.sum() / max(1, run.ops.sum())),
            "samples": len(pixels), "bit_exact": True,
            "samples_per_s_incl_build": len(pixels) / wall,
        }
    return out


def print_boards(r: dict[str, Any]) -> None:
    print(f"one model on every board: {r['network']} T={r['steps']}, {r['source']}, "
          f"{r['keep']:.0%} of weights kept, sparse int8; {r['samples']} MNIST test digits, "
          f"every counter bit-exact with golden; QEMU counts instructions (-icount), simavr CPU "
          f"cycles; {r['opt']}")
    print(f"{'board':17}{'core':11}{'unit':>13}{'flash B':>10}{'RAM B':>9}{'stack':>7}"
          f"{'median':>12}{'min':>11}{'max':>11}{'per SOP':>9}{'samples/s':>10}")
    for name, b in r["boards"].items():
        if "skipped" in b:
            print(f"{name:17}skipped: {b['skipped']}")
            continue
        print(f"{name:17}{b['core']:11}{b['unit']:>13}{b['flash_bytes']:>10,}{b['ram_bytes']:>9,}"
              f"{b['stack_bytes']:>7,}{b['median']:>12,.0f}"
              f"{b['min']:>11,}{b['max']:>11,}"
              f"{b['per_synaptic_op']:>9.2f}{b['samples_per_s_incl_build']:>10.1f}")
    print(f"(RAM = .data + .bss, incl. the stack reserve on Cortex-M, not on AVR where the "
          f"stack grows from the top of RAM; model {r['esg_bytes']:,} B, arena "
          f"{r['arena_bytes']:,} B; wall {r['wall_s']} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, help="RUN_DIR with a trained 784-H-10 model.esg")
    ap.add_argument("--sparse-run-dir", type=Path,
                    help="RUN_DIR with the same model compressed with --sparsity (else the "
                    "benchmark magnitude-prunes --run-dir to --keep)")
    ap.add_argument("--samples", type=int, default=12, help="MNIST test digits (default 12)")
    ap.add_argument("--steps", type=int, default=25, help="T for the random network")
    ap.add_argument("--keep", type=float, default=0.10, help="fraction kept when pruning")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--opt", default="Os", choices=("Os", "O2"),
                    help="gcc optimisation level of the firmware and the dense reference "
                    "(default Os)")
    ap.add_argument("--boards", metavar="NAME,...",
                    help="instead: run the sparse model on these emulated boards ('all': "
                    f"{','.join(BOARDS)}) and print one flash / RAM / instructions table")
    ap.add_argument("--board-samples", type=int, default=1000,
                    help="MNIST test digits per board with --boards (default 1000)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    args.opt = "-" + args.opt
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; this benchmark needs it")
    from edgesnn.data import load_dataset

    digits = load_dataset("mnist", "test", limit=args.samples).images
    pixels = np.concatenate([(digits.astype(np.float64) * s).astype(np.uint8) for s in SCALES])
    at_scale1 = np.arange(len(pixels)) < len(digits)
    dense = load_graph(args.run_dir, args.steps, args.seed)
    if args.sparse_run_dir is not None:
        sparse = esg.read_esg(args.sparse_run_dir / "model.esg")
        for layer in sparse.layers:
            layer.storage = Storage.SPARSE
        sparse.validate()
        args.keep = sum(la.nnz for la in sparse.layers) / sum(la.weights.size
                                                               for la in sparse.layers)
    else:
        sparse = prune(dense, args.keep)
        rescale_thresholds(sparse, dense, digits)
    t0 = time.monotonic()
    if args.boards:
        boards = list(BOARDS) if args.boards == "all" else args.boards.split(",")
        images = load_dataset("mnist", "test", limit=args.board_samples).images
        with tempfile.TemporaryDirectory(prefix="edgesnn-bench-") as tmp:
            per_board = run_boards(sparse, images, Path(tmp), args.opt, boards)
        result = {"network": [sparse.input_size] + [la.n_out for la in sparse.layers],
                  "steps": sparse.steps, "keep": args.keep, "opt": args.opt,
                  "source": str(args.sparse_run_dir or args.run_dir or
                                f"random_graph(seed={args.seed}) pruned"),
                  "samples": len(images), "esg_bytes": len(esg.encode(sparse)),
                  "arena_bytes": sparse.arena_bytes(), "boards": per_board,
                  "wall_s": round(time.monotonic() - t0, 1)}
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            print_boards(result)
        return 0
    with tempfile.TemporaryDirectory(prefix="edgesnn-bench-") as tmp:
        work = Path(tmp)
        log.info("dense int8 reference kernel ...")
        ref = run_ref(dense, digits, work, args.opt)
        runs = {}
        for name, graph in (("snn_dense", dense), ("snn_sparse", sparse)):
            log.info("%s: %d inferences in QEMU ...", name, len(pixels))
            runs[name] = run_snn(name, graph, pixels, work, args.opt)
        foot = runtime_footprint(work, args.opt)
    result: dict[str, Any] = {
        "device": DEVICE, "unit": "instructions (QEMU -icount shift=7, SysTick / 6.4)",
        "network": [dense.input_size, dense.layers[0].n_out, dense.layers[1].n_out],
        "steps": dense.steps, "opt": args.opt, "source": str(args.run_dir) if args.run_dir else
        f"random_graph(seed={args.seed})", "samples": len(digits), "scales": list(SCALES),
        "keep": args.keep, "bit_exact": True, "dense_ref": ref,
        "runtime_footprint": foot, "wall_s": round(time.monotonic() - t0, 1),
    }
    for name, run in runs.items():
        result[name] = summarize(run, ref, at_scale1)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_table(result)
    return 0


def print_table(r: dict[str, Any]) -> None:
    ref = r["dense_ref"]
    print(f"{r['device']} ({r['unit']}); network {'-'.join(map(str, r['network']))}, "
          f"T={r['steps']}, {r['source']}, {r['samples']} MNIST digits x scales {r['scales']}, "
          f"{r['opt']}")
    print(f"{'':28}{'instr/inf':>12}{'x dense':>9}{'rate':>8}{'in/hid rate':>14}"
          f"{'ops':>10}{'instr/op':>9}{'break-even':>11}{'R^2':>6}")
    print(f"{'dense int8 kernel':28}{ref['instructions']:>12,}{1.0:>9.2f}{'':>8}{'':>14}"
          f"{ref['macs']:>10,}{ref['instructions'] / ref['macs']:>9.2f}")
    for name in ("snn_dense", "snn_sparse"):
        s = r[name]
        label = "SNN dense int8" if name == "snn_dense" else f"SNN sparse ({r['keep']:.0%} kept)"
        print(f"{label:28}{s['instructions_median']:>12,.0f}{s['ratio_vs_dense_ref']:>9.2f}"
              f"{s['spike_rate_median']:>8.3f}"
              f"{s['input_rate_median']:>7.3f}/{s['hidden_rate_median']:<6.3f}"
              f"{s['synaptic_ops_median']:>10,.0f}{s['instructions_per_op']:>9.2f}"
              f"{s['fit']['break_even_rate']:>11.4f}{s['fit']['r2']:>6.2f}")
    foot = r["runtime_footprint"]
    print(f"runtime code at {foot['opt']} (Cortex-M3, arm-none-eabi-size of the objects): "
          f"{foot['text_total']:,} B text, {foot['data_total']} B data; core (validation "
          f"{foot['objects']['esnn_model.c']['text']:,} + inference "
          f"{foot['objects']['esnn_infer.c']['text']:,} + CRC-32 "
          f"{foot['objects']['esnn_crc.c']['text']:,}) = {foot['core_text']:,} B")
    for name in ("snn_dense", "snn_sparse"):
        s = r[name]
        print(f"{name}: image text {s['image_text_bytes']:,} B = model {s['esg_bytes']:,} B + "
              f"code {s['code_bytes_excl_model']:,} B; RAM = arena {s['arena_bytes']:,} B + "
              f"stack {STACK_BYTES:,} B = {s['ram_arena_plus_stack']:,} B "
              f"(static RAM incl. stack reserve {s['static_ram_bytes']:,} B)")
    print(f"dense reference image text {ref['text_bytes']:,} B; "
          f"bit-exact vs golden / numpy twin on every sample; wall {r['wall_s']} s")


if __name__ == "__main__":
    sys.exit(main())

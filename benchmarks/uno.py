"""An SNN on the Arduino Uno (ATmega328P: 32 KB flash, 2 KB RAM), measured in simavr.

Trains (or takes with ``--run``) a 784-64-10 LIF network, prunes it to 10 % of its weights in
int4 with QAT (``edgesnn compress --sparsity 0.9 --weight-bits 4 --qat-epochs 4``), writes the
Uno's ``.esg`` without the META JSON (provenance the firmware never reads; 1.3 KB of flash)
into ``OUT/uno/model.esg``, then prints:

* accuracy on the full 10,000-image MNIST test set: float (torch), golden integer simulator;
* ``edgesnn eval OUT/uno --device arduino-uno --samples N`` (export, build, simavr, chunked
  DATA frames of the 64 bytes the Uno announces): device accuracy, and every device answer
  (prediction, counts, ops, spikes, input spikes) checked against a golden run done here;
* flash (.text + .data: code and model), RAM (.data + .bss, the arena, and the deepest stack
  simavr saw, ``ESNN_SIMAVR_STACK``) against 32,256 B / 2,048 B; CPU cycles per inference
  (Timer1 at clk/1, exact in simavr): mean / p50 / p99 / max, and ms at 16 MHz.

    EDGESNN_DATA=../shared/data .venv/bin/python benchmarks/uno.py [--run RUN] [--out DIR]
        [--samples 10000] [--json]

Measured (2026-11-29, avr-gcc 5.4 -Os -mcall-prologues -mrelax, ESNN_NO_CUBALIF and
ESNN_NO_DIRECT, simavr 1.6; the float run trained with the TRAIN options below in 59 s):
float 97.51 %, golden 95.77 % on all 10,000 test images; the Uno in simavr answered all
10,000 through `edgesnn eval` (219 s), 10,000 bit-exact with golden, 95.77 %; flash 30,684 /
32,256 B (code 19,324 + .esg 11,360); RAM 2,010 / 2,048 B (.data 16 + .bss 1,701 with a
512 B arena + stack peak 293); 2,227,644 cycles mean (p50 2,200,490, p99 3,428,988, max
4,126,911): 139 ms at 16 MHz.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgesnn.data import load_dataset  # noqa: E402
from edgesnn.devices import load_device  # noqa: E402
from edgesnn.graph import esg  # noqa: E402
from edgesnn.graph.golden import simulate  # noqa: E402

DEVICE = "arduino-uno"
TRAIN = ["--hidden", "64", "--steps", "10", "--epochs", "6", "--lr", "3e-3",
         "--augment-shift", "1", "--label-smoothing", "0.1", "--seed", "0"]
COMPRESS = ["--sparsity", "0.9", "--weight-bits", "4", "--qat-epochs", "4",
            "--train-limit", "30000"]


def edgesnn(*args: str) -> str:
    """Run the edgesnn CLI (this checkout) and return its stdout."""
    proc = subprocess.run([sys.executable, "-m", "edgesnn", *args], cwd=ROOT, text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"edgesnn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def prepare(run: Path | None, out: Path, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    """OUT/uno: the compressed model (trained here unless --run), its .esg without META."""
    uno = out / "uno"
    if uno.exists():
        shutil.rmtree(uno)
    info: dict[str, Any] = {}
    t0 = time.monotonic()
    if run is None:
        run = out / "float"
        if not (run / "model.pt").is_file():
            edgesnn("train", "--out", str(run), *TRAIN, "--data-dir", str(data_dir),
                    "--no-progress")
        info["train_s"] = round(time.monotonic() - t0, 1)
    shutil.copytree(run, uno, ignore=shutil.ignore_patterns("eval", "report.*", "*.esg",
                                                             "compress.json"))
    t1 = time.monotonic()
    comp = json.loads(edgesnn("compress", str(uno), *COMPRESS, "--data-dir", str(data_dir),
                              "--json"))
    info["compress_s"] = round(time.monotonic() - t1, 1)
    info["compress_golden_accuracy"] = comp["golden_accuracy"]
    info["float_accuracy"] = comp["float_accuracy"]
    full = (uno / "model.esg").read_bytes()
    graph = esg.decode(full)
    # META is provenance for the host; the firmware never reads it. Keep a pointer to it.
    full_hash = esg.header_hash(full).hex()
    lean = esg.encode(dataclasses.replace(graph, metadata={"full_esg": full_hash}))
    (uno / "model.full.esg").write_bytes(full)
    (uno / "model.esg").write_bytes(lean)
    info.update(esg_bytes_with_meta=len(full), esg_bytes=len(lean))
    return uno, info


def sizes(uno: Path) -> dict[str, int]:
    """Build the Uno firmware for OUT/uno and read its sections."""
    fw = uno / "fw"
    edgesnn("export", str(uno), "--target", "c", "--device", DEVICE, "--out", str(fw))
    edgesnn("build", str(fw))
    out = subprocess.run(["avr-size", "-A", str(fw / "firmware.elf")], capture_output=True,
                         text=True, check=True).stdout
    sec = {r[0]: int(r[1]) for r in (line.split() for line in out.splitlines()[2:])
           if len(r) >= 2 and r[1].isdigit()}
    summary = json.loads((fw / "edgesnn.json").read_text())
    return {"text": sec[".text"], "data": sec[".data"], "bss": sec[".bss"],
            "arena": int(summary["arena_bytes"])}


def device_eval(uno: Path, samples: int, data_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """``edgesnn eval`` on the Uno in simavr; returns the records and the stack peak (B)."""
    stack = uno / "stack.txt"
    env = dict(os.environ, ESNN_SIMAVR_STACK=str(stack))
    proc = subprocess.run([sys.executable, "-m", "edgesnn", "eval", str(uno), "--device",
                           DEVICE, "--samples", str(samples), "--data-dir", str(data_dir),
                           "--no-report", "--json"], cwd=ROOT, env=env, text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"edgesnn eval failed:\n{proc.stderr[-3000:]}")
    path = uno / "eval" / DEVICE / "samples.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records, int(stack.read_text().split()[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a trained run (model.pt) to compress")
    ap.add_argument("--out", type=Path, default=Path("/tmp/edgesnn-uno"))
    ap.add_argument("--samples", type=int, default=10_000,
                    help="test images run on the device (golden: always all 10,000)")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EDGESNN_DATA", "")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("avr-gcc") is None:
        raise SystemExit("avr-gcc not installed (Debian: gcc-avr avr-libc simavr libsimavr-dev)")
    args.out.mkdir(parents=True, exist_ok=True)
    uno, info = prepare(args.run, args.out, args.data_dir)
    graph = esg.decode((uno / "model.esg").read_bytes())
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    gold = simulate(graph, test.images)
    labels = np.asarray(test.labels)
    info["golden_accuracy"] = float(np.mean(gold.pred == labels))
    dense = sum(layer.n_in * layer.n_out for layer in graph.layers)
    nnz = sum(layer.nnz for layer in graph.layers)
    info["model"] = f"784-64-10 T={graph.steps}, int4, {100 * (1 - nnz / dense):.1f} % pruned"

    sec = sizes(uno)
    t0 = time.monotonic()
    records, stack = device_eval(uno, args.samples, args.data_dir)
    info["device_s"] = round(time.monotonic() - t0, 1)
    ok = [r for r in records if r["status"] == "ok"]
    exact = sum(1 for r in ok if (
        r["device_pred"], r["counts"], r["ops"], r["spikes"], r["input_spikes"]) == (
        int(gold.pred[r["index"]]), gold.counts[r["index"]].tolist(),
        gold.ops[r["index"]].tolist(), gold.spikes[r["index"]].tolist(),
        int(gold.input_spikes[r["index"]])))
    cycles = np.array([r["cycles"] for r in ok], dtype=np.float64)
    profile = load_device(DEVICE)
    ram = sec["data"] + sec["bss"] + stack
    flash = sec["text"] + sec["data"]
    info.update(
        device_samples=len(records), device_ok=len(ok), device_bit_exact=exact,
        device_accuracy=float(np.mean([r["device_pred"] == r["label"] for r in ok])),
        golden_accuracy_same_samples=float(np.mean(gold.pred[:len(records)]
                                                   == labels[:len(records)])),
        flash_bytes=flash, flash_available=profile.memory.flash_bytes,
        code_bytes=flash - info["esg_bytes"], data_bytes=sec["data"], bss_bytes=sec["bss"],
        arena_bytes=sec["arena"], arena_spec_bytes=graph.arena_bytes(), stack_peak_bytes=stack,
        ram_bytes=ram, ram_available=profile.memory.ram_bytes,
        cycles_mean=float(cycles.mean()), cycles_p50=float(np.percentile(cycles, 50)),
        cycles_p99=float(np.percentile(cycles, 99)), cycles_max=float(cycles.max()),
        ms_mean_16mhz=float(cycles.mean()) / 16e3)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"Arduino Uno (ATmega328P, simavr): {info['model']}")
    print(f"  accuracy, all 10,000 test images: float {100 * info['float_accuracy']:.2f} %, "
          f"golden {100 * info['golden_accuracy']:.2f} %")
    print(f"  device: {len(records):,} images, {len(ok):,} answered, {exact:,} bit-exact with "
          f"golden; accuracy {100 * info['device_accuracy']:.2f} % (golden on the same images "
          f"{100 * info['golden_accuracy_same_samples']:.2f} %), {info['device_s']} s")
    print(f"  flash {flash:,} / {profile.memory.flash_bytes:,} B = code {info['code_bytes']:,} "
          f"+ .esg {info['esg_bytes']:,} (with META {info['esg_bytes_with_meta']:,})")
    print(f"  RAM {ram:,} / {profile.memory.ram_bytes:,} B = .data {sec['data']} + .bss "
          f"{sec['bss']:,} (arena {sec['arena']} B; SPEC 4's {graph.arena_bytes():,}) + stack "
          f"peak {stack}")
    print(f"  cycles / inference: mean {cycles.mean():,.0f}, p50 "
          f"{np.percentile(cycles, 50):,.0f}, p99 {np.percentile(cycles, 99):,.0f}, max "
          f"{cycles.max():,.0f} ({info['ms_mean_16mhz']:.1f} ms mean at 16 MHz)")


if __name__ == "__main__":
    main()

"""``edgesnn run``: train -> compress -> export C -> build -> launch + eval -> report.

The default finishes in a few minutes on 2 cores: a 784-128-10 LIF network, rate encoding,
T = 12, trained 1 epoch on all 60,000 MNIST training images, int8 compression, the
host build of the firmware on a pseudo-terminal, 1,000 test samples. Each stage is skipped
when its outputs exist and are current, so running it again is cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from edgesnn.cli import CliError

log = logging.getLogger(__name__)

DEFAULTS = {"hidden": 128, "steps": 12, "epochs": 1, "train_limit": 60_000, "samples": 1000,
            "batch_size": 128}
STATE = "run.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="the whole pipeline on the embedded default, ending in a report",
        description="Train a small spiking MLP on MNIST, compress it to int8 (model.esg), "
        "export and build the C firmware for --device, launch it (host process on a "
        "pseudo-terminal, or QEMU), stream test samples over the serial protocol and write "
        "RUN_DIR/report.{json,html}. Defaults (a few minutes on 2 cores): 784-"
        f"{DEFAULTS['hidden']}-10 LIF, rate encoding, T={DEFAULTS['steps']}, "
        f"{DEFAULTS['epochs']} epoch on the first {DEFAULTS['train_limit']:,} training images, "
        f"--device host, {DEFAULTS['samples']:,} test samples. Stages whose outputs exist and "
        "are current are skipped; an existing RUN_DIR trained by `edgesnn train` is used as is.")
    p.add_argument("--out", type=Path, default=Path("runs/default"), metavar="RUN_DIR",
                   help="run directory (default runs/default)")
    p.add_argument("--device", default="host",
                   help="device profile (host, lm3s6965evb, mps2-an386), a pyserial URL or "
                        "'sim' (default host)")
    p.add_argument("--samples", type=int, default=DEFAULTS["samples"],
                   help=f"test samples to evaluate (default {DEFAULTS['samples']})")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                   help=f"training epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"],
                   help=f"hidden neurons (default {DEFAULTS['hidden']})")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"],
                   help=f"time steps T (default {DEFAULTS['steps']})")
    p.add_argument("--train-limit", type=int, default=DEFAULTS["train_limit"],
                   help=f"training images used (default {DEFAULTS['train_limit']})")
    p.add_argument("--window", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.json:
        print(msg, file=sys.stderr, flush=True)


def _newer(out: Path, *inputs: Path) -> bool:
    return out.exists() and all(not i.exists() or out.stat().st_mtime >= i.stat().st_mtime
                                for i in inputs)


def run(args: argparse.Namespace) -> int:
    from edgesnn.report import print_report

    report = pipeline(args)
    run_dir: Path = args.out
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print_report(report)
        print(f"wrote {run_dir / 'report.json'} and {run_dir / 'report.html'}")
    return 0


def run_pipeline(out: Path | str = "runs/default", *, device: str = "host",
                 samples: int = DEFAULTS["samples"], epochs: int = DEFAULTS["epochs"],
                 hidden: int = DEFAULTS["hidden"], steps: int = DEFAULTS["steps"],
                 train_limit: int = DEFAULTS["train_limit"], window: int = 8,
                 data_dir: Path | str | None = None, force: bool = False,
                 progress: bool = False) -> dict[str, Any]:
    """The Python face of ``edgesnn run``: returns the report dict (also written to disk)."""
    args = argparse.Namespace(
        out=Path(out), device=device, samples=samples, epochs=epochs, hidden=hidden,
        steps=steps, train_limit=train_limit, window=window,
        data_dir=None if data_dir is None else Path(data_dir), force=force, json=not progress)
    return pipeline(args)


def pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from edgesnn.report import build_report, write_report

    if args.samples < 1:
        raise CliError(f"--samples {args.samples}; must be >= 1")
    if args.epochs < 1:
        raise CliError(f"--epochs {args.epochs}; must be >= 1")
    run_dir: Path = args.out
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    train_args = {"hidden": args.hidden, "steps": args.steps, "epochs": args.epochs,
                  "train_limit": args.train_limit}
    stages: dict[str, Any] = {}
    progress = not args.json

    def stage(name: str, n: int, skip: bool, fn: Any) -> Any:
        t0 = time.monotonic()
        if skip and not args.force:
            _say(args, f"[{n}/6] {name}: up to date, skipped")
            stages[name] = {"skipped": True}
            return None
        _say(args, f"[{n}/6] {name} ...")
        try:
            out = fn()
        except CliError:
            raise
        except Exception as exc:  # noqa: BLE001 - one clear line naming the stage
            log.debug("stage %s failed", name, exc_info=True)
            raise CliError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
        dt = time.monotonic() - t0
        stages[name] = {"skipped": False, "seconds": round(dt, 2)}
        _say(args, f"[{n}/6] {name}: done in {dt:.1f} s")
        return out

    model_pt = run_dir / "model.pt"
    trained_here = state.get("train") is not None
    train_current = model_pt.exists() and (not trained_here or state["train"] == train_args)

    def do_train() -> Any:
        from edgesnn.snn.config import SNNConfig
        from edgesnn.snn.train import TrainOptions, train

        cfg = SNNConfig(hidden=[args.hidden], steps=args.steps)
        opts = TrainOptions(epochs=args.epochs, batch_size=DEFAULTS["batch_size"],
                            train_limit=args.train_limit, test_limit=1000, seed=0,
                            progress=progress)
        metrics = train(cfg, opts, run_dir, data_dir=args.data_dir)
        state["train"] = train_args
        state_path.write_text(json.dumps(state, indent=2))
        return metrics

    stage("train", 1, train_current, do_train)

    esg = run_dir / "model.esg"

    def do_compress() -> Any:
        from edgesnn.compress import compress_run

        return compress_run(run_dir, weight_bits=8, per_channel=True, test_limit=1000,
                            data_dir=args.data_dir, seed=0, progress=progress)

    stage("compress", 2, _newer(esg, model_pt), do_compress)

    from edgesnn.host.transport import is_url

    needs_fw = not (args.device == "sim" or is_url(args.device))
    fw_stamp = run_dir / "firmware" / args.device / ".edgesnn-build.json"

    def do_build() -> Any:
        from edgesnn.host.runner import firmware_for

        return firmware_for(run_dir, args.device)

    def fw_current() -> bool:
        from edgesnn.host.runner import firmware_inputs_digest

        if not fw_stamp.exists():
            return False
        info = json.loads(fw_stamp.read_text())
        return (info.get("inputs") == firmware_inputs_digest(run_dir, args.device)
                and Path(info.get("elf", "")).exists())

    stage("export+build", 3, not needs_fw or fw_current(), do_build)

    from edgesnn.host.runner import EvalOptions, device_dirname, evaluate, read_records

    dev_dir = run_dir / "eval" / device_dirname(args.device)
    recs = read_records(dev_dir / "samples.jsonl")
    eval_current = (len({r["index"] for r in recs}) >= args.samples
                    and _newer(dev_dir / "samples.jsonl", esg, fw_stamp)
                    and state.get("eval") == {"device": args.device, "samples": args.samples})

    def do_eval() -> Any:
        opts = EvalOptions(samples=args.samples, window=args.window, data_dir=args.data_dir,
                           progress=progress)
        out = evaluate(run_dir, [args.device], opts)
        state["eval"] = {"device": args.device, "samples": args.samples}
        state_path.write_text(json.dumps(state, indent=2))
        return out

    stage("launch+eval", 4, eval_current, do_eval)
    report = stage("report", 5, False, lambda: build_report(run_dir))
    stage("write", 6, False, lambda: write_report(run_dir, report))
    report["stages"] = stages
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report

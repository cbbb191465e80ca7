"""``edgesnn run``: train -> compress -> export C -> build -> launch + eval -> report.

The default finishes in a few minutes on 2 cores: a 784-128-10 LIF network, direct encoding
(the pixels as a constant input current into layer 0; about as accurate as rate encoding at
T = 12 and far fewer device instructions), T = 8, trained 1 epoch on all 60,000 MNIST training
images, int8 compression, the host build of the firmware on a pseudo-terminal, 1,000 test
samples. Each stage is skipped when its outputs exist and are current, so running it again is
cheap.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesnn.data import ENCODERS

log = logging.getLogger(__name__)

STATE = "run.json"


class StageError(RuntimeError):
    """A stage of ``edgesnn run`` failed; the message names the stage and the cause."""


@dataclass
class RunOptions:
    """The options of ``edgesnn run`` (same names as the CLI's)."""

    out: Path = Path("runs/default")
    device: str = "host"
    samples: int = 1000
    epochs: int = 1
    hidden: int = 128
    steps: int = 8
    encoder: str = "direct"  # rate | latency | direct (edgesnn.data.ENCODERS)
    train_limit: int = 60_000
    window: int = 8
    data_dir: Path | None = None
    force: bool = False
    progress: bool = False
    batch_size: int = 128
    baseline: str | None = None  # "ann" | "ann-sparse": the int8 ANN beside the SNN


    def check(self) -> None:
        for name in ("samples", "epochs", "hidden", "steps", "train_limit", "window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} {value!r}: must be an integer "
                                 ">= 1")
        if self.encoder not in ENCODERS:
            raise ValueError(f"--encoder {self.encoder!r}: accepted {', '.join(ENCODERS)}")
        if self.baseline not in (None, "ann", "ann-sparse"):
            raise ValueError(f"--baseline {self.baseline}: accepted ann, ann-sparse")


def _newer(out: Path, *inputs: Path) -> bool:
    return out.exists() and all(not i.exists() or out.stat().st_mtime >= i.stat().st_mtime
                                for i in inputs)


def run_pipeline(opts: RunOptions, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every stage that is not current; ``say`` gets one line per stage. Returns the
    report (also written to ``RUN_DIR/report.{json,html}``) with a ``stages`` entry."""
    from edgesnn.host.transport import is_url
    from edgesnn.pipeline.baseline import baseline_dir, prepare_baseline
    from edgesnn.pipeline.evaluation import EvalOptions, evaluate_devices
    from edgesnn.pipeline.firmware import STAMP, current_firmware, firmware_dir_for, firmware_for
    from edgesnn.pipeline.reporting import write_reports
    from edgesnn.results import SAMPLES_FILE, device_dirname, read_records

    opts.check()
    tell = say or log.info
    run_dir = Path(opts.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    train_args = {"hidden": opts.hidden, "steps": opts.steps, "encoder": opts.encoder,
                  "epochs": opts.epochs, "train_limit": opts.train_limit}
    stages: dict[str, Any] = {}

    def stage(name: str, n: int, skip: bool, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        if skip and not opts.force:
            tell(f"[{n}/5] {name}: up to date, skipped")
            stages[name] = {"skipped": True}
            return None
        tell(f"[{n}/5] {name} ...")
        try:
            out = fn()
        except (KeyboardInterrupt, StageError):
            raise
        except Exception as exc:  # noqa: BLE001 - one clear line naming the stage
            log.debug("stage %s failed", name, exc_info=True)
            raise StageError(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
        dt = time.monotonic() - t0
        stages[name] = {"skipped": False, "seconds": round(dt, 2)}
        tell(f"[{n}/5] {name}: done in {dt:.1f} s")
        return out

    def save_state(key: str, value: dict[str, Any]) -> None:
        state[key] = value
        state_path.write_text(json.dumps(state, indent=2))

    model_pt = run_dir / "model.pt"
    trained_here = state.get("train") is not None
    # a run kept from before the encoder option was trained with rate encoding
    kept_args = {"encoder": "rate", **state["train"]} if trained_here else None
    train_current = model_pt.exists() and (not trained_here or kept_args == train_args)

    def do_train() -> Any:
        from edgesnn.snn.config import SNNConfig
        from edgesnn.snn.train import TrainOptions, train

        cfg = SNNConfig(hidden=[opts.hidden], steps=opts.steps, encoder=opts.encoder)
        topts = TrainOptions(epochs=opts.epochs, batch_size=opts.batch_size,
                             train_limit=opts.train_limit, test_limit=1000, seed=0,
                             progress=opts.progress)
        metrics = train(cfg, topts, run_dir, data_dir=opts.data_dir)
        save_state("train", train_args)
        return metrics

    stage("train", 1, train_current, do_train)

    esg = run_dir / "model.esg"

    def do_compress() -> Any:
        from edgesnn.compress import compress_run

        return compress_run(run_dir, weight_bits=8, per_channel=True, test_limit=1000,
                            data_dir=opts.data_dir, seed=0, progress=opts.progress)

    stage("compress", 2, _newer(esg, model_pt), do_compress)

    needs_fw = not (opts.device == "sim" or is_url(opts.device))
    # with a baseline the firmware is built from RUN_DIR/baselines/<kind>/model.esg: the SNN
    # and the ANN in one image (edgesnn.pipeline.baseline)
    fw_dir = run_dir if opts.baseline is None else baseline_dir(run_dir, opts.baseline)

    def do_build() -> Any:
        if opts.baseline is not None:
            prepare_baseline(run_dir, opts.baseline, data_dir=opts.data_dir, say=tell)
        return firmware_for(fw_dir, opts.device)

    stage("export+build", 3, not needs_fw or (
        (fw_dir / "model.esg").exists() and _newer(fw_dir / "model.esg", esg)
        and current_firmware(fw_dir, opts.device) is not None), do_build)

    fw_stamp = firmware_dir_for(fw_dir, opts.device) / STAMP
    samples_file = run_dir / "eval" / device_dirname(opts.device) / SAMPLES_FILE
    eval_key = {"device": opts.device, "samples": opts.samples, "baseline": opts.baseline}
    eval_current = (len({r["index"] for r in read_records(samples_file)}) >= opts.samples
                    and _newer(samples_file, esg, fw_stamp) and state.get("eval") == eval_key)

    def do_eval() -> Any:
        eopts = EvalOptions(samples=opts.samples, window=opts.window, data_dir=opts.data_dir,
                            progress=opts.progress, baseline=opts.baseline)
        out = evaluate_devices(run_dir, [opts.device], eopts)
        save_state("eval", eval_key)
        return out

    stage("launch+eval", 4, eval_current, do_eval)
    report = stage("report", 5, False, lambda: write_reports(run_dir))
    report["stages"] = stages
    from edgesnn.report import write_report

    write_report(run_dir, report)
    return report

"""Data-parallel training under torchrun (2 processes, gloo) on a small MNIST subset."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
from edgesnn.snn import SNNConfig
from edgesnn.snn.train import TrainOptions, train
out, data = sys.argv[1], sys.argv[2]
m = train(SNNConfig(hidden=[32], steps=8, slope=5.0), TrainOptions(epochs=1, batch_size=32,
          train_limit=2000, test_limit=500, progress=False), out, data)
with open(f"{out}/rank{m['rank']}.json", "w") as f:
    json.dump({k: m[k] for k in ("rank", "world_size", "model_digest", "test_accuracy",
                                 "train_samples")}, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_two_processes(tmp_path: Path, mnist_data_dir: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGESNN_DATA": str(mnist_data_dir)}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script),
         str(out), str(mnist_data_dir)],
        capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [x["world_size"] for x in ranks] == [2, 2]
    # gradients were averaged: both replicas end with the very same weights
    assert ranks[0]["model_digest"] == ranks[1]["model_digest"]
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["world_size"] == 2 and metrics["rank"] == 0
    assert metrics["model_digest"] == ranks[0]["model_digest"]
    assert metrics["test_accuracy"] >= 0.6, metrics["test_accuracy"]  # chance is 0.1
    assert (out / "model.pt").is_file()

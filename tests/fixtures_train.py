"""Training fixtures (a pytest plugin loaded by tests/conftest.py).

``tiny_run``: a RUN_DIR (``model.pt``, ``config.json``, ``train.json``) holding a 784-64-10
LIF network with rate encoding, T = 10, trained through the public API on the first 6,000
MNIST training images for 2 epochs (seed 0) and evaluated on the first 1,000 test images.
A few seconds on a loaded 2-core machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TINY_CONFIG = {"hidden": [64], "steps": 10, "encoder": "rate", "neuron": "lif",
               "reset": "subtract", "beta": 0.9, "threshold": 1.0, "slope": 5.0}
TINY_OPTIONS = {"epochs": 2, "batch_size": 64, "lr": 5e-3, "train_limit": 6000,
                "test_limit": 1000, "seed": 0, "progress": False}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (the shared test machines are oversubscribed; OpenMP
    spinning on 2 threads there is several times slower), then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir(mnist_data_dir: Path) -> Path:
    """The folder holding ``mnist/`` (alias of ``mnist_data_dir``)."""
    return mnist_data_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, mnist_data_dir: Path) -> Path:
    from edgesnn.snn import SNNConfig
    from edgesnn.snn.train import TrainOptions, train

    out = tmp_path_factory.mktemp("tiny_run")
    with one_thread():
        train(SNNConfig(**TINY_CONFIG), TrainOptions(**TINY_OPTIONS), out,
              data_dir=mnist_data_dir)
    return out

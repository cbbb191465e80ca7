"""Shared test setup.

Fixtures come from small plugin modules owned by the stage that makes them:
``tests/fixtures_train.py`` (``data_dir``, ``tiny_run``: a RUN_DIR with a float model trained
on a small MNIST subset) and ``tests/fixtures_compress.py`` (``tiny_esg_run``: the same run
compressed to ``model.esg``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = [
    f"tests.{name}"
    for name in ("fixtures_train", "fixtures_compress")
    if importlib.util.find_spec(f"tests.{name}") is not None
]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def mnist_data_dir() -> Path:
    """The folder holding ``mnist/`` (``$EDGESNN_DATA``, else ``../shared/data``)."""
    env = os.environ.get("EDGESNN_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not (path / "mnist").is_dir():
        pytest.fail(f"MNIST not found under {path}; set EDGESNN_DATA to the folder holding mnist/")
    return path

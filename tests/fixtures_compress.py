"""Session fixture ``tiny_esg_run``: ``tiny_run`` copied to a temp dir and compressed (int8,
per-channel, no pruning, no QAT) to ``model.esg`` + ``compress.json``.

Other stages' tests use it as a ready-made deployed model. The summary that
:func:`edgesnn.compress.compress_run` returned is in ``RUN_DIR/compress.json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY_ESG_TEST_LIMIT = 500
TINY_ESG_TRAIN_LIMIT = 1000


@pytest.fixture(scope="session")
def tiny_esg_run(tiny_run: Path, mnist_data_dir: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RUN_DIR with ``model.pt``, ``config.json``, ``model.esg`` and ``compress.json``."""
    from edgesnn.compress import compress_run

    run = tmp_path_factory.mktemp("tiny_esg") / "run"
    shutil.copytree(tiny_run, run)
    for stale in ("model.esg", "compress.json"):
        (run / stale).unlink(missing_ok=True)
    compress_run(run, weight_bits=8, per_channel=True, train_limit=TINY_ESG_TRAIN_LIMIT,
                 calib_limit=300, test_limit=TINY_ESG_TEST_LIMIT, data_dir=mnist_data_dir,
                 seed=0)
    return run

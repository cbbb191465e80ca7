"""Pruning and integer quantization (PTQ with calibration, QAT) of a trained SNN.

* :mod:`.quantize`: float model -> :class:`~edgesnn.compress.qat.IntegerSNN` (PTQ);
* :mod:`.qat`: the integer-faithful torch forward pass and its fine-tuning loop;
* :mod:`.prune`: magnitude, structured and iterative pruning;
* :mod:`.pipeline`: :func:`compress_run`, what ``edgesnn compress`` runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compress_run"]


def __getattr__(name: str) -> Any:
    """``compress_run`` on first use: the package's torch-free modules (``defaults``) import
    without torch."""
    if name == "compress_run":
        from edgesnn.compress.pipeline import compress_run

        return compress_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

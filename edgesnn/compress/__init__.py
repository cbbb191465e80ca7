"""Pruning and integer quantization (PTQ with calibration, QAT) of a trained SNN.

* :mod:`.quantize`: float model -> :class:`~edgesnn.compress.qat.IntegerSNN` (PTQ);
* :mod:`.qat`: the integer-faithful torch forward pass and its fine-tuning loop;
* :mod:`.prune`: magnitude, structured and iterative pruning;
* :mod:`.pipeline`: :func:`compress_run`, what ``edgesnn compress`` runs.
"""

from __future__ import annotations

from edgesnn.compress.pipeline import compress_run

__all__ = ["compress_run"]

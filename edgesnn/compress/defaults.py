"""The measured defaults of ``edgesnn compress`` (torch-free: the CLI's help reads them)."""

from __future__ import annotations

#: QAT epochs when pruning and ``qat_epochs=None`` (none without pruning)
DEFAULT_PRUNE_QAT_EPOCHS = 1

#: The QAT learning rate ``qat_lr=None`` means, in integer weight units: 0.02 * qmax (2.54 for
#: int8, 0.14 for int4). Measured against lower rates for int8, QAT on all 60,000 MNIST
#: training images, golden accuracy on all 10,000 test digits (2.54 / 0.8 / 0.25):
#: 784-128-10 rate T = 12 pruned to 80 %, 1 epoch: 96.39 / 96.23 / 95.88 %; 784-256-10 direct
#: T = 8 pruned to 80 %, 3 epochs: 97.34 / 97.71 / 97.70 %; pruned to 90 %: 97.11 / 96.87 /
#: 96.17 %. No rate wins everywhere: the default stays; direct-encoded networks pruned to
#: 80 % take --qat-lr 0.25 (benchmarks/fewer_events.py).
QAT_LR_PER_QMAX = 0.02


def default_qat_lr(weight_bits: int) -> float:
    """The QAT learning rate ``qat_lr=None`` means for ``weight_bits`` (8 or 4)."""
    from edgesnn.graph.ir import qmax_for  # numpy: not at import, the CLI's help reads this

    return QAT_LR_PER_QMAX * qmax_for(weight_bits)

"""edgesnn: spiking neural networks from training to a microcontroller, proven on the device.

The public API mirrors the CLI: :mod:`edgesnn.api` has one function per command (``train``,
``evaluate``, ``compress``, ``export``, ``inspect``, ``build``, ``launch``, ``eval``,
``report``, ``run``, ``crossbar_sim``, ``import_``). Those whose names are not also
subpackages (``compress``, ``export``, ``build`` and ``report`` are) are re-exported here,
with ``load_dataset``, ``simulate`` (the golden integer simulator), ``read_esg``/``write_esg``,
``SpikeGraph`` and ``load_device``.
Everything is imported lazily, so ``import edgesnn`` loads neither torch nor serial code.
"""

from __future__ import annotations

from edgesnn._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    **{name: "edgesnn.api" for name in ("train", "evaluate", "inspect", "launch", "eval",
                                        "run", "crossbar_sim", "import_", "tune")},
    "load_dataset": "edgesnn.data",
    "simulate": "edgesnn.graph",
    "read_esg": "edgesnn.graph",
    "write_esg": "edgesnn.graph",
    "SpikeGraph": "edgesnn.graph",
    "load_device": "edgesnn.devices",
}

__all__ = ["__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

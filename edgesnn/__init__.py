"""edgesnn: spiking neural networks from training to a microcontroller, proven on the device.

The public API mirrors the CLI: :mod:`edgesnn.api` has one function per command (``train``,
``evaluate``, ``compress``, ``export``, ``inspect``, ``build``, ``launch``, ``eval``,
``report``, ``run``). Those whose names are not also subpackages (``compress``, ``export``,
``build`` and ``report`` are) are re-exported here, with ``load_dataset``, ``simulate`` (the
golden integer simulator), ``read_esg``/``write_esg``, ``SpikeGraph`` and ``load_device``.
Everything is imported lazily, so ``import edgesnn`` loads neither torch nor serial code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    **{name: "edgesnn.api" for name in ("train", "evaluate", "inspect", "launch", "eval",
                                        "run")},
    "load_dataset": "edgesnn.data",
    "simulate": "edgesnn.graph",
    "read_esg": "edgesnn.graph",
    "write_esg": "edgesnn.graph",
    "SpikeGraph": "edgesnn.graph",
    "load_device": "edgesnn.devices",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgesnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""Spiking neurons, surrogate gradients, the spiking MLP, training and ANN->SNN conversion.

The names below are imported lazily, so ``edgesnn.snn.config`` (what the CLI needs to build
its parser) loads without torch.
"""

from __future__ import annotations

from edgesnn._lazy import lazy_exports

_LAZY = {
    "CheckpointError": "edgesnn.snn.checkpoint", "load": "edgesnn.snn.checkpoint",
    "save": "edgesnn.snn.checkpoint",
    "ConfigError": "edgesnn.snn.config", "SNNConfig": "edgesnn.snn.config",
    "LIFFunction": "edgesnn.snn.lif", "lif": "edgesnn.snn.lif",
    "lif_reference": "edgesnn.snn.lif",
    "SNNOutput": "edgesnn.snn.model", "SpikingMLP": "edgesnn.snn.model",
    "readout": "edgesnn.snn.model",
    "spike": "edgesnn.snn.surrogate", "surrogate_grad": "edgesnn.snn.surrogate",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

"""Spiking neurons, surrogate gradients, the spiking MLP, training and ANN->SNN conversion."""

from edgesnn.snn.checkpoint import CheckpointError, load, save
from edgesnn.snn.config import ConfigError, SNNConfig
from edgesnn.snn.lif import LIFFunction, lif, lif_reference
from edgesnn.snn.model import SNNOutput, SpikingMLP, readout
from edgesnn.snn.surrogate import spike, surrogate_grad

__all__ = ["CheckpointError", "ConfigError", "LIFFunction", "SNNConfig", "SNNOutput",
           "SpikingMLP", "lif", "lif_reference", "load", "readout", "save", "spike",
           "surrogate_grad"]

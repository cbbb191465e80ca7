"""Memristor-crossbar target: device profiles, mapping, the JSON description, a numpy
simulator with device non-idealities, energy accounting and fault-aware remapping.

Mapping conventions and the field correspondence with IBM aihwkit and Sandia CrossSim are in
``exporters/crossbar/MAPPING.md``. numpy only (no torch).
"""

from edgesnn.crossbar.mapping import CrossbarMapping, LayerMapping, MappingError, map_graph
from edgesnn.crossbar.profile import CrossbarProfile, ProfileError, load_profile
from edgesnn.crossbar.sim import Conditions, InputSpec, XbarResult, simulate

__all__ = ["Conditions", "CrossbarMapping", "CrossbarProfile", "InputSpec", "LayerMapping",
           "MappingError", "ProfileError", "XbarResult", "load_profile", "map_graph",
           "simulate"]

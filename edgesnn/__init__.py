"""edgesnn: spiking neural networks from training to a microcontroller, proven on the device.

The public API mirrors the CLI; heavy modules (torch) are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

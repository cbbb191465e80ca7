"""Export targets: one module per target, each defining ``TARGET`` (an :class:`ExportTarget`).

The target's name is its module name (``esg``, ``c``, ``crossbar``, ``onnx``, ``tflite``,
``nir``); adding a target means adding one module here and touching nothing else.
"""

from edgesnn.export.base import ExportError, ExportTarget, available_targets, get_target

__all__ = ["ExportError", "ExportTarget", "available_targets", "get_target"]

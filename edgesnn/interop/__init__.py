"""Interchange with other SNN / edge-ML tools: ONNX, TFLite and NIR export and import.

* :mod:`edgesnn.interop.params` — :class:`FloatSNN`, the framework-neutral float model
  (numpy) that every exporter reads and every importer writes, plus its reference simulator.
* :mod:`edgesnn.interop.onnx_graph` — ONNX graphs (float step / unrolled, integer unrolled).
* :mod:`edgesnn.interop.tflite_graph` — TFLite SNN / ANN models, written by
  :mod:`edgesnn.interop.tflite_flatbuffer` (no TensorFlow), run by
  :mod:`edgesnn.interop.tflite_run` (ai-edge-litert or tflite_runtime).
* :mod:`edgesnn.interop.nir_graph` — NIR export and import (see ``exporters/nir/MAPPING.md``).
* :mod:`edgesnn.interop.ann` — the same-topology ReLU ANN baseline, exported to int8 TFLite.
* :mod:`edgesnn.interop.importers` — ``edgesnn import``: NIR / ONNX file -> RUN_DIR.
* :mod:`edgesnn.interop.atomic` — write files / run folders so failures leave nothing.
* :mod:`edgesnn.interop.synth` — random float SNNs of every flavour, for tests.
"""

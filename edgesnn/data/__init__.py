"""MNIST / Fashion-MNIST loading (numpy, no torch) and spike encoders (:mod:`.encoders`).

The names of the datasets and encoders are plain constants here; everything else is imported
lazily, so the CLI can build its parser (``--dataset``, ``--encoder`` choices) without numpy.
"""

from edgesnn._lazy import lazy_exports

#: The datasets :func:`load_dataset` reads (``<name>/`` folders of gzipped IDX files).
DATASETS = ("mnist", "fashion-mnist")
#: The input spike encoders of SPEC.md section 3.1 (their torch twins: :mod:`.encoders`).
ENCODERS = ("rate", "latency", "direct")

_LAZY = {
    "ChecksumError": "edgesnn.data.checksums",
    **{name: "edgesnn.data.datasets" for name in ("DataError", "Dataset", "cache_dir",
                                                   "load_dataset", "search_dirs")},
    "IdxError": "edgesnn.data.idx",
}

__all__ = ["DATASETS", "ENCODERS", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

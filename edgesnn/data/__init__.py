"""MNIST / Fashion-MNIST loading (numpy, no torch) and spike encoders (:mod:`.encoders`)."""

from edgesnn.data.checksums import ChecksumError
from edgesnn.data.datasets import DATASETS, DataError, Dataset, cache_dir, load_dataset, search_dirs
from edgesnn.data.idx import IdxError

#: The input spike encoders of SPEC.md section 3.1 (their torch twins: :mod:`.encoders`).
ENCODERS = ("rate", "latency", "direct")

__all__ = ["DATASETS", "ENCODERS", "ChecksumError", "DataError", "Dataset", "IdxError",
           "cache_dir", "load_dataset", "search_dirs"]

"""The Python API: one function per CLI command, taking the same options under the same names
and returning what the command prints with ``--json``. The functions are those of the pipeline
layer (:mod:`edgesnn.pipeline`), which the CLI calls too.

``import edgesnn`` exposes these lazily (torch and serial code load only when used)::

    import edgesnn
    metrics = edgesnn.train("runs/a", hidden=256, steps=25, epochs=2)
    summary = edgesnn.compress("runs/a", sparsity=0.9, weight_bits=4, qat_epochs=1)
    edgesnn.export("runs/a", "c", "fw/", device="lm3s6965evb")
    image = edgesnn.build("fw/", clean=True, make_arg=["EXTRA_CFLAGS=-g"])
    report = edgesnn.eval("runs/a", ["lm3s6965evb"], samples=500)
"""

from __future__ import annotations

from edgesnn.pipeline import (
    build,
    compress,
    crossbar_sim,
    eval,  # noqa: A004 - the command's name
    evaluate,
    export,
    import_,
    inspect,
    launch,
    report,
    run,
    train,
)
from edgesnn.pipeline.tune import tune

__all__ = ["build", "compress", "crossbar_sim", "eval", "evaluate", "export", "import_",
           "inspect", "launch", "report", "run", "train", "tune"]

"""One module per CLI subcommand; see :mod:`edgesnn.cli`."""

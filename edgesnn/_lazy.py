"""Lazy re-exports for package ``__init__`` modules: a name is imported on first use, so
importing a package loads neither torch nor serial code until a name that needs it is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` re-exporting ``name`` from ``table[name]``."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", table))

    return getattr_, dir_

"""The one interface every export target implements, and the registry that finds them."""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from edgesnn.graph.ir import ExportError

__all__ = ["ExportError", "ExportTarget", "available_targets", "get_target"]

_NOT_TARGETS = {"base"}


class ExportTarget(ABC):
    """Turns a run directory (``model.pt`` float checkpoint, ``model.esg`` integer graph)
    into one artefact.

    ``name``: the ``--target`` value; ``summary``: one line for ``--help``;
    ``needs_device``: whether ``--device`` is required; ``writes_folder``: whether ``out`` is
    a folder the target fills (else one file).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    needs_device: ClassVar[bool] = False
    writes_folder: ClassVar[bool] = False

    def check_out(self, out: Path) -> None:
        """Refuse an ``out`` of the wrong kind before any work (:class:`ExportError`)."""
        out = Path(out)
        if not self.writes_folder and out.is_dir():
            raise ExportError(f"--out {out} is a folder; --target {self.name} writes one "
                              f"file: give its path (e.g. {out / ('model.' + self.name)})")
        if self.writes_folder and out.exists() and not out.is_dir():
            raise ExportError(f"--out {out} is a file; --target {self.name} writes a folder")

    @abstractmethod
    def export(
        self, run_dir: Path, out: Path, *, device: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Write the artefact to ``out`` and return a JSON-able summary with at least
        ``target``, ``path`` and ``bytes``. Nothing is left half-written on failure."""


def available_targets() -> list[str]:
    import edgesnn.export as pkg

    return sorted(
        m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in _NOT_TARGETS
    )


def get_target(name: str) -> ExportTarget:
    names = available_targets()
    if name not in names:
        raise ExportError(f"unknown export target {name!r}; accepted: {', '.join(names)}")
    module = importlib.import_module(f"edgesnn.export.{name}")
    target = getattr(module, "TARGET", None)
    if not isinstance(target, ExportTarget):
        raise ExportError(f"edgesnn.export.{name} defines no TARGET")
    return target

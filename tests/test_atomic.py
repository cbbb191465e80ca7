"""edgesnn.atomic: the one home of atomic writes."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from edgesnn import atomic

PACKAGE = Path(__file__).resolve().parents[1] / "edgesnn"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_whole_with_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    atomic.write_bytes(target, b"one")
    atomic.write_bytes(target, b"two", fsync=True)
    assert target.read_bytes() == b"two"
    assert _mode(target) == atomic.file_mode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_failure_leaves_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_json_overrides_defaults(tmp_path: Path) -> None:
    atomic.write_json(tmp_path / "x.json", {"b": 1, "a": 2}, indent=None, sort_keys=False)
    assert (tmp_path / "x.json").read_text() == '{"b": 1, "a": 2}\n'


def test_atomic_dir(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    with atomic.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "a"
    assert _mode(out) == _dir_bits()
    with pytest.raises(FileExistsError, match="not an empty folder"):
        with atomic.atomic_dir(out):
            pytest.fail("the block must not run when the folder is taken")
    with atomic.atomic_dir(out, replace=True) as tmp:
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    with pytest.raises(KeyError), atomic.atomic_dir(out, replace=True) as tmp:
        (tmp / "c.txt").write_text("c")
        raise KeyError("x")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        with atomic.atomic_dir(tmp_path / "file", replace=True):
            pass


def _dir_bits() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def test_no_other_module_renames_a_temporary_into_place() -> None:
    """Every atomic write goes through edgesnn.atomic: no other module calls os.replace /
    os.rename, ``tmp*.replace/rename(target)``, or tempfile.mkstemp/mkdtemp beside a target
    (``dir=``); scratch folders in the system temp directory are fine."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "atomic.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            func = node.func
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if (owner == "os" and func.attr in ("replace", "rename")) or \
                    (owner == "tempfile" and func.attr in ("mkstemp", "mkdtemp") and
                     any(k.arg == "dir" for k in node.keywords)) or \
                    (func.attr in ("replace", "rename") and not node.args[1:] and
                     len(node.args) == 1 and not isinstance(node.args[0], ast.Constant) and
                     owner.startswith("tmp")):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []

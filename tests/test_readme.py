"""The README stays true to the CLI: every ``edgesnn`` command and option it names exists in
the parser, and every command the parser has is in the README."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from edgesnn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OPTION = re.compile(r"--?[a-zA-Z][a-zA-Z0-9-]*")


def _snippets(text: str) -> list[str]:
    """Each line of every fenced code block, and every inline code span (which may wrap onto
    the next line of its paragraph)."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    spans = re.findall(r"`((?:[^`\n]|\n(?!\n))+)`", prose)
    return [ln for b in blocks for ln in b.splitlines()] + spans


def invocations(text: str) -> list[tuple[str | None, list[str], str]]:
    """``(command or None, options, snippet)`` for every ``edgesnn ...`` (and ``.ci/main ...``,
    whose arguments go to ``edgesnn run``) in the code of ``text``."""
    found = []
    for snippet in _snippets(text):
        tokens = snippet.split()
        for i, tok in enumerate(tokens):
            if tok.rstrip("`") not in ("edgesnn", ".ci/main") and \
                    not tok.endswith(("/edgesnn", "/.ci/main")):
                continue
            rest = tokens[i + 1:]
            end = next((k for k, t in enumerate(rest) if t in ("&&", "||", ";", "|", "#") or
                        t.endswith(("edgesnn", ".ci/main"))), len(rest))
            rest = rest[:end]
            command: str | None = "run" if tok.endswith(".ci/main") else None
            if command is None:
                while rest and rest[0] in ("-v", "-vv", "--verbose"):
                    rest = rest[1:]
                if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]):
                    command, rest = rest[0], rest[1:]
            options = [o for t in rest for o in OPTION.findall(t) if t.lstrip("[").startswith("-")
                       or "\\|-" in t or "|-" in t]
            found.append((command, options, snippet))
    return found


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, dict(sub.choices)


def test_invocations_are_found() -> None:
    text = ("Run `edgesnn compress RUN [--sparsity S] [--per-channel\\|--per-layer]`, then\n"
            "```sh\nbash .ci/main --device lm3s6965evb\n.venv/bin/edgesnn -v eval R "
            "--samples 5 && edgesnn report R\n```\n`import edgesnn` and `pip install edgesnn`")
    found = {(c, tuple(o)) for c, o, _ in invocations(text)}
    assert found == {("compress", ("--sparsity", "--per-channel", "--per-layer")),
                     ("run", ("--device",)), ("eval", ("--samples",)), ("report", ()),
                     (None, ())}


def test_every_command_and_option_the_readme_names_exists() -> None:
    parser, commands = _parsers()
    found = invocations(README.read_text(encoding="utf-8"))
    assert len(found) > 20
    wrong = []
    for command, options, snippet in found:
        if command is not None and command not in commands:
            wrong.append(f"unknown command {command!r} in `{snippet}`")
            continue
        known = (commands[command] if command else parser)._option_string_actions
        wrong += [f"edgesnn {command or ''}: unknown option {o} in `{snippet}`"
                  for o in options if o not in known]
    assert wrong == []


def test_every_command_is_in_the_readme() -> None:
    named = {c for c, _, _ in invocations(README.read_text(encoding="utf-8"))}
    missing = sorted(set(_parsers()[1]) - named)
    assert missing == [], f"commands the README does not show: {missing}"


@pytest.mark.parametrize("section", ["## Where to add things", "## CLI", "## Layout"])
def test_sections_exist(section: str) -> None:
    assert re.search(rf"^{re.escape(section)}\b", README.read_text(encoding="utf-8"), re.M)

"""Docs equal the parser: every `--flag` that README.md and docs/*.md name for a command is in its `--help`.

How a flag is tied to a command (robust to new commands and docs):
- in a code span or code-block line that mentions `peaktrade <command> ...`, the flags after the mention belong to
  that command (up to a shell comment, `|`, `&&` or `;`); such a mention outside a table also sets the context;
- a table row whose first cell names flags (`| `--limit N` | ... |`) belongs to the context command (the last
  `peaktrade <command>` of a heading, a code block or a table's first cell above it);
- a prose code span that is only a flag (`--loop`) must exist in some peaktrade command.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from peaktrade.cli import build_parser
from tests.conftest import ROOT, run_cli

_MENTION = re.compile(r"\bpeaktrade((?:\s+[a-z][a-z0-9-]*)*)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_SPAN = re.compile(r"`([^`]+)`")


def help_flags() -> dict[tuple[str, ...], set[str]]:
    """Each command path (`("session", "run")`, root `()`) -> the `--flags` its `--help` text shows."""
    out: dict[tuple[str, ...], set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        out[path] = set(_FLAG.findall(parser.format_help()))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return out


def _command(words: str, commands: dict[tuple[str, ...], set[str]]) -> tuple[str, ...]:
    tokens = tuple(words.split())
    for n in range(len(tokens), -1, -1):
        if tokens[:n] in commands:
            return tokens[:n]
    return ()


def doc_problems(name: str, text: str, commands: dict[tuple[str, ...], set[str]]) -> tuple[list[str], int]:
    """(problems, number of flags checked) for one Markdown document."""
    problems: list[str] = []
    checked = 0
    everywhere = set().union(*commands.values())
    context: tuple[str, ...] | None = None
    in_block = False

    def check(flags: list[str], command: tuple[str, ...] | None, lineno: int) -> None:
        nonlocal checked
        for flag in flags:
            checked += 1
            allowed = everywhere if command is None else commands[command] | commands[()]
            if flag not in allowed:
                where = "any peaktrade command" if command is None else f"`peaktrade {' '.join(command)} --help`"
                problems.append(f"{name}:{lineno}: {flag} is not in {where}")

    def mentions(segment: str, lineno: int, set_context: bool) -> bool:
        nonlocal context
        found = False
        for m in _MENTION.finditer(segment):
            command = _command(m.group(1), commands)
            rest = re.split(r"\s#|\||&&|;|\bpeaktrade\b", segment[m.end() - len(m.group(1)) :])[0]
            check(_FLAG.findall(rest), command, lineno)
            if set_context:
                context = command
            found = True
        return found

    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            mentions(line, lineno, set_context=True)
            continue
        cells = line.strip().strip("|").split("|") if line.lstrip().startswith("|") else None
        spans = _SPAN.findall(line.replace("\\|", "/"))
        if cells is not None:
            first = _SPAN.findall(cells[0].replace("\\|", "/"))
            for span in first:
                if not mentions(span, lineno, set_context=True) and span.startswith("--"):
                    check(_FLAG.findall(span), context, lineno)
            for span in _SPAN.findall("|".join(cells[1:])):
                if not mentions(span, lineno, set_context=False) and span.startswith("--"):
                    check(_FLAG.findall(span), None, lineno)
            continue
        for span in spans:
            if not mentions(span, lineno, set_context=line.startswith("#")) and span.startswith("--"):
                check(_FLAG.findall(span), None, lineno)
    return problems, checked


def test_every_documented_flag_exists_in_its_commands_help() -> None:
    commands = help_flags()
    assert ("session", "run") in commands and len(commands) >= 15
    problems: list[str] = []
    checked = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found, n = doc_problems(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"), commands)
        problems += found
        checked += n
    assert checked > 50, "the docs scan found almost no flags: the parsing rules no longer fit the docs"
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_flag_that_drifted() -> None:
    commands = help_flags()
    doc = """## `peaktrade report sessions`

| flag | meaning |
|---|---|
| `--limit N` | fine |
| `--summary` | renamed long ago |

```bash
peaktrade site build --full --fast   # --fast does not exist
flock -n -E 75 state/lock peaktrade site serve --port 1 && ruff format --check
```
Prose may name `--loop` (site build has it) but not `--nope`.
"""
    problems, checked = doc_problems("x.md", doc, commands)
    assert problems == [
        "x.md:6: --summary is not in `peaktrade report sessions --help`",
        "x.md:9: --fast is not in `peaktrade site build --help`",
        "x.md:12: --nope is not in any peaktrade command",
    ]
    assert checked == 7


def test_help_flags_are_what_the_real_command_prints(tmp_path: Path) -> None:
    out = run_cli("session", "run", "--help", cwd=tmp_path)
    assert out.returncode == 0
    assert set(_FLAG.findall(out.stdout)) == help_flags()[("session", "run")]

"""Probes around the real CLI, run in a fresh interpreter: which functions a `site build` calls, in what order."""

from __future__ import annotations


def spying_build(*spies: tuple[str, str, object], show: str = "seen") -> str:
    """A probe: each (module, attribute, label) wrapped to append `label` to `seen` when called, then the real
    `site build`; prints its exit code and `show`. Worker processes start through `multiprocessing.process`
    `BaseProcess.start`, so a spy there counts them."""
    lines = ["import sys; seen = []"]
    for n, (module, attr, label) in enumerate(spies):
        lines += [
            f"import {module} as m{n}; real{n} = m{n}.{attr}",
            f"m{n}.{attr} = lambda *a, **k: (seen.append({label!r}), real{n}(*a, **k))[1]",
        ]
    return "\n".join([*lines, f"from peaktrade.cli import main; rc = main(['site', 'build']); print(rc, {show})"])


WORKER = ("multiprocessing.process", "BaseProcess.start")  # a spy on worker processes started

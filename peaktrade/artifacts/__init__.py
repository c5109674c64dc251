"""The run directory format (schema_version 1). Nothing outside this package builds its paths or parses it.

The names below are loaded on first use (PEP 562): most of the package needs pyarrow, and a light module inside
it (`scancache`, used by the quiet `site build`) must be importable without paying for it.
"""

from peaktrade.lazy import loader

_HOME = {
    "RunEntry": "catalog",
    "RunScan": "catalog",
    "find_run": "catalog",
    "latest_run_dir": "catalog",
    "run_meta": "catalog",
    "scan_runs": "catalog",
    "RunReader": "reader",
    "WRITER_DIED": "recover",
    "Recovered": "recover",
    "recover_all": "recover",
    "recover_run": "recover",
    "writer_alive": "recover",
    "EVENT_COLUMNS": "schema",
    "EVENT_SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "RunWriter": "writer",
    "compact": "writer",
}

__all__ = sorted(_HOME)

__getattr__ = loader(__name__, _HOME)

"""The run directory format (schema_version 1). Nothing outside this package builds its paths or parses it."""

from peaktrade.artifacts.catalog import RunEntry, RunScan, find_run, latest_run_dir, run_meta, scan_runs
from peaktrade.artifacts.reader import RunReader
from peaktrade.artifacts.recover import WRITER_DIED, Recovered, recover_all, recover_run, writer_alive
from peaktrade.artifacts.schema import EVENT_COLUMNS, EVENT_SCHEMA, SCHEMA_VERSION
from peaktrade.artifacts.writer import RunWriter, compact

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "SCHEMA_VERSION",
    "WRITER_DIED",
    "Recovered",
    "RunEntry",
    "RunReader",
    "RunScan",
    "RunWriter",
    "compact",
    "find_run",
    "latest_run_dir",
    "recover_all",
    "recover_run",
    "run_meta",
    "scan_runs",
    "writer_alive",
]

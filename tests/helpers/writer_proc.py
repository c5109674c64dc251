"""A run writer in its own process, for crash and concurrency tests.

usage: writer_proc.py RUNS_DIR ROWS FLUSH_ROWS SEGMENT_ROWS [SLEEP_EVERY_FLUSH]
Prints the run directory, then `flushed N` after each flush, so the parent knows what is durable.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import event

from peaktrade.artifacts import RunWriter


def main() -> None:
    runs_dir, rows, flush_rows, seg_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    writer = RunWriter.create(
        Path(runs_dir),
        mode="shadow",
        strategy_name="ma_crossover",
        symbol="BTC/EUR",
        timeframe="1m",
        flush_rows=flush_rows,
        flush_seconds=3600,
        segment_rows=seg_rows,
        fsync=False,
    )
    print(writer.run_dir, flush=True)
    for i in range(rows):
        writer.append_event(event(i))
        if i % 7 == 0:
            writer.append_order({"ts": event(i)["ts_bar"], "step": i, "side": "buy", "qty": 0.1, "status": "filled"})
        if (i + 1) % flush_rows == 0:
            print(f"flushed {writer.rows}", flush=True)
            if pause:
                time.sleep(pause)
    writer.close("completed")
    print("closed", flush=True)


if __name__ == "__main__":
    main()

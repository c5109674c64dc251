"""Market data that cannot be right is refused with file:line; sources keep the small BarSource protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import pytest

from peaktrade.errors import DataError, PeaktradeError, SessionError, UsageError
from peaktrade.marketdata import KrakenCsvSource, SyntheticSource, csv_name_info, pair_symbol
from tests.conftest import run_cli

T = 1735689600  # 2025-01-01 00:00 UTC


def rows(n: int, step: int = 60, start: int = T) -> list[str]:
    return [f"{start + step * i},100,101,99,100.5,1.5,3" for i in range(n)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def test_data_error_is_part_of_the_exception_tree() -> None:
    assert issubclass(DataError, SessionError) and issubclass(DataError, PeaktradeError)
    assert DataError("x").exit_code == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"{T + 120},100,1e308,99,100.5,1,1", r"XBTEUR_1.csv:3: high '1e308' is not a plausible price"),
        (f"{T + 120},100,inf,99,100.5,1,1", r"XBTEUR_1.csv:3: high 'inf' is not a plausible price"),
        (f"{T + 120},nan,101,99,100.5,1,1", r"XBTEUR_1.csv:3: open 'nan' is not a plausible price"),
        (f"{T + 120},0,101,99,100.5,1,1", r"XBTEUR_1.csv:3: open '0' is not a plausible price"),
        (f"{T + 120},100,101,-99,100.5,1,1", r"XBTEUR_1.csv:3: low '-99' is not a plausible price"),
        (f"{T + 120},100,98,102,100.5,1,1", r"XBTEUR_1.csv:3: high 98 is below low 102"),
        (f"{T + 120},100,101,99,100.5,-1,1", r"XBTEUR_1.csv:3: volume '-1' must be a finite number"),
        (f"{T + 120},100,101,99,100.5,nan,1", r"XBTEUR_1.csv:3: volume 'nan' must be a finite number"),
        ("inf,100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp 'inf' is not a time between 2000 and 2100"),
        ("nan,100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp 'nan' is not a time"),
        ("1e308,100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp '1e308' is not a time"),
        (f"{T * 1000},100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp .* \(milliseconds\?"),
        ("-5,100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp '-5' is not a time"),
        (f"{T + 60},100,101,99,100.5,1,1", r"XBTEUR_1.csv:3: timestamp .* is not after the previous row"),
        (f"{T + 120};100;101", r"XBTEUR_1.csv:3: expected 7 columns"),
    ],
)
def test_rows_that_cannot_be_right_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "XBTEUR_1.csv", [*rows(2), row, *rows(2, start=T + 600)])
    with pytest.raises(DataError, match=message):
        list(KrakenCsvSource(path))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_file_is_refused_up_front(tmp_path: Path, content: str) -> None:
    path = tmp_path / "XBTEUR_60.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"XBTEUR_60.csv:1: the file has no rows"):
        KrakenCsvSource(path)


def test_a_gap_longer_than_max_gap_bars_fails_under_fill(tmp_path: Path) -> None:
    # one stray row at the start, 10 hours before the rest: 599 missing 1m bars
    path = write(tmp_path / "XBTEUR_1.csv", [*rows(1, start=T - 36_000), *rows(5)])
    with pytest.raises(DataError, match=r"XBTEUR_1.csv:2: 599 bars missing .*max_gap_bars = 100"):
        list(KrakenCsvSource(path, "fill", max_gap_bars=100))
    assert len(list(KrakenCsvSource(path, "fill", max_gap_bars=599))) == 1 + 599 + 5


def test_a_long_gap_is_skipped_with_a_note_under_skip(tmp_path: Path) -> None:
    path = write(tmp_path / "XBTEUR_1.csv", [*rows(3), *rows(3, start=T + 60 * 500), *rows(3, start=T + 60 * 503)])
    source = KrakenCsvSource(path, "skip", max_gap_bars=100)
    assert len(list(source)) == 9
    assert source.notes == [
        "XBTEUR_1.csv:4: skipped a gap of 497 bars (2025-01-01 00:02 UTC to 2025-01-01 08:20 UTC)"
    ]


def test_pair_names_become_symbols_and_minutes_timeframes() -> None:
    assert pair_symbol("ETHEUR") == "ETH/EUR"
    assert pair_symbol("XBTEUR") == "BTC/EUR"
    assert pair_symbol("XXBTZEUR") == "BTC/EUR"
    assert pair_symbol("XETHXXBT") == "ETH/BTC"
    assert pair_symbol("SOLUSDT") == "SOL/USDT"
    assert pair_symbol("XDGUSD") == "DOGE/USD"
    assert pair_symbol("FOOBAR") is None
    assert csv_name_info(Path("data/ETHEUR_60.csv")) == ("ETH/EUR", "1h")
    assert csv_name_info(Path("XBTEUR_1440.csv")) == ("BTC/EUR", "1d")
    with pytest.raises(UsageError, match="interval of 7 minutes is not supported"):
        csv_name_info(Path("XBTEUR_7.csv"))


def test_history_comes_before_the_first_bar_and_is_not_repeated(tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    synth = SyntheticSource(start=start, seed=3)
    history = synth.history(30)
    first = next(iter(synth))
    assert len(history) == 30 and history[-1].ts < start == first.ts
    assert history[-1].close == first.open  # one continuous walk
    assert next(islice(SyntheticSource(start=start, seed=3), 1)).ts == start
    csv = KrakenCsvSource(write(tmp_path / "XBTEUR_1.csv", rows(50)))
    history = csv.history(30)
    rest = list(csv)
    assert len(history) == 30 and len(rest) == 20 and rest[0].ts > history[-1].ts


def run_csv(workspace: Path, name: str, lines: list[str], *args: str):
    path = write(workspace / name, lines)
    return run_cli("session", "run", "--source", f"csv:{path}", "--no-registry", *args, cwd=workspace)


def test_cli_refuses_bad_data_with_file_line_and_exit_1(workspace: Path) -> None:
    empty = run_csv(workspace, "XBTEUR_60.csv", [])
    assert empty.returncode == 1 and "XBTEUR_60.csv:1: the file has no rows" in empty.stderr
    assert "unexpected error" not in empty.stderr and not (workspace / "live_runs").exists()  # nothing to show
    stray = run_csv(workspace, "XBTEUR_1.csv", ["0,100,101,99,100.5,1,1", *rows(100)])
    assert stray.returncode == 1 and "XBTEUR_1.csv:1: timestamp '0' is not a time" in stray.stderr
    lines = rows(100)
    lines[60] = lines[60].replace(",101,", ",1e308,")
    huge = run_csv(workspace, "XBTEUR_1.csv", lines)
    assert huge.returncode == 1 and "status      failed (DataError: " in huge.stdout
    assert "XBTEUR_1.csv:61: high '1e308' is not a plausible price" in huge.stdout
    short = run_csv(workspace, "XBTEUR_1.csv", rows(10))
    assert short.returncode == 1 and "fewer than the 30 bars of history ma_crossover needs" in short.stderr

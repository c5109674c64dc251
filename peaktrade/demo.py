"""The demo: several sessions on built-in synthetic data, so every reader has something to show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from peaktrade import session
from peaktrade.config import Settings
from peaktrade.marketdata import SyntheticSource, write_kraken_csv


@dataclass(frozen=True)
class DemoSession:
    title: str
    flags: dict


def demo_sessions(data_dir: Path) -> list[DemoSession]:
    """The demo line-up; writes the two Kraken-format CSV files it replays into `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    hourly = list(islice(SyntheticSource(start=start, timeframe="1h", seed=11), 2000))
    good = data_dir / "XBTEUR_60.csv"
    write_kraken_csv(good, hourly, drop_every=37)  # gaps where "nothing traded", volumes like 1.2E+00
    bad = data_dir / "ETHEUR_60.csv"
    write_kraken_csv(bad, hourly[:1200])
    lines = bad.read_text().splitlines()
    lines[800] = lines[800].replace(",", ";", 3)  # a corrupt row in the middle of the file
    bad.write_text("\n".join(lines) + "\n")
    return [
        DemoSession(
            "shadow, MA crossover, synthetic 1m",
            dict(
                mode="shadow",
                strategy="ma_crossover",
                steps=3000,
                source="synthetic:42",
                notes="demo: trend following on the synthetic feed",
                tags=["demo"],
            ),
        ),
        DemoSession(
            "paper, RSI reversion, ETH/EUR synthetic 5m",
            dict(
                mode="paper",
                strategy="rsi_reversion",
                symbol="ETH/EUR",
                timeframe="5m",
                steps=3000,
                source="synthetic:7",
                position_fraction=0.2,
                tags=["demo"],
            ),
        ),
        DemoSession(
            "shadow, breakout with tight risk limits (orders get blocked)",
            dict(
                mode="shadow",
                strategy="breakout",
                steps=6000,
                source="synthetic:3",
                position_fraction=0.12,
                notes="demo: daily loss limit 25 and exposure limit 1500",
                tags=["demo", "risk"],
                risk_overrides={"max_total_exposure_notional": 1500.0, "max_daily_loss_abs": 25.0},
            ),
        ),
        DemoSession(
            "paper, momentum, Kraken CSV replay XBTEUR_60 (with gaps)",
            dict(mode="paper", strategy="momentum", symbol="BTC/EUR", source=f"csv:{good}", tags=["demo", "replay"]),
        ),
        DemoSession(
            "shadow, Kraken CSV replay with a corrupt row (fails cleanly)",
            dict(
                mode="shadow",
                strategy="ma_crossover",
                symbol="ETH/EUR",
                source=f"csv:{bad}",
                notes="demo: this replay hits a corrupt row and fails",
                tags=["demo", "failure"],
            ),
        ),
    ]


def run_demo(settings: Settings, on_result: Callable[[DemoSession, session.SessionResult], None]) -> Iterator:
    """Run each demo session; `on_result` is called after each (the CLI prints there)."""
    data_dir = Path(settings.paths.state_dir) / "demo"
    for item in demo_sessions(data_dir):
        plan = session.make_plan(settings, cli_args=("peaktrade", "demo"), **item.flags)
        result = session.run(plan, settings)
        on_result(item, result)
        yield result

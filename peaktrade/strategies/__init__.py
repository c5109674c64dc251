"""Strategy registry: `get(name)`, `SPECS`, and validation of `[strategy.<name>]` config tables."""

from __future__ import annotations

from peaktrade.errors import UsageError
from peaktrade.strategies.base import Param, Strategy, StrategySpec
from peaktrade.strategies.library import SPECS

BY_NAME = {spec.name: spec for spec in SPECS}


def get(name: str) -> StrategySpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UsageError(f"unknown strategy {name!r}; available: {', '.join(BY_NAME)}") from None


__all__ = ["BY_NAME", "SPECS", "Param", "Strategy", "StrategySpec", "get"]

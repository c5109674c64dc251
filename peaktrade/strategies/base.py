"""The strategy protocol and parameter specs. Strategies are pure and O(1) per bar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from peaktrade.models import Bar


class Strategy(Protocol):
    """`update` sees one closed bar at a time and returns the desired exposure: -1 short, 0 flat, 1 long."""

    def update(self, bar: Bar) -> int: ...


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int or float
    default: Any
    help: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class StrategySpec:
    name: str
    description: str
    params: tuple[Param, ...]
    factory: Callable[..., Strategy]
    # Cross-parameter rules: (predicate over the params dict, message naming the fix).
    rules: tuple[tuple[Callable[[dict[str, Any]], bool], str], ...] = ()
    # Bars of history the strategy needs before its first signal, from its (merged) parameters.
    warmup: Callable[[dict[str, Any]], int] = lambda p: 0

    def warmup_bars(self, params: dict[str, Any]) -> int:
        """How many bars of history to feed before the first counted bar (see `Engine.warm_up`)."""
        return int(self.warmup({**self.defaults(), **params}))

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def problems(self, params: dict[str, Any]) -> list[str]:
        """'key: problem' lines for unknown keys, wrong types and out-of-range values."""
        out = []
        known = {p.name: p for p in self.params}
        for key, value in params.items():
            spec = known.get(key)
            if spec is None:
                out.append(f"{key}: unknown parameter of {self.name}; known: {', '.join(known)}")
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (spec.type is int and not isinstance(value, int))
            ):
                kind = "a whole number" if spec.type is int else "a number"
                out.append(f"{key} = {value!r}: expected {kind} without quotes")
                continue
            if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
                bounds = f">= {spec.min}" + (f" and <= {spec.max}" if spec.max is not None else "")
                out.append(f"{key} = {value!r}: out of range: must be {bounds}")
        if not out:
            merged = {**self.defaults(), **params}
            out += [msg for ok, msg in self.rules if not ok(merged)]
        return out

    def build(self, params: dict[str, Any]) -> Strategy:
        return self.factory(**{**self.defaults(), **params})

"""Load and validate `config/config.toml` into frozen dataclasses.

Every problem in a file is collected and reported at once, one line each, naming the file, the dotted key,
the value and the fix (`ConfigError`, exit 2). Nothing else in peaktrade parses the config file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peaktrade.errors import ConfigError
from peaktrade.redact import is_secret_key, redact

ENV_VAR = "PEAKTRADE_CONFIG"
DEFAULT_PATH = Path("config/config.toml")


def _opt(
    default: Any,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    min_exclusive: bool = False,
) -> Any:
    """A dataclass field with validation metadata (range, choices) and a one-line description."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "min_exclusive": min_exclusive}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GeneralConfig:
    env_name: str = _opt("shadow_local", help="environment label shown beside sessions")
    base_currency: str = _opt("EUR", help="currency of cash, PnL and notionals")


@dataclass(frozen=True)
class PathsConfig:
    runs_dir: Path = _opt(Path("live_runs"))
    registry_dir: Path = _opt(Path("reports/experiments/live_sessions"))
    reports_dir: Path = _opt(Path("reports"))
    site_dir: Path = _opt(Path("site"))
    state_dir: Path = _opt(Path("state"))


@dataclass(frozen=True)
class LoggingConfig:
    """[shadow_paper_logging]: how run artifacts are flushed."""

    flush_interval_steps: int = _opt(50, min=1, max=1_000_000)
    flush_interval_seconds: float = _opt(2.0, min=0.0)
    fsync: bool = _opt(True)
    segment_rows: int = _opt(10_000, min=100, max=1_000_000)
    replay_flush_steps: int = _opt(5_000, min=1, max=1_000_000)


@dataclass(frozen=True)
class SessionConfig:
    """[session]: defaults of `peaktrade session run` (each has a flag of the same name)."""

    mode: str = _opt("shadow", choices=("shadow", "paper", "testnet", "live"))
    strategy: str = _opt("ma_crossover")
    symbol: str = _opt("BTC/EUR")
    timeframe: str = _opt("1m", choices=("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"))
    source: str = _opt("synthetic")
    start_balance: float = _opt(10_000.0, min=0.0, min_exclusive=True)
    position_fraction: float = _opt(0.1, min=0.0, max=1.0, min_exclusive=True)
    fee_rate: float = _opt(0.0026, min=0.0, max=0.1)
    slippage_bps: float = _opt(5.0, min=0.0, max=1000.0)
    allow_short: bool = _opt(False)
    csv_gap_policy: str = _opt("fill", choices=("fill", "skip"))
    max_gap_bars: int = _opt(1440, min=1, max=10_000_000, help="longest CSV gap (in bars) that is filled or skipped")


@dataclass(frozen=True)
class MonitoringConfig:
    """[live_monitoring]"""

    default_interval_seconds: float = _opt(2.0, min=0.1, max=3600)
    default_tail_rows: int = _opt(15, min=1, max=1000)
    use_colors: bool = _opt(True)
    stale_after_bars: int = _opt(3, min=1)
    stale_min_seconds: float = _opt(300.0, min=0.0)


@dataclass(frozen=True)
class RiskConfig:
    """[live_risk]: 0 disables a limit."""

    enabled: bool = _opt(True)
    max_order_notional: float = _opt(0.0, min=0.0)
    max_symbol_exposure_notional: float = _opt(0.0, min=0.0)
    max_total_exposure_notional: float = _opt(0.0, min=0.0)
    max_open_positions: int = _opt(0, min=0)
    max_daily_loss_abs: float = _opt(0.0, min=0.0)
    max_daily_loss_pct: float = _opt(0.0, min=0.0, max=100.0)
    min_order_notional: float = _opt(0.0, min=0.0)
    block_on_violation: bool = _opt(True)
    warning_threshold_factor: float = _opt(0.8, min=0.0, max=1.0, min_exclusive=True)


@dataclass(frozen=True)
class SiteConfig:
    title: str = _opt("peaktrade")
    refresh_seconds: int = _opt(60, min=5, max=86_400)
    page_size: int = _opt(50, min=5, max=1000)
    base_url: str = _opt("", help="public address of the built site, for links in alerts (empty: no links)")
    parallel_min_pages: int = _opt(
        1000, min=1, help="render pages in worker processes from this much work (a run page counts 10)"
    )


@dataclass(frozen=True)
class AlertsConfig:
    """[alerts]: apprise targets. Keep real URLs out of the repo: use `config_file` or PEAKTRADE_ALERT_URLS."""

    urls: list[str] = _opt([], help="apprise URLs; each gets the tag `urls_tag`")
    config_file: str = _opt("", help="apprise config file (TEXT or YAML, with tags), outside the repository")
    title_prefix: str = _opt("[peaktrade]")
    urls_tag: str = _opt("ops", help="tag given to the URLs of `urls` and $PEAKTRADE_ALERT_URLS")
    route_info: list[str] = _opt(["ops"], help="tags that receive info alerts (resolved messages)")
    route_warning: list[str] = _opt(["ops"], help="tags that receive warning alerts")
    route_critical: list[str] = _opt(["ops", "critical"], help="tags that receive critical alerts")
    cooldown_seconds: float = _opt(1800.0, min=0.0, max=604_800.0, help="repeat an unchanged alert after this")
    lookback_hours: float = _opt(24.0, min=0.0, max=8760.0, help="sessions that ended earlier are not alerted")
    drawdown_warning_pct: float = _opt(10.0, min=0.0, max=100.0, help="drawdown of a running run; 0 disables")
    drawdown_critical_pct: float = _opt(20.0, min=0.0, max=100.0, help="0 disables")
    daily_loss_warning_pct: float = _opt(3.0, min=0.0, max=100.0, help="loss since the day's start; 0 disables")
    daily_loss_critical_pct: float = _opt(5.0, min=0.0, max=100.0, help="0 disables")
    exchange_down_seconds: float = _opt(600.0, min=0.0, help="health check `exchange` failing this long: alert")
    outbox_max_age_hours: float = _opt(24.0, min=0.0, max=8760.0, help="undelivered messages are kept this long")
    history_limit: int = _opt(5000, min=10, max=1_000_000, help="alert records kept in state/alerts/history.jsonl")
    attach_charts: bool = _opt(True, help="attach the run's equity chart (PNG) to drawdown and loss alerts")


@dataclass(frozen=True)
class ExchangeConfig:
    """[exchange]: the exchange behind `--source kraken`, `--mode testnet`, `ops` and the health check.

    Credentials never live in this file: `api_key_env`/`api_secret_env` name the environment variables.
    """

    id: str = _opt("kraken", choices=("kraken",), help="ccxt exchange id")
    api_url: str = _opt("", help="base URL overriding ccxt's public and private API URL (proxies, tests)")
    timeout_seconds: float = _opt(10.0, min=0.1, max=120.0, help="per-request timeout")
    poll_seconds: float = _opt(30.0, min=0.05, max=3600.0, help="how often a live session asks for new candles")
    max_retries: int = _opt(3, min=0, max=20, help="retries of a network error per call")
    backoff_seconds: float = _opt(0.5, min=0.0, max=60.0, help="first retry wait; doubles each retry, with jitter")
    rate_limit_backoff_seconds: float = _opt(5.0, min=0.0, max=600.0, help="wait after a rate-limit answer")
    breaker_failures: int = _opt(5, min=1, max=1000, help="consecutive failures that open the circuit breaker")
    breaker_cooldown_seconds: float = _opt(30.0, min=0.0, max=3600.0, help="open breaker: wait before one probe")
    rate_limit_ms: int = _opt(1000, min=0, max=60_000, help="ccxt's spacing of requests in ms; 0 turns it off")
    history_bars: int = _opt(200, min=1, max=720, help="closed candles a live session warms up on")
    api_key_env: str = _opt("KRAKEN_API_KEY", help="environment variable holding the API key")
    api_secret_env: str = _opt("KRAKEN_API_SECRET", help="environment variable holding the API secret")


@dataclass(frozen=True)
class HealthConfig:
    """[health]: thresholds of `peaktrade ops health` and how much history it keeps."""

    history_retention: int = _opt(576, min=1, max=100_000, help="results kept in state/health/history.jsonl")
    interval_seconds: float = _opt(300.0, min=1.0, help="how often cron runs `ops health`")
    site_build_interval_seconds: float = _opt(60.0, min=1.0, help="how often cron runs `site build`")
    recover_interval_seconds: float = _opt(300.0, min=1.0, help="how often cron runs `runs recover`")
    alerts_interval_seconds: float = _opt(300.0, min=1.0, help="how often cron runs `alerts run`")
    missed_intervals: int = _opt(5, min=1, max=10_000, help="intervals without a fresh result before it warns")
    disk_warn_free_mb: float = _opt(2048.0, min=0.0, help="free space below this warns")
    disk_fail_free_mb: float = _opt(512.0, min=0.0, help="free space below this fails")
    disk_warn_free_percent: float = _opt(10.0, min=0.0, max=100.0, help="free share below this warns")
    disk_fail_free_percent: float = _opt(3.0, min=0.0, max=100.0, help="free share below this fails")
    timeline_results: int = _opt(48, min=1, max=1000, help="results shown in the site's health timeline")
    timeout_seconds: float = _opt(10.0, min=0.1, max=600.0, help="time budget of all checks together")


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration. `source` is the file it came from (None: built-in defaults)."""

    general: GeneralConfig = field(default_factory=GeneralConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    shadow_paper_logging: LoggingConfig = field(default_factory=LoggingConfig)
    live_monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    live_risk: RiskConfig = field(default_factory=RiskConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    strategy: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None

    def get(self, dotted: str, default: Any = None) -> Any:
        """Dotted lookup (`live_monitoring.default_tail_rows`), as the original system's config had."""
        node: Any = self
        for part in dotted.split("."):
            if isinstance(node, dict):
                if part not in node:
                    return default
                node = node[part]
            elif dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
                node = getattr(node, part)
            else:
                return default
        return node

    def as_dict(self) -> dict[str, Any]:
        """Plain data (paths as strings) for config snapshots; redact before writing it anywhere."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            out[f.name] = _plain(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
        return out


SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Settings)
    if f.name not in ("strategy", "source")
}


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """`--config`, else $PEAKTRADE_CONFIG, else ./config/config.toml if it exists, else None (defaults)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load(explicit: str | os.PathLike[str] | None = None) -> Settings:
    """Find, parse and validate the config; raise `ConfigError` listing every problem."""
    path = find_config(explicit)
    if path is None:
        return Settings()
    if not path.is_file():
        how = "--config" if explicit else f"${ENV_VAR}"
        raise ConfigError([f"{path}: config file not found (given by {how}); check the path"])
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}; fix the line it names"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from None
    return from_dict(data, source=path)


def from_dict(data: dict[str, Any], source: Path | None = None) -> Settings:
    """Validate a parsed TOML document; every problem is collected before raising."""
    where = str(source) if source else "<config>"
    problems: list[str] = []
    built: dict[str, Any] = {}
    known = [*SECTIONS, "strategy"]
    for name, table in data.items():
        if name not in known:
            problems.append(_unknown(where, name, table, known, "section"))
        elif name != "strategy" and not isinstance(table, dict):
            # only the kind: a whole section written as a value may be a secret (alerts = "tgram://...")
            problems.append(f"{where}: {name}: expected a table [{name}], got a {_kind(table)}")
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if isinstance(table, dict):
            built[name] = _build(cls, table, name, where, problems)
    strategies = data.get("strategy", {})
    if not isinstance(strategies, dict):
        problems.append(f"{where}: strategy: expected tables [strategy.<name>], got a {_kind(strategies)}")
        strategies = {}
    clean: dict[str, dict[str, Any]] = {}
    if strategies:
        from peaktrade.strategies import BY_NAME  # only when the file has strategy tables

        for sname, params in strategies.items():
            spec = BY_NAME.get(sname)
            if not isinstance(params, dict):
                problems.append(f"{where}: strategy.{sname}: expected a table [strategy.{sname}]")
            elif spec is None:
                problems.append(_unknown(where, f"strategy.{sname}", params, list(BY_NAME), "strategy"))
            else:
                problems += [f"{where}: strategy.{sname}.{problem}" for problem in spec.problems(params)]
                clean[sname] = dict(params)
    if problems:
        raise ConfigError(problems)
    return Settings(**built, strategy=clean, source=source)


def _build(cls: type, table: dict[str, Any], section: str, where: str, problems: list[str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{section}.{key}"
        if key not in fields:
            problems.append(_unknown(where, dotted, value, list(fields), "key"))
            continue
        ok, converted, problem = _check(hints[key], fields[key].metadata, value)
        if ok:
            values[key] = converted
        else:
            problems.append(f"{where}: {dotted} = {_show(value, key)}: {problem}")
    return cls(**values)


def _check(hint: Any, meta: dict[str, Any], value: Any) -> tuple[bool, Any, str]:
    """(ok, converted value, problem-with-fix) for one value against its type hint and metadata."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            return False, None, "expected true or false (lower case, no quotes)"
        return True, value, ""
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return False, None, "expected a whole number without quotes, e.g. 50"
        return _range(value, meta)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, None, "expected a number without quotes, e.g. 2.5"
        return _range(float(value), meta)
    if hint is str or hint is Path:
        if not isinstance(value, str):
            return False, None, 'expected a string in double quotes, e.g. "text"'
        choices = meta.get("choices")
        if choices and value not in choices:
            return False, None, f"expected one of {', '.join(choices)}"
        if hint is Path and not value.strip():
            return False, None, "expected a non-empty path"
        return True, Path(value) if hint is Path else value, ""
    if origin is list or hint is list:
        (inner,) = typing.get_args(hint) or (str,)
        if not isinstance(value, list) or not all(isinstance(v, inner) for v in value):
            return False, None, f'expected a list of {inner.__name__}s, e.g. ["a", "b"]'
        return True, list(value), ""
    if isinstance(hint, types.UnionType):
        return True, value, ""
    return True, value, ""


def _range(value: float, meta: dict[str, Any]) -> tuple[bool, Any, str]:
    lo, hi, excl = meta.get("min"), meta.get("max"), meta.get("min_exclusive")
    too_low = lo is not None and (value < lo or (excl and value == lo))
    too_high = hi is not None and value > hi
    if not (too_low or too_high):
        return True, value, ""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if excl else '>='} {lo}")
    if hi is not None:
        parts.append(f"<= {hi}")
    return False, None, f"out of range: must be {' and '.join(parts)}"


def _unknown(where: str, dotted: str, value: Any, known: list[str], kind: str) -> str:
    last = dotted.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(last, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    return f"{where}: {dotted}: unknown {kind}; {hint} (remove or rename it)"


def _show(value: Any, key: str = "") -> str:
    """The value as an error message shows it; never the value of a secret-bearing key (urls, token, ...),
    and never credentials inside a URL, because config errors end up in cron logs."""
    if is_secret_key(key):
        return f"a {_kind(value)} (value hidden: {key} may hold a secret)"
    if isinstance(value, str):
        value = redact(value)
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a table"
    return repr(redact(value))


def _kind(value: Any) -> str:
    for cls, name in ((bool, "boolean"), (str, "string"), (int, "number"), (float, "number"), (list, "list")):
        if isinstance(value, cls):
            return name
    return "table" if isinstance(value, dict) else type(value).__name__


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

from __future__ import annotations

from pathlib import Path

import pytest

from peaktrade import config
from peaktrade.errors import ConfigError
from tests.conftest import run_cli


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_a_file(workspace: Path) -> None:
    (workspace / "config" / "config.toml").unlink()
    cfg = config.load()
    assert cfg.source is None
    assert cfg.paths.runs_dir == Path("live_runs")
    assert cfg.shadow_paper_logging.flush_interval_steps == 50
    assert cfg.live_monitoring.default_tail_rows == 15


def test_shipped_config_is_valid_and_equals_defaults() -> None:
    from peaktrade.strategies import SPECS

    cfg = config.load(Path(__file__).parent.parent / "config" / "config.toml")
    shipped, defaults = cfg.as_dict(), config.Settings().as_dict()
    assert shipped.pop("strategy") == {spec.name: spec.defaults() for spec in SPECS}
    defaults.pop("strategy")
    assert shipped == defaults


def test_strategy_tables_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path / "s.toml", "[strategy.ma_crossover]\nfast_window = 40\nslow = 3\n[strategy.nope]\nx = 1\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    text = "\n".join(info.value.problems)
    assert "strategy.ma_crossover.slow: unknown parameter of ma_crossover" in text
    assert "strategy.nope: unknown strategy" in text


def test_settings_are_frozen(workspace: Path) -> None:
    cfg = config.load()
    with pytest.raises(AttributeError):
        cfg.paths.runs_dir = Path("x")  # type: ignore[misc]


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.toml",
        '[shadow_paper_logging]\nflush_interval_step = 5\nfsync = "yes"\n'
        '[live_risk]\nwarning_threshold_factor = 1.5\nmax_order_notional = "25"\n'
        "[nonsense]\nx = 1\n",
    )
    with pytest.raises(ConfigError) as info:
        config.load(path)
    problems = info.value.problems
    assert len(problems) == 5
    text = "\n".join(problems)
    assert (
        f"{path}: shadow_paper_logging.flush_interval_step: unknown key; did you mean 'flush_interval_steps'?" in text
    )
    assert "shadow_paper_logging.fsync = string 'yes': expected true or false" in text
    assert "live_risk.warning_threshold_factor = 1.5: out of range: must be > 0.0 and <= 1.0" in text
    assert "live_risk.max_order_notional = string '25': expected a number without quotes" in text
    assert "nonsense: unknown section" in text
    assert all(line.startswith(str(path)) for line in problems)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[general\nenv_name = 1\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value) and "line 1" in str(info.value)


def test_config_found_via_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "elsewhere.toml", '[paths]\nruns_dir = "other_runs"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.ENV_VAR, str(path))
    assert config.load().paths.runs_dir == Path("other_runs")


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_dotted_get_like_the_original_config_object() -> None:
    cfg = config.Settings()
    assert cfg.get("live_monitoring.default_tail_rows", 99) == 15
    assert cfg.get("live_monitoring.missing", 99) == 99
    assert cfg.get("nothing.here") is None


def test_cli_reports_config_errors_with_exit_2(workspace: Path) -> None:
    write(workspace / "config" / "config.toml", '[paths]\nruns_dir = 5\nsite_dir = ""\n')
    result = run_cli("config", "check", cwd=workspace)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "paths.runs_dir = 5: expected a string" in lines[0]
    assert "paths.site_dir" in lines[1] and "non-empty path" in lines[1]
    assert "Traceback" not in result.stderr


def test_cli_config_show_redacts_alert_urls(workspace: Path) -> None:
    write(workspace / "config" / "config.toml", '[alerts]\nurls = ["json://127.0.0.1:1/secret-token-123"]\n')
    result = run_cli("config", "show", cwd=workspace)
    assert result.returncode == 0
    assert "secret-token-123" not in result.stdout
    assert '"urls": "***"' in result.stdout

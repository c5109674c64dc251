"""No configured secret value may appear anywhere under the run or registry directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peaktrade import config, registry
from peaktrade.artifacts import RunWriter
from peaktrade.redact import redact, redact_args
from tests.conftest import T0, event, run_cli

SECRETS = ["tgram://123456:AAbbCCdd-secret-bot-token/987", "hunter2-password-value"]


def all_bytes(*dirs: Path) -> bytes:
    return b"".join(p.read_bytes() for d in dirs for p in d.rglob("*") if p.is_file())


def test_config_secrets_never_reach_artifacts(tmp_path: Path) -> None:
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(f'[alerts]\nurls = ["{SECRETS[0]}"]\nconfig_file = ""\n')
    cfg = config.load(cfg_file)
    snapshot = {
        **cfg.as_dict(),
        "exchange": {"api_key": "k3y-value-123", "password": SECRETS[1]},
        "webhook_note": f"posting to https://user:{SECRETS[1]}@hooks.example/x",
    }
    runs, reg = tmp_path / "live_runs", tmp_path / "registry"
    with RunWriter.create(
        runs, mode="paper", strategy_name="m", symbol="BTC/EUR", timeframe="1m", config_snapshot=snapshot, fsync=False
    ) as w:
        for i in range(20):
            w.append_event(event(i))
    registry.write_record(
        reg,
        registry.new_record(
            session_id="session_1",
            run_id=w.run_id,
            mode="paper",
            env_name="e",
            symbol="BTC/EUR",
            strategy="m",
            started_at=T0,
            config=snapshot,
        ),
    )
    blob = all_bytes(runs, reg)
    for secret in [*SECRETS, "k3y-value-123"]:
        assert secret.encode() not in blob
    assert b"***" in blob


def test_redact_keeps_structure_and_harmless_values() -> None:
    out = redact(
        {
            "live_risk": {"max_order_notional": 25.0},
            "alerts": {"urls": ["x"], "title_prefix": "[p]"},
            "token": "",
            "nested": [{"secret": "s"}],
        }
    )
    assert out == {
        "live_risk": {"max_order_notional": 25.0},
        "alerts": {"urls": "***", "title_prefix": "[p]"},
        "token": "",
        "nested": [{"secret": "***"}],
    }


def test_inline_credentials_are_redacted_in_strings_and_command_lines() -> None:
    assert redact("https://api.example/v1?token=abc123&limit=5&key=k9#x") == (
        "https://api.example/v1?token=***&limit=5&key=***#x"
    )
    assert redact(["wss://bob:hunter2@feed.example/s?signature=deadbeef"]) == [
        "wss://***@feed.example/s?signature=***"
    ]
    assert redact({"note": "secret=s3 and api_secret=s4; signal=1 mode=paper"}) == {
        "note": "secret=*** and api_secret=***; signal=1 mode=paper"
    }
    assert redact_args(["peaktrade", "--api-key=K", "--token", "T", "--steps", "5", "--notes", "a?sig=Z"]) == [
        "peaktrade",
        "--api-key=***",
        "--token",
        "***",
        "--steps",
        "5",
        "--notes",
        "a?sig=***",
    ]


def test_cli_args_and_config_snapshot_of_a_real_session_carry_no_token(workspace: Path) -> None:
    url = "https://bob:pa55word@hooks.example/x?token=TOKEN123&key=KEY456&signature=SIG789"
    out = run_cli("session", "run", "--steps", "5", "--notes", url, "--tags", "secret=TAG000", cwd=workspace)
    assert out.returncode == 0, out.stderr
    blob = all_bytes(workspace / "live_runs", workspace / "reports")
    for secret in (b"pa55word", b"TOKEN123", b"KEY456", b"SIG789", b"TAG000"):
        assert secret not in blob
    [rec] = [json.loads(p.read_text()) for p in (workspace / "reports/experiments/live_sessions").glob("*.json")]
    assert "https://***@hooks.example/x?token=***&key=***&signature=***" in rec["cli_args"]
    assert rec["config"]["session"]["notes"] == "https://***@hooks.example/x?token=***&key=***&signature=***"


@pytest.mark.parametrize(
    "toml",
    [
        f'[alerts]\nurls = "{SECRETS[0]}"\n',
        f'[alerts]\nurls = ["{SECRETS[0]}", 5]\n',
        f'alerts = "{SECRETS[0]}"\n',
        f'[exchange]\napi_url = ["{SECRETS[0]}"]\n',
        f'[exchange]\napi_key_env = ["{SECRETS[1]}"]\n',
        f'[general]\nenv_name = ["https://u:{SECRETS[1]}@x/?token=abc"]\n',
    ],
)
def test_config_errors_never_echo_a_secret(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    out = run_cli("config", "check", "--config", str(path), cwd=tmp_path)
    assert out.returncode == 2 and "config.toml: " in out.stderr  # the problem is still named
    for secret in (*SECRETS, "AAbbCCdd", "?token=abc"):
        assert secret not in out.stderr + out.stdout

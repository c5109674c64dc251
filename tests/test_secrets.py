"""No configured secret value may appear anywhere under the run or registry directories."""

from __future__ import annotations

from pathlib import Path

from peaktrade import config, registry
from peaktrade.artifacts import RunWriter
from peaktrade.redact import redact
from tests.conftest import T0, event

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

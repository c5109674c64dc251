from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from peaktrade import registry, registry_index, views
from peaktrade.errors import ArtifactError, InvalidId
from peaktrade.site.model import sessions_as_records
from tests.conftest import T0, run_cli


def add(
    reg: Path,
    i: int,
    *,
    mode: str = "shadow",
    status: str = "completed",
    strategy: str = "ma_crossover",
    symbol: str = "BTC/EUR",
    pnl: float = 10.0,
    dd: float = 0.05,
) -> dict:
    rec = registry.new_record(
        session_id=f"session_{i:05d}",
        run_id=f"run_{i}",
        mode=mode,
        env_name="env",
        symbol=symbol,
        strategy=strategy,
        started_at=T0 + timedelta(minutes=i),
        config={"api_key": "sekrit"},
    )
    rec.update(status=status, metrics={"realized_pnl": pnl, "max_drawdown": dd})
    registry.write_record(reg, rec)
    return rec


def test_file_name_and_fields_compatible_with_the_seeds(tmp_path: Path) -> None:
    rec = add(tmp_path, 1)
    path = tmp_path / "20250101T000100_live_session_shadow_session_00001.json"
    data = json.loads(path.read_text())
    assert data["run_type"] == "live_session_shadow" and data["status"] == "completed"
    assert data["config"] == {"api_key": "***"}
    assert set(rec) >= {
        "session_id",
        "run_id",
        "run_type",
        "mode",
        "env_name",
        "symbol",
        "status",
        "started_at",
        "finished_at",
        "config",
        "metrics",
        "cli_args",
        "error",
    }


def test_rewrite_replaces_the_same_file(tmp_path: Path) -> None:
    rec = add(tmp_path, 1, status="started")
    rec["status"] = "completed"
    registry.write_record(tmp_path, rec)
    assert len(list(tmp_path.iterdir())) == 1


def test_filters_apply_before_limit_newest_first(tmp_path: Path) -> None:
    for i in range(30):
        add(tmp_path, i, mode="paper" if i % 3 == 0 else "shadow")
    records, problems = registry.list_records(tmp_path, registry.Filters(mode="paper"), limit=4)
    assert problems == []
    assert [r["session_id"] for r in records] == ["session_00027", "session_00024", "session_00021", "session_00018"]


def test_all_filters(tmp_path: Path) -> None:
    add(tmp_path, 1, strategy="breakout")
    add(tmp_path, 2, symbol="ETH/EUR", status="failed")
    add(tmp_path, 3, mode="testnet")
    f = registry.Filters
    ids = lambda flt: [r["session_id"] for r in registry.list_records(tmp_path, flt)[0]]  # noqa: E731
    assert ids(f(strategy="breakout")) == ["session_00001"]
    assert ids(f(symbol="ETH/EUR")) == ids(f(status="failed")) == ["session_00002"]
    assert ids(f(run_type="live_session_testnet")) == ["session_00003"]
    assert ids(f(since=T0 + timedelta(minutes=2))) == ["session_00003", "session_00002"]


def test_corrupt_and_foreign_files_skipped_and_reported(tmp_path: Path) -> None:
    add(tmp_path, 1)
    (tmp_path / "broken.json").write_text('{"session_id": "x", ')
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    (tmp_path / "badtime.json").write_text('{"session_id": "y", "started_at": "yesterday"}')
    (tmp_path / "notes.txt").write_text("ignored: not json")
    records, problems = registry.list_records(tmp_path)
    assert [r["session_id"] for r in records] == ["session_00001"]
    assert len(problems) == 4 and any("broken.json" in p for p in problems)


def test_naive_timestamps_from_the_original_system(tmp_path: Path) -> None:
    (tmp_path / "20251121T044755_live_session_shadow_s1.json").write_text(
        json.dumps(
            {
                "session_id": "s1",
                "run_id": None,
                "run_type": "live_session_shadow",
                "mode": "shadow",
                "env_name": "shadow_local",
                "symbol": "BTC/EUR",
                "status": "failed",
                "started_at": "2025-11-21T04:47:55.201350",
                "finished_at": "2025-11-21T04:47:55.866964",
                "config": {"strategy_name": "ma_crossover"},
                "metrics": {},
                "cli_args": [],
                "error": "ValueError: x",
            }
        )
    )
    add(tmp_path, 1)
    entries = registry.scan(tmp_path).entries
    assert entries[0]["session_id"] == "s1" and entries[0]["started_at"] == "2025-11-21T04:47:55.201350+00:00"
    assert entries[0]["strategy"] == "ma_crossover"


def test_stats_never_sum_pnl_across_modes(tmp_path: Path) -> None:
    # One function computes session stats (views.sessions_summary): reports use it on records, the site (as
    # index_summary) on index entries; all must agree.
    add(tmp_path, 1, mode="shadow", pnl=100.0, dd=0.02, status="completed")
    add(tmp_path, 2, mode="paper", pnl=-40.0, dd=0.08, status="failed")
    add(tmp_path, 3, mode="paper", pnl=60.0, dd=0.05, status="completed")
    from_index = views.sessions_summary(sessions_as_records(registry.scan(tmp_path).entries))
    records, _ = registry.list_records(tmp_path)
    s = views.sessions_summary(records)
    assert s == from_index == views.index_summary(registry.scan(tmp_path).entries)
    assert s["num_sessions"] == 3
    assert s["realized_pnl_by_mode"] == {"paper": 20.0, "shadow": 100.0}
    assert s["by_status"] == {"completed": 2, "failed": 1}
    assert s["avg_max_drawdown"] == pytest.approx(0.05)
    assert s["first_started_at"].startswith("2025-01-01T00:01") and s["last_started_at"].startswith(
        "2025-01-01T00:03"
    )
    completed, _ = registry.list_records(tmp_path, registry.Filters(status="completed"))
    assert views.sessions_summary(completed)["num_sessions"] == 2
    assert views.sessions_summary(registry.scan(tmp_path / "missing").entries)["num_sessions"] == 0


def test_index_cache_sees_new_changed_and_removed_records(tmp_path: Path) -> None:
    reg, index = tmp_path / "reg", tmp_path / "state" / "index.json"
    for i in range(5):
        add(reg, i)
    assert len(registry.scan(reg, index).entries) == 5 and index.exists()
    rec = add(reg, 9)
    assert registry.scan(reg, index).entries[0]["session_id"] == "session_00009"
    rec["status"] = "failed"
    registry.write_record(reg, rec)
    assert registry.scan(reg, index).entries[0]["status"] == "failed"
    next(reg.glob("*00000.json")).unlink()
    assert len(registry.scan(reg, index).entries) == 5


def test_a_scan_hands_over_the_records_it_parsed_so_they_are_read_once(tmp_path: Path) -> None:
    reg, index = tmp_path / "reg", tmp_path / "state" / "index.json"
    old_ns = time.time_ns() - 60_000_000_000  # settled: a file changed just before a scan is parsed again

    def settle() -> None:  # what was written since: `utime` changes ctime, which the index compares too
        for path in reg.iterdir():
            if path.stat().st_mtime_ns > old_ns:
                os.utime(path, ns=(old_ns, old_ns))

    for i in range(3):
        add(reg, i)
    settle()
    cold = registry.scan(reg, index)  # a cold `site build` shows every record: as this scan read it
    assert sorted(cold.records) == sorted(e["_file"] for e in cold.entries)
    assert cold.records[cold.entries[0]["_file"]] == registry.load_record(reg / cold.entries[0]["_file"])
    add(reg, 7)
    settle()
    warm = registry.scan(reg, index)  # only the new file is parsed (and handed over)
    newest = warm.entries[0]["_file"]
    assert list(warm.records) == [newest] and warm.records[newest]["session_id"] == "session_00007"
    assert registry.scan(reg, index).records == {}


def test_record_edited_in_place_is_noticed_without_touching_the_directory(tmp_path: Path) -> None:
    reg, index = tmp_path / "reg", tmp_path / "index.json"
    for i in range(3):
        add(reg, i)
    old = time.time_ns() - 10_000_000_000
    for path in [*reg.iterdir(), reg]:
        os.utime(path, ns=(old, old))  # settled, as between two cron runs
    assert len(registry.scan(reg, index).entries) == 3
    # An editor rewrites the file in place (same inode); the directory's mtime does not change.
    path = next(reg.glob("*00001.json"))
    good = json.loads(path.read_text())
    path.write_text("{not json")
    os.utime(reg, ns=(old, old))
    broken = registry.scan(reg, index)
    assert [e["session_id"] for e in broken.entries] == ["session_00002", "session_00000"]
    assert len(broken.problems) == 1 and path.name in broken.problems[0]
    # Fixed in place: listed again, the problem is gone, and the fix is what is shown.
    path.write_text(json.dumps({**good, "status": "aborted"}))
    os.utime(reg, ns=(old, old))
    fixed = registry.scan(reg, index)
    assert fixed.problems == []
    assert [e["status"] for e in fixed.entries if e["session_id"] == "session_00001"] == ["aborted"]
    records, problems = registry.list_records(reg, limit=10, index_path=index)
    assert problems == [] and [r["session_id"] for r in records][1] == "session_00001"


def test_damaged_index_counts_as_missing(tmp_path: Path) -> None:
    reg, index = tmp_path / "reg", tmp_path / "index.json"
    for i in range(2):
        add(reg, i)
    for damaged in ('{"version": 4}', '{"version": 4, "columns": [], "rows": 5}', "[1, 2]", "\x00garbage"):
        index.write_text(damaged)
        assert [e["session_id"] for e in registry.scan(reg, index).entries] == ["session_00001", "session_00000"]
        assert json.loads(index.read_text().splitlines()[0])["version"] == registry_index.VERSION  # rebuilt


def test_bad_session_id_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidId):
        registry.new_record(
            session_id="../x", run_id=None, mode="shadow", env_name="e", symbol="s", strategy="m", started_at=T0
        )
    with pytest.raises(InvalidId):
        registry.find_session(tmp_path, "a/b")


def test_cli_session_list_and_show(workspace: Path) -> None:
    reg = workspace / "reports" / "experiments" / "live_sessions"
    add(reg, 1, mode="paper", pnl=12.5)
    add(reg, 2, mode="shadow", pnl=-3.0)
    (reg / "junk.json").write_text("nope")
    out = run_cli("session", "list", "--mode", "paper", cwd=workspace)
    assert out.returncode == 0
    assert "session_00001" in out.stdout and "session_00002" not in out.stdout and "pnl=+12.50" in out.stdout
    assert "junk.json" in out.stderr
    as_json = json.loads(run_cli("session", "list", "--json", "--limit", "1", cwd=workspace).stdout)
    assert [r["session_id"] for r in as_json] == ["session_00002"]
    shown = run_cli("session", "show", "session_00001", cwd=workspace)
    assert json.loads(shown.stdout)["metrics"]["realized_pnl"] == 12.5
    missing = run_cli("session", "show", "session_99999", cwd=workspace)
    assert missing.returncode == 2 and "no session" in missing.stderr


def test_a_record_swapped_for_a_symlink_out_after_the_listing_is_not_followed(tmp_path: Path) -> None:
    # `site build` lists the records' stats before it starts (the signature of its inputs) and scans with that
    # listing: a record replaced by a symlink leading out in between is refused where it is opened.
    reg = tmp_path / "reg"
    add(reg, 1)
    (record,) = reg.iterdir()
    outside = tmp_path / "outside.json"
    outside.write_text(record.read_text().replace("ma_crossover", "SECRET-OUTSIDE"))
    taken = registry.listing(reg)
    record.unlink()
    record.symlink_to(outside)
    scan = registry.scan(reg, tmp_path / "index.json", taken=taken)
    assert scan.entries == []
    assert any(record.name in p and "symlink leading out of" in p for p in scan.problems), scan.problems
    with pytest.raises(ArtifactError, match="symlink leading out of"):
        registry.load_record(record)  # what a build reads later for a page: refused the same way

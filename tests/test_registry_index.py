"""The registry index (`peaktrade.registry_index`): rows decoded lazily, changes merged in, damage rebuilt once."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from peaktrade import registry, registry_index
from tests.test_registry import add

SETTLED = time.time_ns() - 10_000_000_000  # as between two cron runs: nothing is racy


def settled_registry(tmp_path: Path, n: int = 30) -> tuple[Path, Path]:
    reg, index = tmp_path / "reg", tmp_path / "state" / "registry-index.json"
    for i in range(n):
        add(reg, i, mode=("shadow", "paper")[i % 2])
    settle(reg)
    registry.scan(reg, index)
    return reg, index


def settle(reg: Path) -> None:
    """Files written since the last settle get an old mtime, as between two cron runs (no longer racy). The others
    are left alone: `utime` changes a file's ctime, which the index compares too."""
    for path in [*reg.iterdir(), reg]:
        if path == reg or path.stat().st_mtime_ns > SETTLED:
            os.utime(path, ns=(SETTLED, SETTLED))


def edit_in_place(reg: Path, i: int, **fields: object) -> None:
    """What an operator's editor does: the same file (same inode) rewritten; the directory mtime is kept."""
    path = next(reg.glob(f"*_session_{i:05d}.json"))
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))
    os.utime(reg, ns=(SETTLED, SETTLED))


def ids(records: list[dict]) -> list[str]:
    return [r["session_id"] for r in records]


def newest(n: int, total: int = 30) -> list[str]:
    return [f"session_{i:05d}" for i in range(total - 1, total - 1 - n, -1)]


def row_lines(index: Path) -> list[bytes]:
    return index.read_bytes().split(b"\n")[registry_index.HEAD : -1]


def test_a_damaged_row_is_found_when_the_listing_reaches_it(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path)
    lines = index.read_bytes().split(b"\n")
    lines[registry_index.HEAD + 5] = b"x" * len(
        lines[registry_index.HEAD + 5]
    )  # the sixth newest record's row; the file keeps its size
    index.write_bytes(b"\n".join(lines))
    # A listing that stops before the damage never decodes it.
    records, problems = registry.list_records(reg, limit=3, index_path=index)
    assert ids(records) == newest(3) and problems == []
    # One that reaches it rebuilds the index, says so once, and still lists the right records.
    records, problems = registry.list_records(reg, limit=10, index_path=index)
    assert ids(records) == newest(10)
    assert len(problems) == 1 and str(index) in problems[0] and "rebuilt" in problems[0]
    records, problems = registry.list_records(reg, limit=10, index_path=index)
    assert ids(records) == newest(10) and problems == []


def test_an_old_record_edited_in_place_moves_into_the_listing(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path)
    assert "session_00003" not in ids(registry.list_records(reg, limit=10, index_path=index)[0])
    edit_in_place(reg, 3, started_at="2030-01-01T00:00:00+00:00", mode="testnet", run_type="live_session_testnet")
    records, problems = registry.list_records(reg, limit=10, index_path=index)
    assert problems == [] and ids(records) == ["session_00003", *newest(9)]
    testnet, _ = registry.list_records(reg, registry.Filters(mode="testnet"), 10, index)
    assert ids(testnet) == ["session_00003"]
    paper, _ = registry.list_records(reg, registry.Filters(mode="paper"), 10, index)
    assert "session_00003" not in ids(paper) and len(paper) == 10


def test_a_change_rewrites_the_index_keeping_every_other_entry(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path)
    before = {e["session_id"]: e for e in registry.scan(reg, index).entries}
    rows_before = set(row_lines(index))
    edit_in_place(reg, 12, status="failed")
    add(reg, 40)  # and one new record
    settle(reg)
    after = {e["session_id"]: e for e in registry.scan(reg, index).entries}
    assert set(after) == {*before, "session_00040"}
    assert after["session_00012"]["status"] == "failed"
    assert all(after[sid] == entry for sid, entry in before.items() if sid != "session_00012")
    # The rows of the untouched records were carried over as they were; the index reads back the same.
    assert len(rows_before - set(row_lines(index))) == 1
    again = registry.scan(reg, index)
    assert again.problems == [] and {e["session_id"]: e for e in again.entries} == after


def test_a_record_replaced_with_same_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path)
    path = next(reg.glob("*_session_00020.json"))
    copy = tmp_path / "copy.json"
    copy.write_text(path.read_text().replace('"BTC/EUR"', '"ETH/EUR"'))
    shutil.copystat(path, copy)  # as `cp -p` keeps it: same size, same mtime, another inode
    os.replace(copy, path)
    settle(reg)
    entries = {e["session_id"]: e for e in registry.scan(reg, index).entries}
    assert entries["session_00020"]["symbol"] == "ETH/EUR"


def test_duplicates_and_problem_files_survive_a_rewrite(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path, n=5)
    src = next(reg.glob("*_session_00002.json"))
    shutil.copy(src, reg / f"20240101T000000_live_session_paper_{'session_00002'}.json")
    (reg / "junk.json").write_text("nope")
    settle(reg)
    for _ in range(2):  # built, then read back from the index
        result = registry.scan(reg, index)
        assert [e["session_id"] for e in result.entries] == newest(5, 5)
        assert len(result.problems) == 2
        assert "junk.json" in result.problems[0] and "duplicate session id 'session_00002'" in result.problems[1]
        found, problems = registry.find_session_checked(reg, "session_00002", index)
        assert found is not None and found["started_at"] == "2025-01-01T00:02:00+00:00" and len(problems) == 1


def test_a_settled_listing_leaves_the_index_alone_and_an_edit_rewrites_it_once(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path)
    written = index.read_bytes()
    registry.list_records(reg, limit=10, index_path=index)
    assert index.read_bytes() == written
    edit_in_place(reg, 7, status="aborted")
    settle(reg)
    records, _ = registry.list_records(reg, index_path=index)
    assert [r["status"] for r in records if r["session_id"] == "session_00007"] == ["aborted"]
    rewritten = index.read_bytes()
    assert rewritten != written
    registry.list_records(reg, limit=10, index_path=index)
    assert index.read_bytes() == rewritten


def test_big_finite_metrics_survive_the_index_and_huge_integers_do_not(tmp_path: Path) -> None:
    reg, index = settled_registry(tmp_path, 3)
    edit_in_place(reg, 1, metrics={"final_equity": 1e19, "realized_pnl": 2.5, "num_orders": 10**30})
    for _ in range(2):  # building the index, then reading it back
        entry = next(e for e in registry.scan(reg, index).entries if e["session_id"].endswith("00001"))
        assert (entry["final_equity"], entry["realized_pnl"], entry["num_orders"]) == (1e19, 2.5, None)


def test_a_huge_integer_metric_is_dropped_by_the_record_reader_too_so_report_and_site_agree(tmp_path: Path) -> None:
    """`report sessions` sums the records' metrics, the site the index's: an integer past +-2**63 is missing in
    both (and named), where the report summed it and the site did not."""
    from peaktrade import views
    from peaktrade.site import model

    reg, index = settled_registry(tmp_path, 3)
    edit_in_place(reg, 1, metrics={"realized_pnl": 2**64, "max_drawdown": 0.1})
    records, problems = registry.list_records(reg, index_path=index)
    assert any("metrics.realized_pnl" in p and "2**63" in p for p in problems), problems
    report = views.sessions_summary(records)
    site = model.stats_json(registry.scan(reg, index).entries)
    assert report["realized_pnl_by_mode"] == site["realized_pnl_by_mode"]
    assert report["realized_pnl_by_mode"].get("paper", 0) < 2**63


def test_an_edit_in_place_that_puts_size_and_mtime_back_is_noticed(tmp_path: Path) -> None:
    """`cp -p backup.json record.json` onto an existing record writes the same file (same inode) and sets the
    backup's mtime; with the same size, only ctime tells. The index keyed without it showed the old record."""
    reg, index = settled_registry(tmp_path, 5)
    path = next(reg.glob("*_session_00002.json"))
    before = path.stat()
    text = path.read_text()
    assert '"symbol": "BTC/EUR"' in text
    path.write_text(text.replace('"symbol": "BTC/EUR"', '"symbol": "ETH/EUR"'))  # the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.utime(reg, ns=(SETTLED, SETTLED))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    entry = next(e for e in registry.scan(reg, index).entries if e["session_id"] == "session_00002")
    assert entry["symbol"] == "ETH/EUR"
    records, problems = registry.list_records(reg, filters=registry.Filters(symbol="ETH/EUR"), index_path=index)
    assert problems == [] and [r["session_id"] for r in records] == ["session_00002"]
